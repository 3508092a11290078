"""Rule simulation_batch: one batch of the simulation study (wildcard batch): every scenario
of its replicates, each through the headline's own path. May read the generator's truth."""

from mydirection import simulation as sim
from mydirection.runner import run
from mydirection.settings import Batches, SimulationSettings


def main(job):
    settings = job.settings(SimulationSettings)
    n_batches = job.settings(Batches).for_replicates(settings.replicates)
    reps = sim.batch_reps(settings.replicates, n_batches, int(job.wildcards.batch))
    rows = job.call(sim.run_batch, reps, job.config, job.params.synthetic, settings)
    job.write("rows", rows, "simulation_rows")


run(main, snakemake)
