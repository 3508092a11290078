"""Propensity scores, greedy nearest-neighbour matching and inverse-probability weighting.

The semantics follow MatchIt's nearest-neighbour matching (``method = "nearest"``) and
cobalt's balance statistics for the ATT, so results can be compared with them.

    from mydirection.matching import match
    m = match(cohort, treatment="treated", covariates=["age", "sex", ...],
              categorical=["sex"], distance="logit_ps", caliper=0.2, exact=["sentence_type"])
    m.data      # matched rows (index preserved) + distance, weights, subclass
    m.pairs     # one row per (treated, control) link: treated, control, round, subclass
    m.balance   # one row per covariate (categoricals expanded to their levels)
    m.counts    # all / matched / unmatched / discarded, for treated and control

Conventions (each is checked by the tests in ``tests/test_matching.py``):

- **Propensity score**: unpenalised logistic regression of the treatment on an intercept
  and the covariates, categorical covariates expanded to indicators with the first level
  (sorted) as reference; fitted by Newton-Raphson, which gives the same estimates as
  statsmodels' ``Logit`` (use :func:`propensity_model` for the statsmodels results object
  and its ``summary()``). ``ps`` is the fitted probability, ``logit_ps`` the linear predictor.
- **Distance**: ``"ps"`` or ``"logit_ps"``: the absolute difference of that score.
  ``"mahalanobis"``: Mahalanobis distance on the covariates (indicator-expanded) with the
  pooled within-group covariance matrix (as MatchIt); ``logit_ps`` is then still used
  for the matching order and the caliper, and is what the ``distance`` column holds.
- **Order** (MatchIt's ``m.order``): treated units are matched in descending
  (``"largest"``) or ascending (``"smallest"``) order of the distance column, in data
  order (``"data"``), or in a random order drawn with ``numpy.random.default_rng(seed)``.
  Ties in the order keep data order (stable sort).
- **Closest control and ties**: the closest still-available control; among controls at
  exactly the same distance the one that comes first in the data wins (row position is
  the stable tie-breaking key).
- **Caliper**: in standard deviations of the distance measure (``logit_ps`` for
  Mahalanobis), SD (n - 1 denominator) over all units of ``data``; a pair is allowed
  when ``|difference| <= caliper * SD``. A treated unit with no available control inside
  the caliper stays unmatched.
- **Ratio**: without replacement matching proceeds in rounds (every treated unit gets its
  first control before any gets its second); a treated unit that found no control in a
  round gets none in later rounds. With replacement, each treated unit gets its ``ratio``
  closest controls (fewer if fewer lie inside the caliper).
- **Exact**: units are matched only within strata of the ``exact`` columns.
- **Discard** (MatchIt's ``discard``): ``"treated"``, ``"control"`` or ``"both"`` drop
  units whose propensity score lies outside the range of the other group before matching.
- **Weights (ATT)**: matched treated 1; a control gets the sum of ``1/k_i`` over the
  treated units ``i`` it serves (``k_i`` = controls matched to ``i``), then control weights
  are rescaled to sum to the number of matched controls. Unmatched units have weight 0
  and are not in ``data``.
- **Subclass**: matched sets are numbered 1, 2, ... in data order of their treated unit.
  Without replacement every matched unit is in exactly one set. With replacement a
  control may serve several sets; it appears once in ``data`` (with its summed weight)
  and its ``subclass`` is the lowest set it belongs to -- use ``pairs`` (which carries
  every link with its ``subclass``) to recover all sets.
- **Balance** (cobalt, ATT): see :func:`balance_table`.

Speed: on a 1-D distance the controls of each exact stratum are sorted once and each
treated unit's position found by binary search; the closest still-available control on
either side is found through union-find "next available" pointers over used-up groups
of equal distance, so no treated x control matrix is built (O((n_t + n_c) log n_c)).
Mahalanobis matching computes distances for blocks of treated units (memory-bounded,
O(n_t x n_c) time per stratum). ``benchmarks/bench_matching.py`` times 1,000 treated
against up to 1,000,000 controls. On a shared machine, run with one BLAS thread
(``OPENBLAS_NUM_THREADS=1``, as Snakemake does for a one-thread rule).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DISTANCES = ("ps", "logit_ps", "mahalanobis")
ORDERS = ("largest", "smallest", "data", "random")
DISCARDS = ("none", "treated", "control", "both")
ADDED_COLUMNS = ("distance", "weights", "subclass")

# ---------------------------------------------------------------------------------------
# Covariates: checking and expanding
# ---------------------------------------------------------------------------------------


def _examples(mask: np.ndarray) -> str:
    """Up to five example row numbers (0-based positions) where ``mask`` is True."""
    rows = np.flatnonzero(mask)[:5]
    return ", ".join(str(int(r)) for r in rows)


def treatment_indicator(data: pd.DataFrame, treatment: str) -> np.ndarray:
    """The treatment column as a boolean array; it must be bool or 0/1 without gaps."""
    if treatment not in data.columns:
        raise ValueError(f"column {treatment}: not found; name the treatment column")
    col = data[treatment]
    missing = col.isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"column {treatment}: {int(missing.sum())} rows missing (e.g. rows "
            f"{_examples(missing)}); every unit must be treated (1/True) or control (0/False)"
        )
    values = col.to_numpy()
    if values.dtype == bool:
        return values.astype(bool)
    try:
        numeric = values.astype(float)
    except (TypeError, ValueError):
        numeric = np.full(len(values), np.nan)
    bad = ~np.isin(numeric, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"column {treatment}: {int(bad.sum())} rows are neither 0/1 nor True/False "
            f"(e.g. rows {_examples(bad)}); recode the treatment as boolean"
        )
    return numeric == 1.0


def categorical_columns(data: pd.DataFrame, covariates, categorical=None) -> list[str]:
    """Covariates treated as categorical: those listed plus every non-numeric, non-bool one."""
    listed = set(categorical or ())
    out = []
    for c in covariates:
        dtype = data[c].dtype
        if c in listed or not (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        ):
            out.append(c)
    return out


def _level_codes(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes into the sorted text levels of a categorical column (missing -> "(missing)")."""
    codes, uniques = pd.factorize(col, sort=False)
    text = [str(u) for u in uniques]
    if (codes < 0).any():
        text.append("(missing)")
        codes = np.where(codes < 0, len(text) - 1, codes)
    levels = sorted(set(text))
    remap = np.array([levels.index(v) for v in text], dtype=np.int64)
    return (remap[codes] if len(text) else codes), levels


