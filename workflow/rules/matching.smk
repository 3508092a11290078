# Rules of the matching stage: propensity -> match -> balance.
# Outcome-blind by construction: the only data input is the cohort (never an outcome file).


rule propensity:
    """Propensity scores (logistic regression of treatment on the pre-index covariates)
    for every cohort member; counts treated people outside the comparators' range.
    """
    input:
        cohort="results/cohort/cohort.parquet",
        code=code("scripts/propensity.py"),
    output:
        propensity="results/matching/propensity.parquet",
        numbers="results/numbers/propensity.json",
    log:
        "results/logs/propensity.log",
    benchmark:
        "results/benchmarks/propensity.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        covariates=config["matching"]["covariates"],
        categorical=config["matching"]["categorical"],
    script:
        "../../scripts/propensity.py"


rule match:
    """Greedy nearest-neighbour matching (MatchIt semantics) with the configured distance,
    ratio, replacement, caliper, order and exact strata; weights and subclasses.
    """
    input:
        cohort="results/cohort/cohort.parquet",
        propensity="results/matching/propensity.parquet",
        code=code("scripts/match.py"),
    output:
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        counts="results/matching/counts.parquet",
        numbers="results/numbers/match.json",
    log:
        "results/logs/match.log",
    benchmark:
        "results/benchmarks/match.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        covariates=config["matching"]["covariates"],
        categorical=config["matching"]["categorical"],
        distance=config["matching"]["distance"],
        ratio=config["matching"]["ratio"],
        replace=config["matching"]["replace"],
        caliper=config["matching"]["caliper"],
        order=config["matching"]["order"],
        exact=config["matching"]["exact"],
        discard=config["matching"]["discard"],
        seed=config["seed"],
    script:
        "../../scripts/match.py"


rule balance:
    """Balance table (SMD, variance ratio, eCDF before/after), the balance verdict and the
    Love, propensity-overlap and eCDF figures. A failed verdict is reported, not fatal.
    """
    input:
        cohort="results/cohort/cohort.parquet",
        propensity="results/matching/propensity.parquet",
        matched="results/matching/matched.parquet",
        code=code("scripts/balance.py"),
    output:
        balance="results/matching/balance.parquet",
        verdict="results/matching/verdict.json",
        love_plot="results/figures/love_plot.png",
        ps_overlap="results/figures/ps_overlap.png",
        ecdf_worst="results/figures/ecdf_worst.png",
        numbers="results/numbers/balance.json",
    log:
        "results/logs/balance.log",
    benchmark:
        "results/benchmarks/balance.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        covariates=config["matching"]["covariates"],
        categorical=config["matching"]["categorical"],
        smd_threshold=config["matching"]["smd_threshold"],
        var_ratio_bounds=config["matching"]["var_ratio_bounds"],
    script:
        "../../scripts/balance.py"


ALL_TARGETS.extend(rules.propensity.output)
ALL_TARGETS.extend(rules.match.output)
ALL_TARGETS.extend(rules.balance.output)
NUMBERS.extend(
    [
        rules.propensity.output.numbers,
        rules.match.output.numbers,
        rules.balance.output.numbers,
    ]
)
FIGURES.extend(
    [
        rules.balance.output.love_plot,
        rules.balance.output.ps_overlap,
        rules.balance.output.ecdf_worst,
    ]
)
