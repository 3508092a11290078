# Rules of the sensitivity stage: power, Rosenbaum bounds and E-values, placebo, the
# specification curve and the simulation study, each in batch jobs (one per core by
# default; a cluster profile sets more) that run many specifications or replicates in one
# process through the headline's own path.
_batches = S.Batches.from_config(config)
_n_specs = len(
    spec_grid_names(
        S.SpecCurveSettings.from_config(config).grid, S.AnalysisSpec.from_config(config)
    )
)
SPEC_BATCHES = list(range(_batches.for_specs(_n_specs)))
SIM_BATCHES = list(
    range(_batches.for_replicates(S.SimulationSettings.from_config(config).replicates))
)


rule power:
    """Minimum detectable effects of the analysis sample and the sample size the plan's
    target effect needs, at the plan's test level and power."""
    input:
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        design="results/matching/design.json",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/power.py"),
    output:
        table="results/sensitivity/power.parquet",
        numbers="results/numbers/power.json",
    log:
        "results/logs/power.log",
    benchmark:
        "results/benchmarks/power.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings_params(S.AnalysisSpec, S.PowerSettings),
    script:
        "../../scripts/power.py"


rule sensitivity:
    """Rosenbaum bounds (rate: matched sets; frequency: signed rank on 1:1 pairs) at the
    one-sided level matching the two-sided headline, and E-values of the risk and hazard
    ratios."""
    input:
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        design="results/matching/design.json",
        outcomes="results/outcomes/outcomes.parquet",
        cox="results/effects/cox.parquet",
        code=code("scripts/sensitivity.py"),
    output:
        rosenbaum="results/sensitivity/rosenbaum.parquet",
        signed_rank="results/sensitivity/signed_rank.parquet",
        evalues="results/sensitivity/evalues.parquet",
        numbers="results/numbers/sensitivity.json",
    log:
        "results/logs/sensitivity.log",
    benchmark:
        "results/benchmarks/sensitivity.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings_params(S.AnalysisSpec, S.BoundsSettings),
    script:
        "../../scripts/sensitivity.py"


rule placebo:
    """Placebo outcome (offending before the index date, index conviction excluded) on the
    analysis sample, and a placebo treatment randomly assigned among comparators, both
    through the headline's own path."""
    input:
        cohort="results/cohort/cohort.parquet",
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        design="results/matching/design.json",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/placebo.py"),
    output:
        placebo="results/sensitivity/placebo.parquet",
        placebo_outcome="results/sensitivity/placebo_outcome.parquet",
        fig_placebo="results/figures/placebo.png",
        numbers="results/numbers/placebo.json",
    log:
        "results/logs/placebo.log",
    benchmark:
        "results/benchmarks/placebo.tsv"
    priority: 2  # re-matches the whole comparator pool per repetition: the longest analysis
    conda:
        "../../environment.yml"
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        settings=settings_params(S.AnalysisSpec, S.PlaceboSettings),
    script:
        "../../scripts/placebo.py"


rule spec_batch:
    """One batch of the specification curve (wildcard batch)."""
    input:
        cohort="results/cohort/cohort.parquet",
        convictions="results/clean/convictions.parquet",
        propensity="results/matching/propensity.parquet",
        design="results/matching/design.json",
        code=code("scripts/spec_batch.py"),
    output:
        rows="results/sensitivity/specs/batch_{batch}.parquet",
    log:
        "results/logs/spec/batch_{batch}.log",
    benchmark:
        "results/benchmarks/spec/batch_{batch}.tsv"
    wildcard_constraints:
        batch=r"\d+",
    priority: 1  # long jobs first, the short analyses fill in around them
    conda:
        "../../environment.yml"
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        settings=settings_params(S.AnalysisSpec, S.SpecCurveSettings, S.Batches),
    script:
        "../../scripts/spec_batch.py"


rule spec_curve:
    """Every specification's estimate, interval and balance verdict, and the curve figure."""
    input:
        batches=expand(
            "results/sensitivity/specs/batch_{batch}.parquet", batch=SPEC_BATCHES
        ),
        code=code("scripts/spec_curve.py"),
    output:
        table="results/sensitivity/spec_curve.parquet",
        fig_spec_curve="results/figures/spec_curve.png",
        numbers="results/numbers/spec_curve.json",
    log:
        "results/logs/spec_curve.log",
    benchmark:
        "results/benchmarks/spec_curve.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings_params(S.TestLevel),
    script:
        "../../scripts/spec_curve.py"


rule simulation_batch:
    """One batch of the simulation study (wildcard batch): every scenario of its
    replicates, generator -> clean -> cohort -> outcomes -> headline, in process."""
    input:
        code=code("scripts/simulation_batch.py"),
    output:
        rows="results/simulation/batches/batch_{batch}.parquet",
    log:
        "results/logs/simulation/batch_{batch}.log",
    benchmark:
        "results/benchmarks/simulation/batch_{batch}.tsv"
    wildcard_constraints:
        batch=r"\d+",
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        settings=settings_params(
            S.AnalysisSpec, S.CohortSettings, S.SimulationSettings, S.Batches
        ),
        synthetic=SYNTHETIC_SETTINGS,
    script:
        "../../scripts/simulation_batch.py"


rule simulation:
    """Target: bias, RMSE, coverage and rejection rate over all replicates."""
    input:
        batches=expand(
            "results/simulation/batches/batch_{batch}.parquet", batch=SIM_BATCHES
        ),
        code=code("scripts/simulation_summary.py"),
    output:
        replicates="results/simulation/replicates.parquet",
        summary="results/simulation/summary.parquet",
        fig_simulation="results/figures/simulation.png",
        numbers="results/numbers/simulation.json",
    log:
        "results/logs/simulation.log",
    benchmark:
        "results/benchmarks/simulation.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=settings_params(S.SimulationSettings),
    script:
        "../../scripts/simulation_summary.py"


ALL_TARGETS.extend(rules.power.output)
ALL_TARGETS.extend(rules.sensitivity.output)
ALL_TARGETS.extend(rules.placebo.output)
ALL_TARGETS.extend(rules.spec_curve.output)
NUMBERS.extend(
    [
        rules.power.output.numbers,
        rules.sensitivity.output.numbers,
        rules.placebo.output.numbers,
        rules.spec_curve.output.numbers,
    ]
)
FIGURES.extend(
    [rules.placebo.output.fig_placebo, rules.spec_curve.output.fig_spec_curve]
)
# The simulation study runs on synthetic data: in the report of a synthetic build, and of a
# real one only when asked (simulation.in_report: true).
SIMULATION_IN_REPORT = config["simulation"]["in_report"]
if SIMULATION_IN_REPORT is None:
    SIMULATION_IN_REPORT = SYNTHETIC
if SIMULATION_IN_REPORT:
    ALL_TARGETS.extend(rules.simulation.output)
    NUMBERS.append(rules.simulation.output.numbers)
    FIGURES.append(rules.simulation.output.fig_simulation)
