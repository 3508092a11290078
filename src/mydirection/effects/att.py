"""The average treatment effect on the treated (ATT) in a matched or weighted sample: weighted
regression of the outcome on treatment with robust sandwich standard errors, and the risk
or rate ratio from a weighted Poisson regression (see the package docstring)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

KINDS = ("binary", "count", "continuous")


Z95 = float(stats.norm.ppf(0.975))


@dataclass
class MatchedSample:
    """The minimal match result :func:`att` needs (``mydirection.matching.MatchResult`` fits).

    ``data``: matched rows with ``weights``, ``subclass``, the treatment column and outcomes.
    """

    data: pd.DataFrame
    treatment: str = "treated"
    replace: bool = False


def matched_sample(data: pd.DataFrame, treatment: str = "treated", replace: bool = False):
    """Wrap a matched DataFrame (e.g. ``matched.parquet`` merged with outcomes) for :func:`att`."""
    return MatchedSample(data=data, treatment=treatment, replace=replace)


@dataclass
class Effect:
    """An ATT estimate with its uncertainty and the group summaries a JDL table shows."""

    outcome: str
    kind: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_treated: int
    n_control: int
    mean_treated: float
    mean_control: float
    se_type: str
    n_clusters: int | None = None
    covariates: list[str] = field(default_factory=list)
    ratio: float | None = None
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    ratio_p_value: float | None = None

    @property
    def significant(self) -> bool:
        """True when the 95 % confidence interval excludes zero."""
        return bool(self.p_value < 0.05)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["covariates"] = ",".join(self.covariates)
        d["significant"] = self.significant
        return d


def sandwich(bread: np.ndarray, scores: np.ndarray, clusters=None) -> tuple[np.ndarray, str]:
    """Robust covariance ``B^-1 M B^-1`` from the bread and per-row score contributions.

    ``scores``: n x k matrix of each row's contribution to the estimating equation. With
    ``clusters``, the scores are summed within cluster and the CR1 factor
    ``G/(G-1) * (n-1)/(n-k)`` applied; otherwise HC0 (no factor).
    """
    n, k = scores.shape
    binv = np.linalg.inv(bread)
    if clusters is None:
        meat = scores.T @ scores
        kind = "HC0"
    else:
        codes, _ = pd.factorize(pd.Series(clusters), sort=True)
        if (codes < 0).any():
            raise ValueError("cluster labels must not be missing")
        g = int(codes.max()) + 1
        summed = np.zeros((g, k))
        np.add.at(summed, codes, scores)
        meat = summed.T @ summed
        meat *= g / (g - 1) * (n - 1) / (n - k) if g > 1 else np.nan
        kind = "cluster"
    return binv @ meat @ binv, kind


def _design(data: pd.DataFrame, treatment: str, covariates) -> tuple[np.ndarray, list[str]]:
    """Intercept, treatment and (optionally) treated-centred covariates with interactions."""
    t = data[treatment].astype(float).to_numpy()
    cols = [np.ones(len(data)), t]
    names = ["const", treatment]
    if covariates:
        cov = pd.get_dummies(data[list(covariates)], drop_first=True, dtype=float).astype(float)
        w = data["weights"].to_numpy(float)
        wt = w * t
        centre = (cov.to_numpy() * wt[:, None]).sum(0) / wt.sum()
        centred = cov.to_numpy() - centre
        keep = centred.std(0) > 0
        for j, name in enumerate(cov.columns):
            if keep[j]:
                cols += [centred[:, j], centred[:, j] * t]
                names += [str(name), f"{treatment}:{name}"]
    return np.column_stack(cols), names


def _clusters(m, data: pd.DataFrame):
    if m.replace or "subclass" not in data or data["subclass"].isna().any():
        return None
    return data["subclass"].to_numpy()


def _normal(estimate: float, se: float) -> tuple[float, float, float]:
    if not np.isfinite(se) or se <= 0:
        return float("nan"), float("nan"), float("nan")
    p = float(2 * stats.norm.sf(abs(estimate) / se))
    return estimate - Z95 * se, estimate + Z95 * se, p


def wls(y, X, w, clusters=None):
    """Weighted least squares with a robust sandwich; returns (beta, cov, se_type)."""
    Xw = X * w[:, None]
    bread = X.T @ Xw
    beta = np.linalg.solve(bread, Xw.T @ y)
    resid = y - X @ beta
    cov, kind = sandwich(bread, Xw * resid[:, None], clusters)
    return beta, cov, kind


def poisson(y, X, w, clusters=None, tol: float = 1e-12, max_iter: int = 100):
    """Weighted Poisson regression (log link) by Newton-Raphson, robust sandwich covariance."""
    mean = np.average(y, weights=w)
    beta = np.zeros(X.shape[1])
    beta[0] = math.log(mean) if mean > 0 else 0.0
    for _ in range(max_iter):
        mu = np.exp(X @ beta)
        score = X.T @ (w * (y - mu))
        info = X.T @ (X * (w * mu)[:, None])
        step = np.linalg.solve(info, score)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    mu = np.exp(X @ beta)
    info = X.T @ (X * (w * mu)[:, None])
    cov, kind = sandwich(info, X * (w * (y - mu))[:, None], clusters)
    return beta, cov, kind


def att(m, outcome: str, kind: str = "binary", covariates=None) -> Effect:
    """ATT of treatment on ``outcome`` in the matched sample ``m``.

    ``m``: any object with ``.data`` (matched rows with ``weights``, ``subclass``, the
    treatment column and ``outcome``), ``.treatment`` (column name) and ``.replace``.
    ``kind``: ``binary`` (difference in proportions + risk ratio), ``count`` (difference in
    means + rate ratio) or ``continuous`` (difference in means).
    Rows with a missing outcome or zero weight are left out.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    covariates = list(covariates or [])
    data = m.data
    missing = [c for c in [m.treatment, "weights", outcome, *covariates] if c not in data]
    if missing:
        raise KeyError(f"matched data lacks column(s) {missing}")
    keep = data[outcome].notna() & (data["weights"] > 0)
    data = data.loc[keep]
    t = data[m.treatment].astype(bool).to_numpy()
    if t.all() or not t.any():
        raise ValueError("att needs both treated and control rows with positive weight")
    y = data[outcome].astype(float).to_numpy()
    w = data["weights"].to_numpy(float)
    clusters = _clusters(m, data)
    X, _ = _design(data, m.treatment, covariates)
    beta, cov, se_type = wls(y, X, w, clusters)
    est, se = float(beta[1]), float(math.sqrt(cov[1, 1]))
    lo, hi, p = _normal(est, se)
    effect = Effect(
        outcome=outcome,
        kind=kind,
        estimate=est,
        se=se,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        n_treated=int(t.sum()),
        n_control=int((~t).sum()),
        mean_treated=float(np.average(y[t], weights=w[t])),
        mean_control=float(np.average(y[~t], weights=w[~t])),
        se_type=se_type,
        n_clusters=None if clusters is None else int(pd.Series(clusters).nunique()),
        covariates=covariates,
    )
    if kind in ("binary", "count"):
        if effect.mean_control > 0 and effect.mean_treated > 0:
            b, v, _ = poisson(y, X, w, clusters)
            lb, seb = float(b[1]), float(math.sqrt(v[1, 1]))
            rlo, rhi, rp = _normal(lb, seb)
            effect.ratio = math.exp(lb)
            effect.ratio_ci_low, effect.ratio_ci_high = math.exp(rlo), math.exp(rhi)
            effect.ratio_p_value = rp
        else:
            effect.ratio = effect.ratio_ci_low = effect.ratio_ci_high = float("nan")
            effect.ratio_p_value = float("nan")
    return effect


def time_to_first(m, duration: str = "days_to_first", event: str = "event") -> Effect:
    """JDL's third measure: mean days to first proven re-offence among re-offenders.

    A difference of weighted means (with the matching weights) among the people who
    re-offended; conditioning on re-offending breaks the matched comparison, so it is
    descriptive (the Cox hazard ratio is the causal summary of time to re-offence).
    """
    data = m.data[m.data[event] == 1]
    sub = MatchedSample(data=data, treatment=m.treatment, replace=m.replace)
    return att(sub, duration, kind="continuous")
