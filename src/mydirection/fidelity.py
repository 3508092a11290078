"""Implementation fidelity of My Direction: was the model delivered as designed?

Follows Carroll et al. (2007), *A conceptual framework for implementation fidelity*:
**adherence** (coverage, content, frequency, components) is the core and makes up the
fidelity index; **moderators** (duration of exposure, practitioner training, Action
Learning Sets, caseload) are measured and reported beside it, never mixed into it.

Scoring period
    Each enrolled person is scored over their *enrolment period*: from ``enrolment_date``
    to ``exit_date``, or to the extract end date when still enrolled. Supervision contacts
    exist only while the order or licence runs, so the contact items use the enrolment
    period cut at the supervision event's end (``event_end`` from the cohort, when known).

Items (each scored 0-1; ``NaN`` = *not scorable*)
    A missing record is a **failure** where the record would exist had the item been
    delivered (the pilot registers of plans, fund awards and activities and the nDelius
    contact log are complete registers). It is **not scorable** only where the item
    cannot be judged: the enrolment ended before the item was due, or the record that
    would carry the item is itself missing for a reason already scored elsewhere.

    ``plan_timely`` (coverage)
        1 if the first personalised plan was created no later than ``plan_within_days``
        days after enrolment (a plan dated on or before the enrolment date counts; day 28
        passes, day 29 fails with the default 28). No plan, or a later plan: 0 -- unless
        the enrolment period was shorter than ``plan_within_days`` and no plan was made in
        it (the plan was not yet due): not scorable.
    ``plan_co_signed``, ``strength_recorded``, ``goal_own_words`` (content)
        Judged on every plan created up to the end of the enrolment period: 1 if any plan
        is co-signed / records at least ``min_strengths`` strengths / at least
        ``min_goals_own_words`` goals in the person's own words. No plan although a plan
        was due: 0 (no content was delivered). No plan and none yet due: not scorable. A
        blank flag or count on every plan: not scorable.
    ``plan_reviewed`` (frequency)
        The extract records each plan's creation and its *most recent* review only, so the
        observable test is whether the plan was up to date when enrolment ended: 1 if the
        latest review point (a plan's creation or its last review, on or before the end of
        the period) is at most ``review_every_days`` days before the end. Not scorable when
        no review was yet overdue: at most ``review_every_days`` days between the first plan
        and the end of the period (enrolment ended early), or -- without any plan -- an
        enrolment period of at most ``plan_within_days + review_every_days`` days. No plan
        over a longer period: 0.
    ``contact_rate`` (frequency)
        Contacts that took place or were missed by the person (every outcome except
        ``rescheduled``, which the service moved) per month of the contact period, divided
        by ``expected_contacts_per_month`` and capped at 1. No contacts: 0. Not scorable
        when the contact period is shorter than ``contact_min_exposure_days``.
    ``contacts_attended`` (frequency)
        Share of those contacts the person attended. Not scorable without any contact in
        the period (already scored 0 by ``contact_rate``).
    ``enabling_fund`` (components)
        1 if at least one enabling-fund award is dated within the enrolment period; no
        award: 0. (The extract records awards, not offers.)
    ``activity_attended`` (components)
        1 if the person attended at least one pilot activity of the types in
        ``activity_types`` (peer mentor, Time Bank, community partner, small group) within
        the enrolment period; none: 0.

Composite index
    The weighted mean of the scorable items with a positive weight, times 100. A person
    with fewer than ``min_scorable_items`` such items has no index (``NaN``, band
    ``<NA>``). Bands: ``low`` below ``bands.moderate`` (50), ``moderate`` below
    ``bands.high`` (80), ``high`` from 80; the index is rounded to 9 decimals before
    banding so that 80 computed as 79.99999999999999 is high.

Duration (days enrolled) is a moderator and is never part of the index. Dose-response
analyses here are exploratory: fidelity is measured after treatment starts and may
reflect the person as much as the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

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

BANDS = ("low", "moderate", "high")
DAYS_PER_MONTH = 365.25 / 12
ACTIVITY_TYPES = ("peer_mentor", "time_bank", "community_partner", "small_group")


@dataclass(frozen=True)
class FidelitySettings:
    """Thresholds and weights of the fidelity measures (the ``fidelity`` config section)."""

    plan_within_days: int = 28
    review_every_days: int = 91
    expected_contacts_per_month: float = 2.0
    contact_min_exposure_days: int = 14
    min_strengths: int = 1
    min_goals_own_words: int = 1
    activity_types: tuple[str, ...] = ACTIVITY_TYPES
    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ITEMS, 1.0))
    alternative_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    min_scorable_items: int = 5
    band_moderate: float = 50.0
    band_high: float = 80.0
    ci_level: float = 0.95

    @classmethod
    def from_config(cls, section: dict) -> FidelitySettings:
        """Settings from the validated ``fidelity`` config section (missing keys: defaults)."""
        s = dict(section)
        bands = s.pop("bands", {}) or {}
        kwargs = {k: v for k, v in s.items() if k in cls.__dataclass_fields__}
        if "activity_types" in kwargs:
            kwargs["activity_types"] = tuple(kwargs["activity_types"])
        if "weights" in kwargs:
            kwargs["weights"] = {**dict.fromkeys(ITEMS, 1.0), **kwargs["weights"]}
        if "moderate" in bands:
            kwargs["band_moderate"] = float(bands["moderate"])
        if "high" in bands:
            kwargs["band_high"] = float(bands["high"])
        return cls(**kwargs)


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


# --------------------------------------------------------------------------------------
# Composite index
# --------------------------------------------------------------------------------------


def composite_index(
    wide: pd.DataFrame, weights: dict[str, float], min_scorable_items: int
) -> tuple[pd.Series, pd.Series]:
    """Weighted mean of scorable items x 100, and the number of scorable weighted items.

    ``wide`` has one column per item (0-1 or NaN). Items with weight 0 or absent from
    ``weights`` are ignored. Fewer than ``min_scorable_items`` scorable weighted items:
    NaN.
    """
    items = [i for i in wide.columns if weights.get(i, 0) > 0]
    if not items:
        raise ValueError("no item has a positive weight")
    x = wide[items].to_numpy(dtype=float)
    w = np.array([float(weights[i]) for i in items])
    ok = ~np.isnan(x)
    n = ok.sum(axis=1)
    wsum = (ok * w).sum(axis=1)
    num = (np.where(ok, x, 0.0) * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        idx = 100.0 * num / wsum
    idx[n < min_scorable_items] = np.nan
    return pd.Series(idx, index=wide.index), pd.Series(n, index=wide.index)


def band(index, moderate: float = 50.0, high: float = 80.0) -> pd.Series:
    """Fidelity band of each index value: low (<moderate), moderate (<high), high; NaN: <NA>."""
    x = pd.Series(index, dtype=float).round(9)
    out = pd.Series(pd.NA, index=x.index, dtype="string")
    out[x < moderate] = "low"
    out[(x >= moderate) & (x < high)] = "moderate"
    out[x >= high] = "high"
    return out


def person_index(
    items: pd.DataFrame, periods: pd.DataFrame, settings: FidelitySettings
) -> pd.DataFrame:
    """Index per person with band, duration moderator and wide item scores."""
    wide = items.pivot(index="person_id", columns="item", values="score")[list(ITEMS)]
    idx, n = composite_index(wide, settings.weights, settings.min_scorable_items)
    per = periods.set_index("person_id")
    out = per[
        ["case_manager_id", "enrolment_date", "enrolment_end", "still_enrolled", "days_enrolled"]
    ].copy()
    out["enrolment_month"] = out["enrolment_date"].dt.to_period("M").dt.to_timestamp()
    out["n_scorable"] = n.reindex(out.index).astype(int)
    out["index"] = idx.reindex(out.index)
    out["band"] = band(out["index"], settings.band_moderate, settings.band_high).array
    for name, w in sorted(settings.alternative_weights.items()):
        alt, _ = composite_index(wide, w, settings.min_scorable_items)
        out[f"index_{name}"] = alt.reindex(out.index)
    for item in ITEMS:
        out[f"item_{item}"] = wide[item].reindex(out.index)
    return out.reset_index()


def item_coverage(items: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """How often each item could be scored, and adherence among those scored.

    ``mean_score`` is the mean item score (the adherence share) over scorable people;
    ``n_met`` counts full scores.
    """
    g = items.groupby("item", sort=False)
    out = pd.DataFrame(
        {
            "domain": g["domain"].first(),
            "n_people": g.size(),
            "n_scorable": g["scorable"].sum().astype(int),
            "mean_score": g["score"].mean(),
            "n_met": g["score"].apply(lambda v: int((v == 1).sum())),
        }
    ).reindex(list(ITEMS))
    out["n_not_scorable"] = out["n_people"] - out["n_scorable"]
    out["share_scorable"] = out["n_scorable"] / out["n_people"]
    out["weight"] = [float(weights.get(i, 0)) for i in out.index]
    out["label"] = [ITEM_LABELS[i] for i in out.index]
    out.index.name = "item"
    cols = ["domain", "label", "weight", "n_people", "n_scorable", "n_not_scorable"]
    return out[cols + ["share_scorable", "mean_score", "n_met"]].reset_index()


# --------------------------------------------------------------------------------------
# Case managers (practitioner level: moderators beside the index)
# --------------------------------------------------------------------------------------


def mean_ci(
    values, level: float = 0.95, lower: float = 0.0, upper: float = 100.0
) -> tuple[float, float, float, int]:
    """Mean with a t-based confidence interval, cut to the index range [lower, upper].

    NaN bounds for fewer than 2 values.
    """
    v = np.asarray(pd.Series(values, dtype=float).dropna())
    n = len(v)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    m = float(v.mean())
    if n < 2:
        return m, np.nan, np.nan, n
    half = stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / np.sqrt(n)
    return m, max(m - half, lower), min(m + half, upper), n


def case_manager_index(
    person: pd.DataFrame,
    enrolments: pd.DataFrame,
    staff: pd.DataFrame,
    settings: FidelitySettings,
    supervision: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per case manager: mean index of their scored cases with CI, band and moderators.

    ``caseload`` counts every enrolment the case manager made (``enrolments``), scored or
    not. ``supervision_caseload`` (when ``supervision`` is given) counts the supervision
    events allocated to them that were open at some time during the pilot period (first to
    last enrolment date of anyone). ``trained_before_first_enrolment`` is True when
    ``trained_date`` is on or before their first enrolment, False when later or never
    trained, missing (<NA>) when the case manager is absent from the staff extract.
    """
    rows = []
    first = enrolments.groupby("case_manager_id")["enrolment_date"].min()
    caseload = enrolments.groupby("case_manager_id").size()
    sup_load = None
    if supervision is not None:
        start, end = enrolments["enrolment_date"].min(), enrolments["enrolment_date"].max()
        open_ = (supervision["start_date"] <= end) & (
            supervision["end_date"].isna() | (supervision["end_date"] >= start)
        )
        sup_load = supervision.loc[open_].groupby("case_manager_id").size()
    st = staff.drop_duplicates("case_manager_id").set_index("case_manager_id")
    for cm in sorted(first.index):
        vals = person.loc[person["case_manager_id"] == cm, "index"]
        m, lo, hi, n = mean_ci(vals, settings.ci_level)
        known = cm in st.index
        trained = st["trained_date"].get(cm) if known else pd.NaT
        rows.append(
            {
                "case_manager_id": cm,
                "office": st["office"].get(cm) if known else None,
                "grade": st["grade"].get(cm) if known else None,
                "caseload": int(caseload[cm]),
                "supervision_caseload": (pd.NA if sup_load is None else int(sup_load.get(cm, 0))),
                "n_scored": n,
                "mean_index": m,
                "ci_low": lo,
                "ci_high": hi,
                "first_enrolment_date": first[cm],
                "trained_date": trained,
                "trained_before_first_enrolment": (
                    pd.NA if not known else bool(pd.notna(trained) and trained <= first[cm])
                ),
                "als_attended": (st["action_learning_sets_attended"].get(cm) if known else pd.NA),
            }
        )
    out = pd.DataFrame(rows)
    out["band"] = band(out["mean_index"], settings.band_moderate, settings.band_high).array
    out["trained_before_first_enrolment"] = out["trained_before_first_enrolment"].astype("boolean")
    out["als_attended"] = out["als_attended"].astype("Int64")
    out["supervision_caseload"] = out["supervision_caseload"].astype("Int64")
    out["trained_date"] = pd.to_datetime(out["trained_date"])
    return out


