"""Power and minimum detectable effect (MDE) for the matched comparison.

A null result from a small pilot says little unless the report shows what effect the study
*could* have detected. This module answers three questions for the achieved sample:

1. How many people does the matched design effectively compare? Matching with a ratio,
   with replacement or with IPW gives the comparison group unequal weights; the Kish
   effective sample size ``(sum w)^2 / sum w^2`` (:func:`kish_effective_n`) discounts for it,
   and the design effect is ``n / n_eff``.
2. What is the smallest difference in the proven re-offending rate (:func:`mde_rate`) and
   in the frequency of re-offences (:func:`mde_mean`) that a two-sided test at level
   ``alpha`` would detect with probability ``power``?
3. How many treated people (at the achieved effective comparison ratio) would have been
   needed to detect a stated effect, e.g. a 5-point reduction (:func:`n_needed_rate`)?

The test level ``alpha`` (two-sided) and the ``power`` are arguments without defaults: they
come from the analysis plan (``analysis.alpha``, ``analysis.power``), never from this module.

Formulas
--------
Binary rate (comparison rate ``p0``, treated rate ``p1 = p0 - delta``; sizes ``n1``, ``n0``):
the two-sided z-test with the pooled variance under the null and the unpooled variance
under the alternative (Fleiss, *Statistical Methods for Rates and Proportions*, 3rd ed.,
section 4.2, without continuity correction)::

    s0 = sqrt(pbar (1 - pbar) (1/n1 + 1/n0)),   pbar = (n1 p1 + n0 p0) / (n1 + n0)
    s1 = sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0)
    power = Phi((delta - z s0) / s1) + Phi((-delta - z s0) / s1),   z = Phi^-1(1 - alpha/2)

This is what ``statsmodels.stats.proportion.power_proportions_2indep`` computes. The
alternative often quoted, Cohen's arcsine effect size ``h = 2 asin(sqrt p1) - 2 asin(sqrt p0)``
with ``NormalIndPower`` (:func:`mde_rate_arcsine`), stabilises the variance instead; the two
MDEs differ by a few tenths of a percentage point at pilot sizes (the arcsine version is
slightly smaller for reductions from rates below one half). We report the Fleiss version.

Frequency (equal variances, SD ``sd`` of re-offences per person in the comparison group)::

    power = Phi(d sqrt(N) - z) + Phi(-d sqrt(N) - z),   d = delta / sd,  N = 1 / (1/n1 + 1/n0)

which is ``statsmodels.stats.power.NormalIndPower`` with ``ratio = n0 / n1``.

Both tails are kept (as statsmodels does), so the MDE solves the power equation exactly;
dropping the far tail changes the MDE by less than 1e-8 at 80 % power.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = [
    "DesignSize",
    "design_size",
    "kish_effective_n",
    "mde_mean",
    "mde_rate",
    "mde_rate_arcsine",
    "mde_standardised",
    "n_needed_rate",
    "power_mean",
    "power_rate",
    "weighted_mean_sd",
]

_XTOL = 1e-12


def kish_effective_n(weights) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2`` of non-negative weights.

    Equal weights give the number of weighted units; unequal weights give fewer. Units with
    weight zero do not count.
    """
    w = np.asarray(weights, dtype=float)
    if w.size == 0:
        return 0.0
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


@dataclass(frozen=True)
class DesignSize:
    """Sizes of the matched design, raw and effective (Kish)."""

    n_treated: int
    n_comparators: int
    n_eff_treated: float
    n_eff_comparators: float

    @property
    def ratio(self) -> float:
        """Matched comparators per treated person (raw counts)."""
        return self.n_comparators / self.n_treated if self.n_treated else math.nan

    @property
    def ratio_eff(self) -> float:
        """Effective comparators per effective treated person."""
        return self.n_eff_comparators / self.n_eff_treated if self.n_eff_treated else math.nan

    @property
    def design_effect_control(self) -> float:
        """``n_comparators / n_eff_comparators``: variance inflation from unequal comparator weights."""
        return self.n_comparators / self.n_eff_comparators if self.n_eff_comparators else math.nan

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(
            ratio=self.ratio,
            ratio_eff=self.ratio_eff,
            design_effect_control=self.design_effect_control,
        )
        return d


