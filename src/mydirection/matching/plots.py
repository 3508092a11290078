"""Balance figures: the Love plot, propensity-score overlap and the eCDF of one covariate."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
