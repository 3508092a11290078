"""Rule power: the minimum detectable effects of the achieved analysis sample and the
sample size the plan's target effect needs."""

from mydirection import pipeline
from mydirection.runner import run
from mydirection.sensitivity.power import analyse_power
from mydirection.settings import PowerSettings


def main(job):
    _, sample, _ = pipeline.rule_inputs(job)
    result = job.call(analyse_power, sample, job.settings(PowerSettings))
    job.write("table", result.table(), "power")
    job.report(result.numbers())


run(main, snakemake)
