"""Effect estimates on the matched sample: the three Justice Data Lab measures.

The average treatment effect on the treated (ATT) is the weighted difference in means from
a regression of the outcome on treatment in the matched data, weighted by the matching
weights (MatchIt's ``weights``). Standard errors follow MatchIt's vignette
("Estimating Effects After Matching"); see :mod:`mydirection.effects.att` for the options:

- matching *without* replacement: cluster-robust by matched set (``subclass``), CR1
  (the sandwich ``B^-1 M B^-1`` with the small-sample factor ``G/(G-1) * (n-1)/(n-k)``,
  as R's ``sandwich::vcovCL`` and statsmodels' ``cov_type="cluster"``);
- matching *with* replacement: two-way cluster-robust on matched set and unit, one row
  per (set, unit) as MatchIt's ``get_matches()`` (``se="twoway"``, needs the pairs table),
  or HC3 / HC0 on one row per person (``se="HC3"``/``"HC0"``).

Confidence intervals and p-values use the normal distribution (as ``marginaleffects``), at
the level ``alpha`` the caller passes (the analysis plan's two-sided level).

Covariate adjustment ("doubly robust") adds the covariates, centred at their weighted
treated means, and their interactions with treatment; the treatment coefficient is then the
g-computation ATT (the average over the treated of the predicted difference). Its standard
error uses the same sandwich and treats the centring means as fixed.

Binary outcomes also get the risk ratio and count outcomes the rate ratio, both from a
weighted Poisson regression (log link) with the same robust sandwich ("modified Poisson",
Zou 2004). Without covariates the ratio is exactly ``mean_treated / mean_comparator``.

:func:`headline_table` lays the measures out as a JDL table and :func:`typical_100_sentence`
builds the "for every 100 typical people" reading from the numbers.
"""

from mydirection.effects.att import (
    KINDS,
    SE_TYPES,
    Effect,
    MatchedSample,
    att,
    link_rows,
    matched_sample,
    poisson,
    sandwich,
    time_to_first,
    wls,
    z_critical,
)
from mydirection.effects.jdl import MEASURES, headline_table, people_needed, typical_100_sentence
from mydirection.effects.subgroups import (
    holm,
    ogrs3_band,
    plot_forest,
    subgroup_effects,
    subgroup_heterogeneity,
)

__all__ = [
    "KINDS",
    "MEASURES",
    "SE_TYPES",
    "Effect",
    "MatchedSample",
    "att",
    "headline_table",
    "holm",
    "link_rows",
    "matched_sample",
    "ogrs3_band",
    "people_needed",
    "plot_forest",
    "poisson",
    "sandwich",
    "subgroup_effects",
    "subgroup_heterogeneity",
    "time_to_first",
    "typical_100_sentence",
    "wls",
    "z_critical",
]