def design_size(
    matched: pd.DataFrame, *, treated_col: str = "treated", weight_col: str = "weights"
) -> DesignSize:
    """Raw and effective group sizes of a matched (or weighted) sample.

    ``matched`` has one row per matched person with a boolean ``treated`` column and the
    matching weights (``matched.parquet``). Rows with weight zero are not counted.
    """
    w = matched[weight_col].to_numpy(dtype=float)
    t = matched[treated_col].to_numpy(dtype=bool)
    pos = w > 0
    return DesignSize(
        n_treated=int(np.sum(t & pos)),
        n_comparators=int(np.sum(~t & pos)),
        n_eff_treated=kish_effective_n(w[t & pos]),
        n_eff_comparators=kish_effective_n(w[~t & pos]),
    )


def weighted_mean_sd(values, weights=None) -> tuple[float, float]:
    """Weighted mean and SD (frequency-weight form, ``sum w (x - m)^2 / (sum w - 1)``
    rescaled so that equal weights give the usual sample SD with ``n - 1``)."""
    x = np.asarray(values, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if x.size < 2 or np.sum(w) <= 0:
        return (float(np.average(x, weights=w)) if x.size else math.nan), math.nan
    m = float(np.average(x, weights=w))
    # scale weights to sum to the number of units so the n - 1 correction is the usual one
    ws = w * (x.size / np.sum(w))
    var = float(np.sum(ws * (x - m) ** 2) / (x.size - 1))
    return m, math.sqrt(var)


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(stats.norm.isf(alpha / 2))


def _check_power(power: float) -> None:
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")


def power_rate(
    p_control: float, p_treated: float, n_treated: float, n_comparators: float, alpha: float
) -> float:
    """Power of the two-sided two-proportion z-test (pooled null, unpooled alternative)."""
    z = _z(alpha)
    p0, p1 = float(p_control), float(p_treated)
    delta = abs(p1 - p0)
    pbar = (n_treated * p1 + n_comparators * p0) / (n_treated + n_comparators)
    s0 = math.sqrt(pbar * (1 - pbar) * (1 / n_treated + 1 / n_comparators))
    s1 = math.sqrt(p1 * (1 - p1) / n_treated + p0 * (1 - p0) / n_comparators)
    if s1 == 0:
        return 1.0 if delta > 0 else alpha
    return float(stats.norm.cdf((delta - z * s0) / s1) + stats.norm.cdf((-delta - z * s0) / s1))


def mde_rate(
    p_control: float,
    n_treated: float,
    n_comparators: float,
    alpha: float,
    power: float,
    direction: str = "reduction",
) -> float:
    """Minimum detectable difference in a binary rate, as a proportion (0.05 = 5 points).

    ``p_control`` is the comparison group's rate; ``n_treated`` and ``n_comparators`` the
    (effective) group sizes. ``direction="reduction"`` looks for ``p1 = p0 - delta``
    (what the programme hopes for), ``"increase"`` for ``p1 = p0 + delta``. Returns NaN when
    no difference inside the unit interval reaches the requested power.
    """
    _check_power(power)
    if not 0 < p_control < 1:
        raise ValueError(f"p_control must be in (0, 1), got {p_control}")
    sign = {"reduction": -1.0, "increase": 1.0}[direction]
    limit = p_control if sign < 0 else 1 - p_control

    def f(delta: float) -> float:
        return (
            power_rate(p_control, p_control + sign * delta, n_treated, n_comparators, alpha) - power
        )

    hi = limit * (1 - 1e-12)
    if f(hi) < 0:
        return math.nan
    return float(optimize.brentq(f, 1e-12, hi, xtol=_XTOL, rtol=1e-14))


def mde_rate_arcsine(
    p_control: float,
    n_treated: float,
    n_comparators: float,
    alpha: float,
    power: float,
    direction: str = "reduction",
) -> float:
    """MDE in a binary rate via Cohen's arcsine effect size ``h`` (variance-stabilised).

    ``h = mde_standardised(...)``; the treated rate solves
    ``|2 asin(sqrt p1) - 2 asin(sqrt p0)| = h``. Shown for comparison with texts (and
    ``statsmodels.stats.proportion.proportion_effectsize``) that use it.
    """
    h = mde_standardised(n_treated, n_comparators, alpha, power)
    phi0 = 2 * math.asin(math.sqrt(p_control))
    phi1 = phi0 - h if direction == "reduction" else phi0 + h
    if not 0 <= phi1 <= math.pi:
        return math.nan
    p1 = math.sin(phi1 / 2) ** 2
    return abs(p_control - p1)


def power_mean(d: float, n_treated: float, n_comparators: float, alpha: float) -> float:
    """Power of the two-sided two-sample z-test for a standardised difference ``d``."""
    z = _z(alpha)
    ncp = abs(d) * math.sqrt(1 / (1 / n_treated + 1 / n_comparators))
    return float(stats.norm.cdf(ncp - z) + stats.norm.cdf(-ncp - z))


def mde_standardised(n_treated: float, n_comparators: float, alpha: float, power: float) -> float:
    """Minimum detectable standardised difference (difference / SD), equal variances."""
    _check_power(power)
    if n_treated <= 0 or n_comparators <= 0:
        return math.nan

    def f(d: float) -> float:
        return power_mean(d, n_treated, n_comparators, alpha) - power

    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, 0.0, hi, xtol=_XTOL, rtol=1e-14))


