"""Tests of the cohort stage: every eligibility rule, treated/comparator definitions, index
dates, follow-up availability, covariates strictly before the index date, missing-value
rules, the attrition chevron and the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mydirection.cohort import (
    ATTRITION_COLUMNS,
    COHORT_COLUMNS,
    build_cohort,
    draw_comparator_delays,
    first_event,
)
from mydirection.covariates import NEEDS, copas_rate, latest_assessment, offending_history
from mydirection.errors import UserError
from mydirection.settings import CohortSettings

T = pd.Timestamp


def event(event_id, person_id, start, end=None, **kw):
    row = {
        "event_id": event_id,
        "person_id": person_id,
        "sentence_type": "community_order",
        "start_date": T(start),
        "end_date": T(end) if end else pd.NaT,
        "index_offence_group": "theft",
        "rosh": "low",
        "office": "goole",
        "case_manager_id": "cm1",
        "age_at_start": 30.0,
    }
    row.update(kw)
    return row


def conviction(person_id, offence, disposal=None, group="theft", disposal_type="fine", age=25.0):
    return {
        "person_id": person_id,
        "offence_date": T(offence),
        "disposal_date": T(disposal or offence),
        "offence_group": group,
        "disposal_type": disposal_type,
        "severity": "summary",
        "age_at_offence": age,
    }


def assessment(person_id, date, ogrs=40.0, **needs):
    row = {
        "person_id": person_id,
        "assessment_date": T(date),
        "ogrs3_1yr": ogrs,
        "ogrs3_2yr": ogrs + 10,
    }
    for need in NEEDS:
        row[need] = needs.get(need, False)
    return row


def tables(events, enrol=(), assess=(), conv=(), people=None):
    sup = pd.DataFrame(events)
    if people is None:
        ids = sorted(set(sup["person_id"]) | {e[0] for e in enrol})
        people = pd.DataFrame({"person_id": ids, "sex": "male", "ethnicity": "white"})
    enrolments = pd.DataFrame(
        [{"person_id": p, "enrolment_date": T(d), "case_manager_id": "cm1"} for p, d in enrol],
        columns=["person_id", "enrolment_date", "case_manager_id"],
    ).astype({"enrolment_date": "datetime64[ns]", "person_id": object})
    a_cols = ["person_id", "assessment_date", "ogrs3_1yr", "ogrs3_2yr", *NEEDS]
    assessments = pd.DataFrame(list(assess), columns=a_cols).astype(
        {"assessment_date": "datetime64[ns]", "ogrs3_1yr": float, "ogrs3_2yr": float}
    )
    c_cols = [
        "person_id",
        "offence_date",
        "disposal_date",
        "offence_group",
        "disposal_type",
        "severity",
        "age_at_offence",
    ]
    convictions = pd.DataFrame(list(conv), columns=c_cols).astype(
        {"offence_date": "datetime64[ns]", "disposal_date": "datetime64[ns]"}
    )
    return {
        "people": people,
        "supervision": sup,
        "assessments": assessments,
        "convictions": convictions,
        "enrolments": enrolments,
    }


def build(t, **kw):
    """The cohort of ``t``; these rule-by-rule tests index at the event start unless told
    (the enrolment design has tests of its own)."""
    return build_cohort(**t, settings=CohortSettings.default(**{"index_date": "event_start", **kw}))


def row(cohort, person):
    return cohort.set_index("person_id").loc[person]


def lost(attrition, description_start, group):
    a = attrition[attrition["description"].str.startswith(description_start)]
    return int(a.loc[a["group"] == group, "n_lost"].iloc[0])


# --------------------------------------------------------------------------- eligibility


def test_recruitment_window_is_inclusive_at_both_ends():
    t = tables(
        [
            event("e1", "before", "2017-12-31"),
            event("e2", "first_day", "2018-01-01"),
            event("e3", "last_day", "2018-12-31"),
            event("e4", "after", "2019-01-01"),
        ]
    )
    r = build(t, extract_end_date=None)
    assert sorted(r.cohort["person_id"]) == ["first_day", "last_day"]
    assert lost(r.attrition, "Supervision event started", "comparator") == 2


def test_crc_sentence_type_and_adult_rules():
    t = tables(
        [
            event("e1", "low", "2018-03-01", rosh="low"),
            event("e2", "medium", "2018-03-01", rosh="medium"),
            event("e3", "high", "2018-03-01", rosh="high"),
            event("e4", "very_high", "2018-03-01", rosh="very_high"),
            event("e5", "licence", "2018-03-01", sentence_type="licence"),
            event("e6", "pss", "2018-03-01", sentence_type="post_sentence_supervision"),
            event("e7", "age18", "2018-03-01", age_at_start=18.0),
            event("e8", "age17", "2018-03-01", age_at_start=17.99),
            event("e9", "age_unknown", "2018-03-01", age_at_start=np.nan),
        ]
    )
    r = build(
        t,
        sentence_types=("community_order", "suspended_sentence_order", "licence"),
        extract_end_date=None,
    )
    assert sorted(r.cohort["person_id"]) == ["age18", "licence", "low", "medium"]
    assert lost(r.attrition, "Managed by the CRC", "comparator") == 2
    assert lost(r.attrition, "Sentence type", "comparator") == 1
    assert lost(r.attrition, "Aged 18", "comparator") == 2


def test_person_lost_only_when_their_last_event_is_removed():
    # p1 has an ineligible (high RoSH) event and an eligible one: kept, with the eligible one.
    t = tables(
        [
            event("e1", "p1", "2018-02-01", rosh="high"),
            event("e2", "p1", "2018-05-01"),
        ]
    )
    r = build(t, extract_end_date=None)
    assert row(r.cohort, "p1")["event_id"] == "e2"
    assert lost(r.attrition, "Managed by the CRC", "all") == 0


def test_person_without_person_record_or_event_is_counted():
    people = pd.DataFrame({"person_id": ["p1", "no_event"], "sex": "male", "ethnicity": "white"})
    t = tables(
        [event("e1", "p1", "2018-02-01"), event("e2", "no_person", "2018-02-01")],
        people=people,
    )
    r = build(t, extract_end_date=None)
    a = r.attrition
    assert a.loc[(a["step"] == 1) & (a["group"] == "all"), "n_remaining"].item() == 3
    assert lost(r.attrition, "Person record with a supervision event", "all") == 2
    assert list(r.cohort["person_id"]) == ["p1"]


# --------------------------------------------------------------------------- treated


def test_treated_enrolled_during_an_eligible_event():
    t = tables(
        [
            event("e1", "on_start", "2018-03-01", "2018-09-01"),
            event("e2", "on_end", "2018-03-01", "2018-09-01"),
            event("e3", "open_event", "2018-03-01"),
            event("e4", "before_start", "2018-03-01", "2018-09-01"),
            event("e5", "after_end", "2018-03-01", "2018-09-01"),
            event("e6", "never", "2018-03-01", "2018-09-01"),
        ],
        enrol=[
            ("on_start", "2018-03-01"),
            ("on_end", "2018-09-01"),
            ("open_event", "2019-05-01"),
            ("before_start", "2018-02-28"),
            ("after_end", "2018-09-02"),
        ],
    )
    r = build(t, extract_end_date=None)
    c = r.cohort.set_index("person_id")
    assert sorted(c.index) == ["never", "on_end", "on_start", "open_event"]
    assert c.loc[["on_start", "on_end", "open_event"], "treated"].all()
    assert not c.loc["never", "treated"]
    assert c.loc["on_start", "enrolment_delay_days"] == 0
    assert c.loc["on_end", "enrolment_delay_days"] == 184
    assert np.isnan(c.loc["never", "enrolment_delay_days"])
    assert pd.isna(c.loc["never", "enrolment_date"])
    # default index date: start of the event
    assert (c["index_date"] == c["event_start"]).all()
    assert lost(r.attrition, "Treated:", "treated") == 2
    assert lost(r.attrition, "Treated:", "comparator") == 0


def test_treated_index_event_is_the_enrolment_event_and_comparators_first_event():
    t = tables(
        [
            event("e1", "tr", "2018-02-01", "2018-04-01"),
            event("e2", "tr", "2018-06-01", "2018-12-01", office="hull_central"),
            # comparator: two events on the same day -> smallest event_id; a later one
            event("e9", "co", "2018-03-01", office="x"),
            event("e3", "co", "2018-03-01", office="y"),
            event("e0", "co", "2018-07-01", office="z"),
        ],
        enrol=[("tr", "2018-07-15")],
    )
    r = build(t, extract_end_date=None)
    assert row(r.cohort, "tr")["event_id"] == "e2"
    assert row(r.cohort, "tr")["index_date"] == T("2018-06-01")
    assert row(r.cohort, "tr")["enrolment_delay_days"] == 44
    assert row(r.cohort, "tr")["pilot_office"]
    assert row(r.cohort, "co")["event_id"] == "e3"
    assert not row(r.cohort, "co")["pilot_office"]
    assert r.cohort["person_id"].is_unique


def test_spillover_option_removes_nonenrolled_pilot_office_caseload():
    events = [
        event("e1", "tr", "2018-02-01", office="hull_central"),
        event("e2", "co_pilot", "2018-02-01", office="Hull_Central "),
        event("e3", "co_pilot_later", "2018-02-01", office="goole"),
        event("e4", "co_pilot_later", "2018-08-01", office="bridlington"),
        event("e5", "co_other", "2018-02-01", office="goole"),
    ]
    t = tables(events, enrol=[("tr", "2018-02-10")])
    off = build(t, extract_end_date=None)
    assert len(off.cohort) == 4
    on = build(t, extract_end_date=None, exclude_pilot_office_nonenrolled=True)
    assert sorted(on.cohort["person_id"]) == ["co_other", "tr"]
    assert lost(on.attrition, "Comparators: no eligible event at a pilot office", "comparator") == 2
    assert lost(on.attrition, "Comparators: no eligible event at a pilot office", "treated") == 0


def test_index_date_enrolment_gives_comparators_a_treated_delay():
    events = [event(f"t{i}", f"tr{i}", "2018-02-01") for i in range(5)]
    events += [event(f"c{i:02d}", f"co{i:02d}", "2018-03-01") for i in range(40)]
    events.append(event("c_short", "co_short", "2018-03-01", "2018-03-05"))
    delays = [3, 10, 30, 60, 90]
    enrol = [
        (f"tr{i}", str((T("2018-02-01") + pd.Timedelta(days=d)).date()))
        for i, d in enumerate(delays)
    ]
    t = tables(events, enrol=enrol)
    r = build(t, index_date="enrolment", extract_end_date=None, seed=7)
    c = r.cohort.set_index("person_id")
    tr = c[c["treated"]]
    assert (tr["index_date"] == tr["enrolment_date"]).all()
    co = c[~c["treated"]]
    assert set(co["enrolment_delay_days"]) <= set(map(float, delays))
    assert (
        co["index_date"] == co["event_start"] + pd.to_timedelta(co["enrolment_delay_days"], "D")
    ).all()
    assert co["enrolment_date"].isna().all()
    # deterministic, and different seeds give different draws
    again = build(t, index_date="enrolment", extract_end_date=None, seed=7)
    pd.testing.assert_frame_equal(r.cohort, again.cohort)
    other = build(t, index_date="enrolment", extract_end_date=None, seed=8)
    assert not other.cohort["index_date"].equals(r.cohort["index_date"])
    # a comparator whose event ended before the drawn index (4 days < every delay but 3)
    a = r.attrition
    step = a[a["description"].str.startswith("Comparators: still supervised")]
    n_short_lost = step.loc[step["group"] == "comparator", "n_lost"].item()
    assert n_short_lost == int("co_short" not in c.index)
    assert step.loc[step["group"] == "treated", "n_lost"].item() == 0


def test_comparator_delays_follow_the_treated_distribution():
    treated = np.array([0.0] * 700 + [100.0] * 300)
    drawn = draw_comparator_delays(treated, 20_000, seed=1)
    assert set(np.unique(drawn)) == {0.0, 100.0}
    assert abs((drawn == 100).mean() - 0.3) < 0.02
    # order of the treated delays does not matter
    np.testing.assert_array_equal(drawn, draw_comparator_delays(treated[::-1], 20_000, seed=1))
    with pytest.raises(UserError):
        draw_comparator_delays(np.array([]), 3, seed=1)


# --------------------------------------------------------------------------- follow-up


def test_followup_availability_uses_dates_only():
    # 2018-12-31 + 365 + 182 days = 2020-06-30: exactly on the extract end date
    t = tables(
        [event("e1", "fits", "2018-12-31"), event("e2", "late", "2018-12-31")],
        enrol=[("late", "2018-12-31")],
    )
    r = build(t, extract_end_date="2020-06-30")
    assert sorted(r.cohort["person_id"]) == ["fits", "late"]
    r = build(t, extract_end_date="2020-06-29")
    assert r.cohort.empty
    assert lost(r.attrition, "Follow-up", "treated") == 1
    assert lost(r.attrition, "Follow-up", "comparator") == 1
    kept = build(t, extract_end_date="2020-06-29", exclude_incomplete_followup=False)
    assert len(kept.cohort) == 2
    shorter = build(t, extract_end_date="2020-06-29", waiting_days=181)
    assert len(shorter.cohort) == 2


# --------------------------------------------------------------------------- no look-ahead


def test_conviction_one_day_before_counts_on_and_after_do_not():
    index = T("2018-06-01")
    day = pd.Timedelta(days=1)
    t = tables(
        [event("e1", "p", "2018-06-01")],
        conv=[
            conviction("p", index - day, index - day, age=20.0),  # before: counts
            conviction("p", index - 3 * day, index, age=19.0),  # proven ON index: not yet
            conviction("p", index, index, age=18.0),  # on index: no
            conviction("p", index + day, index + day, age=17.0),  # after: no
        ],
    )
    r = build(t, extract_end_date=None)
    p = row(r.cohort, "p")
    assert p["n_previous_offences"] == 1
    assert p["age_first_offence"] == 20.0
    assert p["offences_last_12m"] == 1


def test_assessment_on_the_index_date_is_not_used():
    t = tables(
        [event("e1", "p", "2018-06-01"), event("e2", "q", "2018-06-01")],
        assess=[
            assessment("p", "2017-01-01", ogrs=11.0),
            assessment("p", "2018-05-01", ogrs=22.0, need_drugs=True),
            assessment("p", "2018-06-01", ogrs=33.0),  # on the index date
            assessment("p", "2018-07-01", ogrs=44.0),  # after
            assessment("q", "2018-06-01", ogrs=55.0),  # only on the index date
        ],
    )
    r = build(t, extract_end_date=None)
    p, q = row(r.cohort, "p"), row(r.cohort, "q")
    assert p["ogrs3_1yr"] == 22.0 and p["ogrs3_2yr"] == 32.0
    assert p["assessment_age_days"] == 31
    assert p["need_drugs"] and not p["needs_missing"] and not p["ogrs3_missing"]
    # q has no assessment before the index: median of the observed (22) and flagged
    assert q["ogrs3_missing"] and q["ogrs3_1yr"] == 22.0
    assert np.isnan(q["assessment_age_days"])
    assert q["needs_missing"] and not q[list(NEEDS)].any()


def test_index_date_enrolment_moves_the_covariate_cutoff():
    t = tables(
        [event("e1", "p", "2018-06-01")],
        enrol=[("p", "2018-06-20")],
        conv=[conviction("p", "2018-06-05", "2018-06-10")],
        assess=[assessment("p", "2018-06-15", ogrs=60.0)],
    )
    start = row(build(t, extract_end_date=None).cohort, "p")
    assert start["n_previous_offences"] == 0 and start["ogrs3_missing"]
    enrol = build(t, extract_end_date=None, index_date="enrolment", enrolment_barriers=())
    enrol = row(enrol.cohort, "p")
    assert enrol["n_previous_offences"] == 1 and enrol["ogrs3_1yr"] == 60.0
    assert enrol["age"] == pytest.approx(30 + 19 / 365.25)


def test_enrolment_barriers_make_both_groups_enrollable_at_their_index_date():
    """Immortal time: with the default enrolment index, anyone with a re-offence (whenever
    proven) or a custodial disposal between the start of the order and the index date is
    not eligible, treated or comparator; a breach is no barrier. Every treated delay is 20
    days, so each comparator's pseudo-enrolment date is its start + 20 days."""
    start, enrolled = "2018-03-01", "2018-03-21"
    t = tables(
        [event(f"e{p}", p, start) for p in ("t1", "t2", "t3", "t4", "c1", "c2", "c3", "c4")],
        enrol=[(p, enrolled) for p in ("t1", "t2", "t3", "t4")],
        conv=[
            conviction("t1", "2018-03-10", "2018-09-01"),  # offence before enrolment, proven later
            conviction("t2", "2018-03-10", "2018-03-12", group="breach"),  # a breach: no barrier
            conviction(
                "t3", "2018-01-05", "2018-03-15", disposal_type="custody"
            ),  # custody in window
            conviction("t4", "2018-03-21", "2018-04-01"),  # on the index date: after it starts
            conviction("c1", "2018-03-20", "2018-05-01"),  # day 19 of a 20-day delay
            conviction("c2", "2018-03-21", "2018-05-01"),  # on the pseudo-enrolment date
            conviction("c3", "2018-02-27", "2018-03-05"),  # before the order: history only
        ],
    )
    r = build(t, extract_end_date=None, index_date="enrolment")
    kept = set(r.cohort["person_id"])
    assert kept == {"t2", "t4", "c2", "c3", "c4"}
    assert (r.cohort["index_date"] == T(enrolled)).all()
    step = r.attrition[r.attrition["rule"] == "enrollable_at_index"].set_index("group")
    assert step.loc["treated", "n_lost"] == 2 and step.loc["comparator", "n_lost"] == 1
    only_custody = build(
        t, extract_end_date=None, index_date="enrolment", enrolment_barriers=("custody",)
    )
    assert set(only_custody.cohort["person_id"]) == kept | {"t1", "c1"}
    start_design = build(t, extract_end_date=None, index_date="event_start")
    assert len(start_design.cohort) == 8  # no barrier applies when the index is the start


