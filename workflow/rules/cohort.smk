# Rules of the cohort stage.


rule cohort:
    """Eligible events, treated and comparator pool, index dates, covariates strictly before
    the index date, and the attrition chevron. Reads cleaned tables only: outcome-blind (the
    outcomes settings are used for dates only, to check follow-up is available).
    """
    input:
        people="results/clean/people.parquet",
        supervision="results/clean/supervision.parquet",
        assessments="results/clean/assessments.parquet",
        convictions="results/clean/convictions.parquet",
        enrolments="results/clean/enrolments.parquet",
    output:
        cohort="results/cohort/cohort.parquet",
        attrition="results/cohort/attrition.parquet",
        figure="results/figures/attrition.png",
        numbers="results/numbers/cohort.json",
    log:
        "results/logs/cohort.log",
    benchmark:
        "results/benchmarks/cohort.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        cohort=config["cohort"],
        followup_days=config["outcomes"]["followup_days"],
        waiting_days=config["outcomes"]["waiting_days"],
        extract_end_date=config["extract_end_date"],
        seed=config["seed"],
        suppression_threshold=config["report"]["suppression_threshold"],
    script:
        "../../scripts/cohort.py"


ALL_TARGETS.extend(rules.cohort.output)
NUMBERS.append(rules.cohort.output.numbers)
FIGURES.append(rules.cohort.output.figure)