def mde_mean(
    sd: float, n_treated: float, n_comparators: float, alpha: float, power: float
) -> float:
    """Minimum detectable difference in a mean (e.g. re-offences per person) with SD ``sd``."""
    return mde_standardised(n_treated, n_comparators, alpha, power) * float(sd)


def n_needed_rate(
    p_control: float, effect: float, ratio: float, alpha: float, power: float
) -> float:
    """Treated people needed to detect a change ``effect`` in the rate (proportion units,
    negative for a reduction), with ``ratio`` effective comparators per treated person.

    Returns the exact (fractional) solution of the power equation; round up to report it.
    """
    _check_power(power)
    p1 = p_control + effect
    if not (0 < p_control < 1 and 0 < p1 < 1) or effect == 0:
        raise ValueError(f"rates must lie in (0, 1) and differ: {p_control} -> {p1}")

    def f(n1: float) -> float:
        return power_rate(p_control, p1, n1, ratio * n1, alpha) - power

    hi = 2.0
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, 1e-6, hi, xtol=1e-9, rtol=1e-14))


# ------------------------------------------------------------------------- the stage
#: The reoffending counts the power numbers are computed from (their suppression follows).
COUNTS = [
    "reoffending.n_treated",
    "reoffending.n_comparison",
    "reoffending.n_reoffenders_comparison",
]


