"""Statistical disclosure control, in one place: the registry, every table and every figure.

The published rule (Justice Data Lab; ONS): a count of people greater than zero and below
the threshold (default 5, never lower) is not published. Then nothing may reveal it:

1. **Primary**: a count of people (``people``) with ``0 < n < threshold`` is shown as
   ``<threshold`` and its value is withheld. Counts of other things (specifications,
   replicates, covariates) are not personal data and are never suppressed.
2. **Derived**: every number computed from a suppressed number (``derived_from``, followed
   transitively) is suppressed too and shown as ``[c]`` -- rates, means, differences and
   ratios computed from a suppressed group, and figures drawn from it.
3. **Complementary** (secondary): additive relations (``total = sum(parts)``: an attrition
   step, subgroup levels adding up to a total, treated + comparators = all) are checked by
   linear programming: while a suppressed count can be worked out exactly from the
   published ones, the smallest further count of one of its relations is suppressed
   (:func:`protect`). Cell tables with totals use the same audit (:func:`suppress_table`).

:func:`protect` is the one entry point; the registry calls it on all numbers, and a stage
that draws a figure calls it on the numbers it draws (the same rule gives the same result).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

#: Shown in place of a number derived from a suppressed count, or a secondary suppression.
SUPPRESSED = "[c]"
#: The published rule: no threshold below this is accepted (``report.suppression_threshold``).
MIN_THRESHOLD = 5


def is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def small(value, threshold: int) -> bool:
    """Whether a count of people is suppressed: ``0 < n < threshold``."""
    return is_number(value) and 0 < int(round(value)) < threshold


def shown_count(n, threshold: int) -> str:
    """A count of people as a table or figure prints it (``<5`` when small)."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return SUPPRESSED
    n = int(round(n))
    return f"<{threshold}" if 0 < n < threshold else f"{n:,}"


def _value(entry):
    return entry.get("value") if isinstance(entry, Mapping) else entry


def primary(entries: Mapping[str, Mapping], threshold: int) -> set[str]:
    """Keys of counts of people with ``0 < n < threshold``."""
    return {
        k
        for k, e in entries.items()
        if e.get("people") and e.get("kind") == "count" and small(e.get("value"), threshold)
    }


def derived(entries: Mapping[str, Mapping], suppressed: set[str]) -> set[str]:
    """``suppressed`` closed under ``derived_from``."""
    out = set(suppressed)
    changed = True
    while changed:
        changed = False
        for k in sorted(entries):
            if k not in out and any(d in out for d in entries[k].get("derived_from", ())):
                out.add(k)
                changed = True
    return out


def _system(values: dict[str, float], relations, hidden: set[str]):
    """The intruder's equations: the hidden keys that are in a relation (sorted) and the
    rows ``a_eq @ x = b_eq`` of the relations whose members are all reported."""
    unknown = sorted(k for k in hidden if any(k == t or k in p for t, p in relations))
    col = {k: i for i, k in enumerate(unknown)}
    a_eq, b_eq = [], []
    for total, parts in relations:
        members = [(total, -1.0)] + [(p, 1.0) for p in parts]
        if not all(k in values or k in col for k, _ in members):
            continue  # a member no one reports: the relation tells an intruder nothing
        row = np.zeros(len(unknown))
        rhs = 0.0
        for k, coef in members:
            if k in col:
                row[col[k]] += coef
            else:
                rhs -= coef * values[k]
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    return col, np.array(a_eq, dtype=float).reshape(len(a_eq), len(unknown)), np.array(b_eq)


def _range(i: int, a_eq, b_eq, box) -> tuple[float, float]:
    """(min, max) of unknown ``i`` by linear programming over the equations and bounds."""
    from scipy.optimize import linprog

    c = np.zeros(a_eq.shape[1])
    c[i] = 1.0
    lo = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=box, method="highs")
    hi = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=box, method="highs")
    return (lo.fun if lo.status == 0 else 0.0, -hi.fun if hi.status == 0 else math.inf)


