"""Rosenbaum bounds for Wilcoxon's signed-rank statistic on matched pairs (count outcomes).

For the frequency outcome (proven re-offences per person) on 1:1 matched pairs
(Rosenbaum, *Observational Studies*, 2nd ed., 2002, section 4.3.3; Rosenbaum 1987).

The statistic
-------------
Pair ``s`` has difference ``d_s`` coded *in the direction of the alternative*: for a
programme hoped to reduce re-offending (``alternative="less"``), ``d_s = y_comparator -
y_treated``, so a positive ``d_s`` favours the programme (:func:`pair_differences`). The
absolute differences are ranked with **average ranks for ties** and ``T = sum_s q_s 1(d_s >
0)``, the sum of the ranks ``q_s`` of the positive differences. Zero differences (both
people with the same count -- most pairs of a re-offending count) are handled by
``zero_method``:

- ``"pratt"`` (default; Pratt 1959; Rosenbaum's own ``DOS2::senWilcox``:
  ``rank(|d|) * (|d| > 0)``): zeros are ranked with the others and then given score 0. With
  it the normal approximation reproduces Rosenbaum (2002), Table 4.3 (the lead example);
- ``"wilcox"`` (Wilcoxon's convention, ``scipy.stats.wilcoxon``'s default and
  ``rbounds::psens``): zero differences are dropped before ranking.

Either way a zero pair has score 0 and contributes nothing: under the null of no effect its
sign cannot change.

The bound
---------
Under no treatment effect the scores ``q_s`` are fixed and only the signs are random. With
hidden bias at most ``Gamma``, the treated member of a pair is the one with the larger
response with probability between ``1 / (1 + Gamma)`` and ``Gamma / (1 + Gamma)``, and ``T``
is stochastically largest (the upper bound on the p-value) when every non-zero pair has
``p+ = Gamma / (1 + Gamma)``: ``T+ = sum_s q_s B_s`` with independent ``B_s ~
Bernoulli(p+)``; the lower bound uses ``p- = 1 / (1 + Gamma)``. The one-sided p-value bound
is ``P(T+ >= T_observed)``:

- ``method="exact"``: the distribution of ``T+`` by convolution over the pairs (average
  ranks are multiples of 1/2, so the doubled scores are integers); pairs with equal scores
  are convolved together as a scaled binomial (by FFT) when cheaper, which makes count
  outcomes (few distinct scores) fast. ``"auto"`` uses it up to :data:`EXACT_MAX_PAIRS`
  non-zero pairs and the normal approximation beyond.
- ``method="normal"``: ``z = (T - p+ sum q) / sqrt(p+ (1 - p+) sum q^2)`` without continuity
  correction, as ``senWilcox`` and ``psens`` (at ``Gamma = 1`` it is the usual tie-corrected
  normal approximation of Wilcoxon's test).

Test level: as for the binary bounds (:mod:`mydirection.sensitivity.rosenbaum`), the caller
passes the one-sided ``alpha = headline_alpha / 2`` and codes the differences in the
direction of the observed effect.

Pairs only. Wilcoxon's statistic is for pairs; in a set of one treated person and ``k > 1``
comparators the treated person is one of ``k + 1`` members, not one of two, and a
treated-minus-mean-of-comparators difference does not have the sign-flip distribution
(Rosenbaum 2007's M-statistics, R's ``sensitivitymv``, handle 1:k sets; not implemented
here). :func:`pair_differences` refuses 1:k sets; for those designs use the binary bounds.
With replacement, pairs that share a comparator are not independent and the bound is an
approximation, as for the binary outcome.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import signal

from mydirection import normal
from mydirection.sensitivity.rosenbaum import (
    BoundsSummary,
    _check_alpha,
    crossing,
    summarise_bounds,
)

ZERO_METHODS = ("wilcox", "pratt")
METHODS = ("exact", "normal", "auto")
EXACT_MAX_PAIRS = 500


def pair_differences(
    pairs: pd.DataFrame,
    outcomes: pd.DataFrame,
    outcome: str = "n_reoffences",
    *,
    alternative: str,
) -> pd.DataFrame:
    """One row per matched pair: ``set_id`` and ``d`` (in the direction of ``alternative``).

    ``pairs``: ``pairs.parquet`` (``treated_id``, ``comparator_id``); ``outcomes``:
    ``person_id`` and the count ``outcome``. ``alternative="less"`` (the programme reduces
    the outcome) gives ``d = y_comparator - y_treated``; ``"greater"`` gives ``d = y_treated
    - y_comparator``. Pairs with a missing outcome are dropped. Raises ``ValueError`` for
    matched sets with more than one comparator (signed-rank bounds need 1:1 pairs). Person
    ids are not carried over.
    """
    if alternative not in ("less", "greater"):
        raise ValueError("alternative must be 'less' or 'greater'")
    k = pairs.groupby("treated_id", sort=False)["comparator_id"].size()
    if (k > 1).any():
        raise ValueError(
            f"signed-rank bounds need 1:1 pairs; {int((k > 1).sum())} of {len(k)} matched "
            "sets have more than one comparator (use the binary bounds, or 1:1 matching)"
        )
    y = outcomes.set_index("person_id")[outcome].astype(float)
    p = pairs[["treated_id", "comparator_id"]].copy()
    p["yt"] = p["treated_id"].map(y)
    p["yc"] = p["comparator_id"].map(y)
    p = p.dropna(subset=["yt", "yc"]).sort_values("treated_id", kind="stable")
    d = p["yc"] - p["yt"] if alternative == "less" else p["yt"] - p["yc"]
    return pd.DataFrame({"set_id": np.arange(len(p)), "d": d.to_numpy(dtype=float)})


def _diffs(d) -> np.ndarray:
    if isinstance(d, pd.DataFrame):
        d = d["d"]
    x = np.asarray(d, dtype=float)
    if np.isnan(x).any():
        raise ValueError("pair differences must not be missing")
    return x


def signed_rank_scores(d, zero_method: str = "pratt") -> tuple[np.ndarray, np.ndarray]:
    """Scores ``q`` (average ranks of ``|d|``; 0 for zero differences) and the indicator of
    a positive difference, one entry per pair. ``T = sum(q[positive])``."""
    if zero_method not in ZERO_METHODS:
        raise ValueError(f"zero_method must be one of {ZERO_METHODS}, not {zero_method!r}")
    from scipy import stats  # here, not at import: most jobs never need scipy.stats

    x = _diffs(d)
    a = np.abs(x)
    q = np.zeros(len(x))
    nz = a > 0
    if zero_method == "wilcox":
        if nz.any():
            q[nz] = stats.rankdata(a[nz], method="average")
    elif len(x):
        q = stats.rankdata(a, method="average") * nz
    return q, x > 0


def _doubled(q: np.ndarray) -> np.ndarray:
    s = np.rint(2 * q).astype(np.int64)
    if not np.allclose(s, 2 * q):
        raise ValueError("scores must be multiples of 1/2 (average ranks)")
    return s


def _sum_pmf_direct(scores: np.ndarray, p: float) -> np.ndarray:
    """PMF of ``sum_i scores_i B_i`` (B_i iid Bernoulli(p)) on 0..sum(scores), by
    convolution one pair at a time (n x sum(scores) operations)."""
    total = int(scores.sum())
    pmf = np.zeros(total + 1)
    pmf[0] = 1.0
    top = 0
    for s in scores[scores > 0]:
        shifted = pmf[: top + 1] * p
        pmf[: top + 1] *= 1.0 - p
        pmf[s : s + top + 1] += shifted
        top += int(s)
    return pmf


def _sum_pmf(scores: np.ndarray, p: float) -> np.ndarray:
    """The same PMF; pairs with equal scores are taken together (``s x Binomial(c, p)``,
    FFT convolution) when that is cheaper -- count outcomes have few distinct scores. The
    FFT route's rounding error in the tail probabilities is below 1e-12 (tested against
    the direct route). Timings (one p-value): 100 non-zero pairs 1 ms; 300 about 0.2 s;
    700 about 2 s."""
    scores = scores[scores > 0]
    values, counts = np.unique(scores, return_counts=True)
    if len(scores) <= 200 or 20 * len(values) >= len(scores):  # measured break-even
        return _sum_pmf_direct(scores, p)
    from scipy import stats  # here, not at import: most jobs never need scipy.stats

    pmf = np.array([1.0])
    for s, c in zip(values, counts, strict=True):
        kernel = np.zeros(int(s) * int(c) + 1)
        kernel[:: int(s)] = stats.binom.pmf(np.arange(c + 1), c, p)
        pmf = np.clip(signal.fftconvolve(pmf, kernel), 0.0, None)
    return pmf


def _tail(d, p: float, method: str, zero_method: str) -> tuple[float, int, float]:
    """``P(T+ >= T_obs)`` with every non-zero pair positive with probability ``p``; also
    the number of non-zero pairs and ``T_obs``."""
    q, pos = signed_rank_scores(d, zero_method)
    nz = q > 0
    n = int(nz.sum())
    t = float(q[pos].sum())
    if n == 0:
        return math.nan, 0, t
    if method == "auto":
        method = "exact" if n <= EXACT_MAX_PAIRS else "normal"
    if method == "exact":
        s = _doubled(q[nz])
        pmf = _sum_pmf(s, p)
        t2 = int(np.rint(2 * t))
        return float(min(1.0, pmf[t2:].sum())), n, t
    if method == "normal":
        mu = p * float(q[nz].sum())
        var = p * (1 - p) * float((q[nz] ** 2).sum())
        return float(normal.norm_sf((t - mu) / math.sqrt(var))), n, t
    raise ValueError(f"method must be one of {METHODS}, not {method!r}")


def signed_rank_upper_p(
    d, gamma: float, method: str = "exact", zero_method: str = "pratt"
) -> float:
    """Upper bound on the one-sided p-value of Wilcoxon's signed-rank test at sensitivity
    ``gamma`` (>= 1). NaN when every difference is zero."""
    if gamma < 1:
        raise ValueError(f"gamma must be >= 1, got {gamma}")
    return _tail(d, gamma / (1 + gamma), method, zero_method)[0]


def signed_rank_lower_p(
    d, gamma: float, method: str = "exact", zero_method: str = "pratt"
) -> float:
    """Lower bound on the one-sided p-value at sensitivity ``gamma`` (>= 1)."""
    if gamma < 1:
        raise ValueError(f"gamma must be >= 1, got {gamma}")
    return _tail(d, 1 / (1 + gamma), method, zero_method)[0]


def signed_rank_gamma_crossing(
    d,
    alpha: float,
    method: str = "exact",
    zero_method: str = "pratt",
    gamma_max: float = 100.0,
) -> float:
    """Smallest ``Gamma`` at which the upper-bound p-value reaches the one-sided ``alpha``;
    NaN when not significant at ``Gamma = 1``, ``inf`` beyond ``gamma_max``."""
    alpha = _check_alpha(alpha)
    return crossing(lambda g: signed_rank_upper_p(d, g, method, zero_method), alpha, gamma_max)


def signed_rank_table(
    d, gammas, alpha: float, zero_method: str = "pratt", method: str = "exact"
) -> pd.DataFrame:
    """Bounds over a grid of ``Gamma``: pairs, non-zero pairs, observed ``T``, its expectation
    under the upper bound, upper p (``method``, default exact) and its normal approximation,
    lower p (``method``), and whether the upper p is below the one-sided ``alpha``."""
    alpha = _check_alpha(alpha)
    x = _diffs(d)
    q, pos = signed_rank_scores(x, zero_method)
    rows = []
    for g in gammas:
        g = float(g)
        up = signed_rank_upper_p(x, g, method, zero_method)
        rows.append(
            {
                "gamma": g,
                "pairs": len(x),
                "nonzero_pairs": int((q > 0).sum()),
                "t_observed": float(q[pos].sum()),
                "t_expected_upper": g / (1 + g) * float(q.sum()),
                "p_upper": up,
                "p_upper_normal": signed_rank_upper_p(x, g, "normal", zero_method),
                "p_lower": signed_rank_lower_p(x, g, method, zero_method),
                "significant": bool(up < alpha),
            }
        )
    return pd.DataFrame(rows)


def signed_rank_summary(
    d,
    alpha: float,
    *,
    method: str = "exact",
    zero_method: str = "pratt",
    gamma_max: float = 100.0,
    alternative: str = "less",
    headline_significant: bool | None = None,
) -> BoundsSummary:
    """:class:`~mydirection.sensitivity.rosenbaum.BoundsSummary` for the signed-rank bounds:
    one-sided p at ``Gamma = 1``, significance at the one-sided ``alpha``
    (``headline_alpha / 2``) and the crossing ``Gamma`` only when significant.
    ``alternative`` records the direction the differences were coded in."""
    x = _diffs(d)
    q, _ = signed_rank_scores(x, zero_method)
    return summarise_bounds(
        lambda g: signed_rank_upper_p(x, g, method, zero_method),
        alpha=alpha,
        statistic=f"signed_rank_{zero_method}",
        alternative=alternative,
        method=method,
        n_sets=len(x),
        n_informative=int((q > 0).sum()),
        gamma_max=gamma_max,
        headline_significant=headline_significant,
    )
