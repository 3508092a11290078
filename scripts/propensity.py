"""Rule propensity: propensity scores for every cohort member (outcome-blind)."""

import logging
from pathlib import Path

import pandas as pd

from mydirection.matching import fit_propensity, n_outside_support, treatment_indicator
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def main(snakemake):
    p = snakemake.params
    path = snakemake.input.cohort
    cohort = pd.read_parquet(path)
    try:
        treated = treatment_indicator(cohort, "treated")
        prop = fit_propensity(cohort, "treated", p.covariates, p.categorical)
    except ValueError as err:
        raise UserError(f"{path}, {err}") from None
    out = pd.DataFrame(
        {
            "person_id": cohort["person_id"].to_numpy(),
            "treated": treated,
            "ps": prop["ps"].to_numpy(),
            "logit_ps": prop["logit_ps"].to_numpy(),
        }
    )
    Path(snakemake.output.propensity).parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(snakemake.output.propensity, index=False)
    outside = n_outside_support(out["ps"], treated)
    log.info(
        "propensity: %d treated, %d comparators, %d treated outside the comparators' range",
        int(treated.sum()),
        int((~treated).sum()),
        outside,
    )
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        {
            "matching.n_treated_outside_support": number(
                outside,
                "count",
                "people",
                label="Treated people with a propensity score outside the comparators' range",
            ),
        },
        config_keys={
            "matching.covariates": list(p.covariates),
            "matching.categorical": list(p.categorical),
        },
    )


run(main, snakemake)
