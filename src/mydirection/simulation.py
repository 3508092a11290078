"""Simulation study: the whole pipeline against known truth.

Each replicate generates synthetic extracts with a planted programme effect, then runs the
same library chain the pipeline runs (clean -> cohort -> outcomes -> matching -> ATT) in
process, and records the estimate, its standard error, 95 % CI and p-value for

- ``matched``: the default matching specification (the pipeline's headline estimate);
- ``naive``: the unmatched difference in re-offending rates, treated vs all comparators;

in two scenarios: ``measured`` (selection into the programme on measured covariates only)
and ``hidden`` (the generator's ``hidden_confounding`` switched on: selection also on
something the extracts do not record, which matching cannot fix).

:func:`summarise` turns the replicate rows into bias, RMSE, coverage of the 95 % CI and the
rejection rate per (scenario, method), with Monte Carlo standard errors (Morris, White &
Crowther 2019, Stat Med 38:2074, table 6).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["REPLICATE_COLUMNS", "summarise"]

#: One row per (replicate, scenario, method) - the replicate job's output.
REPLICATE_COLUMNS = [
    "rep",
    "scenario",
    "method",
    "truth",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "n_treated",
    "n_control",
]


def summarise(reps: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Performance of each (scenario, method) over replicates.

    ``reps`` has :data:`REPLICATE_COLUMNS`; ``truth`` is the true effect the estimate
    targets in that replicate. Rows with a missing estimate (a replicate where the method
    failed, e.g. no match) are counted in ``n_failed`` and left out of the measures.

    Columns: ``n_reps``, ``n_failed``, ``truth`` (mean), ``mean_estimate``, ``bias`` (mean of
    estimate - truth), ``bias_mcse`` (``sd(estimate - truth) / sqrt(R)``), ``empirical_se``
    (SD of the estimates), ``model_se`` (root mean squared reported SE), ``rmse``
    (``sqrt(mean((estimate - truth)^2))``), ``coverage`` (share of CIs containing the truth),
    ``coverage_mcse`` (``sqrt(c (1 - c) / R)``), ``rejection_rate`` (share with
    ``p_value < alpha``).
    """
    missing = sorted(set(REPLICATE_COLUMNS) - set(reps.columns))
    if missing:
        raise ValueError(f"replicate table lacks columns {missing}")
    rows = []
    for (scenario, method), g in reps.groupby(["scenario", "method"], sort=True):
        ok = g.dropna(subset=["estimate", "se", "ci_low", "ci_high", "p_value", "truth"])
        r = len(ok)
        err = (ok["estimate"] - ok["truth"]).to_numpy(dtype=float)
        cover = ((ok["ci_low"] <= ok["truth"]) & (ok["truth"] <= ok["ci_high"])).to_numpy(
            dtype=float
        )
        reject = (ok["p_value"] < alpha).to_numpy(dtype=float)
        coverage = float(cover.mean()) if r else math.nan
        rows.append(
            {
                "scenario": scenario,
                "method": method,
                "n_reps": r,
                "n_failed": len(g) - r,
                "truth": float(ok["truth"].mean()) if r else math.nan,
                "mean_estimate": float(ok["estimate"].mean()) if r else math.nan,
                "bias": float(err.mean()) if r else math.nan,
                "bias_mcse": float(err.std(ddof=1) / math.sqrt(r)) if r > 1 else math.nan,
                "empirical_se": float(ok["estimate"].std(ddof=1)) if r > 1 else math.nan,
                "model_se": float(np.sqrt(np.mean(ok["se"].to_numpy(dtype=float) ** 2)))
                if r
                else math.nan,
                "rmse": float(np.sqrt(np.mean(err**2))) if r else math.nan,
                "coverage": coverage,
                "coverage_mcse": math.sqrt(coverage * (1 - coverage) / r) if r else math.nan,
                "rejection_rate": float(reject.mean()) if r else math.nan,
            }
        )
    return pd.DataFrame(rows)