def test_attrition_rows_carry_stable_rule_ids():
    r = build(tables([event("e1", "p", "2018-06-01")], enrol=[("p", "2018-06-20")]))
    assert r.attrition["rule"].iloc[0] == "received"
    assert r.attrition["rule"].iloc[-1] == "analysed"
    assert r.attrition.groupby("step")["rule"].nunique().eq(1).all()


# --------------------------------------------------------------------------- history


def test_history_rules_custody_breach_last_12m_and_copas():
    t = tables(
        [event("e1", "p", "2018-06-01", age_at_start=40.0), event("e2", "clean", "2018-06-01")],
        conv=[
            conviction("p", "2010-01-01", "2010-02-01", age=31.6, disposal_type="custody"),
            conviction("p", "2017-07-01", "2017-08-01", age=39.1),
            conviction("p", "2017-05-31", "2017-06-15", age=38.9),  # 366 days before
            conviction("p", "2017-06-01", "2017-06-15", age=39.0),  # 365 days before
            conviction("p", "2018-01-01", "2018-02-01", group="breach", age=29.0),
        ],
    )
    r = build(t, extract_end_date=None)
    p = row(r.cohort, "p")
    assert p["n_previous_offences"] == 4
    assert p["n_previous_custody"] == 1
    assert p["offences_last_12m"] == 2
    assert p["age_first_offence"] == 31.6  # breach (age 29) does not count
    assert p["copas_rate"] == pytest.approx(np.log(5 / (40 - 31.6 + 10)))
    clean = row(r.cohort, "clean")
    assert clean["n_previous_offences"] == 0
    assert clean["age_first_offence"] == clean["age"]
    assert clean["copas_rate"] == pytest.approx(np.log(1 / 10))


