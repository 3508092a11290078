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
6. Index date: the start of the index event (``index_date: event_start``), or the enrolment
   date (``index_date: enrolment``), with comparators given the event start plus a delay
   drawn (seeded) from the treated delays; comparators whose event ended before that date
   are removed (a treated person could not have been enrolled then).
7. Follow-up availability: index date + follow-up + waiting period after the extract end
   date -> removed (``exclude_incomplete_followup``; dates only).

Ages. The cleaned tables keep one age fact per person, ``people.birth_year`` (dates of
birth never pass the cleaning boundary); every age here is derived from it by
:func:`mydirection.contract.age_in_years`: whole years, the birthday taken as 1 July of the
birth year, so at most a year from the true age (either way). "Aged ``min_age`` or over at
the start" is judged on that age. Hand-built tables that carry ``supervision.age_at_start``
and ``convictions.age_at_offence`` (unit tests) have them used as given.

Covariates are measured strictly before the index date (``<``, never ``<=``):

- ``age``: whole-year age at the index date (derived from the birth year).
- ``sex``, ``ethnicity`` (people); ``sentence_type``, ``index_offence_group``, ``rosh``,
  ``office``, ``case_manager_id`` (index event); ``pilot_office``: office is a pilot office.
- OGRS3 scores and needs from the latest assessment completed before the index date, with
  ``assessment_age_days`` = index date - assessment date. Missing rule: no assessment ->
  ``ogrs3_missing`` True, the score set to the cohort median of the observed scores (same
  median for treated and comparators), ``assessment_age_days`` left NaN (the indicator says
  why); a need flag that is missing (no assessment, or blank in it) -> False, with
  ``needs_missing`` True.
- Criminal history from convictions proven (disposal date) before the index date, breaches
  excluded (as in the proven re-offending definition): ``n_previous_offences``,
  ``n_previous_custody`` (disposal custody), ``age_first_offence`` (youngest
  age at a previous offence, whole years; with no previous proven offence, the age at index: the index offence
  is the first), ``offences_last_12m`` (those committed in the 365 days before the index
  date) and the Copas-style rate ``copas_rate = log((n_previous_offences + 1) /
  (age - age_first_offence + 10))`` (OGRS3's rate of offending: sanctions per year of
  criminal career, damped by 10 years).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from mydirection.contract import age_in_years
from mydirection.errors import UserError

NEEDS = (
    "need_accommodation",
    "need_ete",
    "need_finance",
    "need_relationships",
    "need_lifestyle",
    "need_drugs",
    "need_alcohol",
    "need_thinking",
    "need_attitudes",
)

#: Columns of ``results/cohort/cohort.parquet`` (docs/stages.md), in order.
COHORT_COLUMNS = [
    "person_id",
    "treated",
    "event_id",
    "index_date",
    "event_start",
    "event_end",
    "enrolment_date",
    "enrolment_delay_days",
    "office",
    "case_manager_id",
    "age",
    "sex",
    "ethnicity",
    "sentence_type",
    "index_offence_group",
    "rosh",
    "ogrs3_1yr",
    "ogrs3_2yr",
    "ogrs3_missing",
    "assessment_age_days",
    *NEEDS,
    "needs_missing",
    "n_previous_offences",
    "n_previous_custody",
    "age_first_offence",
    "offences_last_12m",
    "copas_rate",
    "pilot_office",
]

ATTRITION_COLUMNS = ["step", "description", "group", "n_remaining", "n_lost", "reason"]

