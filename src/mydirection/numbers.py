"""Transitional: the old ``number()`` / ``write_numbers()`` API of entry scripts not yet
moved to result objects (:mod:`mydirection.reporting.numbers` and the rule harness). It
writes the same numbers-file format as :class:`mydirection.runner.Job`."""

from __future__ import annotations

import json
from pathlib import Path

from mydirection.reporting.numbers import KINDS, _plain

PEOPLE_UNITS = ("people", "treated people", "comparators")


def number(value, kind: str, unit: str = "", *, derived_from=(), decimals=None, label="") -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {sorted(KINDS)}")
    entry = {"value": _plain(value), "kind": kind, "unit": unit, "label": label}
    if kind == "count" and unit in PEOPLE_UNITS:
        entry["people"] = True
    if derived_from:
        entry["derived_from"] = sorted(derived_from)
    if decimals is not None:
        entry["decimals"] = decimals
    return entry


def write_numbers(path, snakemake, numbers: dict, *, config_keys=None, figures=None) -> None:
    from mydirection.runner import Job

    job = snakemake if isinstance(snakemake, Job) else Job(snakemake)
    job._config.update(config_keys or {})
    doc = {
        **job.provenance(),
        "numbers": numbers,
        "figures": figures or {},
        "relations": [],
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
