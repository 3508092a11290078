"""Fidelity items: who is scored over which period, and the nine adherence items.

Follows Carroll et al. (2007), *A conceptual framework for implementation fidelity*:
**adherence** (coverage, content, frequency, components) is the core and makes up the
fidelity index (:mod:`mydirection.fidelity.index`); **moderators** (duration of exposure,
practitioner training, Action Learning Sets, caseload) are measured and reported beside
it, never mixed into it. Thresholds are :class:`~mydirection.fidelity.settings.FidelitySettings`
fields (the ``fidelity`` config section; defaults in the schema).

Scoring period
    Each enrolled person is scored over their *enrolment period*: from ``enrolment_date``
    to ``exit_date``, or to the extract end date when still enrolled. Supervision contacts
    exist only while the order or licence runs, so the contact items use the enrolment
    period cut at the supervision event's end (``event_end`` from the cohort, when known).

Items (each scored 0-1; ``NaN`` = *not scorable*), in reporting order
    A missing record is a **failure** where the record would exist had the item been
    delivered (the pilot registers of plans, fund awards and activities and the nDelius
    contact log are complete registers). It is **not scorable** only where the item
    cannot be judged: the enrolment ended before the item was due, or the record that
    would carry the item is itself missing for a reason already scored elsewhere.

    1. ``plan_timely`` (coverage)
        1 if the first personalised plan was created no later than ``plan_within_days``
        days after enrolment (a plan dated on or before the enrolment date counts; day 28
        passes, day 29 fails with the default 28). No plan, or a later plan: 0 -- unless
        the enrolment period was shorter than ``plan_within_days`` and no plan was made in
        it (the plan was not yet due): not scorable.
    2-4. ``plan_co_signed``, ``strength_recorded``, ``goal_own_words`` (content)
        Judged on every plan created up to the end of the enrolment period: 1 if any plan
        is co-signed / records at least ``min_strengths`` strengths / at least
        ``min_goals_own_words`` goals in the person's own words. No plan although a plan
        was due: 0 (no content was delivered). No plan and none yet due: not scorable. A
        blank flag or count on every plan: not scorable.
    5. ``plan_reviewed`` (frequency)
        The extract records each plan's creation and its *most recent* review only, so the
        observable test is whether the plan was up to date when enrolment ended: 1 if the
        latest review point (a plan's creation or its last review, on or before the end of
        the period) is at most ``review_every_days`` days before the end. Not scorable when
        no review was yet overdue: at most ``review_every_days`` days between the first plan
        and the end of the period (enrolment ended early), or -- without any plan -- an
        enrolment period of at most ``plan_within_days + review_every_days`` days. No plan
        over a longer period: 0.
    6. ``contact_rate`` (frequency)
        Contacts that took place or were missed by the person (every outcome except
        ``rescheduled``, which the service moved) per month of the contact period, divided
        by ``expected_contacts_per_month`` and capped at 1. No contacts: 0. Not scorable
        when the contact period is shorter than ``contact_min_exposure_days``.
    7. ``contacts_attended`` (frequency)
        Share of those contacts the person attended. Not scorable without any contact in
        the period (already scored 0 by ``contact_rate``).
    8. ``enabling_fund`` (components)
        1 if at least one enabling-fund award is dated within the enrolment period; no
        award: 0. (The extract records awards, not offers.)
    9. ``activity_attended`` (components)
        1 if the person attended at least one pilot activity of the types in
        ``activity_types`` (peer mentor, Time Bank, community partner, small group) within
        the enrolment period; none: 0.

Items 1-5, 8 and 9 score 0 or 1 (:data:`BINARY_ITEMS`); items 6 and 7 are partial scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mydirection.fidelity.settings import FidelitySettings

#: Items of the index, with their Carroll et al. adherence domain, in reporting order.
ITEMS: dict[str, str] = {
    "plan_timely": "coverage",
    "plan_co_signed": "content",
    "strength_recorded": "content",
    "goal_own_words": "content",
    "plan_reviewed": "frequency",
    "contact_rate": "frequency",
    "contacts_attended": "frequency",
    "enabling_fund": "components",
    "activity_attended": "components",
}

ITEM_LABELS: dict[str, str] = {
    "plan_timely": "Plan made on time",
    "plan_co_signed": "Plan co-signed",
    "strength_recorded": "Strength recorded",
    "goal_own_words": "Goal in own words",
    "plan_reviewed": "Plan reviewed on time",
    "contact_rate": "Contacts vs expected rate",
    "contacts_attended": "Contacts attended",
    "enabling_fund": "Enabling fund awarded",
    "activity_attended": "Pilot activity attended",
}

#: Items scored 0 or 1 only (the others are partial scores between 0 and 1).
BINARY_ITEMS: tuple[str, ...] = tuple(
    i for i in ITEMS if i not in ("contact_rate", "contacts_attended")
)
DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(ITEMS.values()))
DAYS_PER_MONTH = 365.25 / 12

# --------------------------------------------------------------------------------------
# Scoring periods
# --------------------------------------------------------------------------------------


def enrolment_periods(
    enrolments: pd.DataFrame, extract_end_date, event_end: pd.Series | None = None
) -> pd.DataFrame:
    """One row per enrolled person with the periods the items are judged over.

    ``event_end`` (indexed by ``person_id``) is the end of the supervision event the person
    was enrolled on; contacts are counted only up to it. Returns ``person_id``,
    ``case_manager_id``, ``enrolment_date``, ``enrolment_end``, ``still_enrolled``,
    ``days_enrolled`` (the duration moderator), ``contact_end`` and ``contact_days``.
    """
    end_of_extract = pd.Timestamp(extract_end_date)
    out = enrolments[["person_id", "case_manager_id", "enrolment_date"]].copy()
    out["still_enrolled"] = enrolments["exit_date"].isna().to_numpy()
    out["enrolment_end"] = enrolments["exit_date"].fillna(end_of_extract).clip(upper=end_of_extract)
    out["days_enrolled"] = (out["enrolment_end"] - out["enrolment_date"]).dt.days.clip(lower=0)
    contact_end = out["enrolment_end"]
    if event_end is not None:
        ev = out["person_id"].map(event_end)
        contact_end = contact_end.where(ev.isna() | (ev >= contact_end), ev)
    out["contact_end"] = contact_end
    out["contact_days"] = (out["contact_end"] - out["enrolment_date"]).dt.days.clip(lower=0)
    return out.sort_values("person_id", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Item scoring
# --------------------------------------------------------------------------------------


def _in_period(df: pd.DataFrame, date_col: str, periods: pd.DataFrame, end_col: str):
    """Rows of ``df`` dated within their person's [enrolment_date, end_col]."""
    m = df.merge(periods[["person_id", "enrolment_date", end_col]], on="person_id", how="inner")
    keep = (m[date_col] >= m["enrolment_date"]) & (m[date_col] <= m[end_col])
    return m[keep]


