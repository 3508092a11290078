"""Tests of mydirection.effects.ph_test (scaled Schoenfeld residual test of proportional
hazards) against R's survival package, lifelines, a brute-force score test and simulation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from mydirection.effects.ph_test import (
    _score_and_information,
    ph_test,
    schoenfeld_residuals,
    time_transform,
)
from mydirection.effects.survival import _fit, _score_residuals

lifelines = pytest.importorskip("lifelines")
from lifelines.datasets import load_rossi  # noqa: E402
from lifelines.statistics import proportional_hazard_test  # noqa: E402

ROSSI = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]

# R survival's `ovarian` data (Edmonson et al. 1979), 26 patients.
OVARIAN = pd.DataFrame(
    [
        (59, 1, 72.3315, 1), (115, 1, 74.4932, 1), (156, 1, 66.4658, 2), (421, 0, 53.3644, 1),
        (431, 1, 50.3397, 1), (448, 0, 56.4301, 2), (464, 1, 56.937, 2), (475, 1, 59.8548, 2),
        (477, 0, 64.1753, 1), (563, 1, 55.1781, 2), (638, 1, 56.7562, 2), (744, 0, 50.1096, 1),
        (769, 0, 59.6301, 2), (770, 0, 57.0521, 1), (803, 0, 39.2712, 1), (855, 0, 43.1233, 2),
        (1040, 0, 38.8932, 2), (1106, 0, 44.6, 1), (1129, 0, 53.9068, 1), (1206, 0, 44.2055, 1),
        (1227, 0, 59.589, 2), (268, 1, 74.5041, 2), (329, 1, 43.137, 1), (353, 1, 63.2192, 2),
        (365, 1, 64.4247, 1), (377, 0, 58.3096, 1),
    ],
    columns=["futime", "fustat", "age", "ecog.ps"],
)  # fmt: skip


@pytest.fixture(scope="module")
def rossi():
    return load_rossi()


def test_reproduces_published_r_cox_zph_on_ovarian():
    # R (survival >= 3) example, tests/Examples/survival-Ex.Rout.save:
    #   fit <- coxph(Surv(futime, fustat) ~ age + ecog.ps, data=ovarian); cox.zph(fit)
    #           chisq df    p
    #   age     0.698  1 0.40
    #   ecog.ps 2.371  1 0.12
    #   GLOBAL  3.633  2 0.16
    out = ph_test(OVARIAN, "futime", "fustat", ["age", "ecog.ps"])
    assert list(out["term"]) == ["age", "ecog.ps", "GLOBAL"]
    np.testing.assert_allclose(out["chisq"], [0.698, 2.371, 3.633], atol=5e-4)
    assert list(out["df"]) == [1, 1, 2]
    np.testing.assert_allclose(out["p"], [0.40, 0.12, 0.16], atol=5e-3)
    assert out.attrs["transform"] == "km" and out.attrs["method"] == "score"


def _r_zph_closed_form(U, imat, g):
    """R tests/zph.R: score test from the per-death score U and information imat."""
    u2 = np.array([U.sum(), (g * U).sum()])
    i2 = np.array([[imat.sum(), (g * imat).sum()], [(g * imat).sum(), (g * g * imat).sum()]])
    return float(u2 @ np.linalg.solve(i2, u2))


def test_score_test_equals_r_closed_form_for_breslow_and_efron():
    # survival's tests/zph.R: the data where the MLE and the score test have closed forms
    # (its row with status NA is dropped).
    d = pd.DataFrame({"time": [9, 1, 1, 6, 6, 8], "status": [1, 1, 0, 1, 1, 0]})
    d["x"] = [0, 1, 1, 1, 0, 0]
    g = np.array([1.0, 6, 6, 9])  # the death times
    r = (3 + math.sqrt(33)) / 2  # Breslow MLE of exp(beta)
    U = np.array([1 / (r + 1), 3 / (r + 3), -r / (r + 3), 0])
    im = np.array([r / (r + 1) ** 2, 3 * r / (r + 3) ** 2, 3 * r / (r + 3) ** 2, 0])
    out = ph_test(d, "time", "status", ["x"], ties="breslow", transform="identity")
    assert out["chisq"].iloc[0] == pytest.approx(_r_zph_closed_form(U, im, g), rel=1e-9)
    glog = np.log(g) - np.log(g).mean()
    out = ph_test(d, "time", "status", ["x"], ties="breslow", transform="log")
    assert out["chisq"].iloc[0] == pytest.approx(_r_zph_closed_form(U, im, glog), rel=1e-9)
    phi = math.acos((45 / 23) * math.sqrt(3 / 23))
    r = 2 * math.sqrt(23 / 3) * math.cos(phi / 3)  # Efron MLE of exp(beta)
    U = np.array([1 / (r + 1), 3 / (r + 3), -r / (r + 5), 0])
    im = np.array([r / (r + 1) ** 2, 3 * r / (r + 3) ** 2, 5 * r / (r + 5) ** 2, 0])
    out = ph_test(d, "time", "status", ["x"], ties="efron", transform="log")
    assert out["chisq"].iloc[0] == pytest.approx(_r_zph_closed_form(U, im, glog), rel=1e-9)
    assert out["chisq"].iloc[1] == pytest.approx(out["chisq"].iloc[0])  # one covariate


def _efron_score_tv(X, gfun, time, event, w, theta, ties="efron"):
    """Score of the weighted Efron (or Breslow) partial likelihood with covariates
    (x, x g(t)), written as plain loops (R's mean weight per tied death set)."""
    p = X.shape[1]
    score = np.zeros(2 * p)
    for t in np.unique(time[event]):
        Z = np.hstack([X, X * gfun(t)])
        r = w * np.exp(Z @ theta)
        D = np.flatnonzero((time == t) & event)
        R = np.flatnonzero(time >= t)
        d = len(D)
        wbar = w[D].sum() / d
        score += (w[D, None] * Z[D]).sum(0)
        for k in range(d):
            f = k / d if ties == "efron" else 0.0
            den = r[R].sum() - f * r[D].sum()
            num = (r[R, None] * Z[R]).sum(0) - f * (r[D, None] * Z[D]).sum(0)
            score -= wbar * num / den
    return score


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_score_test_equals_brute_force_with_weights_and_ties(rossi, ties):
    # Independent reference: the score and information of the model with x*g(t) added,
    # from a loop implementation (information by central differences of its score), at
    # (beta_hat, 0). Heavily tied weeks and non-integer weights.
    df = rossi.iloc[:250].assign(w=np.random.default_rng(4).uniform(0.3, 2.5, 250))
    cov = ["fin", "age", "prio"]
    out = ph_test(df, "week", "arrest", cov, ties=ties, weights="w", transform="km")
    fit = _fit(df, "week", "arrest", cov, ties, "w", None, 1e-10, 50)
    X = df[cov].to_numpy(float)
    time = df["week"].to_numpy(float)
    event = df["arrest"].to_numpy(bool)
    w = df["w"].to_numpy(float)
    g_all = time_transform(time, event, "km")
    g_all = g_all - g_all[event].mean()
    gmap = dict(zip(time, g_all, strict=True))
    theta = np.r_[fit.beta, np.zeros(3)]

    def score(th):
        return _efron_score_tv(X, gmap.__getitem__, time, event, w, th, ties)

    u = score(theta)
    np.testing.assert_allclose(u[:3], 0, atol=1e-7)  # the model converged
    h = 1e-5
    info = np.empty((6, 6))
    for j in range(6):
        e = np.zeros(6)
        e[j] = h
        info[:, j] = -(score(theta + e) - score(theta - e)) / (2 * h)
    info = (info + info.T) / 2
    ug = np.r_[np.zeros(3), u[3:]]
    expect = []
    for j in range(3):
        kk = [0, 1, 2, 3 + j]
        expect.append(ug[kk] @ np.linalg.solve(info[np.ix_(kk, kk)], ug[kk]))
    expect.append(ug @ np.linalg.solve(info, ug))
    np.testing.assert_allclose(out["chisq"], expect, rtol=1e-6)
    # the information the test uses is the fitted model's (weighted, Efron)
    _, _, full = _score_and_information(fit, np.zeros(len(fit.s.utimes)))
    np.testing.assert_allclose(full[:3, :3], fit.info, rtol=1e-10)


def test_score_residuals_of_the_time_term_are_derivatives_in_the_weights(rossi):
    # The robust variant rests on U_i,gamma = d U_gamma / d w_i (at fixed beta), checked
    # against the loop score by numerical derivatives, on tied data.
    df = rossi.iloc[:120]
    cov = ["fin", "age", "prio"]
    w = np.random.default_rng(1).uniform(0.5, 1.5, len(df))
    fit = _fit(df.assign(w=w), "week", "arrest", cov, "efron", "w", None, 1e-10, 50)
    s = fit.s
    X = df[cov].to_numpy(float)
    time = df["week"].to_numpy(float)
    event = df["arrest"].to_numpy(bool)
    gt = np.sqrt(s.utimes)  # any function of time
    U = np.empty_like(X)
    U[s.order] = _score_residuals(s, fit.beta, fit.pieces, gt=gt)
    theta = np.r_[fit.beta, np.zeros(3)]
    gfun = np.sqrt
    Xc = X - np.average(X, axis=0, weights=w)  # same centring as the fit
    base = _efron_score_tv(Xc, gfun, time, event, w, theta)[3:]
    np.testing.assert_allclose((w[:, None] * U).sum(0), base, atol=1e-9)
    for i in [0, 7, 33, 60, 119]:
        h = 1e-6
        w2 = w.copy()
        w2[i] += h
        num = (_efron_score_tv(Xc, gfun, time, event, w2, theta)[3:] - base) / h
        np.testing.assert_allclose(U[i], num, atol=2e-5)


def _lifelines_fit(df):
    cols = ["week", "arrest", *ROSSI]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lifelines.CoxPHFitter().fit(
            df[cols], "week", "arrest", fit_options={"precision": 1e-12}
        )


@pytest.mark.parametrize(
    ("tied", "transform"),
    [(False, t) for t in ("identity", "log", "rank", "km")]
    + [(True, t) for t in ("identity", "log", "km")],  # lifelines' rank orders ties by row
)
def test_approx_method_matches_lifelines(rossi, tied, transform):
    # lifelines implements Grambsch & Therneau's approximation (R before survival 3.0),
    # per covariate only; its "rank" is the event order 1..d and its "km" the
    # right-continuous KM, so those two are passed as functions of time.
    df = rossi
    if not tied:
        rng = np.random.default_rng(0)
        df = rossi.assign(week=rossi["week"] + rng.uniform(0, 0.5, len(rossi)))
    cph = _lifelines_fit(df)
    ref = proportional_hazard_test(cph, df[["week", "arrest", *ROSSI]], time_transform=transform)
    ref = ref.summary.loc[ROSSI, "test_statistic"].to_numpy()
    if transform == "rank":
        ev = np.sort(df.loc[df["arrest"] == 1, "week"].to_numpy())
        tf = lambda t: np.searchsorted(ev, t, side="right").astype(float)  # noqa: E731
    elif transform == "km":
        km = lifelines.KaplanMeierFitter().fit(df["week"], df["arrest"])
        tf = lambda t: 1 - km.survival_function_at_times(t).to_numpy()  # noqa: E731
    else:
        tf = transform
    out = ph_test(df, "week", "arrest", ROSSI, transform=tf, method="approx")
    np.testing.assert_allclose(out["chisq"].iloc[:-1], ref, rtol=1e-6)
    # scaled Schoenfeld residuals: lifelines' (d V r, without beta)
    fit = _fit(df, "week", "arrest", ROSSI, "efron", None, None, 1e-10, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = cph.compute_residuals(df[["week", "arrest", *ROSSI]], "scaled_schoenfeld")
    mine = len(fit.s.dead) * schoenfeld_residuals(fit) @ fit.cov_model
    np.testing.assert_allclose(
        np.sort(mine, axis=0), np.sort(lr[ROSSI].to_numpy(), axis=0), atol=1e-6
    )


def test_time_transforms_follow_r():
    # times 2, 3+, 3, 5, 5, 8+ (+ censored): S = 5/6 after 2, x 4/5 after 3, x 1/3 after 5
    t = np.array([2.0, 3, 3, 5, 5, 8])
    e = np.array([1, 0, 1, 1, 1, 0], bool)
    s2, s3, s5 = 5 / 6, 5 / 6 * 4 / 5, 5 / 6 * 4 / 5 * 1 / 3
    # km: 1 - S(t-), left-continuous
    np.testing.assert_allclose(
        time_transform(t, e, "km"), [0, 1 - s2, 1 - s2, 1 - s3, 1 - s3, 1 - s5]
    )
    np.testing.assert_allclose(time_transform(t, e, "rank"), [1, 2.5, 2.5, 4.5, 4.5, 6])
    np.testing.assert_allclose(time_transform(t, e, "log"), np.log(t))
    with pytest.raises(ValueError, match="transform"):
        time_transform(t, e, "bogus")


def _simulate(seed, n=300, ph=True, weighted=False):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n).astype(float)
    if ph:  # hazard ratio 0.7 at all times
        t = rng.exponential(1 / (0.5 * np.exp(np.log(0.7) * x)))
    else:  # hazard ratio 0.3 before t = 1 and 3 after: clearly not proportional
        t1 = rng.exponential(1 / (0.5 * np.where(x == 1, 0.3, 1)))
        t2 = 1 + rng.exponential(1 / (0.5 * np.where(x == 1, 3.0, 1)))
        t = np.where(t1 < 1, t1, t2)
    c = rng.uniform(0.5, 4, n)
    df = pd.DataFrame({"t": np.ceil(np.minimum(t, c) * 30), "e": (t <= c).astype(int), "x": x})
    if weighted:  # matching-like weights: 1 for treated, non-integer for comparators
        df["w"] = np.where(x == 1, 1.0, rng.choice([0.5, 1.0, 1.0, 2.0, 4.0], n))
        df["cl"] = rng.integers(0, n // 2, n)
    return df


def _rejection_rate(seeds, variance, **kw):
    hits = 0
    for seed in seeds:
        df = _simulate(seed, **kw)
        extra = {"weights": "w", "cluster": "cl"} if kw.get("weighted") else {}
        hits += ph_test(df, "t", "e", ["x"], variance=variance, **extra)["p"].iloc[-1] < 0.05
    return hits / len(seeds)


def test_rejects_clearly_non_proportional_hazards():
    for variance in ("model", "robust"):
        assert _rejection_rate(range(40), variance, ph=False) == 1.0
        assert _rejection_rate(range(40), variance, ph=False, weighted=True) == 1.0


def test_holds_its_level_under_proportional_hazards():
    # 400 seeds: the binomial SE of a 5 % rate is 1.1 points
    seeds = range(400)
    for variance in ("model", "robust"):
        assert 0.02 <= _rejection_rate(seeds, variance) <= 0.08
    # with non-integer (matching-like) weights, R's model-based information is not the
    # variance of the weighted score: it rejects about twice too often; the robust one
    # holds the level
    assert 0.02 <= _rejection_rate(seeds, "robust", weighted=True) <= 0.08
    assert _rejection_rate(seeds, "model", weighted=True) > 0.085


def test_arguments_are_checked(rossi):
    with pytest.raises(ValueError, match="method"):
        ph_test(rossi, "week", "arrest", ["age"], method="exact")
    with pytest.raises(ValueError, match="variance"):
        ph_test(rossi, "week", "arrest", ["age"], variance="sandwich")
