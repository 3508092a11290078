"""Rule subgroups: the binary ATT within subgroups (sex, sentence type, OGRS3 band by
default) on the matched sample, each with its n and CI, and a forest plot."""

import logging
import re
from pathlib import Path

import pandas as pd

from mydirection.effects import (
    att,
    matched_sample,
    merge_outcomes,
    ogrs3_band,
    plot_forest,
    subgroup_effects,
)
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def _key(text) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


def main(snakemake):
    p = snakemake.params
    matched = pd.read_parquet(snakemake.input.matched)
    outcomes = pd.read_parquet(snakemake.input.outcomes)
    data = merge_outcomes(matched, outcomes, snakemake.input.matched, snakemake.input.outcomes)
    band = dict(p.ogrs3_band)
    if "ogrs3_band" in p.subgroups:
        if band["column"] not in data:
            raise UserError(
                f"{snakemake.input.matched}, column {band['column']}: missing; set "
                "effects.ogrs3_band.column or drop ogrs3_band from effects.subgroups"
            )
        if len(band["labels"]) != len(band["cuts"]) + 1:
            raise UserError("config effects.ogrs3_band: labels must be one more than cuts")
        data["ogrs3_band"] = ogrs3_band(data[band["column"]], band["cuts"], band["labels"])
    missing = [v for v in p.subgroups if v not in data]
    if missing:
        raise UserError(
            f"config effects.subgroups: {missing[0]} is not a column of "
            f"{snakemake.input.matched}; use cohort columns (docs/stages.md) or ogrs3_band"
        )
    m = matched_sample(data, "treated", replace=bool(p.replace))
    table = subgroup_effects(
        m, "reoffended", p.subgroups, kind="binary", min_treated=p.min_treated,
        min_control=p.min_comparison,
    )  # fmt: skip
    overall = att(m, "reoffended", kind="binary")
    for path in snakemake.output:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(snakemake.output.table, index=False)
    plot_forest(
        table, overall, snakemake.output.figure,
        "Proven re-offending rate difference by subgroup (matched sample)",
    )  # fmt: skip
    log.info("subgroup levels: %d, shown: %d", len(table), int(table["shown"].sum()))
    nums = {
        "subgroups.n_levels": number(len(table), "estimate", "subgroup levels", decimals=0),
        "subgroups.n_shown": number(int(table["shown"].sum()), "estimate", "subgroup levels",
                                    decimals=0),
    }  # fmt: skip
    for r in table.itertuples():
        k = f"subgroups.{_key(r.variable)}.{_key(r.level)}."
        counts = [k + "n_treated", k + "n_comparison"]
        nums[k + "n_treated"] = number(r.n_treated, "count", "people")
        nums[k + "n_comparison"] = number(r.n_control, "count", "people")
        if r.shown:
            nums[k + "rate_difference"] = number(r.estimate, "pp", derived_from=counts)
            nums[k + "rate_difference_ci_low"] = number(r.ci_low, "pp", derived_from=counts)
            nums[k + "rate_difference_ci_high"] = number(r.ci_high, "pp", derived_from=counts)
            nums[k + "rate_difference_p"] = number(r.p_value, "p_value", derived_from=counts)
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        nums,
        config_keys={
            "effects.subgroups": list(p.subgroups),
            "effects.min_subgroup_treated": p.min_treated,
            "effects.min_subgroup_comparison": p.min_comparison,
            "effects.ogrs3_band": band,
            "matching.replace": bool(p.replace),
        },
        figures={
            "figures.subgroups_forest": {
                "path": snakemake.output.figure,
                "caption": "Difference in the proven re-offending rate (percentage points, "
                "treated minus matched comparison) overall and by subgroup, with 95% "
                f"confidence intervals; subgroups with fewer than {p.min_treated} treated or "
                f"{p.min_comparison} comparison people are not shown.",
            }
        },
    )


run(main, snakemake)
