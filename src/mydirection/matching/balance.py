"""Covariate balance (cobalt's ATT conventions): standardised mean differences with a fixed
denominator, variance ratios, eCDF statistics, and the balance verdict (no p-values)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mydirection.matching.design import _CHUNK_ROWS, _expand, treatment_indicator


def _moments(X: np.ndarray, w: np.ndarray):
    """Weighted means and variances of each column for each row of weights ``w`` (g x n),
    in one pass over row blocks (no full-size temporaries).

    The variance uses the reliability-weights correction: sum w (x - m)^2 /
    (sum w - sum w^2 / sum w), i.e. the n - 1 sample variance when all weights are 1.
    Values are centred on the first row before summing, against cancellation.
    """
    g, p = w.shape[0], X.shape[1]
    if X.shape[0] == 0:
        nan = np.full((g, p), np.nan)
        return nan, nan
    shift = X[0].copy()
    s1, s2 = np.zeros((g, p)), np.zeros((g, p))
    for lo in range(0, X.shape[0], _CHUNK_ROWS):
        hi = min(X.shape[0], lo + _CHUNK_ROWS)
        Z = X[lo:hi] - shift
        wb = w[:, lo:hi]
        s1 += wb @ Z
        Z *= Z
        s2 += wb @ Z
    W = w.sum(axis=1)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = W - (w * w).sum(axis=1)[:, None] / W
        mean = shift + s1 / W
        var = np.maximum(s2 - s1 * s1 / W, 0.0) / denom
    return mean, var


_FAST_SEARCH_ROWS = 65_536  # from here on, _grid_positions buckets before it searches


def _grid_positions(grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.searchsorted(grid, x)`` (side "left") for a sorted, distinct ``grid``.

    A binary search of a million unsorted values costs ~80 ms (a branch mispredicted per
    step); here each value is first put in one of ``4 len(grid)`` equal-width buckets whose
    answers are known, which settles it with one comparison where the bucket holds at most
    one grid value. Every answer is then checked against the definition (grid[i - 1] < x
    <= grid[i]); the few that fail (crowded buckets, rounding at a bucket's edge) are
    searched the usual way, so the result is exactly searchsorted's.
    """
    m = len(grid)
    lo, hi = (float(grid[0]), float(grid[-1])) if m else (0.0, 0.0)
    if len(x) < _FAST_SEARCH_ROWS or m < 2 or not np.isfinite(hi - lo):
        return np.searchsorted(grid, x)
    n_buckets = 4 * m
    scale = n_buckets / (hi - lo)
    first = np.searchsorted(grid, lo + np.arange(n_buckets) / scale)  # below each left edge
    with np.errstate(invalid="ignore"):  # NaN and infinities: searched below
        bucket = np.clip((x - lo) * scale, 0, n_buckets - 1).astype(np.int64)
    guess = first[np.clip(bucket, 0, n_buckets - 1)]
    guess += (guess < m) & (grid[np.minimum(guess, m - 1)] < x)
    wrong = (guess < m) & (grid[np.minimum(guess, m - 1)] < x)
    wrong |= (guess > 0) & (grid[np.maximum(guess - 1, 0)] >= x)
    wrong |= np.isnan(x)
    if wrong.any():
        guess[wrong] = np.searchsorted(grid, x[wrong])
    return guess


def _wecdf_max(xt, wt, xc, wc) -> float:
    """Largest distance between the weighted eCDFs of two samples (KS statistic).

    Without sorting the larger sample: its weights are binned between the distinct values
    of the smaller sample. Between two consecutive distinct values of the smaller sample
    its eCDF is constant while the other is monotone, so the supremum is reached at a
    value of the smaller sample or just before the next one.
    """
    if len(xt) == 0 or len(xc) == 0:
        return math.nan
    if len(xt) > len(xc):
        xt, wt, xc, wc = xc, wc, xt, wt
    g, inv = np.unique(xt, return_inverse=True)  # grid: the smaller sample's values
    m = len(g)
    fa = np.cumsum(np.bincount(inv, weights=wt, minlength=m)) / wt.sum()  # F_a(g_j)
    below = _grid_positions(g, xc)  # number of grid values < x
    at = g[np.minimum(below, m - 1)] == xc  # x equals a grid value
    wb = wc / wc.sum()
    cum_le = np.cumsum(np.bincount(below, weights=wb, minlength=m + 1))[:m]  # F_b(g_j)
    upto = below + at  # number of grid values <= x
    cum_lt = np.cumsum(np.bincount(upto, weights=wb, minlength=m + 1))[: m + 1]
    fb_before = cum_lt[:m]  # F_b just before g_j: weight of x < g_j
    gaps = [
        fb_before[0],  # left of the first grid value F_a = 0
        np.max(np.abs(fa - cum_le)),  # at each grid value
        np.max(np.abs(fa[:-1] - fb_before[1:])) if m > 1 else 0.0,  # just before the next
        abs(1.0 - cum_le[-1]),  # right of the last grid value F_a = 1
    ]
    return float(max(gaps))


