"""Rule placebo: the placebo outcome on the analysis sample and a placebo treatment among
comparators, both through the headline's own path."""

from mydirection import pipeline
from mydirection.runner import run
from mydirection.sensitivity.placebo import analyse_placebo
from mydirection.settings import PlaceboSettings

CAPTION = (
    "Placebo treatment: the headline design run among comparators only, with 'treatment' "
    "assigned at random {placebo.repetitions} times; the estimates should centre "
    "on zero (dashed line)."
)


def main(job):
    spec, sample, pairs = pipeline.rule_inputs(job)
    cohort, outcomes = job.read("cohort"), job.read("outcomes")
    settings = job.settings(PlaceboSettings)
    result = job.call(analyse_placebo, cohort, outcomes, sample, pairs, spec, settings)
    job.write("placebo", result.distribution)
    job.write("placebo_outcome", result.outcome_table())
    job.report(result.numbers())
    job.figure("placebo", result.plot, CAPTION)


run(main, snakemake)
