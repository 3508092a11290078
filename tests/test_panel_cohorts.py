"""Tests of mydirection.effects.panel_cohorts: the interaction-weighted (Sun-Abraham)
estimator recovers cohort-share-weighted effects that the pooled estimator does not."""

from __future__ import annotations

import numpy as np
import pytest
from panel_truth import (
    MID_QUARTER,
    PILOT_LIKE,
    STAGGERED,
    all_dummies_ols,
    by_quarter,
    noise_free,
    people,
    spread,
)

from mydirection.effects.panel import did, event_study
from mydirection.effects.panel_cohorts import (
    did_by_cohort,
    enrolment_cohort,
    event_study_by_cohort,
)

# Effects that change as the pilot goes on (a model that decayed); treated 35, 41, 50, 24.
COHORT_EFFECT = {"2018Q1": -0.25, "2018Q2": -0.15, "2018Q3": 0.0, "2018Q4": 0.1}
SHARES = {"2018Q1": 35 / 150, "2018Q2": 41 / 150, "2018Q3": 50 / 150, "2018Q4": 24 / 150}
TRUTH = sum(SHARES[g] * COHORT_EFFECT[g] for g in SHARES)  # -0.0833


def test_enrolment_cohort_is_the_index_quarter_of_the_treated():
    panel = noise_free(PILOT_LIKE)
    cohort = enrolment_cohort(panel)
    first = panel.groupby("person_id").head(1)
    assert cohort[~panel["treated"]].isna().all()
    counts = cohort[first.index].value_counts().sort_index()
    assert counts.to_dict() == {"2018Q1": 35, "2018Q2": 41, "2018Q3": 50, "2018Q4": 24}


def test_iw_recovers_the_share_weighted_effect_and_the_pooled_estimator_does_not():
    panel = noise_free(PILOT_LIKE, cohort_effect=COHORT_EFFECT)
    iw = did_by_cohort(panel, level=0.95).set_index("term")
    assert iw.loc["iw_att", "estimate"] == pytest.approx(TRUTH, abs=1e-10)
    for g, effect in COHORT_EFFECT.items():
        assert iw.loc[f"cohort_{g}", "estimate"] == pytest.approx(effect, abs=1e-10)
        assert iw.loc[f"cohort_{g}", "share"] == pytest.approx(SHARES[g])
    es = event_study_by_cohort(panel, level=0.95)
    assert np.allclose(es["estimate"], np.where(es["rel_quarter"] >= 0, TRUTH, 0.0), atol=1e-10)
    assert es.attrs["cohort_shares"] == pytest.approx(SHARES)
    # The pooled two-way fixed-effects estimate weights the cohorts by their calendar timing.
    pooled = did(panel, level=0.95).iloc[0]["estimate"]
    assert abs(pooled / TRUTH - 1) > 0.03  # -0.0792: 4.9 % off


def test_iw_event_study_recovers_dynamic_cohort_effects():
    panel = noise_free(PILOT_LIKE, effect=0.0)
    cohort = enrolment_cohort(panel)
    k = panel["rel_quarter"]
    start = cohort.map({"2018Q1": -0.3, "2018Q2": -0.2, "2018Q3": -0.1, "2018Q4": 0.0})
    slope = cohort.map({"2018Q1": 0.05, "2018Q2": 0.02, "2018Q3": 0.0, "2018Q4": -0.02})
    post = panel["treated"] & (k >= 0)
    panel.loc[post, "offences"] += (start + slope * k)[post]
    es = event_study_by_cohort(panel, level=0.95).set_index("rel_quarter")
    for q in range(4):
        want = sum(
            SHARES[g] * (s + b * q)
            for g, s, b in zip(
                SHARES, (-0.3, -0.2, -0.1, 0.0), (0.05, 0.02, 0.0, -0.02), strict=True
            )
        )
        assert es.loc[q, "estimate"] == pytest.approx(want, abs=1e-10)
    assert (es.loc[es.index < 0, "estimate"].abs() < 1e-10).all()


