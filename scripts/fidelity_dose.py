"""Rule fidelity_dose: exploratory dose-response of re-offending on implementation fidelity,
on the headline's analysis sample (mydirection.effects.dose)."""

from mydirection.effects.dose import READS, DoseSettings, dose_response
from mydirection.runner import run
from mydirection.settings import ReportSettings, TestLevel


def main(job):
    person = job.read("index_person", "fidelity.index_person", columns=READS["index_person"])
    matched = job.read("matched", columns=READS["matched"])
    propensity = job.read("propensity", columns=READS["propensity"])
    outcomes = job.read("outcomes", columns=READS["outcomes"])
    pairs = job.read("pairs", columns=READS["pairs"])
    settings, level = job.settings(DoseSettings), job.settings(TestLevel)
    result = job.call(
        dose_response, person, matched, propensity, outcomes, pairs, settings=settings, level=level
    )
    job.write("dose_response", result.table(), "fidelity.dose_response")
    job.report(result.numbers())
    threshold = job.settings(ReportSettings).suppression_threshold
    for name, draw, caption, derived_from in result.figures(threshold):
        job.figure(name, draw, caption, derived_from)


run(main, snakemake)
