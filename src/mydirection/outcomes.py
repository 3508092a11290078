"""Proven re-offending outcomes for every cohort member (Ministry of Justice definition).

Built from the cohort and the cleaned convictions only, for every cohort member,
independently of matching. The rules, their sources and the decisions taken where the
sources leave room are in ``docs/outcomes.md``; this list is kept in step with it.

With ``F`` = follow-up days (default 365), ``W`` = waiting days (default 182), and days
counted from the index date (``day = date - index_date``, so the index date is day 0):

1. **Cohort and index date.** One row per cohort member, in the cohort's order; the index
   date is the cohort's (start of the index event, or the enrolment date). Each conviction
   row of the extract is one proven offence (``offence_date``: committed;
   ``disposal_date``: proven).
2. **Which disposals prove an offence.** Only a conviction at court or a caution does:
   ``disposal_type`` in :data:`COUNTED_DISPOSALS` (custody, suspended sentence, community
   order, fine, conditional or absolute discharge, caution -- including conditional and
   youth cautions, reprimands and final warnings --, and ``other``, which the extract
   contract defines as another sentence or order on conviction at court). Anything else
   -- a penalty notice for disorder, a cannabis or khat warning, a community resolution,
   a missing disposal -- is not a proven offence and never counts.
3. **Which offences count.** Every offence group except ``breach`` (a breach of a court
   order or licence is not a re-offence, whatever its disposal).
4. **Follow-up.** A re-offence is committed on days ``0 .. F - 1``: the F days starting
   on the index date. An offence on the index date counts; one on day F does not. The
   index offence was committed before the index date, so it never counts; nor does any
   other offence committed before the index date, however late it is proven.
5. **Waiting period.** ... and proven (disposal date) on or before day ``F + W - 1``: by
   the last day of the W days that follow the follow-up year (day 546 by default).
6. **Frequency.** Every counted row is one proven re-offence (``n_reoffences``), so
   several offences committed on one day or proven at one court appearance each count.
   ``reoffended`` = 1 when there is at least one.
7. **Time to first re-offence.** ``days_to_first`` = the day the first re-offence was
   committed (0 .. F - 1), or F (censored at the end of the follow-up) when there is none;
   ``event`` = ``reoffended``. ``custodial_reoffence``: any re-offence received custody;
   ``first_reoffence_severity``: the severity of the first re-offence (offences on the
   same day: the most severe, indictable > either_way > summary), None when none.
8. **Completeness.** ``followup_complete``: the last day the outcome depends on, index
   date + F + W - 1, is on or before the extract end date. The cohort stage excludes
   incomplete people by default (cohort.exclude_incomplete_followup); when they are kept,
   their outcomes only see what the extract holds and are flagged false.
9. **Placebo (pre-period) outcome** (:func:`placebo_outcome`): proven offences (rules 2
   and 3) committed on days ``-S .. -E`` before the index date (default S = 730, E = 366:
   months -24 to -13, clear of the 365 days before the index date that the matching
   covariate ``offences_last_12m`` counts) and proven before the index date (day < 0), the
   convictions of the index court appearance excluded (:func:`index_appearances`).
   ``placebo_reoffended`` (0/1) and ``placebo_n_offences``.
10. **Mirror window** (kept for the placebo rule until it is rewired, not a placebo):
    ``pre_reoffended`` / ``pre_n_offences``, proven offences committed on days -F .. -1
    and proven by day W - 1. The index offence usually falls in it, so it is high in both
    groups by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mydirection.contract import codes
from mydirection.errors import ConfigError, UserError

OUTCOME_COLUMNS = [
    "person_id",
    "reoffended",
    "n_reoffences",
    "days_to_first",
    "event",
    "custodial_reoffence",
    "first_reoffence_severity",
    "placebo_reoffended",
    "placebo_n_offences",
    "pre_reoffended",
    "pre_n_offences",
    "followup_complete",
]

#: Disposals that prove an offence: convictions at court and cautions (rule 2).
COUNTED_DISPOSALS = (
    "custody",
    "suspended_sentence",
    "community_order",
    "fine",
    "conditional_discharge",
    "absolute_discharge",
    "caution",
    "other",
)
#: Out-of-court outcomes that do not prove an offence (not codes of the extract contract:
#: named so that a mapping of a real extract that keeps them still cannot count them).
NOT_PROVEN_DISPOSALS = ("penalty_notice", "cannabis_khat_warning", "community_resolution")
#: Offence groups that are never a re-offence (rule 3).
EXCLUDED_OFFENCE_GROUPS = ("breach",)
SEVERITY_ORDER = ("indictable", "either_way", "summary")  # most severe first
#: The disposal that imposes each type of supervision event (for the index court appearance).
INDEX_DISPOSALS = {
    "community_order": ("community_order",),
    "suspended_sentence_order": ("suspended_sentence",),
    "licence": ("custody",),
    "post_sentence_supervision": ("custody",),
}

REQUIRED = {
    "cohort": ["person_id", "index_date", "event_start", "sentence_type", "index_offence_group"],
    "convictions": [
        "person_id",
        "offence_date",
        "disposal_date",
        "offence_group",
        "disposal_type",
        "severity",
    ],
}

DAY = np.timedelta64(1, "D")


def _check(df: pd.DataFrame, name: str, path: str) -> None:
    missing = [c for c in REQUIRED[name] if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)} ({len(df)} rows); "
            "rerun the stage that writes it"
        )


def check_placebo_window(start_days: int, end_days: int) -> None:
    """The placebo window must lie before the index date: ``start_days >= end_days >= 1``."""
    if not (int(end_days) >= 1 and int(start_days) >= int(end_days)):
        raise ConfigError(
            f"outcomes.placebo_window_start_days = {start_days}, "
            f"outcomes.placebo_window_end_days = {end_days}: the placebo window must end at "
            "least one day before the index date and start no later than it ends "
            "(start_days >= end_days >= 1, e.g. 730 and 366)"
        )


# --------------------------------------------------------------------------------------
# Column helpers: integer codes and person positions without Python string objects
# --------------------------------------------------------------------------------------


def _arrow(values: pd.Series):
    """The values as a pyarrow (chunked) array of strings, without a copy when Arrow-backed."""
    arr = values.array
    if isinstance(values.dtype, pd.ArrowDtype):
        data = arr.__arrow_array__()
    else:
        data = pa.array(np.asarray(values, dtype=object), from_pandas=True)
    if not (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
        data = data.cast(pa.string())
    return data


def code_positions(values: pd.Series, allowed: Sequence[str], rows=None) -> np.ndarray:
    """Position of each value in ``allowed`` (int32); -1 where missing or not one of them.

    ``rows``: row positions to look up (default all), without converting the others.
    """
    allowed = list(allowed)
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = pd.Index(allowed).get_indexer(values.cat.categories.astype(str))
        lookup = np.append(lookup, -1).astype(np.int32)  # category code -1 (missing) -> -1
        cat = values.cat.codes.to_numpy()
        return lookup[cat if rows is None else cat[rows]]
    data = _arrow(values)
    if rows is not None:
        data = data.take(pa.array(np.asarray(rows, dtype=np.int64)))
    found = pc.index_in(data, value_set=pa.array(allowed, type=data.type))
    return np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int32)


#: What Arrow raises on ids it cannot hash as text (the callers then fall back to pandas).
_NOT_ARROW = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def _against(values: pd.Series, people: pd.Series):
    """``values`` and ``people`` as Arrow strings of one type, ``people`` in one chunk (the
    value set of Arrow's hash kernels: the hash table holds ``people`` only)."""
    data = _arrow(values)
    ids = _arrow(people).cast(data.type)
    return data, ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


def person_positions(people: pd.Series, values: pd.Series) -> np.ndarray:
    """Position in ``people`` (unique ids) of each of ``values`` (int64); -1 if absent."""
    try:
        data, ids = _against(values, people)
        found = pc.index_in(data, value_set=ids)
        return np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int64)
    except _NOT_ARROW:
        return pd.Index(people).get_indexer(values).astype(np.int64)


