# Rules of the effects stage: the JDL measures, survival, the event-study panel and
# subgroups, all on the matched sample (results/matching/matched.parquet) with the outcomes.


rule reoffending:
    """JDL headline table: proven re-offending rate, frequency and time to first re-offence,
    participants vs the matched comparison group, with confidence intervals, p-values and
    the reading for 100 typical people."""
    input:
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        design="results/matching/design.json",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/reoffending.py"),
    output:
        headline="results/effects/headline.parquet",
        numbers="results/numbers/reoffending.json",
    log:
        "results/logs/reoffending.log",
    benchmark:
        "results/benchmarks/reoffending.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings_params(S.AnalysisSpec, S.TestLevel),
    script:
        "../../scripts/reoffending.py"


rule survival:
    """Kaplan-Meier curves, the Cox hazard ratio (cluster-robust by matched set) and its
    proportional-hazards test for time to first proven re-offence."""
    input:
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        design="results/matching/design.json",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/survival.py"),
    output:
        km="results/effects/km.parquet",
        cox="results/effects/cox.parquet",
        ph="results/effects/ph_test.parquet",
        fig_km="results/figures/km.png",
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
        settings=settings_params(S.AnalysisSpec, S.SurvivalSettings),
    script:
        "../../scripts/survival.py"


rule panel:
    """Person x quarter proven offences around the index date: difference in differences
    (pooled, and interaction-weighted by enrolment cohort) and the event study with person,
    calendar-quarter and event-time effects; which leads the matching balances by itself.
    """
    input:
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        design="results/matching/design.json",
        outcomes="results/outcomes/outcomes.parquet",
        convictions="results/clean/convictions.parquet",
        code=code("scripts/panel.py"),
    output:
        event_study="results/effects/event_study.parquet",
        did="results/effects/did.parquet",
        did_by_cohort="results/effects/did_by_cohort.parquet",
        fig_event_study="results/figures/event_study.png",
        numbers="results/numbers/panel.json",
    log:
        "results/logs/panel.log",
    benchmark:
        "results/benchmarks/panel.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        settings=settings_params(S.AnalysisSpec, S.PanelSettings),
    script:
        "../../scripts/panel.py"


rule subgroups:
    """Proven re-offending rate difference within subgroups (large enough ones only), with
    Holm-adjusted p-values, a heterogeneity test per variable and a forest plot."""
    input:
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        design="results/matching/design.json",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/subgroups.py"),
    output:
        table="results/effects/subgroups.parquet",
        heterogeneity="results/effects/subgroup_heterogeneity.parquet",
        fig_subgroups_forest="results/figures/subgroups_forest.png",
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
        settings=settings_params(S.AnalysisSpec, S.SubgroupSettings),
    script:
        "../../scripts/subgroups.py"


for _rule in (rules.reoffending, rules.survival, rules.panel, rules.subgroups):
    ALL_TARGETS.extend(_rule.output)
    NUMBERS.append(_rule.output.numbers)
FIGURES.extend(
    [
        rules.survival.output.fig_km,
        rules.panel.output.fig_event_study,
        rules.subgroups.output.fig_subgroups_forest,
    ]
)