def test_copas_rate_formula():
    assert copas_rate(0, 30, 30) == pytest.approx(np.log(0.1))
    assert copas_rate(9, 40, 20) == pytest.approx(np.log(10 / 30))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4),  # person
            st.integers(-800, 400),  # offence day relative to 2018-06-01
            st.integers(0, 200),  # days to disposal
            st.booleans(),  # breach
            st.booleans(),  # custody
            st.floats(14, 70),
        ),
        max_size=40,
    ),
    st.lists(st.integers(-30, 30), min_size=5, max_size=5),
)
def test_history_matches_brute_force(rows, shifts):
    base = T("2018-06-01")
    cohort = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(5)],
            "index_date": [base + pd.Timedelta(days=s) for s in shifts],
        }
    )
    conv = pd.DataFrame(
        [
            conviction(
                f"p{p}",
                base + pd.Timedelta(days=o),
                base + pd.Timedelta(days=o + d),
                group="breach" if b else "theft",
                disposal_type="custody" if c else "fine",
                age=a,
            )
            for p, o, d, b, c, a in rows
        ],
        columns=list(conviction("x", base)),
    ).astype({"offence_date": "datetime64[ns]", "disposal_date": "datetime64[ns]"})
    got = offending_history(cohort, conv)
    for i, person in cohort.iterrows():
        mine = [
            r
            for r in conv.itertuples()
            if r.person_id == person["person_id"]
            and r.offence_group != "breach"
            and r.disposal_date < person["index_date"]
        ]
        assert got.loc[i, "n_previous_offences"] == len(mine)
        assert got.loc[i, "n_previous_custody"] == sum(r.disposal_type == "custody" for r in mine)
        recent = [r for r in mine if (person["index_date"] - r.offence_date).days <= 365]
        assert got.loc[i, "offences_last_12m"] == len(recent)
        if mine:
            assert got.loc[i, "age_first_offence"] == min(r.age_at_offence for r in mine)
        else:
            assert np.isnan(got.loc[i, "age_first_offence"])


