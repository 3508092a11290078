"""Small helpers shared by the test modules."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Names(list):
    """A stand-in for Snakemake's named lists (``snakemake.input`` and friends): index by
    position or by name, or read a name as an attribute."""

    def __init__(self, named: dict):
        super().__init__(named.values())
        self._named = named

    def __getattr__(self, name):
        try:
            return self.__dict__["_named"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, item):
        return self._named[item] if isinstance(item, str) else super().__getitem__(item)


def copy_project(dest: Path) -> Path:
    """A fresh copy of the project (no venv, git, results, data or caches) at ``dest``."""
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "results", "data", ".snakemake", "__pycache__", ".pytest_cache",
        ".hypothesis", ".ruff_cache", "*.egg-info",
    )  # fmt: skip
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def stand_in(rule, inputs, outputs, *, params=None, config=None, log=None, wildcards=None):
    """A stand-in for the ``snakemake`` object a rule's script receives."""
    from types import SimpleNamespace

    from snakemake.iocontainers import Namedlist

    from mydirection.settings import load_config

    def named(d):
        return Namedlist(fromdict={k: v if isinstance(v, list) else str(v) for k, v in d.items()})

    return SimpleNamespace(
        rule=rule,
        input=named(inputs),
        output=named(outputs),
        params=Namedlist(fromdict=params or {}),
        wildcards=Namedlist(fromdict=wildcards or {}),
        log=named({"log": log} if log else {}),
        config=config if config is not None else load_config(ROOT / "config" / "config.yaml"),
    )


def run_script(script, rule, inputs, outputs, **options):
    """Run ``scripts/<script>`` as Snakemake would (``options``: see :func:`stand_in`)."""
    import runpy

    sm = stand_in(rule, inputs, outputs, **options)
    runpy.run_path(
        str(ROOT / "scripts" / script), init_globals={"snakemake": sm}, run_name="__main__"
    )


def number(value, kind: str, unit: str = "", *, derived_from=(), decimals=None, label="") -> dict:
    """A numbers-file entry as a stage writes it (for hand-made registries in tests)."""
    from mydirection.reporting.numbers import KINDS, _plain

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {sorted(KINDS)}")
    entry = {"value": _plain(value), "kind": kind, "unit": unit, "label": label}
    if kind == "count" and unit in ("people", "treated people", "comparators"):
        entry["people"] = True
    if derived_from:
        entry["derived_from"] = sorted(derived_from)
    if decimals is not None:
        entry["decimals"] = decimals
    return entry
