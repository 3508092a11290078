"""Tests of validation, cleaning and pseudonymisation (mydirection.validate, mydirection.clean)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from mydirection import clean
from mydirection.contract import EXTRACTS, extract_schema
from mydirection.runner import UserError

END = "2020-06-30"
KEY = b"test-key-0123456789abcdef"

# A tiny valid dataset: three people, their supervision events, and one row of everything.
ROWS = {
    "people": [
        {
            "crn": "X100001",
            "pnc_id": "2001/0000001A",
            "date_of_birth": "1990-05-17",
            "sex": "male",
            "ethnicity": "white",
        },
        {
            "crn": "X100002",
            "pnc_id": "",
            "date_of_birth": "1985-01-02",
            "sex": "female",
            "ethnicity": "asian",
        },
        {
            "crn": "X100003",
            "pnc_id": "2003/0000003C",
            "date_of_birth": "2000-12-31",
            "sex": "male",
            "ethnicity": "unknown",
        },
    ],
    "supervision": [
        {
            "event_id": "E1",
            "crn": "X100001",
            "sentence_type": "community_order",
            "start_date": "2018-03-01",
            "end_date": "2019-03-01",
            "index_offence_group": "theft",
            "rosh": "low",
            "office": "HULL1",
            "case_manager_id": "S1",
        },
        {
            "event_id": "E2",
            "crn": "X100002",
            "sentence_type": "licence",
            "start_date": "2018-04-10",
            "end_date": "",
            "index_offence_group": "violence",
            "rosh": "medium",
            "office": "HULL2",
            "case_manager_id": "S2",
        },
        {
            "event_id": "E3",
            "crn": "X100003",
            "sentence_type": "suspended_sentence_order",
            "start_date": "2018-06-01",
            "end_date": "2019-12-01",
            "index_offence_group": "drugs",
            "rosh": "low",
            "office": "HULL1",
            "case_manager_id": "S1",
        },
    ],
    "assessments": [
        {
            "crn": "X100001",
            "assessment_date": "2018-02-20",
            "ogrs3_1yr": "34.5",
            "ogrs3_2yr": "51",
            **{
                f"need_{n}": v
                for n, v in zip(
                    [
                        "accommodation",
                        "ete",
                        "finance",
                        "relationships",
                        "lifestyle",
                        "drugs",
                        "alcohol",
                        "thinking",
                        "attitudes",
                    ],
                    ["Y", "N", "1", "0", "true", "false", "", "yes", "no"],
                    strict=True,
                )
            },
        },
    ],
    "convictions": [
        {
            "crn": "X100001",
            "offence_date": "2015-01-10",
            "disposal_date": "2015-03-01",
            "offence_group": "theft",
            "disposal_type": "fine",
            "severity": "summary",
        },
        {
            "crn": "X100002",
            "offence_date": "2019-01-10",
            "disposal_date": "2019-05-01",
            "offence_group": "violence",
            "disposal_type": "custody",
            "severity": "either_way",
        },
    ],
    "contacts": [
        {
            "contact_id": "C1",
            "crn": "X100001",
            "event_id": "E1",
            "contact_date": "2018-03-05",
            "contact_type": "office_appointment",
            "outcome": "attended",
            "case_manager_id": "S1",
        },
        {
            "contact_id": "C2",
            "crn": "X100002",
            "event_id": "E2",
            "contact_date": "2018-05-05",
            "contact_type": "telephone",
            "outcome": "fta_acceptable",
            "case_manager_id": "S2",
        },
    ],
    "enrolments": [
        {
            "crn": "X100001",
            "enrolment_date": "2018-03-20",
            "case_manager_id": "S1",
            "exit_date": "",
            "exit_reason": "",
        },
    ],
    "plans": [
        {
            "plan_id": "P1",
            "crn": "X100001",
            "created_date": "2018-04-01",
            "co_signed": "Y",
            "n_strengths": "3",
            "n_goals_own_words": "2",
            "last_reviewed_date": "",
        },
    ],
    "enabling_fund": [
        {
            "award_id": "A1",
            "crn": "X100001",
            "award_date": "2018-05-01",
            "amount_gbp": "49.99",
            "purpose": "training",
        },
    ],
    "activities": [
        {
            "activity_id": "AC1",
            "crn": "X100001",
            "activity_date": "2018-05-03",
            "activity_type": "time_bank",
            "attended": "true",
        },
    ],
    "staff": [
        {
            "case_manager_id": "S1",
            "office": "HULL1",
            "grade": "po",
            "trained_date": "2018-01-15",
            "action_learning_sets_attended": "4",
        },
        {
            "case_manager_id": "S2",
            "office": "HULL2",
            "grade": "pso",
            "trained_date": "",
            "action_learning_sets_attended": "0",
        },
    ],
}


def write_csv(
    path: Path,
    rows: list[dict],
    columns: list[str] | None = None,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.DictWriter(
            fh, fieldnames=columns, delimiter=delimiter, lineterminator="\n", extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_all(folder: Path, changes: dict[str, list[dict]] | None = None) -> dict[str, Path]:
    """The tiny dataset in ``folder`` (with ``changes`` replacing whole extracts)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = {**ROWS, **(changes or {})}
    return {
        name: write_csv(folder / f"{name}.csv", rows[name], list(extract_schema(name)["columns"]))
        for name in EXTRACTS
    }


