"""Rosenbaum bounds and E-values for the matched binary outcome (rule `sensitivity`)."""

import logging
import math

import pandas as pd

from mydirection import effects
from mydirection import sensitivity as sens
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def hazard_ratio_evalues(cox_path: str, rare: bool) -> dict:
    """E-values of the Cox hazard ratio (``cox.parquet``, row ``treatment``); the common-outcome
    square-root conversion applies unless the outcome is rare."""
    cox = pd.read_parquet(cox_path)
    rows = cox[cox.iloc[:, 0].astype(str) == "treatment"]
    if rows.empty or not {"hr", "hr_ci_low", "hr_ci_high"} <= set(cox.columns):
        log.info("no treatment hazard ratio in %s: no E-value for it", cox_path)
        return {}
    r = rows.iloc[0]
    ev = sens.evalue_table(r["hr"], r["hr_ci_low"], r["hr_ci_high"], "hr", rare=rare)
    return {
        "sensitivity.evalue_hr": number(
            ev["evalue_estimate"],
            "ratio",
            decimals=2,
            label="E-value of the hazard ratio (converted to a risk ratio)",
        ),
        "sensitivity.evalue_hr_ci": number(
            ev["evalue_ci"],
            "ratio",
            decimals=2,
            label="E-value of the hazard ratio's confidence limit nearer the null",
        ),
    }


def main(snakemake):
    s = snakemake.params.sensitivity
    outcome = s["outcome"]
    outcomes = pd.read_parquet(snakemake.input.outcomes)
    if outcome not in outcomes.columns:
        raise UserError(
            f"{snakemake.input.outcomes}, column {outcome}: not found; set sensitivity.outcome "
            "to a binary column of outcomes.parquet"
        )
    outcomes = outcomes.dropna(subset=[outcome])
    pairs = pd.read_parquet(snakemake.input.pairs, columns=["treated_id", "control_id"])
    sets = sens.matched_sets(pairs, outcomes, outcome, alternative=s["alternative"])
    table = sens.rosenbaum_table(sets, s["gamma_grid"], alpha=s["alpha"])
    gamma = sens.gamma_crossing(sets, alpha=s["alpha"], gamma_max=s["gamma_max"])
    gamma_normal = sens.gamma_crossing(
        sets, alpha=s["alpha"], method="normal", gamma_max=s["gamma_max"]
    )
    table.to_parquet(snakemake.output.rosenbaum, index=False)
    log.info(
        "rosenbaum: %d matched sets, %d informative; gamma crossing %.3f",
        len(sets),
        int(table["informative_sets"].iloc[0]),
        gamma,
    )

    # E-values from the risk ratio of the matched comparison (same estimator as `effects`)
    matched = pd.read_parquet(snakemake.input.matched)
    data = matched.merge(outcomes[["person_id", outcome]], on="person_id", how="inner")
    eff = effects.att(
        effects.matched_sample(data, replace=bool(snakemake.params.replace)), outcome, "binary"
    )
    rare = eff.mean_control < s["rare_outcome_threshold"]
    # a risk ratio needs no conversion; `rare` decides the hazard-ratio conversion below
    ev = sens.evalue_table(eff.ratio, eff.ratio_ci_low, eff.ratio_ci_high, "rr")
    pd.DataFrame(
        [{**ev, "outcome": outcome, "comparison_rate": eff.mean_control, "rare_outcome": rare}]
    ).to_parquet(snakemake.output.evalues, index=False)

    hr_numbers = hazard_ratio_evalues(snakemake.input.cox, rare)
    informative = int(table["informative_sets"].iloc[0])
    p1 = sens.rosenbaum_upper_p(sets, 1.0)
    significant = bool(p1 < s["alpha"])
    if not significant:
        status = "not significant even without hidden bias"
    elif math.isinf(gamma):
        status = f"significant beyond Gamma = {s['gamma_max']:g}"
    else:
        status = "significant until the crossing Gamma"
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        {
            "sensitivity.matched_sets": number(
                len(sets), "count", "matched sets", label="Matched sets in the Rosenbaum bounds"
            ),
            "sensitivity.informative_sets": number(
                informative, "count", "matched sets", label="Informative (discordant) matched sets"
            ),
            "sensitivity.p_no_hidden_bias": number(
                p1,
                "p_value",
                derived_from=["sensitivity.informative_sets"],
                label="One-sided p-value with no hidden bias (Gamma = 1)",
            ),
            "sensitivity.gamma_status": number(
                status, "text", label="What the Rosenbaum bounds show"
            ),
            "sensitivity.gamma_crossing": number(
                gamma if significant and math.isfinite(gamma) else None,
                "gamma",
                decimals=2,
                derived_from=["sensitivity.informative_sets"],
                label=f"Gamma at which the upper-bound p-value reaches {s['alpha']} "
                "(none when not significant without hidden bias)",
            ),
            "sensitivity.gamma_crossing_normal": number(
                gamma_normal if significant and math.isfinite(gamma_normal) else None,
                "gamma",
                decimals=2,
                derived_from=["sensitivity.informative_sets"],
                label="Gamma crossing, normal approximation",
            ),
            "sensitivity.rr": number(
                eff.ratio, "ratio", decimals=2, label="Risk ratio of re-offending (matched)"
            ),
            "sensitivity.evalue_rr": number(
                ev["evalue_estimate"], "ratio", decimals=2, label="E-value of the risk ratio"
            ),
            "sensitivity.evalue_ci": number(
                ev["evalue_ci"],
                "ratio",
                decimals=2,
                label="E-value of the confidence limit nearer the null",
            ),
            **hr_numbers,
        },
        config_keys={
            f"sensitivity.{k}": s[k]
            for k in (
                "alpha",
                "outcome",
                "alternative",
                "gamma_grid",
                "gamma_max",
                "rare_outcome_threshold",
            )
        },
    )


run(main, snakemake)
