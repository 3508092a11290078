"""Proportional-hazards diagnostics for the Cox model: the scaled Schoenfeld residual test.

Grambsch & Therneau (1994) test ``beta_j(t) = beta_j + gamma_j g(t)`` for a transform ``g``
of time. Two versions:

- ``method="score"`` (default; R ``survival::cox.zph`` since survival 3.0): the exact score
  test for adding the covariates ``x_j g(t)`` to the fitted model, at ``(beta_hat, 0)``,
  with the full ``2p x 2p`` information ``[[H1, H2], [H2, H3]]``, ``H1 = sum V(t)``,
  ``H2 = sum g(t) V(t)``, ``H3 = sum g(t)^2 V(t)`` over the (Efron) death steps. The test
  for covariate ``j`` uses the rows of all ``beta`` and of ``gamma_j`` (other ``gamma`` held
  at 0), the global test all of them (``p`` df); this is R's ``terms=FALSE`` table (one row
  per coefficient), and the same as R's default when every term has one coefficient.
- ``method="approx"`` (the 1994 paper, R before 3.0 and lifelines'
  ``proportional_hazard_test``): assumes ``V(t)`` constant, so that
  ``T_j = (sum_k g~_k r*_kj)^2 / (d V_jj sum_k g~_k^2)`` with the scaled Schoenfeld
  residuals ``r*_k = d V r_k``, ``g~ = g - mean(g)`` over the ``d`` events and ``V`` the
  variance of ``beta_hat``; global ``T = (g~'R) V (R'g~) d / sum g~^2``.

How the weights and the robust variance enter (``variance``):

- ``"model"`` (R): case weights enter the score and the information exactly as in the
  weighted fit (each death weighted by ``w_i``, each Efron step of a tie by the mean
  weight of its deaths, the risk sets by ``w exp(eta)``). The robust variance does *not*
  enter: ``cox.zph`` uses the model-based information even when ``coxph`` was fitted with
  ``robust=TRUE``, ``cluster`` or weights. With matching weights that are not frequency
  weights (ratio, replacement) this information is not the variance of the score.
- ``"robust"``: the same score, standardised by its Lin-Wei (1989) sandwich variance
  instead: the efficient score of ``gamma`` (adjusted for ``beta``),
  ``L_i = U_i,gamma - H2' H1^-1 U_i,beta`` from the Efron score residuals of the augmented
  model, summed as ``w_i L_i`` within clusters (matched sets), ``Sigma = sum_g L_g L_g'``;
  ``T = U_gamma' Sigma^-1 U_gamma``. This is the version that matches the robust,
  pair-clustered Cox confidence interval. With ``method="approx"`` the robust choice uses
  the Lin-Wei covariance of ``beta_hat`` as ``V`` (as R < 3 and lifelines did when the
  model had ``robust=TRUE``).

Transforms (``transform``, R's names and definitions, applied to every row's time):
``"km"`` (R's default) ``1 - S(t-)``, the left-continuous *unweighted* Kaplan-Meier of all
rows; ``"rank"`` ``rank(time)`` over all rows (ties averaged); ``"identity"`` ``t``;
``"log"`` ``log t``; or a function of the times. ``g`` is centred at its mean over the
events (this does not change the test). lifelines uses other definitions: its ``"rank"``
numbers the events 1..d in sorted order, its ``"km"`` is the right-continuous *weighted*
KM; pass them as functions to reproduce it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from mydirection.effects.survival import (
    CoxFit,
    _cluster_sum,
    _fit,
    _revcum,
    _score_residuals,
)

TRANSFORMS = ("km", "rank", "identity", "log")
METHODS = ("score", "approx")
VARIANCES = ("model", "robust")


def time_transform(time: np.ndarray, event: np.ndarray, transform: str | Callable) -> np.ndarray:
    """``g(t)`` for every row, as R's ``cox.zph`` (survival >= 3) defines it."""
    time = np.asarray(time, float)
    if callable(transform):
        return np.asarray(transform(time), float)
    if transform == "identity":
        return time
    if transform == "log":
        return np.log(time)
    if transform == "rank":
        from scipy import stats  # here, not at import: most jobs never need scipy.stats

        return stats.rankdata(time)  # average ranks for ties, as R's rank()
    if transform == "km":
        ev = np.asarray(event, bool)
        times = np.unique(time)
        idx = np.searchsorted(times, time)
        n = _revcum(np.bincount(idx, minlength=len(times)).astype(float))
        d = np.bincount(idx, weights=ev.astype(float), minlength=len(times))
        surv = np.cumprod(1 - d / n)
        before = np.concatenate([[1.0], surv])[idx]  # S(t-): the KM just before t
        return 1.0 - before
    raise ValueError(f"transform must be one of {TRANSFORMS} or a function of time")


def _steps(fit: CoxFit):
    """Per Efron death step: weight ``wb``, mean ``a`` and variance ``V`` of x at risk."""
    s, beta = fit.s, fit.beta
    a, denom, frac, wb = fit.pieces
    X = s.X
    p = X.shape[1]
    r = s.w * np.exp(X @ beta)
    G = len(s.utimes)
    g, dead = s.kgroup, s.dead
    M = np.empty((len(g), p, p))
    for i in range(p):
        for j in range(i, p):
            xx = X[:, i] * X[:, j] * r
            S2 = _revcum(xx)[s.first]
            S2d = np.bincount(s.dgroup, weights=xx[dead], minlength=G)
            M[:, i, j] = M[:, j, i] = (S2[g] - frac * S2d[g]) / denom
    V = M - a[:, :, None] * a[:, None, :]
    return wb, a, V