def is_among(values: pd.Series, people: pd.Series) -> np.ndarray:
    """Whether each of ``values`` is one of ``people`` (bool), by Arrow's hash kernel
    (pandas' ``isin`` on Arrow strings is ~25x slower on small tables)."""
    try:
        data, ids = _against(values, people)
        found = pc.is_in(data, value_set=ids)
        return np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False), dtype=bool)
    except _NOT_ARROW:
        return values.isin(people).to_numpy(dtype=bool)


def _dates(df: pd.DataFrame, column: str) -> np.ndarray:
    return np.asarray(df[column].to_numpy(dtype="datetime64[ns]"), dtype="datetime64[ns]")


# --------------------------------------------------------------------------------------
# Classification of each conviction
# --------------------------------------------------------------------------------------


def index_appearances(cohort: pd.DataFrame, convictions: pd.DataFrame) -> np.ndarray:
    """Which convictions belong to the court appearance that imposed the index event.

    The index appearance of a cohort member is the latest disposal date, on or before the
    start of the index event (``event_start``), of a conviction whose offence group is the
    event's ``index_offence_group`` (a breach too: an order can be imposed on breach) and
    whose disposal imposes the event's ``sentence_type`` (:data:`INDEX_DISPOSALS`: a
    community order or suspended sentence, on the day the order starts; custody, before a
    licence or post-sentence supervision). Every conviction of that person with that disposal date is part of the
    index appearance (the offences sentenced with the index offence). Returns a boolean
    array aligned with ``convictions``; a person with no such conviction has none (counted
    in ``attrs["n_without_index_conviction"]`` of :func:`proven_reoffending`).
    """
    c = _Convictions(cohort, convictions)
    out = np.zeros(len(convictions), dtype=bool)
    out[c.rows[c.on_appearance(c.index_appearance())]] = True
    return out