# --------------------------------------------------------------------------- outputs


def _mixed_tables():
    events = [
        event("e01", "tr1", "2018-02-01", office="hull_central"),
        event("e02", "tr2", "2018-03-01", office="bridlington"),
        event("e03", "tr_outside", "2018-03-01", "2018-04-01"),
        event("e04", "co1", "2018-04-01"),
        event("e05", "co2", "2018-05-01", rosh="high"),
        event("e06", "co3", "2017-05-01"),
        event("e07", "co4", "2018-12-31", sentence_type="licence"),
        event("e08", "co5", "2018-06-01", age_at_start=16.0),
    ]
    enrol = [("tr1", "2018-02-15"), ("tr2", "2018-03-20"), ("tr_outside", "2018-06-01")]
    return tables(events, enrol=enrol, assess=[assessment("tr1", "2018-01-01")])


def test_attrition_conserves_people_and_ends_at_the_cohort():
    r = build(_mixed_tables(), extract_end_date="2020-06-29")
    a = r.attrition
    assert list(a.columns) == ATTRITION_COLUMNS
    for _group, g in a.groupby("group"):
        g = g.sort_values("step")
        np.testing.assert_array_equal(
            g["n_remaining"].to_numpy()[:-1] - g["n_lost"].to_numpy()[1:],
            g["n_remaining"].to_numpy()[1:],
        )
        assert g["n_lost"].iloc[0] == 0
    wide = a.pivot(index="step", columns="group", values="n_remaining")
    assert (wide["all"] == wide["treated"] + wide["comparator"]).all()
    last = a[a["step"] == a["step"].max()].set_index("group")["n_remaining"]
    assert last["treated"] == r.cohort["treated"].sum() == 2
    assert last["comparator"] == (~r.cohort["treated"]).sum()
    first = a[a["step"] == 1].set_index("group")["n_remaining"]
    assert first["treated"] == 3 and first["comparator"] == 5
    # co4 starts 2018-12-31: follow-up ends 2020-06-30, after the extract end 2020-06-29
    assert lost(a, "Follow-up", "comparator") == 1


