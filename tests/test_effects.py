"""Tests of mydirection.effects against hand computations and independent sandwiches."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from mydirection.effects import (
    Effect,
    att,
    headline_table,
    matched_sample,
    people_needed,
    typical_100_sentence,
)


def _matched(n_sets=40, ratio=2, seed=1, effect=0.1):
    """Matched sets of one treated and ``ratio`` controls; control weights 1/ratio."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sets):
        x = rng.normal()
        rows.append({"subclass": s, "treated": True, "weights": 1.0, "x": x})
        for _ in range(ratio):
            rows.append({"subclass": s, "treated": False, "weights": 1.0 / ratio, "x": x})
    df = pd.DataFrame(rows)
    p = 1 / (1 + np.exp(-(-0.5 + 0.8 * df["x"] + effect * df["treated"])))
    df["reoffended"] = (rng.random(len(df)) < p).astype(int)
    df["n_reoffences"] = rng.poisson(np.exp(0.2 + 0.5 * df["x"] - 0.3 * df["treated"]))
    df["days"] = rng.normal(200, 50, len(df))
    df["sex"] = rng.choice(["female", "male"], len(df))
    return df


def _independent_sandwich(X, y, w, clusters):
    """WLS + CR1 sandwich written out row by row (independent of the library's code)."""
    n, k = X.shape
    bread = np.zeros((k, k))
    xty = np.zeros(k)
    for i in range(n):
        bread += w[i] * np.outer(X[i], X[i])
        xty += w[i] * X[i] * y[i]
    beta = np.linalg.solve(bread, xty)
    meat = np.zeros((k, k))
    groups = {}
    for i in range(n):
        u = w[i] * X[i] * (y[i] - X[i] @ beta)
        if clusters is None:
            meat += np.outer(u, u)
        else:
            groups[clusters[i]] = groups.get(clusters[i], 0) + u
    if clusters is not None:
        for u in groups.values():
            meat += np.outer(u, u)
        g = len(groups)
        meat *= g / (g - 1) * (n - 1) / (n - k)
    binv = np.linalg.inv(bread)
    return beta, binv @ meat @ binv


def test_weighted_means_match_hand_computation():
    df = pd.DataFrame(
        {
            "treated": [1, 1, 1, 0, 0, 0, 0],
            "weights": [1, 1, 1, 0.5, 0.5, 1.5, 0.5],
            "subclass": [1, 2, 3, 1, 1, 2, 3],
            "reoffended": [1, 0, 1, 1, 0, 0, 1],
        }
    )
    e = att(matched_sample(df), "reoffended", kind="binary")
    # treated: (1+0+1)/3; control: (0.5*1 + 0.5*0 + 1.5*0 + 0.5*1)/3 = 1/3
    assert e.mean_treated == pytest.approx(2 / 3, abs=1e-12)
    assert e.mean_control == pytest.approx(1 / 3, abs=1e-12)
    assert e.estimate == pytest.approx(1 / 3, abs=1e-12)
    assert e.ratio == pytest.approx(2.0, abs=1e-10)
    assert (e.n_treated, e.n_control) == (3, 4)


@pytest.mark.parametrize("replace", [False, True])
def test_se_matches_independent_sandwich(replace):
    df = _matched()
    e = att(matched_sample(df, replace=replace), "reoffended", kind="binary")
    X = np.column_stack([np.ones(len(df)), df["treated"].astype(float)])
    beta, cov = _independent_sandwich(
        X,
        df["reoffended"].to_numpy(float),
        df["weights"].to_numpy(float),
        None if replace else df["subclass"].to_numpy(),
    )
    assert e.estimate == pytest.approx(beta[1], abs=1e-8)
    assert e.se == pytest.approx(math.sqrt(cov[1, 1]), abs=1e-8)
    assert e.se_type == ("HC0" if replace else "cluster")
    assert e.ci_low == pytest.approx(beta[1] - 1.959963984540054 * e.se, abs=1e-8)


def test_cluster_se_agrees_with_statsmodels():
    df = _matched(seed=3)
    e = att(matched_sample(df), "n_reoffences", kind="count")
    X = sm.add_constant(df["treated"].astype(float))
    fit = sm.WLS(df["n_reoffences"], X, weights=df["weights"]).fit(
        cov_type="cluster", cov_kwds={"groups": df["subclass"]}
    )
    assert e.estimate == pytest.approx(fit.params["treated"], abs=1e-10)
    assert e.se == pytest.approx(fit.bse["treated"], abs=1e-8)
    assert e.p_value == pytest.approx(fit.pvalues["treated"], abs=1e-8)


def test_covariate_adjusted_is_gcomputation_att_with_same_sandwich():
    df = _matched(seed=5)
    df["x2"] = df["x"] + np.random.default_rng(0).normal(size=len(df))
    e = att(matched_sample(df), "days", kind="continuous", covariates=["x2", "sex"])
    # independent g-computation: fit outcome ~ t * (x2 + male) by WLS, average the
    # predicted difference over the treated (weighted)
    male = (df["sex"] == "male").astype(float)
    t = df["treated"].astype(float)
    X = np.column_stack([np.ones(len(df)), t, df["x2"], df["x2"] * t, male, male * t])
    w = df["weights"].to_numpy(float)
    beta, _ = _independent_sandwich(X, df["days"].to_numpy(float), w, None)
    tr = t.to_numpy() == 1
    diff = beta[1] + beta[3] * df["x2"].to_numpy() + beta[5] * male.to_numpy()
    assert e.estimate == pytest.approx(np.average(diff[tr], weights=w[tr]), abs=1e-8)
    # SE: the same sandwich on the centred design
    xc = df["x2"] - np.average(df["x2"][tr], weights=w[tr])
    mc = male - np.average(male[tr], weights=w[tr])
    Xc = np.column_stack([np.ones(len(df)), t, xc, xc * t, mc, mc * t])
    _, cov = _independent_sandwich(Xc, df["days"].to_numpy(float), w, df["subclass"].to_numpy())
    assert e.se == pytest.approx(math.sqrt(cov[1, 1]), abs=1e-8)