#: Columns of the cleaned tables the cohort reads.
REQUIRED_COLUMNS = {
    "people": ["person_id", "sex", "ethnicity"],
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

#: Read when present: the one age fact of the cleaned tables (people.birth_year), or the
#: ages of hand-built tables (see "Ages" in the module docstring).
AGE_COLUMNS = {
    "people": ["birth_year"],
    "supervision": ["age_at_start"],
    "convictions": ["age_at_offence"],
}

DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class CohortSettings:
    """The cohort section of the config plus the keys of other sections the cohort uses."""

    recruitment_start: str = "2018-01-01"
    recruitment_end: str = "2018-12-31"
    rosh: tuple[str, ...] = ("low", "medium")
    sentence_types: tuple[str, ...] = (
        "community_order",
        "suspended_sentence_order",
        "licence",
        "post_sentence_supervision",
    )
    min_age: float = 18
    index_date: str = "event_start"
    pilot_offices: tuple[str, ...] = ("hull_central", "bridlington")
    exclude_pilot_office_nonenrolled: bool = False
    exclude_incomplete_followup: bool = True
    #: outcomes.followup_days, outcomes.waiting_days, extract_end_date (dates only)
    followup_days: int = 365
    waiting_days: int = 182
    extract_end_date: str | None = "2020-06-30"
    #: master seed (config ``seed``); used only by ``index_date: enrolment``
    seed: int = 20180101

    @classmethod
    def from_config(cls, cohort: dict, **other) -> CohortSettings:
        """Build from the ``cohort`` config section and keyword settings from other sections."""
        known = {f.name for f in fields(cls)}
        values = {**cohort, **other}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"config: unknown cohort setting(s) {unknown}; see the config schema")
        for key in ("rosh", "sentence_types", "pilot_offices"):
            if key in values:
                values[key] = tuple(values[key])
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        try:
            start, end = pd.Timestamp(self.recruitment_start), pd.Timestamp(self.recruitment_end)
        except ValueError as err:
            raise UserError(
                f"config: cohort.recruitment_start/recruitment_end is not a date ({err}); "
                "use YYYY-MM-DD"
            ) from None
        if start > end:
            raise UserError(
                "config: cohort.recruitment_start is after cohort.recruitment_end; swap them"
            )
        if self.index_date not in ("event_start", "enrolment"):
            raise UserError(
                f"config: cohort.index_date is {self.index_date!r}; use event_start or enrolment"
            )


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


def check_columns(df: pd.DataFrame, name: str, required=None) -> None:
    """Stop with one clear message when a cleaned table lacks a column the cohort needs."""
    required = REQUIRED_COLUMNS[name] if required is None else required
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(
            f"results/clean/{name}.parquet: missing column(s) {', '.join(missing)} "
            f"({len(df)} rows); rerun the clean stage (snakemake --forcerun clean)"
        )


def read_clean_table(path, name: str, required=None) -> pd.DataFrame:
    """Read the columns a stage needs from a Parquet table; a clear error if one is missing."""
    import pyarrow.parquet as pq

    required = REQUIRED_COLUMNS[name] if required is None else required
    try:
        present = set(pq.read_schema(path).names)
    except (OSError, ValueError) as err:
        raise UserError(
            f"{path}: not a readable Parquet file ({type(err).__name__}); rerun the clean stage"
        ) from None
    missing = [c for c in required if c not in present]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; rerun the clean stage "
            "(snakemake --forcerun clean)"
        )
    # Text as Arrow-backed strings whatever the writer's pandas dtype: a tenth of the memory
    # of Python string objects at national scale, and fast hashing of person_id.
    optional = [c for c in AGE_COLUMNS.get(name, []) if c in present and c not in required]
    table = pq.read_table(path, columns=[*required, *optional])
    return table.to_pandas(types_mapper=_arrow_strings)


def _arrow_strings(arrow_type):
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.ArrowDtype(pa.string())
    return None


def _check_unique(df: pd.DataFrame, name: str, key: str) -> None:
    dup = df[key].duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)[:5]
        raise UserError(
            f"results/clean/{name}.parquet, column {key}: {int(dup.sum())} rows share a key "
            f"(e.g. rows {', '.join(str(r) for r in rows)}); the clean stage should make it "
            "unique — rerun it or report the extract"
        )


# --------------------------------------------------------------------------------------
# Eligibility
# --------------------------------------------------------------------------------------


