"""The specification curve's grid: every specification's choice and name, and its batch.

Light on purpose (standard library only, no numpy or pandas): the Snakefile counts the
specifications while it is parsed, to know how many batch jobs to schedule, and a dry run
stays fast. The curve itself is :mod:`mydirection.sensitivity.spec_curve`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mydirection.settings import AnalysisSpec

#: The choices a specification may change (fields of AnalysisSpec).
CHOICES = ("method", "distance", "caliper", "ratio", "replace", "exact", "followup_days")


def _caliper_name(c) -> str:
    return "none" if c is None else f"{float(c):g}"


def exact_name(exact, names: dict) -> str:
    """The grid's name of an exact-matching set (else the columns joined by ``_``)."""
    found = next((n for n, cols in names.items() if list(cols) == list(exact)), None)
    return found or ("_".join(exact) if exact else "none")


def spec_name(choice: dict, names: dict) -> str:
    """Short, file-name-safe name, e.g. ``logit_ps-cal0.2-r1-norep-exnone-fu365``."""
    fu = f"fu{int(choice['followup_days'])}"
    if choice["method"] == "ipw":
        return f"ipw-{fu}"
    rep = "rep" if choice["replace"] else "norep"
    return (
        f"{choice['distance']}-cal{_caliper_name(choice['caliper'])}-r{int(choice['ratio'])}-"
        f"{rep}-ex{exact_name(choice['exact'], names)}-{fu}"
    )


def headline_choice(spec: AnalysisSpec) -> dict:
    return {k: getattr(spec, k) for k in CHOICES}


def grid_choices(grid: dict, headline: AnalysisSpec) -> dict[str, dict]:
    """Every specification of the curve (name -> choice), in a stable (sorted) order."""
    names = dict(grid.get("exact") or {"none": []})
    out: dict[str, dict] = {}
    for fu in grid["followup_days"]:
        for dist in grid["distance"]:
            for cal in grid["caliper"]:
                for ratio in grid["ratio"]:
                    for rep in grid["replace"]:
                        for ex in names.values():
                            c = {
                                "method": "nearest",
                                "distance": dist,
                                "caliper": None if cal is None else float(cal),
                                "ratio": int(ratio),
                                "replace": bool(rep),
                                "exact": tuple(ex),
                                "followup_days": int(fu),
                            }
                            out[spec_name(c, names)] = c
        if grid.get("ipw", True):
            c = {**headline_choice(headline), "method": "ipw", "followup_days": int(fu)}
            out[spec_name(c, names)] = c
    own = headline_choice(headline)
    out.setdefault(spec_name(own, names), own)
    return dict(sorted(out.items()))


def batch_of(names, n_batches: int) -> dict[str, int]:
    """Spec name -> batch (round-robin over the sorted names)."""
    return {name: i % n_batches for i, name in enumerate(sorted(names))}


__all__ = ["CHOICES", "batch_of", "exact_name", "grid_choices", "headline_choice", "spec_name"]
