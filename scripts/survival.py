"""Rule survival: Kaplan-Meier curves, the Cox hazard ratio and its proportional-hazards
test for time to first proven re-offence, on the headline's analysis sample."""

from mydirection import pipeline
from mydirection.effects.time_to_event import CAPTION, analyse_survival
from mydirection.runner import run
from mydirection.settings import SurvivalSettings


def main(job):
    spec, sample, _ = pipeline.rule_inputs(job)
    result = job.call(analyse_survival, sample, spec, job.settings(SurvivalSettings))
    job.write("km", result.km)
    job.write("cox", result.cox_table())
    job.write("ph", result.ph)
    numbers = result.numbers()
    job.report(numbers)
    counts = ["survival.n_reoffenders_treated", "survival.n_reoffenders_comparison"]
    job.figure("km", result.plot, CAPTION, derived_from=counts)


run(main, snakemake)
