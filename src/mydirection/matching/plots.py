"""Balance figures: the Love plot, propensity-score overlap and the eCDF of one covariate
(readable covariate names, colour-blind-safe colours, nothing cut off)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.reporting.figures import COLOURS, figure
from mydirection.reporting.labels import covariate as covariate_label


def love_plot(balance: pd.DataFrame, path, smd_threshold: float) -> None:
    """|SMD| per covariate level before and after adjustment, with the threshold line."""
    b = balance.iloc[::-1]
    y = np.arange(len(b))
    names = [covariate_label(v, lv) for v, lv in zip(b["variable"], b["level"], strict=True)]
    with figure(path, figsize=(7.5, max(3.0, 0.26 * len(b) + 1.4))) as (_, ax):
        ax.scatter(b["smd_before"].abs(), y, marker="o", facecolors="none",
                   edgecolors=COLOURS["neutral"], label="before matching")  # fmt: skip
        ax.scatter(b["smd_after"].abs(), y, marker="o", color=COLOURS["treated"],
                   label="after matching")  # fmt: skip
        ax.axvline(smd_threshold, color=COLOURS["highlight"], linestyle="--", linewidth=1,
                   label="balance threshold")  # fmt: skip
        ax.set_yticks(y, names, fontsize=7)
        ax.set_xlabel(
            "Absolute standardised mean difference\n(denominator: participants' SD before matching)"
        )
        ax.set_title("Covariate balance before and after matching")
        ax.set_xlim(left=0)
        ax.legend(loc="lower right", fontsize=7, frameon=True)


def _groups(treated):
    return (
        (treated, COLOURS["treated"], "participants"),
        (~treated, COLOURS["comparator"], "comparators"),
    )


def ps_overlap_plot(ps, treated, weights, path) -> None:
    """Propensity-score densities, participants vs comparators, before and after matching
    (after: weighted by the matching weights)."""
    ps, treated, weights = (np.asarray(a, float) for a in (ps, treated, weights))
    treated = treated.astype(bool)
    bins = np.linspace(0, 1, 21)
    with figure(path, 1, 2, figsize=(9, 3.6), sharey=True) as (fig, axes):
        for ax, title, w in ((axes[0], "Before matching", np.ones_like(ps)),
                             (axes[1], "After matching", weights)):  # fmt: skip
            for group, colour, label in _groups(treated):
                sel = group & (w > 0)
                if sel.any():
                    ax.hist(ps[sel], bins=bins, weights=w[sel], density=True, histtype="step",
                            color=colour, label=label, linewidth=1.4)  # fmt: skip
            ax.set_title(title)
            ax.set_xlabel("Propensity score")
        axes[0].set_ylabel("Density")
        axes[1].legend(fontsize=8)
        fig.suptitle("Propensity-score overlap")


def ecdf_plot(values, treated, weights, path, covariate: str, level=None) -> None:
    """Empirical CDFs of one covariate, participants vs comparators, before and after."""
    x = np.asarray(values, float)
    treated = np.asarray(treated, bool)
    weights = np.asarray(weights, float)
    name = covariate_label(covariate, level)
    with figure(path, 1, 2, figsize=(9, 3.6), sharey=True) as (fig, axes):
        for ax, title, w in ((axes[0], "Before matching", np.ones_like(x)),
                             (axes[1], "After matching", weights)):  # fmt: skip
            for group, colour, label in _groups(treated):
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
            ax.set_xlabel(name)
        axes[0].set_ylabel("Cumulative proportion")
        axes[1].legend(fontsize=8)
        fig.suptitle(f"The least balanced covariate after matching: {name}")