def _group_stats(X, binary, t, w):
    """Weighted means, variances, variance ratios and KS for treated vs control.

    ``X`` holds only the rows in the sample (weights > 0); no row copies are made for
    the means and variances, which is what keeps the 1,000,000-row case fast.
    """
    if X.shape[0] == 0:
        nan = np.full(X.shape[1], np.nan)
        return nan, nan, nan, nan, nan, nan
    (mt, mc), (vt, vc) = _moments(X, np.vstack([np.where(t, w, 0.0), np.where(t, 0.0, w)]))
    ks = np.empty(X.shape[1])
    ti, ci = np.flatnonzero(t), np.flatnonzero(~t)
    for j in range(X.shape[1]):
        if binary[j]:
            ks[j] = abs(mt[j] - mc[j])
        else:
            ks[j] = _wecdf_max(X[ti, j], w[ti], X[ci, j], w[ci])
    with np.errstate(invalid="ignore", divide="ignore"):
        vr = np.where(binary, np.nan, vt / vc)
    return mt, mc, vt, vc, vr, ks


def _before(X, t, binary=None) -> tuple:
    """What the balance table takes from the unadjusted sample: which columns are binary
    (``binary``, when already known for ``X``), and their group statistics
    (:func:`_group_stats`) with unit weights."""
    if binary is None:
        binary = np.all((X == 0) | (X == 1), axis=0)
    return binary, _group_stats(X, binary, t, np.ones(len(t)))


def _balance(X, names, variables, t, weights, before=None) -> pd.DataFrame:
    """The balance table from an expanded covariate matrix (see :func:`balance_table`);
    ``before`` is :func:`_before` of the same ``X`` and ``t`` when already known."""
    binary, (mt0, mc0, vt0, vc0, vr0, ks0) = _before(X, t) if before is None else before
    p, q = mt0, mc0
    with np.errstate(invalid="ignore"):
        s = np.where(binary, np.sqrt(p * (1 - p)), np.sqrt(vt0))
        pooled = np.where(
            binary, np.sqrt((p * (1 - p) + q * (1 - q)) / 2), np.sqrt((vt0 + vc0) / 2)
        )
    s = np.where(s > 0, s, pooled)

    def smd(diff):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(diff == 0, 0.0, diff / s)

    nan = np.full(X.shape[1], np.nan)
    if weights is None:
        mt1 = mc1 = vr1 = ks1 = nan
    else:
        keep = np.flatnonzero(weights > 0)
        mt1, mc1, _, _, vr1, ks1 = _group_stats(X[keep], binary, t[keep], weights[keep])
        if not t[keep].any() or t[keep].all():
            ks1 = nan
    return pd.DataFrame(
        {
            "covariate": names,
            "variable": [variables[c][0] for c in names],
            "level": [variables[c][1] for c in names],
            "type": np.where(binary, "binary", "continuous"),
            "mean_treated": mt0,
            "mean_treated_after": mt1,
            "mean_control_before": mc0,
            "mean_control_after": mc1,
            "smd_before": smd(mt0 - mc0),
            "smd_after": nan if weights is None else smd(mt1 - mc1),
            "var_ratio_before": vr0,
            "var_ratio_after": vr1,
            "ks_before": ks0,
            "ks_after": ks1,
        }
    )