def _ranges(values: dict[str, float], relations, hidden: set[str], bounds: dict):
    """For each hidden key in a relation: (min, max) an intruder can infer by linear
    programming from the published values and the relations."""
    col, a_eq, b_eq = _system(values, relations, hidden)
    if not len(a_eq):
        return {k: (0.0, math.inf) for k in col}
    box = [bounds.get(k, (0, None)) for k in col]
    return {k: _range(i, a_eq, b_eq, box) for k, i in col.items()}


class _Intruder:
    """Whether each hidden key can be worked out exactly, asked one key at a time (the
    answer of :func:`_ranges`, ``max - min < 0.5``, without solving for the keys no one
    asks about). A key whose unit vector lies in the row space of the equations is fixed
    by them alone (no linear program needed); otherwise its two linear programs decide,
    since the bounds can pin it too (``x + y = 0`` with ``x, y >= 0``)."""

    def __init__(self, values, relations, hidden, bounds):
        self.col, self.a_eq, self.b_eq = _system(values, relations, hidden)
        self.box = [bounds.get(k, (0, None)) for k in self.col]
        self.memo: dict[str, bool] = {}
        if len(self.a_eq):
            _, sv, vt = np.linalg.svd(self.a_eq)
            rank = int((sv > 1e-9 * max(1.0, sv.max())).sum())
            self.null = vt[rank:]  # rows span the null space of a_eq

    def determined(self, key: str) -> bool:
        if key not in self.memo:
            i = self.col.get(key)
            if i is None or not len(self.a_eq):
                self.memo[key] = False
            elif np.abs(self.null[:, i]).max(initial=0.0) <= 1e-9:  # in the row space
                self.memo[key] = True
            else:
                lo, hi = _range(i, self.a_eq, self.b_eq, self.box)
                self.memo[key] = hi - lo < 0.5
        return self.memo[key]


def protect(
    entries: Mapping[str, Mapping], relations: Iterable = (), threshold: int = MIN_THRESHOLD
) -> tuple[set[str], set[str]]:
    """The keys to suppress: ``(primary, all)`` (see the module docstring).

    ``entries``: key -> ``{"value", "kind", "people", "derived_from"}`` (a registry number
    or a :class:`~mydirection.reporting.numbers.Number` as a dict); ``relations``: tuples
    ``(total, parts)`` or ``(total, parts, prefer)``. While a suppressed count is exactly
    recoverable, one more count of one of its relations is suppressed: the relation's total
    when it prefers ``"total"`` (a chain such as an attrition chevron is then protected
    upwards, keeping the analysed counts), else its smallest non-zero part; ties by key.
    """
    relations = [(r[0], tuple(r[1]), r[2] if len(r) > 2 else "part") for r in relations]
    pairs = [(t, p) for t, p, _ in relations]
    first = primary(entries, threshold)
    hidden = derived(entries, first)
    values = {
        k: float(e["value"])
        for k, e in entries.items()
        if is_number(e.get("value")) and e.get("kind") == "count"
    }
    while True:
        published = {k: v for k, v in values.items() if k not in hidden}
        bounds = {k: (1, threshold - 1) if k in first else (0, None) for k in hidden}
        intruder = _Intruder(published, pairs, hidden & set(values), bounds)
        # only the primary suppressions need protecting: a secondary one may be recoverable
        exposed = (k for k in sorted(first & set(values)) if intruder.determined(k))
        choice = None
        for key in exposed:
            choice = _next_to_hide(key, relations, published, intruder.determined)
            if choice is not None:
                break
        if choice is None:  # nothing exposed, or nothing left to hide in its relations
            return first, hidden
        hidden = derived(entries, hidden | {choice})


def _next_to_hide(key, relations, published, determined):
    """The count to hide next so that ``key`` can no longer be worked out: walk out from it
    through the suppressed counts that are themselves determined (a chain), and take the
    first layer's best candidate (the relation's preferred member, then the smallest)."""
    frontier, seen = {key}, {key}
    while frontier:
        ranked = sorted(
            (0 if (m == total) == (prefer == "total") else 1, published[m], m)
            for total, parts, prefer in relations
            if total in frontier or frontier & set(parts)
            for m in (total, *parts)
            if m in published and published[m] > 0
        )
        if ranked:
            return ranked[0][2]
        frontier = {
            m
            for total, parts, _ in relations
            if total in frontier or frontier & set(parts)
            for m in (total, *parts)
            if m not in seen and determined(m)
        }
        seen |= frontier
    return None


