"""Figures of the fidelity stage, drawn from disclosure-controlled numbers.

Every figure goes through the one figure helper (:func:`mydirection.reporting.figures.figure`,
the colour-blind-safe :data:`~mydirection.reporting.figures.COLOURS`, legends outside the
bars) and shows no count of people that the registry would suppress
(:mod:`mydirection.reporting.disclosure`, the one implementation):

- **Distribution**: a histogram of the person index in bins of :data:`BIN_WIDTH` points,
  never across a band cut-off. Within a band, neighbouring bins are merged until each bar
  holds at least ``threshold`` people (the heights are people per ``BIN_WIDTH`` points, so
  a merged bar keeps its area); a band whose count the registry suppresses (too few
  people, or hidden so that another band cannot be worked out) shows no bars at all.
- **Items**: adherence per item with its number of scorable people; an item whose count
  is suppressed shows neither.
- **Monthly trend**: mean index per month with its interval, and the people scored per
  month; a month whose count is suppressed (``0 < n < threshold``, or hidden so that it
  cannot be worked out from the published total) shows neither.
- **Case managers**: a funnel plot of the case managers whose number of scored cases is
  publishable by the same rule (small ones, and as many more as needed so that none can
  be worked out from the total); training status is coloured only when both groups of case
  managers are publishable.

Each drawing function returns what it drew (a small DataFrame), so tests can check it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from mydirection import normal
from mydirection.fidelity.index import BANDS
from mydirection.fidelity.items import DOMAINS
from mydirection.reporting import disclosure
from mydirection.reporting.figures import COLOURS, figure

#: Width of the distribution histogram's bins, in index points.
BIN_WIDTH = 5

DOMAIN_COLOURS = dict(
    zip(
        DOMAINS,
        (COLOURS["treated"], COLOURS["good"], COLOURS["comparator"], COLOURS["accent"]),
        strict=True,
    )
)


def hidden_parts(counts: Mapping, total: float | None, threshold: int) -> dict:
    """Which of ``counts`` (label -> people; they add up to ``total``) a figure may not
    show, with the text shown instead (``<threshold`` or ``[c]``): primary suppression and,
    while a suppressed count could be worked out from the published total, the next
    smallest (:func:`mydirection.reporting.disclosure.display`)."""
    entries = {
        ("part", k): {"value": float(v), "kind": "count", "people": True} for k, v in counts.items()
    }
    relations = []
    if total is not None:
        entries[("total",)] = {"value": float(total), "kind": "count", "people": True}
        relations = [(("total",), tuple(entries)[:-1])]
    shown = disclosure.display(entries, relations, threshold)
    return {key[1]: text for key, text in shown.items() if key[0] == "part"}


# ----------------------------------------------------------------------------- distribution
def _edges(lo: float, hi: float) -> list[float]:
    inner = [x for x in np.arange(0, 100 + BIN_WIDTH, BIN_WIDTH) if lo < x < hi]
    return [lo, *[float(x) for x in inner], hi]


def histogram_bars(
    index: pd.Series, moderate: float, high: float, threshold: int, hidden: Mapping = ()
) -> pd.DataFrame:
    """The bars of the distribution figure: ``band``, ``left``, ``right``, ``n`` (people),
    ``height`` (people per :data:`BIN_WIDTH` points). Bins never cross a band cut; within a
    band, bins are merged from the left until a bar holds at least ``threshold`` people (a
    short remainder joins the bar before it); empty bins are not bars. No bars are drawn for
    a band in ``hidden`` (suppressed by the registry) or with fewer than ``threshold`` people.
    """
    x = pd.Series(index, dtype=float).dropna().round(9).clip(0, 100).to_numpy()
    rows = []
    limits = {
        "low": (0.0, float(moderate)),
        "moderate": (float(moderate), float(high)),
        "high": (float(high), 100.0),
    }
    for b in BANDS:
        lo, hi = limits[b]
        if b in hidden or hi <= lo:
            continue
        last = b == "high"
        inside = x[(x >= lo) & ((x <= hi) if last else (x < hi))]
        if len(inside) < threshold:
            continue
        edges = _edges(lo, hi)
        counts = np.histogram(inside, bins=edges)[0]  # the last bin is closed: 100 counts
        bars, start, acc = [], None, 0
        for k, c in enumerate(counts):
            if start is None and c == 0:
                continue
            if start is None:
                start = edges[k]
            acc += int(c)
            if acc >= threshold:
                bars.append([start, edges[k + 1], acc])
                start, acc = None, 0
        if start is not None and acc:  # a remainder below the threshold joins the last bar
            last_nonzero = max(k for k, c in enumerate(counts) if c)
            bars[-1][1] = edges[last_nonzero + 1]
            bars[-1][2] += acc
        rows += [{"band": b, "left": lft, "right": rgt, "n": n} for lft, rgt, n in bars]
    out = pd.DataFrame(rows, columns=["band", "left", "right", "n"])
    out["height"] = out["n"] * BIN_WIDTH / (out["right"] - out["left"])
    return out


def plot_distribution(
    index: pd.Series, moderate: float, high: float, path, threshold: int, hidden: Mapping = ()
) -> pd.DataFrame:
    """Histogram of the person index with the band cut-offs (see :func:`histogram_bars`)."""
    bars = histogram_bars(index, moderate, high, threshold, hidden)
    with figure(path, figsize=(7, 4)) as (_, ax):
        ax.bar(
            bars["left"],
            bars["height"],
            width=bars["right"] - bars["left"],
            align="edge",
            color=COLOURS["treated"],
            edgecolor="white",
        )
        top = max(1.0, float(bars["height"].max()) if len(bars) else 1.0) * 1.15
        limits = {"low": (0, moderate), "moderate": (moderate, high), "high": (high, 100)}
        for b, text in hidden.items():
            lo, hi = limits[b]
            ax.axvspan(lo, hi, color=COLOURS["faint"], alpha=0.35, linewidth=0)
            ax.text(
                (lo + hi) / 2,
                top * 0.5,
                f"{b}: {text}\nnot shown",
                ha="center",
                va="center",
                fontsize=8,
                color=COLOURS["neutral"],
            )
        for cut in (moderate, high):
            ax.axvline(cut, color=COLOURS["neutral"], linestyle="--", linewidth=1)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, top)
        ax.set_xlabel("Fidelity index (0-100)")
        ax.set_ylabel(f"People per {BIN_WIDTH} index points")
        ax.set_title("Fidelity index per person, with the band cut-offs")
    return bars


# ----------------------------------------------------------------------------- items
def plot_items(coverage: pd.DataFrame, path, shown: Mapping) -> pd.DataFrame:
    """Adherence per item (mean score among scorable people), coloured by domain.

    ``shown``: item -> the number of scorable people as published (``None``: suppressed,
    the item's bar is not drawn)."""
    from matplotlib.patches import Patch

    c = coverage.iloc[::-1].reset_index(drop=True)
    drawn = c[[shown.get(i) is not None for i in c["item"]]]
    with figure(path, figsize=(7, 4.8)) as (_, ax):
        y = np.arange(len(c))
        score = [
            100 * float(s) if shown.get(i) is not None and pd.notna(s) else 0.0
            for i, s in zip(c["item"], c["mean_score"], strict=True)
        ]
        ax.barh(y, score, color=[DOMAIN_COLOURS[d] for d in c["domain"]])
        labels = [
            f"{lab} (n={shown[i]})" if shown.get(i) is not None else f"{lab} (not shown)"
            for i, lab in zip(c["item"], c["label"], strict=True)
        ]
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 100)
        ax.set_xlabel("Adherence among scorable people (%)")
        ax.set_title("Fidelity item by item (colour: adherence domain)")
        handles = [Patch(color=v, label=k) for k, v in DOMAIN_COLOURS.items()]
        # below the axes, so the legend never covers a bar
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncol=len(handles),
            fontsize=8,
        )
    return drawn


