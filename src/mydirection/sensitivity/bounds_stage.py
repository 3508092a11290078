"""The hidden-bias stage: Rosenbaum bounds for the rate (McNemar / matched sets) and, on 1:1
pairs, for the frequency (Wilcoxon signed rank), and E-values of the risk ratio and of the
hazard ratio, all at the plan's one test level.

Rules, in order:

1. The bounds are one-sided tests at ``analysis.alpha / 2``, the level that matches the
   two-sided headline test, in the direction of the observed difference.
2. A crossing Gamma is computed only when the headline itself is significant; otherwise the
   status says there is no finding for a hidden bias to explain away.
3. Without matched sets (IPW) there are no bounds; with replacement sets share comparators
   and the bounds are an approximation.
4. The E-value of the hazard ratio uses VanderWeele's common-outcome conversion unless the
   comparison group's rate is below ``sensitivity.rare_outcome_threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from mydirection.reporting.numbers import Numbers
from mydirection.sensitivity.evalue import evalue_table
from mydirection.sensitivity.rosenbaum import (
    BoundsSummary,
    matched_sets,
    rosenbaum_summary,
    rosenbaum_table,
)
from mydirection.sensitivity.signed_rank import (
    pair_differences,
    signed_rank_summary,
    signed_rank_table,
)
from mydirection.settings import BoundsSettings

RATE_COUNTS = [
    "reoffending.n_treated",
    "reoffending.n_comparison",
    "reoffending.n_reoffenders_treated",
    "reoffending.n_reoffenders_comparison",
]
HR_COUNTS = ["survival.n_reoffenders_treated", "survival.n_reoffenders_comparison"]


@dataclass
class BoundsResult:
    rate_table: pd.DataFrame | None
    rate: BoundsSummary | None
    frequency_table: pd.DataFrame | None
    frequency: BoundsSummary | None
    frequency_unavailable: str
    evalues: pd.DataFrame
    settings: BoundsSettings

    def _summary(self, n: Numbers, prefix: str, s: BoundsSummary | None, what: str, why: str):
        if s is None:
            n.add(
                prefix + "bounds_status",
                "not_available",
                "text",
                f"Rosenbaum bounds ({what}): status",
            )
            n.add(prefix + "bounds_text", why, "text", f"Rosenbaum bounds ({what})")
            return
        sets = n.count(prefix + "informative_sets", s.n_informative,
                       f"Rosenbaum bounds ({what}): informative matched sets", unit="matched sets",
                       people=True)  # fmt: skip
        n.add(prefix + "bounds_status", s.status, "text", f"Rosenbaum bounds ({what}): status")
        n.add(
            prefix + "bounds_text",
            s.text,
            "text",
            f"Rosenbaum bounds ({what})",
            derived_from=[sets],
        )
        n.add(prefix + "p_no_hidden_bias", s.p_no_hidden_bias, "p_value",
              f"Rosenbaum bounds ({what}): one-sided p-value with no hidden bias",
              derived_from=[sets])  # fmt: skip
        if s.status == "sensitive":
            n.add(prefix + "gamma_crossing", s.gamma_crossing, "gamma",
                  f"Rosenbaum bounds ({what}): Gamma at which the result stops being significant",
                  derived_from=[sets], decimals=2)  # fmt: skip

    def numbers(self) -> Numbers:
        n = Numbers()
        S = "sensitivity."
        n.add(S + "bounds_alpha", self.settings.alpha / 2, "p_value",
              "One-sided level of the Rosenbaum bounds (half the two-sided test level)")  # fmt: skip
        if self.rate is not None:
            n.add(S + "matched_sets", self.rate.n_sets, "count", "Matched sets in the bounds",
                  unit="matched sets", people=True)  # fmt: skip
        self._summary(n, S + "", self.rate, "re-offending rate",
                      "not available without matched sets (inverse-probability weighting)")  # fmt: skip
        self._summary(n, S + "frequency_", self.frequency, "re-offences per person",
                      self.frequency_unavailable)  # fmt: skip
        ev = self.evalues.set_index("measure")
        if "rr" in ev.index:
            n.add(S + "evalue_rr", ev.loc["rr", "evalue_estimate"], "ratio",
                  "E-value of the risk ratio", decimals=2, derived_from=RATE_COUNTS)  # fmt: skip
            n.add(S + "evalue_ci", ev.loc["rr", "evalue_ci"], "ratio",
                  "E-value of the risk ratio's confidence limit nearer no effect",
                  decimals=2, derived_from=RATE_COUNTS)  # fmt: skip
        if "hr" in ev.index:
            n.add(S + "evalue_hr", ev.loc["hr", "evalue_estimate"], "ratio",
                  "E-value of the hazard ratio (converted to a risk ratio)", decimals=2,
                  derived_from=HR_COUNTS)  # fmt: skip
            n.add(S + "evalue_hr_ci", ev.loc["hr", "evalue_ci"], "ratio",
                  "E-value of the hazard ratio's confidence limit nearer no effect", decimals=2,
                  derived_from=HR_COUNTS)  # fmt: skip
        return n


def _direction(estimate: float) -> str:
    return "less" if estimate < 0 else "greater"


def analyse_bounds(
    sample: pd.DataFrame,
    pairs: pd.DataFrame,
    headline,
    cox: pd.DataFrame,
    settings: BoundsSettings,
) -> BoundsResult:
    """Rules 1-4 of the module docstring. ``headline``: the :class:`~mydirection.pipeline.
    Headline` of the same sample (its significance decides rule 2); ``cox``: the survival
    rule's Cox table (row ``treatment``)."""
    a = settings.alpha / 2
    grid, gmax = list(settings.gamma_grid), settings.gamma_max
    rate, freq = headline.rate, headline.frequency
    r_table = r_sum = f_table = f_sum = None
    why = "not available without matched pairs"
    if len(pairs):
        alt = _direction(rate.estimate)
        sets = matched_sets(pairs, sample, "reoffended", alternative=alt)
        r_table = rosenbaum_table(sets, grid, alpha=a)
        r_sum = rosenbaum_summary(
            sets, a, gamma_max=gmax, alternative=alt, headline_significant=rate.significant
        )
        alt_f = _direction(freq.estimate)
        try:
            d = pair_differences(pairs, sample, "n_reoffences", alternative=alt_f)
        except ValueError:
            why = "not available: the signed-rank bounds need 1:1 matched pairs"
        else:
            f_table = signed_rank_table(d, grid, a)
            f_sum = signed_rank_summary(
                d, a, gamma_max=gmax, alternative=alt_f, headline_significant=freq.significant
            )
    rows = []
    if rate.ratio is not None and math.isfinite(rate.ratio) and rate.ratio > 0:
        rows.append(
            {
                "measure": "rr",
                **evalue_table(rate.ratio, rate.ratio_ci_low, rate.ratio_ci_high, "rr"),
            }
        )
    hr = cox[cox["covariate"].astype(str) == "treatment"]
    if len(hr):
        h = hr.iloc[0]
        rare = rate.mean_comparator < settings.rare_outcome_threshold
        rows.append(
            {
                "measure": "hr",
                **evalue_table(h["hr"], h["hr_ci_low"], h["hr_ci_high"], "hr", rare=rare),
            }
        )
    return BoundsResult(
        rate_table=r_table,
        rate=r_sum,
        frequency_table=f_table,
        frequency=f_sum,
        frequency_unavailable=why,
        evalues=pd.DataFrame(
            rows, columns=["measure", "rr", "rr_lower", "rr_upper", "evalue_estimate", "evalue_ci"]
        ),
        settings=settings,
    )
