"""Rule simulation: bias, RMSE, coverage and rejection rate per scenario and method."""

import pandas as pd

from mydirection import simulation as sim
from mydirection.runner import run
from mydirection.settings import SimulationSettings

CAPTION = (
    "Simulation study against known truth: the error of each replicate's estimate (left) and "
    "the coverage of the intervals with its Monte Carlo interval (right), for the analysis "
    "plan's design, the same design indexed at the start of the order, and a naive unmatched "
    "comparison, in each scenario; {simulation.measured.headline.replicates} replicates each."
)


def main(job):
    settings = job.settings(SimulationSettings)
    rows = sim.sort_rows(
        pd.concat(
            [job.read_path(p, "simulation_rows") for p in job.input.batches], ignore_index=True
        )
    )
    summary = job.call(sim.summarise, rows, settings.alpha)
    job.write("replicates", rows, "simulation_rows")
    job.write("summary", summary, "simulation_summary")
    job.report(sim.simulation_numbers(summary, settings))
    job.figure(
        "simulation", lambda path: sim.plot_simulation(rows, summary, path, settings), CAPTION
    )


run(main, snakemake)
