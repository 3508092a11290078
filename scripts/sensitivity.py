"""Rule sensitivity: Rosenbaum bounds (rate and frequency) and E-values (risk and hazard
ratios) at the plan's test level, for the headline's analysis sample."""

from mydirection import pipeline, tables
from mydirection.runner import run
from mydirection.sensitivity.bounds_stage import analyse_bounds
from mydirection.settings import BoundsSettings


def main(job):
    spec, sample, pairs = pipeline.rule_inputs(job)
    headline = pipeline.estimate(sample, spec, pairs)
    settings = job.settings(BoundsSettings)
    result = job.call(analyse_bounds, sample, pairs, headline, job.read("cox"), settings)
    for name, table in (("rosenbaum", result.rate_table), ("signed_rank", result.frequency_table)):
        job.write(name, tables.empty(name) if table is None else table)
    job.write("evalues", result.evalues)
    job.report(result.numbers())


run(main, snakemake)