def _expand(data, covariates, categorical, drop_first):
    """Covariate matrix (rows x columns, float64), column names and (variable, level)."""
    covariates = list(covariates)
    absent = [c for c in covariates if c not in data.columns]
    if absent:
        raise ValueError(f"column {absent[0]}: not found; covariates must be columns of the data")
    cats = set(categorical_columns(data, covariates, categorical))
    parts = []  # (name, variable, level, values or (codes, k))
    for c in covariates:
        col = data[c]
        if c in cats:
            codes, levels = _level_codes(col)
            for k, level in enumerate(levels):
                if drop_first and k == 0:
                    continue
                parts.append((f"{c}_{level}", c, level, (codes, k)))
        else:
            missing = col.isna().to_numpy()
            if missing.any():
                raise ValueError(
                    f"column {c}: {int(missing.sum())} rows missing (e.g. rows "
                    f"{_examples(missing)}); impute them or add a missingness indicator "
                    "before matching"
                )
            parts.append((c, c, None, col.to_numpy(dtype=float)))
    X = np.empty((len(data), len(parts)))
    for j, (_, _, _, values) in enumerate(parts):
        if isinstance(values, tuple):
            np.equal(values[0], values[1], out=X[:, j], casting="unsafe")
        else:
            X[:, j] = values
    names = [p[0] for p in parts]
    return X, names, {p[0]: (p[1], p[2]) for p in parts}


def expand_covariates(
    data: pd.DataFrame, covariates, categorical=None, *, drop_first: bool = False
) -> pd.DataFrame:
    """Covariates as a float frame: numeric/bool as is, categoricals as 0/1 indicators.

    Indicator columns are named ``<covariate>_<level>``, levels sorted as text, a missing
    categorical value becoming the level ``(missing)``. With ``drop_first`` the first level
    is left out (the reference category of the propensity model). Missing numeric values
    are an error: impute them or add a missingness indicator upstream.
    The frame's ``attrs["variables"]`` maps each column to ``(covariate, level)``.
    """
    X, names, variables = _expand(data, covariates, categorical, drop_first)
    out = pd.DataFrame(X, columns=names, index=data.index)
    out.attrs["variables"] = variables
    return out


# ---------------------------------------------------------------------------------------
# Propensity score
# ---------------------------------------------------------------------------------------


def _design(data, covariates, categorical) -> tuple[np.ndarray, list[str]]:
    """Intercept plus indicator-expanded covariates (first level of each categorical dropped)."""
    X, names, _ = _expand(data, covariates, categorical, drop_first=True)
    design = np.empty((X.shape[0], X.shape[1] + 1))
    design[:, 0] = 1.0
    design[:, 1:] = X
    return design, ["const", *names]


def _expit(eta: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-eta))


_CHUNK_ROWS = 32_768  # rows per block: temporaries stay in cache (memory-bound machines)