def score_plan_items(
    periods: pd.DataFrame, plans: pd.DataFrame, settings: FidelitySettings
) -> pd.DataFrame:
    """Coverage, content and review items from the plans register (see module docstring)."""
    s = settings
    p = plans.merge(periods[["person_id", "enrolment_date", "enrolment_end"]], on="person_id")
    # Plans made after the enrolment period are not part of the delivery being judged.
    p = p[p["created_date"] <= p["enrolment_end"]]
    per = periods.set_index("person_id")
    g = p.groupby("person_id", sort=True)
    first_created = g["created_date"].min()
    has_plan = per.index.isin(first_created.index)
    first = first_created.reindex(per.index)
    days_to_plan = (first - per["enrolment_date"]).dt.days
    plan_due = per["days_enrolled"] >= s.plan_within_days

    out = pd.DataFrame(index=per.index)
    timely = pd.Series(np.nan, index=per.index)
    timely[has_plan & (days_to_plan <= s.plan_within_days)] = 1.0
    timely[has_plan & (days_to_plan > s.plan_within_days)] = 0.0
    # No plan: a failure once one was due; not scorable when enrolment ended first.
    timely[~has_plan & plan_due] = 0.0
    out["plan_timely"] = timely

    def any_meets(col: str, fn) -> pd.Series:
        vals = p[["person_id", col]].dropna(subset=[col])
        met = fn(vals[col]).groupby(vals["person_id"]).any()
        res = pd.Series(np.nan, index=per.index)
        known = per.index.isin(met.index)
        res[known] = met.reindex(per.index[known]).astype(float).to_numpy()
        # No plan at all while one was due: content not delivered.
        res[~has_plan & plan_due] = 0.0
        return res

    out["plan_co_signed"] = any_meets("co_signed", lambda v: v.astype(bool))
    out["strength_recorded"] = any_meets("n_strengths", lambda v: v >= s.min_strengths)
    out["goal_own_words"] = any_meets("n_goals_own_words", lambda v: v >= s.min_goals_own_words)

    # Review: latest review point (creation or last review) on or before the period end.
    reviewed = p["last_reviewed_date"].where(p["last_reviewed_date"] <= p["enrolment_end"])
    points = pd.concat(
        [
            p[["person_id", "created_date"]].rename(columns={"created_date": "d"}),
            pd.DataFrame({"person_id": p["person_id"], "d": reviewed}).dropna(subset=["d"]),
        ]
    )
    latest = points.groupby("person_id")["d"].max().reindex(per.index)
    days_since_first = (per["enrolment_end"] - first).dt.days
    gap = (per["enrolment_end"] - latest).dt.days
    review = pd.Series(np.nan, index=per.index)
    due = has_plan & (days_since_first > s.review_every_days)
    review[due & (gap <= s.review_every_days)] = 1.0
    review[due & (gap > s.review_every_days)] = 0.0
    long_without_plan = ~has_plan & (
        per["days_enrolled"] > s.plan_within_days + s.review_every_days
    )
    review[long_without_plan] = 0.0
    out["plan_reviewed"] = review
    return out


