"""Tests of mydirection.effects.panel: panel construction by hand, planted effects recovered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from panel_truth import (
    MID_QUARTER,
    PILOT_LIKE,
    STAGGERED,
    all_dummies_ols,
    dummies,
    noise_free,
)

from mydirection.effects.panel import QUARTER_DAYS, did, event_study, offence_panel


def test_offence_panel_counts_by_relative_quarter():
    matched = pd.DataFrame(
        {
            "person_id": ["a", "b"],
            "treated": [True, False],
            "index_date": pd.to_datetime(["2018-04-01", "2018-06-15"]),
            "weights": [1.0, 1.0],
            "subclass": [1, 1],
        }
    )
    idx = pd.Timestamp("2018-04-01")
    conv = pd.DataFrame(
        {
            "person_id": ["a", "a", "a", "a", "a", "a", "a", "a", "a", "b", "c"],
            "offence_date": [
                idx,  # day 0 -> quarter -1 (re-offending starts on day 1)
                idx - pd.Timedelta(days=1),  # day -1 -> quarter -1
                idx + pd.Timedelta(days=91),  # day 91 <= 91.3125 -> quarter 0
                idx + pd.Timedelta(days=92),  # quarter 1
                idx + pd.Timedelta(days=10),  # breach: ignored
                idx - pd.Timedelta(days=int(8 * QUARTER_DAYS) + 1),  # day -731: too early
                idx - pd.Timedelta(days=730),  # quarter -8
                idx + pd.Timedelta(days=365),  # quarter 3 (last day of the follow-up)
                idx + pd.Timedelta(days=366),  # after quarter 3
                pd.NaT,
                idx,  # not matched
            ],
            "offence_group": ["theft"] * 4 + ["breach"] + ["theft"] * 6,
        }
    )
    p = offence_panel(matched, conv)
    assert len(p) == 2 * 12
    a = p[p["person_id"] == "a"].set_index("rel_quarter")["offences"]
    assert a.loc[-1] == 2 and a.loc[0] == 1 and a.loc[1] == 1 and a.loc[3] == 1
    assert a.loc[-8] == 1 and a.sum() == 6
    assert p.loc[p["person_id"] == "b", "offences"].sum() == 0
    assert sorted(p["rel_quarter"].unique()) == list(range(-8, 4))
    first = p[(p["person_id"] == "a") & (p["rel_quarter"] == 0)]
    assert first["calendar_quarter"].item() == "2018Q2" and first["post"].item() == 1


def _simulated(effect, n=1500, seed=0, lead_effect=0.0):
    """Linear panel: person + calendar + event-time effects + planted treated x post."""
    rng = np.random.default_rng(seed)
    people = pd.DataFrame(
        {
            "person_id": [f"p{i:05d}" for i in range(n)],
            "treated": np.arange(n) % 2 == 0,
            "index_date": pd.Timestamp("2018-01-01")
            + pd.to_timedelta(rng.integers(0, 540, n), unit="D"),
            "weights": 1.0,
            "subclass": np.arange(n) // 2,
        }
    )
    empty = pd.DataFrame({"person_id": [], "offence_date": pd.to_datetime([]), "offence_group": []})
    panel = offence_panel(people, empty)
    alpha = rng.gamma(2.0, 0.2, n)[np.repeat(np.arange(n), 12)]
    cal = pd.factorize(panel["calendar_quarter"], sort=True)[0]
    k = panel["rel_quarter"].to_numpy()
    profile = np.where(k < 0, 0.3 + 0.02 * k, 0.15)  # offending falls after the index date
    t = panel["treated"].to_numpy()
    y = alpha + 0.01 * cal + profile + effect * t * (k >= 0) + lead_effect * t * (k == -3)
    panel["offences"] = y + rng.normal(0, 0.4, len(panel))
    return panel


def test_did_recovers_planted_effect():
    panel = _simulated(-0.12)
    res = did(panel, level=0.95).iloc[0]
    # within 3.5 SE of the truth (a calibrated SE fails this with probability 0.0005;
    # over 40 other seeds the estimates averaged -0.1206 with sd 0.0122 against mean SE
    # 0.0126, 95 % coverage 0.95)
    assert abs(res["estimate"] + 0.12) < 3.5 * res["se"]
    assert res["p_value"] < 0.001
    assert res["n_people"] == 1500 and res["n_clusters"] == 1500
    by_set = did(panel, cluster="subclass", level=0.95).iloc[0]
    assert by_set["estimate"] == pytest.approx(res["estimate"], abs=1e-10)
    assert by_set["n_clusters"] == 750


def test_event_study_lags_recover_effect_and_leads_are_zero():
    es = event_study(_simulated(-0.12, seed=1), level=0.95)
    assert list(es["rel_quarter"]) == list(range(-8, 4))
    ref = es[es["period"] == "reference"]
    assert ref["rel_quarter"].item() == -1 and ref["estimate"].item() == 0.0
    leads = es[es["period"] == "lead"]
    lags = es[es["period"] == "lag"]
    assert (leads["estimate"].abs() < 3.5 * leads["se"]).all()
    assert ((lags["estimate"] + 0.12).abs() < 3.5 * lags["se"]).all()
    assert (lags["ci_high"] < 0).all()
    assert es.attrs["leads_joint_df"] == 7 and es.attrs["leads_joint_p"] > 0.001


def test_event_study_detects_a_planted_lead():
    es = event_study(_simulated(0.0, seed=2, lead_effect=0.2), level=0.95).set_index("rel_quarter")
    assert es.loc[-3, "ci_low"] > 0.1
    assert es.loc[-3, "p_value"] < 0.001
    assert es.attrs["leads_joint_p"] < 0.001


def test_no_effect_gives_null_did():
    res = did(_simulated(0.0, seed=3), level=0.95).iloc[0]
    assert res["ci_low"] < 0 < res["ci_high"]


def test_bad_reference_and_cluster_raise():
    panel = _simulated(0.0, n=40)
    with pytest.raises(ValueError, match="reference"):
        event_study(panel, reference=9, level=0.95)
    with pytest.raises(ValueError, match="cluster"):
        did(panel, cluster="office", level=0.95)


@pytest.mark.parametrize("people", [STAGGERED, PILOT_LIKE], ids=["staggered", "pilot_like"])
def test_did_recovers_a_known_effect_on_noise_free_panels(people):
    # Without the common event-time profile the estimate was -161 % (staggered) and
    # +3.3 % (pilot-like) off the truth on these panels.
    res = did(noise_free(people, effect=-0.1), level=0.95).iloc[0]
    assert res["estimate"] == pytest.approx(-0.1, rel=0.01)


@pytest.mark.parametrize("people", [STAGGERED, PILOT_LIKE], ids=["staggered", "pilot_like"])
def test_did_equals_least_squares_on_alldummies(people):
    rng = np.random.default_rng(7)
    panel = noise_free(people.iloc[::3].reset_index(drop=True))
    panel["offences"] += rng.poisson(0.5, len(panel))
    panel["weights"] = panel["person_id"].map(
        dict(zip(people["person_id"], 1 + (np.arange(len(people)) % 3) / 2, strict=True))
    )
    t_post = (panel["treated"] & (panel["rel_quarter"] >= 0)).to_numpy(float)
    ref = all_dummies_ols(panel, {"treated_x_post": t_post})
    assert did(panel, level=0.95).iloc[0]["estimate"] == pytest.approx(
        ref["treated_x_post"], abs=1e-8
    )


@pytest.mark.parametrize("cluster", ["person", "subclass"])
def test_did_standard_error_is_the_cr1_cluster_sandwich(cluster):
    """statsmodels WLS on explicit dummies, CR0 sandwich, times G/(G-1) (n-1)/(n-K) with K
    the coefficients not nested in the clusters (fixest's default small-sample factor)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(11)
    people = PILOT_LIKE.iloc[::2].reset_index(drop=True)
    panel = noise_free(people)
    panel["offences"] = rng.poisson(0.6, len(panel))
    panel["weights"] = np.where(panel["treated"], 1.0, 0.5 + (panel.index // 12 % 4) / 4)
    t_post = (panel["treated"] & (panel["rel_quarter"] >= 0)).to_numpy(float)
    event = dummies(panel["rel_quarter"])  # columns: quarters -8 .. 3
    X = np.column_stack(
        [t_post, dummies(panel["person_id"]), dummies(panel["calendar_quarter"])[:, 1:]]
        + [np.delete(event, 7, axis=1)]  # quarter -1 is the reference
    )
    groups = pd.factorize(panel[{"person": "person_id"}.get(cluster, cluster)])[0]
    res = sm.WLS(panel["offences"].to_numpy(float), X, weights=panel["weights"]).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}
    )
    n, G = len(panel), groups.max() + 1
    K = 1 + (panel["calendar_quarter"].nunique() - 1) + (12 - 1)
    se = res.bse[0] * np.sqrt(G / (G - 1) * (n - 1) / (n - K))
    out = did(panel, cluster=cluster, level=0.95).iloc[0]
    assert out["estimate"] == pytest.approx(res.params[0], abs=1e-10)
    assert out["se"] == pytest.approx(se, rel=1e-8)
    assert out["n_clusters"] == G


def test_event_study_equals_least_squares_on_alldummies():
    rng = np.random.default_rng(5)
    panel = noise_free(PILOT_LIKE.iloc[::3].reset_index(drop=True))
    panel["offences"] += rng.poisson(0.5, len(panel))
    t, k = panel["treated"].to_numpy(float), panel["rel_quarter"].to_numpy()
    terms = {f"treated_q{q}": t * (k == q) for q in range(-8, 4) if q != -1}
    ref = all_dummies_ols(panel, terms)
    es = event_study(panel, level=0.95).set_index("term")
    for term, value in ref.items():
        assert es.loc[term, "estimate"] == pytest.approx(value, abs=1e-8)


def test_event_time_trend_is_normalised_only_when_not_identified():
    exact = noise_free(MID_QUARTER)
    cal = pd.PeriodIndex(exact["calendar_quarter"], freq="Q").asi8 - exact["rel_quarter"]
    assert (cal.groupby(exact["person_id"]).nunique() == 1).all()  # the identity holds
    d = did(exact, level=0.95).iloc[0]
    assert d["event_time_normalised"] == "-1,-8"  # the first quarter too
    assert d["estimate"] == pytest.approx(-0.1, abs=1e-10)
    es = event_study(exact, level=0.95)
    assert es.attrs["event_time_normalised"] == "-1,-8"
    assert np.allclose(es["estimate"], np.where(es["rel_quarter"] >= 0, -0.1, 0.0), atol=1e-10)
    # Slipping quarters (90-92 days) identify the trend: only the reference is normalised.
    assert did(noise_free(PILOT_LIKE), level=0.95).iloc[0]["event_time_normalised"] == "-1"


def test_unidentified_designs_raise():
    panel = noise_free(MID_QUARTER)
    with pytest.raises(ValueError, match="treated and comparison"):
        did(panel.assign(treated=True), level=0.95)
    with pytest.raises(ValueError, match="before and after"):
        did(panel[panel["rel_quarter"] >= 0], level=0.95)


def test_resolve_cluster():
    from mydirection.effects.panel import resolve_cluster
    from mydirection.errors import UserError

    sets = pd.Series([1, 1, 2, 2])
    assert resolve_cluster("auto", replace=False, subclass=sets) == "subclass"
    assert resolve_cluster("auto", replace=True, subclass=None) == "person"
    assert resolve_cluster("auto", replace=False, subclass=sets.where(sets > 1)) == "person"
    assert resolve_cluster("person", replace=False, subclass=sets) == "person"
    assert resolve_cluster("subclass", replace=False, subclass=sets) == "subclass"
    with pytest.raises(UserError, match="with replacement.*use cluster: person"):
        resolve_cluster("subclass", replace=True, subclass=sets)
    with pytest.raises(UserError, match="2 matched people have no subclass"):
        resolve_cluster("subclass", replace=False, subclass=sets.where(sets > 1))
    with pytest.raises(UserError, match="'office' is not one of auto, person, subclass"):
        resolve_cluster("office", replace=False, subclass=sets)


def test_offence_panel_counts_offences_proven_before_the_index_date():
    matched = pd.DataFrame(
        {
            "person_id": ["a"],
            "treated": [True],
            "weights": [1.0],
            "index_date": pd.to_datetime(["2018-04-01"]),
        }  # fmt: skip
    )
    conv = pd.DataFrame(
        {
            "person_id": ["a"] * 3,
            "offence_date": pd.to_datetime(["2017-12-01", "2018-01-10", "2018-05-01"]),
            # proven before, proven on the index date (the index offence), after
            "disposal_date": pd.to_datetime(["2018-02-01", "2018-04-01", "2018-07-01"]),
            "offence_group": ["theft"] * 3,
        }
    )
    p = offence_panel(matched, conv).set_index("rel_quarter")
    assert p.loc[-2, "offences"] == 1 and p.loc[-2, "offences_proven_before_index"] == 1
    assert p.loc[-1, "offences"] == 1 and p.loc[-1, "offences_proven_before_index"] == 0
    assert p.loc[0, "offences"] == 1 and p.loc[0, "offences_proven_before_index"] == 0
    assert "offences_proven_before_index" not in offence_panel(
        matched, conv.drop(columns="disposal_date")
    )


def test_plot_event_study_shades_the_matched_leads(tmp_path):
    from mydirection.effects.panel import plot_event_study

    rng = np.random.default_rng(2)
    panel = noise_free(PILOT_LIKE.iloc[::5].reset_index(drop=True))
    panel["offences"] += rng.poisson(0.5, len(panel))
    es = event_study(panel, level=0.95)
    plot_event_study(es, tmp_path / "a.png", "t", level=0.9, window_leads=[-4, -1])
    plot_event_study(es, tmp_path / "b.png", "t", level=0.95)
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()


@pytest.mark.parametrize("cluster", ["person", "subclass", "crossing"])
def test_fit_is_linearmodels_panelols_with_person_effects_and_clustered_errors(cluster):
    """The reference implementation: linearmodels' weighted PanelOLS with entity effects and
    Stata's clustered covariance. "crossing" clusters are not nested in the people (each
    person's quarters fall in two clusters), so the person effects count in K."""
    from linearmodels.panel import PanelOLS

    from mydirection.effects.panel import design, fit

    rng = np.random.default_rng(3)
    panel = noise_free(PILOT_LIKE.iloc[::2].reset_index(drop=True))
    panel["offences"] = rng.poisson(0.6, len(panel)).astype(float)
    panel["weights"] = np.where(panel["treated"], 1.0, 0.5 + (panel.index // 12 % 4) / 4)
    if cluster == "crossing":
        panel["subclass"] = (panel.index // 7) % 40
    t, k = panel["treated"].to_numpy(float), panel["rel_quarter"].to_numpy()
    exog, _ = design(panel, {f"treated_q{q}": t * (k == q) for q in (-3, 0, 2)}, -1)
    ours = fit(panel, exog, "person" if cluster == "person" else "subclass")

    idx = pd.MultiIndex.from_arrays([panel["person_id"], panel["rel_quarter"]])
    groups = pd.factorize(panel["person_id" if cluster == "person" else "subclass"])[0]
    ref = PanelOLS(
        pd.Series(panel["offences"].to_numpy(), index=idx),
        exog.set_index(idx),
        weights=pd.Series(panel["weights"].to_numpy(), index=idx),
        entity_effects=True,
    ).fit(
        cov_type="clustered",
        clusters=pd.DataFrame({"c": groups}, index=idx),
        debiased=True,
        group_debias=True,
    )
    assert ours.nobs == ref.nobs and ours.n_clusters == groups.max() + 1
    np.testing.assert_allclose(ours.params, ref.params, rtol=1e-9, atol=1e-12)
    cov = ref.cov.loc[exog.columns, exog.columns].to_numpy()
    np.testing.assert_allclose(ours.cov, cov, rtol=1e-8, atol=1e-10 * np.abs(cov).max())
    np.testing.assert_allclose(ours.std_errors, ref.std_errors, rtol=1e-8)