def test_cohort_columns_and_types():
    c = build(_mixed_tables(), extract_end_date=None).cohort
    assert list(c.columns) == COHORT_COLUMNS
    assert c["treated"].dtype == bool
    for col in ("ogrs3_missing", "needs_missing", "pilot_office", *NEEDS):
        assert c[col].dtype == bool, col
    for col in ("index_date", "event_start", "event_end", "enrolment_date"):
        assert str(c[col].dtype) == "datetime64[ns]", col
    assert (
        not c[["ogrs3_1yr", "ogrs3_2yr", "age", "age_first_offence", "copas_rate"]]
        .isna()
        .any()
        .any()
    )


def test_missing_column_is_a_clear_user_error():
    t = _mixed_tables()
    t["supervision"] = t["supervision"].drop(columns=["rosh"])
    with pytest.raises(UserError, match=r"supervision\.parquet .*column rosh: missing"):
        build_cohort(**t)


def test_duplicate_person_is_a_clear_user_error():
    t = _mixed_tables()
    t["people"].loc[1, "person_id"] = t["people"].loc[0, "person_id"]
    with pytest.raises(UserError, match=r"people\.parquet, column person_id: 2 rows .*rows 0, 1"):
        build_cohort(**t)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 4), st.integers(0, 30)),
        min_size=0,
        max_size=40,
        unique_by=lambda r: r[2],
    )
)
def test_first_event_matches_sorting(rows):
    events = pd.DataFrame(
        {
            "person_id": [f"p{p}" for p, _, _ in rows],
            "start_date": [T("2018-01-01") + pd.Timedelta(days=d) for _, d, _ in rows],
            "event_id": [f"e{e:02d}" for _, _, e in rows],
        }
    ).astype({"start_date": "datetime64[ns]"})
    expected = (
        events.sort_values(["person_id", "start_date", "event_id"], kind="stable")
        .drop_duplicates("person_id")
        .sort_values("person_id")
    )
    got = first_event(events).sort_values("person_id")
    pd.testing.assert_frame_equal(got, expected)


