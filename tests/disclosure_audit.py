"""An intruder's audit of a published registry, independent of the disclosure module.

Given what the report publishes (``results/registry.json``: values of unsuppressed numbers,
the additive relations, every number's ``derived_from``) and the true values of the
suppressed counts (the stages' own numbers files), list every way a suppressed count of
people can be worked out:

1. ``value``: the registry itself carries the value of a suppressed number;
2. ``derived``: a published number is computed from a suppressed one;
3. ``relation``: the relations, solved by linear programming over the published counts
   (hidden counts bounded by ``[1, threshold - 1]`` when primary, ``[0, inf)`` otherwise),
   pin the count down to one integer;
4. ``arithmetic``: an identity between the stages' numbers that the relations do not
   declare (:data:`IDENTITIES`: the ways found in review, across stages and through rates
   and ratios) gives it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.optimize import linprog

#: (suppressed count, how an intruder computes it from published numbers).
IDENTITIES = [
    ("fidelity.n_not_scored", lambda p: p["cohort.n_treated"] - p["fidelity.n_scored"]),
    ("fidelity.n_not_scored", lambda p: p["fidelity.n_scorable_activity_attended"] - p["fidelity.n_scored"]),
    ("fidelity.n_low", lambda p: p["fidelity.n_scored"] - p["fidelity.n_high"] - p["fidelity.n_moderate"]),
    ("fidelity.n_high", lambda p: p["fidelity.n_scored"] - p["fidelity.n_low"] - p["fidelity.n_moderate"]),
    ("matching.n_treated_unmatched", lambda p: p["matching.n_treated"] - p["matching.n_treated_matched"]),
    ("matching.n_treated_matched", lambda p: p["matching.n_treated"] - p["matching.n_treated_unmatched"]),
    ("matching.n_treated", lambda p: p["cohort.n_treated"]),
    ("reoffending.n_treated", lambda p: p["cohort.n_treated"] - p["outcomes.n_followup_incomplete"]),
    ("reoffending.n_treated_reoffended",
     lambda p: p["reoffending.rate_treated"] * p["reoffending.n_treated"]),
    ("reoffending.n_comparators_reoffended",
     lambda p: p["power.comparison_rate"] * p["reoffending.n_comparators"]),
]  # fmt: skip


def true_values(numbers_dir: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path in sorted(Path(numbers_dir).glob("*.json")):
        out.update(json.loads(path.read_text())["numbers"])
    return out


def _finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _lp_range(key, relations, published, hidden, bounds):
    unknown = sorted(hidden)
    col = {k: i for i, k in enumerate(unknown)}
    rows, rhs = [], []
    for total, parts, *_ in relations:
        members = [(total, -1.0), *((p, 1.0) for p in parts)]
        if not all(m in published or m in col for m, _ in members):
            continue
        row, b = np.zeros(len(unknown)), 0.0
        for m, coef in members:
            if m in col:
                row[col[m]] += coef
            else:
                b -= coef * published[m]
        if row.any():
            rows.append(row)
            rhs.append(b)
    if not rows or key not in col:
        return -math.inf, math.inf
    c = np.zeros(len(unknown))
    c[col[key]] = 1.0
    box = [bounds[k] for k in unknown]
    lo = linprog(c, A_eq=np.array(rows), b_eq=rhs, bounds=box, method="highs")
    hi = linprog(-c, A_eq=np.array(rows), b_eq=rhs, bounds=box, method="highs")
    return (lo.fun if lo.status == 0 else -math.inf), (-hi.fun if hi.status == 0 else math.inf)


def audit(registry: dict, truth: dict[str, dict]) -> list[tuple[str, str, str]]:
    """``(how, suppressed key, evidence)`` for every recoverable suppressed count."""
    numbers = registry["numbers"]
    threshold = int(registry["threshold"])
    suppressed = {k for k, e in numbers.items() if e.get("suppressed")}
    primary = {
        k
        for k in suppressed
        if numbers[k].get("people") and _finite(truth.get(k, {}).get("value"))
        and 0 < truth[k]["value"] < threshold
    }  # fmt: skip
    published = {
        k: float(e["value"]) for k, e in numbers.items() if k not in suppressed and _finite(e.get("value"))
    }  # fmt: skip
    found = []
    for k in sorted(suppressed):
        if numbers[k].get("value") is not None:
            found.append(("value", k, "the registry holds its value"))
    for k, e in sorted(numbers.items()):
        if k not in suppressed and suppressed & set(e.get("derived_from", ())):
            found.append(("derived", sorted(suppressed & set(e["derived_from"]))[0], k))
    counts = {k for k, e in numbers.items() if e.get("kind") == "count"}
    hidden = (suppressed & counts) | {
        m for r in registry["relations"] for m in (r[0], *r[1]) if m not in published
    }
    bounds = {k: (1, threshold - 1) if k in primary else (0, None) for k in hidden}
    for k in sorted(primary):
        lo, hi = _lp_range(k, registry["relations"], published, hidden, bounds)
        if hi - lo < 0.5:
            found.append(("relation", k, f"relations fix it between {lo:g} and {hi:g}"))
    for target, formula in IDENTITIES:
        if target in primary:
            try:
                worked_out = formula(published)
            except KeyError:
                continue  # a member is not published
            if abs(worked_out - float(truth[target]["value"])) < 0.5:
                found.append(("arithmetic", target, f"{worked_out:g} from published numbers"))
    return found