def _logit_newton(X: np.ndarray, y: np.ndarray, *, tol=1e-10, max_iter=100) -> np.ndarray:
    """Maximum-likelihood logistic regression by Newton-Raphson on the design ``X``.

    Score and Hessian are accumulated over row blocks, so temporaries stay small. The
    fixed point (score = 0) is the maximum-likelihood estimate, the same as statsmodels'
    ``Logit`` (checked in the tests).

    Quasi-separation (e.g. a category level with no treated person) has no finite MLE: the
    coefficient drifts to -inf while the deviance settles. As R's ``glm`` does (and so
    MatchIt), the fit then stops once the deviance changes by less than 1e-8 relative,
    with a warning that fitted probabilities of 0 or 1 occurred; those units get scores of
    practically 0 (or 1) and are never close to the other group. Complete separation (every
    unit predicted exactly, so no overlap at all) is an error.
    """
    n, k = X.shape
    beta = np.zeros(k)
    mean = y.mean()
    beta[0] = math.log(mean / (1 - mean))
    deviance = np.inf
    for _ in range(max_iter):
        grad = np.zeros(k)
        hess = np.zeros((k, k))
        dev, extreme = 0.0, 0
        for lo in range(0, n, _CHUNK_ROWS):
            D = X[lo : lo + _CHUNK_ROWS]
            yb = y[lo : lo + _CHUNK_ROWS]
            eta = D @ beta
            p = _expit(eta)
            grad += (yb - p) @ D
            Dw = D * np.sqrt(p * (1 - p))[:, None]
            hess += Dw.T @ Dw
            dev += 2.0 * float(np.sum(np.logaddexp(0.0, eta) - yb * eta))
            extreme += int(np.sum((p < 1e-8) | (p > 1 - 1e-8)))
        if extreme == n:
            break
        if extreme and abs(deviance - dev) < 1e-8 * (abs(dev) + 0.1):
            warnings.warn(
                f"propensity model: fitted probabilities numerically 0 or 1 for {extreme} "
                "units (quasi-separation, e.g. a category with no treated or no comparator "
                "people); as in R's glm, their scores are left at the limit",
                RuntimeWarning,
                stacklevel=3,
            )
            return beta
        deviance = dev
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))):
            return beta
    raise ValueError(
        "the propensity model did not converge (perfect separation: the covariates predict "
        "treatment exactly, so there is no overlap): remove covariates that predict "
        "treatment exactly, or merge sparse categories"
    )


def _fit_matrix(X: np.ndarray, keep, t: np.ndarray, index) -> pd.DataFrame:
    """Fit the propensity model on intercept + ``X[:, keep]``; ps and logit_ps per row."""
    keep = np.asarray(keep, dtype=bool)
    design = np.empty((X.shape[0], int(keep.sum()) + 1))
    design[:, 0] = 1.0
    design[:, 1:] = X[:, keep]
    gram = design.T @ design
    if np.linalg.matrix_rank(gram) < design.shape[1]:
        raise ValueError(
            "the covariates are collinear (a column is a combination of others, or a "
            "category is empty): drop the redundant covariate"
        )
    beta = _logit_newton(design, t.astype(float))
    eta = design @ beta
    return pd.DataFrame({"ps": _expit(eta), "logit_ps": eta}, index=index)


def fit_propensity(
    data: pd.DataFrame, treatment: str, covariates, categorical=None
) -> pd.DataFrame:
    """Propensity scores: a frame (index of ``data``) with ``ps`` and ``logit_ps``."""
    t = treatment_indicator(data, treatment)
    if t.all() or not t.any():
        raise ValueError(f"column {treatment}: needs both treated and control units")
    X, names, variables = _expand(data, covariates, categorical, drop_first=False)
    return _fit_matrix(X, ~_first_levels(names, variables), t, data.index)


def propensity_model(data: pd.DataFrame, treatment: str, covariates, categorical=None):
    """The same propensity model as a fitted statsmodels ``Logit`` (for ``.summary()``)."""
    import statsmodels.api as sm

    X, names = _design(data, covariates, categorical)
    y = treatment_indicator(data, treatment).astype(float)
    return sm.Logit(y, pd.DataFrame(X, columns=names, index=data.index)).fit(disp=0)


