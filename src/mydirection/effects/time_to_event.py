"""Time to first proven re-offence on the analysis sample: weighted Kaplan-Meier curves, the
Cox hazard ratio (robust SEs clustered by matched set), its proportional-hazards test, and
the disclosure-safe figure.

Rules, in order:

1. The sample is the headline's analysis sample (people with weight > 0 and complete
   follow-up); each person's time is ``days_to_first`` with ``event`` = proven re-offence.
2. Standard errors are clustered by matched set when matching was without replacement, by
   person otherwise (IPW, or with replacement).
3. Kaplan-Meier variance follows R's survfit: Greenwood with whole-number weights, the
   robust (infinitesimal jackknife) variance otherwise, clustered by matched set when the
   weights are not whole numbers and sets exist.
4. The proportional-hazards test is the scaled Schoenfeld residual score test on the
   Kaplan-Meier time scale, robust variance (R's model-based figure is kept beside it).
5. Justice Data Lab practice: the hazard ratio is a headline only with at least
   ``effects.min_reoffenders_for_survival`` re-offenders among the participants; otherwise it
   is shown with that caveat.
6. The figure shows the curves only at days between which either no one or at least the
   suppression threshold of people re-offended or left follow-up, and numbers at risk as
   people (``mydirection.effects.km_figure``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mydirection.effects.km_figure import km_for_publication, plot_published_km
from mydirection.effects.ph_test import ph_test
from mydirection.effects.survival import cox, kaplan_meier
from mydirection.errors import UserError
from mydirection.reporting.numbers import Numbers
from mydirection.settings import AnalysisSpec, SurvivalSettings

CAPTION = (
    "Kaplan-Meier estimates of the proportion without a proven re-offence, participants and "
    "the matched comparison group (weighted by the matching weights), at {survival.alpha_confidence} "
    "confidence ({survival.km_variance} variance). The curves are shown only at days "
    "between which either no one or at least {registry.suppression_threshold} people "
    "re-offended or left follow-up, joined by straight lines; numbers at risk are people."
)


@dataclass
class SurvivalResult:
    km: pd.DataFrame
    cox: pd.DataFrame
    ph: pd.DataFrame
    n_reoffenders_treated: int
    n_reoffenders_comparison: int
    settings: SurvivalSettings

    @property
    def headline_ok(self) -> bool:
        return self.n_reoffenders_treated >= self.settings.min_reoffenders

    def cox_table(self) -> pd.DataFrame:
        out = self.cox.reset_index()
        out["se_type"] = self.cox.attrs["se_type"]
        out["n"] = self.cox.attrs["n"]
        out["events"] = self.cox.attrs["events"]
        return out

    def numbers(self) -> Numbers:
        n = Numbers()
        S = "survival."
        s = self.settings
        rt = n.count(S + "n_reoffenders_treated", self.n_reoffenders_treated,
                     "Participants who re-offended (time to first re-offence)")  # fmt: skip
        rc = n.count(S + "n_reoffenders_comparison", self.n_reoffenders_comparison,
                     "Comparators who re-offended (time to first re-offence)", unit="comparators")  # fmt: skip
        hr = self.cox.loc["treatment"]
        src = [rt, rc]
        for key, col, kind, label in (
            ("hazard_ratio", "hr", "ratio", "Hazard ratio (participants / comparison)"),
            ("hazard_ratio_ci_low", "hr_ci_low", "ratio", "Hazard ratio: interval, lower limit"),
            ("hazard_ratio_ci_high", "hr_ci_high", "ratio", "Hazard ratio: interval, upper limit"),
            ("hazard_ratio_p", "p", "p_value", "Hazard ratio: p-value"),
        ):
            n.add(S + key, float(hr[col]), kind, label, derived_from=src)
        n.add(S + "headline_ok", "yes" if self.headline_ok else "no", "text",
              "Enough participants re-offended for the hazard ratio to be a headline")  # fmt: skip
        n.add(S + "min_reoffenders", s.min_reoffenders, "count",
              "Participants who must re-offend for the hazard ratio to be a headline",
              unit="participants")  # fmt: skip
        n.add(
            S + "se_type", self.cox.attrs["se_type"], "text", "Standard errors of the hazard ratio"
        )
        glob = self.ph.set_index("term").loc["GLOBAL"]
        n.add(
            S + "ph_chisq",
            float(glob["chisq"]),
            "estimate",
            "Proportional-hazards test: chi-squared",
            derived_from=src,
        )
        n.add(
            S + "ph_df",
            int(glob["df"]),
            "count",
            "Proportional-hazards test: degrees of freedom",
            unit="df",
        )
        n.add(
            S + "ph_p",
            float(glob["p"]),
            "p_value",
            "Proportional-hazards test: p-value",
            derived_from=src,
        )
        n.add(S + "ph_significant", "yes" if glob["p"] < s.alpha else "no", "text",
              "The hazard ratio changes over follow-up (proportional-hazards test significant)")  # fmt: skip
        n.add(
            S + "km_variance",
            str(self.km.attrs.get("variance", "")),
            "text",
            "Variance of the Kaplan-Meier curves",
        )
        n.add(
            S + "alpha_confidence",
            1 - s.alpha,
            "proportion",
            "Confidence level of the bands",
            decimals=0,
        )
        return n

    def plot(self, path) -> None:
        published = km_for_publication(
            self.km, threshold=self.settings.threshold, ticks=list(self.settings.at_risk_days)
        )
        plot_published_km(
            published,
            path,
            "Time to first proven re-offence (matched sample)",
            labels={False: "Comparison", True: "My Direction"},
        )


def analyse_survival(
    sample: pd.DataFrame, spec: AnalysisSpec, settings: SurvivalSettings
) -> SurvivalResult:
    """Rules 1-5 of the module docstring."""
    data = sample[sample["days_to_first"].notna() & (sample["weights"] > 0)].copy()
    data["treatment"] = data["treated"].astype(bool).astype(float)
    matched_sets = spec.method != "ipw" and not spec.replace and data["subclass"].notna().all()
    data["cluster"] = data["subclass"] if matched_sets else range(len(data))
    whole = bool((data["weights"] == data["weights"].round()).all())
    km = kaplan_meier(
        data,
        "days_to_first",
        "event",
        group="treated",
        weights="weights",
        cluster="subclass" if matched_sets and not whole else None,
        alpha=settings.alpha,
    )
    options = {"ties": settings.ties, "weights": "weights", "cluster": "cluster"}
    try:
        table = cox(data, "days_to_first", "event", ["treatment"], alpha=settings.alpha, **options)
        ph = ph_test(
            data,
            "days_to_first",
            "event",
            ["treatment"],
            transform="km",
            variance="robust",
            **options,
        )
    except ValueError as err:
        raise UserError(
            f"survival analysis: {err} among the matched people (column event); it needs "
            "re-offences in both groups"
        ) from err
    t = data["treated"].astype(bool)
    return SurvivalResult(
        km=km,
        cox=table,
        ph=ph,
        n_reoffenders_treated=int(data.loc[t, "event"].sum()),
        n_reoffenders_comparison=int(data.loc[~t, "event"].sum()),
        settings=settings,
    )
