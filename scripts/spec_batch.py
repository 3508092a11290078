"""Rule spec_batch: one batch of the specification curve (wildcard batch), every
specification through the headline path."""

from mydirection.outcomes import REQUIRED
from mydirection.runner import run
from mydirection.sensitivity import spec_curve as sc
from mydirection.settings import AnalysisSpec, Batches, MatchSpec, SpecCurveSettings


def main(job):
    headline = job.settings(AnalysisSpec).with_design(MatchSpec.from_dict(job.read_json("design")))
    curve = job.settings(SpecCurveSettings)
    choices = sc.grid_choices(curve.grid, headline)
    batch = sc.batch_of(choices, job.settings(Batches).for_specs(len(choices)))
    mine = {k: c for k, c in choices.items() if batch[k] == int(job.wildcards.batch)}
    cohort = job.read("cohort")
    convictions = job.read(
        "convictions", "clean.convictions", columns=REQUIRED["convictions"], arrow_strings=True
    )
    windows = [c["followup_days"] for c in mine.values()]
    outcomes = sc.window_outcomes(
        cohort, convictions, windows, headline.waiting_days, headline.extract_end_date
    )
    propensity = job.read("propensity")[["ps", "logit_ps"]]
    rows = job.call(sc.run_batch, cohort, outcomes, headline, mine, propensity)
    job.write("rows", rows, "spec_rows")


run(main, snakemake)
