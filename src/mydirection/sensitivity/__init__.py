"""How far to trust the answer: power, Rosenbaum bounds (binary: McNemar and matched sets;
counts on pairs: Wilcoxon's signed rank), E-values, the placebo tests, the
specification curve (the simulation study is :mod:`mydirection.simulation`)."""

from mydirection.sensitivity.evalue import evalue, evalue_ci, evalue_table, to_risk_ratio
from mydirection.sensitivity.placebo import (
    placebo_assignments,
    placebo_distribution,
    placebo_size,
)
from mydirection.sensitivity.rosenbaum import (
    BoundsSummary,
    gamma_crossing,
    matched_sets,
    poisson_binomial_pmf,
    poisson_binomial_sf,
    rosenbaum_summary,
    rosenbaum_table,
    rosenbaum_upper_p,
)
from mydirection.sensitivity.signed_rank import (
    pair_differences,
    signed_rank_gamma_crossing,
    signed_rank_lower_p,
    signed_rank_scores,
    signed_rank_summary,
    signed_rank_table,
    signed_rank_upper_p,
)
from mydirection.sensitivity.spec_curve import (
    default_spec,
    estimate_spec,
    fit_spec,
    matching_options,
    plot_spec_curve,
    sort_curve,
    spec_grid,
    spec_name,
)

__all__ = [
    "BoundsSummary",
    "default_spec",
    "estimate_spec",
    "evalue",
    "evalue_ci",
    "evalue_table",
    "fit_spec",
    "gamma_crossing",
    "matched_sets",
    "matching_options",
    "pair_differences",
    "placebo_assignments",
    "placebo_distribution",
    "placebo_size",
    "plot_spec_curve",
    "poisson_binomial_pmf",
    "poisson_binomial_sf",
    "rosenbaum_summary",
    "rosenbaum_table",
    "rosenbaum_upper_p",
    "signed_rank_gamma_crossing",
    "signed_rank_lower_p",
    "signed_rank_scores",
    "signed_rank_summary",
    "signed_rank_table",
    "signed_rank_upper_p",
    "sort_curve",
    "spec_grid",
    "spec_name",
    "to_risk_ratio",
]
