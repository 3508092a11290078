"""Rule effects: the JDL headline table (rate, frequency, time to first re-offence) on the
matched sample, with the "for every 100 typical people" reading."""

import logging
from pathlib import Path

import pandas as pd

from mydirection.effects import (
    att,
    headline_table,
    matched_sample,
    merge_outcomes,
    people_needed,
    time_to_first,
    typical_100_sentence,
)
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def main(snakemake):
    p = snakemake.params
    matched = pd.read_parquet(snakemake.input.matched)
    outcomes = pd.read_parquet(snakemake.input.outcomes)
    data = merge_outcomes(matched, outcomes, snakemake.input.matched, snakemake.input.outcomes)
    missing = [c for c in p.covariates if c not in data.columns]
    if missing:
        raise UserError(
            f"config effects.covariates: {missing[0]} is not a column of "
            f"{snakemake.input.matched}; use cohort covariates (docs/stages.md)"
        )
    log.info(
        "matched rows: %d; incomplete follow-up left out: %d", len(data), data.attrs["n_incomplete"]
    )
    m = matched_sample(data, "treated", replace=bool(p.replace))
    try:
        rate = att(m, "reoffended", kind="binary", covariates=p.covariates)
        freq = att(m, "n_reoffences", kind="count", covariates=p.covariates)
    except ValueError as err:
        raise UserError(
            f"{snakemake.input.matched}, column treated: {err}; check matching"
        ) from err
    effects = {"rate": rate, "frequency": freq}
    try:
        effects["time_to_first"] = time_to_first(m)
    except ValueError:
        log.info("time to first re-offence: a group has no re-offenders; measure left out")
    table = headline_table(effects)
    Path(snakemake.output.headline).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(snakemake.output.headline, index=False)
    log.info("ATT standard errors: %s", rate.se_type)

    period = "a one-year period" if p.followup_days == 365 else f"{p.followup_days} days"
    t = data["treated"].astype(bool) & data["reoffended"].notna()
    c = ~data["treated"].astype(bool) & data["reoffended"].notna()
    n_re_t = int(data.loc[t, "reoffended"].sum())
    n_re_c = int(data.loc[c, "reoffended"].sum())
    counts = ["reoffending.n_treated", "reoffending.n_reoffenders_treated"]
    ccounts = ["reoffending.n_comparison", "reoffending.n_reoffenders_comparison"]
    both = counts + ccounts
    R = "reoffending."
    nums = {
        R + "n_treated": number(rate.n_treated, "count", "people", label="Treated (matched)"),
        R + "n_comparison": number(rate.n_control, "count", "people", label="Comparison (matched)"),
        R + "n_reoffenders_treated": number(n_re_t, "count", "people"),
        R + "n_reoffenders_comparison": number(n_re_c, "count", "people"),
        R + "n_incomplete_followup": number(data.attrs["n_incomplete"], "count", "people"),
        R + "rate_treated": number(rate.mean_treated, "proportion", derived_from=counts),
        R + "rate_comparison": number(
            rate.mean_control, "proportion", derived_from=ccounts, label="weighted"
        ),
        R + "rate_difference": number(rate.estimate, "pp", derived_from=both),
        R + "rate_difference_ci_low": number(rate.ci_low, "pp", derived_from=both),
        R + "rate_difference_ci_high": number(rate.ci_high, "pp", derived_from=both),
        R + "rate_difference_p": number(rate.p_value, "p_value", derived_from=both),
        R + "rate_significant": number("yes" if rate.significant else "no", "text"),
        R + "risk_ratio": number(rate.ratio, "ratio", derived_from=both),
        R + "risk_ratio_ci_low": number(rate.ratio_ci_low, "ratio", derived_from=both),
        R + "risk_ratio_ci_high": number(rate.ratio_ci_high, "ratio", derived_from=both),
        R + "frequency_treated": number(
            freq.mean_treated, "mean", "re-offences per person", derived_from=counts
        ),
        R + "frequency_comparison": number(
            freq.mean_control, "mean", "re-offences per person", derived_from=ccounts
        ),
        R + "frequency_difference": number(freq.estimate, "estimate", "re-offences per person"),
        R + "frequency_difference_ci_low": number(
            freq.ci_low, "estimate", "re-offences per person"
        ),
        R + "frequency_difference_ci_high": number(
            freq.ci_high, "estimate", "re-offences per person"
        ),
        R + "frequency_difference_p": number(freq.p_value, "p_value"),
        R + "frequency_significant": number("yes" if freq.significant else "no", "text"),
        R + "rate_ratio": number(freq.ratio, "ratio"),
        R + "rate_ratio_ci_low": number(freq.ratio_ci_low, "ratio"),
        R + "rate_ratio_ci_high": number(freq.ratio_ci_high, "ratio"),
        R + "typical_100_sentence": number(typical_100_sentence(rate, period), "text"),
        R + "frequency_typical_100_sentence": number(typical_100_sentence(freq, period), "text"),
        R + "people_needed": number(
            people_needed(rate),
            "estimate",
            "treated people",
            decimals=0,
            label="Treated people needed for the observed rate difference to be significant",
        ),  # fmt: skip
        R + "se_type": number(rate.se_type, "text"),
    }
    if "time_to_first" in effects:
        ttf = effects["time_to_first"]
        for name, value in [
            ("treated", ttf.mean_treated),
            ("comparison", ttf.mean_control),
            ("difference", ttf.estimate),
            ("difference_ci_low", ttf.ci_low),
            ("difference_ci_high", ttf.ci_high),
        ]:
            nums[R + f"time_to_first_{name}"] = number(value, "days", derived_from=both)
        nums[R + "time_to_first_difference_p"] = number(ttf.p_value, "p_value", derived_from=both)
    for name, e in effects.items():
        log.info(
            "%s: difference %.4f (95%% CI %.4f to %.4f), p = %.3f",
            name, e.estimate, e.ci_low, e.ci_high, e.p_value,
        )  # fmt: skip
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        nums,
        config_keys={
            "effects.covariates": list(p.covariates),
            "matching.replace": bool(p.replace),
            "outcomes.followup_days": p.followup_days,
        },
    )


run(main, snakemake)
