"""The average treatment effect on the treated (ATT) in a matched or weighted sample: weighted
regression of the outcome on treatment with robust sandwich standard errors, and the risk
or rate ratio from a weighted Poisson regression (see the package docstring).

Standard errors (``se=``)
-------------------------
- ``"cluster"``: one-way cluster-robust by matched set (``subclass``), CR1. MatchIt's
  recommendation after matching *without* replacement (vignette "Estimating Effects After
  Matching", standard case: ``vcov = ~subclass``; Abadie & Spiess 2021).
- ``"twoway"``: after matching *with* replacement a comparator can serve several matched
  sets, so there is no single pair membership. The data are laid out as MatchIt's
  ``get_matches()`` does: one row per (matched set, unit), treated rows with their weight
  (1 for the ATT), comparator rows with weight ``1 / k_s`` (``k_s`` = comparators in set
  ``s``), and the covariance is clustered on both matched set and unit (Cameron, Gelbach &
  Miller 2011; MatchIt's ``vcov = ~subclass + id``, after Austin & Cafri 2020):
  ``V = c_s V_set + c_u V_unit - c_su V_set x unit``, each term with its CR1 factor
  ``G/(G-1) (n-1)/(n-k)`` (as R's ``sandwich::vcovCL`` with ``type = "HC1"`` and
  statsmodels' two-column ``cov_type="cluster"``). The point estimate is the same as with
  one row per person and the ``match_data()`` weights. Without replacement it equals
  ``"cluster"`` exactly. It needs the links (``pairs.parquet``: ``treated_id``,
  ``comparator_id``, ``subclass``) on the :class:`MatchedSample`.
- ``"HC3"``: heteroskedasticity-robust with the leverage correction, one row per person;
  the option the MatchIt vignette names for ``match_data()`` output after matching with
  replacement ("as recommended by Hill & Reiter 2006"). ``"HC0"``: without the correction.
- ``"auto"`` (the default): ``"cluster"`` without replacement (``"HC0"`` when there is no
  complete ``subclass``); with replacement ``"twoway"`` when the links are given, else
  ``"HC0"``. **Recommended**: pass ``se`` explicitly from the analysis plan -- ``"cluster"``
  without replacement, ``"twoway"`` with replacement (it accounts for both the reuse of
  comparators and the pairing; MatchIt's vignette lists it with the bootstrap and HC3 and
  notes the evidence for it comes from survival outcomes). The chosen type is in
  ``Effect.se_type``.

The two-way variance is a difference of positive semi-definite matrices and can, rarely,
be negative for a coefficient; the standard error is then NaN (no eigenvalue fix).

Test level: the caller passes ``alpha`` (the analysis plan's two-sided level); the
confidence interval is at ``1 - alpha`` and ``Effect.significant`` is ``p < alpha``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from mydirection import normal

KINDS = ("binary", "count", "continuous")
SE_TYPES = ("auto", "cluster", "twoway", "HC0", "HC3")

# Only for callers that do not pass ``alpha`` yet (they get a FutureWarning); the pipeline
# passes the analysis plan's level.
_LEGACY_ALPHA = 0.05


def z_critical(alpha: float) -> float:
    """Two-sided normal critical value ``z_{1 - alpha/2}``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(normal.norm_isf(alpha / 2))


def resolve_alpha(alpha: float | None, caller: str) -> float:
    """``alpha`` itself, or the legacy 0.05 with a FutureWarning when the caller gave none."""
    if alpha is None:
        warnings.warn(
            f"{caller}: no alpha given; 0.05 assumed. Pass the analysis plan's two-sided "
            "test level (alpha=...)",
            FutureWarning,
            stacklevel=3,
        )
        return _LEGACY_ALPHA
    z_critical(alpha)
    return float(alpha)


@dataclass
class MatchedSample:
    """The minimal match result :func:`att` needs (``mydirection.matching.MatchResult`` fits).

    ``data``: matched rows with ``weights``, ``subclass``, the treatment column and outcomes.
    ``pairs``: the links of the match, for ``se="twoway"`` and for subgroups after matching
    with replacement: either ``pairs.parquet`` (``treated_id``, ``comparator_id``,
    ``subclass``; ids are values of ``data[id_col]``) or ``MatchResult.pairs``
    (``treated``, ``control``, ``subclass``; index labels of ``data``).
    """

    data: pd.DataFrame
    treatment: str = "treated"
    replace: bool = False
    pairs: pd.DataFrame | None = None
    id_col: str = "person_id"