def run_clean(paths, key=KEY):
    return clean.clean_extracts(paths, END, key)


def log_count(log: pd.DataFrame, file: str, rule: str, action: str | None = None) -> int:
    sel = (log["file"] == file) & (log["rule"] == rule)
    if action:
        sel &= log["action"] == action
    return int(log.loc[sel, "rows"].sum())


def with_rows(name: str, *extra: dict, base: list[dict] | None = None) -> dict[str, list[dict]]:
    """Changes adding rows (filled from the extract's first row) to one extract."""
    base = ROWS[name] if base is None else base
    return {name: [*base, *({**ROWS[name][0], **e} for e in extra)]}


# --------------------------------------------------------------------------- the clean data


def test_clean_tables_follow_the_stage_contract(tmp_path):
    tables, log = run_clean(write_all(tmp_path))
    assert list(tables) == list(EXTRACTS)
    for name, table in tables.items():
        spec = extract_schema(name)["columns"]
        expected = [
            "person_id" if c == "crn" else c
            for c in spec
            if not (spec[c].get("identifying") and c != "crn")
        ]
        assert list(table.columns[: len(expected)]) == expected
        for col, s in spec.items():
            if col not in table:
                continue
            if s["type"] == "date":
                assert table[col].dtype == "datetime64[ns]"
            if s["type"] == "flag":
                assert table[col].dtype == ("boolean" if s.get("nullable") else bool)
    assert "pnc_id" not in tables["people"] and "date_of_birth" not in tables["people"]
    assert list(log.columns) == ["file", "rule", "action", "rows", "reason"]
    # an open supervision event and a blank exit are NaT / NA, not errors
    assert tables["supervision"]["end_date"].isna().sum() == 1
    assert tables["enrolments"]["exit_reason"].isna().all()
    # flags: Y/N, 1/0, true/false, yes/no; blank stays missing in a nullable flag
    a = tables["assessments"].iloc[0]
    assert [a[f"need_{n}"] for n in ("accommodation", "ete", "finance", "relationships")] == [
        True,
        False,
        True,
        False,
    ]
    assert pd.isna(a["need_alcohol"])
    assert tables["enabling_fund"]["amount_gbp"].iloc[0] == pytest.approx(49.99)
    assert tables["plans"]["n_strengths"].dtype == "int64"


def test_ages_are_years_from_the_date_of_birth(tmp_path):
    tables, _ = run_clean(write_all(tmp_path))
    dob = {p["crn"]: pd.Timestamp(p["date_of_birth"]) for p in ROWS["people"]}
    for name, age_col, at in (
        ("supervision", "age_at_start", "start_date"),
        ("convictions", "age_at_offence", "offence_date"),
    ):
        expected = [(pd.Timestamp(r[at]) - dob[r["crn"]]).days / 365.25 for r in ROWS[name]]
        assert tables[name][age_col].tolist() == pytest.approx(expected)
    # 1990-05-17 to 2018-03-01: 27 whole years
    assert int(tables["supervision"]["age_at_start"].iloc[0]) == 27


# --------------------------------------------------------------------------- one test per rule


def test_codes_with_whitespace_and_case_are_normalised(tmp_path):
    people = [dict(p) for p in ROWS["people"]]
    people[0].update(sex="  MALE ", ethnicity="White ")
    people[1].update(sex="Female")
    tables, log = run_clean(write_all(tmp_path, {"people": people}))
    assert tables["people"]["sex"].tolist() == ["male", "female", "male"]
    assert tables["people"]["ethnicity"].iloc[0] == "white"
    assert log_count(log, "people", "code_normalised", "fixed") == 2


def test_day_month_year_dates_are_read_and_counted(tmp_path):
    sup = [dict(r) for r in ROWS["supervision"]]
    sup[0].update(start_date="01/03/2018", end_date="1/3/2019")
    sup[2].update(start_date="13/06/2018")  # 13 cannot be a month: day first
    tables, log = run_clean(write_all(tmp_path, {"supervision": sup}))
    t = tables["supervision"]
    assert t["start_date"].iloc[0] == pd.Timestamp("2018-03-01")
    assert t["end_date"].iloc[0] == pd.Timestamp("2019-03-01")
    assert t["start_date"].iloc[2] == pd.Timestamp("2018-06-13")
    assert log_count(log, "supervision", "date_format", "fixed") == 2


def test_exact_duplicates_are_dropped_and_counted(tmp_path):
    contacts = [*ROWS["contacts"], ROWS["contacts"][0], ROWS["contacts"][0], ROWS["contacts"][1]]
    tables, log = run_clean(write_all(tmp_path, {"contacts": contacts}))
    assert tables["contacts"]["contact_id"].tolist() == ["C1", "C2"]
    assert log_count(log, "contacts", "exact_duplicate") == 3
    assert log_count(log, "contacts", "read", "received") == 5