def test_cohort_by_quarter_terms_equal_least_squares_on_all_dummies():
    rng = np.random.default_rng(3)
    sample = PILOT_LIKE.iloc[::3].reset_index(drop=True)
    panel = noise_free(sample, cohort_effect=COHORT_EFFECT)
    panel["offences"] += rng.poisson(0.5, len(panel))
    cohort = enrolment_cohort(panel).to_numpy()
    k = panel["rel_quarter"].to_numpy()
    terms = {
        f"{g}_q{q}": ((cohort == g) & (k == q)).astype(float)
        for g in sorted(COHORT_EFFECT)
        for q in range(-8, 4)
        if q != -1
    }
    ref = all_dummies_ols(panel, terms)
    mass = {g: (cohort[k == 0] == g).sum() for g in COHORT_EFFECT}
    want = {
        q: sum(mass[g] * ref[f"{g}_q{q}"] for g in mass) / sum(mass.values())
        for q in range(-8, 4)
        if q != -1
    }
    es = event_study_by_cohort(panel, level=0.95).set_index("rel_quarter")
    for q, value in want.items():
        assert es.loc[q, "estimate"] == pytest.approx(value, abs=1e-8)
    lags = np.mean([want[q] for q in range(4)])
    leads = sum(want[q] for q in range(-8, -1)) / 8  # the reference quarter counts as 0
    att = did_by_cohort(panel, level=0.95).set_index("term").loc["iw_att", "estimate"]
    assert att == pytest.approx(lags - leads, abs=1e-8)
    att = (
        did_by_cohort(panel, baseline="reference", level=0.95)
        .set_index("term")
        .loc["iw_att", "estimate"]
    )
    assert att == pytest.approx(lags, abs=1e-8)


def test_one_cohort_is_the_event_study():
    rng = np.random.default_rng(8)
    one = people(spread("2018-04-01", "2018-06-30", 40), by_quarter([20, 20, 20, 20]))
    panel = noise_free(one)
    panel["offences"] += rng.poisson(0.4, len(panel))
    a, b = event_study(panel, level=0.95), event_study_by_cohort(panel, level=0.95)
    for col in ("estimate", "se", "p_value"):
        assert np.allclose(a[col], b[col], rtol=1e-10, atol=1e-14, equal_nan=True)
    assert a.attrs["leads_joint_p"] == pytest.approx(b.attrs["leads_joint_p"], rel=1e-10)
    iw = did_by_cohort(panel, level=0.95)
    lags, leads = a.loc[a["rel_quarter"] >= 0, "estimate"], a.loc[a["rel_quarter"] < 0, "estimate"]
    assert iw.iloc[0]["estimate"] == pytest.approx(lags.mean() - leads.mean(), abs=1e-12)
    assert len(iw) == 2 and np.isnan(iw.attrs["cohort_homogeneity_p"])


def test_cohort_homogeneity_test():
    rng = np.random.default_rng(4)
    base = noise_free(PILOT_LIKE, effect=-0.1)
    same = base.assign(offences=base["offences"] + rng.poisson(0.5, len(base)))
    differ = noise_free(PILOT_LIKE, cohort_effect={"2018Q1": -0.8, "2018Q2": 0.0,
                                                   "2018Q3": 0.0, "2018Q4": 0.8})  # fmt: skip
    differ["offences"] += rng.poisson(0.5, len(differ))
    assert did_by_cohort(same, level=0.95).attrs["cohort_homogeneity_df"] == 3
    assert did_by_cohort(same, level=0.95).attrs["cohort_homogeneity_p"] > 0.01
    assert did_by_cohort(differ, level=0.95).attrs["cohort_homogeneity_p"] < 1e-6


def test_cohorts_without_comparators_in_their_calendar_quarters_raise():
    # Treated indexed after every comparator: their last quarters fall in calendar quarters
    # with no comparator, so those cohort x quarter effects are not identified.
    with pytest.raises(ValueError, match="not identified.*treated_2018Q4_q3"):
        did_by_cohort(noise_free(STAGGERED), level=0.95)
    assert did(noise_free(STAGGERED), level=0.95).iloc[0]["estimate"] == pytest.approx(
        -0.1, abs=1e-10
    )


def test_the_stage_reports_an_unidentified_iw_did_as_missing_with_its_reason():
    """A small pilot can have cohorts without comparators in their quarters: the event-study
    stage still reports the pooled DiD, and the interaction-weighted one as missing with the
    reason (no traceback, no made-up number)."""
    from mydirection.effects.before_after import _did_by_cohort

    panel = noise_free(STAGGERED)
    pooled = did(panel, level=0.95)
    out = _did_by_cohort(panel, -1, {"level": 0.95, "cluster": "person"}, pooled)
    row = out.set_index("term").loc["iw_att"]
    assert np.isnan(row["estimate"]) and np.isnan(row["ci_low"])
    assert row["n_people"] == pooled.iloc[0]["n_people"]
    assert "no comparator" in out.attrs["not_estimable"]


def test_iw_on_an_exact_age_period_cohort_panel():
    panel = noise_free(MID_QUARTER, cohort_effect={"2018Q1": -0.2, "2018Q2": -0.1,
                                                   "2018Q3": 0.0, "2018Q4": 0.1})  # fmt: skip
    iw = did_by_cohort(panel, level=0.95)
    assert iw.attrs["event_time_normalised"] == "-1,-8"
    assert iw.iloc[0]["estimate"] == pytest.approx(-0.05, abs=1e-10)
