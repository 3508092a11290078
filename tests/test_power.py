"""Power and MDE, checked against statsmodels' power classes and textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import power_proportions_2indep, proportion_effectsize

from mydirection.sensitivity import power as pw

sizes = st.integers(min_value=10, max_value=5000)
ratios = st.floats(min_value=0.5, max_value=5.0)
rates = st.floats(min_value=0.1, max_value=0.8)
alphas = st.sampled_from([0.01, 0.05, 0.1])
powers = st.sampled_from([0.7, 0.8, 0.9])


def test_kish_effective_n_textbook():
    # equal weights: n; one unit with weight 2 among four with 1: 36 / 8 = 4.5
    assert pw.kish_effective_n([1, 1, 1, 1]) == pytest.approx(4.0)
    assert pw.kish_effective_n([2, 1, 1, 1, 1]) == pytest.approx(36 / 8)
    assert pw.kish_effective_n([0.5, 0.5, 0, 0]) == pytest.approx(2.0)
    assert pw.kish_effective_n([]) == 0.0
    with pytest.raises(ValueError):
        pw.kish_effective_n([1, -1])


@given(
    st.lists(st.floats(min_value=0.01, max_value=10), min_size=1, max_size=50),
    st.floats(min_value=0.1, max_value=100),
)
def test_kish_bounded_and_scale_free(w, scale):
    n_eff = pw.kish_effective_n(w)
    assert 1 - 1e-9 <= n_eff <= len(w) + 1e-9
    assert pw.kish_effective_n(np.array(w) * scale) == pytest.approx(n_eff, rel=1e-9)


def test_design_size_from_matched_table():
    # 2 treated (weight 1), 3:1 with replacement: one comparator used twice (weight 2/3),
    # four used once (weight 1/3), one unmatched (weight 0)
    matched = pd.DataFrame(
        {
            "treated": [True, True, False, False, False, False, False, False],
            "weights": [1, 1, 2 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 0],
        }
    )
    d = pw.design_size(matched)
    assert (d.n_treated, d.n_comparators) == (2, 5)
    assert d.n_eff_treated == pytest.approx(2.0)
    w = np.array([2, 1, 1, 1, 1]) / 3
    assert d.n_eff_comparators == pytest.approx(w.sum() ** 2 / (w**2).sum())  # 36/8 = 4.5
    assert d.design_effect_control == pytest.approx(5 / 4.5)
    assert d.ratio == pytest.approx(2.5)


@settings(max_examples=40, deadline=None)
@given(sizes, ratios, alphas, powers)
def test_mde_standardised_matches_statsmodels(n1, ratio, alpha, power):
    mine = pw.mde_standardised(n1, n1 * ratio, alpha, power)
    # statsmodels' power function, evaluated at our MDE, gives the target power exactly
    sm_power = NormalIndPower().power(mine, n1, alpha, ratio=ratio)
    assert sm_power == pytest.approx(power, abs=1e-9)
    assert pw.power_mean(0.3, n1, n1 * ratio, alpha) == pytest.approx(
        NormalIndPower().power(0.3, n1, alpha, ratio=ratio), abs=1e-12
    )
    # statsmodels' solvers agree to their own tolerance (they stop at ~1e-6 in power, which
    # is up to ~3e-6 in d at n1 = 10; ours solves to 1e-12)
    ref = NormalIndPower().solve_power(
        effect_size=None, nobs1=n1, ratio=ratio, alpha=alpha, power=power
    )
    ref2 = zt_ind_solve_power(effect_size=None, nobs1=n1, ratio=ratio, alpha=alpha, power=power)
    assert mine == pytest.approx(ref, abs=1e-5)
    assert mine == pytest.approx(ref2, abs=1e-5)
    # textbook closed form, which drops the far tail Phi(-ncp - z): agrees to 1e-6 whenever
    # that tail is negligible (it is not at very low power and small n)
    z = stats.norm.isf(alpha / 2)
    se = math.sqrt(1 / n1 + 1 / (n1 * ratio))
    closed = (z + stats.norm.ppf(power)) * se
    far_tail = stats.norm.cdf(-closed / se - z)
    assert mine == pytest.approx(closed, abs=1e-6 if far_tail < 1e-9 else 1e-3)


def test_mde_mean_scales_with_sd():
    d = pw.mde_standardised(150, 450, 0.05, 0.8)
    assert pw.mde_mean(2.5, 150, 450, 0.05, 0.8) == pytest.approx(2.5 * d)
    assert pw.power_mean(d, 150, 450, 0.05) == pytest.approx(0.8, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(rates, sizes, ratios, alphas, powers)
def test_power_rate_matches_statsmodels(p0, n1, ratio, alpha, power):
    p1 = p0 * 0.8
    mine = pw.power_rate(p0, p1, n1, n1 * ratio, alpha)
    ref = power_proportions_2indep(p1 - p0, p0, n1, ratio=ratio, alpha=alpha, return_results=False)
    assert mine == pytest.approx(ref, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(rates, sizes, ratios, alphas, powers)
def test_mde_rate_solves_statsmodels_power(p0, n1, ratio, alpha, power):
    mde = pw.mde_rate(p0, n1, n1 * ratio, alpha, power)
    if math.isnan(mde):  # no reduction inside [0, p0] reaches the power: check that
        assert (
            power_proportions_2indep(
                -p0 + 1e-9, p0, n1, ratio=ratio, alpha=alpha, return_results=False
            )
            < power
        )
        return
    assert 0 < mde < p0
    ref = power_proportions_2indep(-mde, p0, n1, ratio=ratio, alpha=alpha, return_results=False)
    assert ref == pytest.approx(power, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(rates, st.integers(min_value=50, max_value=5000), ratios)
def test_mde_rate_arcsine_vs_fleiss(p0, n1, ratio):
    """The arcsine MDE reproduces statsmodels' Cohen's h exactly, and differs from the
    Fleiss (pooled-null) MDE we report by a small amount that shrinks with n."""
    n0 = n1 * ratio
    arc = pw.mde_rate_arcsine(p0, n1, n0, 0.05, 0.8)
    fleiss = pw.mde_rate(p0, n1, n0, 0.05, 0.8)
    if math.isnan(arc) or math.isnan(fleiss):  # rate too low for any reduction to be seen
        assert pw.mde_standardised(n1, n0, 0.05, 0.8) > 2 * math.asin(math.sqrt(p0)) or math.isnan(
            fleiss
        )
        return
    h = abs(proportion_effectsize(p0 - arc, p0))
    assert NormalIndPower().power(h, n1, 0.05, ratio=ratio) == pytest.approx(0.8, abs=1e-9)
    # both are O(1/sqrt(n)); their difference is second order
    assert abs(arc - fleiss) < 0.15 * fleiss
    assert abs(arc - fleiss) < 2.0 / n1**0.75


def test_mde_rate_worked_example():
    # Fleiss closed form at 0.8 power for 0.40 vs 0.30, 1:1: n = 356 per group
    # ((1.96 sqrt(2 .35 .65) + 0.8416 sqrt(.4 .6 + .3 .7))^2 / 0.01 = 355.9)
    z_a, z_b = stats.norm.isf(0.025), stats.norm.ppf(0.8)
    closed = (z_a * math.sqrt(2 * 0.35 * 0.65) + z_b * math.sqrt(0.4 * 0.6 + 0.3 * 0.7)) ** 2 / 0.01
    n = pw.n_needed_rate(0.4, -0.10, ratio=1.0, alpha=0.05, power=0.8)
    assert n == pytest.approx(closed, rel=1e-5)  # closed form drops the far tail
    assert math.ceil(n) == 356
    # and the MDE at that n is the 10-point difference
    assert pw.mde_rate(0.4, n, n, 0.05, 0.8) == pytest.approx(0.10, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(rates, ratios, powers)
def test_n_needed_is_inverse_of_mde(p0, ratio, power):
    n = pw.n_needed_rate(p0, -0.05, ratio=ratio, alpha=0.05, power=power)
    ref = power_proportions_2indep(-0.05, p0, n, ratio=ratio, alpha=0.05, return_results=False)
    assert ref == pytest.approx(power, abs=1e-6)
    assert pw.mde_rate(p0, n, n * ratio, 0.05, power) == pytest.approx(0.05, abs=1e-6)


def test_more_people_smaller_mde():
    a = pw.mde_rate(0.45, 100, 100, 0.05, 0.8)
    b = pw.mde_rate(0.45, 100, 300, 0.05, 0.8)
    c = pw.mde_rate(0.45, 400, 400, 0.05, 0.8)
    assert a > b > c


def test_weighted_mean_sd():
    x = np.array([0, 1, 2, 5, 0, 1])
    m, sd = pw.weighted_mean_sd(x)
    assert (m, sd) == pytest.approx((x.mean(), x.std(ddof=1)))
    # integer weights behave as repeated rows' mean
    m2, _ = pw.weighted_mean_sd([0, 3], [2, 1])
    assert m2 == pytest.approx(1.0)


def test_bad_arguments():
    with pytest.raises(ValueError):
        pw.mde_rate(0.0, 100, 100, 0.05, 0.8)
    with pytest.raises(ValueError):
        pw.mde_rate(0.3, 100, 100, 0.05, power=1.2)
    with pytest.raises(ValueError):
        pw.n_needed_rate(0.3, 0.0, 1.0, 0.05, 0.8)
    with pytest.raises(ValueError):
        pw.power_rate(0.3, 0.2, 100, 100, alpha=0.0)


def test_no_hidden_test_level_or_power():
    """alpha and power come from the analysis plan: no function here has a default for them
    (a call without them is an error, not a silent 5 % / 80 %)."""
    import inspect

    for name in pw.__all__:
        fn = getattr(pw, name)
        if not callable(fn) or inspect.isclass(fn):
            continue
        for param in ("alpha", "power"):
            if param in inspect.signature(fn).parameters:
                default = inspect.signature(fn).parameters[param].default
                assert default is inspect.Parameter.empty, f"{name}({param}={default})"
    with pytest.raises(TypeError):
        pw.mde_rate(0.4, 100, 100)  # the level is required