def n_outside_support(ps, treated) -> int:
    """Treated units whose propensity score lies outside the comparators' range."""
    ps = np.asarray(ps, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    if treated.all() or not treated.any():
        return int(treated.sum())
    lo, hi = ps[~treated].min(), ps[~treated].max()
    pt = ps[treated]
    return int(((pt < lo) | (pt > hi)).sum())


# ---------------------------------------------------------------------------------------
# Matching engines (positions are row positions; smaller position wins ties)
# ---------------------------------------------------------------------------------------


def treated_order(distance_t: np.ndarray, order: str, seed: int = 0) -> np.ndarray:
    """The sequence (positions among treated units) in which treated units are matched."""
    n = len(distance_t)
    if order == "largest":
        return np.argsort(-np.asarray(distance_t, dtype=float), kind="stable")
    if order == "smallest":
        return np.argsort(np.asarray(distance_t, dtype=float), kind="stable")
    if order == "data":
        return np.arange(n)
    if order == "random":
        return np.random.default_rng(seed).permutation(n)
    raise ValueError(f"order {order!r}: use one of {ORDERS}")


class _Pool1D:
    """Controls of one stratum on a 1-D distance, sorted once.

    Equal distance values form a group whose members are kept in row-position order, so
    the first still-available member of a group is the tie-breaking winner. Without
    replacement, "next available group to the left/right" is a union-find over used-up
    groups (a dict, so memory grows only with the number of matches).
    """

    def __init__(self, values: np.ndarray, positions: np.ndarray):
        idx = np.argsort(values)
        sv = values[idx]
        if np.any(sv[1:] == sv[:-1]):  # ties: order them by row position
            idx = np.lexsort((positions, values))
            sv = values[idx]
        self.sorted_pos = positions[idx]
        n = len(sv)
        starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]]) if n else np.array([], int)
        self.u = sv[starts]
        self.start = starts
        self.end = np.r_[starts[1:], n].astype(np.int64)
        self.next = starts.astype(np.int64).copy()  # next unused member of each group
        self.m = len(starts)
        self._left: dict[int, int] = {}
        self._right: dict[int, int] = {}

    def insertion(self, x: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.u, x, side="left")

    def _find(self, parent: dict[int, int], g: int) -> int:
        root = g
        while root in parent:
            root = parent[root]
        while g in parent and parent[g] != root:  # path compression
            parent[g], g = root, parent[g]
        return root

    def left(self, g: int) -> int:
        """Largest available group <= g, or -1."""
        return -1 if g < 0 else self._find(self._left, g)

    def right(self, g: int) -> int:
        """Smallest available group >= g, or m."""
        return self.m if g >= self.m else self._find(self._right, g)

    def take(self, g: int) -> int:
        """Use the first available member of group g; return its row position."""
        k = self.next[g]
        self.next[g] = k + 1
        if k + 1 >= self.end[g]:
            self._left[g] = g - 1
            self._right[g] = g + 1
        return int(self.sorted_pos[k])

    def closest_available(self, x: float, ins: int, width: float) -> int | None:
        """Group of the closest available control (ties: smaller position), or None."""
        best = None  # (distance, position, group)
        g = self.left(ins - 1)
        if g >= 0:
            d = abs(x - self.u[g])
            cand = (d, self.sorted_pos[self.next[g]], g)
            g2 = self.left(g - 1)
            while g2 >= 0 and abs(x - self.u[g2]) == d:  # rounding can tie distinct values
                cand = min(cand, (d, self.sorted_pos[self.next[g2]], g2))
                g2 = self.left(g2 - 1)
            best = cand
        g = self.right(ins)
        if g < self.m:
            d = abs(x - self.u[g])
            cand = (d, self.sorted_pos[self.next[g]], g)
            g2 = self.right(g + 1)
            while g2 < self.m and abs(x - self.u[g2]) == d:
                cand = min(cand, (d, self.sorted_pos[self.next[g2]], g2))
                g2 = self.right(g2 + 1)
            if best is None or cand[:2] < best[:2]:
                best = cand
        if best is None or not best[0] <= width:
            return None
        return best[2]

    def k_nearest(self, x: float, ins: int, k: int, width: float) -> list[int]:
        """Positions of the k closest controls (with replacement), ties by position."""
        found: list[tuple[float, int]] = []
        gl, gr = ins - 1, ins
        threshold = math.inf
        while True:
            dl = abs(x - self.u[gl]) if gl >= 0 else math.inf
            dr = abs(x - self.u[gr]) if gr < self.m else math.inf
            if dl <= dr:
                d, g = dl, gl
                gl -= 1
            else:
                d, g = dr, gr
                gr += 1
            if d == math.inf or not d <= width or d > threshold:
                break
            stop = min(self.end[g], self.start[g] + k)
            found.extend((d, int(p)) for p in self.sorted_pos[self.start[g] : stop])
            if len(found) >= k:
                threshold = d
        found.sort()
        return [p for _, p in found[:k]]


def _match_1d(xt, pos_t, xc, pos_c, seq, ratio, replace, width):
    """Greedy matching of one stratum on a 1-D distance. Returns (t_pos, c_pos, round)."""
    pool = _Pool1D(xc, pos_c)
    ins = pool.insertion(xt)
    links: list[tuple[int, int, int]] = []
    if pool.m == 0:
        return links
    if replace:
        for i in seq:
            for r, c in enumerate(pool.k_nearest(xt[i], int(ins[i]), ratio, width), start=1):
                links.append((int(pos_t[i]), c, r))
        return links
    active = list(seq)
    for r in range(1, ratio + 1):
        still = []
        for i in active:
            g = pool.closest_available(xt[i], int(ins[i]), width)
            if g is None:
                continue
            links.append((int(pos_t[i]), pool.take(g), r))
            still.append(i)
        active = still
        if not active:
            break
    return links


