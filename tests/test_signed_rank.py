"""Rosenbaum bounds for Wilcoxon's signed-rank statistic: brute-force enumeration of every
assignment (and every hidden confounder), scipy at Gamma = 1, Rosenbaum's published table."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mydirection import sensitivity as sens

# ------------------------------------------------------------------ brute-force reference


def average_ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks by counting: #{a_j < a_i} + (#{a_j == a_i} + 1) / 2."""
    return np.array([(a < x).sum() + ((a == x).sum() + 1) / 2 for x in a], dtype=float)


def t_from_scratch(d: np.ndarray, zero_method: str) -> float:
    """Wilcoxon's T+ of the differences ``d``, computed directly."""
    a = np.abs(d)
    r = np.zeros(len(d))
    if zero_method == "wilcox":
        nz = a > 0
        r[nz] = average_ranks(a[nz])
    else:  # pratt: rank everything, then zeros score 0
        r = average_ranks(a) * (a > 0)
    return float(r[d > 0].sum())


def brute_force(first, second, observed, gamma, zero_method, hidden=None):
    """Min and max over hidden confounders u of P(T >= T_obs) under the sensitivity model.

    Pair s has responses ``first[s]`` and ``second[s]`` (coded in the direction of the
    alternative); ``observed[s]`` is 1 when the first member is the treated one. Every one
    of the 2^n treatment assignments is enumerated and T recomputed from the raw responses;
    the first member of pair s is treated with probability gamma^u1 / (gamma^u1 + gamma^u2).
    ``hidden``: the u patterns to try (default: all of {0,1}^(2n)).
    """
    first, second = np.asarray(first, float), np.asarray(second, float)
    n = len(first)

    def diffs(z):
        return np.where(np.asarray(z) == 1, first - second, second - first)

    t_obs = t_from_scratch(diffs(observed), zero_method)
    assignments = list(itertools.product((0, 1), repeat=n))
    hit = np.array([t_from_scratch(diffs(z), zero_method) >= t_obs - 1e-9 for z in assignments])
    z = np.array(assignments)
    if hidden is None:
        hidden = itertools.product((0, 1), repeat=2 * n)
    lo, hi = 1.0, 0.0
    for u in hidden:
        u = np.asarray(u).reshape(n, 2)
        pi = gamma ** u[:, 0] / (gamma ** u[:, 0] + gamma ** u[:, 1])
        prob = np.prod(np.where(z == 1, pi, 1 - pi), axis=1)
        p = float(prob[hit].sum())
        lo, hi = min(lo, p), max(hi, p)
    return lo, hi, diffs(observed)


def worst_case_u(first, second):
    """u = 1 for the member with the larger response (the upper bound), and its mirror."""
    first, second = np.asarray(first, float), np.asarray(second, float)
    up = np.column_stack([first > second, second > first]).astype(int).ravel()
    down = np.column_stack([first < second, second < first]).astype(int).ravel()
    return [up, down]


SMALL = [
    # (first, second, observed): ties among |d| and zero differences
    ([3, 1, 2, 0, 2], [1, 1, 0, 1, 2], [1, 1, 1, 0, 1]),
    ([2, 0, 1, 4, 1], [0, 2, 1, 1, 0], [1, 0, 1, 1, 1]),
    ([1, 1, 1, 0], [0, 0, 0, 1], [1, 1, 0, 1]),
]


@pytest.mark.parametrize("first,second,observed", SMALL)
@pytest.mark.parametrize("zero_method", ["wilcox", "pratt"])
@pytest.mark.parametrize("gamma", [1.0, 1.7, 3.0])
def test_bounds_equal_enumeration_over_every_hidden_confounder(
    first, second, observed, zero_method, gamma
):
    lo, hi, d = brute_force(first, second, observed, gamma, zero_method)
    assert sens.signed_rank_upper_p(d, gamma, zero_method=zero_method) == pytest.approx(
        hi, abs=1e-12
    )
    assert sens.signed_rank_lower_p(d, gamma, zero_method=zero_method) == pytest.approx(
        lo, abs=1e-12
    )


@st.composite
def small_pairs(draw):
    n = draw(st.integers(min_value=1, max_value=12))
    counts = st.integers(min_value=0, max_value=3)  # re-offence counts: ties and zeros
    first = draw(st.lists(counts, min_size=n, max_size=n))
    second = draw(st.lists(counts, min_size=n, max_size=n))
    observed = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return first, second, observed