def matched_sample(
    data: pd.DataFrame,
    treatment: str = "treated",
    replace: bool = False,
    pairs: pd.DataFrame | None = None,
    id_col: str = "person_id",
):
    """Wrap a matched DataFrame (e.g. ``matched.parquet`` merged with outcomes) for :func:`att`;
    ``pairs`` is ``pairs.parquet`` (needed for ``se="twoway"`` after matching with
    replacement)."""
    return MatchedSample(
        data=data, treatment=treatment, replace=replace, pairs=pairs, id_col=id_col
    )


@dataclass
class Effect:
    """An ATT estimate with its uncertainty and the group summaries a JDL table shows.

    ``alpha`` is the two-sided test level the interval and ``significant`` use (the CI is at
    ``1 - alpha``); an Effect built without one has no verdict.
    """

    outcome: str
    kind: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_treated: int
    n_comparators: int
    mean_treated: float
    mean_comparator: float
    se_type: str
    n_clusters: int | None = None
    covariates: list[str] = field(default_factory=list)
    ratio: float | None = None
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    ratio_p_value: float | None = None
    alpha: float | None = None

    @property
    def significant(self) -> bool:
        """True when ``p < alpha`` (the ``1 - alpha`` interval excludes zero)."""
        if self.alpha is None:
            raise ValueError("this Effect has no test level; build it with att(..., alpha=...)")
        return bool(self.p_value < self.alpha)

    @property
    def ci_level(self) -> float | None:
        """Confidence level of ``ci_low``/``ci_high`` (``1 - alpha``)."""
        return None if self.alpha is None else 1.0 - self.alpha

    def to_dict(self) -> dict:
        d = asdict(self)
        d["covariates"] = ",".join(self.covariates)
        d["significant"] = None if self.alpha is None else self.significant
        d["ci_level"] = self.ci_level
        return d


def _cluster_meat(scores: np.ndarray, labels) -> tuple[np.ndarray, int]:
    codes, _ = pd.factorize(pd.Series(labels), sort=True)
    if (codes < 0).any():
        raise ValueError("cluster labels must not be missing")
    g = int(codes.max()) + 1
    summed = np.zeros((g, scores.shape[1]))
    np.add.at(summed, codes, scores)
    return summed.T @ summed, g


def sandwich(
    bread: np.ndarray, scores: np.ndarray, clusters=None, leverage=None
) -> tuple[np.ndarray, str]:
    """Robust covariance ``B^-1 M B^-1`` from the bread and per-row score contributions.

    ``scores``: n x k matrix of each row's contribution to the estimating equation.
    ``clusters``: None (HC0, no factor; with ``leverage`` h, HC3: scores divided by
    ``1 - h``); one label per row (one-way CR1: scores summed within cluster, factor
    ``G/(G-1) (n-1)/(n-k)``); or an n x 2 array of labels (two-way CR1, Cameron-Gelbach-
    Miller: ``M = c_1 M_1 + c_2 M_2 - c_12 M_12`` with ``M_12`` clustered on the pairs of
    labels and each ``c`` the CR1 factor of its own number of clusters).
    """
    n, k = scores.shape
    binv = np.linalg.inv(bread)
    small = (n - 1) / (n - k)
    if clusters is None:
        if leverage is not None:
            scores = scores / (1.0 - np.asarray(leverage, dtype=float))[:, None]
            kind = "HC3"
        else:
            kind = "HC0"
        meat = scores.T @ scores
        return binv @ meat @ binv, kind
    if leverage is not None:
        raise ValueError("leverage (HC3) is for unclustered covariances only")
    lab = np.asarray(clusters, dtype=object)
    if lab.ndim == 1:
        meat, g = _cluster_meat(scores, lab)
        meat = meat * (g / (g - 1) * small if g > 1 else np.nan)
        return binv @ meat @ binv, "cluster"
    if lab.ndim != 2 or lab.shape[1] != 2 or lab.shape[0] != n:
        raise ValueError("clusters must be one label per row or an n x 2 array of labels")
    first = pd.factorize(pd.Series(lab[:, 0]), sort=True)[0]
    second = pd.factorize(pd.Series(lab[:, 1]), sort=True)[0]
    if (first < 0).any() or (second < 0).any():
        raise ValueError("cluster labels must not be missing")
    both = first.astype(np.int64) * (int(second.max()) + 1) + second
    meat = np.zeros((k, k))
    for labels, sign in ((first, 1.0), (second, 1.0), (both, -1.0)):
        m, g = _cluster_meat(scores, labels)
        meat += sign * m * (g / (g - 1) * small if g > 1 else np.nan)
    return binv @ meat @ binv, "twoway"


