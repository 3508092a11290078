"""Rosenbaum bounds: sensitivity of the matched comparison to unobserved confounding.

Rosenbaum bounds (Rosenbaum, *Observational Studies*, 2nd ed., 2002, ch. 4)
--------------------------------------------------------------------------
Within a matched set, two people with the same observed covariates may still differ in
their odds of receiving the programme by up to a factor ``Gamma`` because of something
unobserved. For each ``Gamma`` we bound the one-sided p-value of the test of no effect.

Binary outcome, matched sets with one treated person and ``k_s`` comparators (1:1 pairs
have ``k_s = 1``). Let ``y`` be the outcome *in the direction of the alternative* (for a
programme hoped to reduce re-offending, ``y = 1`` means *not* re-offending; see
``alternative``). In set ``s`` with ``m_s`` people having ``y = 1`` among ``k_s + 1``, the
statistic ``T_s`` is the treated person's ``y``, and ``T = sum_s T_s``. The upper bound on the
p-value is attained when the unobserved confounder is ``u = y`` (the people with ``y = 1``
have the higher odds of treatment); then the treated person is one of the ``y = 1`` people
with probability::

    p_s+ = Gamma m_s / (Gamma m_s + k_s + 1 - m_s)

and ``T`` is a sum of independent Bernoulli(``p_s+``) (Rosenbaum 2002, sections 4.3-4.4).
Sets with ``m_s`` of 0 or ``k_s + 1`` are uninformative (``T_s`` is fixed) and drop out.
For 1:1 pairs only the discordant pairs remain, ``p_s+ = Gamma / (1 + Gamma)``, and the bound
is the McNemar form ``P(Binomial(D, Gamma / (1 + Gamma)) >= T)``.

:func:`rosenbaum_upper_p` computes the exact tail of this Poisson-binomial (by convolution)
or its normal approximation ``(T - sum p) / sqrt(sum p (1 - p))``; :func:`gamma_crossing`
finds the ``Gamma`` at which the upper bound first reaches ``alpha``.

Matching *with replacement* makes sets share comparators, so the sets are not independent;
the bound then is an approximation (the same one MatchIt/rbounds users make).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats


def matched_sets(
    pairs: pd.DataFrame,
    outcomes: pd.DataFrame,
    outcome: str = "reoffended",
    *,
    alternative: str = "less",
) -> pd.DataFrame:
    """One row per matched set (one treated person and their comparators).

    ``pairs`` is ``pairs.parquet`` (``treated_id``, ``control_id``); ``outcomes`` has
    ``person_id`` and the binary ``outcome``. ``alternative="less"`` (the programme reduces
    the outcome) codes ``y = 1 - outcome`` so that large ``T`` is evidence for the programme;
    ``"greater"`` keeps ``y = outcome``.

    Returns ``set_id`` (the treated person's position in a stable sort), ``treated_y``,
    ``n_controls`` (``k_s``), ``controls_y`` (comparators with ``y = 1``). Person ids are not
    carried over.
    """
    if alternative not in ("less", "greater"):
        raise ValueError("alternative must be 'less' or 'greater'")
    y = outcomes.set_index("person_id")[outcome].astype(float)
    if alternative == "less":
        y = 1.0 - y
    p = pairs[["treated_id", "control_id"]].copy()
    p["yc"] = p["control_id"].map(y)
    p["yt"] = p["treated_id"].map(y)
    p = p.dropna(subset=["yc", "yt"])
    g = p.groupby("treated_id", sort=True)
    out = pd.DataFrame(
        {
            "treated_y": g["yt"].first().astype(int),
            "n_controls": g["yc"].size().astype(int),
            "controls_y": g["yc"].sum().astype(int),
        }
    ).reset_index(drop=True)
    out.insert(0, "set_id", np.arange(len(out)))
    return out


def _set_probs(sets: pd.DataFrame, gamma: float) -> tuple[np.ndarray, int]:
    """Worst-case P(T_s = 1) per informative set, and the observed T."""
    k = sets["n_controls"].to_numpy(dtype=float)
    m = sets["controls_y"].to_numpy(dtype=float) + sets["treated_y"].to_numpy(dtype=float)
    informative = (m > 0) & (m < k + 1)
    k, m = k[informative], m[informative]
    p = gamma * m / (gamma * m + (k + 1 - m))
    t = int(sets["treated_y"].to_numpy()[informative].sum())
    return p, t


def poisson_binomial_pmf(p) -> np.ndarray:
    """PMF of a sum of independent Bernoulli(p_i) (exact, by convolution)."""
    pmf = np.array([1.0])
    for pi in np.asarray(p, dtype=float):
        pmf = np.append(pmf * (1 - pi), 0.0) + np.insert(pmf * pi, 0, 0.0)
    return pmf


def poisson_binomial_sf(t: int, p) -> float:
    """``P(sum Bernoulli(p_i) >= t)``."""
    pmf = poisson_binomial_pmf(p)
    if t <= 0:
        return 1.0
    if t >= len(pmf):
        return 0.0
    return float(min(1.0, pmf[t:].sum()))


def rosenbaum_upper_p(sets: pd.DataFrame, gamma: float, method: str = "exact") -> float:
    """Upper bound on the one-sided p-value at sensitivity ``gamma`` (>= 1).

    ``sets`` as from :func:`matched_sets`. ``method="exact"`` sums the Poisson-binomial
    tail (for 1:1 pairs, the binomial tail of McNemar's test); ``"normal"`` uses the normal
    approximation without continuity correction (Rosenbaum 2002, eq. 4.x for sum statistics).
    """
    if gamma < 1:
        raise ValueError(f"gamma must be >= 1, got {gamma}")
    p, t = _set_probs(sets, gamma)
    if len(p) == 0:
        return math.nan
    if method == "exact":
        return poisson_binomial_sf(t, p)
    if method == "normal":
        mu, var = float(p.sum()), float((p * (1 - p)).sum())
        return float(stats.norm.sf((t - mu) / math.sqrt(var)))
    raise ValueError("method must be 'exact' or 'normal'")


def gamma_crossing(
    sets: pd.DataFrame, alpha: float = 0.05, method: str = "exact", gamma_max: float = 100.0
) -> float:
    """Smallest ``Gamma >= 1`` at which the upper-bound p-value reaches ``alpha``.

    1.0 when the result is not significant even with no hidden bias (or there are no
    informative sets); ``inf`` when the bound stays below ``alpha`` up to ``gamma_max``.
    """
    p1 = rosenbaum_upper_p(sets, 1.0, method)
    if math.isnan(p1) or p1 >= alpha:
        return 1.0
    if rosenbaum_upper_p(sets, gamma_max, method) < alpha:
        return math.inf

    def f(lg: float) -> float:
        return rosenbaum_upper_p(sets, math.exp(lg), method) - alpha

    return float(math.exp(optimize.brentq(f, 0.0, math.log(gamma_max), xtol=1e-10)))


def rosenbaum_table(sets: pd.DataFrame, gammas, alpha: float = 0.05) -> pd.DataFrame:
    """Bounds over a grid of ``Gamma``: exact and normal upper p, lower p (exact), and the
    summary counts (informative sets, observed and expected T)."""
    rows = []
    for g in gammas:
        p_up, t = _set_probs(sets, float(g))
        p_lo, _ = _set_probs(sets, 1.0 / float(g)) if g >= 1 else (p_up, t)
        up = rosenbaum_upper_p(sets, float(g), "exact")
        rows.append(
            {
                "gamma": float(g),
                "informative_sets": len(p_up),
                "t_observed": t,
                "t_expected_upper": float(p_up.sum()),
                "p_upper": up,
                "p_upper_normal": rosenbaum_upper_p(sets, float(g), "normal"),
                "p_lower": poisson_binomial_sf(t, p_lo),
                "significant": bool(up < alpha),
            }
        )
    return pd.DataFrame(rows)
