# Rules of the fidelity stage: the fidelity measures (outcome-blind), then the exploratory
# dose-response of re-offending on fidelity (an effect analysis, mydirection.effects.dose).
from mydirection.fidelity.settings import DoseSettings, FidelitySettings


rule fidelity:
    """Implementation fidelity (Carroll et al.): item scores 0-1, composite index per person and
    case manager with bands, item coverage, index by month of enrolment and its trend (decay).
    Uses no outcome and no matching file.
    """
    input:
        enrolments="results/clean/enrolments.parquet",
        plans="results/clean/plans.parquet",
        enabling_fund="results/clean/enabling_fund.parquet",
        activities="results/clean/activities.parquet",
        contacts="results/clean/contacts.parquet",
        staff="results/clean/staff.parquet",
        supervision="results/clean/supervision.parquet",
        cohort="results/cohort/cohort.parquet",
        code=code("scripts/fidelity.py"),
    output:
        item_scores="results/fidelity/items.parquet",
        index_person="results/fidelity/index_person.parquet",
        index_alternative="results/fidelity/index_alternative.parquet",
        index_case_manager="results/fidelity/index_case_manager.parquet",
        item_coverage="results/fidelity/item_coverage.parquet",
        monthly="results/fidelity/monthly.parquet",
        fig_fidelity_distribution="results/figures/fidelity_distribution.png",
        fig_fidelity_items="results/figures/fidelity_items.png",
        fig_fidelity_monthly="results/figures/fidelity_monthly.png",
        fig_fidelity_case_managers="results/figures/fidelity_case_managers.png",
        numbers="results/numbers/fidelity.json",
    log:
        "results/logs/fidelity.log",
    benchmark:
        "results/benchmarks/fidelity.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings_params(FidelitySettings, S.TestLevel, S.ReportSettings),
    script:
        "../../scripts/fidelity.py"


rule fidelity_dose:
    """Exploratory dose-response (fidelity is measured after treatment starts) on the headline's
    analysis sample (matched, complete follow-up): re-offending by fidelity band against each
    band's own matched comparators, and a within-treated regression on the index adjusting for
    the propensity score, SEs clustered by case manager.
    """
    input:
        index_person="results/fidelity/index_person.parquet",
        matched="results/matching/matched.parquet",
        pairs="results/matching/pairs.parquet",
        propensity="results/matching/propensity.parquet",
        outcomes="results/outcomes/outcomes.parquet",
        code=code("scripts/fidelity_dose.py"),
    output:
        dose_response="results/fidelity/dose_response.parquet",
        fig_fidelity_dose_response="results/figures/fidelity_dose_response.png",
        numbers="results/numbers/fidelity_dose.json",
    log:
        "results/logs/fidelity_dose.log",
    benchmark:
        "results/benchmarks/fidelity_dose.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=settings_params(DoseSettings, S.TestLevel, S.ReportSettings),
    script:
        "../../scripts/fidelity_dose.py"


ALL_TARGETS.extend(rules.fidelity.output)
ALL_TARGETS.extend(rules.fidelity_dose.output)
NUMBERS.extend([rules.fidelity.output.numbers, rules.fidelity_dose.output.numbers])
FIGURES.extend(
    [
        rules.fidelity.output.fig_fidelity_distribution,
        rules.fidelity.output.fig_fidelity_items,
        rules.fidelity.output.fig_fidelity_monthly,
        rules.fidelity.output.fig_fidelity_case_managers,
        rules.fidelity_dose.output.fig_fidelity_dose_response,
    ]
)
