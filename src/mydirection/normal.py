"""Normal and Student t tails and quantiles from :mod:`scipy.special`, without
:mod:`scipy.stats` (about 0.5-1 s to import, paid by every job that only needs a z).

Each function returns exactly what its ``scipy.stats`` counterpart returns (same bits,
same sign of zero, same NaN; ``tests/test_normal.py`` checks them against scipy.stats): scipy.stats
computes these through the same special functions (``norm._ppf`` is ``ndtri``, ``t._sf``
is ``stdtr(df, -x)``), then ``* scale + loc`` with scale 1 and loc 0.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri, stdtr, stdtrit


def norm_cdf(x):
    """``scipy.stats.norm.cdf(x)``."""
    return ndtr(x)


def norm_sf(x):
    """``scipy.stats.norm.sf(x)``."""
    return ndtr(np.negative(x))


def _nan(out):
    """NaN as scipy.stats writes it (its positive ``badvalue``, the same bytes on disk)."""
    out = np.where(np.isnan(out), np.nan, out)
    return out[()] if out.ndim == 0 else out


def norm_ppf(q):
    """``scipy.stats.norm.ppf(q)``."""
    return _nan(ndtri(q) * 1.0 + 0.0)


def norm_isf(q):
    """``scipy.stats.norm.isf(q)``."""
    return _nan(np.negative(ndtri(q)) * 1.0 + 0.0)


def t_sf(x, df):
    """``scipy.stats.t.sf(x, df)``."""
    return stdtr(df, np.negative(x))


def t_ppf(q, df):
    """``scipy.stats.t.ppf(q, df)`` (``stdtrit`` alone gives +inf at q = 0, and a value for
    df <= 0; scipy.stats gives -inf and NaN)."""
    q, df = np.asarray(q, dtype=float), np.asarray(df, dtype=float)
    out = np.where((q > 0) & (q < 1), stdtrit(df, q) * 1.0 + 0.0, np.nan)
    out = np.where(q == 0, -np.inf, out)
    out = np.where(q == 1, np.inf, out)
    return _nan(np.where(df > 0, out, np.nan))


__all__ = ["norm_cdf", "norm_isf", "norm_ppf", "norm_sf", "t_ppf", "t_sf"]
