"""Rule outcomes: proven re-offending for every cohort member (independent of matching)."""

import logging
from pathlib import Path

from mydirection.cohort import read_clean_table
from mydirection.numbers import number, write_numbers
from mydirection.outcomes import REQUIRED, proven_reoffending
from mydirection.runner import run

log = logging.getLogger("mydirection")


def main(snakemake):
    p = snakemake.params
    cohort = read_clean_table(snakemake.input.cohort, "cohort", REQUIRED["cohort"])
    convictions = read_clean_table(
        snakemake.input.convictions, "convictions", REQUIRED["convictions"]
    )
    out = proven_reoffending(
        cohort,
        convictions,
        followup_days=p.outcomes["followup_days"],
        waiting_days=p.outcomes["waiting_days"],
        extract_end_date=p.extract_end_date,
    )
    Path(snakemake.output.outcomes).parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(snakemake.output.outcomes, index=False)
    n_incomplete = int((~out["followup_complete"]).sum())
    log.info("outcomes for %d people; %d with incomplete follow-up", len(out), n_incomplete)
    # Design numbers only: no re-offending rate is reported from this stage.
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        {
            "outcomes.followup_days": number(p.outcomes["followup_days"], "days", "days"),
            "outcomes.waiting_days": number(p.outcomes["waiting_days"], "days", "days"),
            "outcomes.n_people": number(len(out), "count", "people"),
            "outcomes.n_followup_incomplete": number(n_incomplete, "count", "people"),
        },
        config_keys={
            "outcomes.followup_days": p.outcomes["followup_days"],
            "outcomes.waiting_days": p.outcomes["waiting_days"],
            "extract_end_date": p.extract_end_date,
        },
    )


run(main, snakemake)