@dataclass(frozen=True)
class PowerResult:
    """What the achieved analysis sample could detect, and what the target needs."""

    size: DesignSize
    comparison_rate: float
    comparison_frequency: float
    comparison_frequency_sd: float
    mde_rate: float
    mde_rate_arcsine: float
    mde_frequency: float
    power_at_target: float
    n_needed_treated: float
    n_needed_comparison: float

    def table(self) -> pd.DataFrame:
        rows = {
            "n_treated": float(self.size.n_treated),
            "n_comparison": float(self.size.n_comparators),
            "effective_n_treated": self.size.n_eff_treated,
            "effective_n_comparison": self.size.n_eff_comparators,
            "design_effect_comparison": self.size.design_effect_control,
            **{
                k: getattr(self, k)
                for k in (
                    "comparison_rate",
                    "comparison_frequency",
                    "comparison_frequency_sd",
                    "mde_rate",
                    "mde_rate_arcsine",
                    "mde_frequency",
                    "power_at_target",
                    "n_needed_treated",
                    "n_needed_comparison",
                )
            },  # fmt: skip
        }
        return pd.DataFrame({"measure": list(rows), "value": [float(v) for v in rows.values()]})

    def numbers(self):
        from mydirection.reporting.numbers import Numbers

        n = Numbers()
        src = COUNTS
        n.add("power.effective_n_comparison", self.size.n_eff_comparators, "estimate",
              "Effective number of comparators (Kish, matching weights)", unit="people",
              decimals=1, derived_from=src)  # fmt: skip
        n.add("power.design_effect", self.size.design_effect_control, "ratio",
              "Design effect of the comparators' weights", decimals=2, derived_from=src)  # fmt: skip
        n.add("power.comparison_rate", self.comparison_rate, "proportion",
              "Comparison group's re-offending rate (weighted)", derived_from=src)  # fmt: skip
        n.add("power.mde_rate_pp", self.mde_rate, "pp",
              "Minimum detectable difference in the re-offending rate (either direction)",
              derived_from=src, signed=False)  # fmt: skip
        n.add("power.mde_frequency", self.mde_frequency, "mean",
              "Minimum detectable difference in re-offences per person (either direction)",
              unit="re-offences per person", derived_from=src, signed=False)  # fmt: skip
        n.add("power.power_at_target", self.power_at_target, "proportion",
              "Power to detect the plan's target effect", derived_from=src)  # fmt: skip
        ceil = (
            (lambda x: math.ceil(x)) if math.isfinite(self.n_needed_treated) else (lambda x: None)
        )
        n.add("power.n_needed_for_target", ceil(self.n_needed_treated), "count",
              "Participants needed to detect the plan's target effect with the plan's power "
              "(at the achieved comparison rate and ratio)", unit="participants")  # fmt: skip
        n.add("power.n_needed_comparison_for_target", ceil(self.n_needed_comparison), "count",
              "Effective comparators needed alongside them", unit="comparators")  # fmt: skip
        return n


def analyse_power(sample: pd.DataFrame, settings) -> PowerResult:
    """Rules 1-3 of the module docstring on the analysis sample, at the plan's level and
    power (``settings``: :class:`mydirection.settings.PowerSettings`)."""
    from mydirection.errors import UserError

    data = sample.dropna(subset=["reoffended", "n_reoffences"])
    size = design_size(data)
    if size.n_treated < 2 or size.n_comparators < 2:
        raise UserError(
            f"power: {size.n_treated} participants and {size.n_comparators} comparators with "
            "outcomes in the analysis sample (column treated); power needs at least 2 of each"
        )
    comp = data[~data["treated"].astype(bool)]
    p0, _ = weighted_mean_sd(comp["reoffended"], comp["weights"])
    f0, f_sd = weighted_mean_sd(comp["n_reoffences"], comp["weights"])
    a, pw = settings.alpha, settings.power
    n1, n0 = size.n_eff_treated, size.n_eff_comparators
    rate_ok = 0 < p0 < 1
    effect = settings.target_effect_pp / 100
    target_ok = rate_ok and 0 < p0 + effect < 1
    need = n_needed_rate(p0, effect, size.ratio_eff, a, pw) if target_ok else math.nan
    return PowerResult(
        size=size,
        comparison_rate=p0,
        comparison_frequency=f0,
        comparison_frequency_sd=f_sd,
        mde_rate=mde_rate(p0, n1, n0, a, pw) if rate_ok else math.nan,
        mde_rate_arcsine=mde_rate_arcsine(p0, n1, n0, a, pw) if rate_ok else math.nan,
        mde_frequency=mde_mean(f_sd, n1, n0, a, pw),
        power_at_target=power_rate(p0, p0 + effect, n1, n0, a) if target_ok else math.nan,
        n_needed_treated=need,
        n_needed_comparison=need * size.ratio_eff,
    )
