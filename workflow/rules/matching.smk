# Rules of the matching stage. Outcome-blind by construction: the only data input is the
# cohort (never an outcome file), and balance is judged before any effect is estimated.


rule matching:
    """The design every analysis uses: propensity model, greedy nearest-neighbour matching
    (MatchIt semantics) or IPW, balance judged on standardised differences and variance
    ratios, and the pre-specified revisions (matching.revisions) applied while balance fails.
    A failed verdict is reported, not fatal."""
    input:
        cohort="results/cohort/cohort.parquet",
        code=code("scripts/matching.py"),
    output:
        propensity="results/matching/propensity.parquet",
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        counts="results/matching/counts.parquet",
        design_steps="results/matching/design_steps.parquet",
        balance="results/matching/balance.parquet",
        design="results/matching/design.json",
        fig_love_plot="results/figures/love_plot.png",
        fig_ps_overlap="results/figures/ps_overlap.png",
        fig_ecdf_worst="results/figures/ecdf_worst.png",
        numbers="results/numbers/matching.json",
    log:
        "results/logs/matching.log",
    benchmark:
        "results/benchmarks/matching.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        settings=settings_params(S.MatchSpec),
    script:
        "../../scripts/matching.py"


ALL_TARGETS.extend(rules.matching.output)
NUMBERS.append(rules.matching.output.numbers)
FIGURES.extend(
    [
        rules.matching.output.fig_love_plot,
        rules.matching.output.fig_ps_overlap,
        rules.matching.output.fig_ecdf_worst,
    ]
)