class _Convictions:
    """The cohort members' convictions as integer arrays (each text column read once).

    ``rows``: row positions in ``convictions`` of the convictions of cohort members;
    ``person``: their row positions in ``cohort``; ``group`` / ``disposal``: positions in
    the contract's offence groups / :data:`COUNTED_DISPOSALS` (-1: none).
    """

    def __init__(self, cohort: pd.DataFrame, convictions: pd.DataFrame):
        self.cohort, self.convictions = cohort, convictions
        pos = person_positions(cohort["person_id"], convictions["person_id"])
        self.rows = np.flatnonzero(pos >= 0)
        self.person = pos[self.rows]
        self.groups = codes("convictions", "offence_group")
        self.group = code_positions(convictions["offence_group"], self.groups)[self.rows]
        self.disposal = code_positions(convictions["disposal_type"], COUNTED_DISPOSALS)[self.rows]

    def proven(self, sub=slice(None)) -> np.ndarray:
        """Rules 2 and 3 (for the rows ``sub`` of ``rows``)."""
        excluded = [self.groups.index(g) for g in EXCLUDED_OFFENCE_GROUPS]
        return (self.disposal[sub] >= 0) & ~np.isin(self.group[sub], excluded)

    def days(self, column: str, sub=slice(None)) -> np.ndarray:
        """Days from the index date (float, NaN where the date is missing)."""
        index_date = _dates(self.cohort, "index_date")[self.person[sub]]
        return (_dates(self.convictions, column)[self.rows[sub]] - index_date) / DAY

    def index_appearance(self) -> np.ndarray:
        """Per cohort member: disposal date (ns) of the index court appearance, NaT if none."""
        cohort, person = self.cohort, self.person
        nat = np.iinfo(np.int64).min
        imposes = np.zeros((len(INDEX_DISPOSALS) + 1, len(COUNTED_DISPOSALS) + 1), dtype=bool)
        for i, disposals in enumerate(INDEX_DISPOSALS.values()):  # last row/column: none
            imposes[i, [COUNTED_DISPOSALS.index(d) for d in disposals]] = True
        sentence = code_positions(cohort["sentence_type"], list(INDEX_DISPOSALS))
        event_group = code_positions(cohort["index_offence_group"], self.groups)
        # a breach can be the index offence (an order re-imposed on breach): rule 2 only
        c = np.flatnonzero(
            imposes[sentence[person], self.disposal] & (self.group == event_group[person])
        )
        c = c[self.group[c] >= 0]
        disposal_ns = _dates(self.convictions, "disposal_date").view(np.int64)[self.rows[c]]
        start_ns = _dates(cohort, "event_start").view(np.int64)[person[c]]
        ok = (disposal_ns != nat) & (start_ns != nat) & (disposal_ns <= start_ns)
        appearance = np.full(len(cohort), nat, dtype=np.int64)
        np.maximum.at(appearance, person[c[ok]], disposal_ns[ok])
        return appearance

    def on_appearance(self, appearance: np.ndarray, sub=slice(None)) -> np.ndarray:
        """Whether the rows ``sub`` were proven at their person's index court appearance."""
        nat = np.iinfo(np.int64).min
        disposal_ns = _dates(self.convictions, "disposal_date").view(np.int64)[self.rows[sub]]
        day = appearance[self.person[sub]]
        return (day != nat) & (disposal_ns == day)


