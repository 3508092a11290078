"""Rule match: greedy nearest-neighbour matching on the propensity scores (outcome-blind)."""

import logging
from pathlib import Path

import pandas as pd

from mydirection.matching import match
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def main(snakemake):
    p = snakemake.params
    cohort = pd.read_parquet(snakemake.input.cohort).reset_index(drop=True)
    prop = pd.read_parquet(snakemake.input.propensity)
    if (
        len(prop) != len(cohort)
        or not (prop["person_id"].to_numpy() == cohort["person_id"].to_numpy()).all()
    ):
        raise UserError(
            f"{snakemake.input.propensity}, column person_id: does not list the cohort's "
            "people in cohort order; rerun the propensity rule"
        )
    try:
        m = match(
            cohort,
            "treated",
            p.covariates,
            categorical=p.categorical,
            distance=p.distance,
            ratio=p.ratio,
            replace=p.replace,
            caliper=p.caliper,
            order=p.order,
            exact=p.exact,
            discard=p.discard,
            seed=p.seed,
            propensity=prop[["ps", "logit_ps"]],
        )
    except ValueError as err:
        raise UserError(f"{snakemake.input.cohort}, {err}") from None

    ids = cohort["person_id"]
    pairs = pd.DataFrame(
        {
            "treated_id": ids.loc[m.pairs["treated"]].to_numpy(),
            "control_id": ids.loc[m.pairs["control"]].to_numpy(),
            "round": m.pairs["round"].to_numpy(),
            "subclass": m.pairs["subclass"].to_numpy(),
        }
    )
    for path in snakemake.output:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    m.data.to_parquet(snakemake.output.matched, index=False)
    pairs.to_parquet(snakemake.output.pairs, index=False)
    m.counts.to_parquet(snakemake.output.counts, index=False)

    c = m.counts.set_index("group")
    for group in ("treated", "control"):
        log.info(
            "%s: %d in cohort, %d matched, %d unmatched, %d discarded",
            group,
            c.loc[group, "all"],
            c.loc[group, "matched"],
            c.loc[group, "unmatched"],
            c.loc[group, "discarded"],
        )
    if c.loc["treated", "unmatched"] + c.loc["treated", "discarded"] > 0:
        log.warning(
            "%d treated people were not matched (caliper %s SD of %s)",
            c.loc["treated", "unmatched"] + c.loc["treated", "discarded"],
            p.caliper,
            p.distance,
        )
    n = {g: {k: int(c.loc[g, k]) for k in c.columns} for g in c.index}
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        {
            "matching.n_treated_matched": number(
                n["treated"]["matched"], "count", "people", label="Treated people matched"
            ),
            "matching.n_control_matched": number(
                n["control"]["matched"], "count", "people", label="Comparators matched"
            ),
            "matching.n_treated_unmatched": number(
                n["treated"]["unmatched"] + n["treated"]["discarded"],
                "count",
                "people",
                label="Treated people without a match (caliper or common support)",
            ),
            "matching.n_treated": number(n["treated"]["all"], "count", "people"),
            "matching.n_control_pool": number(n["control"]["all"], "count", "people"),
        },
        config_keys={
            "matching.covariates": list(p.covariates),
            "matching.categorical": list(p.categorical),
            "matching.distance": p.distance,
            "matching.ratio": p.ratio,
            "matching.replace": p.replace,
            "matching.caliper": p.caliper,
            "matching.order": p.order,
            "matching.exact": list(p.exact),
            "matching.discard": p.discard,
            "seed": p.seed,
        },
    )


run(main, snakemake)
