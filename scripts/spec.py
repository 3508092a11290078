"""One specification of the specification curve (rule `spec`, wildcard `spec`)."""

import logging

import pandas as pd

from mydirection import outcomes as oc
from mydirection import sensitivity as sens
from mydirection.runner import run

log = logging.getLogger("mydirection")


def main(snakemake):
    spec = snakemake.params.spec
    cohort = pd.read_parquet(snakemake.input.cohort)
    # Only convictions that can fall in a follow-up or pre-index window: offences from
    # `followup_days` before the earliest index date on (most of a national PNC history is
    # older; reading all of it took 4.4 GB per job).
    since = cohort["index_date"].min() - pd.Timedelta(days=spec["followup_days"])
    convictions = pd.read_parquet(
        snakemake.input.convictions, filters=[("offence_date", ">=", since)]
    )
    # the outcome for this specification's follow-up window (waiting period unchanged)
    out = oc.proven_reoffending(
        cohort,
        convictions,
        followup_days=spec["followup_days"],
        waiting_days=snakemake.params.waiting_days,
        extract_end_date=snakemake.params.extract_end_date,
    )
    data = cohort.merge(out[["person_id", "reoffended"]], on="person_id", how="inner")
    row = sens.estimate_spec(
        data, spec, outcome="reoffended", **sens.matching_options(snakemake.params.matching)
    )
    row["is_default"] = bool(snakemake.params.is_default)
    pd.DataFrame([row]).to_parquet(snakemake.output[0], index=False)
    log.info(
        "spec %s: %d treated, %d comparators, balance %s%s",
        row["spec"],
        row["n_treated"],
        row["n_control"],
        "achieved" if row["balance_ok"] else "not achieved",
        f"; not estimable: {row['error']}" if row["error"] else "",
    )


run(main, snakemake)