def eligibility_rules(settings: CohortSettings) -> list[tuple[str, str, callable]]:
    """The event-level eligibility rules: (description, reason lost, events -> bool mask)."""
    start = pd.Timestamp(settings.recruitment_start)
    end = pd.Timestamp(settings.recruitment_end)
    return [
        (
            f"Supervision event started {start:%Y-%m-%d} to {end:%Y-%m-%d}",
            "no supervision event started in the recruitment window",
            lambda e: (e["start_date"] >= start) & (e["start_date"] <= end),
        ),
        (
            f"Managed by the CRC (RoSH {' or '.join(settings.rosh)})",
            "remaining events at another RoSH level (not managed by the CRC)",
            lambda e: e["rosh"].isin(settings.rosh),
        ),
        (
            f"Sentence type: {', '.join(settings.sentence_types)}",
            "remaining events of another sentence type",
            lambda e: e["sentence_type"].isin(settings.sentence_types),
        ),
        (
            f"Aged {settings.min_age:g} or over at the start of the event",
            f"under {settings.min_age:g} (or age unknown) at the start of every remaining event",
            lambda e: (e["age_at_start"] >= settings.min_age).fillna(False).astype(bool),
        ),
    ]


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
                    "results/clean/people.parquet: missing column birth_year (the one age fact "
                    "the cleaned tables keep); rerun the clean stage (snakemake --forcerun clean)"
                )
            unique = people.drop_duplicates("person_id")
            pos = pd.Index(unique["person_id"]).get_indexer(table["person_id"])
            years = unique["birth_year"].to_numpy(dtype=float)
            born = np.where(pos >= 0, years[np.maximum(pos, 0)] if len(years) else np.nan, np.nan)
            table = table.assign(**{column: age_in_years(table[date], born)})
        out.append(table)
    return tuple(out)


def eligible_events(supervision: pd.DataFrame, settings: CohortSettings) -> pd.DataFrame:
    """The supervision events passing every eligibility rule."""
    keep = np.ones(len(supervision), dtype=bool)
    for _, _, rule in eligibility_rules(settings):
        keep &= np.asarray(rule(supervision), dtype=bool)
    return supervision[keep]


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


