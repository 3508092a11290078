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

The test level
--------------
The bounds are one-sided. A headline reported as a two-sided test at level ``alpha`` is
matched by the one-sided test at ``alpha / 2`` in the direction of the observed effect
(Rosenbaum 2002, section 4.4; DOS2's ``senWilcox(alternative = "twosided")`` doubles the
smaller one-sided bound, the same thing). So the caller passes ``alpha = headline_alpha / 2``
and the ``alternative`` of the observed direction (``"less"`` when the estimate is below
zero). Nothing here has a default level. :func:`rosenbaum_summary` gives what the report
needs to word both cases: the one-sided p-value with no hidden bias, whether it is below
``alpha``, and the crossing ``Gamma`` -- computed only when the result is significant
(``None`` otherwise, and ``None`` when the caller says the headline itself is not
significant: there is then no finding for hidden bias to explain away).

The signed-rank bounds for a count outcome on matched pairs are in
:mod:`mydirection.sensitivity.signed_rank`.

Matching *with replacement* makes sets share comparators, so the sets are not independent;
the bound then is an approximation (the same one MatchIt/rbounds users make).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from mydirection import normal


def matched_sets(
    pairs: pd.DataFrame,
    outcomes: pd.DataFrame,
    outcome: str = "reoffended",
    *,
    alternative: str = "less",
) -> pd.DataFrame:
    """One row per matched set (one treated person and their comparators).

    ``pairs`` is ``pairs.parquet`` (``treated_id``, ``comparator_id``); ``outcomes`` has
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
    p = pairs[["treated_id", "comparator_id"]].copy()
    p["yc"] = p["comparator_id"].map(y)
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
        return float(normal.norm_sf((t - mu) / math.sqrt(var)))
    raise ValueError("method must be 'exact' or 'normal'")


def _check_alpha(alpha: float) -> float:
    if alpha is None or not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(alpha)


def crossing(p_upper: Callable[[float], float], alpha: float, gamma_max: float) -> float:
    """Smallest ``Gamma >= 1`` at which ``p_upper(Gamma)`` (increasing in Gamma) reaches
    ``alpha``: NaN when ``p_upper(1)`` is already >= ``alpha`` (or NaN), ``inf`` when the
    bound stays below ``alpha`` up to ``gamma_max``; found by Brent's method on log Gamma."""
    p1 = p_upper(1.0)
    if math.isnan(p1) or p1 >= alpha:
        return math.nan
    if p_upper(gamma_max) < alpha:
        return math.inf

    def f(lg: float) -> float:
        return p_upper(math.exp(lg)) - alpha

    return float(math.exp(optimize.brentq(f, 0.0, math.log(gamma_max), xtol=1e-10)))


def gamma_crossing(
    sets: pd.DataFrame, alpha: float, method: str = "exact", gamma_max: float = 100.0
) -> float:
    """Smallest ``Gamma >= 1`` at which the upper-bound p-value reaches ``alpha`` (the
    one-sided level: ``headline_alpha / 2`` for a two-sided headline).

    NaN when the result is not significant even with no hidden bias (or there are no
    informative sets): there is no crossing. ``inf`` when the bound stays below ``alpha``
    up to ``gamma_max``.
    """
    alpha = _check_alpha(alpha)
    return crossing(lambda g: rosenbaum_upper_p(sets, g, method), alpha, gamma_max)


