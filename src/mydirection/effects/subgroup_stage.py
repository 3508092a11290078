"""The subgroup stage: the rate difference within each level of the plan's subgrouping
variables, Holm-adjusted p-values, a heterogeneity test per variable, within-level balance
and the forest plot. Exploratory: each level rests on fewer people and several were looked
at, so the report leads with the Holm-adjusted p-values and the heterogeneity tests.

Matched sets follow their participant's level; a comparator matched with replacement to
participants in two levels counts in each with its weight share
(``mydirection.effects.subgroups``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from mydirection.effects.att import att
from mydirection.effects.subgroups import (
    ogrs3_band,
    plot_forest,
    subgroup_effects,
    subgroup_heterogeneity,
)
from mydirection.errors import UserError
from mydirection.reporting.numbers import Numbers
from mydirection.settings import AnalysisSpec, SubgroupSettings

CAPTION = (
    "Difference in the proven re-offending rate (participants minus the matched comparison "
    "group, percentage points) overall and by subgroup, with {subgroups.confidence} "
    "intervals; only subgroups with at least {config.effects.min_subgroup_treated} "
    "participants and {config.effects.min_subgroup_comparison} comparators are shown."
)


def _key(text) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


@dataclass
class SubgroupResult:
    table: pd.DataFrame
    heterogeneity: pd.DataFrame
    overall: object
    settings: SubgroupSettings

    def numbers(self) -> Numbers:
        from mydirection.reporting import labels

        n = Numbers()
        t = self.table
        n.add("subgroups.n_levels", len(t), "count", "Subgroup levels looked at", unit="levels")
        n.add("subgroups.n_shown", int(t["shown"].sum()), "count",
              "Subgroup levels large enough to show an estimate", unit="levels")  # fmt: skip
        n.add("subgroups.confidence", 1 - self.settings.alpha, "proportion",
              "Confidence level of the subgroup intervals", decimals=0)  # fmt: skip
        total = "reoffending.n_treated"
        for var, rows in t.groupby("variable", sort=False):
            parts = []
            for r in rows.itertuples():
                k = f"subgroups.{_key(var)}.{_key(r.level)}."
                name = labels.covariate(var, r.level)
                nt = n.count(k + "n_treated", r.n_treated, f"{name}: participants")
                nc = n.count(
                    k + "n_comparison", r.n_comparison, f"{name}: comparators", unit="comparators"
                )
                parts.append(nt)
                if not r.shown:
                    continue
                src = [nt, nc]
                n.add(
                    k + "rate_difference",
                    r.estimate,
                    "pp",
                    f"{name}: difference in the rate",
                    derived_from=src,
                )
                n.add(
                    k + "rate_difference_ci_low",
                    r.ci_low,
                    "pp",
                    f"{name}: interval, lower limit",
                    derived_from=src,
                )
                n.add(
                    k + "rate_difference_ci_high",
                    r.ci_high,
                    "pp",
                    f"{name}: interval, upper limit",
                    derived_from=src,
                )
                n.add(
                    k + "rate_difference_p",
                    r.p_value,
                    "p_value",
                    f"{name}: p-value",
                    derived_from=src,
                )
                n.add(
                    k + "p_holm",
                    r.p_holm,
                    "p_value",
                    f"{name}: p-value, Holm-adjusted",
                    derived_from=src,
                )
                n.add(k + "max_abs_smd", r.max_abs_smd, "estimate",
                      f"{name}: largest |standardised mean difference| within the level",
                      derived_from=src, decimals=2, signed=False)  # fmt: skip
            if int(rows["n_treated"].sum()) == self.overall.n_treated:
                n.relation(total, parts)  # the levels partition the participants
        for r in self.heterogeneity.itertuples():
            k = f"subgroups.{_key(r.variable)}.heterogeneity_p"
            n.add(k, r.p_value, "p_value",
                  f"{labels.variable(r.variable)}: test that the effect is the same at every level shown")  # fmt: skip
        return n

    def plot(self, path) -> None:
        plot_forest(
            self.table,
            self.overall,
            path,
            "Proven re-offending rate difference by subgroup (matched sample)",
            ci_level=1 - self.settings.alpha,
        )


def add_bands(sample: pd.DataFrame, settings: SubgroupSettings) -> pd.DataFrame:
    """The sample with the OGRS3 band (when ``ogrs3_band`` is a subgroup); clear errors."""
    band = dict(settings.ogrs3_band)
    data = sample.copy()
    if "ogrs3_band" in settings.variables:
        if band["column"] not in data:
            raise UserError(
                f"config effects.ogrs3_band.column: {band['column']} is not a cohort column; "
                "set it or drop ogrs3_band from effects.subgroups"
            )
        if len(band["labels"]) != len(band["cuts"]) + 1:
            raise UserError("config effects.ogrs3_band: give one more label than cut points")
        data["ogrs3_band"] = ogrs3_band(data[band["column"]], band["cuts"], band["labels"])
    missing = [v for v in settings.variables if v not in data]
    if missing:
        raise UserError(
            f"config effects.subgroups: {missing[0]} is not a cohort column; use cohort "
            "columns (docs/stages.md) or ogrs3_band"
        )
    return data


def analyse_subgroups(
    sample: pd.DataFrame, pairs: pd.DataFrame, spec: AnalysisSpec, settings: SubgroupSettings
) -> SubgroupResult:
    from mydirection.pipeline import sample_object, se_type

    m = sample_object(add_bands(sample, settings), spec, pairs)
    se = se_type(spec)
    s = settings
    table = subgroup_effects(
        m, "reoffended", list(s.variables), "binary", s.min_treated, s.min_comparison,
        alpha=s.alpha, se=se, balance_covariates=list(spec.covariates),
        categorical=list(spec.categorical),
    )  # fmt: skip
    het = subgroup_heterogeneity(
        m, "reoffended", list(s.variables), s.min_treated, s.min_comparison, se=se
    )
    overall = att(m, "reoffended", kind="binary", alpha=s.alpha, se=se)
    table = table.rename(columns={"n_comparators": "n_comparison"})
    return SubgroupResult(table=table, heterogeneity=het, overall=overall, settings=s)