def display(entries: Mapping[str, Mapping], relations=(), threshold: int = MIN_THRESHOLD):
    """Key -> displayed text for the suppressed keys only (``<t`` or ``[c]``)."""
    first, hidden = protect(entries, relations, threshold)
    return {k: (f"<{threshold}" if k in first else SUPPRESSED) for k in hidden}


# ------------------------------------------------------------------------------ tables
def _lines(shape: tuple[int, int]) -> list[list[tuple[int, int]]]:
    """The additive lines of a table whose last row and column are totals."""
    r, c = shape
    return [[(i, j) for j in range(c)] for i in range(r)] + [
        [(i, j) for i in range(r)] for j in range(c)
    ]


def table_relations(shape: tuple[int, int]) -> list[tuple[tuple, tuple]]:
    """The relations ``total = sum(interior)`` of a table with a total row and column."""
    r, c = shape
    rows = [((i, c - 1), tuple((i, j) for j in range(c - 1))) for i in range(r)]
    cols = [((r - 1, j), tuple((i, j) for i in range(r - 1))) for j in range(c)]
    return rows + cols


def secondary_suppression(values: np.ndarray, primary_mask: np.ndarray, threshold: int = 5):
    """Cells to suppress so no primary-suppressed cell can be recovered from the totals.

    ``values`` is a table whose last row and last column are totals. Returns the full mask
    (primary | secondary), by :func:`protect` on the cells and their table relations.
    """
    values = np.asarray(values, dtype=float)
    mask = np.asarray(primary_mask, dtype=bool)
    r, c = values.shape
    entries = {
        (i, j): {"value": values[i, j], "kind": "count", "people": True}
        for i in range(r)
        for j in range(c)
    }
    for cell in entries:
        if mask[cell] and not small(values[cell], threshold):
            entries[cell] = {**entries[cell], "value": 1.0}  # force it into the primary set
    for cell in entries:
        if not mask[cell] and small(values[cell], threshold):
            entries[cell] = {**entries[cell], "people": False}
    _, hidden = protect(entries, table_relations((r, c)), threshold)
    out = np.zeros_like(mask)
    for cell in hidden:
        out[cell] = True
    return out | mask


def suppress_table(counts: pd.DataFrame, threshold: int = 5, total_label: str = "Total"):
    """A count table with totals, ready to publish, with primary and secondary suppression.

    Adds a total column and a total row to ``counts`` (people, non-negative integers),
    suppresses cells with ``0 < n < threshold`` (shown ``<threshold``), then suppresses
    further cells (shown ``[c]``) so that no suppressed cell can be worked out from the
    totals. Returns ``(display, mask)``: a DataFrame of strings and a boolean DataFrame of
    the suppressed cells, both including the totals.
    """
    full = counts.copy()
    full[total_label] = full.sum(axis=1)
    full.loc[total_label] = full.sum(axis=0)
    values = full.to_numpy(dtype=float)
    first = (values > 0) & (values < threshold)
    mask = secondary_suppression(values, first, threshold)
    shown = [
        [
            (f"<{threshold}" if first[i, j] else SUPPRESSED)
            if mask[i, j]
            else f"{int(values[i, j]):,}"
            for j in range(values.shape[1])
        ]
        for i in range(values.shape[0])
    ]
    disp = pd.DataFrame(shown, index=full.index, columns=full.columns)
    return disp, pd.DataFrame(mask, index=full.index, columns=full.columns)


__all__ = [
    "MIN_THRESHOLD",
    "SUPPRESSED",
    "derived",
    "display",
    "is_number",
    "primary",
    "protect",
    "secondary_suppression",
    "shown_count",
    "small",
    "suppress_table",
    "table_relations",
]
