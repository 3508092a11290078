"""Privacy after the cleaning boundary: nothing under results/ narrows a date of birth, or
names a source-system key or identifier.

The claim (docs/data-contract.md, mydirection.cohort): the cleaned and cohort tables keep
ONE age fact per person, ``people.birth_year``; every stored age is derived from it
(:func:`mydirection.contract.age_in_years`). So nothing stored can narrow a person's date
of birth below their calendar year of birth (365 or 366 days). Two independent checks:

1. the window attack: every (date, age) pair of a person across all stored tables is
   turned into the dates of birth it allows, the windows are intersected, and the result
   must still hold the generator's true date of birth and span at least the whole birth
   year;
2. the perturbation check: moving every date of birth to another day of the same year
   (1 January, 31 December) leaves every stored table identical, so no combination of
   columns, by any method, can tell the days of the year apart.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clean_harness import run_clean_stage

from mydirection.cohort import CohortSettings, build_cohort  # noqa: F401
from mydirection.contract import EXTRACTS, age_in_years
from mydirection.keys import SYNTHETIC_KEY, pseudonym
from mydirection.synthetic import write_extracts

END = "2020-06-30"
TINY = {"n_treated": 40, "n_comparator_pool": 400}


def _build(raw: Path, out: Path) -> dict[str, pd.DataFrame]:
    """Clean (the stage's jobs) + cohort on ``raw``: every table stored under results/."""
    run = run_clean_stage({n: raw / f"{n}.csv" for n in EXTRACTS}, out)
    assert run.code == 0, run.log_text()
    tables = {n: run.table(n) for n in EXTRACTS}
    settings = (
        CohortSettings.default(extract_end_date=END)
        if hasattr(CohortSettings, "default")
        else CohortSettings.from_config({}, extract_end_date=END)
    )
    result = build_cohort(
        **{
            n: tables[n]
            for n in ("people", "supervision", "assessments", "convictions", "enrolments")
        },
        settings=settings,
    )
    tables["cohort"] = result.cohort
    tables["attrition"] = result.attrition
    return tables


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    write_extracts(raw, TINY, 5)
    return raw, _build(raw, tmp_path_factory.mktemp("results"))


def _true_dob(raw: Path) -> pd.Series:
    people = pd.read_csv(raw / "people.csv", dtype=str, keep_default_na=False)
    people = people.drop_duplicates("crn")
    dob = pd.to_datetime(people["date_of_birth"], format="mixed", dayfirst=True)
    ids = [pseudonym(c.strip().upper(), SYNTHETIC_KEY) for c in people["crn"]]
    return pd.Series(dob.to_numpy(), index=ids)


def _pairs(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every (person, date, whole-year age) pair a reader can form from stored columns."""
    people = tables["people"].set_index("person_id")
    rows = []
    # every stored date of a person, with the age the stored birth year gives at it
    for table in tables.values():
        if "person_id" not in table:
            continue
        for col in table.columns:
            if table[col].dtype == "datetime64[ns]":
                d = table[["person_id", col]].dropna()
                by = people["birth_year"].reindex(d["person_id"]).to_numpy()
                rows.append(
                    pd.DataFrame(
                        {
                            "person_id": d["person_id"],
                            "date": d[col],
                            "age": age_in_years(d[col], by),
                        }
                    )
                )
    cohort = tables["cohort"]  # the stored age columns, at the dates they describe
    rows.append(
        pd.DataFrame(
            {"person_id": cohort["person_id"], "date": cohort["index_date"], "age": cohort["age"]}
        )
    )
    return pd.concat(rows, ignore_index=True).dropna()


def test_birth_year_is_the_only_age_fact_and_ages_derive_from_it(built):
    _, tables = built
    for name, table in tables.items():
        ages = [c for c in table.columns if c.startswith("age") or "birth" in c or "_age" in c]
        if name == "people":
            assert ages == ["birth_year"]
        elif name == "cohort":
            assert set(ages) == {"age", "age_first_offence", "assessment_age_days"}
        else:
            assert ages == [], name
        assert "date_of_birth" not in table and "dob" not in table
    cohort = tables["cohort"]
    by = tables["people"].set_index("person_id")["birth_year"].reindex(cohort["person_id"])
    np.testing.assert_array_equal(cohort["age"], age_in_years(cohort["index_date"], by))
    assert (cohort["age"] == cohort["age"].round()).all()  # whole years


def test_no_combination_of_stored_dates_and_ages_narrows_a_date_of_birth(built):
    raw, tables = built
    truth = _true_dob(raw)
    pairs = _pairs(tables)
    # the documented reading: age a at date d (birthday 1 July) -> born in year y(d) - a
    # (- 1 from 1 July on); each pair allows one calendar year; intersect per person
    when = pd.DatetimeIndex(pairs["date"])
    year = when.year - pairs["age"] - (when.month < 7)
    lo = pd.to_datetime(year.astype(int).astype(str) + "-01-01")
    hi = pd.to_datetime(year.astype(int).astype(str) + "-12-31")
    window = pd.DataFrame({"person_id": pairs["person_id"], "lo": lo, "hi": hi})
    window = window.groupby("person_id").agg(lo=("lo", "max"), hi=("hi", "min"))
    true = truth.reindex(window.index)
    assert true.notna().all()
    width = (window["hi"] - window["lo"]).dt.days + 1
    assert (width >= 365).all(), width.min()  # never narrower than the birth year
    assert ((true >= window["lo"]) & (true <= window["hi"])).all()  # and the truth is inside
    assert len(window) >= 300  # every person with a stored date was examined


def test_moving_each_birthday_within_its_year_changes_nothing_stored(built, tmp_path):
    raw, tables = built
    for day in ("01-01", "12-31"):
        moved = tmp_path / f"raw_{day}"
        shutil.copytree(raw, moved)
        people = pd.read_csv(moved / "people.csv", dtype=str, keep_default_na=False)
        dob = pd.to_datetime(people["date_of_birth"], format="mixed", dayfirst=True)
        people["date_of_birth"] = dob.dt.strftime(f"%Y-{day}")
        people.to_csv(moved / "people.csv", index=False)
        for stamp in ("truth.json", "mess.json"):  # as if generated so (see synthetic_stamp)
            (moved / stamp).touch()
        again = _build(moved, tmp_path / f"results_{day}")
        for name, table in tables.items():
            got = again[name]
            if name == "people":  # its mixed date formats were rewritten: fixes differ only
                got, table = got.drop(columns="source_row"), table.drop(columns="source_row")
            pd.testing.assert_frame_equal(got, table, obj=name)


def test_source_system_keys_are_pseudonymised_and_still_join(built):
    raw, tables = built
    for name, col in (
        ("supervision", "event_id"),
        ("contacts", "contact_id"),
        ("contacts", "event_id"),
        ("plans", "plan_id"),
        ("enabling_fund", "award_id"),
        ("activities", "activity_id"),
        ("staff", "case_manager_id"),
        ("supervision", "case_manager_id"),
    ):
        raw_ids = set(pd.read_csv(raw / f"{name}.csv", dtype=str)[col].str.strip().str.upper())
        stored = set(tables[name][col])
        assert not raw_ids & stored, (name, col)
        assert all(len(v) == 16 for v in stored)
    # joins hold: contacts -> supervision events of the same person; staff <-> supervision
    events = tables["supervision"].set_index("event_id")["person_id"]
    contacts = tables["contacts"]
    assert contacts["event_id"].isin(events.index).all()
    assert (contacts["event_id"].map(events) == contacts["person_id"]).all()
    assert (
        tables["supervision"]["case_manager_id"].isin(tables["staff"]["case_manager_id"]).mean()
        > 0.9
    )
