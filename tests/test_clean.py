"""Tests of validation, cleaning and pseudonymisation (mydirection.validate, mydirection.clean)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from clean_harness import run_clean_stage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mydirection import clean
from mydirection.contract import EXTRACTS, extract_schema
from mydirection.errors import UserError
from mydirection.keys import fingerprint, source_key_pseudonym


def P(value: str, domain: str) -> str:
    """The pseudonym of a source-system key (event, contact, ... id) under the test key."""
    return source_key_pseudonym(value, KEY, domain)


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


def test_birth_year_is_the_only_age_fact_after_the_boundary(tmp_path):
    tables, _ = run_clean(write_all(tmp_path))
    assert tables["people"]["birth_year"].tolist() == [1990, 1985, 2000]
    for name, table in tables.items():
        ages = [c for c in table.columns if c.startswith("age") or "_age" in c or "birth" in c]
        assert ages == (["birth_year"] if name == "people" else []), name
    # later stages derive whole-year ages from it, birthday taken as 1 July
    from mydirection.contract import age_in_years

    dates = pd.to_datetime(["2018-03-01", "2018-07-01", "2018-12-31", None])
    assert age_in_years(dates, [1990, 1990, 1990, 1990])[:3].tolist() == [27, 28, 28]
    assert pd.isna(age_in_years(dates, [1990] * 4)[3])
    # 1990-05-17 to 2018-03-01: truly 27; within a year of the true age in every case
    truth = {"2018-03-01": 27, "2018-07-01": 28, "2018-12-31": 28}
    for d, got in zip(truth, age_in_years(dates[:3], [1990] * 3), strict=True):
        assert abs(got - truth[d]) <= 1


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
    assert tables["contacts"]["contact_id"].tolist() == [P("C1", "contact"), P("C2", "contact")]
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
    assert P("E9", "event") not in tables["supervision"]["event_id"].tolist()
    assert log_count(log, "supervision", "end_before_start") == 1
    # same-day start and end is possible
    changes = with_rows(
        "supervision", {"event_id": "E9", "start_date": "2018-05-01", "end_date": "2018-05-01"}
    )
    tables, log = run_clean(write_all(tmp_path / "b", changes))
    assert P("E9", "event") in tables["supervision"]["event_id"].tolist()


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
        {"contact_id": "C10", "crn": "X100002", "event_id": "E2", "contact_date": "2020-01-01"},
    )
    tables, log = run_clean(write_all(tmp_path, changes))
    assert tables["contacts"]["contact_id"].tolist() == [
        P(c, "contact") for c in ("C1", "C2", "C9", "C10")
    ]
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
    assert P("E9", "event") in tables["supervision"]["event_id"].tolist()
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


# --------------------------------------------------------------------------- file formats


def test_bom_semicolon_and_tab_files_are_read_like_plain_csv(tmp_path):
    expected, _ = run_clean(write_all(tmp_path / "plain"))
    paths = write_all(tmp_path / "odd")
    cols = {n: list(extract_schema(n)["columns"]) for n in EXTRACTS}
    write_csv(paths["people"], ROWS["people"], cols["people"], encoding="utf-8-sig")
    write_csv(paths["supervision"], ROWS["supervision"], cols["supervision"], delimiter=";")
    write_csv(
        paths["contacts"], ROWS["contacts"], cols["contacts"], delimiter="\t", encoding="utf-8-sig"
    )
    got, _ = run_clean(paths)
    for name in ("people", "supervision", "contacts"):
        pd.testing.assert_frame_equal(got[name], expected[name])


def test_quoted_values_with_commas_line_breaks_and_windows_line_ends(tmp_path):
    paths = write_all(tmp_path)
    staff = [
        {**ROWS["staff"][0], "office": "Hull, Queen St"},
        {**ROWS["staff"][1], "office": "Hull\nEast"},
    ]
    write_csv(paths["staff"], staff)
    text = paths["staff"].read_text().replace("\n", "\r\n")
    paths["staff"].write_bytes(text.encode())
    tables, _ = run_clean(paths)
    assert tables["staff"]["office"].tolist() == ["Hull, Queen St", "Hull\r\nEast"]


# --------------------------------------------------------------------------- malformed extracts


def _people(**changes_by_row) -> list[dict]:
    rows = [dict(p) for p in ROWS["people"]]
    for i, change in changes_by_row.items():
        rows[int(i[1:])].update(change)
    return rows


def _break(tmp_path, name, how):
    """Write the tiny dataset with extract ``name`` broken by ``how(path)``."""
    paths = write_all(tmp_path)
    how(paths[name])
    return paths


def _rows(name, *edits):
    """Rows of ``name`` with (row index, change) edits applied."""
    rows = [dict(r) for r in ROWS[name]]
    for i, change in edits:
        rows[i].update(change)
    return rows


def _rewrite(name, rows, **kw):
    return lambda p: write_csv(p, rows, kw.pop("columns", None) or list(rows[0]), **kw)


MALFORMED = {
    "missing_file": ("people", lambda p: p.unlink(), [r"people\.csv: file not found"]),
    "empty_file": ("staff", lambda p: p.write_bytes(b""), [r"staff\.csv: the file is empty"]),
    "header_only": (
        "plans",
        lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"),
        [r"plans\.csv: the file has a header but no data rows"],
    ),
    "missing_column": (
        "supervision",
        _rewrite(
            "supervision",
            [{k: v for k, v in r.items() if k != "rosh"} for r in ROWS["supervision"]],
        ),
        [r"supervision\.csv, column rosh: missing from the header"],
    ),
    "repeated_column": (
        "staff",
        lambda p: p.write_text(p.read_text().replace("grade", "office", 1)),
        [r"staff\.csv, column office: the header names this column more than once"],
    ),
    "unparseable_date": (
        "supervision",
        _rewrite(
            "supervision",
            _rows(
                "supervision", (0, {"start_date": "2019-02-30"}), (2, {"start_date": "next week"})
            ),
        ),
        [
            r"supervision\.csv, column start_date: 2 rows have a date",
            r"lines 2, 4;",
            r"1 not written as YYYY-MM-DD or DD/MM/YYYY",
            r"1 not a calendar date",
        ],
    ),
    "unknown_code": (
        "supervision",
        _rewrite("supervision", _rows("supervision", (1, {"rosh": " Severe "}))),
        [
            r"supervision\.csv, column rosh: 1 rows have a code that is not in the contract",
            r"lines 3;",
            r"'severe'",
            r"allowed: low, medium, high, very_high",
        ],
    ),
    "non_numeric_score": (
        "assessments",
        _rewrite("assessments", _rows("assessments", (0, {"ogrs3_2yr": "51%"}))),
        [r"assessments\.csv, column ogrs3_2yr: 1 rows have a value that is not a number"],
    ),
    "ogrs3_out_of_range": (
        "assessments",
        _rewrite("assessments", _rows("assessments", (0, {"ogrs3_1yr": "100.5"}))),
        [
            r"assessments\.csv, column ogrs3_1yr: 1 rows have a value outside the allowed "
            r"range 0-100"
        ],
    ),
    "negative_amount": (
        "enabling_fund",
        _rewrite("enabling_fund", _rows("enabling_fund", (0, {"amount_gbp": "-5"}))),
        [
            r"enabling_fund\.csv, column amount_gbp: 1 rows have a value outside the allowed "
            r"range 0 or more"
        ],
    ),
    "fractional_count": (
        "plans",
        _rewrite("plans", _rows("plans", (0, {"n_goals_own_words": "2.5"}))),
        [r"plans\.csv, column n_goals_own_words: 1 rows have a value that is not a whole"],
    ),
    "unknown_flag": (
        "activities",
        _rewrite("activities", _rows("activities", (0, {"attended": "maybe"}))),
        [r"activities\.csv, column attended: 1 rows have a flag that is not one of"],
    ),
    "duplicated_key": (
        "people",
        _rewrite(
            "people",
            [
                *ROWS["people"],
                {**ROWS["people"][0], "sex": "female"},
                {**ROWS["people"][0], "ethnicity": "black"},
            ],
        ),
        [
            r"people\.csv, column crn: 3 rows share their key \(crn\) with another row",
            r"lines 2, 5, 6;",
            r"one row per person",
        ],
    ),
    "duplicated_compound_key": (
        "assessments",
        _rewrite(
            "assessments", [*ROWS["assessments"], {**ROWS["assessments"][0], "ogrs3_1yr": "20"}]
        ),
        [r"assessments\.csv, column crn, assessment_date: 2 rows share their key"],
    ),
    "required_blank": (
        "contacts",
        _rewrite("contacts", _rows("contacts", (1, {"event_id": ""}))),
        [
            r"contacts\.csv, column event_id: 1 rows have a blank value in a required column",
            r"lines 3;",
        ],
    ),
    "not_utf8": (
        "staff",
        _rewrite("staff", _rows("staff", (1, {"office": "Beverley Caf\xe9"})), encoding="latin-1"),
        [r"staff\.csv: 1 rows are not valid UTF-8 text \(e\.g\. lines 3;", r"as UTF-8"],
    ),
    "unbalanced_quote": (
        "staff",
        lambda p: p.write_text(p.read_text() + 'S3,"Hull Central,po,,1\nS4,Hull,po,,1\n'),
        [r"staff\.csv: (the file could not be read|1 rows do not have the 5 fields)"],
    ),
    "ragged_row": (
        "enrolments",
        lambda p: p.write_text(p.read_text() + "X100002,2018-04-01,S2,,,surplus\n"),
        [r"enrolments\.csv: 1 rows do not have the 5 fields of the header \(e\.g\. lines 3;"],
    ),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_extract_stops_with_one_clear_message(tmp_path, kind):
    name, how, patterns = MALFORMED[kind]
    paths = _break(tmp_path, name, how)
    with pytest.raises(UserError) as err:
        run_clean(paths)
    message = str(err.value)
    assert "\n" not in message or kind == "repeated_column"  # there: grade is missing too
    for pattern in patterns:
        assert re.search(pattern, message), message
    assert "re-run" in message or "re-export" in message or "raw_dir" in message


@pytest.mark.parametrize(
    "change",
    [
        {"date_of_birth": "31/02/1990"},
        {"date_of_birth": ""},
        {"pnc_id": "", "crn": ""},
    ],
)
def test_messages_never_show_identifying_values(tmp_path, change):
    people = _rows("people", (2, change))
    paths = write_all(tmp_path, {"people": people})
    with pytest.raises(UserError) as err:
        run_clean(paths)
    message = str(err.value)
    assert "lines 4;" in message
    for value in [*change.values(), *(p["crn"] for p in ROWS["people"])]:
        if value:
            assert value not in message


def test_every_problem_of_every_file_is_reported_at_once(tmp_path):
    sup = _rows(
        "supervision", (0, {"rosh": "extreme", "start_date": "soon"}), (1, {"sentence_type": ""})
    )
    staff = _rows("staff", (0, {"grade": "boss"}))
    with pytest.raises(UserError) as err:
        run_clean(write_all(tmp_path, {"supervision": sup, "staff": staff}))
    lines = str(err.value).splitlines()
    assert lines[0].startswith("4 problems in 2 extract(s) (staff.csv, supervision.csv)")
    body = "\n".join(lines[1:])
    assert "column sentence_type: 1 rows have a blank value" in body
    assert "column start_date: 1 rows have a date" in body
    assert "column rosh: 1 rows have a code" in body and "'extreme'" in body
    assert "staff.csv, column grade: 1 rows have a code" in body
    assert "further problem" not in body


# --------------------------------------------------------------------------- pseudonymisation


def _reference_id(crn: str, key: bytes) -> str:
    import hashlib
    import hmac

    return hmac.new(key, crn.encode(), hashlib.sha256).hexdigest()[:16]


def test_person_id_is_the_keyed_hash_of_the_crn(tmp_path):
    tables, _ = run_clean(write_all(tmp_path))
    expected = [_reference_id(p["crn"], KEY) for p in ROWS["people"]]
    assert tables["people"]["person_id"].tolist() == expected
    # the same person has the same id in every extract
    assert tables["supervision"]["person_id"].tolist() == expected
    assert tables["enrolments"]["person_id"].tolist() == expected[:1]


def test_pseudonyms_are_deterministic_and_depend_on_the_key(tmp_path):
    paths = write_all(tmp_path)
    a, _ = run_clean(paths, KEY)
    b, _ = run_clean(paths, KEY)
    c, _ = run_clean(paths, b"another-key-0123456789abcdef")
    assert a["people"]["person_id"].tolist() == b["people"]["person_id"].tolist()
    assert not set(a["people"]["person_id"]) & set(c["people"]["person_id"])
    assert all(len(p) == 16 and int(p, 16) >= 0 for p in c["people"]["person_id"])


def test_person_ids_are_the_published_hmac_of_each_crn():
    """The batched pseudonymisation (one keyed state copied per CRN) gives exactly
    HMAC-SHA256(key, crn), first 16 hex characters, computed here from the standard library;
    a repeated CRN gets the same id and a missing one stays missing."""
    import hashlib
    import hmac

    crns = pd.Series(["X123456", "A000001", "X123456", None, "Z9"], dtype="string[pyarrow]")
    ids = clean.pseudonymise(crns, KEY)
    for crn, pid in zip(crns, ids, strict=True):
        if crn is pd.NA:
            assert pid is pd.NA or pd.isna(pid)
        else:
            assert pid == hmac.new(KEY, crn.encode(), hashlib.sha256).hexdigest()[:16]


def test_no_raw_identifier_reaches_the_output_folder(tmp_path):
    tables, log = run_clean(write_all(tmp_path / "raw"))
    out = tmp_path / "results" / "clean"
    outputs = {n: out / f"{n}.parquet" for n in EXTRACTS}
    outputs["cleaning_log"] = out / "cleaning_log.parquet"
    clean.write_tables(tables, log, outputs)
    secrets = (
        {p["crn"] for p in ROWS["people"]}
        | {p["pnc_id"] for p in ROWS["people"] if p["pnc_id"]}
        | {p["date_of_birth"] for p in ROWS["people"]}
    )
    files = sorted(out.glob("*.parquet"))
    assert len(files) == 11
    for f in files:
        data = pd.read_parquet(f)
        text = data.astype(str).to_csv() + " ".join(map(str, data.columns))
        raw_bytes = f.read_bytes()
        for s in secrets:
            assert s not in text, f"{s} in {f.name}"
            assert s.encode() not in raw_bytes, f"{s} in the bytes of {f.name}"
    assert "date_of_birth" not in pd.read_parquet(out / "people.parquet")


def test_synthetic_runs_use_the_fixed_documented_key(monkeypatch):
    monkeypatch.setenv("MYDIRECTION_PSEUDO_KEY", "x" * 40)
    assert clean.load_key({"key_env": "MYDIRECTION_PSEUDO_KEY"}, synthetic=True) == (
        clean.SYNTHETIC_KEY
    )


def test_real_runs_read_the_key_from_the_environment_then_the_key_file(tmp_path):
    key_file = tmp_path / "pseudo.key"
    key_file.write_text("file-key-0123456789abcdef\n")
    settings = {"key_env": "MY_KEY", "key_file": str(key_file)}
    env = {"MY_KEY": "env-key-0123456789abcdef"}
    assert clean.load_key(settings, synthetic=False, environ=env) == b"env-key-0123456789abcdef"
    assert clean.load_key(settings, synthetic=False, environ={}) == b"file-key-0123456789abcdef"


def test_real_runs_without_a_key_stop_with_instructions():
    with pytest.raises(UserError, match="set the environment variable MY_KEY"):
        clean.load_key({"key_env": "MY_KEY", "key_file": None}, synthetic=False, environ={})


def test_a_key_file_inside_the_repository_is_refused(tmp_path):
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    key_file = repo / "config" / "pseudo.key"
    key_file.write_text("k" * 40)
    settings = {"key_env": "MY_KEY", "key_file": str(key_file)}
    with pytest.raises(UserError, match="inside the workflow directory or repository"):
        clean.load_key(settings, synthetic=False, repo_root=repo, environ={})
    # the workflow directory being run counts, whatever package is installed
    with pytest.raises(UserError, match="inside the workflow directory or repository"):
        clean.load_key(settings, synthetic=False, workflow_dir=repo, environ={})


@pytest.mark.parametrize("source", ["env", "file", "missing_file"])
def test_short_or_missing_keys_are_refused(tmp_path, source):
    key_file = tmp_path / "k"
    if source == "file":
        key_file.write_text("short")
    settings = {"key_env": "MY_KEY", "key_file": str(key_file)}
    env = {"MY_KEY": "short"} if source == "env" else {}
    with pytest.raises(UserError, match="too short|file not found"):
        clean.load_key(settings, synthetic=False, environ=env)


# --------------------------------------------------------------------------- through the script


def test_script_writes_every_output_and_its_numbers(tmp_path):
    import json

    run = run_clean_stage(write_all(tmp_path / "raw"), tmp_path / "results")
    assert run.code == 0, run.log_text()
    for path in run.outputs:
        assert Path(path).is_file(), path
    log = pd.read_parquet(run.out / "clean" / "cleaning_log.parquet")
    doc = json.loads((run.out / "numbers" / "clean.json").read_text())
    received = int(log.loc[log.action == "received", "rows"].sum())
    assert doc["numbers"]["clean.rows_received"]["value"] == received
    assert doc["numbers"]["clean.n_people"]["value"] == 3
    assert doc["numbers"]["clean.key_fingerprint"]["value"] == fingerprint(clean.SYNTHETIC_KEY)
    per_file = log.pivot_table(index="file", columns="action", values="rows", aggfunc="sum")
    assert (per_file["received"] == per_file["kept"] + per_file["excluded"]).all()
    assert "X100001" not in run.log_text()


@pytest.mark.parametrize("kind", ["unknown_code", "not_utf8", "missing_file", "required_blank"])
def test_script_failure_is_one_line_no_traceback_no_outputs(tmp_path, capsys, kind):
    name, how, patterns = MALFORMED[kind]
    run = run_clean_stage(
        _break(tmp_path / "raw", name, how), tmp_path / "results", plant_stale=True
    )
    assert run.code == 1 and run.failed_rule == "clean_extract"
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"{name}.csv" in errors[0]
    assert not [p for p in run.failed_outputs if p.exists()]  # the failing job's outputs


def test_script_on_real_extracts_without_a_key_stops(tmp_path, capsys):
    run = run_clean_stage(write_all(tmp_path / "raw"), tmp_path / "results", raw_dir="raw")
    assert run.code == 1 and run.failed_rule == "clean_extract"
    assert "no pseudonymisation key for real extracts" in capsys.readouterr().err
    assert not (run.out / "clean" / "people.parquet").exists()


# --------------------------------------------------------------------------- property: brute force


EVENT_END = {"E1": "2019-03-01", "E2": None, "E3": "2019-12-01"}
EVENT_OWNER = {"E1": "X100001", "E2": "X100002", "E3": "X100003"}

_contact = st.fixed_dictionaries(
    {
        "crn": st.sampled_from(["X100001", "X100002", "X100003", "Z000001"]),
        "event_id": st.sampled_from(["E1", "E2", "E3", "E404"]),
        "day": st.integers(0, 4 * 365),
        "dmy": st.booleans(),
        "messy_code": st.booleans(),
        "copies": st.integers(0, 2),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_contact, min_size=1, max_size=12))
def test_contacts_cleaning_matches_a_row_by_row_reference(tmp_path_factory, specs):
    folder = tmp_path_factory.mktemp("prop")
    rows, expected_kept, counts = (
        [],
        [],
        dict.fromkeys(
            [
                "exact_duplicate",
                "after_extract_end",
                "person_not_in_people",
                "event_not_in_supervision",
                "event_of_another_person",
                "contact_after_order_end",
                "code_normalised",
                "date_format",
            ],
            0,
        ),
    )
    for i, s in enumerate(specs):
        date = pd.Timestamp("2017-06-01") + pd.Timedelta(days=s["day"])
        text = date.strftime("%d/%m/%Y") if s["dmy"] else date.strftime("%Y-%m-%d")
        row = {
            "contact_id": f"C{i}",
            "crn": s["crn"],
            "event_id": s["event_id"],
            "contact_date": text,
            "contact_type": " Home_Visit" if s["messy_code"] else "home_visit",
            "outcome": "attended",
            "case_manager_id": "S1",
        }
        rows += [row] * (1 + s["copies"])
        counts["exact_duplicate"] += s["copies"]
        end = EVENT_END.get(s["event_id"])
        if date > pd.Timestamp(END):
            counts["after_extract_end"] += 1
        elif s["crn"] == "Z000001":
            counts["person_not_in_people"] += 1
        elif s["event_id"] not in EVENT_END:
            counts["event_not_in_supervision"] += 1
        elif EVENT_OWNER[s["event_id"]] != s["crn"]:
            counts["event_of_another_person"] += 1
        elif end is not None and date > pd.Timestamp(end):
            counts["contact_after_order_end"] += 1
        else:
            expected_kept.append(P(f"C{i}", "contact"))
            counts["code_normalised"] += s["messy_code"]
            counts["date_format"] += s["dmy"]
    if all(s["crn"] == "Z000001" for s in specs):  # not one contact links: stop, loudly
        with pytest.raises(UserError, match="contacts.csv, column crn: no people linked"):
            run_clean(write_all(folder, {"contacts": rows}))
        return
    tables, log = run_clean(write_all(folder, {"contacts": rows}))
    assert tables["contacts"]["contact_id"].tolist() == expected_kept
    for rule, n in counts.items():
        assert log_count(log, "contacts", rule) == n, rule
    assert log_count(log, "contacts", "read") == len(rows)
    assert log_count(log, "contacts", "kept") == len(expected_kept)


# --------------------------------------------------------------------------- synthetic data


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """A tiny synthetic dataset (mydirection.synthetic) and its cleaned tables and log."""
    from mydirection import synthetic

    raw = tmp_path_factory.mktemp("synthetic")
    _, mess = synthetic.write_extracts(raw, {"n_treated": 30, "n_comparator_pool": 300}, 11)
    paths = {n: raw / f"{n}.csv" for n in EXTRACTS}
    tables, log = clean.clean_extracts(paths, END, clean.SYNTHETIC_KEY)
    return raw, mess, tables, log


def test_every_row_of_the_synthetic_extracts_is_accounted_for(synthetic_run):
    raw, _, tables, log = synthetic_run
    for name in EXTRACTS:
        with (raw / f"{name}.csv").open() as fh:
            n_lines = sum(1 for _ in fh) - 1
        per = log[log["file"] == name]
        received = int(per.loc[per["action"] == "received", "rows"].sum())
        kept = int(per.loc[per["action"] == "kept", "rows"].sum())
        excluded = int(per.loc[per["action"] == "excluded", "rows"].sum())
        fixed = per.loc[per["action"] == "fixed", "rows"]
        assert received == n_lines
        assert received == kept + excluded
        assert kept == len(tables[name])
        assert (fixed <= kept).all()
    assert not log.duplicated(["file", "rule", "action"]).any()


def test_cleaning_log_reproduces_the_planted_mess_exactly(synthetic_run):
    _, mess, _, log = synthetic_run
    assert set(mess) == set(EXTRACTS)
    planted_total = 0
    for name, kinds in mess.items():
        for kind, n in kinds.items():
            rule, action = clean.MESS_RULES[kind]
            got = log_count(log, name, rule, action)
            assert got == n, f"{name} {kind}: planted {n}, cleaning log {got}"
            planted_total += n
    assert planted_total > 0
    # nothing else was excluded: the rules without planted mess found nothing
    other = log[
        (log["action"] == "excluded") & ~log["rule"].isin([r for r, _ in clean.MESS_RULES.values()])
    ]
    assert other["rows"].sum() == 0


def test_no_raw_crn_appears_in_the_written_synthetic_outputs(synthetic_run, tmp_path):
    raw, _, tables, log = synthetic_run
    out = tmp_path / "clean"
    outputs = {n: out / f"{n}.parquet" for n in EXTRACTS}
    outputs["cleaning_log"] = out / "cleaning_log.parquet"
    clean.write_tables(tables, log, outputs)
    crns = set()
    for name in EXTRACTS:
        df = pd.read_csv(raw / f"{name}.csv", dtype=str, keep_default_na=False)
        if "crn" in df:
            crns |= set(df["crn"].str.strip())
    crns.discard("")
    assert len(crns) > 300
    for f in sorted(out.glob("*.parquet")):
        data = pd.read_parquet(f)
        cells = set()
        for col in data.columns:
            if data[col].dtype != "datetime64[ns]":
                cells |= set(data[col].astype(str))
        assert not (cells & crns), f"raw CRN in {f.name}"
        blob = f.read_bytes()
        assert not any(c.encode() in blob for c in crns), f"raw CRN bytes in {f.name}"


_cell = st.sampled_from(["", "a", "b", "a\x1fb", "ab", None])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_cell, _cell, _cell), min_size=0, max_size=30))
def test_duplicate_detection_matches_pandas(rows):
    from mydirection.validate import duplicated_rows

    frame = pd.DataFrame(rows, columns=["k", "x", "y"], dtype=object)
    arrow = frame.astype(pd.ArrowDtype(__import__("pyarrow").string()))
    for keep in ("first", False):
        expected = frame.duplicated(keep=keep).to_numpy()
        assert (duplicated_rows(arrow, ["k", "x", "y"], keep=keep) == expected).all()
    expected = frame.duplicated(keep="first").to_numpy()
    assert (clean.exact_duplicates(arrow, ["k"]).to_numpy() == expected).all()
    assert (clean.exact_duplicates(arrow).to_numpy() == expected).all()
    # a code space of 8 overflows after two columns: the dense re-numbering is exercised
    with mock.patch("mydirection.validate.CODE_SPACE", 8):
        for keep in ("first", False):
            expected = frame.duplicated(keep=keep).to_numpy()
            assert (duplicated_rows(arrow, ["k", "x", "y"], keep=keep) == expected).all()


# --------------------------------------------------------------------------- through Snakemake

ROOT = Path(__file__).resolve().parents[1]


def _workflow_copy(tmp_path: Path) -> Path:
    import shutil

    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "environment.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, work / name)
    for folder in ("workflow", "config", "scripts", "src"):
        shutil.copytree(ROOT / folder, work / folder)
    return work


@pytest.mark.slow
def test_snakemake_rule_clean_on_synthetic_then_on_a_malformed_real_extract(tmp_path):
    import os
    import subprocess
    import sys

    snakemake = str(Path(sys.executable).with_name("snakemake"))
    work = _workflow_copy(tmp_path)
    target = "results/numbers/clean.json"
    ok = subprocess.run(
        [snakemake, "--cores", "1", target], cwd=work, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr[-3000:]
    log = pd.read_parquet(work / "results/clean/cleaning_log.parquet")
    mess = __import__("json").loads((work / "data/synthetic/mess.json").read_text())
    for name, kinds in mess.items():
        for kind, n in kinds.items():
            rule, action = clean.MESS_RULES[kind]
            assert log_count(log, name, rule, action) == n

    raw = tmp_path / "real"
    paths = write_all(raw)
    MALFORMED["ogrs3_out_of_range"][1](paths["assessments"])
    env = {**os.environ, "MYDIRECTION_PSEUDO_KEY": "a-real-key-0123456789abcdef"}
    import time

    started = time.time_ns()
    bad = subprocess.run(
        [snakemake, "--cores", "1", target, "--config", f"raw_dir={raw}"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "Traceback" not in text
    assert "assessments.csv, column ogrs3_1yr: 1 rows have a value outside" in text
    # the failing job leaves none of its outputs and nothing after the stage runs (jobs of
    # extracts whose own file is valid may have cleaned them meanwhile)
    assert not (work / "results/clean/assessments.parquet").exists()
    assert (work / target).stat().st_mtime_ns < started  # the synthetic run's, not rewritten
    fresh = {
        p.name for p in (work / "results/clean").glob("*.parquet") if p.stat().st_mtime_ns > started
    }
    assert "assessments.parquet" not in fresh and "cleaning_log.parquet" not in fresh, fresh


def test_same_inputs_give_the_same_bytes(tmp_path):
    import hashlib

    paths = write_all(tmp_path / "raw")
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        outputs = {n: out / f"{n}.parquet" for n in EXTRACTS}
        outputs["cleaning_log"] = out / "cleaning_log.parquet"
        write = clean.parquet_writer(outputs)
        _, log = clean.clean_extracts(paths, END, KEY, write=write)
        write("cleaning_log", log)
        digests.append(
            {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("*.parquet")}
        )
    assert len(digests[0]) == 11 and digests[0] == digests[1]


# --------------------------------------------------------------------------- the lean path


def test_in_memory_tables_clean_exactly_like_the_files(tmp_path, caplog):
    """The simulation study's lean path (no CSV, no pandera) gives the file path's tables
    and log, value for value, on the synthetic extracts (mess included)."""
    import logging

    from mydirection import synthetic

    syn = synthetic.generate({"n_treated": 30, "n_comparator_pool": 300}, 7)
    raw = tmp_path / "raw"
    synthetic.write_extracts(raw, {"n_treated": 30, "n_comparator_pool": 300}, 7)
    files, file_log = clean.clean_extracts({n: raw / f"{n}.csv" for n in EXTRACTS}, END, KEY)
    in_memory = {
        n: pd.read_csv(raw / f"{n}.csv", dtype=str, keep_default_na=False) for n in EXTRACTS
    }
    caplog.set_level(logging.INFO, logger="mydirection")
    caplog.clear()
    tables, log = clean.clean_tables(in_memory, END, KEY)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]  # quiet
    pd.testing.assert_frame_equal(log, file_log)
    for name in EXTRACTS:
        pd.testing.assert_frame_equal(tables[name], files[name], obj=name)
    # the generator's own in-memory tables (what a replicate holds) give the same
    gen, gen_log = clean.clean_tables(syn.extracts, END, KEY)
    pd.testing.assert_frame_equal(gen_log, file_log)
    for name in EXTRACTS:
        pd.testing.assert_frame_equal(gen[name], files[name], obj=name)
    # asked to, it validates too (and finds what the file path finds)
    bad = dict(in_memory, staff=in_memory["staff"].assign(grade="boss"))
    with pytest.raises(UserError, match="staff.csv, column grade"):
        clean.clean_tables(bad, END, KEY, validate=True)


def test_the_lean_path_cleans_a_subset_of_extracts_as_it_cleans_all_ten():
    """A simulation replicate cleans only the extracts the cohort reads: each of them comes
    out as it does when all ten are cleaned, and its log lines are the same."""
    from mydirection import synthetic

    syn = synthetic.generate({"n_treated": 30, "n_comparator_pool": 300}, 7)
    everything, full_log = clean.clean_tables(syn.extracts, END, KEY)
    chain = ("people", "supervision", "assessments", "convictions", "enrolments")
    part, part_log = clean.clean_tables({n: syn.extracts[n] for n in chain}, END, KEY)
    assert list(part) == list(chain)
    for name in chain:
        pd.testing.assert_frame_equal(part[name], everything[name], obj=name)
    pd.testing.assert_frame_equal(
        part_log, full_log[full_log["file"].isin(chain)].reset_index(drop=True)
    )
    with pytest.raises(ValueError, match=r"add \[.people.\]"):
        clean.clean_tables({"convictions": syn.extracts["convictions"]}, END, KEY)


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (" " * 16, "is blank"),
        ("a" * 40, "too little variety"),
        ("abcdefgh" * 4, "8-character pattern repeated"),
        ("short-key", "too short"),
    ],
)
def test_weak_keys_are_refused(value, says):
    with pytest.raises(UserError, match=says):
        clean.load_key({"key_env": "MY_KEY"}, synthetic=False, environ={"MY_KEY": value})


def test_one_normalisation_for_the_environment_and_the_key_file(tmp_path):
    secret = "  a-long-random-secret-0123456789 "
    key_file = tmp_path / "pseudo.key"
    key_file.write_text(secret + "\n")
    key_file.chmod(0o600)
    from_env = clean.load_key({"key_env": "K"}, synthetic=False, environ={"K": secret})
    from_file = clean.load_key(
        {"key_env": "K", "key_file": str(key_file)}, synthetic=False, environ={}
    )
    assert from_env == from_file == b"a-long-random-secret-0123456789"


def test_a_key_file_other_users_can_read_gets_a_warning(tmp_path, caplog):
    key_file = tmp_path / "pseudo.key"
    key_file.write_text("a-long-random-secret-0123456789")
    key_file.chmod(0o644)
    clean.load_key({"key_env": "K", "key_file": str(key_file)}, synthetic=False, environ={})
    assert "can be read by other users (mode 644)" in caplog.text and "chmod 600" in caplog.text
    caplog.clear()
    key_file.chmod(0o600)
    clean.load_key({"key_env": "K", "key_file": str(key_file)}, synthetic=False, environ={})
    assert "other users" not in caplog.text


def test_the_key_fingerprint_tells_keys_apart_without_revealing_them():
    import hashlib
    import hmac

    from mydirection.keys import fingerprint

    a, b = b"a-long-random-secret-0123456789", b"another-long-secret-0123456789"
    expected = hmac.new(a, b"mydirection-key-fingerprint", hashlib.sha256).hexdigest()[:12]
    assert fingerprint(a) == expected and len(expected) == 12
    assert fingerprint(a) != fingerprint(b)


def test_real_looking_files_in_the_synthetic_folder_are_refused(tmp_path, capsys):
    import json
    import os

    raw = tmp_path / "synthetic"
    paths = write_all(raw)  # no generator stamp: may be real data
    run = run_clean_stage(paths, tmp_path / "a")  # the harness stamps a bare folder...
    assert run.code == 0
    for stamp in ("truth.json", "mess.json"):  # ...so take the stamp away again
        (raw / stamp).unlink()
    from mydirection.cleanstage import synthetic_stamp_problems

    (problem,) = synthetic_stamp_problems(raw)
    assert "without the synthetic generator's stamp" in problem.message()
    # stamped, but an extract replaced afterwards
    for stamp in ("truth.json", "mess.json"):
        (raw / stamp).write_text("{}")
    later = (raw / "mess.json").stat().st_mtime_ns + 10**9
    os.utime(raw / "people.csv", ns=(later, later))
    (problem,) = synthetic_stamp_problems(raw)
    assert "people.csv changed after the synthetic generator wrote its stamp" in problem.message()
    # a stamp recording checksums is checked exactly
    os.utime(raw / "people.csv", ns=(later - 2 * 10**9, later - 2 * 10**9))
    (raw / "mess.json").write_text(json.dumps({"sha256": {"people": "0" * 64}}))
    (problem,) = synthetic_stamp_problems(raw)
    assert "people.csv do not match the checksums" in problem.message()


# --------------------------------------------------------------------------- source rows


def test_every_cleaned_row_names_its_line_in_the_raw_file(tmp_path):
    from mydirection.contract import source_lines

    sup = [*ROWS["supervision"], ROWS["supervision"][0]]  # an exact duplicate on line 5
    tables, _ = run_clean(write_all(tmp_path, {"supervision": sup}))
    for name, table in tables.items():
        assert table["source_row"].dtype == "int64", name
        assert table["source_row"].min() >= 2, name  # line 1 is the header
    assert tables["supervision"]["source_row"].tolist() == [2, 3, 4]
    assert source_lines(tables["supervision"], "supervision") == "supervision.csv lines 2, 3, 4"
    assert source_lines([41], "people") == "people.csv line 41"
    assert source_lines(range(2, 12), "people") == "people.csv lines 2, 3, 4, 5, 6 and 5 more"


def test_remembered_person_ids_are_per_key_and_bounded(monkeypatch):
    """The in-process memo of person ids never gives one key's id for another key, and a
    full memo is emptied (a wrong remembered id would merge two people)."""
    from mydirection import cleansteps

    monkeypatch.setattr(cleansteps, "_MEMO", {})
    monkeypatch.setattr(cleansteps, "MEMO_MAX", 2)
    crns = pd.Series([f"X{i:06d}" for i in range(5)], dtype="string[pyarrow]")
    other = b"another-key-0123456789abcdef"
    first = clean.pseudonymise(crns, KEY).tolist()
    assert clean.pseudonymise(crns, other).tolist() != first
    assert clean.pseudonymise(crns, KEY).tolist() == first
    assert all(len(m) <= 5 for m in cleansteps._MEMO.values())
    assert clean.pseudonymise(crns[:1], KEY).tolist() == first[:1]
    assert len(cleansteps._MEMO[KEY]) == 1  # emptied when over the bound, then refilled


#: Identifier characters: plain ASCII, spaces and tabs, controls, and Unicode that NFKC folds
#: (full-width letters, ligatures, Roman numerals) or that is invisible (zero-width, BOM).
ID_CHARS = list("abcXYZ019-_/ \t\r\x00\x7f") + list("\u00a0\u200b\ufeff\u3000\uff21\u2167ﬁéß")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(alphabet=st.sampled_from(ID_CHARS), max_size=6)),
        max_size=30,
    ),
    st.booleans(),
)
def test_normalise_id_upper_cases_plain_ascii_and_applies_the_full_rule_to_the_rest(values, arrow):
    """normalise_id only upper-cases printable ASCII ids without spaces and runs the full
    rule (NFKC, invisible characters removed, upper case) on the other rows: the result and
    the 'changed' flags equal the full rule run on every row."""
    import pyarrow.compute as pc

    from mydirection.validate import _normalise_id_text, _text, normalise_id

    series = pd.Series(values, dtype="string[pyarrow]" if arrow else object)
    got, changed = normalise_id(series)
    full = _normalise_id_text(_text(series))
    pd.testing.assert_series_equal(got, pd.Series(pd.arrays.ArrowExtensionArray(full)))
    expected = pc.fill_null(pc.not_equal(full, _text(series)), False).to_numpy(zero_copy_only=False)
    assert changed.tolist() == expected.tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["A1", "B2", "C3", "d4"]), st.sampled_from([None, 0, 1, 2])),
        min_size=1,
        max_size=40,
    ),
    st.booleans(),
)
def test_pnc_counts_equal_a_groupby_of_the_text(rows, arrow):
    """The people rules on PNC ids count, per row, the distinct birth dates (missing ones
    not counted) and the rows of its PNC id by integer codes; the same as pandas' groupby
    transform('nunique') and transform('size') on the text."""
    from mydirection.cleansteps import pnc_counts

    days = [None, "1980-01-01", "1980-01-02", "1991-06-30"]
    pnc = pd.Series([p for p, _ in rows], dtype="string[pyarrow]" if arrow else object)
    dob = pd.to_datetime(pd.Series([None if d is None else days[d + 1] for _, d in rows]))
    n_dob, n_rows = pnc_counts(pnc, dob.to_numpy("datetime64[ns]"))
    frame = pd.DataFrame({"pnc": pnc.astype(object), "dob": dob})
    assert n_dob.tolist() == frame.groupby("pnc")["dob"].transform("nunique").tolist()
    assert n_rows.tolist() == frame.groupby("pnc")["dob"].transform("size").tolist()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["E1", "E2", "e1", "E1 ", "", None]), max_size=20),
    st.sampled_from(["string[pyarrow]", "object"]),
    st.integers(1, 4),
)
def test_hashing_every_row_gives_the_pseudonyms_of_hashing_each_value_once(values, dtype, batch):
    """The ``distinct`` path (an extract's own key) equals the one that hashes each distinct
    value once, missing values and repeats included, across batch boundaries."""
    from mydirection import cleansteps

    series = pd.Series(values, dtype=dtype, index=range(5, 5 + len(values)))
    with mock.patch.object(cleansteps, "HASH_BATCH", batch):
        rows = cleansteps.pseudonymise_key(series, b"k" * 32, "event", distinct=True)
    once = cleansteps.pseudonymise_key(series, b"k" * 32, "event")
    assert rows.index.equals(series.index)
    assert rows.astype(object).tolist() == once.astype(object).tolist()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["C1", "C2", "C3", "c1", "", None]), max_size=20),
    st.lists(st.sampled_from(["C1", "C2", "C3", "C4"]), unique=True, max_size=4),
    st.booleans(),
)
def test_a_link_looked_up_per_distinct_value_finds_each_rows_row(values, table, distinct):
    """Pseudonyms.positions_in (one lookup per distinct value) equals looking up every
    row's pseudonym in the linked table."""
    from mydirection import cleansteps

    key = b"k" * 32
    p = cleansteps.key_pseudonyms(pd.Series(values, dtype=object), key, "crn", distinct)
    linked = cleansteps.pseudonymise_key(pd.Series(table, dtype=object), key, "crn")
    idx, found = p.positions_in(linked)
    ref_idx, ref_found = cleansteps._positions(p.series(range(len(values))), linked)
    assert (found == ref_found).all()
    assert (idx[found] == ref_idx[ref_found]).all()
