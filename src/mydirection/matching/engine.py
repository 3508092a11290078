"""Greedy nearest-neighbour matching engines (positions are row positions; the smaller
position wins ties): a 1-D engine on a scalar distance and a Mahalanobis engine."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

ORDERS = ("largest", "smallest", "data", "random")


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
    # each column's sorted codes; their distinct rows in lexicographic order are the strata
    # (as a sorted groupby's ngroup over the columns, missing values as "(missing)")
    codes = [
        pd.factorize(data[c].astype("string").fillna("(missing)"), sort=True)[0] for c in exact
    ]
    if len(codes) == 1:
        return codes[0].astype(np.int64)
    return np.unique(np.column_stack(codes), axis=0, return_inverse=True)[1].reshape(-1)


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
    arr = np.array(links, dtype=np.int64).reshape(-1, 3)
    arr = arr[np.lexsort((arr[:, 2], arr[:, 0]))]  # by treated, then round (stable)
    return pd.DataFrame({"treated": arr[:, 0], "control": arr[:, 1], "round": arr[:, 2]})


def matching_weights(links: pd.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """ATT weights and subclass (0 = none) per row position, from position links."""
    weights = np.zeros(n)
    subclass = np.zeros(n, dtype=np.int64)
    if links.empty:
        return weights, subclass
    t = links["treated"].to_numpy()
    c = links["control"].to_numpy()
    treated, set_index, k = np.unique(t, return_inverse=True, return_counts=True)
    weights[treated] = 1.0
    np.add.at(weights, c, 1.0 / k[set_index])
    cu = np.unique(c)
    weights[cu] *= len(cu) / weights[cu].sum()
    # matched sets numbered 1.. in treated-row order; a comparator joins its first set
    subclass[treated] = np.arange(1, len(treated) + 1)
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, c, set_index + 1)
    subclass[cu] = first[cu]
    return weights, subclass