def test_risk_ratio_hc0_matches_closed_form():
    df = _matched(seed=7)
    e = att(matched_sample(df, replace=True), "reoffended", kind="binary")
    y, w, t = df["reoffended"].to_numpy(float), df["weights"].to_numpy(float), df["treated"]
    var = 0.0
    for grp in (t, ~t):
        mu = np.average(y[grp], weights=w[grp])
        var += np.sum((w[grp] * (y[grp] - mu)) ** 2) / np.sum(w[grp] * mu) ** 2
    rr = e.mean_treated / e.mean_control
    assert e.ratio == pytest.approx(rr, rel=1e-10)
    z = 1.959963984540054
    assert e.ratio_ci_low == pytest.approx(rr * math.exp(-z * math.sqrt(var)), rel=1e-8)
    assert e.ratio_ci_high == pytest.approx(rr * math.exp(z * math.sqrt(var)), rel=1e-8)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.SpecificationWarning")
def test_rate_ratio_cluster_matches_statsmodels_glm():
    df = _matched(seed=11)
    e = att(matched_sample(df), "n_reoffences", kind="count")
    X = sm.add_constant(df["treated"].astype(float))
    fit = sm.GLM(
        df["n_reoffences"], X, family=sm.families.Poisson(), var_weights=df["weights"]
    ).fit(cov_type="cluster", cov_kwds={"groups": df["subclass"]}, tol=1e-12)
    assert math.log(e.ratio) == pytest.approx(fit.params["treated"], abs=1e-8)
    se = (math.log(e.ratio_ci_high) - math.log(e.ratio_ci_low)) / (2 * 1.959963984540054)
    assert se == pytest.approx(fit.bse["treated"], rel=1e-6)


def test_zero_weight_and_missing_outcome_rows_are_left_out():
    df = _matched(seed=2)
    base = att(matched_sample(df), "reoffended")
    extra = df.iloc[:3].copy()
    extra["weights"] = 0.0
    extra["subclass"] = 999
    more = df.iloc[:2].copy()
    more["reoffended"] = np.nan
    e = att(matched_sample(pd.concat([df, extra, more])), "reoffended")
    assert e.estimate == pytest.approx(base.estimate, abs=1e-12)
    assert e.se == pytest.approx(base.se, abs=1e-12)


def test_bad_kind_and_one_group_raise():
    df = _matched()
    with pytest.raises(ValueError):
        att(matched_sample(df), "reoffended", kind="rate")
    with pytest.raises(ValueError):
        att(matched_sample(df[df["treated"]]), "reoffended")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 1), min_size=6, max_size=30),
    st.integers(0, 2**16),
)
def test_estimate_is_difference_of_weighted_means(ys, seed):
    rng = np.random.default_rng(seed)
    n = len(ys)
    df = pd.DataFrame(
        {
            "treated": np.arange(n) % 2 == 0,
            "weights": rng.uniform(0.2, 2.0, n),
            "subclass": np.arange(n) // 2,
            "reoffended": ys,
        }
    )
    e = att(matched_sample(df), "reoffended")
    t = df["treated"]
    diff = np.average(df["reoffended"][t], weights=df["weights"][t]) - np.average(
        df["reoffended"][~t], weights=df["weights"][~t]
    )
    assert e.estimate == pytest.approx(diff, abs=1e-10)


def _effect(est, lo, hi, n=300, kind="binary"):
    se = (hi - lo) / (2 * 1.959963984540054)
    from scipy import stats

    p = 2 * stats.norm.sf(abs(est) / se)
    return Effect("reoffended", kind, est, se, lo, hi, p, n, n, 0.4, 0.4 - est, "cluster")


def test_people_needed_scales_with_inverse_square():
    e = _effect(-0.02, -0.06, 0.02)
    # z*se/|d| = 0.04/0.02 = 2 -> n * 4
    assert people_needed(e) == 1200
    # at n_needed the (scaled) interval just excludes zero
    se_new = e.se * math.sqrt(e.n_treated / people_needed(e))
    assert abs(e.estimate) / se_new >= 1.959963984540054 - 1e-9


def test_typical_100_sentence_reads_the_numbers():
    spans = typical_100_sentence(_effect(-0.02, -0.06, 0.02))
    assert "between 6 fewer and 2 more people committed a proven re-offence" in spans
    assert "1,200 people in the treatment group" in spans
    sig = typical_100_sentence(_effect(-0.08, -0.12, -0.04))
    assert "between 4 and 12 fewer people" in sig
    assert "statistically significant result" in sig
    freq = typical_100_sentence(_effect(0.3, 0.1, 0.5, kind="count"))
    assert "between 10 and 50 more proven re-offences" in freq
    zero = typical_100_sentence(_effect(0.0, -0.05, 0.05))
    assert "no sample size" in zero


def test_headline_table_layout():
    t = headline_table({"rate": _effect(-0.02, -0.06, 0.02)})
    assert list(t.columns[:12]) == [
        "measure", "label", "outcome", "kind", "n_treated", "n_comparison", "treated",
        "comparison", "difference", "se", "ci_low", "ci_high",
    ]  # fmt: skip
    assert not t.loc[0, "significant"]
