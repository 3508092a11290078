"""Rule cohort: eligible events, participants and comparator pool, index dates, covariates
and the attrition chevron, from the cleaned tables (never an outcome)."""

from mydirection.cohort import ATTRITION_CAPTION, READS, build_cohort
from mydirection.runner import run
from mydirection.settings import CohortSettings, ReportSettings


def main(job):
    tables = {n: job.read(n, f"clean.{n}", columns=c, arrow_strings=True) for n, c in READS.items()}
    result = job.call(build_cohort, **tables, settings=job.settings(CohortSettings))
    job.write("cohort", result.cohort)
    job.write("attrition", result.attrition)
    job.report(result.numbers())
    threshold = job.settings(ReportSettings).suppression_threshold
    job.figure("attrition", lambda path: result.plot_attrition(path, threshold), ATTRITION_CAPTION)


run(main, snakemake)