def _design(data: pd.DataFrame, treatment: str, covariates) -> tuple[np.ndarray, list[str]]:
    """Intercept, treatment and (optionally) treated-centred covariates with interactions."""
    t = data[treatment].astype(float).to_numpy()
    cols = [np.ones(len(data)), t]
    names = ["const", treatment]
    if covariates:
        cov = pd.get_dummies(data[list(covariates)], drop_first=True, dtype=float).astype(float)
        w = data["weights"].to_numpy(float)
        wt = w * t
        centre = (cov.to_numpy() * wt[:, None]).sum(0) / wt.sum()
        centred = cov.to_numpy() - centre
        keep = centred.std(0) > 0
        for j, name in enumerate(cov.columns):
            if keep[j]:
                cols += [centred[:, j], centred[:, j] * t]
                names += [str(name), f"{treatment}:{name}"]
    return np.column_stack(cols), names


def link_rows(m, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """MatchIt's ``get_matches()`` layout: one row per (matched set, unit).

    ``data`` defaults to ``m.data`` (it may be a subset of it: links to units not in
    ``data`` are dropped, e.g. people whose outcome is missing). Returns ``row`` (position
    in ``data``), ``subclass``, ``unit`` (the same for every row of a person), ``treated``
    and ``weight``: a treated unit's own weight, ``1 / k_s`` for each comparator of set
    ``s`` (``k_s`` counted over all the set's links, before any unit is dropped), so a
    comparator's weights sum to its ``match_data()`` weight up to one common factor.
    """
    data = m.data if data is None else data
    pairs = getattr(m, "pairs", None)
    if pairs is None or len(pairs) == 0:
        raise ValueError("se='twoway' and subgroups with replacement need the pairs table")
    if {"treated_id", "comparator_id"} <= set(pairs.columns):
        id_col = getattr(m, "id_col", "person_id")
        if id_col not in data:
            raise KeyError(f"matched data lacks the id column {id_col!r} the pairs refer to")
        keys = pd.Series(data[id_col].to_numpy())
        t_key, c_key = pairs["treated_id"], pairs["comparator_id"]
    elif {"treated", "control"} <= set(pairs.columns):
        keys = pd.Series(data.index.to_numpy())
        t_key, c_key = pairs["treated"], pairs["control"]
    else:
        raise KeyError("pairs need treated_id/comparator_id (or treated/control) columns")
    if keys.duplicated().any():
        raise ValueError("the ids the pairs refer to are not unique in the matched data")
    pos = pd.Series(np.arange(len(keys)), index=keys.to_numpy())
    sub = pairs["subclass"].to_numpy() if "subclass" in pairs else t_key.to_numpy()
    k = pd.Series(sub).map(pd.Series(sub).value_counts()).to_numpy(dtype=float)
    links = pd.DataFrame({"subclass": sub, "t": t_key.to_numpy(), "c": c_key.to_numpy(), "k": k})
    treated = links.drop_duplicates("subclass")
    w = data["weights"].to_numpy(float)
    rows = pd.concat(
        [
            pd.DataFrame(
                {"subclass": treated["subclass"], "key": treated["t"], "treated": True, "w": np.nan}
            ),
            pd.DataFrame(
                {
                    "subclass": links["subclass"],
                    "key": links["c"],
                    "treated": False,
                    "w": 1.0 / links["k"],
                }  # fmt: skip
            ),
        ],
        ignore_index=True,
    )
    rows["row"] = rows["key"].map(pos)
    rows = rows.dropna(subset=["row"])
    rows["row"] = rows["row"].astype(np.int64)
    is_treated = data[m.treatment].astype(bool).to_numpy()[rows["row"].to_numpy()]
    wrong = int((is_treated != rows["treated"].to_numpy(dtype=bool)).sum())
    if wrong:
        raise ValueError(
            f"the pairs table does not fit the matched data: {wrong} links point to a person "
            "of the other group; use the pairs of the same match (and the same row labels)"
        )
    rows["weight"] = np.where(rows["treated"], w[rows["row"]], rows["w"])
    rows = rows.sort_values(["subclass", "treated", "row"], ascending=[True, False, True])
    return pd.DataFrame(
        {
            "row": rows["row"].to_numpy(),
            "subclass": rows["subclass"].to_numpy(),
            "unit": rows["row"].to_numpy(),
            "treated": rows["treated"].to_numpy(dtype=bool),
            "weight": rows["weight"].to_numpy(float),
        }
    )


def _normal(estimate: float, se: float, z: float) -> tuple[float, float, float]:
    if not np.isfinite(se) or se <= 0:
        return float("nan"), float("nan"), float("nan")
    p = float(2 * normal.norm_sf(abs(estimate) / se))
    return estimate - z * se, estimate + z * se, p


def _leverage(X: np.ndarray, wx: np.ndarray, bread: np.ndarray) -> np.ndarray:
    """Hat values ``h_i = wx_i x_i' B^-1 x_i`` (``wx``: the working weights)."""
    return wx * np.einsum("ij,ji->i", X, np.linalg.solve(bread, X.T))


def wls(y, X, w, clusters=None, hc3: bool = False):
    """Weighted least squares with a robust sandwich; returns (beta, cov, se_type)."""
    Xw = X * w[:, None]
    bread = X.T @ Xw
    beta = np.linalg.solve(bread, Xw.T @ y)
    resid = y - X @ beta
    lev = _leverage(X, w, bread) if hc3 else None
    cov, kind = sandwich(bread, Xw * resid[:, None], clusters, leverage=lev)
    return beta, cov, kind


def poisson(y, X, w, clusters=None, tol: float = 1e-12, max_iter: int = 100, hc3: bool = False):
    """Weighted Poisson regression (log link) by Newton-Raphson, robust sandwich covariance."""
    mean = np.average(y, weights=w)
    beta = np.zeros(X.shape[1])
    beta[0] = math.log(mean) if mean > 0 else 0.0
    for _ in range(max_iter):
        mu = np.exp(X @ beta)
        score = X.T @ (w * (y - mu))
        info = X.T @ (X * (w * mu)[:, None])
        step = np.linalg.solve(info, score)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    mu = np.exp(X @ beta)
    info = X.T @ (X * (w * mu)[:, None])
    lev = _leverage(X, w * mu, info) if hc3 else None
    cov, kind = sandwich(info, X * (w * (y - mu))[:, None], clusters, leverage=lev)
    return beta, cov, kind


def _resolve_se(se: str, m, data: pd.DataFrame) -> str:
    if se not in SE_TYPES:
        raise ValueError(f"se must be one of {SE_TYPES}, not {se!r}")
    has_subclass = "subclass" in data and not data["subclass"].isna().any()
    has_pairs = getattr(m, "pairs", None) is not None and len(m.pairs) > 0
    if se == "auto":
        if m.replace:
            return "twoway" if has_pairs else "HC0"
        return "cluster" if has_subclass else "HC0"
    if se == "cluster":
        if m.replace:
            raise ValueError(
                "se='cluster' is not defined after matching with replacement (a comparator "
                "serves several matched sets); use se='twoway' with the pairs table"
            )
        if not has_subclass:
            raise ValueError("se='cluster' needs a complete subclass column")
    return se


def _sample(m, data: pd.DataFrame, se: str):
    """The rows the regression runs on and their cluster labels."""
    if se == "twoway":
        links = link_rows(m, data)
        positive = data["weights"].to_numpy(float) > 0
        missing = np.setdiff1d(np.flatnonzero(positive), links["row"].to_numpy())
        if len(missing):
            raise ValueError(
                f"the pairs table does not cover the matched data: {len(missing)} rows with "
                "positive weight are in no matched set; use the pairs of the same match"
            )
        rows = data.iloc[links["row"].to_numpy()].copy()
        rows["weights"] = links["weight"].to_numpy()
        clusters = np.column_stack([links["subclass"].to_numpy(), links["unit"].to_numpy()])
        return rows, clusters, int(pd.Series(links["subclass"]).nunique())
    if se == "cluster":
        labels = data["subclass"].to_numpy()
        return data, labels, int(pd.Series(labels).nunique())
    return data, None, None


def att(
    m,
    outcome: str,
    kind: str = "binary",
    covariates=None,
    *,
    alpha: float | None = None,
    se: str = "auto",
) -> Effect:
    """ATT of treatment on ``outcome`` in the matched sample ``m``.

    ``m``: any object with ``.data`` (matched rows with ``weights``, ``subclass``, the
    treatment column and ``outcome``), ``.treatment`` (column name) and ``.replace`` (and
    ``.pairs`` for ``se="twoway"``). ``kind``: ``binary`` (difference in proportions + risk
    ratio), ``count`` (difference in means + rate ratio) or ``continuous`` (difference in
    means). ``alpha``: the two-sided test level from the analysis plan (interval at
    ``1 - alpha``). ``se``: see the module docstring. Rows with a missing outcome or zero
    weight are left out. ``n_comparators`` counts people (not rows of the ``get_matches``
    layout); ``n_clusters`` is the number of matched sets for clustered types.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    alpha = resolve_alpha(alpha, "att")
    z = z_critical(alpha)
    covariates = list(covariates or [])
    data = m.data
    missing = [c for c in [m.treatment, "weights", outcome, *covariates] if c not in data]
    if missing:
        raise KeyError(f"matched data lacks column(s) {missing}")
    keep = data[outcome].notna() & (data["weights"] > 0)
    if not keep.all():
        data = data.loc[keep]
    t_person = data[m.treatment].astype(bool).to_numpy()
    if t_person.all() or not t_person.any():
        raise ValueError("att needs both treated and control rows with positive weight")
    se = _resolve_se(se, m, data)
    rows, clusters, n_clusters = _sample(m, data, se)
    t = rows[m.treatment].astype(bool).to_numpy()
    y = rows[outcome].astype(float).to_numpy()
    w = rows["weights"].to_numpy(float)
    X, _ = _design(rows, m.treatment, covariates)
    hc3 = se == "HC3"
    beta, cov, se_type = wls(y, X, w, clusters, hc3=hc3)
    est = float(beta[1])
    se_est = float(math.sqrt(cov[1, 1])) if cov[1, 1] > 0 else float("nan")
    lo, hi, p = _normal(est, se_est, z)
    effect = Effect(
        outcome=outcome,
        kind=kind,
        estimate=est,
        se=se_est,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        n_treated=int(t_person.sum()),
        n_comparators=int((~t_person).sum()),
        mean_treated=float(np.average(y[t], weights=w[t])),
        mean_comparator=float(np.average(y[~t], weights=w[~t])),
        se_type=se_type,
        n_clusters=n_clusters,
        covariates=covariates,
        alpha=alpha,
    )
    if kind in ("binary", "count"):
        if effect.mean_comparator > 0 and effect.mean_treated > 0:
            b, v, _ = poisson(y, X, w, clusters, hc3=hc3)
            lb = float(b[1])
            seb = float(math.sqrt(v[1, 1])) if v[1, 1] > 0 else float("nan")
            rlo, rhi, rp = _normal(lb, seb, z)
            effect.ratio = math.exp(lb)
            effect.ratio_ci_low, effect.ratio_ci_high = math.exp(rlo), math.exp(rhi)
            effect.ratio_p_value = rp
        else:
            effect.ratio = effect.ratio_ci_low = effect.ratio_ci_high = float("nan")
            effect.ratio_p_value = float("nan")
    return effect


def time_to_first(
    m,
    duration: str = "days_to_first",
    event: str = "event",
    *,
    alpha: float | None = None,
    se: str = "auto",
) -> Effect:
    """JDL's third measure: mean days to first proven re-offence among re-offenders.

    A difference of weighted means (with the matching weights) among the people who
    re-offended; conditioning on re-offending breaks the matched comparison, so it is
    descriptive (the Cox hazard ratio is the causal summary of time to re-offence).
    """
    alpha = resolve_alpha(alpha, "time_to_first")
    data = m.data[m.data[event] == 1]
    sub = MatchedSample(
        data=data,
        treatment=m.treatment,
        replace=m.replace,
        pairs=getattr(m, "pairs", None),
        id_col=getattr(m, "id_col", "person_id"),
    )
    return att(sub, duration, kind="continuous", alpha=alpha, se=se)
