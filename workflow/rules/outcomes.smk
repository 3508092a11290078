# Rules of the outcomes stage.


rule outcomes:
    """Proven re-offending (MoJ definition) for every cohort member, from the cohort's index
    dates and the cleaned convictions; independent of matching.
    """
    input:
        cohort="results/cohort/cohort.parquet",
        convictions="results/clean/convictions.parquet",
        code=code("scripts/outcomes.py"),
    output:
        outcomes="results/outcomes/outcomes.parquet",
        numbers="results/numbers/outcomes.json",
    log:
        "results/logs/outcomes.log",
    benchmark:
        "results/benchmarks/outcomes.tsv"
    priority: 1  # every analysis after matching waits for it
    conda:
        "../../environment.yml"
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        settings=settings_params(S.OutcomeSettings),
    script:
        "../../scripts/outcomes.py"


ALL_TARGETS.extend(rules.outcomes.output)
NUMBERS.append(rules.outcomes.output.numbers)
