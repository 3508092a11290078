"""Tests of mydirection.effects.survival against published results and independent software."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg

from mydirection.effects.survival import (
    _score_residuals,
    _Sorted,
    _terms,
    at_risk_at,
    cox,
    kaplan_meier,
)

lifelines = pytest.importorskip("lifelines")
from lifelines.datasets import load_rossi  # noqa: E402

ROSSI = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
# R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi)
# (Efron ties), as published in Fox & Weisberg, "Cox Proportional-Hazards Regression for
# Survival Data in R", appendix to An R Companion to Applied Regression.
R_COEF = [-0.37942, -0.05744, 0.31390, -0.14979, -0.43370, -0.08487, 0.09150]
R_SE = [0.19138, 0.02200, 0.30799, 0.21222, 0.38187, 0.19576, 0.02865]


@pytest.fixture(scope="module")
def rossi():
    return load_rossi()


def test_cox_reproduces_published_r_efron(rossi):
    out = cox(rossi, "week", "arrest", ROSSI)
    assert list(out.index) == ROSSI
    np.testing.assert_allclose(out["coef"], R_COEF, atol=6e-5)
    np.testing.assert_allclose(out["se"], R_SE, atol=6e-5)
    np.testing.assert_allclose(out["hr"], np.exp(R_COEF), rtol=1e-4)
    assert out.attrs["events"] == 114 and out.attrs["se_type"] == "model"


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_agrees_with_statsmodels_phreg(rossi, ties):
    out = cox(rossi, "week", "arrest", ROSSI, ties=ties)
    fit = PHReg(rossi["week"], rossi[ROSSI], status=rossi["arrest"], ties=ties).fit()
    np.testing.assert_allclose(out["coef"], fit.params, atol=1e-8)
    np.testing.assert_allclose(out["se"], fit.bse, atol=1e-8)
    np.testing.assert_allclose(out["p"], fit.pvalues, atol=1e-8)


@pytest.mark.parametrize("case", ["robust", "weights", "weights+cluster", "cluster"])
def test_cox_robust_matches_lifelines_without_ties(rossi, case):
    # lifelines' score residuals ignore ties, so compare on untied (jittered) times
    rng = np.random.default_rng(0)
    df = rossi.assign(
        week=rossi["week"] + rng.uniform(0, 0.5, len(rossi)),
        w=rng.uniform(0.3, 2, len(rossi)),
        cl=rng.integers(0, 80, len(rossi)),
    )
    kw, lkw = {}, {}
    if "weights" in case:
        kw["weights"], lkw["weights_col"] = "w", "w"
    if "cluster" in case:
        kw["cluster"], lkw["cluster_col"] = "cl", "cl"
    if case == "robust":
        kw["robust"] = True
    out = cox(df, "week", "arrest", ROSSI, **kw)
    cols = ["week", "arrest", *ROSSI, *lkw.values()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = lifelines.CoxPHFitter().fit(df[cols], "week", "arrest", robust=True, **lkw)
    np.testing.assert_allclose(out["coef"], fit.params_[ROSSI], atol=1e-6)
    np.testing.assert_allclose(out["se"], fit.standard_errors_[ROSSI], rtol=1e-6)
    assert out.attrs["se_type"].startswith("robust")


def _efron_score(X, time, event, w, beta):
    """Efron score with weights (R coxph's mean weight per tie), written as plain loops."""
    p = X.shape[1]
    score = np.zeros(p)
    for t in np.unique(time[event]):
        D = np.flatnonzero((time == t) & event)
        R = np.flatnonzero(time >= t)
        d = len(D)
        r = w * np.exp(X @ beta)
        wbar = w[D].sum() / d
        score += (w[D, None] * X[D]).sum(0)
        for k in range(d):
            den = r[R].sum() - k / d * r[D].sum()
            num = (r[R, None] * X[R]).sum(0) - k / d * (r[D, None] * X[D]).sum(0)
            score -= wbar * num / den
    return score


def test_efron_score_residuals_are_derivatives_of_the_score_in_the_weights(rossi):
    # Independent check of the robust variance's ingredients on tied data: the score
    # residual U_i equals d score / d w_i (numerical derivative of a loop implementation).
    df = rossi.iloc[:120]
    X = df[["fin", "age", "prio"]].to_numpy(float)
    time = df["week"].to_numpy(float)
    event = df["arrest"].to_numpy(bool)
    w = np.random.default_rng(1).uniform(0.5, 1.5, len(df))
    beta = np.array([-0.3, -0.05, 0.1])
    s = _Sorted(X, time, event, w)
    *_, pieces = _terms(s, beta, "efron")
    U = np.empty_like(X)
    U[s.order] = _score_residuals(s, beta, pieces)
    base = _efron_score(X, time, event, w, beta)
    np.testing.assert_allclose((w[:, None] * U).sum(0), base, atol=1e-9)
    for i in [0, 5, 17, 40, 77, 119]:
        h = 1e-6
        w2 = w.copy()
        w2[i] += h
        num = (_efron_score(X, time, event, w2, beta) - base) / h
        np.testing.assert_allclose(U[i], num, atol=1e-5)


def test_cox_frequency_weights_equal_duplicated_rows(rossi):
    # exact under Breslow; under Efron a duplicated row creates extra ties (as in R)
    df = rossi.iloc[:200].copy()
    df["w"] = np.arange(len(df)) % 3 + 1
    cov = ["fin", "age", "prio"]
    weighted = cox(df, "week", "arrest", cov, ties="breslow", weights="w", robust=False)
    dup = df.loc[df.index.repeat(df["w"])]
    plain = cox(dup, "week", "arrest", cov, ties="breslow")
    np.testing.assert_allclose(weighted["coef"], plain["coef"], atol=1e-8)
    np.testing.assert_allclose(weighted["se"], plain["se"], atol=1e-8)


def test_cox_warns_when_a_coefficient_is_infinite(rossi):
    df = rossi.assign(sep=rossi["arrest"].astype(float))  # separates events perfectly
    with pytest.warns(RuntimeWarning, match="did not converge"):
        out = cox(df, "week", "arrest", ["sep", "age"])
    assert not out.attrs["converged"]
    assert cox(rossi, "week", "arrest", ROSSI).attrs["converged"]


def test_cox_without_events_raises():
    df = pd.DataFrame({"t": [1.0, 2.0], "e": [0, 0], "x": [0.0, 1.0]})
    with pytest.raises(ValueError, match="no events"):
        cox(df, "t", "e", ["x"])


def test_kaplan_meier_hand_worked_example():
    # times 3, 4+, 5, 5, 6+, 8, 9+ (+ = censored); n = 7
    df = pd.DataFrame({"t": [3, 4, 5, 5, 6, 8, 9], "e": [1, 0, 1, 1, 0, 1, 0]})
    km = kaplan_meier(df, "t", "e")
    ev = km[km["events"] > 0].set_index("time")
    # S(3) = 6/7; S(5) = 6/7 * 3/5 = 18/35; S(8) = 18/35 * 1/2 = 9/35
    assert ev.loc[3, "survival"] == pytest.approx(6 / 7)
    assert ev.loc[5, "survival"] == pytest.approx(18 / 35)
    assert ev.loc[8, "survival"] == pytest.approx(9 / 35)
    assert list(ev["at_risk"]) == [7, 5, 2]
    # Greenwood at 5: 1/(7*6) + 2/(5*3); log-log CI
    s = 18 / 35
    v = 1 / 42 + 2 / 15
    se = math.sqrt(v) / abs(math.log(s))
    z = 1.959963984540054
    assert ev.loc[5, "ci_low"] == pytest.approx(s ** math.exp(z * se))
    assert ev.loc[5, "ci_high"] == pytest.approx(s ** math.exp(-z * se))
    assert km.loc[km["time"] == 4, "survival"].item() == pytest.approx(6 / 7)
    assert at_risk_at(km, [0, 5, 6, 10])["at_risk"].tolist() == [7, 5, 3, 0]


def test_kaplan_meier_agrees_with_lifelines_by_group(rossi):
    km = kaplan_meier(rossi, "week", "arrest", group="fin")
    for g, d in rossi.groupby("fin"):
        ref = lifelines.KaplanMeierFitter().fit(d["week"], d["arrest"])
        mine = km[km["group"] == g].set_index("time")
        sf = ref.survival_function_.iloc[1:, 0]  # drop lifelines' time-0 row
        ci = ref.confidence_interval_.iloc[1:]
        np.testing.assert_allclose(mine["survival"], sf.to_numpy(), atol=1e-12)
        np.testing.assert_allclose(mine["ci_low"], ci.iloc[:, 0].to_numpy(), atol=1e-9)
        np.testing.assert_allclose(mine["ci_high"], ci.iloc[:, 1].to_numpy(), atol=1e-9)


def test_weighted_kaplan_meier_equals_duplicated_rows(rossi):
    df = rossi.iloc[:100].assign(w=np.arange(100) % 2 + 1)
    weighted = kaplan_meier(df, "week", "arrest", weights="w")
    dup = kaplan_meier(df.loc[df.index.repeat(df["w"])], "week", "arrest")
    np.testing.assert_allclose(weighted["survival"], dup["survival"], atol=1e-12)
    np.testing.assert_allclose(weighted["at_risk"], dup["at_risk"], atol=1e-12)


def _ij_brute_force(d, h=1e-6):
    """Infinitesimal jackknife by numerical derivatives: U_i(t) = w_i dS(t)/dw_i (central
    differences of the weighted KM in each observation's weight), one group."""
    d = d.reset_index(drop=True)

    def surv(w):
        return kaplan_meier(d.assign(w=w), "week", "arrest", weights="w", variance="greenwood")[
            "survival"
        ].to_numpy()

    w = d["w"].to_numpy(float)
    U = np.empty((len(d), len(surv(w))))
    for i in range(len(d)):
        up, dn = w.copy(), w.copy()
        up[i] += h
        dn[i] -= h
        U[i] = w[i] * (surv(up) - surv(dn)) / (2 * h)
    return U


@pytest.mark.parametrize("clustered", [False, True])
def test_robust_km_variance_equals_brute_force_infinitesimal_jackknife(rossi, clustered):
    rng = np.random.default_rng(7)
    df = rossi.iloc[:160].assign(
        w=rng.uniform(0.2, 2.5, 160), cl=rng.integers(0, 50, 160)
    )  # heavily tied weeks, non-integer weights, clusters that span times
    km = kaplan_meier(
        df, "week", "arrest", group="fin", weights="w", cluster="cl" if clustered else None
    )
    assert km.attrs["variance"] == "robust" and set(km["variance"]) == {"robust"}
    for g, d in df.groupby("fin"):
        U = _ij_brute_force(d)
        if clustered:
            codes = pd.factorize(d["cl"], sort=True)[0]
            summed = np.zeros((codes.max() + 1, U.shape[1]))
            np.add.at(summed, codes, U)
            U = summed
        mine = km.loc[km["group"] == g, "std_err"].to_numpy()
        np.testing.assert_allclose(mine**2, (U**2).sum(0), rtol=1e-6, atol=1e-12)


def test_km_variance_rule_follows_r_survfit(rossi):
    # R survfit (single state): robust when there is a cluster or a non-integer weight
    df = rossi.assign(one=1.0, two=2.0, half=np.where(rossi["fin"] == 1, 1.0, 0.5))
    df["cl"] = np.arange(len(df)) // 2
    assert kaplan_meier(df, "week", "arrest").attrs["variance"] == "greenwood"
    assert kaplan_meier(df, "week", "arrest", weights="two").attrs["variance"] == "greenwood"
    assert kaplan_meier(df, "week", "arrest", weights="half").attrs["variance"] == "robust"
    assert kaplan_meier(df, "week", "arrest", cluster="cl").attrs["variance"] == "robust"
    forced = kaplan_meier(df, "week", "arrest", weights="half", variance="greenwood")
    assert forced.attrs["variance"] == "greenwood"
    with pytest.raises(ValueError, match="variance"):
        kaplan_meier(df, "week", "arrest", variance="bootstrap")


def test_robust_km_equals_greenwood_with_unit_weights_and_ignores_weight_scale(rossi):
    # R's tests/survfit1.R: with unit weights and one row per person the IJ variance is
    # Greenwood's; multiplying every weight by 3 leaves the IJ variance unchanged, while
    # Greenwood (frequency weights) shrinks it by 3.
    ij = kaplan_meier(rossi, "week", "arrest", group="fin", variance="robust")
    gw = kaplan_meier(rossi, "week", "arrest", group="fin", variance="greenwood")
    np.testing.assert_allclose(ij["std_err"], gw["std_err"], rtol=1e-10)
    np.testing.assert_allclose(ij["ci_low"], gw["ci_low"], rtol=1e-10)
    three = rossi.assign(w=3.0)
    ij3 = kaplan_meier(three, "week", "arrest", group="fin", weights="w", variance="robust")
    gw3 = kaplan_meier(three, "week", "arrest", group="fin", weights="w")
    np.testing.assert_allclose(ij3["std_err"], ij["std_err"], rtol=1e-10)
    np.testing.assert_allclose(gw3["std_err"] ** 2 * 3, gw["std_err"] ** 2, rtol=1e-10)


def test_robust_km_log_log_interval_and_a_curve_that_reaches_zero():
    # everyone dies: at S = 0 the IJ variance is 0 (R) and the interval undefined
    df = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 1], "w": [0.5, 1.5, 1, 2, 1]})
    km = kaplan_meier(df, "t", "e", weights="w").set_index("time")
    assert km.attrs["variance"] == "robust"
    assert km.loc[4, "survival"] == 0 and km.loc[4, "std_err"] == 0
    assert np.isnan(km.loc[4, "ci_low"]) and np.isnan(km.loc[4, "ci_high"])
    s, se = km.loc[2, "survival"], km.loc[2, "std_err"]
    z = 1.959963984540054
    sell = (se / s) / abs(math.log(s))
    assert km.loc[2, "ci_low"] == pytest.approx(s ** math.exp(z * sell))
    assert km.loc[2, "ci_high"] == pytest.approx(s ** math.exp(-z * sell))
    # people counts stay unweighted
    assert list(km["n_at_risk"]) == [5, 4, 2, 1] and list(km["n_events"]) == [1, 1, 1, 1]
    assert list(km["n_censored"]) == [0, 1, 0, 0]
    assert km["at_risk"].tolist() == [6.0, 5.5, 3.0, 1.0]