def _classify(
    cohort,
    convictions,
    followup_days,
    waiting_days,
    placebo_start_days,
    placebo_end_days,
    every_row=False,
):
    """The rules of the module docstring, as arrays over the cohort members' convictions.

    Returns (arrays, index appearance found per cohort member). Unless ``every_row``, only
    the convictions committed in one of the windows (days -max(F, S) .. F - 1) are kept.
    """
    f, w = int(followup_days), int(waiting_days)
    s, e = int(placebo_start_days), int(placebo_end_days)
    c = _Convictions(cohort, convictions)
    appearance = c.index_appearance()
    offence_day = c.days("offence_date")
    if every_row:
        sub = np.arange(len(c.rows))
    else:
        with np.errstate(invalid="ignore"):  # NaT -> NaN compares False: not counted
            sub = np.flatnonzero((offence_day >= -max(f, s)) & (offence_day < f))
    offence_day, disposal_day = offence_day[sub], c.days("disposal_date", sub)
    proven = c.proven(sub)
    with np.errstate(invalid="ignore"):
        reoffence = proven & (offence_day >= 0) & (offence_day < f) & (disposal_day < f + w)
        window = proven & (offence_day >= -s) & (offence_day <= -e) & (disposal_day < 0)
        pre = proven & (offence_day >= -f) & (offence_day < 0) & (disposal_day < w)
    if every_row:
        appearance_rows = c.on_appearance(appearance, sub)
    else:  # only where it matters
        appearance_rows = np.zeros(len(sub), dtype=bool)
        appearance_rows[window] = c.on_appearance(appearance, sub[window])
    if every_row:
        severity = code_positions(convictions["severity"], SEVERITY_ORDER, c.rows[sub])
    else:  # only where it is used: the severity of the first re-offence
        severity = np.full(len(sub), -1, dtype=np.int32)
        severity[reoffence] = code_positions(
            convictions["severity"], SEVERITY_ORDER, c.rows[sub][reoffence]
        )
    return {
        "conviction": c.rows[sub],
        "row": c.person[sub],
        "offence_day": offence_day,
        "disposal_day": disposal_day,
        "proven": proven,
        "index_appearance": appearance_rows,
        "reoffence": reoffence,
        "placebo_offence": window & ~appearance_rows,
        "pre_offence": pre,
        "custody": c.disposal[sub] == COUNTED_DISPOSALS.index("custody"),
        "severity": severity,
    }, appearance != np.iinfo(np.int64).min


def classify_convictions(
    cohort: pd.DataFrame,
    convictions: pd.DataFrame,
    followup_days: int,
    waiting_days: int,
    placebo_start_days: int = 730,
    placebo_end_days: int = 366,
) -> pd.DataFrame:
    """Each conviction of a cohort member with its position relative to the index date.

    One row per conviction of a cohort member: ``conviction`` (row position in
    ``convictions``), ``row`` (position of the person in ``cohort``), ``offence_day`` and
    ``disposal_day`` (days from the index date), and the rules of the module docstring as
    booleans: ``proven`` (rules 2-3), ``index_appearance``, ``reoffence`` (rules 2-5),
    ``placebo_offence`` (rule 9), ``pre_offence`` (rule 10); ``custody``; ``severity``.
    Useful for checking a person's classification by hand.
    """
    check_placebo_window(placebo_start_days, placebo_end_days)
    k, _ = _classify(
        cohort,
        convictions,
        followup_days,
        waiting_days,
        placebo_start_days,
        placebo_end_days,
        every_row=True,
    )
    sev = np.array([*SEVERITY_ORDER, None], dtype=object)
    k["severity"] = sev[k["severity"]]  # -1 -> None
    return pd.DataFrame(k)


# --------------------------------------------------------------------------------------
# Outcomes per person
# --------------------------------------------------------------------------------------


def _check_cohort(cohort: pd.DataFrame) -> None:
    _check(cohort, "cohort", "results/cohort/cohort.parquet")
    ids = cohort["person_id"]
    n_distinct = (
        pc.count_distinct(_arrow(ids)).as_py()
        if isinstance(ids.dtype, pd.ArrowDtype)
        else ids.nunique(dropna=False)
    )
    if n_distinct != len(ids):
        raise UserError(
            f"results/cohort/cohort.parquet, column person_id: {len(ids) - n_distinct} "
            "duplicated people; rerun the cohort stage"
        )


