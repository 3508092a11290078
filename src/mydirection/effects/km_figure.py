"""Kaplan-Meier curves that may be published: no count of people below the threshold.

A Kaplan-Meier table reveals people: each step of a curve says how many re-offended on that
day, and the numbers at risk under the figure, differenced, say how many left between two
times. :func:`km_for_publication` turns the table of
:func:`mydirection.effects.survival.kaplan_meier` into what may be drawn.

The rule (``k`` = suppression threshold, default 5; all counts are *people*, unweighted,
one row per person; times are grouped into half-open intervals ``[a, b)``):

1. The curve is released only at chosen boundaries ``0 = b_0 < b_1 < ...``. At each one it
   shows ``S(b-)``, the (weighted) Kaplan-Meier estimate just before ``b`` with its
   confidence limits, and ``R(b)``, the number of people still at risk at ``b``
   (``time >= b``). Nothing between two boundaries is released: the figure joins the
   points by straight lines.
2. An interval ``[a, b)`` is released only if the people who re-offended in it, and the
   people censored in it, are each 0 or at least ``k``, and ``R(b)`` is 0 or at least
   ``k`` (so every difference of two released numbers at risk, and every drop of the
   curve, is made of 0 or at least ``k`` people). A group with fewer than ``k`` people
   shows nothing.
3. Boundaries are chosen greedily, left to right, among the times at which numbers at risk
   are wanted (``ticks``) first, then, inside each released tick interval, on a finer grid
   (every ``step`` time units): an interval is closed at the first grid time at which it
   may be released; a remainder that cannot be closed before the next released tick is
   merged into the interval before it (the whole tick interval is releasable).
4. If the last interval cannot be closed (too few re-offences or censorings left in the
   tail), the intervals before it are merged into it, latest first, until it can: the curve
   reaches the latest grid time that some merge makes releasable. Where none does (fewer
   than ``k`` people would remain at risk), the curve is cut at the last released boundary
   and nothing after it is shown.
5. Numbers at risk are printed at the ticks: the exact count at a released boundary; "<k"
   where fewer than ``k`` (but some) people are at risk; "0" where none; and "–" at a tick
   inside a merged interval (its exact count would reveal a small number by difference).

What remains visible is whether an interval could be closed (a bound, never a count), the
boundary positions, and differences that are sums of at least ``k`` people.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

NOT_SHOWN = "–"


class PublishedKM(NamedTuple):
    """``curve``: group, time, survival, ci_low, ci_high, at_risk (released points);
    ``at_risk``: group, time, label (what to print under the figure at each tick)."""

    curve: pd.DataFrame
    at_risk: pd.DataFrame


def _ok(count, k: int) -> bool:
    return count == 0 or count >= k


class _Counts:
    """People counts of one group as functions of a boundary ``b`` (interval ``[a, b)``)."""

    def __init__(self, d: pd.DataFrame):
        self.t = d["time"].to_numpy(float)
        self.cum_e = np.concatenate([[0], np.cumsum(d["n_events"].to_numpy())])
        self.cum_c = np.concatenate([[0], np.cumsum(d["n_censored"].to_numpy())])
        self.total = int(self.cum_e[-1] + self.cum_c[-1])

    def before(self, b: float) -> int:
        return int(np.searchsorted(self.t, b, side="left"))  # rows with time < b

    def at_risk(self, b: float) -> int:
        i = self.before(b)
        return int(self.total - self.cum_e[i] - self.cum_c[i])

    def releasable(self, a: float, b: float, k: int) -> bool:
        i, j = self.before(a), self.before(b)
        events = self.cum_e[j] - self.cum_e[i]
        censored = self.cum_c[j] - self.cum_c[i]
        return (
            self.at_risk(a) >= k and _ok(events, k) and _ok(censored, k) and _ok(self.at_risk(b), k)
        )


def _greedy(counts: _Counts, start: float, candidates, k: int) -> list[float]:
    """Boundaries after ``start``: close each interval at the first candidate that may."""
    out, a = [], start
    for b in candidates:
        if b > a and counts.releasable(a, b, k):
            out.append(b)
            a = b
    return out


def _boundaries(counts: _Counts, ticks, grid, k: int) -> list[float]:
    start = 0.0
    if counts.total < k:
        return []
    coarse = _greedy(counts, start, [t for t in ticks if t > start], k)
    chosen = [start]
    for b in coarse:
        a = chosen[-1]
        inner = _greedy(counts, a, [g for g in grid if a < g < b], k)
        while inner and not counts.releasable(inner[-1], b, k):
            inner.pop()  # merge an unclosable remainder into the interval before it
        chosen.extend([*inner, b])
    chosen.extend(_greedy(counts, chosen[-1], [g for g in grid if g > chosen[-1]], k))
    # too few re-offences (or censorings) in the tail: rather than stop early, merge the
    # last intervals (latest first) into one that reaches the latest possible grid time
    for end in sorted((g for g in grid if g > chosen[-1]), reverse=True):
        starts = [i for i in range(len(chosen) - 1, -1, -1) if counts.releasable(chosen[i], end, k)]
        if starts:
            chosen = [*chosen[: starts[0] + 1], end]
            break
    return chosen


def _value_before(d: pd.DataFrame, b: float, col: str, default: float) -> float:
    t = d["time"].to_numpy(float)
    i = int(np.searchsorted(t, b, side="left"))
    return float(d[col].iloc[i - 1]) if i > 0 else default


def km_for_publication(
    km: pd.DataFrame, threshold: int = 5, ticks=None, step: float = 7.0
) -> PublishedKM:
    """The disclosure-safe curve and numbers at risk (the rule is in the module docstring).

    ``km``: the table of :func:`~mydirection.effects.survival.kaplan_meier` (needs the
    people counts ``n_events`` and ``n_censored``). ``ticks``: times at which numbers at
    risk are printed (default 0 and every quarter of the last time); ``step``: spacing of
    the finer grid between ticks. Pure: the same table gives the same result.
    """
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    missing = {"n_events", "n_censored"} - set(km.columns)
    if missing:
        raise ValueError(
            f"the Kaplan-Meier table lacks {sorted(missing)}: make it with kaplan_meier()"
        )
    tmax = float(km["time"].max()) if len(km) else 0.0
    if ticks is None:
        ticks = np.linspace(0, tmax, 5).round()
    ticks = sorted({float(t) for t in ticks if 0 <= t <= tmax})
    grid = sorted({*np.arange(0.0, tmax + step / 2, step), *ticks})
    curve_rows, risk_rows = [], []
    for label, d in km.groupby("group", sort=True, dropna=False):
        d = d.sort_values("time", kind="stable")
        counts = _Counts(d)
        bounds = _boundaries(counts, ticks, grid, threshold)
        for b in bounds:
            curve_rows.append(
                {
                    "group": label,
                    "time": b,
                    "survival": _value_before(d, b, "survival", 1.0),
                    "ci_low": _value_before(d, b, "ci_low", 1.0),
                    "ci_high": _value_before(d, b, "ci_high", 1.0),
                    "at_risk": counts.at_risk(b),
                }
            )
        released = set(bounds)
        for t in ticks:
            n = counts.at_risk(t)
            if t in released:
                text = f"{n:,}"
            elif n == 0:
                text = "0"
            elif n < threshold:
                text = f"<{threshold}"
            else:
                text = NOT_SHOWN
            risk_rows.append({"group": label, "time": t, "label": text})
    curve = pd.DataFrame(
        curve_rows, columns=["group", "time", "survival", "ci_low", "ci_high", "at_risk"]
    )
    at_risk = pd.DataFrame(risk_rows, columns=["group", "time", "label"])
    curve.attrs["threshold"] = at_risk.attrs["threshold"] = int(threshold)
    return PublishedKM(curve, at_risk)


def plot_published_km(published: PublishedKM, path, title: str, labels: dict | None = None) -> None:
    """Draw a :class:`PublishedKM`: the released points joined by straight lines, their 95 %
    confidence band, and the numbers at risk (people) underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    curve, risk = published.curve, published.at_risk
    tmax = float(risk["time"].max()) if len(risk) else 1.0
    tmax = max(tmax, float(curve["time"].max()) if len(curve) else 0.0, 1.0)
    groups = sorted(
        set(curve["group"].tolist()) | set(risk["group"].tolist()), key=lambda g: str(g)
    )
    fig, (ax, tab) = plt.subplots(
        2, 1, figsize=(8, 5.2 + 0.25 * len(groups)), height_ratios=[5, 0.4 + 0.3 * len(groups)]
    )
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for i, g in enumerate(groups):
        c = colours[i % len(colours)]
        d = curve[curve["group"].astype(str) == str(g)]
        if len(d) == 0:
            continue
        t = d["time"].to_numpy(float)
        ax.plot(t, d["survival"], color=c, marker="o", markersize=2.5, label=labels.get(g, str(g)))
        lo = d["ci_low"].ffill().fillna(d["survival"]).to_numpy(float)
        hi = d["ci_high"].ffill().fillna(d["survival"]).to_numpy(float)
        ax.fill_between(t, lo, hi, color=c, alpha=0.2, linewidth=0)
    ax.set_xlim(0, tmax)
    bottom = pd.concat([curve["ci_low"], curve["survival"]]).min() if len(curve) else 0.0
    bottom = float(bottom) if np.isfinite(bottom) else 0.0
    ax.set_ylim(max(0.0, bottom - 0.05), 1.01)
    ax.set_xlabel("Days since index date")
    ax.set_ylabel("Proportion without a proven re-offence")
    ax.set_title(title)
    if len(curve):
        ax.legend(loc="lower left")
    tab.set_xlim(0, tmax)
    tab.set_ylim(-0.5, len(groups) - 0.5)
    tab.axis("off")
    tab.set_title("Numbers at risk (people)", fontsize=9, loc="left")
    for i, g in enumerate(groups):
        row = len(groups) - 1 - i
        tab.text(
            -0.04, row, labels.get(g, str(g)), ha="right", va="center", fontsize=8,
            transform=tab.get_yaxis_transform(),
        )  # fmt: skip
        for r in risk[risk["group"].astype(str) == str(g)].itertuples():
            tab.text(r.time, row, r.label, ha="center", va="center", fontsize=8)
    fig.tight_layout()
    fig.subplots_adjust(left=0.2)
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)