@settings(max_examples=40, deadline=None)
@given(
    small_pairs(),
    st.sampled_from(["wilcox", "pratt"]),
    st.floats(min_value=1.0, max_value=4.0),
)
def test_bounds_equal_enumeration_of_all_sign_patterns(pairs, zero_method, gamma):
    """n <= 12 pairs of counts: all 2^n assignments, T recomputed from the responses, at the
    worst-case hidden confounder (u = 1 for the larger response) and its mirror."""
    first, second, observed = pairs
    lo, hi, d = brute_force(
        first, second, observed, gamma, zero_method, hidden=worst_case_u(first, second)
    )
    if np.all(d == 0):
        assert math.isnan(sens.signed_rank_upper_p(d, gamma, zero_method=zero_method))
        return
    assert sens.signed_rank_upper_p(d, gamma, zero_method=zero_method) == pytest.approx(
        hi, abs=1e-12
    )
    assert sens.signed_rank_lower_p(d, gamma, zero_method=zero_method) == pytest.approx(
        lo, abs=1e-12
    )


# --------------------------------------------------------------------- Gamma = 1: scipy


def test_gamma_one_is_wilcoxons_test():
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 1.0, 25)  # no ties, no zeros: exact null distribution
    ref = stats.wilcoxon(d, alternative="greater", method="exact").pvalue
    for zm in ("wilcox", "pratt"):
        assert sens.signed_rank_upper_p(d, 1.0, "exact", zm) == pytest.approx(ref, abs=1e-12)
        assert sens.signed_rank_lower_p(d, 1.0, "exact", zm) == pytest.approx(ref, abs=1e-12)
    # counts: ties and zeros; the normal approximation is scipy's tie-corrected one
    counts = rng.poisson(0.8, (200, 2))
    d = (counts[:, 1] - counts[:, 0]).astype(float)
    assert (d == 0).sum() > 30 and len(np.unique(np.abs(d))) < 8
    for zm in ("wilcox", "pratt"):
        ref = stats.wilcoxon(
            d, zero_method=zm, correction=False, alternative="greater", method="approx"
        ).pvalue
        assert sens.signed_rank_upper_p(d, 1.0, "normal", zm) == pytest.approx(ref, rel=1e-9)
        exact = sens.signed_rank_upper_p(d, 1.0, "exact", zm)
        assert exact == pytest.approx(ref, abs=0.01)


# ------------------------------------------------------------ Rosenbaum's published example

LEAD_EXPOSED = [38, 23, 41, 18, 37, 36, 23, 62, 31, 34, 24, 14, 21, 17, 16, 20, 15,
                10, 45, 39, 22, 35, 49, 48, 44, 35, 43, 39, 34, 13, 73, 25, 27]  # fmt: skip
LEAD_CONTROL = [16, 18, 18, 24, 19, 11, 10, 15, 16, 18, 18, 13, 19, 10, 16, 16, 24,
                13, 9, 14, 21, 19, 7, 18, 19, 12, 11, 22, 25, 16, 13, 11, 13]  # fmt: skip


def test_rosenbaum_2002_table_4_3_lead_example():
    """Lead in the blood of children (Morton et al. 1982; 33 pairs, one zero difference):
    upper bounds on the one-sided significance level of the signed-rank statistic, large-
    sample approximation, Rosenbaum (2002) Table 4.3 (reproduced by DOS2::senWilcox, whose
    ranking of zeros is ``zero_method="pratt"``)."""
    d = np.subtract(LEAD_EXPOSED, LEAD_CONTROL)
    assert (d == 0).sum() == 1
    published = {2.0: 0.0018, 3.0: 0.0136, 4.0: 0.0388, 4.25: 0.0468, 5.0: 0.0740}
    table = sens.signed_rank_table(d, list(published), alpha=0.025, zero_method="pratt")
    for g, p in published.items():
        row = table[table["gamma"] == g].iloc[0]
        assert round(row["p_upper_normal"], 4) == pytest.approx(p, abs=1e-12), g
    # at Gamma = 1 it is Wilcoxon's test (tie-corrected normal approximation)
    ref = stats.wilcoxon(d, zero_method="pratt", correction=False, alternative="greater")
    assert sens.signed_rank_upper_p(d, 1.0, "normal") == pytest.approx(ref.pvalue, rel=1e-9)
    # the study becomes sensitive to hidden bias between Gamma = 4.25 and 5 (normal) at 5 %
    g = sens.signed_rank_gamma_crossing(d, 0.05, method="normal")
    assert 4.25 < g < 5


