"""Propensity scores, greedy nearest-neighbour matching and inverse-probability weighting.

The semantics follow MatchIt's nearest-neighbour matching (``method = "nearest"``) and
cobalt's balance statistics for the ATT, so results can be compared with them.

    from mydirection.matching import match
    m = match(cohort, treatment="treated", covariates=["age", "sex", ...],
              categorical=["sex"], distance="logit_ps", caliper=0.2, exact=["sentence_type"])
    m.data      # matched rows (index preserved) + distance, weights, subclass
    m.pairs     # one row per (treated, control) link: treated, control, round, subclass
    m.balance   # one row per covariate (categoricals expanded to their levels)
    m.counts    # all / matched / unmatched / discarded, for treated and control

Conventions (each is checked by the tests in ``tests/test_matching.py``):

- **Propensity score**: unpenalised logistic regression of the treatment on an intercept
  and the covariates, categorical covariates expanded to indicators with the first level
  (sorted) as reference; fitted by Newton-Raphson, which gives the same estimates as
  statsmodels' ``Logit`` (use :func:`propensity_model` for the statsmodels results object
  and its ``summary()``). ``ps`` is the fitted probability, ``logit_ps`` the linear predictor.
- **Distance**: ``"ps"`` or ``"logit_ps"``: the absolute difference of that score.
  ``"mahalanobis"``: Mahalanobis distance on the covariates (indicator-expanded) with the
  pooled within-group covariance matrix (as MatchIt); ``logit_ps`` is then still used
  for the matching order and the caliper, and is what the ``distance`` column holds.
- **Order** (MatchIt's ``m.order``): treated units are matched in descending
  (``"largest"``) or ascending (``"smallest"``) order of the distance column, in data
  order (``"data"``), or in a random order drawn with ``numpy.random.default_rng(seed)``.
  Ties in the order keep data order (stable sort).
- **Closest control and ties**: the closest still-available control; among controls at
  exactly the same distance the one that comes first in the data wins (row position is
  the stable tie-breaking key).
- **Caliper**: in standard deviations of the distance measure (``logit_ps`` for
  Mahalanobis), SD (n - 1 denominator) over all units of ``data``; a pair is allowed
  when ``|difference| <= caliper * SD``. A treated unit with no available control inside
  the caliper stays unmatched.
- **Ratio**: without replacement matching proceeds in rounds (every treated unit gets its
  first control before any gets its second); a treated unit that found no control in a
  round gets none in later rounds. With replacement, each treated unit gets its ``ratio``
  closest controls (fewer if fewer lie inside the caliper).
- **Exact**: units are matched only within strata of the ``exact`` columns.
- **Discard** (MatchIt's ``discard``): ``"treated"``, ``"control"`` or ``"both"`` drop
  units whose propensity score lies outside the range of the other group before matching.
- **Weights (ATT)**: matched treated 1; a control gets the sum of ``1/k_i`` over the
  treated units ``i`` it serves (``k_i`` = controls matched to ``i``), then control weights
  are rescaled to sum to the number of matched controls. Unmatched units have weight 0
  and are not in ``data``.
- **Subclass**: matched sets are numbered 1, 2, ... in data order of their treated unit.
  Without replacement every matched unit is in exactly one set. With replacement a
  control may serve several sets; it appears once in ``data`` (with its summed weight)
  and its ``subclass`` is the lowest set it belongs to -- use ``pairs`` (which carries
  every link with its ``subclass``) to recover all sets.
- **Balance** (cobalt, ATT): see :func:`balance_table`.

Speed: on a 1-D distance the controls of each exact stratum are sorted once and each
treated unit's position found by binary search; the closest still-available control on
either side is found through union-find "next available" pointers over used-up groups
of equal distance, so no treated x control matrix is built (O((n_t + n_c) log n_c)).
Mahalanobis matching computes distances for blocks of treated units (memory-bounded,
O(n_t x n_c) time per stratum). ``benchmarks/bench_matching.py`` times 1,000 treated
against up to 1,000,000 controls. On a shared machine, run with one BLAS thread
(``OPENBLAS_NUM_THREADS=1``, as Snakemake does for a one-thread rule).
"""

from mydirection.matching.balance import BalanceVerdict, balance_table, balance_verdict
from mydirection.matching.design import (
    categorical_columns,
    expand_covariates,
    treatment_indicator,
)
from mydirection.matching.engine import (
    mahalanobis_transform,
    matching_weights,
    nearest_neighbour,
    treated_order,
)
from mydirection.matching.methods import (
    ADDED_COLUMNS,
    DISCARDS,
    DISTANCES,
    ORDERS,
    MatchResult,
    Preparations,
    Prepared,
    ipw,
    match,
    prepare,
)
from mydirection.matching.plots import ecdf_plot, love_plot, ps_overlap_plot
from mydirection.matching.propensity import fit_propensity, n_outside_support, propensity_model

__all__ = [
    "ADDED_COLUMNS",
    "DISCARDS",
    "DISTANCES",
    "ORDERS",
    "BalanceVerdict",
    "MatchResult",
    "Prepared",
    "Preparations",
    "balance_table",
    "balance_verdict",
    "categorical_columns",
    "ecdf_plot",
    "expand_covariates",
    "fit_propensity",
    "ipw",
    "love_plot",
    "mahalanobis_transform",
    "match",
    "matching_weights",
    "n_outside_support",
    "nearest_neighbour",
    "prepare",
    "propensity_model",
    "ps_overlap_plot",
    "treated_order",
    "treatment_indicator",
]