def _score_and_information(fit: CoxFit, gt: np.ndarray):
    """Score ``(U_beta, U_gamma)`` and ``2p x 2p`` information at ``(beta_hat, 0)``.

    ``gt``: g at each distinct event time. Mirrors R's ``zph1`` C routine.
    """
    s = fit.s
    wb, a, V = _steps(fit)
    gk = gt[s.kgroup]  # g of each death step
    xd, wd, gd = s.X[s.dead], s.w[s.dead], gt[s.dgroup]
    u_beta = (wd[:, None] * xd).sum(0) - (wb[:, None] * a).sum(0)
    u_gamma = (wd[:, None] * gd[:, None] * xd).sum(0) - (wb[:, None] * gk[:, None] * a).sum(0)
    H1 = np.einsum("k,kij->ij", wb, V)
    H2 = np.einsum("k,kij->ij", wb * gk, V)
    H3 = np.einsum("k,kij->ij", wb * gk**2, V)
    info = np.block([[H1, H2], [H2.T, H3]])
    return u_beta, u_gamma, info


def schoenfeld_residuals(fit: CoxFit, scaled: bool = False) -> np.ndarray:
    """Schoenfeld residuals, one row per event in time order: ``x_i - xbar(t_i)``.

    With Efron ties ``xbar`` is the mean of the Efron steps' means (R). ``scaled``: R's
    ``residuals(fit, "scaledsch")`` from survival >= 3, ``beta + r V_mean^-1`` with
    ``V_mean = information / d`` (R's ``cox.zph``), the points of a ``beta(t)`` plot.
    """
    s = fit.s
    a = fit.pieces[0]
    G = len(s.utimes)
    p = s.X.shape[1]
    xbar = np.column_stack([np.bincount(s.kgroup, weights=a[:, j], minlength=G) for j in range(p)])
    xbar /= s.d[:, None]
    r = s.X[s.dead] - xbar[s.dgroup]
    if not scaled:
        return r
    vmean = fit.info / len(s.dead)
    return fit.beta + np.linalg.solve(vmean, r.T).T


def ph_test(
    data: pd.DataFrame,
    duration: str,
    event: str,
    covariates,
    ties: str = "efron",
    weights: str | None = None,
    cluster: str | None = None,
    transform: str | Callable = "km",
    method: str = "score",
    variance: str = "model",
    tol: float = 1e-10,
    max_iter: int = 50,
) -> pd.DataFrame:
    """Scaled Schoenfeld residual test of proportional hazards, per covariate and global.

    Fits the same Cox model as :func:`mydirection.effects.survival.cox` (same rows, ties,
    weights) and returns a tidy table ``term, chisq, df, p``: one row per covariate, then
    ``term == "GLOBAL"``. ``attrs``: ``method``, ``transform``, ``variance``, ``n``,
    ``events``, ``ties``. ``cluster`` only matters for ``variance="robust"``. See the
    module docstring for the two methods, the transforms and how weights enter.
    """
    from scipy import stats  # here, not at import: most jobs never need scipy.stats

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}")
    covariates = list(covariates)
    fit = _fit(data, duration, event, covariates, ties, weights, cluster, tol, max_iter)
    s = fit.s
    p = len(covariates)
    g_row = time_transform(s.time, s.event, transform)
    g_row = g_row - g_row[s.event].mean()
    gt = g_row[s.first]  # one value per distinct event time (all rows there share it)
    if method == "score":
        chisq = _score_test(fit, gt, variance)
    else:
        chisq = _approx_test(fit, g_row[s.dead], variance)
    df = np.r_[np.ones(p, dtype="int64"), p]
    out = pd.DataFrame(
        {
            "term": [*covariates, "GLOBAL"],
            "chisq": chisq,
            "df": df,
            "p": stats.chi2.sf(chisq, df),
        }
    )
    out.attrs.update(
        {
            "method": method,
            "transform": transform if isinstance(transform, str) else "user",
            "variance": variance,
            "n": int(len(s.time)),
            "events": int(s.event.sum()),
            "ties": ties,
        }
    )
    return out


def _score_test(fit: CoxFit, gt: np.ndarray, variance: str) -> np.ndarray:
    p = len(fit.beta)
    _, u_gamma, info = _score_and_information(fit, gt)
    H1, H2, H3 = info[:p, :p], info[:p, p:], info[p:, p:]
    if variance == "model":
        # efficient information for gamma (Schur complement): the [gamma, gamma] block of
        # the inverse of the full information is its inverse, so u' I^-1 u with u = (0, u_g)
        # is u_g' (H3 - H2' H1^-1 H2)^-1 u_g; per covariate: keep all beta and gamma_j
        schur = H3 - H2.T @ np.linalg.solve(H1, H2)
    else:
        s = fit.s
        U_beta = _score_residuals(s, fit.beta, fit.pieces)
        U_gamma = _score_residuals(s, fit.beta, fit.pieces, gt=gt)
        L = U_gamma - U_beta @ np.linalg.solve(H1, H2)
        Lc = _cluster_sum(L * s.w[:, None], fit.clusters)
        schur = Lc.T @ Lc
    per = u_gamma**2 / np.diag(schur)
    glob = float(u_gamma @ np.linalg.solve(schur, u_gamma))
    return np.r_[per, glob]


def _approx_test(fit: CoxFit, g_dead: np.ndarray, variance: str) -> np.ndarray:
    r = schoenfeld_residuals(fit)
    V = fit.robust_cov() if variance == "robust" else fit.cov_model
    d = len(g_dead)
    gc = g_dead - g_dead.mean()
    sgg = float(gc @ gc)
    gr = gc @ r  # sum_k g~_k r_k
    per = (d * (gr @ V)) ** 2 / (d * np.diag(V) * sgg)
    glob = float(gr @ V @ gr) * d / sgg
    return np.r_[per, glob]
