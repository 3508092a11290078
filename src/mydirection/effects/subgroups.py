"""Effects within subgroups (sex, sentence type, OGRS3 band, ...) and the forest plot."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.effects.att import Effect, MatchedSample, att


def ogrs3_band(score: pd.Series, cuts=(50, 75, 90), labels=("low", "medium", "high", "very_high")):
    """OGRS3 band from a 0-100 score: ``[0, 50)`` low, ``[50, 75)`` medium, ``[75, 90)``
    high, ``[90, 100]`` very high by default (the OGRS3 bands of the two-year score)."""
    if len(labels) != len(cuts) + 1:
        raise ValueError("ogrs3 band labels must be one more than the cut points")
    bins = [-np.inf, *cuts, np.inf]
    return pd.cut(score, bins=bins, labels=list(labels), right=False)  # ordered categorical


def subgroup_effects(
    m,
    outcome: str,
    variables,
    kind: str = "binary",
    min_treated: int = 30,
    min_control: int = 30,
) -> pd.DataFrame:
    """ATT within each level of each subgroup variable.

    Without replacement a matched set belongs to the subgroup of its treated member (the
    controls follow their treated person, so matched sets stay whole); with replacement
    (or without ``subclass``) every person belongs to their own level. A level is estimated
    only when it has at least ``min_treated`` treated and ``min_control`` comparison people
    (``shown``); smaller levels are listed with their n and no estimate.
    """
    data = m.data
    t = data[m.treatment].astype(bool)
    by_set = not m.replace and "subclass" in data and data["subclass"].notna().all()
    rows = []
    for var in variables:
        if var not in data:
            raise KeyError(f"subgroup variable {var!r} is not a column of the matched data")
        level = data[var]
        if isinstance(level.dtype, pd.CategoricalDtype):
            order = [str(c) for c in level.cat.categories]
            level = level.astype(object).where(level.notna(), None)
        else:
            order = sorted({str(v) for v in level.dropna()})
        if by_set:
            treated_level = data.loc[t].drop_duplicates("subclass").set_index("subclass")[var]
            level = data["subclass"].map(treated_level)
        level = level.map(lambda v: None if pd.isna(v) else str(v))
        present_levels = set(level.dropna())
        for value in [v for v in order if v in present_levels]:
            sub = data[level == value]
            present = sub[outcome].notna() & (sub["weights"] > 0)
            st = sub.loc[present, m.treatment].astype(bool)
            n_t, n_c = int(st.sum()), int((~st).sum())
            row = {
                "variable": var,
                "level": str(value),
                "n_treated": n_t,
                "n_control": n_c,
                "shown": n_t >= min_treated and n_c >= min_control,
            }
            if row["shown"]:
                e = att(MatchedSample(sub, m.treatment, m.replace), outcome, kind=kind)
                row.update(
                    mean_treated=e.mean_treated,
                    mean_control=e.mean_control,
                    estimate=e.estimate,
                    se=e.se,
                    ci_low=e.ci_low,
                    ci_high=e.ci_high,
                    p_value=e.p_value,
                )
            rows.append(row)
    cols = ["variable", "level", "n_treated", "n_control", "shown", "mean_treated",
            "mean_control", "estimate", "se", "ci_low", "ci_high", "p_value"]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=cols)


def plot_forest(subgroups: pd.DataFrame, overall: Effect | None, path, title: str) -> None:
    """Forest plot of subgroup ATTs (percentage points for a binary outcome)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = subgroups[subgroups["shown"]].reset_index(drop=True)
    scale = 100.0 if overall is None or overall.kind == "binary" else 1.0
    labels, est, lo, hi = [], [], [], []
    if overall is not None:
        labels.append(f"All matched (n = {overall.n_treated:,} / {overall.n_control:,})")
        est.append(overall.estimate * scale)
        lo.append(overall.ci_low * scale)
        hi.append(overall.ci_high * scale)
    for r in shown.itertuples():
        name = f"{r.variable}: {r.level}".replace("_", " ").capitalize().replace("Ogrs3", "OGRS3")
        labels.append(f"{name} (n = {r.n_treated:,} / {r.n_control:,})")
        est.append(r.estimate * scale)
        lo.append(r.ci_low * scale)
        hi.append(r.ci_high * scale)
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(labels), 2) + 1.5))
    y = np.arange(len(labels))[::-1]
    if labels:
        err = [np.subtract(est, lo), np.subtract(hi, est)]
        ax.errorbar(est, y, xerr=err, fmt="o", color="black", capsize=3)
        if overall is not None:
            ax.plot(est[0], y[0], "D", color="tab:blue", markersize=8)
    else:
        ax.text(0.5, 0.5, "No subgroup large enough to show", ha="center", transform=ax.transAxes)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, labels)
    unit = "percentage points" if scale == 100 else "difference in means"
    ax.set_xlabel(f"Treated minus comparison ({unit}), 95% CI\nn = treated / comparison")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)
