# Rules of the sensitivity stage: power, Rosenbaum bounds and E-values, placebo,
# specification curve (one job per specification) and the simulation study.
import re

from mydirection.sensitivity import default_spec, spec_grid, spec_name

SPEC_GRID = config["sensitivity"]["spec_curve"]
SPECS = spec_grid(SPEC_GRID)
DEFAULT_SPEC = spec_name(
    default_spec(
        config["matching"], config["outcomes"]["followup_days"], SPEC_GRID["exact"]
    )
)
# Settings the bounds/E-value rule uses (not the grid or the placebo repetitions).
SENS_BOUNDS = {
    k: v
    for k, v in config["sensitivity"].items()
    if k not in ("spec_curve", "placebo_repetitions")
}


wildcard_constraints:
    spec="|".join(re.escape(name) for name in SPECS) or "NO_SPECIFICATION",


rule power:
    """Minimum detectable effect and sample size needed, for the achieved matched sample."""
    input:
        matched="results/matching/matched.parquet",
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
        power=config["power"],
    script:
        "../../scripts/power.py"


rule sensitivity:
    """Rosenbaum bounds on the matched binary outcome; E-values of its risk ratio and of the
    Cox hazard ratio of time to first re-offence."""
    input:
        pairs="results/matching/pairs.parquet",
        matched="results/matching/matched.parquet",
        outcomes="results/outcomes/outcomes.parquet",
        cox="results/effects/cox.parquet",
        code=code("scripts/sensitivity.py"),
    output:
        rosenbaum="results/sensitivity/rosenbaum.parquet",
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
        sensitivity=SENS_BOUNDS,
        replace=config["matching"].get("replace", False),
    script:
        "../../scripts/sensitivity.py"


rule placebo:
    """Placebo outcome (re-offending before the index date, matched design) and placebo
    treatment randomly assigned among comparators (R repetitions)."""
    input:
        cohort="results/cohort/cohort.parquet",
        matched="results/matching/matched.parquet",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/placebo.py"),
    output:
        placebo="results/sensitivity/placebo.parquet",
        pre_outcome="results/sensitivity/placebo_outcome.parquet",
        figure="results/figures/placebo.png",
        numbers="results/numbers/placebo.json",
    log:
        "results/logs/placebo.log",
    benchmark:
        "results/benchmarks/placebo.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        sensitivity={
            k: config["sensitivity"][k] for k in ("alpha", "placebo_repetitions")
        },
        matching=config["matching"],
        followup_days=config["outcomes"]["followup_days"],
        seed=config["seed"],
    script:
        "../../scripts/placebo.py"


rule spec:
    """One specification of the specification curve (wildcard spec; names in SPECS)."""
    input:
        cohort="results/cohort/cohort.parquet",
        convictions="results/clean/convictions.parquet",
        code=code("scripts/spec.py"),
    output:
        "results/sensitivity/specs/{spec}.parquet",
    log:
        "results/logs/spec/{spec}.log",
    benchmark:
        "results/benchmarks/spec/{spec}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spec=lambda wc: SPECS[wc.spec],
        is_default=lambda wc: wc.spec == DEFAULT_SPEC,
        matching=config["matching"],
        waiting_days=config["outcomes"]["waiting_days"],
        extract_end_date=config["extract_end_date"],
    script:
        "../../scripts/spec.py"


rule spec_curve:
    """Every specification's estimate, CI and balance verdict, and the curve figure."""
    input:
        specs=expand("results/sensitivity/specs/{spec}.parquet", spec=SPECS),
        code=code("scripts/spec_curve.py"),
    output:
        table="results/sensitivity/spec_curve.parquet",
        figure="results/figures/spec_curve.png",
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
        grid=SPEC_GRID,
    script:
        "../../scripts/spec_curve.py"


# Simulation study: `snakemake simulation`; one job per (scenario, replicate).
SIM = config["simulation"]
SIM_SCENARIOS = ["measured", "hidden"]
SIM_REPS = list(range(SIM["replicates"]))


rule simulation_replicate:
    """One replicate: generator -> clean -> cohort -> outcomes -> matching -> ATT, in process,
    with a planted effect (the headline specification and a naive comparison)."""
    input:
        code=code("scripts/simulation_replicate.py"),
    output:
        "results/simulation/replicates/{scenario}/{rep}.parquet",
    log:
        "results/logs/simulation/{scenario}/{rep}.log",
    benchmark:
        "results/benchmarks/simulation_replicate/{scenario}/{rep}.tsv"
    wildcard_constraints:
        scenario="measured|hidden",
        rep=r"\d+",
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        simulation={k: SIM[k] for k in ("generator", "hidden_confounding_strength")},
        synthetic=SYNTHETIC_SETTINGS,
        cohort=config["cohort"],
        outcomes=config["outcomes"],
        matching=config["matching"],
        extract_end_date=config["extract_end_date"],
        seed=config["seed"],
    script:
        "../../scripts/simulation_replicate.py"


rule simulation:
    """Target: bias, RMSE, coverage and rejection rate over all replicates."""
    input:
        replicates=expand(
            "results/simulation/replicates/{scenario}/{rep}.parquet",
            scenario=SIM_SCENARIOS,
            rep=SIM_REPS,
        ),
        code=code("scripts/simulation_summary.py"),
    output:
        replicates="results/simulation/replicates.parquet",
        summary="results/simulation/summary.parquet",
        figure="results/figures/simulation.png",
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
        simulation={k: v for k, v in SIM.items() if k != "replicates"},
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
FIGURES.extend([rules.placebo.output.figure, rules.spec_curve.output.figure])
if SIM["in_report"]:
    ALL_TARGETS.extend(rules.simulation.output)
    NUMBERS.append(rules.simulation.output.numbers)
    FIGURES.append(rules.simulation.output.figure)