def balance_table(
    data: pd.DataFrame,
    treatment: str,
    covariates,
    weights=None,
    *,
    categorical=None,
) -> pd.DataFrame:
    """Balance of the covariates before and after adjustment (cobalt's ATT conventions).

    ``data`` is the whole (unmatched) sample; ``weights`` (aligned to its index; missing or
    0 = not in the adjusted sample) are matching or weighting weights. Without weights
    the ``*_after`` columns are NaN. One row per covariate; categoricals expanded to one
    row per level (``covariate`` = ``<variable>_<level>``).

    - ``smd``: (mean treated - mean control) / s, where s is the SD of the treated group
      in the unadjusted sample -- the same s before and after. Binary covariates are
      standardised too, with s = sqrt(p (1 - p)); continuous ones use the n - 1 SD. If
      s = 0 the pooled SD of the unadjusted sample is used instead (0 / 0 gives 0).
    - ``var_ratio``: weighted variance treated / control, continuous covariates only.
    - ``ks``: largest distance between the weighted eCDFs (for binary covariates, the
      difference in proportions).
    Means, variances and eCDFs after adjustment use the weights. No p-values.
    """
    t = treatment_indicator(data, treatment)
    X, names, variables = _expand(data, covariates, categorical, drop_first=False)
    w = None
    if weights is not None:
        w = pd.Series(weights).reindex(data.index).fillna(0.0).to_numpy(dtype=float)
        if (w < 0).any():
            raise ValueError("weights: negative weights are not allowed")
    return _balance(X, names, variables, t, w)


@dataclass(frozen=True)
class BalanceVerdict:
    """Whether balance was achieved, judged from a balance table (no p-values)."""

    ok: bool
    max_abs_smd_after: float
    max_abs_smd_before: float
    worst_covariate: str
    smd_failures: list[str]
    var_ratio_failures: list[str]
    smd_threshold: float
    var_ratio_bounds: tuple[float, float]

    @property
    def text(self) -> str:
        return "achieved" if self.ok else "not achieved"

    @property
    def message(self) -> str:
        lo, hi = self.var_ratio_bounds
        head = (
            f"balance {self.text}: max |SMD| after matching {self.max_abs_smd_after:.3f} "
            f"(threshold {self.smd_threshold}), worst covariate {self.worst_covariate}"
        )
        if self.ok:
            return head + f"; all variance ratios within [{lo}, {hi}]"
        parts = [head]
        if self.smd_failures:
            parts.append(f"|SMD| > {self.smd_threshold}: {', '.join(self.smd_failures)}")
        if self.var_ratio_failures:
            parts.append(
                f"variance ratio outside [{lo}, {hi}]: {', '.join(self.var_ratio_failures)}"
            )
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {
            "balance_ok": self.ok,
            "verdict": self.text,
            "max_abs_smd_after": self.max_abs_smd_after,
            "max_abs_smd_before": self.max_abs_smd_before,
            "worst_covariate": self.worst_covariate,
            "smd_failures": self.smd_failures,
            "var_ratio_failures": self.var_ratio_failures,
            "smd_threshold": self.smd_threshold,
            "var_ratio_bounds": list(self.var_ratio_bounds),
            "message": self.message,
        }


def _max_observed(values: np.ndarray) -> float:
    """The largest non-missing value (NaN when there is none), as pandas' ``max``."""
    seen = values[~np.isnan(values)]
    return float(seen.max()) if len(seen) else math.nan


def balance_verdict(
    balance: pd.DataFrame, smd_threshold: float = 0.1, var_ratio_bounds=(0.5, 2)
) -> BalanceVerdict:
    """Balance is achieved when every |SMD| after adjustment is <= ``smd_threshold`` and
    every variance ratio after adjustment (continuous covariates) lies within the bounds.
    A missing (NaN) statistic after adjustment counts as a failure."""
    lo, hi = (float(b) for b in var_ratio_bounds)
    names = balance["covariate"].to_numpy(dtype=object)
    abs_after = np.abs(balance["smd_after"].to_numpy(dtype=float))
    abs_before = np.abs(balance["smd_before"].to_numpy(dtype=float))
    smd_fail = [str(c) for c in names[~(abs_after <= smd_threshold)]]
    cont = balance["type"].to_numpy(dtype=object) == "continuous"
    vr = balance["var_ratio_after"].to_numpy(dtype=float)
    vr_fail = [str(c) for c in names[cont & ~((vr >= lo) & (vr <= hi))]]
    ranked = np.where(np.isnan(abs_after), np.inf, abs_after)
    worst = str(names[int(np.argmax(ranked))]) if len(names) else ""
    return BalanceVerdict(
        ok=not smd_fail and not vr_fail,
        max_abs_smd_after=_max_observed(abs_after),
        max_abs_smd_before=_max_observed(abs_before),
        worst_covariate=worst,
        smd_failures=smd_fail,
        var_ratio_failures=vr_fail,
        smd_threshold=float(smd_threshold),
        var_ratio_bounds=(lo, hi),
    )