def score_contact_items(
    periods: pd.DataFrame, contacts: pd.DataFrame, settings: FidelitySettings
) -> pd.DataFrame:
    """Contact frequency and attendance items from the contact log (see module docstring)."""
    s = settings
    c = _in_period(contacts, "contact_date", periods, "contact_end")
    c = c[c["outcome"] != "rescheduled"]
    per = periods.set_index("person_id")
    n = c.groupby("person_id").size().reindex(per.index, fill_value=0)
    n_att = (
        (c["outcome"] == "attended").groupby(c["person_id"]).sum().reindex(per.index, fill_value=0)
    )
    months = per["contact_days"] / DAYS_PER_MONTH
    exposed = per["contact_days"] >= s.contact_min_exposure_days
    rate = (n / months.where(months > 0)) / s.expected_contacts_per_month
    out = pd.DataFrame(index=per.index)
    out["contact_rate"] = rate.clip(upper=1.0).where(exposed)
    out["contacts_attended"] = (n_att / n.where(n > 0)).astype(float)
    out["contacts_per_month"] = (n / months.where(months > 0)).astype(float)
    return out


def score_component_items(
    periods: pd.DataFrame,
    enabling_fund: pd.DataFrame,
    activities: pd.DataFrame,
    settings: FidelitySettings,
) -> pd.DataFrame:
    """Enabling fund and pilot-activity items (see module docstring)."""
    per = periods.set_index("person_id")
    f = _in_period(enabling_fund, "award_date", periods, "enrolment_end")
    a = _in_period(activities, "activity_date", periods, "enrolment_end")
    a = a[
        a["activity_type"].isin(settings.activity_types) & a["attended"].fillna(False).astype(bool)
    ]
    out = pd.DataFrame(index=per.index)
    out["enabling_fund"] = per.index.isin(f["person_id"]).astype(float)
    out["activity_attended"] = per.index.isin(a["person_id"]).astype(float)
    return out


def score_items(
    periods: pd.DataFrame,
    plans: pd.DataFrame,
    contacts: pd.DataFrame,
    enabling_fund: pd.DataFrame,
    activities: pd.DataFrame,
    settings: FidelitySettings,
) -> pd.DataFrame:
    """Item scores, long: one row per person and item.

    Columns ``person_id``, ``case_manager_id``, ``item``, ``domain``, ``score`` (0-1,
    NaN = not scorable), ``scorable``.
    """
    wide = pd.concat(
        [
            score_plan_items(periods, plans, settings),
            score_contact_items(periods, contacts, settings)[["contact_rate", "contacts_attended"]],
            score_component_items(periods, enabling_fund, activities, settings),
        ],
        axis=1,
    )[list(ITEMS)]
    wide.index.name = "person_id"
    long = wide.reset_index().melt(id_vars="person_id", var_name="item", value_name="score")
    long["item"] = pd.Categorical(long["item"], categories=list(ITEMS), ordered=True)
    long = long.sort_values(["person_id", "item"], kind="stable").reset_index(drop=True)
    long["item"] = long["item"].astype(str)
    long["domain"] = long["item"].map(ITEMS)
    long["scorable"] = long["score"].notna()
    cm = periods.set_index("person_id")["case_manager_id"]
    long.insert(1, "case_manager_id", long["person_id"].map(cm))
    return long[["person_id", "case_manager_id", "item", "domain", "score", "scorable"]]