def mahalanobis_transform(X: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Coordinates in which Euclidean distance is the Mahalanobis distance.

    The covariance is the pooled within-group covariance (average of the treated and
    control covariance matrices, as MatchIt); directions with no variance are dropped.
    """
    X = np.asarray(X, dtype=float)
    covs = [np.cov(X[g], rowvar=False, ddof=1) for g in (treated, ~treated) if g.sum() > 1]
    S = np.atleast_2d(sum(covs) / len(covs)) if covs else np.eye(X.shape[1])
    vals, vecs = np.linalg.eigh(S)
    keep = vals > 1e-10 * max(vals.max(initial=0.0), 1e-300)
    return (X - X.mean(axis=0)) @ (vecs[:, keep] / np.sqrt(vals[keep]))


def _sq_dist_rows(zt: np.ndarray, zc: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, summed dimension by dimension (a fixed order)."""
    out = np.zeros((zt.shape[0], zc.shape[0]))
    for j in range(zt.shape[1]):
        diff = zt[:, j, None] - zc[None, :, j]
        out += diff * diff
    return out


def _match_mahalanobis(zt, lt, pos_t, zc, lc, pos_c, seq, ratio, replace, width, chunk_cells):
    """Greedy matching of one stratum on Mahalanobis distance (chunked over treated units).

    Controls are in position order, so ``argmin`` (first minimum) breaks ties by position.
    """
    links: list[tuple[int, int, int]] = []
    nc = len(pos_c)
    if nc == 0:
        return links
    chunk = max(1, chunk_cells // nc)
    alive = np.ones(nc, dtype=bool)

    def rows(ids):
        d = _sq_dist_rows(zt[ids], zc)
        if math.isfinite(width):
            d[np.abs(lt[ids][:, None] - lc[None, :]) > width] = np.inf
        return d

    if replace:
        for s in range(0, len(seq), chunk):
            ids = np.asarray(seq[s : s + chunk])
            d = rows(ids)
            for i, row in zip(ids, d, strict=True):
                ok = np.flatnonzero(np.isfinite(row))
                if len(ok) > ratio:
                    kth = np.partition(row[ok], ratio - 1)[ratio - 1]
                    ok = ok[row[ok] <= kth]
                ok = ok[np.lexsort((ok, row[ok]))][:ratio]
                links.extend((int(pos_t[i]), int(pos_c[c]), r) for r, c in enumerate(ok, 1))
        return links
    active = list(seq)
    for r in range(1, ratio + 1):
        still = []
        for s in range(0, len(active), chunk):
            ids = np.asarray(active[s : s + chunk])
            d = rows(ids)
            for i, row in zip(ids, d, strict=True):
                masked = np.where(alive, row, np.inf)
                c = int(np.argmin(masked))
                if not np.isfinite(masked[c]):
                    continue
                alive[c] = False
                links.append((int(pos_t[i]), int(pos_c[c]), r))
                still.append(i)
        active = still
        if not active:
            break
    return links


def _strata_codes(data: pd.DataFrame, exact) -> np.ndarray:
    if not exact:
        return np.zeros(len(data), dtype=np.int64)
    for c in exact:
        if c not in data.columns:
            raise ValueError(f"column {c}: not found; exact-matching columns must be in the data")
    keys = data[list(exact)].astype("string").fillna("(missing)")
    return keys.groupby(list(exact), sort=True, dropna=False).ngroup().to_numpy()


def nearest_neighbour(
    treated: np.ndarray,
    distance: np.ndarray,
    *,
    ratio: int = 1,
    replace: bool = False,
    width: float = math.inf,
    order: str = "largest",
    seed: int = 0,
    strata: np.ndarray | None = None,
    eligible: np.ndarray | None = None,
    coords: np.ndarray | None = None,
    chunk_cells: int = 4_000_000,
) -> pd.DataFrame:
    """The matching engine on arrays: ``treated`` (bool), the 1-D ``distance`` used for
    the order and the caliper, optional ``coords`` (Mahalanobis coordinates: then the
    closest control is judged on them), ``strata`` codes and ``eligible`` (not discarded).

    Returns links as a frame of row positions: ``treated``, ``control``, ``round``.
    """
    treated = np.asarray(treated, dtype=bool)
    distance = np.asarray(distance, dtype=float)
    n = len(treated)
    strata = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)
    eligible = np.ones(n, dtype=bool) if eligible is None else np.asarray(eligible, bool)
    pos_t_all = np.flatnonzero(treated)
    seq_all = pos_t_all[treated_order(distance[pos_t_all], order, seed)]
    seq_all = seq_all[eligible[seq_all]]
    links: list[tuple[int, int, int]] = []
    ctrl = ~treated & eligible
    order_c = np.argsort(strata[ctrl], kind="stable")
    pos_c_all = np.flatnonzero(ctrl)[order_c]
    sc = strata[pos_c_all]
    seq_strata = strata[seq_all]
    for s in np.unique(seq_strata):
        seq_pos = seq_all[seq_strata == s]  # treated positions, in matching order
        lo, hi = np.searchsorted(sc, s, "left"), np.searchsorted(sc, s, "right")
        pos_c = pos_c_all[lo:hi]  # ascending positions
        pos_t = np.sort(seq_pos)
        seq = np.searchsorted(pos_t, seq_pos)
        if coords is None:
            links += _match_1d(
                distance[pos_t], pos_t, distance[pos_c], pos_c, seq, ratio, replace, width
            )
        else:
            links += _match_mahalanobis(
                coords[pos_t], distance[pos_t], pos_t, coords[pos_c], distance[pos_c],
                pos_c, list(seq), ratio, replace, width, chunk_cells,
            )  # fmt: skip
    out = pd.DataFrame(links, columns=["treated", "control", "round"], dtype=np.int64)
    return out.sort_values(["treated", "round"], kind="stable").reset_index(drop=True)


def matching_weights(links: pd.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """ATT weights and subclass (0 = none) per row position, from position links."""
    weights = np.zeros(n)
    subclass = np.zeros(n, dtype=np.int64)
    if links.empty:
        return weights, subclass
    t = links["treated"].to_numpy()
    c = links["control"].to_numpy()
    k = pd.Series(t).map(pd.Series(t).value_counts()).to_numpy()
    weights[np.unique(t)] = 1.0
    np.add.at(weights, c, 1.0 / k)
    cu = np.unique(c)
    weights[cu] *= len(cu) / weights[cu].sum()
    set_of = {p: i + 1 for i, p in enumerate(np.unique(t))}
    sets = np.array([set_of[p] for p in t])
    subclass[np.unique(t)] = np.arange(1, len(set_of) + 1)
    first = pd.Series(sets).groupby(c).min()
    subclass[first.index.to_numpy()] = first.to_numpy()
    return weights, subclass


# ---------------------------------------------------------------------------------------
# Balance
# ---------------------------------------------------------------------------------------


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
    below = np.searchsorted(g, xc, side="left")  # number of grid values < x
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


def _balance(X, names, variables, t, weights) -> pd.DataFrame:
    """The balance table from an expanded covariate matrix (see :func:`balance_table`)."""
    binary = np.all((X == 0) | (X == 1), axis=0)
    mt0, mc0, vt0, vc0, vr0, ks0 = _group_stats(X, binary, t, np.ones(len(t)))
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


def balance_verdict(
    balance: pd.DataFrame, smd_threshold: float = 0.1, var_ratio_bounds=(0.5, 2)
) -> BalanceVerdict:
    """Balance is achieved when every |SMD| after adjustment is <= ``smd_threshold`` and
    every variance ratio after adjustment (continuous covariates) lies within the bounds.
    A missing (NaN) statistic after adjustment counts as a failure."""
    lo, hi = (float(b) for b in var_ratio_bounds)
    abs_after = balance["smd_after"].abs()
    abs_before = balance["smd_before"].abs()
    smd_fail = balance.loc[~(abs_after <= smd_threshold), "covariate"].tolist()
    cont = balance["type"] == "continuous"
    vr = balance["var_ratio_after"]
    vr_fail = balance.loc[cont & ~((vr >= lo) & (vr <= hi)), "covariate"].tolist()
    ranked = abs_after.fillna(np.inf)
    worst = (
        str(balance["covariate"].iloc[int(np.argmax(ranked.to_numpy()))]) if len(balance) else ""
    )
    return BalanceVerdict(
        ok=not smd_fail and not vr_fail,
        max_abs_smd_after=float(abs_after.max()) if len(balance) else math.nan,
        max_abs_smd_before=float(abs_before.max()) if len(balance) else math.nan,
        worst_covariate=worst,
        smd_failures=smd_fail,
        var_ratio_failures=vr_fail,
        smd_threshold=float(smd_threshold),
        var_ratio_bounds=(lo, hi),
    )


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


@dataclass
class MatchResult:
    """The result of :func:`match` (``method="nearest"``) or :func:`ipw` (``method="ipw"``).

    ``data``: the adjusted rows of the input (index preserved) plus ``distance``,
    ``weights`` and ``subclass`` (see the module docstring; all-missing for IPW).
    ``pairs``: one row per link, ``treated`` and ``control`` (index labels), ``round``
    (1..ratio) and ``subclass``; empty for IPW. ``propensity``: ``ps`` and ``logit_ps``
    for every input row.
    """

    data: pd.DataFrame
    pairs: pd.DataFrame
    balance: pd.DataFrame
    counts: pd.DataFrame
    treatment: str
    covariates: list[str]
    distance: str
    ratio: int | None
    replace: bool
    method: str = "nearest"
    categorical: list[str] = field(default_factory=list)
    caliper: float | None = None
    caliper_width: float | None = None
    order: str | None = None
    exact: list[str] = field(default_factory=list)
    discard: str = "none"
    seed: int = 0
    propensity: pd.DataFrame | None = None

    def verdict(self, smd_threshold: float = 0.1, var_ratio_bounds=(0.5, 2)) -> BalanceVerdict:
        return balance_verdict(self.balance, smd_threshold, var_ratio_bounds)


def _counts(treated, adjusted, discarded) -> pd.DataFrame:
    rows = []
    for name, g in (("treated", treated), ("control", ~treated)):
        rows.append(
            {
                "group": name,
                "all": int(g.sum()),
                "matched": int((g & adjusted).sum()),
                "unmatched": int((g & ~adjusted & ~discarded).sum()),
                "discarded": int((g & discarded).sum()),
            }
        )
    return pd.DataFrame(rows)


def _check_added_columns(data):
    clash = [c for c in ADDED_COLUMNS if c in data.columns]
    if clash:
        raise ValueError(f"column {clash[0]}: the result adds this column; rename it in the data")


def _first_levels(names, variables) -> np.ndarray:
    """Mask of the reference (first, sorted) level column of each categorical variable."""
    seen = set()
    mask = np.zeros(len(names), dtype=bool)
    for j, name in enumerate(names):
        variable, level = variables[name]
        if level is not None and variable not in seen:
            seen.add(variable)
            mask[j] = True
    return mask


def _propensity(data, t, X, names, variables, propensity):
    """Propensity frame: fitted on the expanded covariates, or checked if given.

    ``propensity`` may be a Series of probabilities or a frame with ``ps`` (and
    ``logit_ps``, used as is when present), aligned to the index of ``data``.
    """
    if propensity is None:
        if t.all() or not t.any():
            raise ValueError("treatment: needs both treated and control units")
        return _fit_matrix(X, ~_first_levels(names, variables), t, data.index)
    if isinstance(propensity, pd.DataFrame):
        frame = propensity.reindex(data.index)
        ps = frame["ps"].to_numpy(dtype=float)
        logit = frame["logit_ps"].to_numpy(dtype=float) if "logit_ps" in frame else None
    else:
        ps = pd.Series(propensity).reindex(data.index).to_numpy(dtype=float)
        logit = None
    bad = ~((ps >= 0) & (ps <= 1)) if logit is not None else ~((ps > 0) & (ps < 1))
    if logit is not None:
        bad |= ~np.isfinite(logit)
    if bad.any():
        raise ValueError(
            f"propensity: {int(bad.sum())} rows missing or outside (0, 1) (e.g. rows "
            f"{_examples(bad)}); give a probability for every row"
        )
    if logit is None:
        logit = np.log(ps) - np.log1p(-ps)
    return pd.DataFrame({"ps": ps, "logit_ps": logit}, index=data.index)


def match(
    data: pd.DataFrame,
    treatment: str,
    covariates,
    *,
    distance: str = "ps",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = None,
    order: str = "largest",
    exact=None,
    seed: int = 0,
    categorical=None,
    discard: str = "none",
    propensity=None,
) -> MatchResult:
    """Greedy nearest-neighbour matching for the ATT (MatchIt semantics; module docstring).

    ``categorical``: covariates to expand to indicators (non-numeric ones always are).
    ``propensity``: optional precomputed propensity scores (probabilities, aligned to the
    index of ``data``); otherwise they are fitted by :func:`fit_propensity`.
    """
    covariates = list(covariates)
    exact = list(exact or [])
    if distance not in DISTANCES:
        raise ValueError(f"distance {distance!r}: use one of {DISTANCES}")
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: use one of {ORDERS}")
    if discard not in DISCARDS:
        raise ValueError(f"discard {discard!r}: use one of {DISCARDS}")
    if int(ratio) != ratio or ratio < 1:
        raise ValueError(f"ratio {ratio!r}: must be a whole number >= 1")
    if caliper is not None and not caliper > 0:
        raise ValueError(f"caliper {caliper!r}: must be positive (or None for no caliper)")
    ratio = int(ratio)
    _check_added_columns(data)
    t = treatment_indicator(data, treatment)
    cats = categorical_columns(data, covariates, categorical)
    X, names, variables = _expand(data, covariates, cats, drop_first=False)
    prop = _propensity(data, t, X, names, variables, propensity)
    scalar = prop["ps" if distance == "ps" else "logit_ps"].to_numpy()
    width = math.inf
    if caliper is not None:
        width = float(caliper) * float(np.std(scalar, ddof=1))
    ps = prop["ps"].to_numpy()
    eligible = np.ones(len(data), dtype=bool)
    if discard != "none":
        lo_c, hi_c = ps[~t].min(), ps[~t].max()
        lo_t, hi_t = ps[t].min(), ps[t].max()
        if discard in ("treated", "both"):
            eligible &= ~(t & ((ps < lo_c) | (ps > hi_c)))
        if discard in ("control", "both"):
            eligible &= ~(~t & ((ps < lo_t) | (ps > hi_t)))
    coords = None
    if distance == "mahalanobis":
        coords = mahalanobis_transform(X[:, ~_first_levels(names, variables)], t)
    links = nearest_neighbour(
        t,
        scalar,
        ratio=ratio,
        replace=replace,
        width=width,
        order=order,
        seed=seed,
        strata=_strata_codes(data, exact),
        eligible=eligible,
        coords=coords,
    )
    weights, subclass = matching_weights(links, len(data))
    matched = weights > 0
    out = data.iloc[np.flatnonzero(matched)].copy()
    out["distance"] = scalar[matched]
    out["weights"] = weights[matched]
    out["subclass"] = subclass[matched]
    index = data.index
    pairs = pd.DataFrame(
        {
            "treated": index[links["treated"].to_numpy()],
            "control": index[links["control"].to_numpy()],
            "round": links["round"].to_numpy(),
            "subclass": subclass[links["treated"].to_numpy()],
        }
    )
    balance = _balance(X, names, variables, t, weights)
    return MatchResult(
        data=out,
        pairs=pairs,
        balance=balance,
        counts=_counts(t, matched, ~eligible),
        treatment=treatment,
        covariates=covariates,
        distance=distance,
        ratio=ratio,
        replace=bool(replace),
        method="nearest",
        categorical=cats,
        caliper=caliper,
        caliper_width=None if caliper is None else width,
        order=order,
        exact=exact,
        discard=discard,
        seed=seed,
        propensity=prop,
    )


def ipw(
    data: pd.DataFrame,
    treatment: str,
    covariates,
    *,
    categorical=None,
    propensity=None,
) -> MatchResult:
    """Inverse-probability weighting for the ATT (odds weights), for sensitivity analysis.

    Treated units get weight 1, controls ps / (1 - ps), rescaled so control weights sum
    to the number of controls. Every row is kept; ``subclass`` is missing, ``pairs`` empty.
    """
    covariates = list(covariates)
    _check_added_columns(data)
    t = treatment_indicator(data, treatment)
    cats = categorical_columns(data, covariates, categorical)
    X, names, variables = _expand(data, covariates, cats, drop_first=False)
    prop = _propensity(data, t, X, names, variables, propensity)
    ps = prop["ps"].to_numpy()
    w = np.where(t, 1.0, np.exp(prop["logit_ps"].to_numpy()))  # odds ps / (1 - ps)
    w[~t] *= (~t).sum() / w[~t].sum()
    out = data.copy()
    out["distance"] = ps
    out["weights"] = w
    out["subclass"] = pd.array([pd.NA] * len(data), dtype="Int64")
    balance = _balance(X, names, variables, t, w)
    return MatchResult(
        data=out,
        pairs=pd.DataFrame({"treated": [], "control": [], "round": [], "subclass": []}).astype(
            {"round": "int64", "subclass": "int64"}
        ),
        balance=balance,
        counts=_counts(t, np.ones(len(data), dtype=bool), np.zeros(len(data), dtype=bool)),
        treatment=treatment,
        covariates=covariates,
        distance="ps",
        ratio=None,
        replace=False,
        method="ipw",
        categorical=cats,
        propensity=prop,
    )


# ---------------------------------------------------------------------------------------
# Figures (matplotlib Agg, PNG, dpi 150, deterministic bytes)
# ---------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, metadata={"Software": None})
    _pyplot().close(fig)


def love_plot(balance: pd.DataFrame, path, smd_threshold: float = 0.1) -> None:
    """|SMD| per covariate before and after adjustment, with the threshold line."""
    plt = _pyplot()
    b = balance.iloc[::-1]
    y = np.arange(len(b))
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.28 * len(b) + 1.2)))
    ax.scatter(b["smd_before"].abs(), y, marker="o", facecolors="none", edgecolors="grey",
               label="before matching")  # fmt: skip
    ax.scatter(b["smd_after"].abs(), y, marker="o", color="black", label="after matching")
    ax.axvline(smd_threshold, color="tab:red", linestyle="--", linewidth=1,
               label=f"threshold {smd_threshold:g}")  # fmt: skip
    ax.set_yticks(y, b["covariate"].tolist(), fontsize=7)
    ax.set_xlabel("absolute standardised mean difference (treated SD before matching)")
    ax.set_title("Covariate balance before and after matching")
    ax.set_xlim(left=0)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def ps_overlap_plot(ps, treated, weights, path) -> None:
    """Propensity-score distributions, treated vs comparators, before and after matching
    (after: weighted by the matching weights)."""
    plt = _pyplot()
    ps = np.asarray(ps, float)
    treated = np.asarray(treated, bool)
    weights = np.asarray(weights, float)
    bins = np.linspace(0, 1, 41)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, title, w in ((axes[0], "Before matching", np.ones_like(ps)),
                         (axes[1], "After matching", weights)):  # fmt: skip
        for group, colour, label in ((treated, "tab:blue", "treated"),
                                     (~treated, "tab:orange", "comparator")):  # fmt: skip
            sel = group & (w > 0)
            if sel.any():
                ax.hist(ps[sel], bins=bins, weights=w[sel], density=True, histtype="step",
                        color=colour, label=label, linewidth=1.4)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("propensity score")
    axes[0].set_ylabel("density")
    axes[1].legend(fontsize=8)
    fig.suptitle("Propensity-score overlap")
    fig.tight_layout()
    _save(fig, path)


