"""The propensity score: unpenalised logistic regression of treatment on the covariates,
fitted by Newton-Raphson (the same estimates as statsmodels' ``Logit``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from mydirection.matching.design import (
    _CHUNK_ROWS,
    _design,
    _examples,
    _expand,
    _first_levels,
    term_matrix,
    treatment_indicator,
)


class QuasiSeparation(RuntimeWarning):
    """Fitted propensities numerically 0 or 1 for some units (their scores stay there)."""


def _expit(eta: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-eta))


def _logit_newton(X: np.ndarray, y: np.ndarray, *, tol=1e-10, max_iter=100) -> np.ndarray:
    """Maximum-likelihood logistic regression by Newton-Raphson on the design ``X`` (its
    first column the intercept); collinear columns are an error.

    Score and Hessian are accumulated over row blocks, so temporaries stay small. The
    fixed point (score = 0) is the maximum-likelihood estimate, the same as statsmodels'
    ``Logit`` (checked in the tests).

    Quasi-separation (e.g. a category level with no treated person) has no finite MLE: the
    coefficient drifts to -inf while the deviance settles. As R's ``glm`` does (and so
    MatchIt), the fit then stops once the deviance changes by less than 1e-8 relative,
    with a warning that fitted probabilities of 0 or 1 occurred; those units get scores of
    practically 0 (or 1) and are never close to the other group. Complete separation (every
    unit predicted exactly, so no overlap at all) is an error.
    """
    n, k = X.shape
    beta = np.zeros(k)
    mean = y.mean()
    beta[0] = math.log(mean / (1 - mean))
    deviance = np.inf
    for iteration in range(max_iter):
        grad = np.zeros(k)
        hess = np.zeros((k, k))
        dev, extreme = 0.0, 0
        for lo in range(0, n, _CHUNK_ROWS):
            D = X[lo : lo + _CHUNK_ROWS]
            yb = y[lo : lo + _CHUNK_ROWS]
            eta = D @ beta
            p = _expit(eta)
            grad += (yb - p) @ D
            Dw = D * np.sqrt(p * (1 - p))[:, None]
            hess += Dw.T @ Dw
            dev += 2.0 * float(np.sum(np.logaddexp(0.0, eta) - yb * eta))
            extreme += int(np.sum((p < 1e-8) | (p > 1 - 1e-8)))
        if iteration == 0 and np.linalg.matrix_rank(hess) < k:
            # the start fits the intercept only, so this Hessian is p (1 - p) X'X
            raise ValueError(
                "the covariates are collinear (a column is a combination of others, or a "
                "category is empty): drop the redundant covariate"
            )
        if extreme == n:
            break
        if extreme and abs(deviance - dev) < 1e-8 * (abs(dev) + 0.1):
            warnings.warn(
                f"propensity model: fitted probabilities numerically 0 or 1 for {extreme} "
                "units (quasi-separation, e.g. a category with no treated or no comparator "
                "people); as in R's glm, their scores are left at the limit",
                QuasiSeparation,
                stacklevel=3,
            )
            return beta
        deviance = dev
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))):
            return beta
    raise ValueError(
        "the propensity model did not converge (perfect separation: the covariates predict "
        "treatment exactly, so there is no overlap): remove covariates that predict "
        "treatment exactly, or merge sparse categories"
    )


def model_matrix(X: np.ndarray, names, variables, terms=()) -> np.ndarray:
    """The propensity model's design: intercept, ``X`` without each categorical covariate's
    first level, and the extra ``terms`` (:func:`mydirection.matching.design.term_matrix`)."""
    keep = ~_first_levels(names, variables)
    extra = term_matrix(X, names, terms) if terms else None
    n_keep, n_extra = int(keep.sum()), 0 if extra is None else extra.shape[1]
    design = np.empty((X.shape[0], n_keep + 1 + n_extra))
    design[:, 0] = 1.0
    design[:, 1 : 1 + n_keep] = X[:, keep]
    if n_extra:
        design[:, 1 + n_keep :] = extra
    return design


def _fit_design(design: np.ndarray, t: np.ndarray, index) -> pd.DataFrame:
    """Fit the propensity model on the model matrix ``design``; ps and logit_ps per row."""
    beta = _logit_newton(design, t.astype(float))
    eta = design @ beta
    return pd.DataFrame({"ps": _expit(eta), "logit_ps": eta}, index=index)


def fit_propensity(
    data: pd.DataFrame, treatment: str, covariates, categorical=None, terms=()
) -> pd.DataFrame:
    """Propensity scores: a frame (index of ``data``) with ``ps`` and ``logit_ps``.

    ``terms``: extra model terms (squares, products) over the expanded covariates
    (:func:`mydirection.matching.design.term_matrix`)."""
    t = treatment_indicator(data, treatment)
    if t.all() or not t.any():
        raise ValueError(f"column {treatment}: needs both treated and control units")
    X, names, variables = _expand(data, covariates, categorical, drop_first=False)
    return _fit_design(model_matrix(X, names, variables, terms), t, data.index)


def propensity_model(data: pd.DataFrame, treatment: str, covariates, categorical=None):
    """The same propensity model as a fitted statsmodels ``Logit`` (for ``.summary()``)."""
    import statsmodels.api as sm

    X, names = _design(data, covariates, categorical)
    y = treatment_indicator(data, treatment).astype(float)
    return sm.Logit(y, pd.DataFrame(X, columns=names, index=data.index)).fit(disp=0)


def n_outside_support(ps, treated) -> int:
    """Treated units whose propensity score lies outside the comparators' range."""
    ps = np.asarray(ps, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    if treated.all() or not treated.any():
        return int(treated.sum())
    lo, hi = ps[~treated].min(), ps[~treated].max()
    pt = ps[treated]
    return int(((pt < lo) | (pt > hi)).sum())


def _propensity(data, t, model, propensity, terms=()):
    """Propensity frame: fitted on the model matrix ``model(terms)`` (:func:`model_matrix`
    of the expanded covariates), or checked if given.

    ``propensity`` may be a Series of probabilities or a frame with ``ps`` (and
    ``logit_ps``, used as is when present), aligned to the index of ``data``.
    """
    if propensity is None:
        if t.all() or not t.any():
            raise ValueError("treatment: needs both treated and control units")
        return _fit_design(model(tuple(terms)), t, data.index)
    if isinstance(propensity, pd.DataFrame):
        frame = propensity.reindex(data.index)
        ps = frame["ps"].to_numpy(dtype=float)
        logit = frame["logit_ps"].to_numpy(dtype=float) if "logit_ps" in frame else None
    else:
        ps = pd.Series(propensity).reindex(data.index).to_numpy(dtype=float)
        logit = None
    bad = ~((ps >= 0) & (ps <= 1)) if logit is not None else ~((ps > 0) & (ps < 1))
    if logit is not None:
        bad |= ~np.isfinite(logit)
    if bad.any():
        raise ValueError(
            f"propensity: {int(bad.sum())} rows missing or outside (0, 1) (e.g. rows "
            f"{_examples(bad)}); give a probability for every row"
        )
    if logit is None:
        logit = np.log(ps) - np.log1p(-ps)
    return pd.DataFrame({"ps": ps, "logit_ps": logit}, index=data.index)