def proven_reoffending(
    cohort: pd.DataFrame,
    convictions: pd.DataFrame,
    followup_days: int = 365,
    waiting_days: int = 182,
    extract_end_date=None,
    *,
    placebo_start_days: int = 730,
    placebo_end_days: int = 366,
) -> pd.DataFrame:
    """The outcomes table: one row per cohort member, in the cohort's order.

    Columns :data:`OUTCOME_COLUMNS`, defined in the module docstring (rules 1-10) and in
    ``docs/outcomes.md``. ``placebo_start_days`` / ``placebo_end_days`` bound the placebo
    window (rule 9); ``attrs["n_without_index_conviction"]`` counts the cohort members
    whose index court appearance was not found in the convictions (nothing excluded).
    """
    _check_cohort(cohort)
    _check(convictions, "convictions", "results/clean/convictions.parquet")
    check_placebo_window(placebo_start_days, placebo_end_days)
    n = len(cohort)
    f, w = int(followup_days), int(waiting_days)
    k, identified = _classify(cohort, convictions, f, w, placebo_start_days, placebo_end_days)
    row = k["row"]

    re = k["reoffence"]
    n_re = np.bincount(row[re], minlength=n)
    custodial = np.bincount(row[re & k["custody"]], minlength=n) > 0
    # first re-offence: earliest offence day, then the most severe (unknown severity last)
    r_row, r_day = row[re], k["offence_day"][re]
    r_sev = np.where(k["severity"][re] < 0, len(SEVERITY_ORDER), k["severity"][re])
    order = np.lexsort((r_sev, r_day, r_row))
    first = order[np.r_[True, r_row[order][1:] != r_row[order][:-1]]] if len(order) else order
    days = np.full(n, f, dtype="int64")
    days[r_row[first]] = r_day[first].astype("int64")
    names = np.array([*SEVERITY_ORDER, None], dtype=object)
    severity = np.full(n, None, dtype=object)
    severity[r_row[first]] = names[r_sev[first]]

    n_placebo = np.bincount(row[k["placebo_offence"]], minlength=n)
    n_pre = np.bincount(row[k["pre_offence"]], minlength=n)

    if extract_end_date is None:
        complete = np.ones(n, dtype=bool)
    else:
        end = pd.Timestamp(extract_end_date)
        last_day = cohort["index_date"] + pd.Timedelta(days=f + w - 1)
        complete = (last_day <= end).to_numpy(bool)

    out = pd.DataFrame(
        {
            "person_id": cohort["person_id"].array,  # the cohort's dtype, no conversion
            "reoffended": (n_re > 0).astype("int64"),
            "n_reoffences": n_re.astype("int64"),
            "days_to_first": days,
            "event": (n_re > 0).astype("int64"),
            "custodial_reoffence": custodial.astype("int64"),
            "first_reoffence_severity": severity,
            "placebo_reoffended": (n_placebo > 0).astype("int64"),
            "placebo_n_offences": n_placebo.astype("int64"),
            "pre_reoffended": (n_pre > 0).astype("int64"),
            "pre_n_offences": n_pre.astype("int64"),
            "followup_complete": complete,
        },
        index=pd.RangeIndex(n),
    )
    out.attrs["n_without_index_conviction"] = int(n - identified.sum())
    return out


def placebo_outcome(
    cohort: pd.DataFrame,
    convictions: pd.DataFrame,
    start_days: int = 730,
    end_days: int = 366,
) -> pd.DataFrame:
    """The pre-period placebo outcome alone (rule 9): ``person_id``, ``placebo_reoffended``,
    ``placebo_n_offences``, one row per cohort member in the cohort's order.

    Proven offences committed ``start_days`` to ``end_days`` days before the index date
    (inclusive; default months -24 to -13) and proven before the index date, the index
    court appearance excluded. The programme cannot change it, so a difference between
    matched groups is a sign of residual confounding. It is only partly balanced by
    construction: ``n_previous_offences`` counts these offences among all earlier ones,
    and ``offences_last_12m`` none of them (docs/outcomes.md).
    """
    out = proven_reoffending(
        cohort,
        convictions,
        placebo_start_days=start_days,
        placebo_end_days=end_days,
    )
    cols = ["person_id", "placebo_reoffended", "placebo_n_offences"]
    result = out[cols].copy()
    result.attrs = dict(out.attrs)
    return result


def outcome_numbers(outcomes: pd.DataFrame, followup_days: int, waiting_days: int):
    """Design numbers of the outcomes stage (no re-offending rate leaves this stage: the
    effects are computed on the matched sample only)."""
    from mydirection.reporting.numbers import Numbers

    n = Numbers()
    n.add("outcomes.followup_days", int(followup_days), "days", "Follow-up window", unit="days")
    n.add("outcomes.waiting_days", int(waiting_days), "days", "Waiting period", unit="days")
    n.count("outcomes.n_people", len(outcomes), "Cohort members with outcomes")
    n.count(
        "outcomes.n_followup_incomplete",
        int((~outcomes["followup_complete"]).sum()),
        "Cohort members whose follow-up ends after the extract end date",
    )
    return n
