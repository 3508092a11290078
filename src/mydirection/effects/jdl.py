"""The Justice Data Lab reading of the effects: the headline table, the "for every 100
typical people" sentence and the sample size that would have been needed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mydirection.effects.att import Z95, Effect


def people_needed(effect: Effect, z: float = Z95) -> float:
    """Treated people needed for the observed difference to reach significance at 5 %.

    Assumes the standard error scales as ``1/sqrt(n)`` with the comparison group growing in
    proportion (same matching ratio and outcome variance):
    ``n_needed = n_treated * (z * se / |estimate|)^2``, rounded up. Infinite when the
    estimate is exactly zero. Below ``n_treated`` when the result is already significant.
    """
    if effect.estimate == 0 or not np.isfinite(effect.se):
        return float("inf")
    return float(math.ceil(effect.n_treated * (z * effect.se / abs(effect.estimate)) ** 2))


def typical_100_sentence(effect: Effect, period: str = "a one-year period") -> str:
    """The JDL "for every 100 typical people" reading of a binary or count effect.

    The interval is the 95 % CI of the difference scaled to 100 treated people (a binary
    difference in proportions x 100 = people; a count difference x 100 = re-offences).
    When the interval spans zero, the number of treated people needed to detect the
    observed difference (:func:`people_needed`) is stated.
    """
    lo, hi = 100 * effect.ci_low, 100 * effect.ci_high
    if effect.kind == "binary":
        noun = "people committed a proven re-offence"
    else:
        noun = "proven re-offences were committed"

    def bound(x):
        return f"{abs(x):.0f} {'fewer' if x < 0 else 'more'}"

    head = "For every 100 typical people in the treatment group, the equivalent of between "
    if lo >= 0 or hi <= 0:
        # significant (or on the boundary): both bounds in the same direction
        direction = "fewer" if hi <= 0 else "more"
        a, b = sorted([abs(lo), abs(hi)])
        text = (
            f"{head}{a:.0f} and {b:.0f} {direction} {noun} during {period} than would "
            "have happened without the programme. This is a statistically significant result."
        )
        return text
    text = (
        f"{head}{bound(lo)} and {bound(hi)} {noun} during {period} than would have "
        "happened without the programme. The interval includes zero, so this analysis does "
        "not show a statistically significant effect; more people would be needed"
    )
    need = people_needed(effect)
    if math.isfinite(need):
        text += (
            f": about {need:,.0f} people in the treatment group (now {effect.n_treated:,}) "
            "for a difference of this size to be statistically significant, assuming the "
            "standard error falls with the square root of the sample size."
        )
    else:
        text += "; the observed difference is zero, so no sample size would make it significant."
    return text


MEASURES = {
    "binary": "Proven re-offending rate",
    "count": "Frequency (proven re-offences per person)",
    "continuous": "Mean days to first proven re-offence (re-offenders only)",
}


def headline_table(effects: dict[str, Effect]) -> pd.DataFrame:
    """JDL headline layout: one row per measure.

    ``effects`` maps a measure name (``rate``, ``frequency``, ``time_to_first``) to its
    :class:`Effect`. Columns: measure, label, n_treated, n_comparison, treated, comparison,
    difference, ci_low, ci_high, significant, p_value, ratio (+ CI).
    """
    rows = []
    for measure, e in effects.items():
        rows.append(
            {
                "measure": measure,
                "label": MEASURES.get(e.kind, e.outcome),
                "outcome": e.outcome,
                "kind": e.kind,
                "n_treated": e.n_treated,
                "n_comparison": e.n_control,
                "treated": e.mean_treated,
                "comparison": e.mean_control,
                "difference": e.estimate,
                "se": e.se,
                "ci_low": e.ci_low,
                "ci_high": e.ci_high,
                "significant": e.significant,
                "p_value": e.p_value,
                "ratio": np.nan if e.ratio is None else e.ratio,
                "ratio_ci_low": np.nan if e.ratio_ci_low is None else e.ratio_ci_low,
                "ratio_ci_high": np.nan if e.ratio_ci_high is None else e.ratio_ci_high,
                "se_type": e.se_type,
            }
        )
    return pd.DataFrame(rows)
