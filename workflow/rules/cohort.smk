# Rules of the cohort stage.


rule cohort:
    """Eligible events, participants and comparator pool, index dates, covariates strictly
    before the index date, and the attrition chevron. Reads cleaned tables only:
    outcome-blind (the outcome windows are used for dates only, to check follow-up).
    """
    input:
        people="results/clean/people.parquet",
        supervision="results/clean/supervision.parquet",
        assessments="results/clean/assessments.parquet",
        convictions="results/clean/convictions.parquet",
        enrolments="results/clean/enrolments.parquet",
        code=code("scripts/cohort.py"),
    output:
        cohort="results/cohort/cohort.parquet",
        attrition="results/cohort/attrition.parquet",
        fig_attrition="results/figures/attrition.png",
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
        settings=settings_params(S.CohortSettings, S.ReportSettings),
    script:
        "../../scripts/cohort.py"


ALL_TARGETS.extend(rules.cohort.output)
NUMBERS.append(rules.cohort.output.numbers)
FIGURES.append(rules.cohort.output.fig_attrition)