def test_duplicate_only_after_normalising_is_a_key_error_not_a_duplicate(tmp_path):
    # exact duplicates are judged on the raw text: a copy differing in case is not one
    contacts = [*ROWS["contacts"], {**ROWS["contacts"][0], "outcome": "ATTENDED"}]
    with pytest.raises(UserError, match=r"contacts\.csv, column contact_id: 2 rows share"):
        run_clean(write_all(tmp_path, {"contacts": contacts}))


def test_supervision_ending_before_it_starts_is_excluded(tmp_path):
    changes = with_rows(
        "supervision", {"event_id": "E9", "start_date": "2018-05-01", "end_date": "2018-04-30"}
    )
    tables, log = run_clean(write_all(tmp_path, changes))
    assert "E9" not in tables["supervision"]["event_id"].tolist()
    assert log_count(log, "supervision", "end_before_start") == 1
    # same-day start and end is possible
    changes = with_rows(
        "supervision", {"event_id": "E9", "start_date": "2018-05-01", "end_date": "2018-05-01"}
    )
    tables, log = run_clean(write_all(tmp_path / "b", changes))
    assert "E9" in tables["supervision"]["event_id"].tolist()


def test_disposal_before_offence_is_excluded(tmp_path):
    changes = with_rows(
        "convictions", {"offence_date": "2014-06-01", "disposal_date": "2014-05-31"}
    )
    tables, log = run_clean(write_all(tmp_path, changes))
    assert len(tables["convictions"]) == 2
    assert log_count(log, "convictions", "disposal_before_offence") == 1


def test_contact_after_its_order_ended_is_excluded(tmp_path):
    changes = with_rows(
        "contacts",
        {"contact_id": "C8", "event_id": "E1", "contact_date": "2019-03-02"},  # E1 ended 03-01
        {"contact_id": "C9", "event_id": "E1", "contact_date": "2019-03-01"},  # last day: kept
        {"contact_id": "C10", "event_id": "E2", "contact_date": "2020-01-01"},  # E2 still open
    )
    tables, log = run_clean(write_all(tmp_path, changes))
    assert tables["contacts"]["contact_id"].tolist() == ["C1", "C2", "C9", "C10"]
    assert log_count(log, "contacts", "contact_after_order_end") == 1


CRN_EXTRACTS = [n for n in EXTRACTS if n != "people" and "crn" in extract_schema(n)["columns"]]


@pytest.mark.parametrize("name", CRN_EXTRACTS)
def test_rows_of_people_not_in_people_are_excluded(tmp_path, name):
    spec = extract_schema(name)
    ids = {
        c: f"NEW{i}"
        for i, c in enumerate(spec["key"] or [])
        if spec["columns"][c]["type"] == "id" and c != "crn"
    }
    changes = with_rows(name, {**ids, "crn": "Z999999"})
    tables, log = run_clean(write_all(tmp_path, changes))
    assert len(tables[name]) == len(ROWS[name])
    assert log_count(log, name, "person_not_in_people") == 1


def test_records_dated_after_the_extract_end_are_excluded(tmp_path):
    changes = {
        **with_rows("enrolments", {"crn": "X100002", "enrolment_date": "2020-07-01"}),
        **with_rows("convictions", {"offence_date": "2020-06-01", "disposal_date": "2020-07-15"}),
        # a planned supervision end after the extract end is normal: kept
        **with_rows(
            "supervision", {"event_id": "E9", "start_date": "2020-06-30", "end_date": "2021-06-29"}
        ),
    }
    tables, log = run_clean(write_all(tmp_path, changes))
    assert len(tables["enrolments"]) == 1 and len(tables["convictions"]) == 2
    assert "E9" in tables["supervision"]["event_id"].tolist()
    assert log_count(log, "enrolments", "after_extract_end") == 1
    assert log_count(log, "convictions", "after_extract_end") == 1
    assert log_count(log, "supervision", "after_extract_end") == 0


def test_a_row_is_counted_once_under_the_first_rule_that_excludes_it(tmp_path):
    bad = {"event_id": "E9", "crn": "Z999999", "start_date": "2020-08-01", "end_date": "2020-07-01"}
    changes = with_rows("supervision", bad, bad)
    tables, log = run_clean(write_all(tmp_path, changes))
    counts = log[log["file"] == "supervision"].set_index("rule")["rows"]
    assert counts["exact_duplicate"] == 1 and counts["after_extract_end"] == 1
    assert counts["end_before_start"] == 0 and counts["person_not_in_people"] == 0
    assert counts["read"] == counts["kept"] + 2


def test_extra_columns_are_dropped_and_logged(tmp_path, caplog):
    paths = write_all(tmp_path)
    rows = [{**r, "notes": "free text", "zz": "1"} for r in ROWS["staff"]]
    write_csv(paths["staff"], rows)
    with caplog.at_level("INFO", logger="mydirection"):
        tables, _ = run_clean(paths)
    assert "notes" not in tables["staff"] and "zz" not in tables["staff"]
    assert "staff: 2 column(s) not in the contract dropped: notes, zz" in caplog.text
