"""Offending before and after the index date: the person x quarter panel of the analysis
sample, the difference in differences (pooled and interaction-weighted by enrolment
cohort), the event study, and what its leads can and cannot show.

Rules, in order:

1. The panel holds the headline's analysis sample, ``quarters_before`` quarters before and
   ``quarters_after`` after the index date, proven offences (no breaches) per quarter.
2. Person, calendar-quarter and common event-time effects; the DiD is the participants'
   post-minus-pre change against the comparators' (``mydirection.effects.panel``), and the
   interaction-weighted version averages the enrolment cohorts' effects with their shares
   (Sun & Abraham 2021; ``panel_cohorts``).
3. Standard errors are clustered by matched set without replacement, else by person
   (``effects.panel.cluster: auto``).
4. The leads are not a test of parallel trends here: the quarters inside a matching
   covariate's window (``offences_last_12m``) are balanced by the matching itself, and most
   pre-index offending is the index offence (``panel_leads``). The numbers say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from mydirection.effects.panel import (
    did,
    event_study,
    offence_panel,
    plot_event_study,
    resolve_cluster,
)
from mydirection.effects.panel_cohorts import did_by_cohort
from mydirection.effects.panel_leads import lead_diagnostics
from mydirection.reporting.numbers import Numbers
from mydirection.settings import AnalysisSpec, PanelSettings

log = logging.getLogger("mydirection")
CONVICTION_COLUMNS = ["person_id", "offence_date", "disposal_date", "offence_group"]
CAPTION = (
    "Event study: the difference between participants and the matched comparison group in "
    "proven offences per person per quarter, relative to the quarter before the index date, "
    "with person, calendar-quarter and event-time effects and {panel.confidence} intervals "
    "clustered by {panel.cluster}. Shaded quarters are balanced by the matching itself."
)


def _float(value) -> float | None:
    return None if pd.isna(value) else float(value)


@dataclass
class BeforeAfterResult:
    panel: pd.DataFrame
    did: pd.DataFrame
    did_by_cohort: pd.DataFrame
    event_study: pd.DataFrame
    leads: pd.DataFrame
    cluster: str
    settings: PanelSettings

    def numbers(self) -> Numbers:
        n = Numbers()
        P = "panel."
        unit = "offences per person per quarter"
        people = n.count(P + "n_people", int(self.did["n_people"].iloc[0]), "People in the panel")
        row = self.did.iloc[0]
        src = [people]
        for key, col, label in (
            ("did", "estimate", "Difference in differences"),
            ("did_ci_low", "ci_low", "Difference in differences: interval, lower limit"),
            ("did_ci_high", "ci_high", "Difference in differences: interval, upper limit"),
        ):
            n.add(
                P + key, float(row[col]), "estimate", label, unit=unit, derived_from=src, decimals=3
            )
        n.add(P + "did_p", float(row["p_value"]), "p_value", "Difference in differences: p-value")
        iw = self.did_by_cohort.set_index("term").loc["iw_att"]
        reason = self.did_by_cohort.attrs.get("not_estimable")
        if reason:
            n.add(P + "did_iw_not_estimable", reason, "text",
                  "Why the interaction-weighted difference in differences is not estimable")  # fmt: skip
        for key, col, label in (
            ("did_iw", "estimate", "Difference in differences, interaction-weighted by enrolment cohort"),
            ("did_iw_ci_low", "ci_low", "Interaction-weighted difference in differences: interval, lower limit"),
            ("did_iw_ci_high", "ci_high", "Interaction-weighted difference in differences: interval, upper limit"),
        ):  # fmt: skip
            n.add(P + key, _float(iw[col]), "estimate", label, unit=unit, derived_from=src,
                  decimals=3)  # fmt: skip
        n.add(P + "did_iw_p", _float(iw["p_value"]), "p_value", "Interaction-weighted DiD: p-value")
        homog = self.did_by_cohort.attrs.get("cohort_homogeneity_p")
        if homog is not None:
            n.add(P + "cohort_homogeneity_p", float(homog), "p_value",
                  "Test that every enrolment cohort has the same effect: p-value")  # fmt: skip
        n.add(P + "leads_joint_p", self.event_study.attrs["leads_joint_p"], "p_value",
              "Joint test that all leads are zero: p-value (not a test of parallel trends here)")  # fmt: skip
        window = self.leads.attrs.get("window_leads", [])
        n.add(P + "leads_window", ", ".join(str(q) for q in window) or "none", "text",
              "Quarters before the index date balanced by the matching itself")  # fmt: skip
        n.add(P + "leads_share_pre_in_window", self.leads.attrs.get("share_pre_in_window"),
              "proportion", "Share of pre-index offending in the quarters the matching balances")  # fmt: skip
        share = self.leads.attrs.get("share_pre_proven_on_or_after_index")
        if share is not None:
            n.add(P + "leads_share_index_offence", share, "proportion",
                  "Share of pre-index offences proven on or after the index date (mostly the index offence)")  # fmt: skip
        n.add(P + "cluster", {"subclass": "matched set", "person": "person"}[self.cluster],
              "text", "Clusters of the panel's standard errors")  # fmt: skip
        n.add(
            P + "confidence",
            1 - self.settings.alpha,
            "proportion",
            "Confidence level of the intervals",
            decimals=0,
        )
        return n

    def plot(self, path) -> None:
        plot_event_study(
            self.event_study,
            path,
            "Proven offences around the index date: My Direction minus comparison",
            level=1 - self.settings.alpha,
            window_leads=self.leads.attrs.get("window_leads", []),
        )


def _did_by_cohort(panel: pd.DataFrame, reference: int, options: dict, pooled) -> pd.DataFrame:
    """:func:`did_by_cohort`, or, when a cohort's quarters have no comparator (a small
    pilot), an ``iw_att`` row of missing estimates (the panel's counts from the ``pooled``
    DiD) whose ``attrs["not_estimable"]`` says why: the pooled DiD is still reported."""
    try:
        return did_by_cohort(panel, reference=reference, **options)
    except ValueError as err:
        nan = float("nan")
        row = {"term": "iw_att", "cohort": None, "share": 1.0, "estimate": nan, "se": nan,
               "ci_low": nan, "ci_high": nan, "p_value": nan}  # fmt: skip
        counts = pooled[["n_people", "n_rows", "n_clusters"]].iloc[0].to_dict()
        out = pd.DataFrame([row | {k: int(v) for k, v in counts.items()}])
        log.info("event study: interaction-weighted DiD not estimable: %s", err)
        out.attrs["not_estimable"] = (
            "an enrolment cohort has quarters in which no comparator is observed"
        )
        return out


def before_after(
    sample: pd.DataFrame,
    convictions: pd.DataFrame,
    spec: AnalysisSpec,
    settings: PanelSettings,
) -> BeforeAfterResult:
    """Rules 1-4 of the module docstring."""
    s = settings
    replace = bool(spec.replace or spec.method == "ipw")
    cluster = resolve_cluster(s.cluster, replace, sample.get("subclass"))
    panel = offence_panel(
        sample, convictions, quarters_before=s.quarters_before, quarters_after=s.quarters_after
    )
    level = 1 - s.alpha
    options = {"cluster": cluster, "level": level}
    pooled = did(panel, **options)
    return BeforeAfterResult(
        panel=panel,
        did=pooled,
        did_by_cohort=_did_by_cohort(panel, s.reference_quarter, options, pooled),
        event_study=event_study(panel, reference=s.reference_quarter, **options),
        leads=lead_diagnostics(panel, covariates=list(spec.covariates)),
        cluster=cluster,
        settings=s,
    )