def test_bad_config_is_a_clear_user_error():
    from mydirection.settings import with_defaults

    with pytest.raises(UserError, match="recruitment_start is after"):
        CohortSettings.from_config(with_defaults({"cohort": {"recruitment_start": "2019-01-01"}}))
    with pytest.raises(UserError, match="not a real date"):
        CohortSettings.from_config(with_defaults({"cohort": {"recruitment_end": "2018-13-01"}}))


def test_chevron_numbers_hide_a_small_loss_from_subtraction():
    """15 participants, 2 of them under age: the chevron shows "<5 lost", and neither the
    remaining counts nor the totals give the 2 away (secondary suppression on the chain)."""
    from mydirection.reporting import disclosure

    people = [(f"t{i}", 30.0) for i in range(13)] + [("y1", 17.0), ("y2", 16.5)]
    events = [event(f"e{p}", p, "2018-03-01", age_at_start=a) for p, a in people]
    events += [event(f"ec{i}", f"c{i}", "2018-03-01") for i in range(40)]
    r = build(tables(events, enrol=[(p, "2018-03-10") for p, _ in people]), extract_end_date=None)
    numbers = r.numbers()
    entries = {k: v.as_dict() for k, v in numbers.items()}
    first, hidden = disclosure.protect(entries, numbers.relations, 5)
    lost = "cohort.attrition.adult.treated.lost"
    assert entries[lost]["value"] == 2 and lost in first
    published = {
        k: e["value"] for k, e in entries.items() if k not in hidden and e["kind"] == "count"
    }
    pairs = [(total, parts) for total, parts, _ in numbers.relations]
    ranges = disclosure._ranges(published, pairs, hidden, {k: (0, None) for k in hidden})
    assert all(hi - lo >= 1 for k, (lo, hi) in ranges.items() if k in first)
    assert "cohort.n_treated" in entries  # the headline count itself stays in the registry


def test_attrition_figure_is_deterministic(tmp_path):
    r = build(_mixed_tables(), extract_end_date=None)
    r.plot_attrition(tmp_path / "a.png", 5)
    r.plot_attrition(tmp_path / "b.png", 5)
    a, b = (tmp_path / "a.png").read_bytes(), (tmp_path / "b.png").read_bytes()
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b


# --------------------------------------------------------------------------- entry scripts


def run_cohort_and_outcomes_scripts(tmp_path, t, cohort_config=None):
    """Run scripts/cohort.py then scripts/outcomes.py on tables ``t`` in ``tmp_path``."""
    import json

    from helpers import run_script

    from mydirection.settings import load_config

    config = load_config(
        "config/config.yaml",
        {"cohort": {"index_date": "event_start", **(cohort_config or {})}, "seed": 1},
    )
    clean = tmp_path / "clean"
    clean.mkdir(exist_ok=True)
    inputs = {}
    for name, df in t.items():
        if name == "people" and "birth_year" not in df:  # the cleaned tables' one age fact:
            # a birth year giving each person's whole-year age at their first event start
            sup = t["supervision"].sort_values("start_date").drop_duplicates("person_id")
            start = pd.DatetimeIndex(sup["start_date"])
            born = start.year - np.floor(sup["age_at_start"]) - (start.month < 7)
            df = df.assign(
                birth_year=df["person_id"].map(dict(zip(sup["person_id"], born, strict=True)))
            )
            df["birth_year"] = df["birth_year"].fillna(1988).astype("int64")
        inputs[name] = clean / f"{name}.parquet"
        df.to_parquet(inputs[name], index=False)
    outputs = {
        "cohort": tmp_path / "cohort" / "cohort.parquet",
        "attrition": tmp_path / "cohort" / "attrition.parquet",
        "fig_attrition": tmp_path / "figures" / "attrition.png",
        "numbers": tmp_path / "numbers" / "cohort.json",
    }
    run_script("cohort.py", "cohort", inputs, outputs, config=config, log=tmp_path / "cohort.log")
    o_out = {
        "outcomes": tmp_path / "outcomes" / "outcomes.parquet",
        "numbers": tmp_path / "numbers" / "outcomes.json",
    }
    o_in = {"cohort": outputs["cohort"], "convictions": inputs["convictions"]}
    run_script("outcomes.py", "outcomes", o_in, o_out, config=config, log=tmp_path / "outcomes.log")
    numbers = {
        k: json.loads(v.read_text())
        for k, v in (("cohort", outputs["numbers"]), ("outcomes", o_out["numbers"]))
    }
    return outputs, o_out, numbers


