"""Placebo / falsification (rule `placebo`): the matched design on the pre-index outcome,
and a placebo treatment randomly assigned among comparators."""

import logging
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd

from mydirection import effects
from mydirection import sensitivity as sens
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def plot_placebo(dist: pd.DataFrame, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    est = 100 * dist["estimate"].dropna().to_numpy()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.hist(est, bins=min(30, max(5, len(est) // 4)), color="#8c96c6", edgecolor="white")
    ax.axvline(0, color="black", linestyle="--", linewidth=0.8, label="no effect")
    if len(est):
        ax.axvline(
            float(est.mean()), color="#b2182b", linewidth=1.2, label=f"mean {est.mean():+.2f} pp"
        )
    ax.set_xlabel("Placebo 'effect' on the re-offending rate (percentage points)")
    ax.set_ylabel("Repetitions")
    ax.set_title(f"Placebo treatment among comparators ({len(est)} repetitions)")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)


def main(snakemake):
    s = snakemake.params.sensitivity
    matching = snakemake.params.matching
    outcomes = pd.read_parquet(snakemake.input.outcomes)
    for col in ("reoffended", "pre_reoffended"):
        if col not in outcomes.columns:
            raise UserError(
                f"{snakemake.input.outcomes}, column {col}: not found; rerun the outcomes rule"
            )

    # 1. placebo outcome: re-offending in the window before the index date, matched design
    matched = pd.read_parquet(snakemake.input.matched)
    data = matched.merge(outcomes[["person_id", "pre_reoffended"]], on="person_id")
    pre = effects.att(
        effects.matched_sample(data, replace=bool(matching.get("replace", False))),
        "pre_reoffended",
        "binary",
    )

    # 2. placebo treatment among comparators, default specification, R repetitions
    cohort = pd.read_parquet(snakemake.input.cohort)
    pool = cohort[~cohort["treated"].astype(bool)].merge(
        outcomes[["person_id", "reoffended"]], on="person_id"
    )
    pool = pool.sort_values("person_id", kind="stable").reset_index(drop=True)
    spec = sens.default_spec(matching, snakemake.params.followup_days)
    opts = sens.matching_options(matching)
    n_treated = int(cohort["treated"].astype(bool).sum())
    n_placebo = sens.placebo_size(n_treated, len(pool), spec["ratio"])

    def estimate(d):
        return SimpleNamespace(**sens.estimate_spec(d, spec, outcome="reoffended", **opts))

    dist = sens.placebo_distribution(
        pool, n_placebo, s["placebo_repetitions"], snakemake.params.seed, estimate
    )
    dist.to_parquet(snakemake.output.placebo, index=False)
    pd.DataFrame(
        [
            {
                "outcome": "pre_reoffended",
                "estimate": pre.estimate,
                "se": pre.se,
                "ci_low": pre.ci_low,
                "ci_high": pre.ci_high,
                "p_value": pre.p_value,
                "mean_treated": pre.mean_treated,
                "mean_control": pre.mean_control,
            }
        ]
    ).to_parquet(snakemake.output.pre_outcome, index=False)
    plot_placebo(dist, snakemake.output.figure)

    ok = dist.dropna(subset=["estimate"])
    r = len(ok)
    mean = float(ok["estimate"].mean()) if r else math.nan
    sd = float(ok["estimate"].std(ddof=1)) if r > 1 else math.nan
    log.info("placebo: %d of %d repetitions estimable; mean %.4f", r, len(dist), mean)
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        {
            "sensitivity.placebo_outcome_difference": number(
                pre.estimate,
                "pp",
                label="Difference in re-offending in the 12 months before the index date",
            ),
            "sensitivity.placebo_outcome_ci_low": number(pre.ci_low, "pp", label="95% CI, low"),
            "sensitivity.placebo_outcome_ci_high": number(pre.ci_high, "pp", label="95% CI, high"),
            "sensitivity.placebo_outcome_p": number(
                pre.p_value, "p_value", label="p-value, pre-index difference"
            ),
            "sensitivity.placebo_n_treated": number(
                n_placebo, "count", "people", label="Comparators given the placebo treatment"
            ),
            "sensitivity.placebo_repetitions": number(
                r, "count", "repetitions", label="Placebo repetitions estimated"
            ),
            "sensitivity.placebo_failed": number(
                len(dist) - r,
                "estimate",
                "repetitions",
                decimals=0,
                label="Placebo repetitions that could not be estimated "
                "(e.g. the propensity model did not converge)",
            ),
            "sensitivity.placebo_mean_estimate": number(
                mean, "pp", label="Mean placebo 'effect' over repetitions"
            ),
            "sensitivity.placebo_mean_mcse": number(
                sd / math.sqrt(r) if r > 1 else None,
                "pp",
                label="Monte Carlo standard error of the mean placebo effect",
            ),
            "sensitivity.placebo_sd": number(sd, "pp", label="SD of placebo effects"),
            "sensitivity.placebo_rejection_rate": number(
                float((ok["p_value"] < s["alpha"]).mean()) if r else None,
                "proportion",
                label="Share of placebo repetitions significant at 5%",
            ),
            "sensitivity.placebo_share_ci_covers_zero": number(
                float(np.mean((ok["ci_low"] <= 0) & (ok["ci_high"] >= 0))) if r else None,
                "proportion",
                label="Share of placebo 95% CIs containing zero",
            ),
        },
        config_keys={
            "sensitivity.placebo_repetitions": s["placebo_repetitions"],
            "sensitivity.alpha": s["alpha"],
            "seed": snakemake.params.seed,
        },
        figures={
            "figures.placebo": {
                "path": snakemake.output.figure,
                "caption": (
                    "Placebo treatment: the headline matched design run among comparators "
                    "only, with 'treatment' assigned at random; the estimates should centre "
                    "on zero (dashed line)."
                ),
            }
        },
    )


run(main, snakemake)
