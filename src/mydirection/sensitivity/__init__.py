"""How far to trust the answer: power, Rosenbaum bounds (binary: McNemar and matched sets;
counts on pairs: Wilcoxon's signed rank), E-values, the placebo tests, the
specification curve (the simulation study is :mod:`mydirection.simulation`).

Nothing is imported until it is used (:mod:`mydirection.lazy`): the
Snakefile reads the light :mod:`mydirection.sensitivity.grid` while it is parsed, and a
script that needs one submodule does not pay for scipy.stats and scipy.optimize of the
others. The imports below are what the names resolve to (also read by
:func:`mydirection.reporting.provenance.library_sources`)."""

from typing import TYPE_CHECKING

from mydirection.lazy import attach

# Standard library only, so imported now: the function ``evalue`` shadows its submodule's
# name, as it always has (``sensitivity.evalue(...)``).
from mydirection.sensitivity.evalue import evalue, evalue_ci, evalue_table, to_risk_ratio

if TYPE_CHECKING:
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
        grid_choices,
        plot_spec_curve,
        run_spec,
        sort_curve,
        spec_name,
    )

#: Name -> the submodule it lives in (imported on first use, see mydirection.lazy).
_WHERE = {
    "placebo_assignments": "placebo",
    "placebo_distribution": "placebo",
    "placebo_size": "placebo",
    "BoundsSummary": "rosenbaum",
    "gamma_crossing": "rosenbaum",
    "matched_sets": "rosenbaum",
    "poisson_binomial_pmf": "rosenbaum",
    "poisson_binomial_sf": "rosenbaum",
    "rosenbaum_summary": "rosenbaum",
    "rosenbaum_table": "rosenbaum",
    "rosenbaum_upper_p": "rosenbaum",
    "pair_differences": "signed_rank",
    "signed_rank_gamma_crossing": "signed_rank",
    "signed_rank_lower_p": "signed_rank",
    "signed_rank_scores": "signed_rank",
    "signed_rank_summary": "signed_rank",
    "signed_rank_table": "signed_rank",
    "signed_rank_upper_p": "signed_rank",
    "grid_choices": "spec_curve",
    "plot_spec_curve": "spec_curve",
    "run_spec": "spec_curve",
    "sort_curve": "spec_curve",
    "spec_name": "spec_curve",
}
_SUBMODULES = ("bounds_stage", "grid", "placebo", "power", "rosenbaum", "signed_rank", "spec_curve")
__getattr__, __dir__ = attach(__name__, _WHERE, _SUBMODULES)

__all__ = [
    "BoundsSummary",
    "evalue",
    "evalue_ci",
    "evalue_table",
    "gamma_crossing",
    "grid_choices",
    "matched_sets",
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
    "run_spec",
    "signed_rank_gamma_crossing",
    "signed_rank_lower_p",
    "signed_rank_scores",
    "signed_rank_summary",
    "signed_rank_table",
    "signed_rank_upper_p",
    "sort_curve",
    "spec_name",
    "to_risk_ratio",
]