def test_entry_scripts_write_outputs_and_numbers(tmp_path):
    outputs, o_out, numbers = run_cohort_and_outcomes_scripts(tmp_path, _mixed_tables())
    cohort = pd.read_parquet(outputs["cohort"])
    assert list(cohort.columns) == COHORT_COLUMNS and len(cohort) == 4
    assert list(pd.read_parquet(outputs["attrition"]).columns) == ATTRITION_COLUMNS
    assert outputs["fig_attrition"].read_bytes()[:4] == b"\x89PNG"
    n = numbers["cohort"]["numbers"]
    assert n["cohort.n_treated"]["value"] == 2 and n["cohort.n_comparator_pool"]["value"] == 2
    assert n["cohort.attrition.treatment_definition.treated.lost"]["value"] == 1
    assert n["cohort.median_enrolment_delay_days"]["value"] == 16.5
    assert numbers["cohort"]["config"]["cohort.index_date"] == "event_start"
    assert "figures.attrition" in numbers["cohort"]["figures"]
    out = pd.read_parquet(o_out["outcomes"])
    assert list(out["person_id"]) == list(cohort["person_id"])
    # design numbers only: no re-offending rate leaves the outcomes stage
    assert not any("rate" in k or "reoffend" in k for k in numbers["outcomes"]["numbers"])
    log = (tmp_path / "cohort.log").read_text()
    assert "tr1" not in log and "co1" not in log  # counts only, no identifiers


def test_entry_script_user_error_leaves_no_outputs(tmp_path):
    t = _mixed_tables()
    t["assessments"] = t["assessments"].drop(columns=["ogrs3_1yr"])
    with pytest.raises(SystemExit) as exit_info:
        run_cohort_and_outcomes_scripts(tmp_path, t)
    assert exit_info.value.code == 1
    assert not list((tmp_path).glob("cohort/*")) and not list(tmp_path.glob("numbers/*"))
    assert "column ogrs3_1yr: missing" in (tmp_path / "cohort.log").read_text()


# --------------------------------------------------------------------------- brute force


def _brute_force_cohort(events, enrolments, settings):
    """The cohort rules written out person by person (the reference for the fast code)."""
    start, end = T(settings.recruitment_start), T(settings.recruitment_end)
    extract_end = T(settings.extract_end_date)
    window = pd.Timedelta(days=settings.followup_days + settings.waiting_days)

    def eligible(e):
        return (
            start <= e["start_date"] <= end
            and e["rosh"] in settings.rosh
            and e["sentence_type"] in settings.sentence_types
            and e["age_at_start"] >= settings.min_age
        )

    enrolled = dict(enrolments)
    expected = {}
    for person in sorted({e["person_id"] for e in events}):
        mine = [e for e in events if e["person_id"] == person and eligible(e)]
        if person in enrolled:
            d = enrolled[person]
            mine = [
                e
                for e in mine
                if e["start_date"] <= d and (pd.isna(e["end_date"]) or d <= e["end_date"])
            ]
        if not mine:
            continue
        first = min(mine, key=lambda e: (e["start_date"], e["event_id"]))
        if first["start_date"] + window > extract_end:
            continue
        expected[person] = (person in enrolled, first["event_id"], first["start_date"])
    return expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 7),  # person
            st.integers(-20, 390),  # start, days from 2018-01-01
            st.one_of(st.none(), st.integers(0, 200)),  # length (None: still running)
            st.sampled_from(["low", "medium", "high"]),
            st.sampled_from(["community_order", "licence", "suspended_sentence_order"]),
            st.sampled_from([17.5, 18.0, 40.0]),
        ),
        min_size=1,
        max_size=25,
    ),
    st.dictionaries(st.integers(0, 7), st.integers(-10, 420), max_size=5),
)
def test_cohort_matches_brute_force(raw_events, raw_enrol):
    day0 = T("2018-01-01")
    events = [
        event(
            f"e{i:02d}",
            f"p{p}",
            day0 + pd.Timedelta(days=s),
            None if n is None else day0 + pd.Timedelta(days=s + n),
            rosh=rosh,
            sentence_type=st_,
            age_at_start=age,
        )
        for i, (p, s, n, rosh, st_, age) in enumerate(raw_events)
    ]
    enrol = {f"p{p}": day0 + pd.Timedelta(days=d) for p, d in raw_enrol.items()}
    config = CohortSettings.default(
        sentence_types=("community_order", "licence"),
        extract_end_date="2020-03-01",
        index_date="event_start",
    )
    t = tables(events, enrol=[(p, str(d.date())) for p, d in enrol.items()])
    r = build_cohort(**t, settings=config)
    got = {
        row.person_id: (row.treated, row.event_id, row.index_date) for row in r.cohort.itertuples()
    }
    assert got == _brute_force_cohort(events, enrol.items(), config)
    assert list(r.cohort["person_id"]) == sorted(got)
    final = r.attrition[r.attrition["step"] == r.attrition["step"].max()].set_index("group")
    assert final.loc["treated", "n_remaining"] == sum(v[0] for v in got.values())
    assert final.loc["all", "n_remaining"] == len(got)
    first = r.attrition[r.attrition["step"] == 1].set_index("group")
    assert first.loc["all", "n_remaining"] == len({e["person_id"] for e in events} | set(enrol))


