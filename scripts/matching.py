"""Rule matching: the outcome-blind design -- propensity model, matching, balance, and the
pre-specified revisions applied while balance fails (no outcome file is read)."""

from mydirection import pipeline
from mydirection.runner import run
from mydirection.settings import MatchSpec


def main(job):
    cohort = job.read("cohort")
    design = job.call(pipeline.design, cohort, job.settings(MatchSpec))
    job.write("propensity", design.propensity(cohort))
    job.write("matched", design.matched)
    job.write("pairs", design.pairs)
    job.write("counts", design.counts)
    job.write("design_steps", design.steps)
    job.write("balance", design.balance)
    job.write_json("design", design.spec.as_dict())
    job.report(design.numbers())
    for name, (draw, caption) in design.figures(cohort).items():
        job.figure(name, draw, caption)


run(main, snakemake)
