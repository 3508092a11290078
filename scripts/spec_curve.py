"""Gather the specifications into the specification curve (rule `spec_curve`)."""

import logging

import numpy as np
import pandas as pd

from mydirection import sensitivity as sens
from mydirection.numbers import number, write_numbers
from mydirection.runner import run

log = logging.getLogger("mydirection")


def main(snakemake):
    curve = pd.concat([pd.read_parquet(p) for p in snakemake.input.specs], ignore_index=True)
    curve = sens.sort_curve(curve)
    curve.to_parquet(snakemake.output.table, index=False)
    sens.plot_spec_curve(curve, snakemake.output.figure)
    ok = curve.dropna(subset=["estimate"])
    sig = (ok["ci_high"] < 0) | (ok["ci_low"] > 0)
    balanced = ok[ok["balance_ok"]]
    default = curve[curve["is_default"]]
    log.info("spec curve: %d specifications, %d estimable", len(curve), len(ok))
    n_key = "sensitivity.spec_n_estimable"
    numbers = {
        "sensitivity.spec_n": number(
            len(curve), "count", "specifications", label="Analysis specifications in the curve"
        ),
        n_key: number(
            len(ok), "count", "specifications", label="Specifications that could be estimated"
        ),
        "sensitivity.spec_share_balanced": number(
            len(balanced) / len(ok) if len(ok) else None,
            "proportion",
            label="Share of specifications achieving balance",
        ),
        "sensitivity.spec_share_negative": number(
            float((ok["estimate"] < 0).mean()) if len(ok) else None,
            "proportion",
            label="Share of estimates below zero (fewer re-offenders)",
        ),
        "sensitivity.spec_share_significant": number(
            float(sig.mean()) if len(ok) else None,
            "proportion",
            label="Share of specifications with a 95% CI excluding zero",
        ),
        "sensitivity.spec_median_estimate": number(
            float(np.median(ok["estimate"])) if len(ok) else None,
            "pp",
            label="Median difference in re-offending rate over specifications",
        ),
        "sensitivity.spec_min_estimate": number(
            float(ok["estimate"].min()) if len(ok) else None,
            "pp",
            label="Smallest difference over specifications",
        ),
        "sensitivity.spec_max_estimate": number(
            float(ok["estimate"].max()) if len(ok) else None,
            "pp",
            label="Largest difference over specifications",
        ),
        "sensitivity.spec_median_estimate_balanced": number(
            float(np.median(balanced["estimate"])) if len(balanced) else None,
            "pp",
            label="Median difference over specifications achieving balance",
        ),
    }
    if len(default):
        numbers["sensitivity.spec_default_rank"] = number(
            int(default["rank"].iloc[0]),
            "estimate",
            decimals=0,
            label="Rank of the headline specification among the sorted estimates",
        )
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        numbers,
        config_keys={f"sensitivity.spec_curve.{k}": v for k, v in snakemake.params.grid.items()},
        figures={
            "figures.spec_curve": {
                "path": snakemake.output.figure,
                "caption": (
                    "Specification curve: the difference in the proven re-offending rate "
                    "(treated minus matched comparison, percentage points, 95% CI) under every "
                    "combination of defensible analysis choices, sorted by estimate; filled "
                    "points achieved covariate balance, red intervals exclude zero. The panel "
                    "below marks the choices of each specification."
                ),
            }
        },
    )


run(main, snakemake)