def test_the_profile_of_participants_not_included():
    """Enrolled but left out by an eligibility step (tr_outside): counted once per variable,
    at their own sex, age band at enrolment and ethnicity; levels add up to the total."""
    from mydirection.cohort_profile import P, band_labels

    tabs = _mixed_tables()
    tabs["people"]["birth_year"] = 1990  # tr_outside enrols on 2018-06-01, aged 27
    r = build(tabs, extract_end_date="2020-06-29")
    prof = r.excluded
    assert (prof.groupby("variable")["n"].sum() == 1).all()
    person = tabs["people"].set_index("person_id").loc["tr_outside"]
    hit = prof[prof["n"] == 1].set_index("variable")["level"]
    assert hit["sex"] == person["sex"] and hit["ethnicity"] == person["ethnicity"]
    assert hit["age_band"] == "25-34"
    n = r.numbers()
    assert n[P + "n"].value == n["cohort.n_enrolled"].value - n["cohort.n_treated"].value
    assert ("cohort.n_enrolled", ("cohort.n_treated", P + "n"), "part") in n.relations
    assert band_labels((18, 25)) == ["under 18", "18-24", "25+"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_people=st.integers(1, 8), n_assessments=st.integers(0, 30))
def test_latest_assessment_is_the_last_one_strictly_before_the_index_date(
    seed, n_people, n_assessments
):
    """Against a row-by-row search: the latest assessment dated strictly before the index
    date (on a tie, the last in the extract's order); none for people without one, for
    undated assessments, or for those on or after the index date."""
    rng = np.random.default_rng(seed)
    day = lambda k: pd.Timestamp("2018-01-01") + pd.to_timedelta(k, unit="D")  # noqa: E731
    people = [f"p{i}" for i in range(n_people + 2)]  # two people may have no assessment
    cohort = pd.DataFrame(
        {"person_id": people[:n_people], "index_date": day(rng.integers(0, 20, n_people))},
        index=pd.RangeIndex(10, 10 + n_people),
    )
    dates = day(rng.integers(0, 20, n_assessments)).to_series().reset_index(drop=True)
    dates[rng.random(n_assessments) < 0.15] = pd.NaT
    assessments = pd.DataFrame(
        {
            "person_id": rng.choice(people, n_assessments),
            "assessment_date": dates.astype("datetime64[ns]"),
            "ogrs3_1yr": rng.integers(0, 100, n_assessments).astype(float),
            "ogrs3_2yr": rng.integers(0, 100, n_assessments).astype(float),
            **{need: pd.array(rng.random(n_assessments) < 0.5, dtype="boolean") for need in NEEDS},
        }
    )
    got = latest_assessment(cohort, assessments)
    assert got.index.equals(cohort.index)
    for label, person, index_date in cohort.itertuples():
        a = assessments[
            (assessments["person_id"] == person) & (assessments["assessment_date"] < index_date)
        ]
        row = got.loc[label]
        if a.empty:
            assert np.isnan(row["ogrs3_2yr"]) and np.isnan(row["assessment_age_days"])
            assert all(pd.isna(row[need]) for need in NEEDS)
            continue
        latest = a[a["assessment_date"] == a["assessment_date"].max()].iloc[-1]
        assert row["ogrs3_1yr"] == latest["ogrs3_1yr"]
        assert row["ogrs3_2yr"] == latest["ogrs3_2yr"]
        assert [bool(row[need]) for need in NEEDS] == [bool(latest[need]) for need in NEEDS]
        assert row["assessment_age_days"] == (index_date - latest["assessment_date"]).days


def test_two_index_date_designs_share_one_set_of_index_events():
    """The simulation builds the index events once and a cohort per index-date design from
    them: each equals build_cohort's own, in either order, and index events made with other
    settings are refused."""
    import dataclasses

    from mydirection import synthetic
    from mydirection.clean import clean_tables
    from mydirection.cohort import cohort_at_index, index_events

    chain = ("people", "supervision", "assessments", "convictions", "enrolments")
    syn = synthetic.generate({"n_treated": 40, "n_comparator_pool": 400}, 3, extracts=chain)
    t, _ = clean_tables(syn.extracts, "2020-12-31", b"k" * 32)
    base = CohortSettings.default()
    events = index_events(**t, settings=base)
    for design in ("event_start", "enrolment", "event_start"):
        s = dataclasses.replace(base, index_date=design)
        alone = build_cohort(**t, settings=s)
        shared = cohort_at_index(events, s)
        pd.testing.assert_frame_equal(shared.cohort, alone.cohort)
        pd.testing.assert_frame_equal(shared.attrition, alone.attrition)
    with pytest.raises(ValueError, match="made with other settings"):
        cohort_at_index(events, dataclasses.replace(base, followup_days=base.followup_days + 1))
