"""The fidelity stage: one function from the cleaned pilot records to a result object.

:func:`score_fidelity` applies, in order, the input checks
(:mod:`mydirection.fidelity.inputs`), the scoring periods and items
(:mod:`~mydirection.fidelity.items`), the person index, bands, alternative weights, item
coverage and case-manager indices (:mod:`~mydirection.fidelity.index`) and the monthly
trend (:mod:`~mydirection.fidelity.trend`). It reads no outcome and no matching file.

:class:`FidelityResult` holds the tables and reports the stage's numbers
(:meth:`~FidelityResult.numbers`): every number labelled, counts of people (participants and
case managers) marked ``people`` so that disclosure control can suppress them, and the
additive relations between them (enrolled = scored + not scored; scored = the three bands;
case managers = in the staff extract + not; trained + not trained; for each 0/1 item,
scorable = met + not met) so that no suppressed count can be worked out from the others.
Its figures are drawn from the same numbers after disclosure control
(:mod:`mydirection.fidelity.plots`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from mydirection.fidelity.index import (
    BANDS,
    alternative_indices,
    case_manager_index,
    item_coverage,
    mean_ci,
    person_index,
)
from mydirection.fidelity.inputs import check_inputs, treated_enrolments
from mydirection.fidelity.items import (
    BINARY_ITEMS,
    ITEM_LABELS,
    ITEMS,
    enrolment_periods,
    score_items,
)
from mydirection.fidelity.plots import (
    hidden_parts,
    plot_case_managers,
    plot_distribution,
    plot_items,
    plot_monthly,
)
from mydirection.fidelity.settings import FidelitySettings
from mydirection.fidelity.trend import Slope, monthly_index, monthly_slope
from mydirection.reporting import disclosure
from mydirection.reporting.numbers import Numbers
from mydirection.settings import TestLevel

log = logging.getLogger("mydirection")

P = "fidelity."
CM = {"unit": "case managers", "people": True}  # a case manager is a person

CAPTIONS = {
    "distribution": (
        "Distribution of the fidelity index (out of a hundred) over the {fidelity.n_scored} "
        "participants "
        "with enough scorable items. Bins never cross a band cut-off and are merged within "
        "a band until every bar holds at least {registry.suppression_threshold} people (bar "
        "areas are proportional to people); a band whose count is suppressed shows no bars. "
        "Dashed lines mark the bands: low below {config.fidelity.bands.moderate}, high from "
        "{config.fidelity.bands.high}."
    ),
    "items": (
        "Adherence item by item: the mean item score among the people for whom the item "
        "could be scored (their number beside each item), coloured by Carroll et al. "
        "adherence domain. An item whose number of scorable people is suppressed is not shown."
    ),
    "monthly": (
        "Mean fidelity index by month of enrolment with {fidelity.confidence_level} confidence "
        "intervals and the fitted linear trend ({fidelity.monthly_slope} points a month, "
        "interval {fidelity.monthly_slope_ci_low} to {fidelity.monthly_slope_ci_high}); the "
        "lower panel shows the participants scored each month. A month with fewer than "
        "{registry.suppression_threshold} people scored, or one that could otherwise be worked "
        "out from the total, shows neither its mean nor its count."
    ),
    "case_managers": (
        "Funnel plot: each case manager's mean fidelity index against the number of their "
        "cases scored, with control limits around the overall mean (dashed: "
        "{fidelity.confidence_level} confidence; dotted: {config.fidelity.funnel_outer_z} "
        "standard errors). {training} Case managers with fewer than "
        "{registry.suppression_threshold} scored cases, and any others needed so that none "
        "can be worked out from the total, are not shown."
    ),
}
TRAINING = {
    True: "Colour shows whether they were trained before their first enrolment.",
    False: (
        "Training status is not shown: fewer than {registry.suppression_threshold} case "
        "managers were trained, or were not trained, before their first enrolment."
    ),
}


def _decimals(share: float) -> int:
    """Decimals that print a confidence level exactly (95%, 99.5%, 99.95%)."""
    for d in range(4):
        if abs(round(100 * share, d) - 100 * share) < 1e-9:
            return d
    return 4


@dataclass
class FidelityResult:
    """The fidelity stage's tables, numbers and figures (see the module docstring)."""

    items: pd.DataFrame
    person: pd.DataFrame
    alternatives: pd.DataFrame
    case_managers: pd.DataFrame
    coverage: pd.DataFrame
    monthly: pd.DataFrame
    slope: Slope
    settings: FidelitySettings
    alpha: float
    #: Treated cohort members without an enrolment record (not scored at all).
    n_treated_without_enrolment: int = 0

    # ------------------------------------------------------------------ numbers
    def numbers(self) -> Numbers:
        n = Numbers()
        p, s = self.person, self.settings
        idx = p["index"].dropna()
        enrolled = n.count(
            P + "n_enrolled", len(p), "Participants scored for fidelity (with an enrolment record)"
        )
        scored = n.count(
            P + "n_scored", len(idx), "Participants with a fidelity index (enough scorable items)"
        )
        unscored = n.count(
            P + "n_not_scored",
            len(p) - len(idx),
            "Participants without a fidelity index (too few scorable items)",
        )
        n.relation(enrolled, [scored, unscored], prefer="total")
        # across stages: the participants scored are the cohort's treated with an enrolment
        # record, so the cohort's published count takes part in the protection
        without = n.count(
            P + "n_treated_without_enrolment",
            self.n_treated_without_enrolment,
            "Participants in the cohort without an enrolment record (not scored)",
        )
        n.relation("cohort.n_treated", [enrolled, without])
        conf = 1 - self.alpha
        n.add(
            P + "confidence_level",
            conf,
            "proportion",
            "Confidence level of the fidelity intervals (1 - analysis.alpha)",
            decimals=_decimals(conf),
        )
        mean, lo, hi, _ = mean_ci(idx, self.alpha)
        for key, value, what in (
            ("mean_index", mean, "Mean fidelity index (0-100)"),
            ("mean_index_ci_low", lo, "Mean fidelity index: lower confidence limit"),
            ("mean_index_ci_high", hi, "Mean fidelity index: upper confidence limit"),
        ):
            n.add(P + key, value, "index", what, unit="index points", derived_from=[scored])
        n.add(
            P + "median_days_enrolled",
            float(p["days_enrolled"].median()) if len(p) else None,
            "days",
            "Median days enrolled (the duration moderator)",
            unit="days",
            derived_from=[enrolled],
        )
        n.count(
            P + "n_items",
            sum(1 for i in ITEMS if s.weights.get(i, 0) > 0),
            "Items in the fidelity index (positive weight)",
            unit="items",
        )
        n.count(
            P + "n_months",
            len(self.monthly),
            "Months from the first to the last enrolment",
            unit="months",
        )
        sl = self.slope
        unit = "index points per month"
        for key, value, what in (
            ("monthly_slope", sl.estimate, "Change in the fidelity index per month of enrolment"),
            (
                "monthly_slope_ci_low",
                sl.ci_low,
                "Change in the fidelity index per month: lower confidence limit",
            ),
            (
                "monthly_slope_ci_high",
                sl.ci_high,
                "Change in the fidelity index per month: upper confidence limit",
            ),
        ):
            n.add(P + key, value, "estimate", what, unit=unit, derived_from=[scored])
        n.add(
            P + "monthly_slope_p",
            sl.p_value,
            "p_value",
            "Change in the fidelity index per month: p-value",
            derived_from=[scored],
        )

        bands = []
        for b in BANDS:
            k = n.count(
                P + f"n_{b}", int((p["band"] == b).sum()), f"Participants in the {b} fidelity band"
            )
            bands.append(k)
            n.add(
                P + f"share_{b}",
                (p["band"] == b).sum() / len(idx) if len(idx) else None,
                "proportion",
                f"Share of scored participants in the {b} fidelity band",
                derived_from=[k, scored],
            )
        n.relation(scored, bands)
        alt = self.alternatives
        for name in sorted(s.alternative_weights):
            v = alt.loc[alt["weights"] == name, "index"]
            n.add(
                P + f"mean_index_{name}",
                float(v.mean()) if v.notna().any() else None,
                "index",
                f"Mean fidelity index with the alternative weights '{name.replace('_', ' ')}'",
                unit="index points",
                derived_from=[scored],
            )

        self._case_manager_numbers(n, scored)
        self._item_numbers(n)
        return n

    def _case_manager_numbers(self, n: Numbers, scored: str) -> None:
        p, cm = self.person, self.case_managers
        total = n.count(
            P + "n_case_managers", len(cm), "Case managers who enrolled participants", **CM
        )
        known = cm["trained_before_first_enrolment"].dropna().astype(bool)
        in_staff = n.count(
            P + "n_case_managers_in_staff",
            len(known),
            "Case managers found in the staff extract",
            **CM,
        )
        n.count(
            P + "n_case_managers_not_in_staff",
            len(cm) - len(known),
            "Case managers missing from the staff extract",
            **CM,
        )
        n.relation(total, [in_staff, P + "n_case_managers_not_in_staff"])
        trained = n.count(
            P + "n_trained_before_first_enrolment",
            int(known.sum()),
            "Case managers trained before their first enrolment",
            **CM,
        )
        untrained = n.count(
            P + "n_not_trained_before_first_enrolment",
            int((~known).sum()),
            "Case managers not trained before their first enrolment",
            **CM,
        )
        n.relation(in_staff, [trained, untrained])
        groups = [trained, untrained]  # the training split is published only when both are
        n.add(
            P + "share_trained_before_first_enrolment",
            known.mean() if len(known) else None,
            "proportion",
            "Share of case managers trained before their first enrolment",
            derived_from=groups,
        )
        n.add(
            P + "mean_als_attended",
            float(cm["als_attended"].astype(float).mean()) if len(known) else None,
            "mean",
            "Mean Action Learning Sets attended per case manager",
            unit="Action Learning Sets",
            derived_from=[in_staff],
            decimals=1,
        )
        n.add(
            P + "median_caseload",
            float(cm["caseload"].median()) if len(cm) else None,
            "mean",
            "Median participants enrolled per case manager",
            unit="people enrolled per case manager",
            derived_from=[total],
            decimals=1,
        )
        sup = cm["supervision_caseload"].astype(float)
        n.add(
            P + "median_supervision_caseload",
            float(sup.median()) if sup.notna().any() else None,
            "mean",
            "Median supervision events open during the pilot per case manager",
            unit="supervision events per case manager",
            derived_from=[total],
            decimals=1,
        )
        status = p["case_manager_id"].map(
            cm.set_index("case_manager_id")["trained_before_first_enrolment"]
        )
        parts = []
        for flag, name, what in ((True, "trained", "was"), (False, "untrained", "was not")):
            sel = p.loc[(status == flag).fillna(False).to_numpy(), "index"].dropna()
            k = n.count(
                P + f"n_scored_{name}_cm",
                len(sel),
                f"Scored participants whose case manager {what} trained before their first enrolment",
                derived_from=groups,
            )
            parts.append(k)
            n.add(
                P + f"mean_index_{name}_cm",
                float(sel.mean()) if len(sel) else None,
                "index",
                f"Mean fidelity index of participants whose case manager {what} trained first",
                unit="index points",
                derived_from=[k, *groups],
            )
        unknown = p.loc[status.isna().to_numpy(), "index"].notna().sum()
        parts.append(
            n.count(
                P + "n_scored_unknown_training_cm",
                int(unknown),
                "Scored participants whose case manager is missing from the staff extract",
            )
        )
        n.relation(scored, parts)

    def _item_numbers(self, n: Numbers) -> None:
        for row in self.coverage.itertuples():
            label = ITEM_LABELS[row.item]
            k = n.count(
                P + f"n_scorable_{row.item}",
                int(row.n_scorable),
                f"Participants scorable on: {label.lower()}",
            )
            src = [k]
            if row.item in BINARY_ITEMS:
                met = n.count(
                    P + f"n_met_{row.item}",
                    int(row.n_met),
                    f"Participants meeting: {label.lower()}",
                )
                not_met = n.count(
                    P + f"n_not_met_{row.item}",
                    int(row.n_scorable - row.n_met),
                    f"Participants not meeting: {label.lower()}",
                )
                n.relation(k, [met, not_met])
                src += [met, not_met]
            n.add(
                P + f"adherence_{row.item}",
                row.mean_score,
                "proportion",
                f"Adherence: {label.lower()} (mean item score among scorable participants)",
                derived_from=src,
            )

    # ------------------------------------------------------------------ disclosure
    def hidden(self, threshold: int) -> dict[str, str]:
        """Registry keys of this stage that disclosure control suppresses -> shown text."""
        numbers = self.numbers()
        entries = {k: v.as_dict() for k, v in numbers.items()}
        return disclosure.display(entries, numbers.relations, threshold)

    def _n_scored(self) -> int:
        return int(self.person["index"].notna().sum())

    # ------------------------------------------------------------------ figures
    def plot_distribution(self, path, threshold: int) -> pd.DataFrame:
        hidden = self.hidden(threshold)
        bands = {b: hidden[P + f"n_{b}"] for b in BANDS if P + f"n_{b}" in hidden}
        s = self.settings
        return plot_distribution(
            self.person["index"], s.band_moderate, s.band_high, path, threshold, bands
        )

    def plot_items(self, path, threshold: int) -> pd.DataFrame:
        hidden = self.hidden(threshold)
        shown = {
            row.item: None
            if P + f"n_scorable_{row.item}" in hidden
            else disclosure.shown_count(row.n_scorable, threshold)
            for row in self.coverage.itertuples()
        }
        return plot_items(self.coverage, path, shown)

    def plot_monthly(self, path, threshold: int) -> pd.DataFrame:
        counts = dict(zip(self.monthly["month_number"], self.monthly["n_scored"], strict=True))
        hidden = hidden_parts(counts, self._n_scored(), threshold)
        return plot_monthly(self.monthly, self.slope, path, hidden)

    def colour_training(self, threshold: int) -> bool:
        """Whether the funnel plot may show training status (both groups published)."""
        hidden = self.hidden(threshold)
        keys = (P + "n_trained_before_first_enrolment", P + "n_not_trained_before_first_enrolment")
        return not any(k in hidden for k in keys)

    def plot_case_managers(self, path, threshold: int) -> pd.DataFrame:
        cm = self.case_managers
        counts = dict(zip(cm["case_manager_id"], cm["n_scored"], strict=True))
        hidden = hidden_parts(counts, self._n_scored(), threshold)
        return plot_case_managers(
            cm,
            self.person["index"],
            path,
            alpha=self.alpha,
            outer_z=self.settings.funnel_outer_z,
            hidden=hidden,
            colour_training=self.colour_training(threshold),
        )

    def figures(self, threshold: int) -> list[tuple]:
        """``(name, draw(path), caption, derived_from)`` for each figure of the stage."""
        hidden = self.hidden(threshold)
        visible = lambda keys: [k for k in keys if k not in hidden]  # noqa: E731
        coloured = self.colour_training(threshold)
        training = [
            P + "n_trained_before_first_enrolment",
            P + "n_not_trained_before_first_enrolment",
        ]
        return [
            (
                "fidelity_distribution",
                lambda path: self.plot_distribution(path, threshold),
                CAPTIONS["distribution"],
                [P + "n_scored", *visible(P + f"n_{b}" for b in BANDS)],
            ),
            (
                "fidelity_items",
                lambda path: self.plot_items(path, threshold),
                CAPTIONS["items"],
                visible(P + f"n_scorable_{i}" for i in ITEMS),
            ),
            (
                "fidelity_monthly",
                lambda path: self.plot_monthly(path, threshold),
                CAPTIONS["monthly"],
                [P + "n_scored"],
            ),
            (
                "fidelity_case_managers",
                lambda path: self.plot_case_managers(path, threshold),
                CAPTIONS["case_managers"].replace("{training}", TRAINING[coloured]),
                [P + "n_scored", *(training if coloured else [])],
            ),
        ]


