"""The rule harness: what a rule's script sees, and the provenance it records on its own.

Every entry script in ``scripts/`` is a few lines::

    def main(job):
        cohort = job.read("cohort")                        # checked against its table spec
        result = job.call(build_cohort, ..., job.settings(CohortSettings))
        job.write("cohort", result.cohort)
        job.report(result.numbers())
        job.figure("figure", result.plot_attrition, CAPTION)

    run(main, snakemake)

:func:`run` sets up logging to the rule's log file, calls ``main(job)`` and then writes
``results/numbers/<rule>.json`` (when the rule has a ``numbers`` output) with:

- ``rule``, ``stage`` (the library function :meth:`Job.call` ran) and ``script``;
- ``code``: the git blob hash of the script and of every library module it runs
  (:func:`mydirection.reporting.provenance.library_sources`, the same list the Snakefile
  declares as the rule's inputs, so a library edit reruns exactly the dependent rules);
- ``inputs`` and ``outputs``: SHA-256 of each file (a list of many files is summarised as
  a count and the checksum of its manifest);
- ``config``: the config keys and values of every settings object the job built
  (:meth:`Job.settings`), never a hand-written list;
- the numbers, figures and additive relations of the stage.

A :class:`~mydirection.errors.UserError` is printed as one clear message, the job's outputs
are removed and the script exits with status 1 (Snakemake then reports the failed job).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mydirection.errors import UserError
from mydirection.reporting.numbers import Figure, Numbers

log = logging.getLogger("mydirection")

#: An input list with more files than this is summarised (count + manifest checksum).
SUMMARISE_OVER = 12


def setup_logging(logfile: str | None = None, level: int = logging.INFO) -> None:
    """Log to stderr and, when given, to the rule's log file (no person-level data, ever)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=handlers, force=True)
    logging.captureWarnings(True)  # library warnings (e.g. quasi-separation) reach the log


def script_path(snakemake) -> str:
    """The entry script's path in the repository (Snakemake runs a copy named
    ``.snakemake/scripts/tmpXXXX.<name>``; the part after the first dot is the name)."""
    main = getattr(sys.modules.get("__main__"), "__file__", None) or f"{snakemake.rule}.py"
    name = Path(main).name
    if name.startswith("tmp") and name.count(".") >= 2:
        name = name.split(".", 1)[1]
    return f"scripts/{name}"


class Job:
    """One running rule: inputs, outputs, settings and the numbers it reports."""

    def __init__(self, snakemake):
        self.snakemake = snakemake
        self.rule = snakemake.rule
        self.config = getattr(snakemake, "config", None) or {}
        self.input = snakemake.input
        self.output = snakemake.output
        self.params = getattr(snakemake, "params", None)
        self.wildcards = getattr(snakemake, "wildcards", None)
        self.log = snakemake.log
        self.stage: str | None = None
        self._reported = False
        self._config: dict = {}
        self._numbers = Numbers()
        self._figures: dict[str, Figure] = {}

    # -- settings and data
    def settings(self, cls):
        """The settings object ``cls`` built from the config; its keys enter the provenance."""
        obj = cls.from_config(self.config)
        self._config.update(obj.config_keys())
        return obj

    def used(self, settings) -> None:
        """Record the config keys of a settings object built elsewhere (e.g. from a file)."""
        self._config.update(settings.config_keys())

    def read(self, name: str, table: str | None = None, **options):
        """Input ``name`` read and checked against its table spec (``mydirection.tables``)."""
        from mydirection import tables

        return tables.read(self.input[name], table or name, **options)

    def write(self, name: str, frame, table: str | None = None) -> None:
        """Output ``name`` written (Parquet, checked against its table spec)."""
        from mydirection import tables

        tables.write(frame, self.output[name], table or name)

    def write_json(self, name: str, data) -> None:
        path = Path(self.output[name])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")

    def call(self, stage: Callable, *args, **kwargs):
        """Run the library stage function (recorded in the provenance, timed in the log)."""
        self.stage = f"{stage.__module__}.{stage.__qualname__}"
        started = time.perf_counter()
        out = stage(*args, **kwargs)
        log.info("%s: %.1f s", self.stage, time.perf_counter() - started)
        return out

    # -- what the stage reports
    def report(self, numbers: Numbers) -> None:
        self._reported = True
        self._numbers.update(numbers)

    def figure(self, name: str, draw: Callable, caption: str, derived_from=()) -> None:
        """Draw output ``fig_<name>`` with ``draw(path)``; report it as ``figures.<name>``."""
        path = Path(self.output[f"fig_{name}"])
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(path)
        self._reported = True
        key = f"figures.{name}"
        self._figures[key] = Figure(key, str(path), caption, tuple(derived_from))

    # -- provenance
    def _files(self, named, skip=()) -> dict:
        from mydirection.reporting.provenance import sha256_file

        out: dict = {}
        groups = named._names if hasattr(named, "_names") else {}
        grouped = set()
        for name, span in groups.items():
            if name == "code":
                continue
            start, end = span if isinstance(span, tuple) else (span, span + 1)
            end = start + 1 if end is None else end
            files = [str(f) for f in list(named)[start:end]]
            if len(files) > SUMMARISE_OVER:
                lines = "".join(f"{f}\t{sha256_file(f)}\n" for f in sorted(files))
                import hashlib

                out[f"{name} ({len(files)} files)"] = {
                    "files": len(files),
                    "manifest_sha256": hashlib.sha256(lines.encode()).hexdigest(),
                }
                grouped.update(files)
        for f in named:
            f = str(f)
            if f in grouped or f in skip or not Path(f).is_file():
                continue
            out[f] = sha256_file(f)
        return dict(sorted(out.items()))

    def provenance(self) -> dict:
        from mydirection.reporting.provenance import code_versions

        script = script_path(self.snakemake)
        code_inputs = set(getattr(self.input, "code", []) or [])
        numbers_path = str(self.output.numbers) if hasattr(self.output, "numbers") else ""
        return {
            "rule": self.rule,
            "stage": self.stage,
            "script": script,
            "code": code_versions(script) if Path(script).is_file() else {},
            "inputs": self._files(self.input, skip=code_inputs),
            "outputs": self._files(self.output, skip={numbers_path}),
            "config": dict(sorted(self._config.items())),
        }

    def finish(self) -> None:
        """Write the numbers file (when the rule has a ``numbers`` output)."""
        if not hasattr(self.output, "numbers") or not self._reported:
            return
        doc = {
            **self.provenance(),
            "numbers": self._numbers.as_dict(),
            "figures": {k: f.as_dict() for k, f in sorted(self._figures.items())},
            "relations": [[t, list(p), prefer] for t, p, prefer in self._numbers.relations],
        }
        path = Path(self.output.numbers)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")


def run(main: Callable, snakemake) -> None:
    """Call ``main(job)`` with logging set up; turn a UserError into a clean exit."""
    logfile = snakemake.log[0] if len(snakemake.log) else None
    setup_logging(logfile)
    started = time.perf_counter()
    log.info("rule %s: started", snakemake.rule)
    job = Job(snakemake)
    try:
        main(job)
        job.finish()
    except UserError as err:
        log.error("ERROR in rule %s: %s", snakemake.rule, err)
        for path in snakemake.output:
            p = Path(path)
            if p.is_file():
                p.unlink()
        sys.exit(1)
    log.info("rule %s: done in %.1f s", snakemake.rule, time.perf_counter() - started)


__all__ = ["Job", "UserError", "run", "setup_logging"]
