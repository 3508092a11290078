"""Rule reoffending: the JDL headline (rate, frequency, time to first re-offence) on the analysis
sample of the chosen design, with the "for every 100 typical people" reading."""

from mydirection import pipeline
from mydirection.runner import run
from mydirection.settings import AnalysisSpec, MatchSpec, TestLevel


def main(job):
    spec = job.settings(AnalysisSpec).with_design(MatchSpec.from_dict(job.read_json("design")))
    pairs = job.read("pairs")
    sample = job.call(pipeline.analysis_sample, job.read("matched"), job.read("outcomes"), pairs)
    result = pipeline.estimate(sample, spec, pairs)
    job.write("headline", result.table())
    job.report(result.numbers(job.settings(TestLevel).power))


run(main, snakemake)
