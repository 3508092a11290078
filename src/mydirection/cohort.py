"""The analysis cohort: eligible events, treated and comparator people, index dates, covariates.

Everything here reads the cleaned tables (``results/clean/<extract>.parquet``) and never an
outcome: the cohort is built blind to re-offending after the index date.

Rules, in the order they are applied (each one is a step of the attrition chevron, counted
in people, for the treated and comparator groups separately; before the treatment
definition "treated" means "in the enrolment extract"):

1. Records received: every person in the people, supervision or enrolment extracts.
2. A person record with at least one supervision event.
3. Eligible events (each rule removes events; a person is lost at the step that removes
   their last remaining event): started in the recruitment window; managed by the CRC
   (RoSH in ``rosh``); sentence type in ``sentence_types``; aged ``min_age`` or over at the
   start (a missing age is not eligible).
4. Treated: enrolled in My Direction on a date from the start to the end (inclusive; an
   open event has no end) of an eligible event; that event is the index event (if several
   contain the enrolment date, the earliest start, then the smallest event_id). People
   enrolled but never during an eligible event are in neither group.
   Comparator pool: the eligible events of people never enrolled; the index event is the
   first eligible event (earliest start, ties broken by event_id).
5. Spill-over (``exclude_pilot_office_nonenrolled``): never-enrolled people with any
   eligible event at a pilot office are removed.
6. Index date (``index_date``). ``enrolment`` (the default): the treated person's
   enrolment date; each comparator gets the start of their index event plus a delay drawn
   (seeded) from the treated people's delays (prescription-time distribution matching,
   Zhou et al. 2005), so both groups' follow-up starts at a comparable time after the
   start of the order. Comparators whose event ended before that date are removed (a
   treated person could not have been enrolled then). Then, for everyone, an event between
   the start of the order and the index date that would have stopped an enrolment
   (``enrolment_barriers``: a re-offence committed in the window, whenever proven; a
   custodial disposal in the window) removes the person: both groups must have been
   "enrollable" on their index date, so no one has immortal time. ``event_start``: the
   start of the index event for everyone. That design has immortal time: a treated person
   must stay under supervision and free of re-offending until enrolment (0-60 days later),
   while a comparator needs nothing after the index date, so comparators' early
   re-offences count against them and the bias favours the pilot; it is kept as an option
   to show that bias.
7. Follow-up availability: index date + follow-up + waiting period after the extract end
   date -> removed (``exclude_incomplete_followup``; dates only).

Ages. The cleaned tables keep one age fact per person, ``people.birth_year`` (dates of
birth never pass the cleaning boundary); every age here is derived from it by
:func:`mydirection.contract.age_in_years`: whole years, the birthday taken as 1 July of the
birth year, so at most a year from the true age (either way). "Aged ``min_age`` or over at
the start" is judged on that age. Hand-built tables that carry ``supervision.age_at_start``
and ``convictions.age_at_offence`` (unit tests) have them used as given.

Covariates are measured strictly before the index date: see :mod:`mydirection.covariates`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mydirection import tables
from mydirection.cohort_index import BARRIER_TEXT, draw_comparator_delays, enrolment_barred
from mydirection.cohort_result import (  # noqa: F401 (the stage's names, re-exported)
    ATTRITION_CAPTION,
    ATTRITION_COLUMNS,
    CohortResult,
    _Attrition,
)
from mydirection.contract import age_in_years
from mydirection.covariates import NEEDS, add_covariates, at_pilot_office
from mydirection.errors import UserError
from mydirection.outcomes import person_positions
from mydirection.settings import CohortSettings

#: Columns of the cohort table (``schemas/tables.yaml``, docs/stages.md).
COHORT_COLUMNS = tables.columns("cohort")

#: Columns of the cleaned tables the cohort reads (``clean.<name>`` table specs).
READS = {
    "people": ["person_id", "sex", "ethnicity", "birth_year"],
    "supervision": [
        "event_id",
        "person_id",
        "sentence_type",
        "start_date",
        "end_date",
        "index_offence_group",
        "rosh",
        "office",
        "case_manager_id",
    ],
    "assessments": ["person_id", "assessment_date", "ogrs3_1yr", "ogrs3_2yr", *NEEDS],
    "convictions": [
        "person_id",
        "offence_date",
        "disposal_date",
        "offence_group",
        "disposal_type",
    ],
    "enrolments": ["person_id", "enrolment_date"],
}

DAY = np.timedelta64(1, "D")


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


#: Read when present (people.birth_year is required only where no table gives ages).
AGE_FACTS = ("birth_year",)


def check_columns(df: pd.DataFrame, name: str) -> None:
    """Stop with one clear message when a cleaned table breaks what the cohort reads."""
    wanted = [c for c in READS[name] if c in df.columns or c not in AGE_FACTS]
    tables.check(df, f"clean.{name}", tables.spec(f"clean.{name}")["path"], wanted)


def with_ages(people: pd.DataFrame, supervision: pd.DataFrame, convictions: pd.DataFrame):
    """``supervision.age_at_start`` and ``convictions.age_at_offence`` (whole years) derived
    from ``people.birth_year`` where the tables do not carry them (the cleaned tables)."""
    out = []
    for table, column, date in (
        (supervision, "age_at_start", "start_date"),
        (convictions, "age_at_offence", "offence_date"),
    ):
        if column not in table.columns:
            if "birth_year" not in people.columns:
                raise UserError(
                    f"{tables.spec('clean.people')['path']}: missing column birth_year (the one "
                    f"age fact the cleaned tables keep); rerun the clean stage"
                )
            unique = people.drop_duplicates("person_id")
            pos = person_positions(unique["person_id"], table["person_id"])
            years = unique["birth_year"].to_numpy(dtype=float)
            born = np.where(pos >= 0, years[np.maximum(pos, 0)] if len(years) else np.nan, np.nan)
            table = table.assign(**{column: age_in_years(table[date], born)})
        out.append(table)
    return tuple(out)


def _check_unique(df: pd.DataFrame, name: str, key: str) -> None:
    dup = df[key].duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)[:5]
        raise UserError(
            f"{tables.spec('clean.' + name)['path']}, column {key}: {int(dup.sum())} rows share a key "
            f"(e.g. rows {', '.join(str(r) for r in rows)}); the clean stage should make it "
            "unique — rerun it or report the extract"
        )


# --------------------------------------------------------------------------------------
# Eligibility
# --------------------------------------------------------------------------------------


def eligibility_rules(settings: CohortSettings) -> list[tuple[str, str, str, callable]]:
    """The event-level eligibility rules: (rule id, description, reason lost, events -> mask)."""
    start = pd.Timestamp(settings.recruitment_start)
    end = pd.Timestamp(settings.recruitment_end)
    return [
        (
            "recruitment_window",
            f"Supervision event started {start:%Y-%m-%d} to {end:%Y-%m-%d}",
            "no supervision event started in the recruitment window",
            lambda e: (e["start_date"] >= start) & (e["start_date"] <= end),
        ),
        (
            "crc_managed",
            f"Managed by the CRC (RoSH {' or '.join(settings.rosh)})",
            "remaining events at another RoSH level (not managed by the CRC)",
            lambda e: e["rosh"].isin(settings.rosh),
        ),
        (
            "sentence_type",
            f"Sentence type: {', '.join(settings.sentence_types)}",
            "remaining events of another sentence type",
            lambda e: e["sentence_type"].isin(settings.sentence_types),
        ),
        (
            "adult",
            f"Aged {settings.min_age:g} or over at the start of the event",
            f"under {settings.min_age:g} (or age unknown) at the start of every remaining event",
            lambda e: (e["age_at_start"] >= settings.min_age).fillna(False).astype(bool),
        ),
    ]


def first_enrolment(enrolments: pd.DataFrame) -> pd.DataFrame:
    """One enrolment per person (the earliest, should the extract hold more)."""
    enr = enrolments[["person_id", "enrolment_date"]].dropna(subset=["enrolment_date"])
    enr = enr.sort_values(["person_id", "enrolment_date"], kind="stable")
    return enr.drop_duplicates("person_id", keep="first")


def first_event(events: pd.DataFrame) -> pd.DataFrame:
    """One event per person: earliest start, ties broken by the smallest event_id.

    Same result as ``events.sort_values(["person_id", "start_date", "event_id"])
    .drop_duplicates("person_id")`` (the test checks this), but sorts strings only for the
    few people with two events starting on their first day.
    """
    if events.empty:
        return events
    person, _ = pd.factorize(events["person_id"])
    start = events["start_date"].to_numpy(dtype="datetime64[ns]")
    rows = _first_event_rows(person, start, events["event_id"], np.arange(len(events)))
    return events.iloc[rows]


def _first_event_rows(person, start, event_id: pd.Series, rows: np.ndarray) -> np.ndarray:
    """Of the event rows ``rows``, the first per person (see :func:`first_event`), sorted.

    ``person`` (integer codes) and ``start`` (datetime64) are indexed by row number;
    ``event_id`` is read only for people with tied first start dates.
    """
    if not len(rows):
        return rows
    p_all, d_all = person[rows], start[rows].view("int64")
    order = np.lexsort((d_all, p_all))
    p, d = p_all[order], d_all[order]
    block = np.r_[True, p[1:] != p[:-1]]  # first row of each person's block
    block_start = np.maximum.accumulate(np.where(block, np.arange(len(p)), 0))
    candidate = d == d[block_start]  # rows starting on the person's earliest date
    n_candidates = np.bincount(block_start[candidate], minlength=len(p))[block_start]
    single = rows[order[block & (n_candidates == 1)]]
    tied_rows = rows[order[candidate & (n_candidates > 1)]]
    tied = pd.DataFrame(
        {
            "person": person[tied_rows],
            "event_id": event_id.iloc[tied_rows].to_numpy(),
            "row": tied_rows,
        }
    )
    tied = tied.sort_values(["person", "event_id"], kind="stable").drop_duplicates("person")
    return np.sort(np.concatenate([single, tied["row"].to_numpy()]))


def followup_available(
    index_date: pd.Series, followup_days: int, waiting_days: int, extract_end_date
) -> pd.Series:
    """True when index date + follow-up + waiting period ends on or before the extract end."""
    if extract_end_date is None:
        return pd.Series(True, index=index_date.index)
    end = pd.Timestamp(extract_end_date)
    return index_date + pd.Timedelta(days=followup_days + waiting_days) <= end


# --------------------------------------------------------------------------------------
# The whole stage
# --------------------------------------------------------------------------------------


def build_cohort(
    people: pd.DataFrame,
    supervision: pd.DataFrame,
    assessments: pd.DataFrame,
    convictions: pd.DataFrame,
    enrolments: pd.DataFrame,
    settings: CohortSettings | None = None,
) -> CohortResult:
    """Apply the rules of the module docstring; return the cohort and its attrition chevron."""
    s = settings or CohortSettings.default()
    events = index_events(people, supervision, assessments, convictions, enrolments, s)
    return cohort_at_index(events, s)


@dataclass(frozen=True)
class IndexEvents:
    """One index event per participant and comparator, before the index-date rule: what
    :func:`cohort_at_index` makes a cohort from, once per index-date design (the
    simulation's two designs share one)."""

    events: pd.DataFrame
    attrition: _Attrition
    people: pd.DataFrame
    assessments: pd.DataFrame
    convictions: pd.DataFrame
    received: tuple
    settings: CohortSettings


def index_events(
    people: pd.DataFrame,
    supervision: pd.DataFrame,
    assessments: pd.DataFrame,
    convictions: pd.DataFrame,
    enrolments: pd.DataFrame,
    settings: CohortSettings | None = None,
) -> IndexEvents:
    """The eligibility rules, the treatment definition and one index event per person
    (module docstring); every setting but ``index_date`` applies."""
    s = settings or CohortSettings.default()
    supervision, convictions = with_ages(people, supervision, convictions)
    for name, df in (
        ("people", people),
        ("supervision", supervision),
        ("assessments", assessments),
        ("convictions", convictions),
        ("enrolments", enrolments),
    ):
        check_columns(df, name)

    # Work on integer person codes: one hashing pass over every person_id, then integer
    # joins and sorts. Codes 0..n_universe-1 are the people of the first three tables.
    tables = [people, supervision, enrolments, assessments, convictions]
    parts = [t["person_id"] for t in tables if len(t)] or [pd.Series([], dtype=object)]
    ids = pd.concat(parts, ignore_index=True)
    all_codes, names = pd.factorize(ids, use_na_sentinel=True)  # Arrow strings: fast
    del ids
    bounds = np.cumsum([0] + [len(t) for t in tables])
    code = [all_codes[bounds[k] : bounds[k + 1]] for k in range(len(tables))]
    del all_codes
    for name, c in zip(
        ("people", "supervision", "enrolments", "assessments", "convictions"), code, strict=True
    ):
        blank = np.flatnonzero(c < 0)
        if len(blank):
            raise UserError(
                f"{tables.spec('clean.' + name)['path']}, column person_id: {len(blank)} rows are blank "
                f"(e.g. rows {', '.join(str(r) for r in blank[:5])}); rerun the clean stage"
            )
    n_universe = int(max((c.max() + 1 for c in code[:3] if len(c)), default=0))
    if len(code[0]) and np.bincount(code[0]).max() > 1:
        _check_unique(people, "people", "person_id")
    received = people, enrolments  # for the profile of participants not included
    people = people[["sex", "ethnicity", *(c for c in AGE_FACTS if c in people.columns)]]
    people = people.assign(person_id=code[0])
    event_person = code[1]  # supervision rows stay in the caller's frame (no copy)
    enrolments = enrolments[["enrolment_date"]].assign(person_id=code[2])
    assessments = assessments[["assessment_date", "ogrs3_1yr", "ogrs3_2yr", *NEEDS]].assign(
        person_id=code[3]
    )
    convictions = pd.DataFrame(
        {
            "person_id": code[4],
            **{c: convictions[c].array for c in [*READS["convictions"][1:], "age_at_offence"]},
        },
        copy=False,
    )
    del code

    n_codes = max(len(names), 1)
    enrolled = np.zeros(n_codes, dtype=bool)
    enrolled[enrolments["person_id"].to_numpy()] = True
    att = _Attrition(enrolled)
    att.record(
        "received",
        "Records received: people in the people, supervision or enrolment extracts",
        np.arange(n_universe),
    )

    # Eligible events: a boolean per supervision row, each rule applied in turn.
    has_person = np.zeros(n_codes, dtype=bool)
    has_person[people["person_id"].to_numpy()] = True
    keep = has_person[event_person]
    att.record(
        "person_record",
        "Person record with a supervision event",
        event_person[keep],
        "no supervision event, or no person record",
    )
    for rule_id, description, reason, rule in eligibility_rules(s):  # row-wise rules
        keep &= np.asarray(rule(supervision), dtype=bool)
        att.record(rule_id, description, event_person[keep], reason)
    rows = np.flatnonzero(keep)

    # Treated: enrolled during an eligible event; comparators: never enrolled.
    enrolment_of = np.full(n_codes, np.datetime64("NaT"), dtype="datetime64[ns]")
    first = first_enrolment(enrolments)
    enrolment_of[first["person_id"].to_numpy()] = first["enrolment_date"].to_numpy()
    start = supervision["start_date"].to_numpy(dtype="datetime64[ns]")
    end = supervision["end_date"].to_numpy(dtype="datetime64[ns]")
    enrolment = enrolment_of[event_person[rows]]
    during = (enrolment >= start[rows]) & (np.isnat(end[rows]) | (enrolment <= end[rows]))
    treated_rows = rows[during]
    comparator_rows = rows[~enrolled[event_person[rows]]]
    att.record(
        "treatment_definition",
        "Treated: enrolled in My Direction during an eligible event; comparators: never enrolled",
        np.concatenate([event_person[treated_rows], event_person[comparator_rows]]),
        "enrolled, but not during an eligible event (in neither group)",
    )

    if s.exclude_pilot_office_nonenrolled:
        office = supervision["office"].iloc[comparator_rows]
        spill = np.zeros(n_codes, dtype=bool)
        spill[event_person[comparator_rows[at_pilot_office(office, s.pilot_offices)]]] = True
        comparator_rows = comparator_rows[~spill[event_person[comparator_rows]]]
        att.record(
            "spillover",
            "Comparators: no eligible event at a pilot office (spill-over excluded)",
            np.concatenate([event_person[treated_rows], event_person[comparator_rows]]),
            "never enrolled, but supervised at a pilot office",
        )

    # One index event per person (earliest start, then smallest event_id).
    treated_rows = _first_event_rows(event_person, start, supervision["event_id"], treated_rows)
    comparator_rows = _first_event_rows(
        event_person, start, supervision["event_id"], comparator_rows
    )
    chosen = np.concatenate([treated_rows, comparator_rows])
    is_treated = np.arange(len(chosen)) < len(treated_rows)
    # rows in person_id order (names are unique, so the order is fully determined)
    name_rank = np.empty(len(names), dtype=np.int64)
    name_rank[np.asarray(pd.Index(names).argsort())] = np.arange(len(names))
    order = np.argsort(name_rank[event_person[chosen]], kind="stable")
    chosen, is_treated = chosen[order], is_treated[order]
    idx = supervision.iloc[chosen].reset_index(drop=True)
    idx["person_id"] = event_person[chosen]
    idx["person_name"] = pd.Index(names).take(event_person[chosen]).array
    idx["treated"] = is_treated
    idx["enrolment_date"] = np.where(
        is_treated, enrolment_of[event_person[chosen]], np.datetime64("NaT")
    ).astype("datetime64[ns]")
    idx = idx.rename(columns={"start_date": "event_start", "end_date": "event_end"})
    delay = (idx["enrolment_date"] - idx["event_start"]) / DAY  # NaN for comparators
    idx["enrolment_delay_days"] = delay.to_numpy(float)
    return IndexEvents(idx, att, people, assessments, convictions, received, s)


def cohort_at_index(events: IndexEvents, settings: CohortSettings) -> CohortResult:
    """The cohort from ``events`` with the index date of ``settings.index_date``: the
    comparators' pseudo-enrolment dates and the enrolment barriers (``enrolment``), the
    follow-up rule and the covariates. The other settings must be those of ``events``."""
    s = settings
    if dataclasses.replace(s, index_date=events.settings.index_date) != events.settings:
        raise ValueError("cohort_at_index: the index events were made with other settings")
    idx, att = events.events.copy(), events.attrition.copy()
    people, assessments, convictions = events.people, events.assessments, events.convictions
    if s.index_date == "event_start":
        idx["index_date"] = idx["event_start"]
    else:
        comp = ~idx["treated"].to_numpy(bool)
        drawn = draw_comparator_delays(
            idx.loc[~comp, "enrolment_delay_days"].to_numpy(), int(comp.sum()), s.seed
        )
        idx.loc[comp, "enrolment_delay_days"] = drawn
        idx["index_date"] = idx["event_start"] + pd.to_timedelta(
            idx["enrolment_delay_days"], unit="D"
        )
        idx.loc[~comp, "index_date"] = idx.loc[~comp, "enrolment_date"]
        supervised = idx["event_end"].isna() | (idx["index_date"] <= idx["event_end"])
        idx = idx[supervised.to_numpy(bool)]
        att.record(
            "supervised_at_index",
            "Comparators: still supervised at their assigned index date",
            idx["person_id"].to_numpy(),
            "event ended before event start + drawn enrolment delay",
        )
        if s.enrolment_barriers:
            barred = enrolment_barred(idx, convictions, s.enrolment_barriers)
            idx = idx[~barred]
            att.record(
                "enrollable_at_index",
                "Enrollable at the index date: no "
                + " or ".join(BARRIER_TEXT[b] for b in s.enrolment_barriers)
                + " between the start of the order and the index date",
                idx["person_id"].to_numpy(),
                "an event that stops an enrolment happened before the index date",
            )

    if s.exclude_incomplete_followup:
        ok = followup_available(
            idx["index_date"], s.followup_days, s.waiting_days, s.extract_end_date
        )
        idx = idx[ok.to_numpy(bool)]
        att.record(
            "followup",
            f"Follow-up ({s.followup_days} days) and waiting period ({s.waiting_days} days) "
            f"end by the extract end date {s.extract_end_date}",
            idx["person_id"].to_numpy(),
            "index date too late for complete follow-up",
        )
    att.record("analysed", "Analysed: treated and comparator pool", idx["person_id"].to_numpy())

    cohort = add_covariates(idx, people, assessments, convictions, s.pilot_offices)
    cohort["person_id"] = cohort["person_name"]
    cohort = cohort[COHORT_COLUMNS].reset_index(drop=True)
    cohort["treated"] = cohort["treated"].astype(bool)
    for col in ("index_date", "event_start", "event_end", "enrolment_date"):
        cohort[col] = cohort[col].astype("datetime64[ns]")
    for col in ("n_previous_offences", "n_previous_custody", "offences_last_12m"):
        cohort[col] = cohort[col].astype("int64")
    return CohortResult(
        cohort=cohort,
        attrition=att.frame(),
        profile_inputs=(*events.received, s.profile_age_bands),
    )
