"""Writing the numbers a rule reports: ``results/numbers/<rule>.json``.

Each rule that produces a number the report shows writes it here, and only here; the
``registry`` rule merges these files into ``results/registry.json`` and adds provenance
(script blob hash, input checksums, display formatting, disclosure control).

A number is a dict made by :func:`number`. ``kind`` drives formatting and suppression:

- ``count``: a count of people or events; suppressed when 0 < value < threshold.
- ``proportion``: a share in [0, 1], displayed as a percentage.
- ``pp``: a difference in percentage points, given as a difference of proportions.
- ``mean``, ``ratio``, ``estimate``: plain decimals; ``p_value``; ``days``; ``index``
  (0-100 score); ``gamma``.

``derived_from`` names the count keys a number was computed from: when any of them is
suppressed, the number is suppressed too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

KINDS = {
    "count",
    "proportion",
    "pp",
    "mean",
    "ratio",
    "estimate",
    "p_value",
    "days",
    "index",
    "gamma",
    "seconds",
    "text",
}


def number(
    value,
    kind: str,
    unit: str = "",
    *,
    derived_from=(),
    decimals: int | None = None,
    label: str = "",
) -> dict:
    """One reported number. ``value`` must be a plain float/int/str (no NumPy scalars)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {sorted(KINDS)}")
    if hasattr(value, "item"):  # NumPy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    entry = {"value": value, "kind": kind, "unit": unit}
    if derived_from:
        entry["derived_from"] = sorted(derived_from)
    if decimals is not None:
        entry["decimals"] = decimals
    if label:
        entry["label"] = label
    return entry


def write_numbers(
    path,
    snakemake,
    numbers: dict[str, dict],
    *,
    config_keys: dict | None = None,
    figures: dict[str, dict] | None = None,
) -> None:
    """Write a rule's numbers with what the registry needs to trace them.

    ``config_keys`` maps dotted config keys (``matching.caliper``) to the values used;
    ``figures`` maps a figure key to ``{"path": ..., "caption": ...}``.
    """
    for key, entry in numbers.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise ValueError(f"number {key!r} was not made with mydirection.numbers.number()")
    doc = {
        "rule": snakemake.rule,
        "script": _script_path(snakemake),
        "inputs": sorted(str(p) for p in snakemake.input),
        "config": config_keys or {},
        "numbers": numbers,
        "figures": figures or {},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _script_path(snakemake) -> str:
    """The entry script's path in the repository.

    Snakemake runs a copy named ``.snakemake/scripts/tmpXXXX.<basename>``; the part after
    the first dot is the original file name in ``scripts/``.
    """
    import sys

    main = getattr(sys.modules.get("__main__"), "__file__", None) or f"{snakemake.rule}.py"
    name = Path(main).name
    if name.startswith("tmp") and name.count(".") >= 2:
        name = name.split(".", 1)[1]
    return f"scripts/{name}"
