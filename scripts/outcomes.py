"""Rule outcomes: proven re-offending for every cohort member (independent of matching)."""

from mydirection.outcomes import REQUIRED, outcome_numbers, proven_reoffending
from mydirection.runner import run
from mydirection.settings import OutcomeSettings


def main(job):
    s = job.settings(OutcomeSettings)
    cohort = job.read("cohort", columns=REQUIRED["cohort"])
    convictions = job.read(
        "convictions", "clean.convictions", columns=REQUIRED["convictions"], arrow_strings=True
    )
    out = job.call(
        proven_reoffending,
        cohort,
        convictions,
        s.followup_days,
        s.waiting_days,
        s.extract_end_date,
        placebo_start_days=s.placebo_start_days,
        placebo_end_days=s.placebo_end_days,
    )
    job.write("outcomes", out)
    job.report(outcome_numbers(out, s.followup_days, s.waiting_days))


run(main, snakemake)