# ----------------------------------------------------------------------------- monthly
def plot_monthly(monthly: pd.DataFrame, slope, path, hidden: Mapping) -> pd.DataFrame:
    """Mean index by month of enrolment (with CI), the fitted trend, and people scored.

    ``hidden``: month number -> text shown instead of its count (its mean is not drawn)."""
    k = monthly["month_number"].to_numpy()
    show = np.array([int(m) not in hidden for m in k]) & (monthly["n_scored"].to_numpy() > 0)
    m = np.where(show, monthly["mean_index"].to_numpy(dtype=float), np.nan)
    lo = np.where(show, m - monthly["ci_low"].to_numpy(dtype=float), np.nan)
    hi = np.where(show, monthly["ci_high"].to_numpy(dtype=float) - m, np.nan)
    n = monthly["n_scored"].to_numpy()
    bars = np.where(show, n, 0)
    with figure(
        path, 2, 1, figsize=(8, 5.8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    ) as (_, (ax, ax2)):
        ax.errorbar(
            k,
            m,
            yerr=[np.nan_to_num(lo), np.nan_to_num(hi)],
            fmt="o",
            capsize=3,
            color=COLOURS["treated"],
            label="mean index (interval)",
        )
        if show.any() and np.isfinite(slope.estimate):
            w = n[show]
            mean_all = np.average(m[show], weights=w)
            kbar = np.average(k[show], weights=w)
            ax.plot(
                k,
                mean_all + slope.estimate * (k - kbar),
                color=COLOURS["highlight"],
                linestyle="--",
                label="fitted linear trend",
            )
        ax.legend(loc="lower left", ncol=2, fontsize=8)  # under the points, over no bar
        ax.set_ylim(0, 100)
        ax.set_ylabel("Mean fidelity index")
        ax.set_title("Fidelity by month of enrolment")
        ax2.bar(k, bars, color=COLOURS["faint"])
        for ki, ni, ok in zip(k, n, show, strict=True):
            text = f"{int(ni):,}" if ok else hidden.get(int(ki), "")
            ax2.annotate(text, (ki, ni if ok else 0), ha="center", va="bottom", fontsize=7)
        ax2.set_ylabel("Scored")
        ax2.set_ylim(0, max(1, int(bars.max()) if len(bars) else 1) * 1.35)
        ax2.set_xticks(k, [d.strftime("%b %Y") for d in monthly["month"]], rotation=45, ha="right")
        ax2.set_xlabel("Month of enrolment")
    return monthly.loc[show, ["month_number", "n_scored", "mean_index"]]


# ----------------------------------------------------------------------------- case managers
def plot_case_managers(
    cm: pd.DataFrame,
    index: pd.Series,
    path,
    *,
    alpha: float,
    outer_z: float,
    hidden: Mapping,
    colour_training: bool,
) -> pd.DataFrame:
    """Funnel plot: case-manager mean index against their number of scored cases.

    Control limits: overall mean +/- z * SD / sqrt(n) with the person-level SD; inner at
    the analysis plan's confidence ``1 - alpha`` (z = its two-sided normal quantile), outer
    at ``outer_z`` (``fidelity.funnel_outer_z``). Case managers in ``hidden`` (their count
    suppressed) and those with no scored case are not plotted; training status is coloured
    only with ``colour_training``.
    """
    x = pd.Series(index, dtype=float).dropna()
    mean, sd = float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0
    d = cm[(cm["n_scored"] > 0) & ~cm["case_manager_id"].isin(list(hidden))]
    nmax = max(2, int(d["n_scored"].max()) if len(d) else 2)
    grid = np.linspace(1, nmax * 1.05, 200)
    z_inner = float(normal.norm_isf(alpha / 2))
    with figure(path, figsize=(7, 4.8)) as (_, ax):
        ax.axhline(mean, color=COLOURS["neutral"], linewidth=1, label="overall mean")
        for z, style, name in ((z_inner, "--", "inner limits"), (outer_z, ":", "outer limits")):
            for sign in (1, -1):
                ax.plot(
                    grid,
                    np.clip(mean + sign * z * sd / np.sqrt(grid), 0, 100),
                    color=COLOURS["neutral"],
                    linestyle=style,
                    linewidth=0.8,
                    label=name if sign == 1 else None,
                )
        if colour_training:
            trained = d["trained_before_first_enrolment"].fillna(False).astype(bool)
            ax.scatter(
                d.loc[trained, "n_scored"],
                d.loc[trained, "mean_index"],
                color=COLOURS["treated"],
                label="trained before first enrolment",
                zorder=3,
            )
            ax.scatter(
                d.loc[~trained, "n_scored"],
                d.loc[~trained, "mean_index"],
                color=COLOURS["comparator"],
                marker="s",
                label="not trained (or trained later)",
                zorder=3,
            )
        else:
            ax.scatter(
                d["n_scored"],
                d["mean_index"],
                color=COLOURS["treated"],
                label="case manager",
                zorder=3,
            )
        ax.set_ylim(0, 100)
        ax.set_xlabel("Cases scored (enrolled people with an index)")
        ax.set_ylabel("Mean fidelity index of their cases")
        ax.set_title("Case managers: funnel plot")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return d[["case_manager_id", "n_scored", "mean_index"]]


__all__ = [
    "BIN_WIDTH",
    "hidden_parts",
    "histogram_bars",
    "plot_case_managers",
    "plot_distribution",
    "plot_items",
    "plot_monthly",
]