# --------------------------------------------------------------------------------------
# Decay over 2018
# --------------------------------------------------------------------------------------


def monthly_index(person: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Index by month of enrolment: people enrolled, people scored, mean with CI."""
    months = pd.period_range(
        person["enrolment_date"].min(), person["enrolment_date"].max(), freq="M"
    ).to_timestamp()
    rows = []
    for k, mth in enumerate(months):
        sel = person[person["enrolment_month"] == mth]
        m, lo, hi, n = mean_ci(sel["index"], level)
        rows.append(
            {
                "month": mth,
                "month_number": k,
                "n_enrolled": len(sel),
                "n_scored": n,
                "mean_index": m,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Slope:
    """A regression slope with its confidence interval and p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    n_clusters: int


def _slope_from(res, term: str, level: float, n: int, n_clusters: int) -> Slope:
    ci = res.conf_int(alpha=1 - level).loc[term]
    return Slope(
        float(res.params[term]),
        float(ci.iloc[0]),
        float(ci.iloc[1]),
        float(res.pvalues[term]),
        n,
        n_clusters,
    )


def monthly_slope(person: pd.DataFrame, level: float = 0.95, se: str = "cluster") -> Slope:
    """Linear trend of the person index on month of enrolment (index points per month).

    OLS on scored people; ``se="cluster"`` clusters standard errors by case manager (t
    reference with clusters - 1 degrees of freedom), ``"hc1"`` uses heteroskedasticity-
    robust errors. Not estimable (all NaN) with fewer than two months with scored people
    or, with ``"cluster"``, fewer than two case managers.
    """
    d = person.dropna(subset=["index"])
    groups = pd.factorize(d["case_manager_id"], sort=True)[0] if se == "cluster" else None
    n_cl = int(len(np.unique(groups))) if groups is not None else len(d)
    if d["enrolment_month"].nunique() < 2 or len(d) < 3 or n_cl < 2:
        return Slope(np.nan, np.nan, np.nan, np.nan, len(d), n_cl)
    month = (d["enrolment_month"].dt.year * 12 + d["enrolment_month"].dt.month) - (
        d["enrolment_month"].min().year * 12 + d["enrolment_month"].min().month
    )
    x = pd.DataFrame({"month": month.astype(float).to_numpy()})
    y = d["index"].to_numpy(dtype=float)
    import statsmodels.api as sm

    X = sm.add_constant(x, has_constant="add")
    if groups is not None:
        res = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    else:
        res = sm.OLS(y, X).fit(cov_type="HC1", use_t=True)
    return _slope_from(res, "month", level, len(d), n_cl)


# --------------------------------------------------------------------------------------
# Dose-response (exploratory)
# --------------------------------------------------------------------------------------


def band_comparisons(
    person: pd.DataFrame,
    matched: pd.DataFrame,
    outcomes: pd.DataFrame,
    level: float = 0.95,
) -> pd.DataFrame:
    """Re-offending of each fidelity band against its own matched comparators.

    Each treated person in a band is compared with the mean outcome of the comparators in
    their matching subclass; the band's difference is the mean of these treated-minus-
    comparator differences (an ATT within the band), with a t interval whose standard error
    is clustered by subclass (subclasses shared by several treated people count once).
    Treated people without a subclass, an index or an outcome are left out.
    """
    y = outcomes.set_index("person_id")["reoffended"].astype(float)
    m = matched[["person_id", "treated", "subclass"]].dropna(subset=["subclass"]).copy()
    m["y"] = m["person_id"].map(y)
    m = m.dropna(subset=["y"])
    ctrl = m[~m["treated"].astype(bool)].groupby("subclass")["y"].agg(["mean", "size"])
    t = m[m["treated"].astype(bool)].merge(person[["person_id", "band"]], on="person_id")
    t = t.dropna(subset=["band"])
    t = t[t["subclass"].isin(ctrl.index)]
    t["y_c"] = t["subclass"].map(ctrl["mean"])
    t["d"] = t["y"] - t["y_c"]
    rows = []
    for b in BANDS:
        s = t[t["band"] == b]
        n = len(s)
        row = {
            "analysis": "band_vs_matched",
            "group": b,
            "n_treated": n,
            "n_comparators": int(ctrl.loc[s["subclass"].unique(), "size"].sum()) if n else 0,
            "treated_rate": s["y"].mean() if n else np.nan,
            "comparator_rate": s["y_c"].mean() if n else np.nan,
        }
        est, lo, hi, p, g = _clustered_mean(s["d"], s["subclass"], level)
        row.update(estimate=est, ci_low=lo, ci_high=hi, p_value=p, n_clusters=g)
        rows.append(row)
    return pd.DataFrame(rows)


def _clustered_mean(d: pd.Series, clusters: pd.Series, level: float):
    """Mean of d with a cluster-robust t interval (G - 1 df); NaNs below 2 clusters."""
    n = len(d)
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    est = float(d.mean())
    e = (d - est).groupby(clusters.to_numpy()).sum()
    g = len(e)
    if g < 2:
        return est, np.nan, np.nan, np.nan, g
    var = (e**2).sum() / n**2 * g / (g - 1)
    se = float(np.sqrt(var))
    if se == 0:
        return est, est, est, np.nan, g
    tcrit = stats.t.ppf(0.5 + level / 2, g - 1)
    p = float(2 * stats.t.sf(abs(est / se), g - 1))
    return est, est - tcrit * se, est + tcrit * se, p, g


def dose_regression(
    person: pd.DataFrame,
    propensity: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    per_points: float = 10.0,
    ps_term: str = "logit_ps",
    model: str = "lpm",
    level: float = 0.95,
) -> Slope:
    """Within-treated regression of re-offending on the index, adjusting for the PS.

    ``model="lpm"``: linear probability model, slope = change in the probability of
    re-offending per ``per_points`` index points; ``"logit"``: log-odds per
    ``per_points``. Standard errors are clustered by case manager. Not estimable (all
    NaN) with fewer than 4 people, 2 case managers, 2 index values or without both outcomes.
    """
    import statsmodels.api as sm

    d = person[["person_id", "case_manager_id", "index"]].dropna(subset=["index"])
    d = d.merge(propensity[["person_id", ps_term]], on="person_id").merge(
        outcomes[["person_id", "reoffended"]], on="person_id"
    )
    d = d.dropna(subset=[ps_term, "reoffended"]).sort_values("person_id", kind="stable")
    x = pd.DataFrame(
        {"index": d["index"].to_numpy() / per_points, "ps": d[ps_term].to_numpy(dtype=float)}
    )
    X = sm.add_constant(x, has_constant="add")
    y = d["reoffended"].to_numpy(dtype=float)
    groups = pd.factorize(d["case_manager_id"], sort=True)[0]
    n_cl = int(len(np.unique(groups)))
    if len(d) < 4 or n_cl < 2 or x["index"].nunique() < 2 or len(np.unique(y)) < 2:
        return Slope(np.nan, np.nan, np.nan, np.nan, len(d), n_cl)
    kw = {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
    if model == "logit":
        res = sm.Logit(y, X).fit(disp=0, **kw)
    else:
        res = sm.OLS(y, X).fit(use_t=True, **kw)
    return _slope_from(res, "index", level, len(d), n_cl)


# --------------------------------------------------------------------------------------
# Figures (matplotlib Agg; deterministic bytes when saved with metadata={"Software": None})
# --------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    fig.savefig(path, dpi=150, metadata={"Software": None})
    _plt().close(fig)


def _count_label(n: int, threshold: int) -> str:
    return f"<{threshold}" if 0 < n < threshold else str(n)


def plot_distribution(person: pd.DataFrame, settings: FidelitySettings, path) -> None:
    """Histogram of the person index with the band cut-offs."""
    plt = _plt()
    x = person["index"].dropna()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(x, bins=np.arange(0, 105, 5), color="#4c72b0", edgecolor="white")
    for cut in (settings.band_moderate, settings.band_high):
        ax.axvline(cut, color="#555555", linestyle="--", linewidth=1)
    ax.set_xlim(0, 100)
    ax.set_xlabel("Fidelity index (0-100)")
    ax.set_ylabel("People enrolled")
    ax.set_title(
        f"Fidelity index per person (n = {len(x)} scored; bands cut at "
        f"{settings.band_moderate:g} and {settings.band_high:g})"
    )
    fig.tight_layout()
    _save(fig, path)


DOMAIN_COLOURS = {
    "coverage": "#4c72b0",
    "content": "#55a868",
    "frequency": "#c44e52",
    "components": "#8172b2",
}


def plot_items(coverage: pd.DataFrame, path) -> None:
    """Adherence per item (mean score among scorable people), coloured by domain."""
    plt = _plt()
    c = coverage.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    y = np.arange(len(c))
    ax.barh(y, 100 * c["mean_score"].fillna(0), color=[DOMAIN_COLOURS[d] for d in c["domain"]])
    ax.set_yticks(y, [f"{lab} (n={n})" for lab, n in zip(c["label"], c["n_scorable"], strict=True)])
    ax.set_xlim(0, 100)
    ax.set_xlabel("Adherence among scorable people (%)")
    ax.set_title("Fidelity item by item (colour: adherence domain)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=v) for v in DOMAIN_COLOURS.values()]
    ax.legend(handles, list(DOMAIN_COLOURS), loc="lower right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_monthly(monthly: pd.DataFrame, slope: Slope, path, threshold: int = 5) -> None:
    """Mean index by month of enrolment (with CI), the fitted trend, and people enrolled."""
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(8, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    k = monthly["month_number"].to_numpy()
    # Months with fewer than `threshold` scored people are not plotted (disclosure control).
    shown_mean = (monthly["n_scored"] >= threshold).to_numpy()
    m = np.where(shown_mean, monthly["mean_index"].to_numpy(), np.nan)
    lo = m - monthly["ci_low"].to_numpy()
    hi = monthly["ci_high"].to_numpy() - m
    ax.errorbar(k, m, yerr=[np.nan_to_num(lo), np.nan_to_num(hi)], fmt="o-", capsize=3)
    scored = (monthly["n_scored"] > 0).to_numpy() & shown_mean
    if scored.any() and np.isfinite(slope.estimate):
        w = monthly["n_scored"].to_numpy()[scored]
        mean_all = np.average(m[scored], weights=w)
        kbar = np.average(k[scored], weights=w)
        ax.plot(
            k,
            mean_all + slope.estimate * (k - kbar),
            color="#c44e52",
            linestyle="--",
            label=f"trend {slope.estimate:+.2f} points/month "
            f"(CI {slope.ci_low:+.2f} to {slope.ci_high:+.2f})",
        )
        ax.legend(loc="lower left", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("Mean fidelity index")
    ax.set_title("Fidelity by month of enrolment")
    n = monthly["n_enrolled"].to_numpy()
    shown = np.where((n > 0) & (n < threshold), 0, n)
    ax2.bar(k, shown, color="#999999")
    for ki, ni in zip(k, n, strict=True):
        ax2.annotate(
            _count_label(int(ni), threshold), (ki, shown[ki]), ha="center", va="bottom", fontsize=7
        )
    ax2.set_ylabel("Enrolled")
    ax2.set_ylim(0, max(1, shown.max()) * 1.3)
    ax2.set_xticks(k, [d.strftime("%b %Y") for d in monthly["month"]], rotation=45, ha="right")
    ax2.set_xlabel("Month of enrolment")
    fig.tight_layout()
    _save(fig, path)


def plot_case_managers(
    cm: pd.DataFrame, person: pd.DataFrame, level: float, path, threshold: int = 5
) -> None:
    """Funnel plot: case-manager mean index against number of scored cases.

    Control limits: overall mean +/- z * SD / sqrt(n), with the person-level SD. Case
    managers with fewer than ``threshold`` scored cases are not plotted (disclosure
    control); the title says how many.
    """
    plt = _plt()
    x = person["index"].dropna()
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    d = cm[cm["n_scored"] >= threshold]
    n_hidden = int(((cm["n_scored"] > 0) & (cm["n_scored"] < threshold)).sum())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    nmax = max(2, int(d["n_scored"].max()) if len(d) else 2)
    grid = np.linspace(1, nmax * 1.05, 200)
    z = stats.norm.ppf(0.5 + level / 2)
    z3 = stats.norm.ppf(0.5 + 0.998 / 2)
    ax.axhline(mean, color="#333333", linewidth=1)
    for zz, style in ((z, "--"), (z3, ":")):
        ax.plot(grid, np.clip(mean + zz * sd / np.sqrt(grid), 0, 100), "k" + style, linewidth=0.8)
        ax.plot(grid, np.clip(mean - zz * sd / np.sqrt(grid), 0, 100), "k" + style, linewidth=0.8)
    trained = d["trained_before_first_enrolment"].fillna(False).astype(bool)
    ax.scatter(
        d.loc[trained, "n_scored"],
        d.loc[trained, "mean_index"],
        color="#4c72b0",
        label="trained before first enrolment",
        zorder=3,
    )
    ax.scatter(
        d.loc[~trained, "n_scored"],
        d.loc[~trained, "mean_index"],
        color="#c44e52",
        marker="s",
        label="not trained (or trained later)",
        zorder=3,
    )
    ax.set_ylim(0, 100)
    ax.set_xlabel("Cases scored (caseload of enrolled people with an index)")
    ax.set_ylabel("Mean fidelity index of their cases")
    title = f"Case managers: funnel plot ({level:.0%} and 99.8% limits)"
    if n_hidden:
        title += f"\n{n_hidden} case manager(s) with fewer than {threshold} cases not shown"
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_dose_bands(bands: pd.DataFrame, path, threshold: int = 5) -> None:
    """Re-offending per fidelity band vs own matched comparators: rates, and differences
    (treated minus comparators) with their confidence intervals."""
    plt = _plt()
    b = bands.reset_index(drop=True)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    k = np.arange(len(b))
    labels = [
        f"{g}\n(n={_count_label(int(n), threshold)})"
        for g, n in zip(b["group"], b["n_treated"], strict=True)
    ]
    ax.bar(k - 0.2, 100 * b["treated_rate"].fillna(0), 0.4, label="treated", color="#4c72b0")
    ax.bar(
        k + 0.2,
        100 * b["comparator_rate"].fillna(0),
        0.4,
        label="matched comparators",
        color="#999999",
    )
    ax.set_xticks(k, labels)
    ax.set_ylabel("Proven re-offending (%)")
    ax.set_xlabel("Fidelity band of the treated person")
    ax.set_title("Re-offending rates")
    ax.legend(fontsize=8)
    est = 100 * b["estimate"].to_numpy(dtype=float)
    lo = est - 100 * b["ci_low"].to_numpy(dtype=float)
    hi = 100 * b["ci_high"].to_numpy(dtype=float) - est
    ax2.errorbar(k, est, yerr=[np.nan_to_num(lo), np.nan_to_num(hi)], fmt="o", capsize=4)
    ax2.axhline(0, color="#555555", linewidth=1)
    ax2.set_xticks(k, labels)
    ax2.set_xlim(-0.5, len(b) - 0.5)
    ax2.set_ylabel("Treated minus comparators (pp)")
    ax2.set_xlabel("Fidelity band of the treated person")
    ax2.set_title("Difference with confidence interval")
    fig.suptitle("Exploratory: re-offending by fidelity band vs own matched comparators")
    fig.tight_layout()
    _save(fig, path)


# --------------------------------------------------------------------------------------
# Input checks (messages name file, column, row count and example rows; never values)
# --------------------------------------------------------------------------------------

REQUIRED = {
    "enrolments": ["person_id", "enrolment_date", "case_manager_id", "exit_date"],
    "plans": [
        "person_id",
        "created_date",
        "co_signed",
        "n_strengths",
        "n_goals_own_words",
        "last_reviewed_date",
    ],
    "enabling_fund": ["person_id", "award_date"],
    "activities": ["person_id", "activity_date", "activity_type", "attended"],
    "contacts": ["person_id", "contact_date", "outcome"],
    "staff": [
        "case_manager_id",
        "office",
        "grade",
        "trained_date",
        "action_learning_sets_attended",
    ],
    "cohort": ["person_id", "treated", "event_end"],
    "supervision": ["case_manager_id", "start_date", "end_date"],
    "matched": ["person_id", "treated", "subclass"],
    "propensity": ["person_id", "ps", "logit_ps"],
    "outcomes": ["person_id", "reoffended"],
}


def check_table(df: pd.DataFrame, name: str, path) -> list[str]:
    """Problems with a fidelity input: missing columns, blank keys or dates, duplicate people.

    Returns messages (empty when fine), each naming the file, column, number of rows and up
    to five example row numbers (1-based, as in the file) -- never values.
    """
    missing = [c for c in REQUIRED[name] if c not in df.columns]
    if missing:
        return [f"{path}: missing column(s) {', '.join(missing)}; re-run the upstream stage."]
    problems = []

    def rows_msg(mask, col, what, fix):
        idx = np.flatnonzero(np.asarray(mask))
        if len(idx):
            eg = ", ".join(str(i + 1) for i in idx[:5])
            problems.append(f"{path}, column {col}: {len(idx)} rows {what} (e.g. rows {eg}); {fix}")

    rows_msg(
        df["person_id"].isna() if "person_id" in df else [],
        "person_id",
        "are blank",
        "every row needs a person.",
    )
    if name == "enrolments":
        rows_msg(
            df["person_id"].duplicated(),
            "person_id",
            "repeat an enrolled person",
            "keep one enrolment per person (the first) in the cleaning stage.",
        )
        rows_msg(
            df["enrolment_date"].isna(),
            "enrolment_date",
            "are blank",
            "an enrolment needs its date.",
        )
        rows_msg(
            df["exit_date"] < df["enrolment_date"],
            "exit_date",
            "are before the enrolment date",
            "correct or blank the exit date.",
        )
        rows_msg(
            df["case_manager_id"].isna(),
            "case_manager_id",
            "are blank",
            "every enrolment needs its case manager.",
        )
    if name == "plans":
        rows_msg(
            df["created_date"].isna(),
            "created_date",
            "are blank",
            "a plan needs its creation date.",
        )
    return problems


def read_checked(path, name: str, optional=(), person_ids=None) -> pd.DataFrame:
    """Read the columns this stage uses from a cleaned table and check them.

    ``optional`` columns are read when present; with ``person_ids`` only those people's rows
    are read (the contact log is large). A problem raises a UserError naming file and column.
    """
    import pyarrow.parquet as pq

    from mydirection.errors import UserError

    present = set(pq.read_schema(path).names)
    columns = [c for c in [*REQUIRED[name], *optional] if c in present]
    filters = None if person_ids is None else [("person_id", "in", sorted(set(person_ids)))]
    df = pd.read_parquet(path, columns=columns, filters=filters)
    problems = check_table(df, name, path)
    if problems:
        raise UserError(problems[0])
    return df
