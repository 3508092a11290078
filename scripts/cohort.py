"""Rule cohort: eligible events, treated and comparator pool, index dates, covariates and
the attrition chevron, from the cleaned tables (never an outcome)."""

import logging
from dataclasses import asdict
from pathlib import Path

from mydirection.cohort import CohortSettings, build_cohort, plot_attrition, read_clean_table
from mydirection.numbers import number, write_numbers
from mydirection.runner import run

log = logging.getLogger("mydirection")

TABLES = ("people", "supervision", "assessments", "convictions", "enrolments")


def main(snakemake):
    p = snakemake.params
    settings = CohortSettings.from_config(
        dict(p.cohort),
        followup_days=p.followup_days,
        waiting_days=p.waiting_days,
        extract_end_date=p.extract_end_date,
        seed=p.seed,
    )
    tables = {name: read_clean_table(snakemake.input[name], name) for name in TABLES}
    result = build_cohort(**tables, settings=settings)
    cohort, attrition = result.cohort, result.attrition

    for path in snakemake.output:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    cohort.to_parquet(snakemake.output.cohort, index=False)
    attrition.to_parquet(snakemake.output.attrition, index=False)
    plot_attrition(attrition, snakemake.output.figure, p.suppression_threshold)

    def at(step_prefix, group, column):
        rows = attrition[attrition["description"].str.startswith(step_prefix)]
        rows = rows[rows["group"] == group]
        return int(rows[column].iloc[0]) if len(rows) else 0

    n_treated = int(cohort["treated"].sum())
    n_comparator = int((~cohort["treated"]).sum())
    first = attrition[attrition["step"] == 1].set_index("group")["n_remaining"]
    for _, r in attrition.iterrows():
        if r["group"] == "all":
            log.info("step %d: %d remaining, %d lost", r["step"], r["n_remaining"], r["n_lost"])
    numbers = {
        "cohort.n_treated": number(n_treated, "count", "people", label="Treated (analysed)"),
        "cohort.n_comparator_pool": number(
            n_comparator, "count", "people", label="Comparator pool (analysed)"
        ),
        "cohort.n_received": number(int(first["all"]), "count", "people"),
        "cohort.n_enrolled": number(
            int(first["treated"]), "count", "people", label="People in the enrolment extract"
        ),
        "cohort.n_events_received": number(len(tables["supervision"]), "count", "events"),
        "cohort.n_enrolled_outside_eligible_event": number(
            at("Treated:", "treated", "n_lost"), "count", "people"
        ),
        "cohort.n_excluded_spillover": number(
            at("Comparators: no eligible event at a pilot office", "comparator", "n_lost"),
            "count",
            "people",
        ),
        "cohort.n_excluded_followup_treated": number(
            at("Follow-up", "treated", "n_lost"), "count", "people"
        ),
        "cohort.n_excluded_followup_comparator": number(
            at("Follow-up", "comparator", "n_lost"), "count", "people"
        ),
        "cohort.n_excluded_followup": number(at("Follow-up", "all", "n_lost"), "count", "people"),
        "cohort.n_treated_ogrs3_missing": number(
            int(cohort.loc[cohort["treated"], "ogrs3_missing"].sum()), "count", "people"
        ),
        "cohort.n_comparator_ogrs3_missing": number(
            int(cohort.loc[~cohort["treated"], "ogrs3_missing"].sum()), "count", "people"
        ),
    }
    for key, group in (
        ("eligibility_treated", "treated"),
        ("eligibility_comparator", "comparator"),
    ):
        lost = attrition[(attrition["group"] == group) & (attrition["step"].between(3, 6))]
        numbers[f"cohort.n_lost_{key}"] = number(int(lost["n_lost"].sum()), "count", "people")
    if settings.index_date == "enrolment":
        numbers["cohort.n_excluded_not_supervised_at_index"] = number(
            at("Comparators: still supervised", "comparator", "n_lost"), "count", "people"
        )
    delays = cohort.loc[cohort["treated"], "enrolment_delay_days"]
    if len(delays):
        numbers["cohort.median_enrolment_delay_days"] = number(
            float(delays.median()), "days", "days", derived_from=["cohort.n_treated"], decimals=0
        )
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        numbers,
        config_keys={
            **{
                f"cohort.{k}": list(v) if isinstance(v, tuple) else v
                for k, v in sorted(asdict(settings).items())
                if k not in ("followup_days", "waiting_days", "extract_end_date", "seed")
            },
            "outcomes.followup_days": p.followup_days,
            "outcomes.waiting_days": p.waiting_days,
            "extract_end_date": p.extract_end_date,
            "seed": p.seed,
        },
        figures={
            "figures.attrition": {
                "path": snakemake.output.figure,
                "caption": "Cohort attrition: people remaining after each eligibility step, "
                "treated and comparator, with the number lost at each step and why.",
            }
        },
    )


run(main, snakemake)
