"""Tests of mydirection.matching: the fast engines against a brute-force reference, the
weights, the balance statistics against hand-computed values, the propensity model
against statsmodels."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mydirection import matching as mt

# ---------------------------------------------------------------------------------------
# Brute-force reference: O(n_treated x n_comparators), written for clarity, not speed
# ---------------------------------------------------------------------------------------


def brute_order(x_t, order, seed):
    n = len(x_t)
    if order == "largest":
        return sorted(range(n), key=lambda i: (-x_t[i], i))
    if order == "smallest":
        return sorted(range(n), key=lambda i: (x_t[i], i))
    if order == "data":
        return list(range(n))
    return list(np.random.default_rng(seed).permutation(n))


def brute_distance(i, j, x, coords):
    """Distance between rows i and j: |x_i - x_j|, or squared Euclidean on coords."""
    if coords is None:
        return abs(x[i] - x[j])
    d = 0.0
    for k in range(coords.shape[1]):
        diff = coords[i, k] - coords[j, k]
        d += diff * diff
    return d


def brute_match(treated, x, *, ratio, replace, width, order, seed, strata, eligible, coords):
    """Greedy nearest neighbour by exhaustive search. Returns sorted (t, c, round) links."""
    n = len(treated)
    t_pos = [i for i in range(n) if treated[i]]
    seq = [t_pos[k] for k in brute_order([x[i] for i in t_pos], order, seed)]
    seq = [i for i in seq if eligible[i]]
    controls = [j for j in range(n) if not treated[j] and eligible[j]]

    def candidates(i, used):
        out = []
        for j in controls:
            if strata[j] != strata[i] or j in used:
                continue
            if abs(x[i] - x[j]) > width:  # the caliper is on the 1-D distance
                continue
            out.append((brute_distance(i, j, x, coords), j))
        return sorted(out)

    links = []
    if replace:
        for i in seq:
            for r, (_, j) in enumerate(candidates(i, set())[:ratio], start=1):
                links.append((i, j, r))
    else:
        used = set()
        active = list(seq)
        for r in range(1, ratio + 1):
            still = []
            for i in active:
                cands = candidates(i, used)
                if cands:
                    used.add(cands[0][1])
                    links.append((i, cands[0][1], r))
                    still.append(i)
            active = still
    return sorted(links)


def engine_links(**kw):
    out = mt.nearest_neighbour(**kw)
    return sorted(map(tuple, out[["treated", "control", "round"]].to_numpy().tolist()))


@st.composite
def matching_problems(draw):
    n = draw(st.integers(2, 40))
    treated = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    kind = draw(st.sampled_from(["ties", "continuous", "tiny"]))
    if kind == "ties":  # few distinct values: many exact ties
        x = [v / 4 for v in draw(st.lists(st.integers(-4, 4), min_size=n, max_size=n))]
    elif kind == "tiny":  # values that round to the same distance from far away
        x = draw(
            st.lists(
                st.sampled_from([0.0, 1e-17, 2e-17, 1.0, 1.0 + 2**-52, 3.0, -1e-300]),
                min_size=n,
                max_size=n,
            )
        )
    else:
        x = draw(
            st.lists(
                st.floats(-5, 5, allow_nan=False, allow_subnormal=False),
                min_size=n,
                max_size=n,
            )
        )
    n_strata = draw(st.integers(1, 3))
    strata = draw(st.lists(st.integers(0, n_strata - 1), min_size=n, max_size=n))
    eligible = draw(st.lists(st.booleans(), min_size=n, max_size=n).map(lambda v: v))
    if not draw(st.booleans()):
        eligible = [True] * n
    use_coords = draw(st.booleans())
    coords = None
    if use_coords:
        dims = draw(st.integers(1, 3))
        vals = draw(st.lists(st.integers(-2, 2), min_size=n * dims, max_size=n * dims))
        coords = np.array(vals, dtype=float).reshape(n, dims) / 2
    return {
        "treated": np.array(treated),
        "x": np.array(x, dtype=float),
        "strata": np.array(strata),
        "eligible": np.array(eligible),
        "coords": coords,
        "ratio": draw(st.integers(1, 3)),
        "replace": draw(st.booleans()),
        "width": draw(st.sampled_from([math.inf, 0.0, 0.3, 1.0, 2.5])),
        "order": draw(st.sampled_from(mt.ORDERS)),
        "seed": draw(st.integers(0, 5)),
        "chunk": draw(st.sampled_from([1, 7, 4_000_000])),
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matching_problems())
def test_engine_returns_exactly_the_brute_force_pairs(p):
    expected = brute_match(
        p["treated"], p["x"], ratio=p["ratio"], replace=p["replace"], width=p["width"],
        order=p["order"], seed=p["seed"], strata=p["strata"], eligible=p["eligible"],
        coords=p["coords"],
    )  # fmt: skip
    got = engine_links(
        treated=p["treated"], distance=p["x"], ratio=p["ratio"], replace=p["replace"],
        width=p["width"], order=p["order"], seed=p["seed"], strata=p["strata"],
        eligible=p["eligible"], coords=p["coords"], chunk_cells=p["chunk"],
    )  # fmt: skip
    assert got == expected


def _random_cohort(rng, n, share_treated=0.3, ties=False):
    df = pd.DataFrame(
        {
            "treated": rng.random(n) < share_treated,
            "age": rng.integers(18, 60, n).astype(float)
            if ties
            else rng.normal(35, 10, n).round(1),
            "score": rng.normal(size=n),
            "flag": rng.random(n) < 0.4,
            "group": rng.choice(["a", "b", "c"], n),
            "stratum": rng.choice(["x", "y"], n),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    df.loc[df.index[:2], "treated"] = [True, False]
    return df


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(12, 60),
    distance=st.sampled_from(mt.DISTANCES),
    ratio=st.integers(1, 3),
    replace=st.booleans(),
    caliper=st.sampled_from([None, 0.05, 0.2, 1.0]),
    order=st.sampled_from(mt.ORDERS),
    exact=st.sampled_from([None, ["stratum"]]),
    ties=st.booleans(),
)
def test_match_equals_brute_force_for_every_option(
    seed, n, distance, ratio, replace, caliper, order, exact, ties
):
    rng = np.random.default_rng(seed)
    df = _random_cohort(rng, n, ties=ties)
    if ties:  # coarse covariates only: many identical propensity scores
        df["score"] = df["score"].round(0)
    covs = ["age", "score", "flag", "group"]
    try:
        m = mt.match(
            df, "treated", covs, distance=distance, ratio=ratio, replace=replace,
            caliper=caliper, order=order, exact=exact, seed=seed,
        )  # fmt: skip
    except ValueError as err:  # tiny samples can separate perfectly / be collinear
        assert "separation" in str(err) or "collinear" in str(err)
        return
    prop = mt.fit_propensity(df, "treated", covs)
    x = prop["ps" if distance == "ps" else "logit_ps"].to_numpy()
    width = math.inf if caliper is None else caliper * np.std(x, ddof=1)
    coords = None
    if distance == "mahalanobis":
        design = mt.expand_covariates(df, covs, drop_first=True).to_numpy()
        coords = mt.mahalanobis_transform(design, df["treated"].to_numpy())
    strata = (df["stratum"] if exact else pd.Series(0, index=df.index)).astype(str).to_numpy()
    expected = brute_match(
        df["treated"].to_numpy(), x, ratio=ratio, replace=replace, width=width, order=order,
        seed=seed, strata=strata, eligible=np.ones(n, bool), coords=coords,
    )  # fmt: skip
    labels = df.index
    got = sorted(
        (labels.get_loc(t), labels.get_loc(c), r)
        for t, c, r in m.pairs[["treated", "control", "round"]].itertuples(index=False)
    )
    assert got == expected
    # every matched unit is in data, weights follow the links
    assert set(m.data.index) == set(m.pairs["treated"]) | set(m.pairs["control"])
    if not replace:
        assert m.pairs["control"].is_unique
    counts = m.counts.set_index("group")
    assert (counts["all"] == counts["matched"] + counts["unmatched"] + counts["discarded"]).all()


def test_one_preparation_shared_by_several_designs_gives_what_each_gives_alone():
    """pipeline.design prepares a cohort once for all its revisions: every design fitted
    with the shared preparation equals the same design fitted from scratch, and a
    preparation made for other data or covariates is refused."""
    df = _random_cohort(np.random.default_rng(5), 300)
    covs = ["age", "score", "flag", "group"]
    shared = mt.prepare(df, "treated", covs)
    designs = [
        {"distance": "logit_ps", "caliper": 0.2, "exact": ["stratum"]},
        {"distance": "ps", "ratio": 2, "replace": True},
        {"distance": "mahalanobis", "exact": ["stratum", "flag"]},
        {"terms": ("age^2", "age*score")},
    ]
    for options in designs:
        alone = mt.match(df, "treated", covs, **options)
        with_shared = mt.match(df, "treated", covs, prepared=shared, **options)
        pd.testing.assert_frame_equal(with_shared.data, alone.data)
        pd.testing.assert_frame_equal(with_shared.pairs, alone.pairs)
        pd.testing.assert_frame_equal(with_shared.balance, alone.balance)
    pd.testing.assert_frame_equal(
        mt.ipw(df, "treated", covs, prepared=shared).balance, mt.ipw(df, "treated", covs).balance
    )
    with pytest.raises(ValueError, match="prepared: made for other data"):
        mt.match(df.copy(), "treated", covs, prepared=shared)
    with pytest.raises(ValueError, match="prepared: made for other data"):
        mt.ipw(df, "treated", covs[:2], prepared=shared)


def test_a_preparation_carried_to_another_treatment_gives_what_preparing_afresh_gives():
    """A placebo's repetitions (and a batch of specifications) share one preparation
    through Prepared.for_data: the same people with another treatment column give exactly
    what preparing that data afresh gives; other covariate values are refused (None), and
    strata are recomputed when an exact-matching column differs."""
    rng = np.random.default_rng(11)
    df = _random_cohort(rng, 400)
    covs = ["age", "score", "flag", "group"]
    base = mt.prepare(df, "treated", covs)
    options = [
        {"distance": "logit_ps", "caliper": 0.2, "exact": ["stratum"]},
        {"distance": "mahalanobis", "ratio": 2, "replace": True},
        {"terms": ("age^2", "age*score")},
    ]
    for _ in range(3):
        other = df.copy()
        other["treated"] = rng.permutation(df["treated"].to_numpy())
        carried = base.for_data(other)
        assert carried is not None and carried.X is base.X
        for o in options:
            alone = mt.match(other, "treated", covs, **o)
            shared = mt.match(other, "treated", covs, prepared=carried, **o)
            for part in ("data", "pairs", "balance", "propensity"):
                pd.testing.assert_frame_equal(getattr(shared, part), getattr(alone, part))
        pd.testing.assert_frame_equal(
            mt.ipw(other, "treated", covs, prepared=carried).balance,
            mt.ipw(other, "treated", covs).balance,
        )
    moved = df.assign(age=df["age"] + 1.0)
    assert base.for_data(moved) is None
    cache = mt.Preparations()  # what pipeline.design keeps: one preparation per people
    first = cache.get(df, "treated", covs)
    assert cache.get(other, "treated", covs).X is first.X
    assert cache.get(moved, "treated", covs).X is not first.X
    restrata = df.assign(stratum=rng.permutation(df["stratum"].to_numpy()))
    np.testing.assert_array_equal(
        base.for_data(restrata).strata(["stratum"]),
        mt.prepare(restrata, "treated", covs).strata(["stratum"]),
    )


# ---------------------------------------------------------------------------------------
# Weights and subclasses
# ---------------------------------------------------------------------------------------


def test_weights_follow_matchit_att_rule():
    # treated at positions 0 and 1; controls 2, 3, 4. Treated 0 -> {2, 3}; treated 1 -> {3}
    links = pd.DataFrame({"treated": [0, 0, 1], "control": [2, 3, 3], "round": [1, 2, 1]})
    w, sub = mt.matching_weights(links, 6)
    # raw: control 2: 1/2; control 3: 1/2 + 1 = 3/2; sum 2 = number of matched controls
    np.testing.assert_allclose(w, [1, 1, 0.5, 1.5, 0, 0])
    assert sub.tolist() == [1, 2, 1, 1, 0, 0]  # control 3 in sets 1 and 2: lowest set


def test_weights_rescaled_to_number_of_matched_controls():
    # 3 treated, each with 2 controls: raw weights 1/2 each -> rescaled to 1 each
    links = pd.DataFrame(
        {"treated": [0, 0, 1, 1, 2, 2], "control": [3, 4, 5, 6, 7, 8], "round": [1, 2] * 3}
    )
    w, sub = mt.matching_weights(links, 9)
    np.testing.assert_allclose(w, np.ones(9))
    assert sub.tolist() == [1, 2, 3, 1, 1, 2, 2, 3, 3]


def test_match_with_replacement_reuses_controls_and_sums_weights():
    df = pd.DataFrame(
        {"treated": [1, 1, 1, 0, 0], "x": [0.0, 0.1, 5.0, 0.05, 4.0]}, index=list("abcde")
    )
    ps = pd.Series([0.50, 0.51, 0.9, 0.505, 0.8], index=df.index)
    m = mt.match(df, "treated", ["x"], propensity=ps, replace=True, order="data")
    assert m.pairs[["treated", "control"]].values.tolist() == [["a", "d"], ["b", "d"], ["c", "e"]]
    assert m.data.loc["d", "weights"] == pytest.approx(2 * 2 / 3)  # 2 raw, rescaled to sum 2
    assert m.data.loc["e", "weights"] == pytest.approx(2 / 3)
    assert m.data["subclass"].to_dict() == {"a": 1, "b": 2, "c": 3, "d": 1, "e": 3}
    assert m.replace and m.treatment == "treated" and m.ratio == 1


def test_caliper_leaves_far_treated_unmatched_and_counts_them():
    df = pd.DataFrame({"treated": [1, 1, 0, 0], "x": [0.0, 1.0, 2.0, 3.0]})
    ps = pd.Series([0.2, 0.9, 0.21, 0.3])
    sd = np.std(ps, ddof=1)
    m = mt.match(df, "treated", ["x"], propensity=ps, caliper=0.05 / sd, order="largest")
    # unit 1 (ps 0.9) is matched first but nothing lies within 0.05; unit 0 gets control 2
    assert m.pairs[["treated", "control"]].values.tolist() == [[0, 2]]
    c = m.counts.set_index("group")
    assert c.loc["treated", "matched"] == 1 and c.loc["treated", "unmatched"] == 1
    assert c.loc["control", "unmatched"] == 1


def test_greedy_order_matters_as_in_matchit():
    # controls at 0.45 and 0.7; treated at 0.5 and 0.6. Largest first: 0.6 takes 0.45?
    # |0.6-0.45|=0.15 > |0.6-0.7|=0.1 -> 0.6 takes 0.7, then 0.5 takes 0.45.
    df = pd.DataFrame({"treated": [1, 1, 0, 0], "x": [0, 0, 0, 0]})
    ps = pd.Series([0.5, 0.6, 0.45, 0.7])
    m = mt.match(df, "treated", ["x"], propensity=ps, order="largest")
    assert sorted(m.pairs[["treated", "control"]].values.tolist()) == [[0, 2], [1, 3]]
    # smallest first: 0.5 takes 0.45 (0.05), 0.6 takes 0.7
    ps2 = pd.Series([0.5, 0.6, 0.58, 0.9])
    m2 = mt.match(df, "treated", ["x"], propensity=ps2, order="smallest")
    assert sorted(m2.pairs[["treated", "control"]].values.tolist()) == [[0, 2], [1, 3]]
    m3 = mt.match(df, "treated", ["x"], propensity=ps2, order="largest")
    assert sorted(m3.pairs[["treated", "control"]].values.tolist()) == [[0, 3], [1, 2]]


def test_ties_go_to_the_first_control_in_the_data():
    df = pd.DataFrame({"treated": [0, 1, 0, 0], "x": [0, 0, 0, 0]})
    ps = pd.Series([0.4, 0.5, 0.6, 0.4])  # controls 0 and 2 are both 0.1 away; 3 ties 0
    m = mt.match(df, "treated", ["x"], propensity=ps)
    assert m.pairs["control"].tolist() == [0]


def test_discard_both_drops_units_outside_common_support():
    df = pd.DataFrame({"treated": [1, 1, 0, 0, 0], "x": [0] * 5})
    ps = pd.Series([0.9, 0.5, 0.45, 0.55, 0.1])
    m = mt.match(df, "treated", ["x"], propensity=ps, discard="both")
    c = m.counts.set_index("group")
    assert c.loc["treated", "discarded"] == 1  # 0.9 > max control 0.55
    assert c.loc["control", "discarded"] == 2  # 0.45 and 0.1 < min treated 0.5
    assert mt.n_outside_support(ps, df["treated"].astype(bool)) == 1


# ---------------------------------------------------------------------------------------
# Balance statistics against hand-computed values
# ---------------------------------------------------------------------------------------


TINY = pd.DataFrame(
    {
        "treated": [1, 1, 1, 0, 0, 0, 0],
        "x": [1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 8.0],
        "b": [1, 0, 1, 0, 0, 1, 0],
        "cat": ["p", "q", "q", "p", "p", "p", "r"],
    }
)


def test_balance_before_matches_hand_computation():
    bal = mt.balance_table(TINY, "treated", ["x", "b", "cat"]).set_index("covariate")
    # x: treated mean 2, SD 1 (n-1); control mean 5
    assert bal.loc["x", "mean_treated"] == pytest.approx(2.0)
    assert bal.loc["x", "mean_control_before"] == pytest.approx(5.0)
    assert bal.loc["x", "smd_before"] == pytest.approx(-3.0)
    # control variance of 2,4,6,8 = 20/3; ratio 1 / (20/3)
    assert bal.loc["x", "var_ratio_before"] == pytest.approx(0.15)
    # eCDF: at x=3 F_t=1, F_c=1/4 -> 0.75
    assert bal.loc["x", "ks_before"] == pytest.approx(0.75)
    # b: p_t = 2/3, p_c = 1/4; SD sqrt(2/3 * 1/3)
    assert bal.loc["b", "smd_before"] == pytest.approx((2 / 3 - 1 / 4) / math.sqrt(2 / 9))
    assert bal.loc["b", "ks_before"] == pytest.approx(2 / 3 - 1 / 4)
    assert math.isnan(bal.loc["b", "var_ratio_before"])
    # categorical levels: p, q, r
    assert list(bal.loc[bal["variable"] == "cat"].index) == ["cat_p", "cat_q", "cat_r"]
    assert bal.loc["cat_q", "mean_treated"] == pytest.approx(2 / 3)
    assert bal.loc["cat_q", "smd_before"] == pytest.approx((2 / 3) / math.sqrt(2 / 9))
    assert bal.loc["cat_r", "type"] == "binary"
    assert np.isnan(bal["smd_after"]).all()


def test_balance_after_uses_weights_and_the_unadjusted_treated_sd():
    w = pd.Series([1, 1, 1, 3, 1, 0, 0], dtype=float)  # control mean (6+4)/4 = 2.5
    bal = mt.balance_table(TINY, "treated", ["x", "b"], w).set_index("covariate")
    assert bal.loc["x", "mean_control_after"] == pytest.approx(2.5)
    assert bal.loc["x", "smd_after"] == pytest.approx(-0.5)  # (2 - 2.5) / 1
    # weighted variance, reliability weights: sum w (x-m)^2 = 3*.25 + 2.25 = 3,
    # V1 = 4, V2 = 10 -> 3 / (4 - 10/4) = 2; ratio 1 / 2
    assert bal.loc["x", "var_ratio_after"] == pytest.approx(0.5)
    # eCDFs: treated 1/3 at 1, 2/3 at 2, 1 at 3; control 3/4 at 2, 1 at 4 -> max 1/3 at 1
    assert bal.loc["x", "ks_after"] == pytest.approx(1 / 3)
    assert bal.loc["b", "mean_control_after"] == pytest.approx(0.0)


@settings(max_examples=200, deadline=None)
@given(
    xt=st.lists(st.integers(0, 6), min_size=1, max_size=12),
    xc=st.lists(st.integers(0, 6), min_size=1, max_size=12),
    data=st.data(),
)
def test_weighted_ks_equals_naive_ecdf_difference(xt, xc, data):
    wt = data.draw(st.lists(st.integers(1, 4), min_size=len(xt), max_size=len(xt)))
    wc = data.draw(st.lists(st.integers(1, 4), min_size=len(xc), max_size=len(xc)))
    xt, xc = np.array(xt, float) / 2, np.array(xc, float) / 2
    wt, wc = np.array(wt, float), np.array(wc, float)
    naive = 0.0
    for v in np.concatenate([xt, xc, [-1.0, 99.0]]):
        ft = wt[xt <= v].sum() / wt.sum()
        fc = wc[xc <= v].sum() / wc.sum()
        naive = max(naive, abs(ft - fc))
    assert mt.balance._wecdf_max(xt, wt, xc, wc) == pytest.approx(naive, abs=1e-12)
    assert mt.balance._wecdf_max(xc, wc, xt, wt) == pytest.approx(naive, abs=1e-12)


@pytest.mark.parametrize("kind", ["normal", "integers", "ties", "crowded", "extremes"])
def test_grid_positions_are_exactly_searchsorted(kind):
    """The bucketed search the before-matching KS uses on a large comparator pool gives
    numpy's searchsorted, value for value: values equal to grid values, grids with many
    values in one bucket, values beyond the grid, infinities and NaN."""
    from mydirection.matching.balance import _FAST_SEARCH_ROWS, _grid_positions

    rng = np.random.default_rng(len(kind))
    n = _FAST_SEARCH_ROWS + 1000
    for _ in range(20):
        m = int(rng.integers(2, 3000))
        grid = rng.normal(size=m)
        x = rng.normal(size=n) * rng.choice([0.3, 1.0, 4.0])
        if kind == "integers":
            grid, x = rng.integers(0, 50, m).astype(float), rng.integers(-5, 60, n).astype(float)
        elif kind == "ties":
            x[:5000] = rng.choice(grid, 5000)
        elif kind == "crowded":  # 50 grid values within 1e-12 of each other
            grid = np.concatenate([grid, grid[0] + np.arange(50) * 1e-12])
            x[:50] = grid[-50:]
        elif kind == "extremes":
            grid = np.concatenate([grid, [-np.inf, 1e300]])
            x[:4] = [np.nan, np.inf, -np.inf, 1e300]
        grid = np.unique(grid)
        assert np.array_equal(_grid_positions(grid, x), np.searchsorted(grid, x))


def test_balance_verdict_thresholds():
    bal = mt.balance_table(TINY, "treated", ["x", "b"], pd.Series([1, 1, 1, 1, 1, 1, 1.0]))
    v = mt.balance_verdict(bal)
    assert not v.ok and v.text == "not achieved" and v.worst_covariate == "x"
    assert v.max_abs_smd_after == pytest.approx(3.0)
    assert "not achieved" in v.message
    ok = bal.assign(smd_after=0.05, var_ratio_after=1.2)
    assert mt.balance_verdict(ok).ok
    vr_bad = bal.assign(smd_after=0.05, var_ratio_after=2.5)
    v2 = mt.balance_verdict(vr_bad, var_ratio_bounds=(0.5, 2))
    assert not v2.ok and v2.var_ratio_failures == ["x"] and v2.smd_failures == []


# ---------------------------------------------------------------------------------------
# Covariates and the propensity model
# ---------------------------------------------------------------------------------------


def test_categorical_expansion_levels_and_reference():
    df = pd.DataFrame({"sex": ["m", "f", None, "m"], "n": [1, 2, 3, 4], "ok": [True] * 4})
    full = mt.expand_covariates(df, ["sex", "n", "ok"])
    assert list(full.columns) == ["sex_(missing)", "sex_f", "sex_m", "n", "ok"]
    assert full["sex_m"].tolist() == [1, 0, 0, 1] and full["ok"].tolist() == [1.0] * 4
    ref = mt.expand_covariates(df, ["sex", "n"], drop_first=True)
    assert list(ref.columns) == ["sex_f", "sex_m", "n"]
    coded = mt.expand_covariates(df, ["n"], categorical=["n"])
    assert list(coded.columns) == ["n_1", "n_2", "n_3", "n_4"]


def test_missing_numeric_covariate_is_a_clear_error():
    df = pd.DataFrame({"treated": [1, 0, 0], "age": [30.0, np.nan, 40.0]})
    with pytest.raises(ValueError, match=r"column age: 1 rows missing \(e.g. rows 1\)"):
        mt.match(df, "treated", ["age"])


def test_treatment_must_be_binary():
    df = pd.DataFrame({"treated": [1, 2, 0], "age": [30.0, 31, 40.0]})
    with pytest.raises(ValueError, match="column treated: 1 rows are neither"):
        mt.match(df, "treated", ["age"])


@pytest.mark.parametrize(
    "redundant",
    [
        lambda df: df["score"] * 2 + 1,  # a combination of a covariate and the intercept
        lambda df: pd.Series(3.0, index=df.index),  # a constant: the intercept again
    ],
)
def test_collinear_covariates_are_a_clear_error(redundant):
    df = _random_cohort(np.random.default_rng(3), 200).assign(extra=redundant)
    with pytest.raises(ValueError, match="the covariates are collinear"):
        mt.fit_propensity(df, "treated", ["age", "score", "extra"])
    with pytest.raises(ValueError, match="the covariates are collinear"):
        mt.match(df, "treated", ["age", "score", "group", "extra"])


def test_propensity_fit_equals_statsmodels_logit():
    rng = np.random.default_rng(7)
    df = _random_cohort(rng, 400)
    df["treated"] = rng.random(400) < 1 / (1 + np.exp(-(0.03 * (df["age"] - 35) + df["score"])))
    covs = ["age", "score", "flag", "group"]
    ours = mt.fit_propensity(df, "treated", covs)
    design = pd.get_dummies(df[covs], columns=["group"], drop_first=True, dtype=float)
    design = sm.add_constant(design.astype(float))
    ref = sm.Logit(df["treated"].astype(float), design).fit(disp=0)
    np.testing.assert_allclose(ours["logit_ps"], ref.fittedvalues, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ours["ps"], ref.predict(), rtol=1e-8, atol=1e-12)
    model = mt.propensity_model(df, "treated", covs)
    np.testing.assert_allclose(model.params.to_numpy(), ref.params.to_numpy(), rtol=1e-6)


def test_perfect_separation_is_reported():
    df = pd.DataFrame({"treated": [1, 1, 0, 0, 1, 0], "x": [5.0, 6, 1, 2, 7, 0]})
    with pytest.raises(ValueError, match="separation"):
        mt.fit_propensity(df, "treated", ["x"])


# ---------------------------------------------------------------------------------------
# Inverse-probability weighting
# ---------------------------------------------------------------------------------------


def test_ipw_att_odds_weights():
    df = pd.DataFrame({"treated": [1, 0, 0, 1], "x": [0.0, 0, 0, 0]})
    ps = pd.Series([0.5, 0.2, 0.5, 0.4])
    r = mt.ipw(df, "treated", ["x"], propensity=ps)
    # odds 0.25 and 1 -> rescaled to sum 2 (number of controls): 0.4, 1.6
    np.testing.assert_allclose(r.data["weights"], [1, 0.4, 1.6, 1])
    assert r.method == "ipw" and r.pairs.empty and r.replace is False
    assert r.counts.set_index("group").loc["control", "matched"] == 2


def test_ipw_improves_balance_on_confounded_data():
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=n)
    df = pd.DataFrame({"treated": rng.random(n) < 1 / (1 + np.exp(1.5 - x)), "x": x})
    r = mt.ipw(df, "treated", ["x"])
    row = r.balance.iloc[0]
    assert abs(row["smd_before"]) > 0.5 and abs(row["smd_after"]) < 0.05


# ---------------------------------------------------------------------------------------
# Pipeline scripts on a hand-made cohort (until the cohort stage output is available)
# ---------------------------------------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
NEEDS = ["accommodation", "ete", "finance", "relationships", "lifestyle", "drugs", "alcohol",
         "thinking", "attitudes"]  # fmt: skip


def hand_made_cohort(n=400, seed=11) -> pd.DataFrame:
    """A cohort frame with the columns of docs/stages.md; treatment depends on covariates."""
    rng = np.random.default_rng(seed)
    age = rng.normal(33, 9, n).clip(18, 70)
    n_prev = rng.poisson(4, n)
    ogrs = rng.uniform(5, 90, n)
    lin = -1.5 + 0.02 * (ogrs - 45) - 0.03 * (age - 33)
    treated = rng.random(n) < 1 / (1 + np.exp(-lin))
    df = pd.DataFrame(
        {
            "person_id": [f"{i:016x}" for i in rng.permutation(n) * 7919 + 12345],
            "treated": treated,
            "event_id": [f"e{i:05d}" for i in range(n)],
            "index_date": pd.Timestamp("2018-06-01"),
            "event_start": pd.Timestamp("2018-05-20"),
            "event_end": pd.NaT,
            "enrolment_date": pd.Series(pd.Timestamp("2018-06-01"), index=range(n)).where(treated),
            "enrolment_delay_days": 12.0,
            "office": "hull_central",
            "case_manager_id": "cm1",
            "age": age.round(1),
            "sex": rng.choice(["male", "female"], n, p=[0.8, 0.2]),
            "ethnicity": rng.choice(
                ["white", "asian", "black", "mixed", "other"], n, p=[0.8, 0.06, 0.05, 0.05, 0.04]
            ),  # fmt: skip
            "sentence_type": rng.choice(["community_order", "suspended_sentence", "licence"], n),
            "index_offence_group": rng.choice(["violence", "theft", "drugs", "other"], n),
            "rosh": rng.choice(["low", "medium"], n),
            "ogrs3_1yr": ogrs * 0.7,
            "ogrs3_2yr": ogrs,
            "ogrs3_missing": rng.random(n) < 0.1,
            "assessment_age_days": rng.integers(1, 300, n).astype(float),
            "needs_missing": rng.random(n) < 0.1,
            "n_previous_offences": n_prev,
            "n_previous_custody": rng.binomial(n_prev, 0.2),
            "age_first_offence": (age - rng.uniform(0, 10, n)).round(1),
            "offences_last_12m": rng.poisson(1, n),
            "pilot_office": treated,
        }
    )
    for need in NEEDS:
        df[f"need_{need}"] = rng.random(n) < 0.4
    df["copas_rate"] = np.log(
        (df["n_previous_offences"] + 1) / (df["age"] - df["age_first_offence"] + 10)
    )
    return df


MATCH_OUTPUTS = ("propensity", "matched", "pairs", "counts", "design_steps", "balance")


def run_matching_scripts(tmp, cohort, **matching):
    """Run scripts/matching.py like the rule does (``matching``: config overrides)."""
    from helpers import run_script

    from mydirection.settings import load_config

    config = load_config(ROOT / "config" / "config.yaml", {"matching": matching, "seed": 5})
    (tmp / "cohort").mkdir(parents=True, exist_ok=True)
    cohort_path = tmp / "cohort" / "cohort.parquet"
    cohort.to_parquet(cohort_path, index=False)
    m = tmp / "matching"
    out = {k: m / f"{k}.parquet" for k in MATCH_OUTPUTS}
    out.update(
        design=m / "design.json",
        fig_love_plot=tmp / "figures" / "love_plot.png",
        fig_ps_overlap=tmp / "figures" / "ps_overlap.png",
        fig_ecdf_worst=tmp / "figures" / "ecdf_worst.png",
        numbers=tmp / "numbers" / "matching.json",
    )
    run_script("matching.py", "matching", {"cohort": cohort_path}, out, config=config,
               log=tmp / "logs" / "matching.log")  # fmt: skip
    return out


def test_pipeline_scripts_on_a_hand_made_cohort(tmp_path):
    import json

    cohort = hand_made_cohort()
    out = run_matching_scripts(tmp_path, cohort, revisions=[])
    prop = pd.read_parquet(out["propensity"])
    assert list(prop.columns) == ["person_id", "treated", "ps", "logit_ps"]
    assert len(prop) == len(cohort)
    matched = pd.read_parquet(out["matched"])
    assert {"distance", "weights", "subclass", *cohort.columns} <= set(matched.columns)
    pairs = pd.read_parquet(out["pairs"])
    assert list(pairs.columns)[:3] == ["treated_id", "comparator_id", "round"]
    assert set(pairs["treated_id"]) <= set(cohort.loc[cohort["treated"], "person_id"])
    assert set(pairs["comparator_id"]) <= set(cohort.loc[~cohort["treated"], "person_id"])
    # exact on sentence type
    st_of = cohort.set_index("person_id")["sentence_type"]
    assert (
        st_of.loc[pairs["treated_id"]].to_numpy() == st_of.loc[pairs["comparator_id"]].to_numpy()
    ).all()
    counts = pd.read_parquet(out["counts"])
    assert list(counts.columns) == ["group", "all", "matched", "unmatched", "discarded"]
    assert list(counts["group"]) == ["treated", "comparator"]
    bal = pd.read_parquet(out["balance"])
    assert "ethnicity_white" in set(bal["covariate"])
    numbers = json.loads(out["numbers"].read_text())["numbers"]
    assert numbers["matching.n_treated_matched"]["value"] == len(pairs)
    assert numbers["matching.max_abs_smd_after"]["value"] == pytest.approx(
        bal["smd_after"].abs().max()
    )
    assert numbers["matching.max_abs_smd_before"]["value"] > 0.1  # confounded by design
    assert all(e["label"] for e in numbers.values())
    for key in ("fig_love_plot", "fig_ps_overlap", "fig_ecdf_worst"):
        assert out[key].read_bytes()[:4] == b"\x89PNG"
    log = (tmp_path / "logs" / "matching.log").read_text()
    assert not any(pid in log for pid in cohort["person_id"])  # counts only, no identifiers


def test_pipeline_scripts_are_deterministic(tmp_path):
    cohort = hand_made_cohort(n=200, seed=3)
    a = run_matching_scripts(tmp_path / "a", cohort, order="random")
    b = run_matching_scripts(tmp_path / "b", cohort, order="random")
    for key, path in a.items():
        if key != "numbers":  # numbers carry their input paths
            assert path.read_bytes() == b[key].read_bytes(), key


def test_pipeline_script_bad_input_is_one_clear_message(tmp_path):
    cohort = hand_made_cohort(n=100).drop(columns=["copas_rate"])
    with pytest.raises(SystemExit) as exc:
        run_matching_scripts(tmp_path, cohort)
    assert exc.value.code == 1
    log = (tmp_path / "logs" / "matching.log").read_text()
    assert (
        "cohort.parquet (table cohort, written by rule cohort): column copas_rate: missing" in log
    )
    assert "Traceback" not in log
    assert not (tmp_path / "matching" / "propensity.parquet").exists()


def test_matching_rules_are_outcome_blind():
    text = (ROOT / "workflow" / "rules" / "matching.smk").read_text()
    inputs = re.findall(r'^\s+\w+="(results/[^"]+)"', text, flags=re.M)
    sources = {p for p in inputs if "/matching/" not in p and "figures" not in p
               and "numbers" not in p}  # fmt: skip
    assert sources == {"results/cohort/cohort.parquet"}
    assert "outcome" not in text.replace("Outcome-blind", "").replace("outcome file", "")


def test_mahalanobis_coordinates_give_the_textbook_distance():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 2.0]])
    t = rng.random(60) < 0.4
    pooled = (np.cov(X[t], rowvar=False) + np.cov(X[~t], rowvar=False)) / 2
    inv = np.linalg.inv(pooled)
    z = mt.mahalanobis_transform(X, t)
    for i, j in [(0, 1), (5, 40), (17, 59)]:
        d = X[i] - X[j]
        assert np.sum((z[i] - z[j]) ** 2) == pytest.approx(d @ inv @ d, rel=1e-9)


def test_mahalanobis_match_picks_closest_on_covariates_not_on_the_score():
    # control 2 has the closer propensity score, control 3 the closer covariates
    df = pd.DataFrame({"treated": [1, 0, 0, 0], "a": [0.0, 5.0, 3.0, 0.1], "b": [0.0, 1, 2, 0]})
    ps = pd.Series([0.5, 0.2, 0.49, 0.3])
    m = mt.match(df, "treated", ["a", "b"], propensity=ps, distance="mahalanobis")
    assert m.pairs["control"].tolist() == [3]
    m2 = mt.match(df, "treated", ["a", "b"], propensity=ps, distance="ps")
    assert m2.pairs["control"].tolist() == [2]


def test_engine_equals_brute_force_for_every_combination_on_tied_data():
    """Exhaustive grid of options on one data set full of exact ties (hypothesis samples
    the same space at random on many data sets above)."""
    import itertools

    rng = np.random.default_rng(2024)
    n = 36
    treated = rng.random(n) < 0.35
    x = rng.integers(-3, 4, n) / 4  # 7 distinct values: many ties
    strata = rng.integers(0, 2, n)
    coords = rng.integers(-2, 3, (n, 2)) / 2
    grid = itertools.product(
        [None, coords], [1, 2, 3], [False, True], [math.inf, 0.0, 0.3, 1.0], mt.ORDERS,
        [np.zeros(n, int), strata],
    )  # fmt: skip
    n_checked = 0
    for c, ratio, replace, width, order, s in grid:
        kw = dict(ratio=ratio, replace=replace, width=width, order=order, seed=9, strata=s)
        expected = brute_match(treated, x, eligible=np.ones(n, bool), coords=c, **kw)
        got = engine_links(treated=treated, distance=x, coords=c, **kw)
        assert got == expected, kw
        n_checked += 1
    assert n_checked == 2 * 3 * 2 * 4 * 4 * 2


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(-1e3, 1e3, allow_subnormal=False), st.integers(0, 5), st.booleans()),
        min_size=4,
        max_size=30,
    )
)
def test_weighted_means_and_variances_equal_the_direct_formulas(rows):
    x = np.array([r[0] for r in rows])
    w = np.array([r[1] for r in rows], dtype=float)
    t = np.array([r[2] for r in rows])
    (mt_, mc_), (vt_, vc_) = mt.balance._moments(x[:, None], np.vstack([w * t, w * ~t]))
    for g, m_, v_ in ((t, mt_[0], vt_[0]), (~t, mc_[0], vc_[0])):
        wg, xg = w[g], x[g]
        W = wg.sum()
        if W == 0:
            assert math.isnan(m_)
            continue
        mean = (wg * xg).sum() / W
        assert m_ == pytest.approx(mean, rel=1e-9, abs=1e-9)
        denom = W - (wg**2).sum() / W
        if denom > 0:
            var = (wg * (xg - mean) ** 2).sum() / denom
            assert v_ == pytest.approx(var, rel=1e-6, abs=1e-6)


def test_quasi_separation_stops_like_glm_with_a_warning():
    """A category level with no treated person: no finite MLE for its coefficient.

    Like R's glm, the fit stops when the deviance settles: those comparators get scores of
    practically 0, and the other units' scores equal the MLE fitted without them (the
    limit of the likelihood), so matching goes on.
    """
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "group": rng.choice(["a", "b", "c"], n)})
    df["treated"] = (rng.random(n) < 1 / (1 + np.exp(-(df.x - 0.5)))).astype(int)
    df.loc[df.group == "c", "treated"] = 0  # level c: comparators only
    with pytest.warns(RuntimeWarning, match="numerically 0 or 1"):
        ps = mt.fit_propensity(df, "treated", ["x", "group"], categorical=["group"])
    assert (ps.loc[df.group == "c", "ps"] < 1e-6).all()
    rest = df[df.group != "c"]
    design = sm.add_constant(
        pd.DataFrame({"x": rest.x, "group_b": (rest.group == "b").astype(float)})
    )
    ref = sm.Logit(rest.treated.astype(float), design).fit(disp=0)
    np.testing.assert_allclose(ps.loc[rest.index, "ps"], ref.predict(), atol=1e-6)
    m = mt.match(df, "treated", ["x", "group"], categorical=["group"], distance="ps")
    assert m.counts.set_index("group").loc["treated", "matched"] == df.treated.sum()


def test_exact_strata_are_the_sorted_groups_of_the_exact_columns():
    """Strata codes number the distinct (exact columns) rows in sorted order, missing values
    as one level: what a sorted pandas groupby's ngroup gives, on random small frames."""
    from mydirection.matching.engine import _strata_codes

    rng = np.random.default_rng(7)
    for _ in range(100):
        n = int(rng.integers(1, 40))
        data = pd.DataFrame(
            {
                "sentence": rng.choice(["community", "Suspended", "", None], n),
                "band": pd.array(rng.choice([1, 2, None], n), dtype="Int64"),
                "office": rng.choice(["north", "south"], n),
            }
        )
        for exact in (["sentence"], ["band"], ["sentence", "band"], ["office", "sentence", "band"]):
            keys = data[exact].astype("string").fillna("(missing)")
            expected = keys.groupby(exact, sort=True, dropna=False).ngroup().to_numpy()
            np.testing.assert_array_equal(_strata_codes(data, exact), expected)
