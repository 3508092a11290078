"""Power and minimum detectable effect for the achieved matched sample (rule `power`)."""

import logging
import math

import pandas as pd

from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run
from mydirection.sensitivity import power as pw

log = logging.getLogger("mydirection")


def matched_outcomes(matched_path: str, outcomes_path: str, columns) -> pd.DataFrame:
    """The matched rows with their outcomes (people without an outcome row are dropped)."""
    matched = pd.read_parquet(matched_path, columns=["person_id", "treated", "weights"])
    outcomes = pd.read_parquet(outcomes_path)
    missing = [c for c in ["person_id", *columns] if c not in outcomes.columns]
    if missing:
        raise UserError(
            f"{outcomes_path}, column {missing[0]}: not found; set power.rate_outcome / "
            "power.frequency_outcome to columns of outcomes.parquet"
        )
    data = matched.merge(outcomes[["person_id", *columns]], on="person_id", how="inner")
    return data.dropna(subset=list(columns))


def main(snakemake):
    p = snakemake.params.power
    rate_col, freq_col = p["rate_outcome"], p["frequency_outcome"]
    data = matched_outcomes(snakemake.input.matched, snakemake.input.outcomes, [rate_col, freq_col])
    size = pw.design_size(data)
    if size.n_treated < 2 or size.n_control < 2:
        raise UserError(
            f"{snakemake.input.matched}, column treated: {size.n_treated} treated and "
            f"{size.n_control} comparators with outcomes; power needs at least 2 of each"
        )
    controls = data[~data["treated"].astype(bool)]
    p0, _ = pw.weighted_mean_sd(controls[rate_col], controls["weights"])
    f0, f_sd = pw.weighted_mean_sd(controls[freq_col], controls["weights"])
    alpha, target_power = p["alpha"], p["power"]
    n1, n0 = size.n_eff_treated, size.n_eff_control
    mde_rate = pw.mde_rate(p0, n1, n0, alpha, target_power) if 0 < p0 < 1 else math.nan
    mde_rate_arcsine = (
        pw.mde_rate_arcsine(p0, n1, n0, alpha, target_power) if 0 < p0 < 1 else math.nan
    )
    mde_freq = pw.mde_mean(f_sd, n1, n0, alpha, target_power)
    effect = p["target_effect_pp"] / 100
    valid_target = 0 < p0 < 1 and 0 < p0 + effect < 1
    n_needed = (
        pw.n_needed_rate(p0, effect, size.ratio_eff, alpha, target_power)
        if valid_target
        else math.nan
    )
    power_at_target = pw.power_rate(p0, p0 + effect, n1, n0, alpha) if valid_target else math.nan
    log.info(
        "power: %d treated, %d comparators (effective %.1f); MDE %.4f (rate), %.4f (frequency)",
        size.n_treated,
        size.n_control,
        n0,
        mde_rate,
        mde_freq,
    )
    table = pd.DataFrame(
        [
            {"measure": "n_treated", "value": float(size.n_treated)},
            {"measure": "n_control", "value": float(size.n_control)},
            {"measure": "effective_n_treated", "value": n1},
            {"measure": "effective_n_control", "value": n0},
            {"measure": "design_effect_control", "value": size.design_effect_control},
            {"measure": "comparison_rate", "value": p0},
            {"measure": "comparison_frequency", "value": f0},
            {"measure": "comparison_frequency_sd", "value": f_sd},
            {"measure": "mde_rate", "value": mde_rate},
            {"measure": "mde_rate_arcsine", "value": mde_rate_arcsine},
            {"measure": "mde_frequency", "value": mde_freq},
            {"measure": "power_at_target", "value": power_at_target},
            {"measure": "n_needed_treated", "value": n_needed},
            {"measure": "n_needed_control", "value": n_needed * size.ratio_eff},
        ]
    )
    table.to_parquet(snakemake.output.table, index=False)
    counts = ["power.n_treated", "power.n_control"]
    ceil = (lambda x: math.ceil(x)) if math.isfinite(n_needed) else (lambda x: None)
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        {
            "power.n_treated": number(
                size.n_treated, "count", "people", label="Matched treated people with outcomes"
            ),
            "power.n_control": number(
                size.n_control, "count", "people", label="Matched comparators with outcomes"
            ),
            "power.effective_n_control": number(
                n0,
                "estimate",
                "people",
                decimals=1,
                derived_from=counts,
                label="Effective number of comparators (Kish, matching weights)",
            ),
            "power.design_effect": number(
                size.design_effect_control,
                "ratio",
                decimals=2,
                derived_from=counts,
                label="Design effect of the comparator weights",
            ),
            "power.comparison_rate": number(
                p0, "proportion", derived_from=counts, label="Comparison-group re-offending rate"
            ),
            "power.mde_rate_pp": number(
                mde_rate,
                "pp",
                derived_from=counts,
                label="Minimum detectable reduction in the re-offending rate",
            ),
            "power.mde_frequency": number(
                mde_freq,
                "mean",
                "re-offences per person",
                derived_from=counts,
                label="Minimum detectable reduction in re-offences per person",
            ),
            "power.power_at_target": number(
                power_at_target,
                "proportion",
                derived_from=counts,
                label="Power to detect the target reduction",
            ),
            "power.n_needed_for_target": number(
                ceil(n_needed),
                "count",
                "people",
                label="Treated people needed to detect the target reduction",
            ),
            "power.n_needed_control_for_target": number(
                ceil(n_needed * size.ratio_eff) if math.isfinite(n_needed) else None,
                "count",
                "people",
                label="Effective comparators needed alongside them",
            ),
        },
        config_keys={f"power.{k}": v for k, v in p.items()},
    )


run(main, snakemake)
