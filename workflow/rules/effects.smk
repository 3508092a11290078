# Rules of the effects stage: the JDL measures, survival, the event-study panel and
# subgroups, all on the matched sample (results/matching/matched.parquet) with the outcomes.


rule effects:
    """JDL headline table: proven re-offending rate, frequency and time to first re-offence,
    treated vs matched comparison, with 95% CIs, p-values and the 100-people reading."""
    input:
        matched="results/matching/matched.parquet",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/effects.py"),
    output:
        headline="results/effects/headline.parquet",
        numbers="results/numbers/effects.json",
    log:
        "results/logs/effects.log",
    benchmark:
        "results/benchmarks/effects.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        covariates=config["effects"]["covariates"],
        replace=config["matching"]["replace"],
        followup_days=config["outcomes"]["followup_days"],
    script:
        "../../scripts/effects.py"


rule survival:
    """Kaplan-Meier curves and the Cox hazard ratio (cluster-robust by matched set) for time
    to first proven re-offence."""
    input:
        matched="results/matching/matched.parquet",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/survival.py"),
    output:
        km="results/effects/km.parquet",
        cox="results/effects/cox.parquet",
        figure="results/figures/km.png",
        numbers="results/numbers/survival.json",
    log:
        "results/logs/survival.log",
    benchmark:
        "results/benchmarks/survival.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        min_reoffenders=config["effects"]["min_reoffenders_for_survival"],
        ties=config["effects"]["cox_ties"],
        km_at_risk_days=config["effects"]["km_at_risk_days"],
        replace=config["matching"]["replace"],
    script:
        "../../scripts/survival.py"


rule event_study:
    """Person x quarter proven offences around the index date: difference in differences and
    leads/lags with person and calendar-quarter effects (linearmodels PanelOLS)."""
    input:
        matched="results/matching/matched.parquet",
        convictions="results/clean/convictions.parquet",
        code=code("scripts/event_study.py"),
    output:
        event_study="results/effects/event_study.parquet",
        did="results/effects/did.parquet",
        figure="results/figures/event_study.png",
        numbers="results/numbers/event_study.json",
    log:
        "results/logs/event_study.log",
    benchmark:
        "results/benchmarks/event_study.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        panel=config["effects"]["panel"],
        replace=config["matching"]["replace"],
    script:
        "../../scripts/event_study.py"


rule subgroups:
    """Proven re-offending rate difference within subgroups (large enough ones only), with a
    forest plot."""
    input:
        matched="results/matching/matched.parquet",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/subgroups.py"),
    output:
        table="results/effects/subgroups.parquet",
        figure="results/figures/subgroups_forest.png",
        numbers="results/numbers/subgroups.json",
    log:
        "results/logs/subgroups.log",
    benchmark:
        "results/benchmarks/subgroups.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        subgroups=config["effects"]["subgroups"],
        min_treated=config["effects"]["min_subgroup_treated"],
        min_comparison=config["effects"]["min_subgroup_comparison"],
        ogrs3_band=config["effects"]["ogrs3_band"],
        replace=config["matching"]["replace"],
    script:
        "../../scripts/subgroups.py"


for _rule in (rules.effects, rules.survival, rules.event_study, rules.subgroups):
    ALL_TARGETS.extend(_rule.output)
    NUMBERS.append(_rule.output.numbers)
FIGURES.extend(
    [
        rules.survival.output.figure,
        rules.event_study.output.figure,
        rules.subgroups.output.figure,
    ]
)
