"""One replicate of the simulation study (rule `simulation_replicate`, wildcards scenario, rep).

Runs the whole chain in process through the library (no Snakemake sub-run). The only rule
family allowed to read the generator's truth: here it comes straight from the generator.
"""

import logging
import time
from pathlib import Path

from mydirection import simulation as sim
from mydirection.runner import run

log = logging.getLogger("mydirection")


def main(snakemake):
    p = snakemake.params
    rep, scenario = int(snakemake.wildcards.rep), snakemake.wildcards.scenario
    started = time.perf_counter()
    generator = sim.generator_config(
        p.synthetic,
        p.simulation["generator"],
        scenario,
        p.simulation["hidden_confounding_strength"],
    )
    rows = sim.run_replicate(
        rep,
        scenario,
        generator=generator,
        seed=sim.replicate_seed(p.seed, rep),
        cohort=p.cohort,
        outcomes=p.outcomes,
        matching=p.matching,
        extract_end_date=p.extract_end_date,
    )
    Path(snakemake.output[0]).parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(snakemake.output[0], index=False)
    log.info(
        "replicate %s/%d: %d rows in %.1f s",
        scenario,
        rep,
        len(rows),
        time.perf_counter() - started,
    )


run(main, snakemake)
