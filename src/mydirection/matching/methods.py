"""The matching methods: nearest-neighbour matching (MatchIt semantics) and inverse-probability
weighting for the ATT, each returning a :class:`MatchResult`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np
import pandas as pd

from mydirection.matching.balance import BalanceVerdict, _balance, _before, balance_verdict
from mydirection.matching.design import (
    _expand,
    _first_levels,
    categorical_columns,
    treatment_indicator,
)
from mydirection.matching.engine import (
    ORDERS,
    _strata_codes,
    mahalanobis_transform,
    matching_weights,
    nearest_neighbour,
)
from mydirection.matching.propensity import _propensity, model_matrix

DISTANCES = ("ps", "logit_ps", "mahalanobis")


DISCARDS = ("none", "treated", "control", "both")


ADDED_COLUMNS = ("distance", "weights", "subclass")


@dataclass
class MatchResult:
    """The result of :func:`match` (``method="nearest"``) or :func:`ipw` (``method="ipw"``).

    ``data``: the adjusted rows of the input (index preserved) plus ``distance``,
    ``weights`` and ``subclass`` (see the module docstring; all-missing for IPW), built
    by ``adjusted`` when first read (a design's revisions that are not chosen never are):
    do not change the input frame in place after matching.
    ``pairs``: one row per link, ``treated`` and ``control`` (index labels), ``round``
    (1..ratio) and ``subclass``; empty for IPW. ``propensity``: ``ps`` and ``logit_ps``
    for every input row.
    """

    adjusted: Callable[[], pd.DataFrame] = field(repr=False, compare=False)
    pairs: pd.DataFrame
    balance: pd.DataFrame
    counts: pd.DataFrame
    treatment: str
    covariates: list[str]
    distance: str
    ratio: int | None
    replace: bool
    method: str = "nearest"
    categorical: list[str] = field(default_factory=list)
    caliper: float | None = None
    caliper_width: float | None = None
    order: str | None = None
    exact: list[str] = field(default_factory=list)
    discard: str = "none"
    seed: int = 0
    propensity: pd.DataFrame | None = None

    @cached_property
    def data(self) -> pd.DataFrame:
        return self.adjusted()

    def verdict(self, smd_threshold: float = 0.1, var_ratio_bounds=(0.5, 2)) -> BalanceVerdict:
        return balance_verdict(self.balance, smd_threshold, var_ratio_bounds)

    def n_matched(self, group: str = "treated") -> int:
        """People of ``group`` (``treated`` or ``control``) matched or weighted (``counts``)."""
        c = self.counts
        return int(c["matched"].to_numpy()[c["group"].to_numpy() == group].sum())


def _with_columns(data: pd.DataFrame, rows, columns: dict) -> pd.DataFrame:
    """The rows ``rows`` (positions; None: all) of ``data`` with ``columns`` added."""
    out = data.copy() if rows is None else data.iloc[rows].copy()
    for name, values in columns.items():
        out[name] = values
    return out


def _counts(treated, adjusted, discarded) -> pd.DataFrame:
    groups = (treated, ~treated)
    return pd.DataFrame(
        {
            "group": ["treated", "control"],
            "all": [int(g.sum()) for g in groups],
            "matched": [int((g & adjusted).sum()) for g in groups],
            "unmatched": [int((g & ~adjusted & ~discarded).sum()) for g in groups],
            "discarded": [int((g & discarded).sum()) for g in groups],
        }
    )


class Prepared:
    """What every design fitted on one sample shares, computed once: the treatment
    indicator, the covariates expanded to a matrix, the propensity model's model matrices,
    the balance statistics before adjustment and the exact-matching strata (:func:`prepare`).

    :func:`mydirection.pipeline.design` fits the analysis plan's design and each of its
    revisions on the same cohort; passing one ``Prepared`` to :func:`match` and :func:`ipw`
    gives the same results as without it, without redoing this work for each of them.
    :meth:`for_data` carries the work that does not depend on treatment over to the same
    people with another treatment column (a placebo's repetitions).
    """

    def __init__(self, data: pd.DataFrame, treatment: str, covariates, categorical=None):
        self.data = data
        self.key = _key(treatment, covariates, categorical)
        self.t = treatment_indicator(data, treatment)
        self.categorical = categorical_columns(data, list(covariates), categorical)
        self.X, self.names, self.variables = _expand(
            data, covariates, self.categorical, drop_first=False
        )
        self.before = _before(self.X, self.t)
        self._strata: dict[tuple, np.ndarray] = {}
        self._models: dict[tuple, np.ndarray] = {}
        self._base: Prepared | None = None

    def strata(self, exact) -> np.ndarray:
        """Exact-matching stratum codes of the rows (one stratum without ``exact``)."""
        key = tuple(exact)
        if key not in self._strata:
            base = self._base
            if base is not None and _same_columns(self.data, base.data, key):
                self._strata[key] = base.strata(key)
            else:
                self._strata[key] = _strata_codes(self.data, list(key))
        return self._strata[key]

    def model_matrix(self, terms=()) -> np.ndarray:
        """The propensity model's model matrix with the extra ``terms`` (made once)."""
        key = tuple(terms)
        if key not in self._models:
            self._models[key] = model_matrix(self.X, self.names, self.variables, key)
        return self._models[key]

    def for_data(self, data: pd.DataFrame) -> Prepared | None:
        """This preparation for ``data``: the same people in the same order with the same
        covariates (checked, column by column), whatever its treatment column says; None
        when they differ. The covariate matrix, model matrices and (where the exact-matching
        columns are equal too) strata are shared; the treatment indicator and the balance
        before adjustment are ``data``'s own."""
        if data is self.data:
            return self
        treatment, covariates, categorical = self.key
        if treatment not in data.columns or not _same_columns(data, self.data, covariates):
            return None
        out = object.__new__(Prepared)
        out.__dict__.update(self.__dict__)
        out.data, out._base, out._strata = data, self._base or self, {}
        out.t = treatment_indicator(data, treatment)
        out.before = _before(self.X, out.t, self.before[0])
        return out


class Preparations:
    """:func:`prepare` by treatment and covariates, shared by the designs fitted on the same
    people: a design's revisions, the specifications of a batch, a placebo's repetitions
    (the same people with another treatment column, :meth:`Prepared.for_data`). The same
    results as preparing for each design afresh."""

    def __init__(self):
        self._by: dict[tuple, Prepared] = {}

    def get(self, data: pd.DataFrame, treatment: str, covariates, categorical=None) -> Prepared:
        key = _key(treatment, covariates, categorical)
        base = self._by.get(key)
        prepared = base.for_data(data) if base is not None else None
        if prepared is None:
            prepared = self._by[key] = prepare(data, treatment, covariates, categorical)
        return prepared


def _same_columns(a: pd.DataFrame, b: pd.DataFrame, columns) -> bool:
    """Whether ``a`` and ``b`` hold the same rows (index) and values in ``columns``."""
    if len(a) != len(b) or not a.index.equals(b.index):
        return False
    return all(c in a.columns and c in b.columns and a[c].equals(b[c]) for c in columns)


def _key(treatment, covariates, categorical) -> tuple:
    return (treatment, tuple(covariates), None if categorical is None else tuple(categorical))


def prepare(data: pd.DataFrame, treatment: str, covariates, categorical=None) -> Prepared:
    """The shared part of every design on ``data`` (:class:`Prepared`)."""
    _check_added_columns(data)
    return Prepared(data, treatment, covariates, categorical)


def _prepared(prepared, data, treatment, covariates, categorical) -> Prepared:
    if prepared is None:
        return prepare(data, treatment, covariates, categorical)
    if prepared.data is not data or prepared.key != _key(treatment, covariates, categorical):
        raise ValueError("prepared: made for other data, treatment or covariates; prepare again")
    return prepared


def _check_added_columns(data):
    clash = [c for c in ADDED_COLUMNS if c in data.columns]
    if clash:
        raise ValueError(f"column {clash[0]}: the result adds this column; rename it in the data")


def match(
    data: pd.DataFrame,
    treatment: str,
    covariates,
    *,
    distance: str = "ps",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = None,
    order: str = "largest",
    exact=None,
    seed: int = 0,
    categorical=None,
    discard: str = "none",
    propensity=None,
    terms=(),
    prepared: Prepared | None = None,
) -> MatchResult:
    """Greedy nearest-neighbour matching for the ATT (MatchIt semantics; module docstring).

    ``categorical``: covariates to expand to indicators (non-numeric ones always are).
    ``propensity``: optional precomputed propensity scores (probabilities, aligned to the
    index of ``data``); otherwise they are fitted by :func:`fit_propensity`.
    ``prepared``: :func:`prepare` of the same data, treatment and covariates, shared by
    several designs on one sample (the same result, less work).
    """
    covariates = list(covariates)
    exact = list(exact or [])
    if distance not in DISTANCES:
        raise ValueError(f"distance {distance!r}: use one of {DISTANCES}")
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: use one of {ORDERS}")
    if discard not in DISCARDS:
        raise ValueError(f"discard {discard!r}: use one of {DISCARDS}")
    if int(ratio) != ratio or ratio < 1:
        raise ValueError(f"ratio {ratio!r}: must be a whole number >= 1")
    if caliper is not None and not caliper > 0:
        raise ValueError(f"caliper {caliper!r}: must be positive (or None for no caliper)")
    ratio = int(ratio)
    p = _prepared(prepared, data, treatment, covariates, categorical)
    t, cats, X, names, variables = p.t, p.categorical, p.X, p.names, p.variables
    prop = _propensity(data, t, p.model_matrix, propensity, terms)
    scalar = prop["ps" if distance == "ps" else "logit_ps"].to_numpy()
    width = math.inf
    if caliper is not None:
        width = float(caliper) * float(np.std(scalar, ddof=1))
    ps = prop["ps"].to_numpy()
    eligible = np.ones(len(data), dtype=bool)
    if discard != "none":
        lo_c, hi_c = ps[~t].min(), ps[~t].max()
        lo_t, hi_t = ps[t].min(), ps[t].max()
        if discard in ("treated", "both"):
            eligible &= ~(t & ((ps < lo_c) | (ps > hi_c)))
        if discard in ("control", "both"):
            eligible &= ~(~t & ((ps < lo_t) | (ps > hi_t)))
    coords = None
    if distance == "mahalanobis":
        coords = mahalanobis_transform(X[:, ~_first_levels(names, variables)], t)
    links = nearest_neighbour(
        t,
        scalar,
        ratio=ratio,
        replace=replace,
        width=width,
        order=order,
        seed=seed,
        strata=p.strata(exact),
        eligible=eligible,
        coords=coords,
    )
    weights, subclass = matching_weights(links, len(data))
    matched = weights > 0
    added = {"distance": scalar[matched], "weights": weights[matched],
             "subclass": subclass[matched]}  # fmt: skip
    index = data.index
    pairs = pd.DataFrame(
        {
            "treated": index[links["treated"].to_numpy()],
            "control": index[links["control"].to_numpy()],
            "round": links["round"].to_numpy(),
            "subclass": subclass[links["treated"].to_numpy()],
        }
    )
    balance = _balance(X, names, variables, t, weights, p.before)
    return MatchResult(
        adjusted=partial(_with_columns, data, np.flatnonzero(matched), added),
        pairs=pairs,
        balance=balance,
        counts=_counts(t, matched, ~eligible),
        treatment=treatment,
        covariates=covariates,
        distance=distance,
        ratio=ratio,
        replace=bool(replace),
        method="nearest",
        categorical=cats,
        caliper=caliper,
        caliper_width=None if caliper is None else width,
        order=order,
        exact=exact,
        discard=discard,
        seed=seed,
        propensity=prop,
    )


def ipw(
    data: pd.DataFrame,
    treatment: str,
    covariates,
    *,
    categorical=None,
    propensity=None,
    terms=(),
    prepared: Prepared | None = None,
) -> MatchResult:
    """Inverse-probability weighting for the ATT (odds weights), for sensitivity analysis.

    Treated units get weight 1, controls ps / (1 - ps), rescaled so control weights sum
    to the number of controls. Every row is kept; ``subclass`` is missing, ``pairs`` empty.
    ``prepared`` as in :func:`match`.
    """
    covariates = list(covariates)
    p = _prepared(prepared, data, treatment, covariates, categorical)
    t, cats, X, names, variables = p.t, p.categorical, p.X, p.names, p.variables
    prop = _propensity(data, t, p.model_matrix, propensity, terms)
    ps = prop["ps"].to_numpy()
    w = np.where(t, 1.0, np.exp(prop["logit_ps"].to_numpy()))  # odds ps / (1 - ps)
    w[~t] *= (~t).sum() / w[~t].sum()
    no_subclass = pd.arrays.IntegerArray(np.zeros(len(data), np.int64), np.ones(len(data), bool))
    added = {"distance": ps, "weights": w, "subclass": no_subclass}
    balance = _balance(X, names, variables, t, w, p.before)
    return MatchResult(
        adjusted=partial(_with_columns, data, None, added),
        pairs=pd.DataFrame({"treated": [], "control": [], "round": [], "subclass": []}).astype(
            {"round": "int64", "subclass": "int64"}
        ),
        balance=balance,
        counts=_counts(t, np.ones(len(data), dtype=bool), np.zeros(len(data), dtype=bool)),
        treatment=treatment,
        covariates=covariates,
        distance="ps",
        ratio=None,
        replace=False,
        method="ipw",
        categorical=cats,
        propensity=prop,
    )
