"""Rule spec_curve: gather the batches into the specification curve, its numbers and figure."""

import pandas as pd

from mydirection.runner import run
from mydirection.sensitivity import spec_curve as sc
from mydirection.settings import TestLevel

CAPTION = (
    "Specification curve: the difference in the proven re-offending rate (participants "
    "minus the matched comparison group, percentage points, with intervals) under every "
    "combination of defensible analysis choices, sorted by estimate; filled points achieved "
    "covariate balance, vermillion intervals exclude zero, the diamond is the headline. The "
    "panel below marks the choices of each specification."
)


def main(job):
    rows = pd.concat([job.read_path(p, "spec_rows") for p in job.input.batches], ignore_index=True)
    curve = job.call(sc.sort_curve, rows)
    job.write("table", curve, "spec_curve")
    job.report(sc.curve_numbers(curve))
    level = 1 - job.settings(TestLevel).alpha
    job.figure("spec_curve", lambda path: sc.plot_spec_curve(curve, path, level), CAPTION)


run(main, snakemake)
