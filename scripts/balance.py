"""Rule balance: balance table, verdict and figures from the matched set (outcome-blind)."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mydirection.matching import (
    balance_table,
    balance_verdict,
    ecdf_plot,
    expand_covariates,
    love_plot,
    ps_overlap_plot,
    treatment_indicator,
)
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def main(snakemake):
    p = snakemake.params
    cohort = pd.read_parquet(snakemake.input.cohort).reset_index(drop=True)
    matched = pd.read_parquet(snakemake.input.matched, columns=["person_id", "weights"])
    prop = pd.read_parquet(snakemake.input.propensity, columns=["person_id", "ps"])
    unknown = ~matched["person_id"].isin(cohort["person_id"])
    if unknown.any():
        raise UserError(
            f"{snakemake.input.matched}, column person_id: {int(unknown.sum())} rows not in "
            "the cohort; rerun the match rule"
        )
    weights = (
        cohort["person_id"].map(matched.set_index("person_id")["weights"]).fillna(0.0).to_numpy()
    )
    try:
        treated = treatment_indicator(cohort, "treated")
        bal = balance_table(
            cohort,
            "treated",
            p.covariates,
            pd.Series(weights, index=cohort.index),
            categorical=p.categorical,
        )
    except ValueError as err:
        raise UserError(f"{snakemake.input.cohort}, {err}") from None
    verdict = balance_verdict(bal, p.smd_threshold, tuple(p.var_ratio_bounds))

    for path in snakemake.output:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    bal.to_parquet(snakemake.output.balance, index=False)
    Path(snakemake.output.verdict).write_text(
        json.dumps(verdict.as_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    )
    if verdict.ok:
        log.info(verdict.message)
    else:
        log.warning("!" * 72)
        log.warning("BALANCE NOT ACHIEVED -- %s", verdict.message)
        log.warning("!" * 72)

    love_plot(bal, snakemake.output.love_plot, p.smd_threshold)
    ps = cohort["person_id"].map(prop.set_index("person_id")["ps"]).to_numpy(dtype=float)
    ps_overlap_plot(ps, treated, weights, snakemake.output.ps_overlap)
    worst = verdict.worst_covariate
    values = expand_covariates(cohort, p.covariates, p.categorical)[worst].to_numpy()
    ecdf_plot(values, treated, weights, snakemake.output.ecdf_worst, worst)

    threshold = p.smd_threshold
    lo, hi = p.var_ratio_bounds
    n_imbalanced = len(set(verdict.smd_failures) | set(verdict.var_ratio_failures))
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        {
            "matching.max_abs_smd_before": number(
                verdict.max_abs_smd_before,
                "estimate",
                decimals=3,
                label="Largest |standardised mean difference| before matching",
            ),
            "matching.max_abs_smd_after": number(
                verdict.max_abs_smd_after,
                "estimate",
                decimals=3,
                label="Largest |standardised mean difference| after matching",
            ),
            "matching.balance_ok": number(verdict.text, "text", label="Covariate balance"),
            "matching.worst_covariate": number(
                worst, "text", label="Most imbalanced covariate after matching"
            ),
            "matching.n_covariates_imbalanced": number(
                n_imbalanced,
                "count",
                "covariates",
                label="Covariate levels failing a balance criterion",
            ),
            "matching.n_covariate_levels": number(len(bal), "count", "covariates"),
        },  # fmt: skip
        config_keys={
            "matching.covariates": list(p.covariates),
            "matching.categorical": list(p.categorical),
            "matching.smd_threshold": threshold,
            "matching.var_ratio_bounds": [lo, hi],
        },
        figures={
            "figures.love_plot": {
                "path": snakemake.output.love_plot,
                "caption": (
                    "Absolute standardised mean differences of each covariate (levels of "
                    "categorical covariates shown separately) before (open circles) and after "
                    f"matching (filled), with the {threshold:g} threshold. Denominator: the "
                    "treated group's SD before matching."
                ),
            },
            "figures.ps_overlap": {
                "path": snakemake.output.ps_overlap,
                "caption": (
                    "Propensity-score distributions of treated people and comparators before "
                    "matching and after matching (comparators weighted by matching weights)."
                ),
            },
            "figures.ecdf_worst": {
                "path": snakemake.output.ecdf_worst,
                "caption": (
                    f"Empirical cumulative distribution of {worst}, the covariate with the "
                    "largest |standardised mean difference| after matching, treated vs "
                    "comparators, before and after matching."
                ),
            },
        },
    )
    if not np.isfinite(verdict.max_abs_smd_after):
        log.warning("no balance after matching could be computed (nobody matched?)")


run(main, snakemake)
