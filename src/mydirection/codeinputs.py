"""The rules' ``code`` inputs, remembered between runs of Snakemake (a fast dry run).

A rule's ``code`` input is its script and every library module the script runs
(:func:`mydirection.reporting.provenance.library_sources`, which parses each module with
:mod:`ast`: about half a second for the whole workflow, on every ``snakemake`` call). The
answer is kept in ``.snakemake/mydirection/code_inputs.json`` with the signature (size,
modification and change time, inode) of every file it was read from, of the folders those
files are in (a module added or removed changes its folder) and of the provenance module
itself; it is used only while all of them are unchanged, else computed again. Light on
purpose (standard library only): it runs while the Snakefile is parsed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CACHE = Path(".snakemake") / "mydirection" / "code_inputs.json"
PROVENANCE = Path(__file__).resolve().parent / "reporting" / "provenance.py"


def _signature(path: str) -> list | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _watched(files: list[str]) -> list[str]:
    """The files, their folders and the provenance module: what the answer depends on."""
    folders = {str(Path(f).parent) for f in files}
    return sorted({*files, *folders, str(PROVENANCE)})


class CodeInputs:
    """``code_inputs(script)`` -> the library modules the script runs (as
    :func:`library_sources` gives them, relative to the working directory), cached."""

    def __init__(self, cache_path: str | Path = CACHE):
        self.cache_path = Path(cache_path)
        try:
            self.cache = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            self.cache = {}

    def __call__(self, script: str) -> list[str]:
        key = f"{Path.cwd()}::{script}"
        hit = self.cache.get(key)
        if hit and all(_signature(p) == s for p, s in hit["watched"].items()):
            return list(hit["sources"])
        from mydirection.reporting.provenance import library_sources

        sources = library_sources(script)
        watched = _watched([script, *sources])
        self.cache[key] = {"sources": sources, "watched": {p: _signature(p) for p in watched}}
        self._save()
        return list(sources)

    def _save(self) -> None:
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.cache, indent=0, sort_keys=True))
            os.replace(tmp, self.cache_path)
        except OSError:
            pass  # a read-only working directory: computed again next time


__all__ = ["CACHE", "CodeInputs"]
