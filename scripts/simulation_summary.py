"""Summary of the simulation study (rule `simulation_summary`): bias, RMSE, coverage,
rejection rate per scenario and method, numbers and figure."""

import logging

import pandas as pd

from mydirection import simulation as sim
from mydirection.numbers import number, write_numbers
from mydirection.runner import run

log = logging.getLogger("mydirection")

PREFIX = {
    ("measured", "matched"): "simulation",
    ("measured", "naive"): "simulation.naive",
    ("hidden", "matched"): "simulation.hidden",
    ("hidden", "naive"): "simulation.hidden_naive",
}
TEXT = {
    ("measured", "matched"): "matched (headline specification)",
    ("measured", "naive"): "naive unmatched comparison",
    ("hidden", "matched"): "matched, with hidden confounding",
    ("hidden", "naive"): "naive, with hidden confounding",
}


def main(snakemake):
    p = snakemake.params.simulation
    reps = pd.concat([pd.read_parquet(f) for f in snakemake.input.replicates], ignore_index=True)
    reps = reps.sort_values(["scenario", "method", "rep"], kind="stable").reset_index(drop=True)
    summary = sim.summarise(reps, alpha=p["alpha"])
    reps.to_parquet(snakemake.output.replicates, index=False)
    summary.to_parquet(snakemake.output.summary, index=False)
    lo, hi = p["coverage_bounds"]
    sim.plot_simulation(reps, summary, snakemake.output.figure, (lo, hi))

    numbers = {}
    for _, r in summary.iterrows():
        key = (r["scenario"], r["method"])
        if key not in PREFIX:
            continue
        k, t = PREFIX[key], TEXT[key]
        log.info(
            "%s: %d replicates, bias %.4f, coverage %.3f", t, r["n_reps"], r["bias"], r["coverage"]
        )
        numbers.update(
            {
                f"{k}.replicates": number(
                    int(r["n_reps"]),
                    "estimate",
                    "replicates",
                    decimals=0,
                    label=f"Replicates estimated, {t}",
                ),
                f"{k}.failed": number(
                    int(r["n_failed"]),
                    "estimate",
                    "replicates",
                    decimals=0,
                    label=f"Replicates that could not be estimated, {t}",
                ),
                f"{k}.true_effect": number(
                    r["truth"], "pp", label=f"Mean true effect (sample ATT), {t}"
                ),
                f"{k}.bias": number(r["bias"], "pp", label=f"Bias, {t}"),
                f"{k}.bias_mcse": number(
                    r["bias_mcse"], "pp", label=f"Monte Carlo SE of the bias, {t}"
                ),
                f"{k}.rmse": number(r["rmse"], "pp", label=f"Root mean squared error, {t}"),
                f"{k}.coverage": number(
                    r["coverage"], "proportion", label=f"Coverage of the 95% CI, {t}"
                ),
                f"{k}.coverage_mcse": number(
                    r["coverage_mcse"], "proportion", label=f"Monte Carlo SE of the coverage, {t}"
                ),
                f"{k}.rejection_rate": number(
                    r["rejection_rate"],
                    "proportion",
                    label=f"Share of replicates with p < {p['alpha']}, {t}",
                ),
            }
        )
    head = summary[(summary["scenario"] == "measured") & (summary["method"] == "matched")]
    if len(head):
        c = float(head["coverage"].iloc[0])
        numbers["simulation.coverage_within_bounds"] = number(
            "within" if lo <= c <= hi else "outside",
            "text",
            label=f"Coverage of the headline specification against the bar {lo}-{hi}",
        )
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        numbers,
        config_keys={f"simulation.{k}": v for k, v in p.items() if k != "in_report"},
        figures={
            "figures.simulation": {
                "path": snakemake.output.figure,
                "caption": (
                    "Simulation study against known truth: the error of each replicate's estimate "
                    "(left) and the coverage of the 95% confidence interval with its Monte Carlo "
                    "interval (right), for the headline matched specification and a naive "
                    "unmatched comparison, with and without hidden confounding."
                ),
            }
        },
    )


run(main, snakemake)
