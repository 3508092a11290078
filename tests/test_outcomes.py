"""Tests of the proven re-offending outcomes: every boundary of the MoJ definition, the
pre-index window, and a brute-force reference on random data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mydirection.errors import UserError
from mydirection.outcomes import OUTCOME_COLUMNS, proven_reoffending

INDEX = pd.Timestamp("2018-06-01")
COLS = ["person_id", "offence_date", "disposal_date", "offence_group", "disposal_type", "severity"]


def conv(person, offence_day, disposal_day=None, group="theft", disposal="fine", sev="summary"):
    """A conviction with dates given as days from INDEX."""
    disposal_day = offence_day if disposal_day is None else disposal_day
    return (
        person,
        INDEX + pd.Timedelta(days=offence_day),
        INDEX + pd.Timedelta(days=disposal_day),
        group,
        disposal,
        sev,
    )


def outcomes(rows, people=None, **kw):
    people = people or sorted({r[0] for r in rows})
    cohort = pd.DataFrame({"person_id": people, "index_date": INDEX})
    convictions = pd.DataFrame(rows, columns=COLS).astype(
        {"offence_date": "datetime64[ns]", "disposal_date": "datetime64[ns]"}
    )
    return proven_reoffending(cohort, convictions, **kw).set_index("person_id")


@pytest.mark.parametrize(
    ("offence_day", "disposal_day", "counts"),
    [
        (365, 365, True),  # last day of the follow-up window
        (366, 366, False),  # one day after it
        (1, 1, True),  # the day after the index date
        (0, 0, False),  # on the index date: not a re-offence (nor history)
        (-1, -1, False),  # the day before
        (-1, 30, False),  # committed before index, proven after: never counts
        (-200, 400, False),
        (100, 547, True),  # proven on the last day of the waiting period
        (100, 548, False),  # one day later
        (365, 547, True),
        (365, 548, False),
    ],
)
def test_followup_and_waiting_boundaries(offence_day, disposal_day, counts):
    o = outcomes([conv("p", offence_day, disposal_day)]).loc["p"]
    assert o["reoffended"] == int(counts)
    assert o["n_reoffences"] == int(counts)
    assert o["event"] == int(counts)
    assert o["days_to_first"] == (offence_day if counts else 365)


def test_breach_never_counts():
    o = outcomes(
        [conv("p", 10, group="breach", disposal="custody"), conv("p", -10, group="breach")]
    ).loc["p"]
    assert o["reoffended"] == 0 and o["n_reoffences"] == 0 and o["custodial_reoffence"] == 0
    assert o["pre_n_offences"] == 0
    assert o["first_reoffence_severity"] is None


def test_frequency_first_offence_custody_and_severity():
    o = outcomes(
        [
            conv("p", 200, 300, disposal="custody", sev="indictable"),
            conv("p", 40, 80, sev="summary"),
            conv("p", 40, 90, sev="either_way"),  # same day: the more severe one is first
            conv("p", 400, 420, disposal="custody"),  # outside: custody does not count
            conv("q", 400, 420, disposal="custody"),
        ]
    )
    p, q = o.loc["p"], o.loc["q"]
    assert p["n_reoffences"] == 3 and p["days_to_first"] == 40
    assert p["first_reoffence_severity"] == "either_way"
    assert p["custodial_reoffence"] == 1
    assert q["reoffended"] == 0 and q["custodial_reoffence"] == 0 and q["days_to_first"] == 365


@pytest.mark.parametrize(
    ("offence_day", "disposal_day", "counts"),
    [
        (-1, -1, True),
        (-365, -300, True),  # first day of the pre-index window
        (-366, -300, False),  # one day before it
        (0, 0, False),  # the index date belongs to neither window
        (-10, 181, True),  # proven by day W - 1 = 181
        (-10, 182, False),
    ],
)
def test_pre_index_window(offence_day, disposal_day, counts):
    o = outcomes([conv("p", offence_day, disposal_day)]).loc["p"]
    assert o["pre_reoffended"] == int(counts)
    assert o["pre_n_offences"] == int(counts)
    assert o["reoffended"] == 0


def test_windows_follow_config():
    rows = [conv("p", 200, 250)]
    assert outcomes(rows, followup_days=180).loc["p", "reoffended"] == 0
    assert outcomes(rows, followup_days=200, waiting_days=50).loc["p", "reoffended"] == 1
    assert outcomes(rows, followup_days=200, waiting_days=49).loc["p", "reoffended"] == 0
    assert outcomes(rows, followup_days=200, waiting_days=49).loc["p", "days_to_first"] == 200


def test_every_cohort_member_once_and_others_ignored():
    o = outcomes([conv("stranger", 10)], people=["a", "b"])
    assert list(o.index) == ["a", "b"]
    assert (o["reoffended"] == 0).all()
    assert list(o.reset_index().columns) == OUTCOME_COLUMNS


def test_followup_complete_flag():
    # index 2018-06-01 + 547 days = 2019-11-30
    assert outcomes([], people=["p"], extract_end_date="2019-11-30").loc["p", "followup_complete"]
    assert not outcomes([], people=["p"], extract_end_date="2019-11-29").loc[
        "p", "followup_complete"
    ]


def test_missing_column_is_a_clear_user_error():
    cohort = pd.DataFrame({"person_id": ["p"], "index_date": [INDEX]})
    bad = pd.DataFrame(columns=COLS).drop(columns=["severity"])
    with pytest.raises(UserError, match=r"convictions\.parquet: missing column\(s\) severity"):
        proven_reoffending(cohort, bad)


def _brute_force(person_rows, f, w):
    """Reference: the definition written out offence by offence."""
    counted = [
        r
        for r in person_rows
        if r[3] != "breach" and 0 < (r[1] - INDEX).days <= f and (r[2] - INDEX).days <= f + w
    ]
    pre = [
        r
        for r in person_rows
        if r[3] != "breach" and -f <= (r[1] - INDEX).days < 0 and (r[2] - INDEX).days <= w - 1
    ]
    first = min((r[1] - INDEX).days for r in counted) if counted else f
    return len(counted), first, any(r[4] == "custody" for r in counted), len(pre)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(-450, 450),
            st.integers(0, 300),
            st.booleans(),
            st.booleans(),
        ),
        max_size=30,
    ),
    st.integers(30, 400),
    st.integers(0, 200),
)
def test_matches_brute_force(raw, f, w):
    rows = [
        conv(p, o, o + d, group="breach" if b else "theft", disposal="custody" if c else "fine")
        for p, o, d, b, c in raw
    ]
    got = outcomes(rows, people=["a", "b", "c"], followup_days=f, waiting_days=w)
    for person in ["a", "b", "c"]:
        n, first, custody, n_pre = _brute_force([r for r in rows if r[0] == person], f, w)
        g = got.loc[person]
        assert (g["n_reoffences"], g["days_to_first"], g["custodial_reoffence"]) == (
            n,
            first,
            int(custody),
        )
        assert g["reoffended"] == g["event"] == int(n > 0)
        assert g["pre_n_offences"] == n_pre and g["pre_reoffended"] == int(n_pre > 0)
        assert 1 <= g["days_to_first"] <= f
    assert got["n_reoffences"].dtype == np.int64


def test_reproduces_the_synthetic_generators_observed_outcomes(tmp_path):
    """End to end on generated extracts: clean -> cohort -> outcomes gives, for every treated
    person (and every eligible comparator), exactly the generator's observed outcome
    (Y(1) for the treated, Y(0) otherwise), with the generator's index date."""
    from mydirection.clean import clean_extracts, load_key, pseudonymise
    from mydirection.cohort import CohortSettings, build_cohort
    from mydirection.contract import EXTRACTS
    from mydirection.synthetic import generate, write_extracts

    cfg, seed = {"n_treated": 120, "n_comparator_pool": 1500}, 11
    write_extracts(tmp_path, cfg, seed)
    key = load_key({}, synthetic=True)
    tables, _ = clean_extracts({n: tmp_path / f"{n}.csv" for n in EXTRACTS}, "2020-06-30", key)
    names = ("people", "supervision", "assessments", "convictions", "enrolments")
    cohort = build_cohort(**{n: tables[n] for n in names}, settings=CohortSettings()).cohort
    out = proven_reoffending(cohort, tables["convictions"], extract_end_date="2020-06-30")

    po = generate(cfg, seed).potential_outcomes
    po = po.assign(person_id=pseudonymise(po["crn"].astype(object), key))
    mine = cohort[["person_id", "treated", "index_date"]].merge(out, on="person_id")
    both = mine.merge(po, on="person_id", suffixes=("", "_truth"), validate="one_to_one")
    assert len(both) == len(mine)  # every cohort member is a generated person
    treated = both[both["treated"]]
    assert len(treated) == cfg["n_treated"] == int(po["treated"].sum())
    assert treated["treated_truth"].all()
    assert (treated["index_date"] == treated["index_date_truth"]).all()
    np.testing.assert_array_equal(treated["reoffended"], treated["y1"])
    comparators = both[~both["treated"]]
    assert (~comparators["treated_truth"]).all()
    # "aged 18 at the start" is judged from the birth year, the one age fact kept after the
    # cleaning boundary (at most a year from the true age): a comparator the generator calls
    # ineligible is one whose true age at the start was within a year under 18
    raw = pd.read_csv(tmp_path / "people.csv", dtype=str).drop_duplicates("crn")
    dob = pd.to_datetime(raw["date_of_birth"], format="mixed", dayfirst=True)
    dob.index = raw["crn"].str.strip()
    true_age = (comparators["index_date"] - comparators["crn"].map(dob)).dt.days / 365.25
    borderline = ~comparators["eligible"]
    assert ((true_age[borderline] >= 17) & (true_age[borderline] < 18)).all()
    assert borderline.mean() < 0.02
    eligible = po["eligible"] & ~po["treated"]
    assert len(comparators) - int(borderline.sum()) == int(eligible.sum())
    np.testing.assert_array_equal(comparators["reoffended"], comparators["y0"])
    assert 0 < treated["reoffended"].sum() < len(treated)  # the test can fail both ways