def ecdf_plot(values, treated, weights, path, covariate: str) -> None:
    """Empirical CDFs of one covariate, treated vs comparators, before and after matching."""
    plt = _pyplot()
    x = np.asarray(values, float)
    treated = np.asarray(treated, bool)
    weights = np.asarray(weights, float)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, title, w in ((axes[0], "Before matching", np.ones_like(x)),
                         (axes[1], "After matching", weights)):  # fmt: skip
        for group, colour, label in ((treated, "tab:blue", "treated"),
                                     (~treated, "tab:orange", "comparator")):  # fmt: skip
            sel = group & (w > 0)
            if not sel.any():
                continue
            xs, inverse = np.unique(x[sel], return_inverse=True)
            cw = np.cumsum(np.bincount(inverse, weights=w[sel])) / w[sel].sum()
            if len(xs) > 4000:  # thin very long curves (national scale) for drawing
                keep = np.unique(np.linspace(0, len(xs) - 1, 4000).astype(int))
                xs, cw = xs[keep], cw[keep]
            ax.step(np.r_[xs[0], xs], np.r_[0.0, cw], where="post", color=colour, label=label)
        ax.set_title(title)
        ax.set_xlabel(covariate)
    axes[0].set_ylabel("cumulative proportion")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"eCDF of the most imbalanced covariate after matching: {covariate}")
    fig.tight_layout()
    _save(fig, path)
