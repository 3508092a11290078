"""mydirection.normal gives exactly what scipy.stats gives (bits, sign of zero, NaN, type)."""

import numpy as np
import pytest
from scipy import stats

from mydirection import normal as N

RNG = np.random.default_rng(1)
Q = np.concatenate([RNG.random(5000), [0, 1, 0.5, 0.025, 0.975, 0.995, np.nan, -0.1, 1.1]])
X = np.concatenate([RNG.normal(size=5000) * 4, [0, -0.0, 8.5, np.inf, -np.inf, np.nan]])


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and a.tobytes() == b.tobytes()  # bits: sign of zero and NaN included
    )


@pytest.mark.parametrize(
    ("ours", "theirs", "values"),
    [
        (N.norm_ppf, stats.norm.ppf, Q),
        (N.norm_isf, stats.norm.isf, Q),
        (N.norm_sf, stats.norm.sf, X),
        (N.norm_cdf, stats.norm.cdf, X),
    ],
)
def test_normal_functions_equal_scipy_stats(ours, theirs, values):
    assert same(ours(values), theirs(values))
    for v in values[-9:]:
        assert same(ours(float(v)), theirs(float(v)))
        assert type(ours(float(v))) is type(theirs(float(v)))


@pytest.mark.parametrize("df", [-1, 0, 0.5, 1, 2, 7, 30, 1e6, np.inf, np.nan])
def test_t_functions_equal_scipy_stats(df):
    assert same(N.t_ppf(Q, df), stats.t.ppf(Q, df))
    assert same(N.t_sf(X, df), stats.t.sf(X, df))
    assert same(N.t_ppf(0.975, df), stats.t.ppf(0.975, df))
    assert type(N.t_ppf(0.975, df)) is type(stats.t.ppf(0.975, df))
    assert same(N.t_sf(1.5, df), stats.t.sf(1.5, df))
