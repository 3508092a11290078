"""Rule event_study: person x quarter proven offences around the index date for the matched
sample; difference in differences and leads/lags with PanelOLS."""

import logging
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from mydirection.effects.panel import did, event_study, offence_panel, plot_event_study
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def main(snakemake):
    p = snakemake.params
    conviction_columns = ["person_id", "offence_date", "offence_group"]
    matched = pd.read_parquet(snakemake.input.matched)
    for path, names, cols in [
        (snakemake.input.matched, matched.columns, ["person_id", "treated", "index_date", "weights"]),
        (snakemake.input.convictions, pq.read_schema(snakemake.input.convictions).names,
         conviction_columns),
    ]:  # fmt: skip
        for col in cols:
            if col not in names:
                raise UserError(f"{path}, column {col}: missing; rerun the stage that writes it")
    matched = matched[matched["weights"] > 0]
    # Only the matched people's offences (a national extract holds millions of rows).
    convictions = pd.read_parquet(
        snakemake.input.convictions,
        columns=conviction_columns,
        filters=[("person_id", "in", matched["person_id"].unique().tolist())],
    )
    cluster = p.panel["cluster"]
    if cluster == "subclass" and (p.replace or matched["subclass"].isna().any()):
        raise UserError(
            "config effects.panel.cluster: subclass needs matching without replacement "
            "(every matched person in one matched set); use cluster: person"
        )
    panel = offence_panel(
        matched,
        convictions,
        quarters_before=p.panel["quarters_before"],
        quarters_after=p.panel["quarters_after"],
    )
    log.info("panel: %d people x %d quarters", panel["person_id"].nunique(),
             panel["rel_quarter"].nunique())  # fmt: skip
    d = did(panel, cluster=cluster)
    es = event_study(panel, reference=p.panel["reference_quarter"], cluster=cluster)
    for path in snakemake.output:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    es.to_parquet(snakemake.output.event_study, index=False)
    d.to_parquet(snakemake.output.did, index=False)
    row = d.iloc[0]
    plot_event_study(
        es,
        snakemake.output.figure,
        "Proven offences around the index date: My Direction minus comparison",
        did_row=row,
    )
    P = "panel."
    nums = {
        P + "did": number(float(row["estimate"]), "estimate", "offences per person per quarter"),
        P + "did_ci_low": number(float(row["ci_low"]), "estimate", "offences per person per quarter"),
        P + "did_ci_high": number(
            float(row["ci_high"]), "estimate", "offences per person per quarter"
        ),
        P + "did_p": number(float(row["p_value"]), "p_value"),
        P + "n_people": number(int(row["n_people"]), "count", "people"),
        P + "leads_joint_p": number(es.attrs["leads_joint_p"], "p_value",
                                    label="Joint Wald test that all leads are zero"),
        P + "cluster": number(cluster, "text"),
    }  # fmt: skip
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        nums,
        config_keys={f"effects.panel.{k}": v for k, v in p.panel.items()},
        figures={
            "figures.event_study": {
                "path": snakemake.output.figure,
                "caption": "Event study: difference between the My Direction and matched "
                "comparison groups in proven offences per person per quarter, relative to the "
                "quarter before the index date, with person and calendar-quarter effects and "
                f"95% confidence intervals clustered by {cluster}.",
            }
        },
    )


run(main, snakemake)
