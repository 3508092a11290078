"""The specification curve: the headline analysis re-run under every combination of
defensible choices (Simonsohn, Simmons & Nelson 2020), sorted by estimate.

Every specification is ``dataclasses.replace(headline_spec, **choice)``: the chosen design
(after the revisions) with some of its choices changed, run through the one headline path
(:func:`mydirection.pipeline.headline`: design -> analysis sample -> estimate). The choice
equal to the headline's own reproduces the headline to the last bit (a test checks).

- The grid (``sensitivity.spec_curve``) is the full cross product of the distances,
  calipers (``None`` = none), ratios, replacement and named exact-matching sets, once per
  follow-up window, plus inverse-probability weighting once per window. The headline
  specification is added when the grid lacks it.
- A follow-up window's outcomes are computed once and shared by its specifications; the
  chosen design's propensity scores are shared by every specification that keeps its
  propensity model.
- The specifications are split into batch jobs (round-robin over the sorted names); each
  specification's row depends on nothing but the specification, so the gathered curve is
  the same whatever the number of batches (a test checks the bytes).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from mydirection.sensitivity.grid import (  # noqa: F401  (the grid lives there: light)
    CHOICES,
    _caliper_name,
    batch_of,
    exact_name,
    grid_choices,
    headline_choice,
    spec_name,
)
from mydirection.settings import AnalysisSpec

COLUMNS = [
    "spec", "method", "distance", "caliper", "ratio", "replace", "exact", "followup_days",
    "is_headline", "estimate", "se", "ci_low", "ci_high", "p_value", "mean_treated",
    "mean_comparator", "n_treated", "n_comparators", "max_abs_smd_after", "balance_ok", "error",
]  # fmt: skip


def window_outcomes(cohort, convictions, windows, waiting_days: int, extract_end_date) -> dict:
    """Each follow-up window's outcomes, computed once (the outcomes stage's function)."""
    from mydirection.outcomes import proven_reoffending

    return {
        int(fu): proven_reoffending(cohort, convictions, int(fu), waiting_days, extract_end_date)
        for fu in sorted(set(windows))
    }


def run_spec(
    cohort: pd.DataFrame,
    outcomes: pd.DataFrame,
    headline: AnalysisSpec,
    choice: dict,
    name: str,
    propensity=None,
    preparations=None,
) -> dict:
    """One specification through the headline path; a row of the curve. A specification
    that cannot be estimated (nobody matched inside a narrow caliper, a model that does not
    converge) gets missing estimates and its reason in ``error``. ``preparations``: shared
    by the specifications of a batch (:class:`mydirection.matching.Preparations`)."""
    from mydirection import pipeline

    spec = dataclasses.replace(headline, **choice, revisions=())
    row = {
        "spec": name,
        **{k: choice[k] for k in CHOICES},
        "exact": ",".join(choice["exact"]) or "none",
        "caliper": _caliper_name(choice["caliper"]),
        "ratio": int(choice["ratio"]) if choice["method"] != "ipw" else 0,
        "distance": choice["distance"] if choice["method"] != "ipw" else "ipw",
        "is_headline": headline_choice(headline) == choice,
    }
    try:
        h = pipeline.headline(cohort, outcomes, spec, propensity, preparations)
    except ValueError as err:
        nan = dict.fromkeys(COLUMNS[9:19], math.nan)
        return {
            **row,
            **nan,
            "n_treated": 0,
            "n_comparators": 0,
            "balance_ok": False,
            "error": str(err),
        }
    e, v = h.rate, h.design.verdict
    return {
        **row,
        "estimate": e.estimate,
        "se": e.se,
        "ci_low": e.ci_low,
        "ci_high": e.ci_high,
        "p_value": e.p_value,
        "mean_treated": e.mean_treated,
        "mean_comparator": e.mean_comparator,
        "n_treated": e.n_treated,
        "n_comparators": e.n_comparators,
        "max_abs_smd_after": v.max_abs_smd_after,
        "balance_ok": bool(v.ok),
        "error": "",
    }


def run_batch(cohort, outcomes_by_window: dict, headline, choices: dict, propensity=None):
    """The rows of a batch of specifications (one follow-up window's outcomes each)."""
    from mydirection.matching import Preparations

    shared = Preparations()  # one cohort: its covariates expanded once for the batch
    rows = [
        run_spec(
            cohort, outcomes_by_window[c["followup_days"]], headline, c, name, propensity, shared
        )
        for name, c in choices.items()
    ]
    return pd.DataFrame(rows, columns=COLUMNS).astype(
        {"n_treated": "int64", "n_comparators": "int64", "followup_days": "int64", "ratio": "int64"}
    )


def sort_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Specifications sorted by estimate (stable; ties and NaNs by name), with ``rank``."""
    out = curve.drop(columns="rank", errors="ignore")
    out = out.sort_values("spec", kind="stable").sort_values(
        "estimate", kind="stable", na_position="last"
    )
    out = out.reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _choice_rows(curve: pd.DataFrame) -> list[tuple[str, str, object]]:
    """Rows of the choice panel: (label, column, value) per option."""
    rows: list[tuple[str, str, object]] = []
    for col, label in (
        ("distance", "distance"),
        ("caliper", "caliper"),
        ("ratio", "ratio"),
        ("replace", "replacement"),
        ("exact", "exact"),
        ("followup_days", "follow-up days"),
    ):
        values = sorted(set(curve[col].tolist()), key=str)
        if col == "distance":
            order = ["ps", "logit_ps", "mahalanobis", "ipw"]
            values = sorted(values, key=lambda v: (order.index(v) if v in order else 9, v))
        for v in values:
            if col == "ratio" and v == 0:
                continue  # IPW has no ratio
            text = {True: "with", False: "without"}.get(v, v) if col == "replace" else v
            rows.append((f"{label}: {text}", col, v))
    return rows


def plot_spec_curve(curve: pd.DataFrame, path, ci_level: float) -> None:
    """Sorted estimates with their intervals above (percentage points; filled when balance
    was achieved, vermillion when the interval excludes zero), the choices below. The
    figure widens with the number of specifications so that its labels stay legible."""
    from mydirection.reporting.figures import COLOURS, figure

    c = sort_curve(curve)
    rows = _choice_rows(c)
    x = c["rank"].to_numpy()
    width = min(40.0, max(8.0, 0.09 * len(c) + 4))
    with figure(path, 2, 1, sharex=True, figsize=(width, 4.2 + 0.24 * len(rows)),
                gridspec_kw={"height_ratios": [2.2, 0.24 * len(rows)]}) as (_, (top, bottom)):  # fmt: skip
        est, lo, hi = (100 * c[k].to_numpy(dtype=float) for k in ("estimate", "ci_low", "ci_high"))
        ok = c["balance_ok"].to_numpy(dtype=bool)
        sig = ((c["ci_high"] < 0) | (c["ci_low"] > 0)).to_numpy()
        colour = np.where(sig, COLOURS["highlight"], COLOURS["neutral"])
        top.vlines(x, lo, hi, colors=colour, linewidth=0.8, alpha=0.7)
        top.scatter(x[ok], est[ok], c=colour[ok], s=14, zorder=3, label="balance achieved")
        top.scatter(x[~ok], est[~ok], facecolors="white", edgecolors=colour[~ok], s=14, zorder=3,
                    label="balance not achieved")  # fmt: skip
        if c["is_headline"].any():
            d = c.loc[c["is_headline"], "rank"].to_numpy()
            top.scatter(d, est[d - 1], marker="D", s=46, facecolors="none",
                        edgecolors=COLOURS["treated"], zorder=4, label="headline specification")  # fmt: skip
        top.axhline(0, color="black", linewidth=0.6, linestyle="--")
        top.set_ylabel(
            f"Difference in re-offending rate\n(percentage points, {100 * ci_level:.10g}% interval)"
        )
        top.set_title("Specification curve")
        top.legend(loc="upper left", fontsize=8, frameon=True)
        for i, (_, col, v) in enumerate(rows):
            used = (c[col] == v).to_numpy()
            bottom.scatter(x[used], np.full(used.sum(), i), s=8, color="#333333", marker="s")
        bottom.set_yticks(range(len(rows)))
        bottom.set_yticklabels([r[0] for r in rows], fontsize=8)
        bottom.set_ylim(len(rows) - 0.5, -0.5)
        bottom.set_xlabel("Specification (sorted by estimate)")
        bottom.set_xlim(0, len(c) + 1)


def curve_numbers(curve: pd.DataFrame):
    """The curve's summary numbers (``spec_curve.*``). Counts of specifications are
    not counts of people; the estimates are derived from the headline's group counts (a
    specification's groups are no smaller than the headline's in this design)."""
    from mydirection.reporting.numbers import Numbers

    n = Numbers()
    ok = curve.dropna(subset=["estimate"])
    sig = (ok["ci_high"] < 0) | (ok["ci_low"] > 0)
    balanced = ok[ok["balance_ok"]]
    src = ["reoffending.n_treated", "reoffending.n_comparison"]
    n.add("spec_curve.n", len(curve), "count", "Analysis specifications in the curve",
          unit="specifications")  # fmt: skip
    n.add("spec_curve.n_estimable", len(ok), "count",
          "Specifications that could be estimated", unit="specifications")  # fmt: skip

    def share(key, value, label):
        n.add(key, float(value) if len(ok) else None, "proportion", label)

    share("spec_curve.share_balanced", len(balanced) / len(ok) if len(ok) else 0,
          "Share of specifications achieving balance")  # fmt: skip
    share("spec_curve.share_negative", (ok["estimate"] < 0).mean() if len(ok) else 0,
          "Share of specifications estimating fewer re-offenders among participants")  # fmt: skip
    share("spec_curve.share_significant", sig.mean() if len(ok) else 0,
          "Share of specifications whose interval excludes zero")  # fmt: skip
    for key, f, values, label in (
        ("spec_curve.median_estimate", np.median, ok["estimate"], "Median difference in the rate over specifications"),
        ("spec_curve.min_estimate", np.min, ok["estimate"], "Smallest difference over specifications"),
        ("spec_curve.max_estimate", np.max, ok["estimate"], "Largest difference over specifications"),
        ("spec_curve.median_estimate_balanced", np.median, balanced["estimate"],
         "Median difference over specifications achieving balance"),
    ):  # fmt: skip
        n.add(key, float(f(values)) if len(values) else None, "pp", label, derived_from=src)
    head = curve[curve["is_headline"]]
    if len(head):
        n.add("spec_curve.headline_rank", int(head["rank"].iloc[0]), "count",
              "Rank of the headline specification among the sorted estimates",
              unit="specifications")  # fmt: skip
    return n


__all__ = [
    "CHOICES",
    "COLUMNS",
    "batch_of",
    "curve_numbers",
    "grid_choices",
    "headline_choice",
    "plot_spec_curve",
    "run_batch",
    "run_spec",
    "sort_curve",
    "spec_name",
]