def draw_comparator_delays(treated_delays: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Delays (days) for ``n`` comparators, drawn with replacement from the treated delays.

    Deterministic: the treated delays are sorted first, and the generator is seeded from the
    master seed and this step's name, so the same inputs give the same draws.
    """
    pool = np.sort(np.asarray(treated_delays, dtype=float))
    if n and not len(pool):
        raise UserError(
            "cohort.index_date is 'enrolment' but no one was enrolled during an eligible "
            "event, so there is no delay distribution to give comparators; use event_start"
        )
    rng = np.random.default_rng([seed, zlib.crc32(b"cohort.comparator_index_delay")])
    return rng.choice(pool, size=n, replace=True) if n else np.empty(0)


# --------------------------------------------------------------------------------------
# Covariates (strictly before the index date)
# --------------------------------------------------------------------------------------


def latest_assessment(cohort: pd.DataFrame, assessments: pd.DataFrame) -> pd.DataFrame:
    """For each cohort row, the latest assessment completed strictly before its index date.

    Returns a frame aligned with ``cohort`` (same index): ogrs3_1yr, ogrs3_2yr, the needs
    (nullable boolean, NA where there is no assessment) and assessment_age_days.
    """
    left = cohort[["person_id", "index_date"]].copy()
    left["_row"] = np.arange(len(left))
    left = left.sort_values("index_date", kind="stable")
    cols = ["person_id", "assessment_date", "ogrs3_1yr", "ogrs3_2yr", *NEEDS]
    usable = assessments["assessment_date"].notna() & assessments["person_id"].isin(
        cohort["person_id"]
    )
    rows = np.flatnonzero(usable.to_numpy(bool))
    day = assessments["assessment_date"].to_numpy(dtype="datetime64[ns]")[rows]
    right = assessments.iloc[rows[np.argsort(day, kind="stable")]][cols]  # by date, one copy
    m = pd.merge_asof(
        left,
        right,
        left_on="index_date",
        right_on="assessment_date",
        by="person_id",
        direction="backward",
        allow_exact_matches=False,  # an assessment on the index date is not "before" it
    )
    m = m.sort_values("_row", kind="stable")
    out = pd.DataFrame(index=cohort.index)
    out["ogrs3_1yr"] = m["ogrs3_1yr"].to_numpy(dtype=float)
    out["ogrs3_2yr"] = m["ogrs3_2yr"].to_numpy(dtype=float)
    for need in NEEDS:
        out[need] = pd.array(m[need].to_numpy(), dtype="boolean")
    age = (m["index_date"] - m["assessment_date"]) / DAY
    out["assessment_age_days"] = age.to_numpy(dtype=float)
    return out


def offending_history(cohort: pd.DataFrame, convictions: pd.DataFrame) -> pd.DataFrame:
    """Criminal history from offences proven strictly before each person's index date.

    Breaches are excluded. Returns a frame aligned with ``cohort``: n_previous_offences,
    n_previous_custody, age_first_offence (NaN with no previous offence), offences_last_12m.
    """
    n = len(cohort)
    pos = pd.Index(cohort["person_id"]).get_indexer(convictions["person_id"])
    keep = pos >= 0
    pos = pos[keep]

    def column(name, dtype=None):  # one column of the cohort's convictions (no frame copy)
        return np.asarray(convictions[name].to_numpy(dtype=dtype), dtype=dtype)[keep]

    index_date = cohort["index_date"].to_numpy(dtype="datetime64[ns]")[pos]
    before = (convictions["offence_group"] != "breach").fillna(True).to_numpy(bool)[keep]
    before &= column("disposal_date", "datetime64[ns]") < index_date  # proven before index
    recent = before & (
        column("offence_date", "datetime64[ns]") >= index_date - np.timedelta64(365, "D")
    )
    del index_date
    custody = (convictions["disposal_type"] == "custody").fillna(False).to_numpy(bool)[keep]
    person = pos[before]

    out = pd.DataFrame(index=cohort.index)
    out["n_previous_offences"] = np.bincount(person, minlength=n)
    out["n_previous_custody"] = np.bincount(pos[before & custody], minlength=n)
    first = np.full(n, np.inf)
    np.minimum.at(first, person, column("age_at_offence", float)[before])
    first[np.isinf(first)] = np.nan  # no previous proven offence
    out["age_first_offence"] = first
    out["offences_last_12m"] = np.bincount(pos[recent], minlength=n)
    return out


def copas_rate(n_previous, age, age_first_offence):
    """Copas-style rate of offending: log((n_previous + 1) / (years of career + 10))."""
    career = np.maximum(np.asarray(age, float) - np.asarray(age_first_offence, float), 0.0)
    return np.log((np.asarray(n_previous, float) + 1.0) / (career + 10.0))


def handle_missing(cohort: pd.DataFrame) -> pd.DataFrame:
    """Apply the documented missing-value rules (see the module docstring); returns a copy."""
    c = cohort.copy()
    c["ogrs3_missing"] = (c["ogrs3_1yr"].isna() | c["ogrs3_2yr"].isna()).to_numpy(bool)
    for col in ("ogrs3_1yr", "ogrs3_2yr"):
        observed = c[col].dropna()
        if len(observed):  # the median of the observed scores, whole cohort
            c[col] = c[col].fillna(observed.median())
    needs = c[list(NEEDS)]
    c["needs_missing"] = needs.isna().any(axis=1).to_numpy(bool)
    for need in NEEDS:
        c[need] = c[need].fillna(False).astype(bool)
    no_history = c["age_first_offence"].isna()
    c["age_first_offence"] = c["age_first_offence"].where(~no_history, c["age"])
    return c


def at_pilot_office(office: pd.Series, pilot_offices) -> np.ndarray:
    """Whether each office is a pilot office (case and surrounding spaces ignored)."""
    wanted = {str(o).strip().lower() for o in pilot_offices}
    codes, uniques = pd.factorize(office)
    hit = np.array([str(u).strip().lower() in wanted for u in uniques] + [False])
    return hit[codes]  # code -1 (missing office) -> the trailing False


def add_covariates(
    cohort: pd.DataFrame,
    people: pd.DataFrame,
    assessments: pd.DataFrame,
    convictions: pd.DataFrame,
    pilot_offices=(),
) -> pd.DataFrame:
    """Add every covariate to a frame of index events (person_id, index_date, event columns)."""
    c = cohort.reset_index(drop=True)
    cols = ["person_id", "sex", "ethnicity"] + (["birth_year"] if "birth_year" in people else [])
    c = c.merge(people[cols], on="person_id", how="left")
    if "birth_year" in c:  # the cleaned tables: whole years from the birth year
        c["age"] = age_in_years(c["index_date"], c["birth_year"])
        c = c.drop(columns="birth_year")
    else:  # hand-built tables with age_at_start
        years = (c["index_date"] - c["event_start"]) / DAY / 365.25
        c["age"] = c["age_at_start"].to_numpy(float) + years.to_numpy(float)
    c = pd.concat([c, latest_assessment(c, assessments), offending_history(c, convictions)], axis=1)
    c = handle_missing(c)
    c["copas_rate"] = copas_rate(c["n_previous_offences"], c["age"], c["age_first_offence"])
    c["pilot_office"] = at_pilot_office(c["office"], pilot_offices)
    return c


# --------------------------------------------------------------------------------------
# The whole stage
# --------------------------------------------------------------------------------------


class _Attrition:
    """Records, step by step, how many people remain in each group and how many were lost."""

    def __init__(self, enrolled: np.ndarray):
        self.enrolled = enrolled  # bool per person code
        self.rows: list[dict] = []
        self.previous: dict[str, int] | None = None

    def record(self, description: str, codes: np.ndarray, reason: str = "") -> None:
        present = np.zeros(len(self.enrolled), dtype=bool)
        present[codes] = True
        n_all = int(present.sum())
        n_treated = int((present & self.enrolled).sum())
        counts = {"treated": n_treated, "comparator": n_all - n_treated, "all": n_all}
        step = len(self.rows) // 3 + 1
        for group, n in counts.items():
            lost = 0 if self.previous is None else self.previous[group] - n
            self.rows.append(
                {
                    "step": step,
                    "description": description,
                    "group": group,
                    "n_remaining": n,
                    "n_lost": lost,
                    "reason": reason,
                }
            )
        self.previous = counts

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=ATTRITION_COLUMNS)
        return df.astype({"step": "int64", "n_remaining": "int64", "n_lost": "int64"})


@dataclass
class CohortResult:
    cohort: pd.DataFrame
    attrition: pd.DataFrame


def build_cohort(
    people: pd.DataFrame,
    supervision: pd.DataFrame,
    assessments: pd.DataFrame,
    convictions: pd.DataFrame,
    enrolments: pd.DataFrame,
    settings: CohortSettings | None = None,
) -> CohortResult:
    """Apply the rules of the module docstring; return the cohort and its attrition chevron."""
    s = settings or CohortSettings()
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
                f"results/clean/{name}.parquet, column person_id: {len(blank)} rows are blank "
                f"(e.g. rows {', '.join(str(r) for r in blank[:5])}); rerun the clean stage"
            )
    n_universe = int(max((c.max() + 1 for c in code[:3] if len(c)), default=0))
    if len(code[0]) and np.bincount(code[0]).max() > 1:
        _check_unique(people, "people", "person_id")
    people = people[["sex", "ethnicity", *(["birth_year"] if "birth_year" in people else [])]]
    people = people.assign(person_id=code[0])
    event_person = code[1]  # supervision rows stay in the caller's frame (no copy)
    enrolments = enrolments[["enrolment_date"]].assign(person_id=code[2])
    assessments = assessments[["assessment_date", "ogrs3_1yr", "ogrs3_2yr", *NEEDS]].assign(
        person_id=code[3]
    )
    convictions = pd.DataFrame(
        {
            "person_id": code[4],
            **{
                c: convictions[c].array
                for c in [*REQUIRED_COLUMNS["convictions"][1:], "age_at_offence"]
            },
        },
        copy=False,
    )
    del code

    n_codes = max(len(names), 1)
    enrolled = np.zeros(n_codes, dtype=bool)
    enrolled[enrolments["person_id"].to_numpy()] = True
    att = _Attrition(enrolled)
    att.record(
        "Records received: people in the people, supervision or enrolment extracts",
        np.arange(n_universe),
    )

    # Eligible events: a boolean per supervision row, each rule applied in turn.
    has_person = np.zeros(n_codes, dtype=bool)
    has_person[people["person_id"].to_numpy()] = True
    keep = has_person[event_person]
    att.record(
        "Person record with a supervision event",
        event_person[keep],
        "no supervision event, or no person record",
    )
    for description, reason, rule in eligibility_rules(s):  # row-wise rules
        keep &= np.asarray(rule(supervision), dtype=bool)
        att.record(description, event_person[keep], reason)
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
            "Comparators: still supervised at their assigned index date",
            idx["person_id"].to_numpy(),
            "event ended before event start + drawn enrolment delay",
        )

    if s.exclude_incomplete_followup:
        ok = followup_available(
            idx["index_date"], s.followup_days, s.waiting_days, s.extract_end_date
        )
        idx = idx[ok.to_numpy(bool)]
        att.record(
            f"Follow-up ({s.followup_days} days) and waiting period ({s.waiting_days} days) "
            f"end by the extract end date {s.extract_end_date}",
            idx["person_id"].to_numpy(),
            "index date too late for complete follow-up",
        )
    att.record("Analysed: treated and comparator pool", idx["person_id"].to_numpy())

    cohort = add_covariates(idx, people, assessments, convictions, s.pilot_offices)
    cohort["person_id"] = cohort["person_name"]
    cohort = cohort[COHORT_COLUMNS].reset_index(drop=True)
    cohort["treated"] = cohort["treated"].astype(bool)
    for col in ("index_date", "event_start", "event_end", "enrolment_date"):
        cohort[col] = cohort[col].astype("datetime64[ns]")
    for col in ("n_previous_offences", "n_previous_custody", "offences_last_12m"):
        cohort[col] = cohort[col].astype("int64")
    return CohortResult(cohort=cohort, attrition=att.frame())


# --------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------


def _shown(n: int, threshold: int) -> str:
    return f"<{threshold}" if 0 < n < threshold else f"{n:,}"


def plot_attrition(attrition: pd.DataFrame, path, suppression_threshold: int = 5) -> None:
    """A flow (chevron) figure: each step with people remaining and lost, per group.

    Counts greater than zero and below ``suppression_threshold`` are shown as "<k".
    """
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    steps = sorted(attrition["step"].unique())
    wide = attrition.pivot(index="step", columns="group", values=["n_remaining", "n_lost"])
    info = attrition.drop_duplicates("step").set_index("step")
    n = len(steps)
    fig, ax = plt.subplots(figsize=(11, 0.95 * n + 1.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(-0.4, n + 0.2)
    ax.axis("off")
    ax.set_title("Cohort attrition: people remaining after each step (lost and why)", fontsize=12)
    ax.text(2.6, n - 0.15, "Step", ha="center", fontsize=10, weight="bold")
    ax.text(6.4, n - 0.15, "Treated", ha="center", fontsize=10, weight="bold")
    ax.text(9.2, n - 0.15, "Comparator", ha="center", fontsize=10, weight="bold")
    for i, step in enumerate(steps):
        y = n - 1 - i
        reason = str(info.loc[step, "reason"] or "")
        lost_any = int(wide.loc[step, ("n_lost", "all")]) > 0
        desc = "\n".join(textwrap.wrap(f"{step}. {info.loc[step, 'description']}", 60))
        ax.add_patch(
            FancyBboxPatch(
                (0.1, y + 0.12), 5.0, 0.62, boxstyle="round,pad=0.02", fc="#eef2f7", ec="#5b6b82"
            )
        )
        ax.text(0.25, y + (0.52 if lost_any else 0.43), desc, va="center", fontsize=7.5)
        if reason and lost_any:
            ax.text(
                0.25,
                y + 0.22,
                "lost: " + textwrap.shorten(reason, 85),
                va="center",
                fontsize=6.5,
                color="#a83232",
            )
        for x, group, colour in ((6.4, "treated", "#1b6ca8"), (9.2, "comparator", "#6b6b6b")):
            remaining = int(wide.loc[step, ("n_remaining", group)])
            lost = int(wide.loc[step, ("n_lost", group)])
            ax.add_patch(
                FancyBboxPatch(
                    (x - 1.1, y + 0.3),
                    2.2,
                    0.44,
                    boxstyle="round,pad=0.02",
                    fc="white",
                    ec=colour,
                    lw=1.5,
                )
            )
            ax.text(
                x,
                y + 0.52,
                _shown(remaining, suppression_threshold),
                ha="center",
                va="center",
                fontsize=9,
                color=colour,
                weight="bold",
            )
            if i > 0:  # arrow from the previous step, with the people lost on the way
                ax.annotate(
                    "",
                    xy=(x, y + 0.76),
                    xytext=(x, y + 1.28),
                    arrowprops={"arrowstyle": "->", "color": colour, "lw": 1},
                )
                if lost:
                    ax.text(
                        x + 0.12,
                        y + 1.02,
                        f"{_shown(lost, suppression_threshold)} lost",
                        ha="left",
                        va="center",
                        fontsize=7.5,
                        color="#a83232",
                    )
    fig.tight_layout()
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)
