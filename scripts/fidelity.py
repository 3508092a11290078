"""Rule fidelity: item scores, fidelity index per person and case manager, decay over 2018
(the pilot's own records and the cohort; never an outcome)."""

from mydirection.fidelity import (
    READS,
    FidelitySettings,
    score_fidelity,
    table_of,
    treated_enrolments,
)
from mydirection.runner import run
from mydirection.settings import ReportSettings, TestLevel

OUTPUTS = {
    "item_scores": ("items", "fidelity.items"),
    "index_person": ("person", "fidelity.index_person"),
    "index_alternative": ("alternatives", "fidelity.index_alternative"),
    "index_case_manager": ("case_managers", "fidelity.index_case_manager"),
    "item_coverage": ("coverage", "fidelity.item_coverage"),
    "monthly": ("monthly", "fidelity.monthly"),
}


def main(job):
    data = {n: job.read(n, table_of(n), columns=c) for n, c in READS.items() if n != "contacts"}
    people = sorted(treated_enrolments(data["enrolments"], data["cohort"])["person_id"])
    data["contacts"] = job.read(  # the contact log is large: only the people scored
        "contacts",
        "clean.contacts",
        columns=READS["contacts"],
        filters=[("person_id", "in", people)],
    )
    settings, level = job.settings(FidelitySettings), job.settings(TestLevel)
    result = job.call(score_fidelity, **data, settings=settings, level=level)
    for name, (attr, table) in OUTPUTS.items():
        job.write(name, getattr(result, attr), table)
    job.report(result.numbers())
    threshold = job.settings(ReportSettings).suppression_threshold
    for name, draw, caption, derived_from in result.figures(threshold):
        job.figure(name, draw, caption, derived_from)


run(main, snakemake)