# ------------------------------------------------------------------ layout and summary


def test_pair_differences_coding_and_pairs_only():
    pairs = pd.DataFrame({"treated_id": ["t1", "t2", "t3"], "control_id": ["c1", "c2", "c1"]})
    outcomes = pd.DataFrame(
        {"person_id": ["t1", "t2", "t3", "c1", "c2"], "n_reoffences": [0, 2, 1, 3, 2]}
    )
    less = sens.pair_differences(pairs, outcomes, alternative="less")
    assert less["d"].tolist() == [3.0, 0.0, 2.0]  # comparator minus treated
    greater = sens.pair_differences(pairs, outcomes, alternative="greater")
    assert greater["d"].tolist() == [-3.0, 0.0, -2.0]
    assert "person_id" not in less.columns
    ratio2 = pd.concat([pairs, pd.DataFrame({"treated_id": ["t1"], "control_id": ["c2"]})])
    with pytest.raises(ValueError, match="1:1 pairs"):
        sens.pair_differences(ratio2, outcomes, alternative="less")
    with pytest.raises(TypeError):
        sens.pair_differences(pairs, outcomes)  # the direction is the caller's choice


def test_summary_at_the_headline_level():
    rng = np.random.default_rng(11)
    counts = rng.poisson(1.0, (150, 2))
    d = (counts[:, 1] - counts[:, 0]).astype(float) + (rng.random(150) < 0.2)
    s = sens.signed_rank_summary(d, alpha=0.025, gamma_max=20.0)
    assert s.statistic == "signed_rank_pratt" and s.n_sets == 150
    if s.significant:
        g = s.gamma_crossing
        assert sens.signed_rank_upper_p(d, g) == pytest.approx(0.025, abs=1e-8)
    weak = np.array([1.0, -1.0, 2.0, 0.0, 1.0, -2.0, 1.0])
    w = sens.signed_rank_summary(weak, alpha=0.025)
    assert w.status == "not_significant" and w.gamma_crossing is None
    assert math.isnan(sens.signed_rank_gamma_crossing(weak, 0.025))
    h = sens.signed_rank_summary(d, alpha=0.025, headline_significant=False)
    assert h.gamma_crossing is None and h.status == "headline_not_significant"
    zeros = sens.signed_rank_summary(np.zeros(5), alpha=0.025)
    assert zeros.status == "no_informative_sets"


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(min_value=-3, max_value=3), min_size=2, max_size=60),
    st.floats(min_value=1.0, max_value=5.0),
)
def test_upper_bound_increases_with_gamma_and_exceeds_lower(d, gamma):
    d = np.array(d, dtype=float)
    if not (d != 0).any():
        return
    up = sens.signed_rank_upper_p(d, gamma)
    assert sens.signed_rank_upper_p(d, gamma * 1.3) >= up - 1e-12
    assert sens.signed_rank_lower_p(d, gamma) <= up + 1e-12


def test_normal_close_to_exact_for_many_pairs():
    rng = np.random.default_rng(5)
    counts = rng.poisson(1.2, (400, 2))
    d = (counts[:, 1] - counts[:, 0]).astype(float) + (rng.random(400) < 0.15)
    for g in (1.0, 1.3, 1.6):
        e = sens.signed_rank_upper_p(d, g, "exact")
        n = sens.signed_rank_upper_p(d, g, "normal")
        assert n == pytest.approx(e, abs=0.01)
    assert sens.signed_rank_upper_p(d, 1.3, "auto") == sens.signed_rank_upper_p(d, 1.3, "exact")


def test_grouped_fft_convolution_equals_pair_by_pair():
    from mydirection.sensitivity.signed_rank import _doubled, _sum_pmf, _sum_pmf_direct

    rng = np.random.default_rng(8)
    counts = rng.poisson(1.0, (400, 2))
    d = (counts[:, 1] - counts[:, 0]).astype(float)
    q, _ = sens.signed_rank_scores(d)
    s = _doubled(q[q > 0])
    assert len(s) > 200 and 20 * len(np.unique(s)) < len(s)  # the grouped route is taken
    for p in (0.5, 0.6, 0.8):
        a, b = _sum_pmf(s, p), _sum_pmf_direct(s, p)
        assert a.shape == b.shape
        np.testing.assert_allclose(np.cumsum(a[::-1]), np.cumsum(b[::-1]), atol=1e-12)
