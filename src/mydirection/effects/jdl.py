"""The Justice Data Lab reading of the effects: the headline table, the "for every 100
typical people" sentence and the sample size that would be needed to detect the observed
difference.

Test level and power come from the caller (the analysis plan): nothing here assumes 5 % or
80 %. The interval in the sentence is the Effect's own ``1 - alpha`` interval.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from mydirection.effects.att import Effect, z_critical


def _check_power(power: float) -> None:
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")


def _level(effect: Effect, alpha: float | None) -> float:
    """The test level: ``alpha`` if given (it must agree with the Effect's), else the Effect's."""
    if alpha is None:
        if effect.alpha is None:
            raise ValueError("no test level: pass alpha, or build the Effect with att(alpha=...)")
        return float(effect.alpha)
    z_critical(alpha)
    if effect.alpha is not None and not math.isclose(effect.alpha, alpha, rel_tol=1e-12):
        raise ValueError(
            f"alpha {alpha} differs from the level the Effect's interval was built at "
            f"({effect.alpha}); build the Effect with the same alpha"
        )
    return float(alpha)


def people_needed(
    effect: Effect,
    z: float | None = None,
    *,
    alpha: float | None = None,
    power: float | None = None,
    round_up: bool = True,
) -> float:
    """Treated people needed to detect the observed difference with probability ``power`` in
    a two-sided test at level ``alpha`` (both from the analysis plan).

    Assumes the standard error scales as ``1/sqrt(n)`` with the comparison group growing in
    proportion (same matching ratio and outcome variance), and solves the usual normal
    sample-size equation ``|estimate| / se(n) = z_{1-alpha/2} + z_{power}``::

        n_needed = n_treated * ((z_{1-alpha/2} + z_{power}) * se / |estimate|)^2

    rounded up (``round_up=False`` gives the exact root). It drops the far rejection tail,
    as the textbook formula does; statsmodels' ``NormalIndPower`` keeps it and differs by
    less than 1e-6 relative at 80 % power. Infinite when the estimate is exactly zero.
    This is a statement about the observed difference (post hoc); the pre-specified
    target-effect sample size is :func:`mydirection.sensitivity.power.n_needed_rate`.

    Legacy call ``people_needed(effect)`` / ``people_needed(effect, z)`` without ``power``:
    the old 50 %-power figure ``n (z se / |estimate|)^2`` with a FutureWarning.
    """
    if power is None:
        warnings.warn(
            "people_needed without power= gives the legacy 50 %-power sample size; pass alpha "
            "and power from the analysis plan",
            FutureWarning,
            stacklevel=2,
        )
        zz = z if z is not None else z_critical(_level(effect, alpha))
        total = zz
    else:
        if z is not None:
            raise ValueError("pass either z (legacy) or alpha and power, not both")
        _check_power(power)
        total = z_critical(_level(effect, alpha)) + float(stats.norm.ppf(power))
    if effect.estimate == 0 or not np.isfinite(effect.se):
        return float("inf")
    n = effect.n_treated * (total * effect.se / abs(effect.estimate)) ** 2
    return float(math.ceil(n - 1e-9)) if round_up else float(n)


def _percent(x: float) -> str:
    return f"{100 * x:.10g} %"


def _a(text: str) -> str:
    """The indefinite article for a number read aloud ("an 80 %", "a 90 %")."""
    lead = text.split(" ")[0].split(".")[0]
    return "an" if lead.startswith("8") or lead in ("11", "18") else "a"


def typical_100_sentence(
    effect: Effect,
    period: str = "a one-year period",
    *,
    alpha: float | None = None,
    power: float | None = None,
) -> str:
    """The JDL "for every 100 typical people" reading of a binary or count effect.

    The interval is the Effect's ``1 - alpha`` CI of the difference scaled to 100 treated
    people (a binary difference in proportions x 100 = people; a count difference x 100 =
    re-offences). ``alpha`` defaults to the Effect's own level (if given it must agree).
    Whether the result is significant is ``effect.significant`` (``p < alpha``), so the
    sentence and the headline table never disagree. Only a result that is *not*
    significant gets the sample-size clause, and only when the caller passes ``power``:
    the treated people needed for a ``power`` chance of detecting a difference of the
    observed size at level ``alpha`` (:func:`people_needed`); a significant result never
    says that more people would be needed.
    """
    level = _level(effect, alpha)
    lo, hi = 100 * effect.ci_low, 100 * effect.ci_high
    if effect.kind == "binary":
        noun = "people committed a proven re-offence"
    else:
        noun = "proven re-offences were committed"

    def bound(x):
        return f"{abs(x):.0f} {'fewer' if x < 0 else 'more'}"

    head = "For every 100 typical people in the treatment group, the equivalent of between "
    significant = bool(effect.p_value < level)
    if significant:
        direction = "fewer" if effect.estimate < 0 else "more"
        a, b = sorted([abs(lo), abs(hi)])
        return (
            f"{head}{a:.0f} and {b:.0f} {direction} {noun} during {period} than would "
            "have happened without the programme. This is a statistically significant result "
            f"at the {_percent(level)} level."
        )
    text = (
        f"{head}{bound(lo)} and {bound(hi)} {noun} during {period} than would have "
        "happened without the programme. The interval includes zero, so this analysis does "
        f"not show a statistically significant effect at the {_percent(level)} level"
    )
    if power is None:
        return text + "."
    need = people_needed(effect, alpha=level, power=power)
    if math.isfinite(need):
        text += (
            f"; more people would be needed: about {need:,.0f} people in the treatment group "
            f"(now {effect.n_treated:,}) for {_a(_percent(power))} {_percent(power)} chance "
            f"of detecting a difference of this size at the {_percent(level)} level, assuming "
            "the standard error falls with the square root of the sample size."
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
    difference, ci_low, ci_high, significant, p_value, ratio (+ CI), se_type, alpha and
    ci_level (the level of ci_low/ci_high).
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
                "alpha": e.alpha,
                "ci_level": e.ci_level,
            }
        )
    return pd.DataFrame(rows)
