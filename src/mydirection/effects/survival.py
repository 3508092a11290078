"""Time to first proven re-offence: Kaplan-Meier curves and Cox regression.

Both are written out in NumPy so the method is visible and testable:

- :func:`cox` maximises the Cox partial likelihood with Efron's (default) or Breslow's
  handling of tied event times and optional case weights (``w``), by Newton-Raphson with
  step halving. It matches R's ``coxph``: with weights, each tied death set enters with its
  mean weight (as ``coxph``'s ``meanwt``). The robust variance is the Lin-Wei sandwich
  ``sum_g (sum_{i in g} w_i D_i)(...)^T`` of the dfbeta residuals ``D_i = U_i I^-1``,
  where ``U_i`` are the (Efron-adjusted) score residuals and ``g`` the clusters (each row
  its own cluster when only weights are given); there is no small-sample factor, as in
  ``coxph(..., robust=TRUE)``. Its proportional-hazards test (scaled Schoenfeld
  residuals) is :func:`mydirection.effects.ph_test.ph_test`.
- :func:`kaplan_meier` gives the product-limit estimate with Greenwood's variance, or the
  robust (infinitesimal jackknife) variance that R ``survfit`` uses by default when weights
  are not whole numbers or clusters are given, and the log-log ("exponential Greenwood")
  95 % confidence interval, R ``survfit``'s ``conf.type="log-log"``. With weights, at-risk
  and event counts are weighted sums; the people counts beside them are not.
- :func:`plot_km` draws only what :func:`mydirection.effects.km_figure.km_for_publication`
  releases: no count of people below the suppression threshold.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mydirection import normal


class _Sorted:
    """Rows sorted by time with the index arrays the likelihood needs."""

    def __init__(self, X, time, event, w):
        order = np.argsort(time, kind="stable")
        self.X = X[order]
        self.time = time[order]
        self.event = event[order].astype(bool)
        self.w = w[order]
        self.order = order
        self.utimes = np.unique(self.time[self.event])  # distinct event times
        # first row at risk (time >= t) for each event time
        self.first = np.searchsorted(self.time, self.utimes, side="left")
        dead = np.flatnonzero(self.event)
        self.dead = dead
        self.dgroup = np.searchsorted(self.utimes, self.time[dead])
        self.d = np.bincount(self.dgroup, minlength=len(self.utimes))
        # Efron expansion: one entry per death, k = 0..d-1 within its time
        self.kgroup = np.repeat(np.arange(len(self.utimes)), self.d)
        starts = np.cumsum(self.d) - self.d
        self.k = np.arange(len(self.kgroup)) - np.repeat(starts, self.d)
        self.wsum_dead = np.bincount(self.dgroup, weights=self.w[dead], minlength=len(self.d))
        self.wbar = self.wsum_dead / self.d  # mean weight of each tied death set


def _revcum(a: np.ndarray) -> np.ndarray:
    return np.cumsum(a[::-1], axis=0)[::-1]


def _terms(s: _Sorted, beta: np.ndarray, ties: str, full: bool = True):
    """Log partial likelihood, score, information (and Efron pieces for residuals)."""
    X, w = s.X, s.w
    n, p = X.shape
    eta = X @ beta
    r = w * np.exp(eta)
    G = len(s.utimes)
    S0 = _revcum(r)[s.first]
    S1 = _revcum(X * r[:, None])[s.first]
    dead = s.dead
    S0d = np.bincount(s.dgroup, weights=r[dead], minlength=G)
    S1d = np.column_stack(
        [np.bincount(s.dgroup, weights=(X[dead, j] * r[dead]), minlength=G) for j in range(p)]
    ).reshape(G, p)
    g = s.kgroup
    frac = s.k / s.d[g] if ties == "efron" else np.zeros(len(g))
    denom = S0[g] - frac * S0d[g]
    wb = s.wbar[g]
    loglik = float(np.sum(w[dead] * eta[dead]) - np.sum(wb * np.log(denom)))
    a = (S1[g] - frac[:, None] * S1d[g]) / denom[:, None]
    score = (X[dead] * w[dead, None]).sum(0) - (wb[:, None] * a).sum(0)
    if not full:
        return loglik, score, None, None
    info = np.zeros((p, p))
    for i in range(p):
        for j in range(i, p):
            xx = X[:, i] * X[:, j] * r
            S2 = _revcum(xx)[s.first]
            S2d = np.bincount(s.dgroup, weights=xx[dead], minlength=G)
            v = np.sum(wb * (S2[g] - frac * S2d[g]) / denom)
            info[i, j] = info[j, i] = v
    info -= (a * wb[:, None]).T @ a
    return loglik, score, info, (a, denom, frac, wb)


def _score_residuals(s: _Sorted, beta: np.ndarray, pieces, gt=None) -> np.ndarray:
    """Per-row score residuals U_i (unweighted), in sorted order.

    ``U_i = int (x_i - xbar(t)) dM_i(t)`` (Efron-adjusted). With ``gt`` (one value per
    distinct event time) they are those of the time-varying covariate ``x_i g(t)`` at
    its coefficient 0: ``int g(t) (x_i - xbar(t)) dM_i(t)`` (the proportional-hazards test).
    """
    a, denom, frac, wb = pieces
    X = s.X
    n, p = X.shape
    G = len(s.utimes)
    g = s.kgroup
    gt = np.ones(G) if gt is None else np.asarray(gt, float)
    haz = wb / denom * gt[g]  # hazard increment of each Efron step (times g(t))
    A = np.bincount(g, weights=haz, minlength=G)
    B = np.column_stack([np.bincount(g, weights=haz * a[:, j], minlength=G) for j in range(p)])
    A2 = np.bincount(g, weights=(1 - frac) * haz, minlength=G)
    B2 = np.column_stack(
        [np.bincount(g, weights=(1 - frac) * haz * a[:, j], minlength=G) for j in range(p)]
    )
    xbar_dead = (
        np.column_stack([np.bincount(g, weights=a[:, j], minlength=G) for j in range(p)])
        / s.d[:, None]
    )
    CA = np.concatenate([[0.0], np.cumsum(A)])  # CA[m] = sum of the first m event times
    CB = np.vstack([np.zeros((1, p)), np.cumsum(B, axis=0)])
    e = np.exp(X @ beta)
    last = np.searchsorted(s.utimes, s.time, side="right")  # event times <= T_i
    U = -e[:, None] * (X * CA[last][:, None] - CB[last])
    dead = s.dead
    gd = s.dgroup
    U[dead] = (X[dead] - xbar_dead[gd]) * gt[gd][:, None] - e[dead, None] * (
        X[dead] * (CA[gd] + A2[gd])[:, None] - (CB[gd] + B2[gd])
    )
    return U


class CoxFit:
    """What a fitted Cox model leaves behind for diagnostics (rows sorted by time).

    ``s``: the sorted data (covariates centred at their weighted means); ``beta``; the
    model-based covariance ``cov_model`` (inverse information) and ``cov`` (the one
    reported: robust or model); ``pieces`` of the Efron terms at ``beta``; ``clusters``:
    cluster codes in sorted order (None: each row its own).
    """

    def __init__(self, s, beta, loglik, info, pieces, it, converged, ties, clusters):
        self.s, self.beta, self.loglik, self.info = s, beta, loglik, info
        self.pieces, self.iterations, self.converged = pieces, it, converged
        self.ties, self.clusters = ties, clusters
        self.cov_model = np.linalg.inv(info)

    def robust_cov(self) -> np.ndarray:
        """Lin-Wei sandwich: sum over clusters of (sum_i w_i D_i)(...)^T, D_i = U_i I^-1."""
        U = _score_residuals(self.s, self.beta, self.pieces)
        D = _cluster_sum((U @ self.cov_model) * self.s.w[:, None], self.clusters)
        return D.T @ D


def _cluster_sum(M: np.ndarray, codes) -> np.ndarray:
    """Rows of ``M`` summed within clusters (``codes`` None: unchanged)."""
    if codes is None:
        return M
    summed = np.zeros((int(codes.max()) + 1, M.shape[1]))
    np.add.at(summed, codes, M)
    return summed


def _fit(
    data: pd.DataFrame,
    duration: str,
    event: str,
    covariates: list,
    ties: str,
    weights: str | None,
    cluster: str | None,
    tol: float,
    max_iter: int,
) -> CoxFit:
    """Newton-Raphson with step halving on the (weighted, Efron or Breslow) partial likelihood."""
    if ties not in ("efron", "breslow"):
        raise ValueError("ties must be 'efron' or 'breslow'")
    cols = [
        duration,
        event,
        *covariates,
        *([weights] if weights else []),
        *([cluster] if cluster else []),
    ]
    df = data[cols].dropna()
    X = df[covariates].to_numpy(float)
    time = df[duration].to_numpy(float)
    ev = df[event].to_numpy(float) > 0
    w = df[weights].to_numpy(float) if weights else np.ones(len(df))
    if (w < 0).any():
        raise ValueError("weights must be non-negative")
    keep = w > 0
    X, time, ev, w = X[keep], time[keep], ev[keep], w[keep]
    if not ev.any():
        raise ValueError("no events: the Cox model cannot be fitted")
    X = X - np.average(X, axis=0, weights=w)  # centring: same coefficients, stabler exp()
    s = _Sorted(X, time, ev, w)
    clusters = None
    if cluster:
        labels = df[cluster].to_numpy()[keep][s.order]
        clusters = pd.factorize(pd.Series(labels), sort=True)[0]
    beta = np.zeros(X.shape[1])
    loglik, score, info, pieces = _terms(s, beta, ties)
    it = 0
    converged = False
    while it < max_iter:
        it += 1
        ll_old = loglik
        step = np.linalg.solve(info, score)
        new = beta + step
        ll_new, _, _, _ = _terms(s, new, ties, full=False)
        halvings = 0
        while ll_new < loglik - 1e-12 and halvings < 30:
            step /= 2
            new = beta + step
            ll_new, _, _, _ = _terms(s, new, ties, full=False)
            halvings += 1
        beta = new
        loglik, score, info, pieces = _terms(s, beta, ties)
        if np.max(np.abs(step)) < tol or abs(loglik - ll_old) <= 1e-13 * abs(loglik):
            converged = np.max(np.abs(step)) < 1e-4  # a flat likelihood with moving beta: infinite
            break
    return CoxFit(s, beta, loglik, info, pieces, it, converged, ties, clusters)


def cox(
    data: pd.DataFrame,
    duration: str,
    event: str,
    covariates,
    ties: str = "efron",
    weights: str | None = None,
    cluster: str | None = None,
    robust: bool | None = None,
    tol: float = 1e-10,
    max_iter: int = 50,
    *,
    alpha: float,
) -> pd.DataFrame:
    """Cox proportional-hazards regression.

    Returns a DataFrame indexed by covariate with ``coef``, ``se``, ``hr``, ``hr_ci_low``,
    ``hr_ci_high`` (confidence ``1 - alpha``, the plan's level), ``p`` (Wald, normal). ``se`` is robust (Lin-Wei sandwich,
    clustered by ``cluster``) when ``weights`` or ``cluster`` is given or ``robust=True``,
    else model-based. ``attrs`` carries n, events, loglik, iterations, converged and the SE
    type; a RuntimeWarning says when Newton-Raphson did not converge (an infinite
    coefficient, e.g. a covariate that separates events from non-events).
    Covariates must be numeric (encode categories as 0/1 columns first).
    Proportional-hazards diagnostics: :func:`mydirection.effects.ph_test.ph_test`.
    """
    covariates = list(covariates)
    fit = _fit(data, duration, event, covariates, ties, weights, cluster, tol, max_iter)
    if not fit.converged:
        warnings.warn(
            f"Cox model did not converge in {fit.iterations} iterations (a coefficient may be "
            "infinite: a covariate that separates events from non-events)",
            RuntimeWarning,
            stacklevel=2,
        )
    beta = fit.beta
    use_robust = robust if robust is not None else (weights is not None or cluster is not None)
    cov = fit.robust_cov() if use_robust else fit.cov_model
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    z_crit = float(normal.norm_isf(alpha / 2))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = beta / se
        out = pd.DataFrame(
            {
                "coef": beta,
                "se": se,
                "hr": np.exp(beta),
                "hr_ci_low": np.exp(beta - z_crit * se),
                "hr_ci_high": np.exp(beta + z_crit * se),
                "p": 2 * normal.norm_sf(np.abs(z)),
            },
            index=pd.Index(covariates, name="covariate"),
        )
    out.attrs.update(
        {
            "n": int(len(fit.s.time)),
            "events": int(fit.s.event.sum()),
            "loglik": fit.loglik,
            "iterations": fit.iterations,
            "converged": bool(fit.converged),
            "ties": ties,
            "se_type": ("robust, clustered" if cluster else "robust") if use_robust else "model",
        }
    )
    return out


KM_VARIANCES = ("auto", "greenwood", "robust")


def _is_integer_valued(w: np.ndarray) -> bool:
    return bool(np.all(w == np.floor(w)))


def kaplan_meier(
    data: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None = None,
    weights: str | None = None,
    cluster: str | None = None,
    variance: str = "auto",
    *,
    alpha: float,
) -> pd.DataFrame:
    """Kaplan-Meier survival with Greenwood or robust (infinitesimal jackknife) variance;
    log-log confidence bands at ``1 - alpha`` (the plan's level).

    One row per group and distinct time (event or censoring): ``group``, ``time``,
    ``at_risk``, ``events``, ``censored`` (weighted sums), ``n_at_risk``, ``n_events``,
    ``n_censored`` (people: one row is one person, unweighted), ``survival``, ``std_err``
    (standard error of the survival, not of its log), ``ci_low``, ``ci_high`` and
    ``variance`` (``"greenwood"`` or ``"robust"``, also in ``attrs["variance"]``).

    ``variance="auto"`` follows R ``survfit`` (survival >= 3) for single-state curves: the
    robust variance when a ``cluster`` is given or any weight is not a whole number
    (``any(w != floor(w))``; matching with a ratio, with replacement, or weighting), else
    Greenwood, which is right for unit or frequency (whole-number) weights only.

    - Greenwood: ``Var S(t) = S(t)^2 sum_{s<=t} d_s / (n_s (n_s - d_s))`` (weighted n, d).
    - Robust: ``Var S(t) = sum_g (sum_{i in g} U_i(t))^2`` over clusters ``g`` (each row its
      own cluster without ``cluster``), with the infinitesimal-jackknife influence
      ``U_i(t) = w_i dS(t)/dw_i = -S(t) w_i sum_{s<=t} (dN_i(s) - Y_i(s) d_s/n_s)/(n_s - d_s)``
      (R's ``survfitkm`` recursion; 0 once S reaches 0). It does not change when all weights
      are multiplied by a constant, and with unit weights it equals Greenwood.

    The log-log 95 % interval is ``S^exp(+-z * se)`` with ``se = (std_err / S) / |log S|``
    (``conf.type="log-log"``); it is undefined (NaN) where S is 0 and [1, 1] where S is 1.
    """
    if variance not in KM_VARIANCES:
        raise ValueError(f"variance must be one of {KM_VARIANCES}")
    w_all = data[weights].to_numpy(float) if weights else np.ones(len(data))
    if (w_all < 0).any():
        raise ValueError("weights must be non-negative")
    if variance == "auto":
        variance = "robust" if cluster is not None or not _is_integer_valued(w_all) else "greenwood"
    groups = [(None, data)] if group is None else list(data.groupby(group, sort=True))
    parts = []
    for label, d in groups:
        t = d[duration].to_numpy(float)
        e = d[event].to_numpy(float) > 0
        w = d[weights].to_numpy(float) if weights else np.ones(len(d))
        times = np.unique(t)
        idx = np.searchsorted(times, t)
        total = np.bincount(idx, weights=w, minlength=len(times))
        events = np.bincount(idx, weights=w * e, minlength=len(times))
        people = np.bincount(idx, minlength=len(times))
        people_events = np.bincount(idx, weights=e.astype(float), minlength=len(times))
        at_risk = _revcum(total)
        with np.errstate(divide="ignore", invalid="ignore"):
            surv = np.cumprod(1 - events / at_risk)
            gw_step = np.where(events > 0, events / (at_risk * (at_risk - events)), 0.0)
            if variance == "greenwood":
                var = surv**2 * np.cumsum(gw_step)
            else:
                codes = None
                if cluster is not None:
                    codes = pd.factorize(d[cluster], sort=True)[0]
                var = _ij_variance(idx, e, w, at_risk, events, surv, codes)
            std_err = np.sqrt(var)
            se_ll = (std_err / surv) / np.abs(np.log(surv))
            ok = (surv > 0) & (surv < 1)
            z_crit = float(normal.norm_isf(alpha / 2))
            lo = np.where(ok, surv ** np.exp(z_crit * se_ll), np.nan)
            hi = np.where(ok, surv ** np.exp(-z_crit * se_ll), np.nan)
        lo = np.where(surv == 1, 1.0, lo)
        hi = np.where(surv == 1, 1.0, hi)
        parts.append(
            pd.DataFrame(
                {
                    "group": label,
                    "time": times,
                    "at_risk": at_risk,
                    "events": events,
                    "censored": total - events,
                    "n_at_risk": _revcum(people).astype("int64"),
                    "n_events": people_events.astype("int64"),
                    "n_censored": (people - people_events).astype("int64"),
                    "survival": surv,
                    "std_err": std_err,
                    "ci_low": lo,
                    "ci_high": hi,
                    "variance": variance,
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    out.attrs["variance"] = variance
    return out


def _ij_variance(idx, dead, w, n, d, surv, codes=None) -> np.ndarray:
    """Infinitesimal-jackknife variance of the KM at each distinct time (one group).

    ``idx``: each row's time index; ``dead``: its event flag; ``w``: weights; ``n``, ``d``:
    weighted at-risk and event sums per time; ``surv``: the KM; ``codes``: cluster codes
    (None: every row its own cluster). With ``A_i(t) = U_i(t) / S(t)``,
    ``A_i(t) = -w_i (dead_i [T_i <= t] / (n - d)_{T_i} - G(min(t, T_i)))`` where ``G`` is
    the cumulative Greenwood sum ``sum d/(n (n - d))``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        G = np.cumsum(np.where(d > 0, d / (n * (n - d)), 0.0))
        jump = np.where(dead, 1.0 / (n - d)[idx], 0.0)
    alive = surv > 0  # where S = 0 the influence is 0 (R's recursion), avoid inf * 0
    T = len(n)
    if codes is None:
        # rows that have left by t: (jump - G(T_i))^2, fixed from T_i on; rows still at
        # risk at t contribute G(t)^2 each
        left = np.where(alive[idx], w**2 * (jump - G[idx]) ** 2, 0.0)
        left_by = np.cumsum(np.bincount(idx, weights=left, minlength=T))
        w2_after = _revcum(np.bincount(idx, weights=w**2, minlength=T))  # rows with T_i >= t
        w2_later = np.concatenate([w2_after[1:], [0.0]])  # rows with T_i > t
        ssq = left_by + G**2 * w2_later
    else:
        ncl = int(codes.max()) + 1
        ssq = np.zeros(T)
        for start in range(0, T, 256):  # chunks of times keep memory at (clusters x 256)
            cols = np.arange(start, min(T, start + 256))
            A = np.where(
                idx[:, None] <= cols[None, :],
                jump[:, None] - G[idx][:, None],
                -G[cols][None, :],
            ) * (-w[:, None])
            summed = np.zeros((ncl, len(cols)))
            np.add.at(summed, codes, A)
            ssq[cols] = (summed**2).sum(0)
    return np.where(alive, surv**2 * ssq, 0.0)


def at_risk_at(km: pd.DataFrame, times) -> pd.DataFrame:
    """Numbers at risk per group at the given times (for the table under a KM plot)."""
    rows = []
    for label, d in km.groupby("group", sort=True, dropna=False):
        t = d["time"].to_numpy()
        n = d["at_risk"].to_numpy()
        for x in times:
            i = np.searchsorted(t, x, side="left")  # first time >= x: at risk = time >= x
            rows.append({"group": label, "time": x, "at_risk": float(n[i]) if i < len(t) else 0.0})
    return pd.DataFrame(rows)


def plot_km(
    km: pd.DataFrame,
    path,
    title: str,
    labels: dict | None = None,
    ticks=None,
    suppression_threshold: int = 5,
    step: float = 7.0,
) -> None:
    """Kaplan-Meier figure that reveals no count of people below ``suppression_threshold``.

    Draws :func:`mydirection.effects.km_figure.km_for_publication` of ``km``: the curves at
    the released boundaries (joined by straight lines) with their 95 % bands, and the
    numbers at risk (people) at ``ticks`` (default: 5 evenly spaced times from 0 to the
    last time). ``labels`` maps a group value to its legend label.
    """
    from mydirection.effects.km_figure import km_for_publication, plot_published_km

    published = km_for_publication(km, threshold=suppression_threshold, ticks=ticks, step=step)
    plot_published_km(published, path, title, labels)