def score_fidelity(
    enrolments: pd.DataFrame,
    plans: pd.DataFrame,
    enabling_fund: pd.DataFrame,
    activities: pd.DataFrame,
    contacts: pd.DataFrame,
    staff: pd.DataFrame,
    supervision: pd.DataFrame,
    cohort: pd.DataFrame,
    *,
    settings: FidelitySettings,
    level: TestLevel,
) -> FidelityResult:
    """The fidelity stage (see the module docstring): the cohort's treated people with an
    enrolment record, scored item by item, indexed, banded, per case manager and by month."""
    check_inputs(enrolments, plans)
    scored = treated_enrolments(enrolments, cohort)
    treated = cohort[cohort["treated"].astype(bool)]
    without = int((~treated["person_id"].isin(enrolments["person_id"])).sum())
    log.info(
        "enrolments: %d; in the treated cohort: %d; treated without an enrolment record: %d",
        len(enrolments),
        len(scored),
        without,
    )
    event_end = treated.set_index("person_id")["event_end"]
    periods = enrolment_periods(scored, settings.extract_end_date, event_end)
    items = score_items(periods, plans, contacts, enabling_fund, activities, settings)
    person = person_index(items, periods, settings)
    alpha = level.alpha
    cm = case_manager_index(person, enrolments, staff, settings, supervision, alpha=alpha)
    coverage = item_coverage(items, settings.weights)
    monthly = monthly_index(person, alpha)
    slope = monthly_slope(person, alpha, settings.monthly_se)
    log.info("people scored: %d of %d", int(person["index"].notna().sum()), len(person))
    for row in coverage.itertuples():
        log.info("item %s: scorable for %d of %d", row.item, row.n_scorable, row.n_people)
    return FidelityResult(
        items=items,
        person=person,
        alternatives=alternative_indices(items, settings),
        case_managers=cm,
        coverage=coverage,
        monthly=monthly,
        slope=slope,
        settings=settings,
        alpha=alpha,
        n_treated_without_enrolment=without,
    )


__all__ = ["CAPTIONS", "FidelityResult", "score_fidelity"]
