"""Rule panel: offending before and after the index date for the analysis sample --
difference in differences (pooled and by enrolment cohort), event study, lead diagnostics."""

from mydirection import pipeline
from mydirection.effects.before_after import CAPTION, CONVICTION_COLUMNS, before_after
from mydirection.runner import run
from mydirection.settings import PanelSettings


def main(job):
    spec, sample, _ = pipeline.rule_inputs(job)
    people = sample["person_id"].unique().tolist()
    convictions = job.read(
        "convictions", "clean.convictions", columns=CONVICTION_COLUMNS,
        filters=[("person_id", "in", people)],
    )  # fmt: skip
    result = job.call(before_after, sample, convictions, spec, job.settings(PanelSettings))
    job.write("event_study", result.event_study)
    job.write("did", result.did)
    job.write("did_by_cohort", result.did_by_cohort)
    job.report(result.numbers())
    job.figure("event_study", result.plot, CAPTION, derived_from=["panel.n_people"])


run(main, snakemake)
