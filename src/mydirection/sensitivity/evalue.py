"""E-values: how strong an unmeasured confounder would have to be.

E-values (VanderWeele & Ding, Ann Intern Med 2017;167:268-274)
---------------------------------------------------------------
The minimum strength of association (risk-ratio scale) an unmeasured confounder would need
with both treatment and outcome to explain away an observed risk ratio ``RR``::

    E = RR + sqrt(RR (RR - 1))           for RR >= 1 (use 1 / RR when RR < 1)

and for the confidence limit nearer the null (1 when the interval contains 1). Odds and
hazard ratios are first converted to approximate risk ratios: unchanged for a rare outcome
(< 15 %); for a common outcome ``RR ~ sqrt(OR)`` and
``RR ~ (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))`` (VanderWeele 2017/2020).
"""

from __future__ import annotations

import math


def to_risk_ratio(estimate: float, measure: str = "rr", rare: bool = True) -> float:
    """Approximate risk ratio from a risk, odds or hazard ratio (VanderWeele & Ding 2017).

    ``measure`` is ``"rr"``, ``"or"`` or ``"hr"``; ``rare`` means the outcome is rare (< 15 %)
    at the end of follow-up. Common outcome: ``sqrt(OR)``; for HR
    ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``.
    """
    x = float(estimate)
    if x <= 0:
        raise ValueError(f"ratio must be positive, got {x}")
    if measure == "rr" or rare:
        if measure not in ("rr", "or", "hr"):
            raise ValueError(f"unknown measure {measure!r}")
        return x
    if measure == "or":
        return math.sqrt(x)
    if measure == "hr":
        return (1 - 0.5 ** math.sqrt(x)) / (1 - 0.5 ** math.sqrt(1 / x))
    raise ValueError(f"unknown measure {measure!r}")


def evalue(rr: float) -> float:
    """E-value of a risk ratio: ``RR + sqrt(RR (RR - 1))`` on the side away from 1."""
    rr = float(rr)
    if rr <= 0 or not math.isfinite(rr):
        raise ValueError(f"risk ratio must be positive and finite, got {rr}")
    if rr < 1:
        rr = 1 / rr
    return rr + math.sqrt(rr * (rr - 1))


def evalue_ci(lower: float, upper: float) -> float:
    """E-value of the confidence limit nearer the null; 1 when the interval contains 1."""
    if lower > upper:
        raise ValueError("lower limit above upper limit")
    if lower <= 1 <= upper:
        return 1.0
    return evalue(lower if lower > 1 else upper)


def evalue_table(
    estimate: float, lower: float, upper: float, measure: str = "rr", rare: bool = True
) -> dict:
    """E-values of a point estimate and its CI after conversion to the risk-ratio scale."""
    rr, lo, hi = (to_risk_ratio(v, measure, rare) for v in (estimate, lower, upper))
    return {
        "rr": rr,
        "rr_lower": lo,
        "rr_upper": hi,
        "evalue_estimate": evalue(rr),
        "evalue_ci": evalue_ci(lo, hi),
    }
