"""Implementation fidelity of My Direction: was the model delivered as designed?

Follows Carroll et al. (2007), *A conceptual framework for implementation fidelity*:
**adherence** (coverage, content, frequency, components) is the core and makes up the
fidelity index; **moderators** (duration of exposure, practitioner training, Action
Learning Sets, caseload) are measured and reported beside it, never mixed into it.

One module per purpose, each stating its rules in order:

- :mod:`~mydirection.fidelity.settings`: :class:`FidelitySettings`, the ``fidelity``
  section of the analysis plan (defaults in the config schema only);
- :mod:`~mydirection.fidelity.items`: the scoring period and the nine items;
- :mod:`~mydirection.fidelity.index`: the composite index, bands, alternative weights,
  item coverage and the case-manager indices;
- :mod:`~mydirection.fidelity.trend`: the index by month of enrolment and its slope (decay);
- :mod:`~mydirection.fidelity.inputs`: what the stage reads and the checks on it;
- :mod:`~mydirection.fidelity.plots`: the figures, drawn from disclosure-controlled numbers;
- :mod:`~mydirection.fidelity.stage`: :func:`score_fidelity`, the stage function, and
  :class:`FidelityResult` with its numbers and figures.

Every interval is at the analysis plan's confidence level ``1 - analysis.alpha``
(:class:`mydirection.settings.TestLevel`). Fidelity never reads an outcome: the
exploratory dose-response of re-offending on fidelity is an effect analysis, in
:mod:`mydirection.effects.dose`.

Nothing is imported until it is used (:mod:`mydirection.lazy`): the Snakefile reads
:class:`FidelitySettings` while it is parsed without importing numpy, pandas or scipy.
"""

from typing import TYPE_CHECKING

from mydirection.lazy import attach

if TYPE_CHECKING:
    from mydirection.fidelity.index import (
        BANDS,
        alternative_indices,
        band,
        case_manager_index,
        composite_index,
        item_coverage,
        mean_ci,
        person_index,
    )
    from mydirection.fidelity.inputs import READS, check_table, table_of, treated_enrolments
    from mydirection.fidelity.items import (
        BINARY_ITEMS,
        DAYS_PER_MONTH,
        DOMAINS,
        ITEM_LABELS,
        ITEMS,
        enrolment_periods,
        score_component_items,
        score_contact_items,
        score_items,
        score_plan_items,
    )
    from mydirection.fidelity.settings import FidelitySettings
    from mydirection.fidelity.stage import CAPTIONS, FidelityResult, score_fidelity
    from mydirection.fidelity.trend import Slope, monthly_index, monthly_slope

#: Name -> the submodule it lives in (imported on first use, see mydirection.lazy).
_WHERE = {
    "BANDS": "index",
    "alternative_indices": "index",
    "band": "index",
    "case_manager_index": "index",
    "composite_index": "index",
    "item_coverage": "index",
    "mean_ci": "index",
    "person_index": "index",
    "READS": "inputs",
    "check_table": "inputs",
    "table_of": "inputs",
    "treated_enrolments": "inputs",
    "BINARY_ITEMS": "items",
    "DAYS_PER_MONTH": "items",
    "DOMAINS": "items",
    "ITEM_LABELS": "items",
    "ITEMS": "items",
    "enrolment_periods": "items",
    "score_component_items": "items",
    "score_contact_items": "items",
    "score_items": "items",
    "score_plan_items": "items",
    "FidelitySettings": "settings",
    "CAPTIONS": "stage",
    "FidelityResult": "stage",
    "score_fidelity": "stage",
    "Slope": "trend",
    "monthly_index": "trend",
    "monthly_slope": "trend",
}
__getattr__, __dir__ = attach(
    __name__, _WHERE, ("index", "inputs", "items", "plots", "settings", "stage", "trend")
)

__all__ = [
    "BANDS",
    "BINARY_ITEMS",
    "CAPTIONS",
    "DAYS_PER_MONTH",
    "DOMAINS",
    "ITEMS",
    "ITEM_LABELS",
    "READS",
    "FidelityResult",
    "FidelitySettings",
    "Slope",
    "alternative_indices",
    "band",
    "case_manager_index",
    "check_table",
    "composite_index",
    "enrolment_periods",
    "item_coverage",
    "mean_ci",
    "monthly_index",
    "monthly_slope",
    "person_index",
    "score_component_items",
    "score_contact_items",
    "score_fidelity",
    "score_items",
    "score_plan_items",
    "table_of",
    "treated_enrolments",
]