@dataclass(frozen=True)
class BoundsSummary:
    """What the report needs from a Rosenbaum sensitivity analysis, in both cases.

    ``alpha`` is the one-sided level the bounds are judged at (``headline_alpha / 2``).
    ``p_no_hidden_bias`` is the one-sided p-value at ``Gamma = 1`` (the bound's own test:
    McNemar / its 1:k extension for a binary outcome, Wilcoxon's signed rank for pairs).
    ``significant``: that p-value is below ``alpha`` (and the headline, if the caller said,
    is significant). ``gamma_crossing``: the ``Gamma`` at which the upper bound reaches
    ``alpha``; ``None`` when not significant; ``inf`` beyond ``gamma_max``.
    """

    statistic: str
    alternative: str
    alpha: float
    method: str
    n_sets: int
    n_informative: int
    p_no_hidden_bias: float
    significant: bool
    gamma_crossing: float | None
    gamma_max: float
    headline_significant: bool | None = None

    @property
    def status(self) -> str:
        """One of ``no_informative_sets``, ``headline_not_significant`` (the headline is not
        significant: nothing for a hidden bias to explain away), ``not_significant`` (the
        bound's own test is not significant at Gamma = 1), ``insensitive`` (still
        significant at ``gamma_max``), ``sensitive`` (significant until ``gamma_crossing``).
        """
        if self.n_informative == 0 or math.isnan(self.p_no_hidden_bias):
            return "no_informative_sets"
        if self.headline_significant is False:
            return "headline_not_significant"
        if not self.significant:
            return "not_significant"
        if self.gamma_crossing is not None and math.isinf(self.gamma_crossing):
            return "insensitive"
        return "sensitive"

    @property
    def text(self) -> str:
        """A plain phrase for the status ("... at the one-sided 2.5 % level ...")."""
        level = f"the one-sided {100 * self.alpha:.10g} % level"
        status = self.status
        if status == "no_informative_sets":
            return "not available: no matched set has outcomes that differ"
        if status == "headline_not_significant":
            return (
                "not needed: the headline difference is not statistically significant, so "
                "there is no finding for a hidden bias to explain away"
            )
        if status == "not_significant":
            return (
                f"not significant at {level} even without hidden bias "
                f"(p = {self.p_no_hidden_bias:.3g}), so there is no finding to overturn"
            )
        if status == "insensitive":
            return f"still significant at {level} for every Gamma up to {self.gamma_max:g}"
        return (
            f"significant at {level} until Gamma = {self.gamma_crossing:.2f}, where the "
            "upper bound on the p-value reaches the level"
        )

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(status=self.status, text=self.text)
        return d


def summarise_bounds(
    p_upper: Callable[[float], float],
    *,
    alpha: float,
    statistic: str,
    alternative: str,
    method: str,
    n_sets: int,
    n_informative: int,
    gamma_max: float,
    headline_significant: bool | None = None,
) -> BoundsSummary:
    """:class:`BoundsSummary` from an upper-bound p-value function (shared by the binary
    and signed-rank bounds). The crossing is searched only when the result is significant
    at ``Gamma = 1`` and the headline is not known to be non-significant."""
    alpha = _check_alpha(alpha)
    p1 = p_upper(1.0) if n_informative else math.nan
    sig = bool(np.isfinite(p1) and p1 < alpha)
    if headline_significant is False:
        sig_all, gamma = False, None
    elif sig:
        sig_all, gamma = True, crossing(p_upper, alpha, gamma_max)
    else:
        sig_all, gamma = False, None
    return BoundsSummary(
        statistic=statistic,
        alternative=alternative,
        alpha=alpha,
        method=method,
        n_sets=int(n_sets),
        n_informative=int(n_informative),
        p_no_hidden_bias=float(p1),
        significant=sig_all,
        gamma_crossing=gamma,
        gamma_max=float(gamma_max),
        headline_significant=headline_significant,
    )


def rosenbaum_summary(
    sets: pd.DataFrame,
    alpha: float,
    *,
    method: str = "exact",
    gamma_max: float = 100.0,
    alternative: str = "less",
    headline_significant: bool | None = None,
) -> BoundsSummary:
    """Rosenbaum bounds summary for a binary outcome in matched sets (:func:`matched_sets`).

    ``alpha``: the one-sided level (``headline_alpha / 2``); ``alternative``: the direction
    the sets were coded in (recorded only). ``headline_significant``: the headline's own
    verdict (``Effect.significant``); when False no crossing is computed.
    """
    p, _ = _set_probs(sets, 1.0)
    return summarise_bounds(
        lambda g: rosenbaum_upper_p(sets, g, method),
        alpha=alpha,
        statistic="mcnemar" if (sets["n_controls"] == 1).all() else "matched_sets",
        alternative=alternative,
        method=method,
        n_sets=len(sets),
        n_informative=len(p),
        gamma_max=gamma_max,
        headline_significant=headline_significant,
    )


def rosenbaum_table(sets: pd.DataFrame, gammas, alpha: float) -> pd.DataFrame:
    """Bounds over a grid of ``Gamma``: exact and normal upper p, lower p (exact), and the
    summary counts (informative sets, observed and expected T). ``significant``: the exact
    upper bound is below the one-sided ``alpha`` (``headline_alpha / 2``)."""
    alpha = _check_alpha(alpha)
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
