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

from mydirection import normal
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
        total = z_critical(_level(effect, alpha)) + float(normal.norm_ppf(power))
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
                "n_comparison": e.n_comparators,
                "treated": e.mean_treated,
                "comparison": e.mean_comparator,
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


def _period(followup_days: int) -> str:
    return "a one-year period" if followup_days == 365 else f"{followup_days} days"


def headline_numbers(
    rate: Effect,
    frequency: Effect,
    time_to_first: Effect | None,
    sample: pd.DataFrame,
    *,
    power: float,
    followup_days: int,
):
    """The registry numbers of the JDL headline (``reoffending.*``), every estimate derived
    from the group counts it rests on (so a small group suppresses what it would reveal)."""
    from mydirection.reporting.numbers import Numbers

    n = Numbers()
    R = "reoffending."
    t = sample["treated"].astype(bool) & sample["reoffended"].notna()
    c = ~sample["treated"].astype(bool) & sample["reoffended"].notna()
    nt = n.count(
        R + "n_treated", rate.n_treated, "Participants analysed (matched, complete follow-up)"
    )
    nc = n.count(R + "n_comparison", rate.n_comparators, "Comparators analysed", unit="comparators")
    rt = n.count(R + "n_reoffenders_treated", int(sample.loc[t, "reoffended"].sum()),
                 "Participants with a proven re-offence")  # fmt: skip
    rc = n.count(R + "n_reoffenders_comparison", int(sample.loc[c, "reoffended"].sum()),
                 "Comparators with a proven re-offence", unit="comparators")  # fmt: skip
    n.count(R + "n_incomplete_followup", int(sample.attrs.get("n_incomplete", 0)),
            "Matched people left out for incomplete follow-up")  # fmt: skip
    treated, comparison, both = [nt, rt], [nc, rc], [nt, rt, nc, rc]

    def add(key, value, kind, label, src=both, **kw):
        return n.add(R + key, value, kind, label, derived_from=src, **kw)

    add(
        "rate_treated",
        rate.mean_treated,
        "proportion",
        "Proven re-offending rate, participants",
        treated,
    )
    add("rate_comparison", rate.mean_comparator, "proportion",
        "Proven re-offending rate, comparison group (weighted)", comparison)  # fmt: skip
    add("rate_difference", rate.estimate, "pp", "Difference in the re-offending rate")
    add(
        "rate_difference_ci_low", rate.ci_low, "pp", "Difference in the rate: interval, lower limit"
    )
    add(
        "rate_difference_ci_high",
        rate.ci_high,
        "pp",
        "Difference in the rate: interval, upper limit",
    )
    add("rate_difference_p", rate.p_value, "p_value", "Difference in the rate: p-value")
    add("rate_significant", "yes" if rate.significant else "no", "text",
        "Difference in the rate statistically significant")  # fmt: skip
    add(
        "risk_ratio",
        rate.ratio,
        "ratio",
        "Risk ratio of proven re-offending (participants / comparison)",
    )
    add("risk_ratio_ci_low", rate.ratio_ci_low, "ratio", "Risk ratio: interval, lower limit")
    add("risk_ratio_ci_high", rate.ratio_ci_high, "ratio", "Risk ratio: interval, upper limit")
    per = "re-offences per person"
    add("frequency_treated", frequency.mean_treated, "mean", "Proven re-offences per participant",
        treated, unit=per)  # fmt: skip
    add("frequency_comparison", frequency.mean_comparator, "mean",
        "Proven re-offences per comparator (weighted)", comparison, unit=per)  # fmt: skip
    add(
        "frequency_difference",
        frequency.estimate,
        "estimate",
        "Difference in re-offences per person",
        unit=per,
    )
    add("frequency_difference_ci_low", frequency.ci_low, "estimate",
        "Difference in re-offences per person: interval, lower limit", unit=per)  # fmt: skip
    add("frequency_difference_ci_high", frequency.ci_high, "estimate",
        "Difference in re-offences per person: interval, upper limit", unit=per)  # fmt: skip
    add(
        "frequency_difference_p",
        frequency.p_value,
        "p_value",
        "Difference in re-offences per person: p-value",
    )
    add("frequency_significant", "yes" if frequency.significant else "no", "text",
        "Difference in re-offences per person statistically significant")  # fmt: skip
    add(
        "rate_ratio",
        frequency.ratio,
        "ratio",
        "Ratio of re-offences per person (participants / comparison)",
    )
    add(
        "rate_ratio_ci_low",
        frequency.ratio_ci_low,
        "ratio",
        "Ratio of re-offences per person: interval, lower limit",
    )
    add(
        "rate_ratio_ci_high",
        frequency.ratio_ci_high,
        "ratio",
        "Ratio of re-offences per person: interval, upper limit",
    )
    period = _period(followup_days)
    add("typical_100_sentence", typical_100_sentence(rate, period, power=power), "text",
        "The Justice Data Lab's reading for 100 typical people (rate)")  # fmt: skip
    add("frequency_typical_100_sentence", typical_100_sentence(frequency, period, power=power),
        "text", "The Justice Data Lab's reading for 100 typical people (frequency)")  # fmt: skip
    if not rate.significant:
        need = people_needed(rate, power=power)
        add("people_needed", float(need) if math.isfinite(need) else None, "count",
            "Participants needed to detect a difference of the observed size at the plan's power",
            unit="participants", decimals=0)  # fmt: skip
    add("se_type", rate.se_type, "text", "Standard errors of the differences")
    if time_to_first is not None:
        for name, value, label in (
            ("treated", time_to_first.mean_treated, "Days to first proven re-offence, participants who re-offended"),
            ("comparison", time_to_first.mean_comparator, "Days to first proven re-offence, comparators who re-offended"),
            ("difference", time_to_first.estimate, "Difference in days to first proven re-offence"),
            ("difference_ci_low", time_to_first.ci_low, "Difference in days to first re-offence: interval, lower limit"),
            ("difference_ci_high", time_to_first.ci_high, "Difference in days to first re-offence: interval, upper limit"),
        ):  # fmt: skip
            add(f"time_to_first_{name}", value, "days", label, unit="days")
        add("time_to_first_difference_p", time_to_first.p_value, "p_value",
            "Difference in days to first re-offence: p-value")  # fmt: skip
    return n
