"""Covariates of the cohort, all measured strictly before the index date (``<``, never ``<=``).

- ``age``: whole-year age at the index date, from ``people.birth_year`` (the one age fact
  kept after the cleaning boundary; :func:`mydirection.contract.age_in_years`, at most a
  year from the true age).
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
  ``age_at_offence``, whole years from the birth year; with no previous proven offence, the age at index: the index offence
  is the first), ``offences_last_12m`` (those committed in the 365 days before the index
  date) and the Copas-style rate ``copas_rate = log((n_previous_offences + 1) /
  (age - age_first_offence + 10))`` (OGRS3's rate of offending: sanctions per year of
  criminal career, damped by 10 years).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.contract import age_in_years

DAY = np.timedelta64(1, "D")

OGRS = ("ogrs3_1yr", "ogrs3_2yr")
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


# Covariates (strictly before the index date)
# --------------------------------------------------------------------------------------


def latest_assessment(cohort: pd.DataFrame, assessments: pd.DataFrame) -> pd.DataFrame:
    """For each cohort row, the latest assessment completed strictly before its index date
    (of several on that day, the last in the extract's order).

    Returns a frame aligned with ``cohort`` (same index): ogrs3_1yr, ogrs3_2yr, the needs
    (nullable boolean, NA where there is no assessment) and assessment_age_days.
    """
    codes, _ = pd.factorize(pd.concat([cohort["person_id"], assessments["person_id"]]))
    person_c, person_a = codes[: len(cohort)], codes[len(cohort) :]
    index_day = cohort["index_date"].to_numpy(dtype="datetime64[ns]")
    day = assessments["assessment_date"].to_numpy(dtype="datetime64[ns]")
    usable = np.flatnonzero(~np.isnat(day))
    # one integer key per (person, date): the date's rank among every date involved
    dates, rank = np.unique(np.concatenate([day[usable], index_day]), return_inverse=True)
    width = len(dates) + 1
    key_a = person_a[usable].astype(np.int64) * width + rank[: len(usable)]
    key_c = person_c.astype(np.int64) * width + rank[len(usable) :]
    order = np.argsort(key_a, kind="stable")  # ties keep the extract's order
    pos = np.searchsorted(key_a[order], key_c, side="left") - 1  # the last key below
    found = (pos >= 0) & ~np.isnat(index_day)
    found[found] = person_a[usable[order[pos[found]]]] == person_c[found]
    row = np.full(len(cohort), -1)  # the assessment row of each cohort row (-1: none)
    row[found] = usable[order[pos[found]]]

    def take(column):
        return assessments[column].array.take(row, allow_fill=True)  # -1 -> missing

    out = {score: take(score).to_numpy(dtype=float, na_value=np.nan) for score in OGRS}
    out.update({need: pd.array(take(need), dtype="boolean") for need in NEEDS})
    dated = np.asarray(take("assessment_date"), dtype="datetime64[ns]")
    out["assessment_age_days"] = (index_day - dated) / DAY
    return pd.DataFrame(out, index=cohort.index)


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

    first = np.full(n, np.inf)
    np.minimum.at(first, person, column("age_at_offence", float)[before])
    first[np.isinf(first)] = np.nan  # no previous proven offence
    out = {
        "n_previous_offences": np.bincount(person, minlength=n),
        "n_previous_custody": np.bincount(pos[before & custody], minlength=n),
        "age_first_offence": first,
        "offences_last_12m": np.bincount(pos[recent], minlength=n),
    }
    return pd.DataFrame(out, index=cohort.index)


def copas_rate(n_previous, age, age_first_offence):
    """Copas-style rate of offending: log((n_previous + 1) / (years of career + 10))."""
    career = np.maximum(np.asarray(age, float) - np.asarray(age_first_offence, float), 0.0)
    return np.log((np.asarray(n_previous, float) + 1.0) / (career + 10.0))


def handle_missing(cohort: pd.DataFrame) -> pd.DataFrame:
    """Apply the documented missing-value rules (see the module docstring); returns a copy."""
    c = cohort.copy()
    c["ogrs3_missing"] = (c["ogrs3_1yr"].isna() | c["ogrs3_2yr"].isna()).to_numpy(bool)
    for col in OGRS:
        observed = c[col].dropna()
        if len(observed):  # the median of the observed scores, whole cohort
            c[col] = c[col].fillna(observed.median())
    needs = c[list(NEEDS)]
    c["needs_missing"] = needs.isna().any(axis=1).to_numpy(bool)
    for need in NEEDS:
        c[need] = c[need].to_numpy(dtype=bool, na_value=False)
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
