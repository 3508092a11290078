"""Effect estimates on the matched sample: the three Justice Data Lab measures.

The average treatment effect on the treated (ATT) is the weighted difference in means from
a regression of the outcome on treatment in the matched data, weighted by the matching
weights (MatchIt's ``weights``). Standard errors follow MatchIt's documentation
("Estimating Effects After Matching"):

- matching *without* replacement: cluster-robust by matched set (``subclass``), CR1
  (the sandwich ``B^-1 M B^-1`` with the small-sample factor ``G/(G-1) * (n-1)/(n-k)``,
  as R's ``sandwich::vcovCL`` and statsmodels' ``cov_type="cluster"``);
- matching *with* replacement (or no ``subclass``): heteroskedasticity-robust HC0.

Confidence intervals and p-values use the normal distribution (as ``marginaleffects``).

Covariate adjustment ("doubly robust") adds the covariates, centred at their weighted
treated means, and their interactions with treatment; the treatment coefficient is then the
g-computation ATT (the average over the treated of the predicted difference). Its standard
error uses the same sandwich and treats the centring means as fixed.

Binary outcomes also get the risk ratio and count outcomes the rate ratio, both from a
weighted Poisson regression (log link) with the same robust sandwich ("modified Poisson",
Zou 2004). Without covariates the ratio is exactly ``mean_treated / mean_control``.

:func:`headline_table` lays the measures out as a JDL table and :func:`typical_100_sentence`
builds the "for every 100 typical people" reading from the numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

KINDS = ("binary", "count", "continuous")
Z95 = float(stats.norm.ppf(0.975))


@dataclass
class MatchedSample:
    """The minimal match result :func:`att` needs (``mydirection.matching.MatchResult`` fits).

    ``data``: matched rows with ``weights``, ``subclass``, the treatment column and outcomes.
    """

    data: pd.DataFrame
    treatment: str = "treated"
    replace: bool = False


def matched_sample(data: pd.DataFrame, treatment: str = "treated", replace: bool = False):
    """Wrap a matched DataFrame (e.g. ``matched.parquet`` merged with outcomes) for :func:`att`."""
    return MatchedSample(data=data, treatment=treatment, replace=replace)


@dataclass
class Effect:
    """An ATT estimate with its uncertainty and the group summaries a JDL table shows."""

    outcome: str
    kind: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_treated: int
    n_control: int
    mean_treated: float
    mean_control: float
    se_type: str
    n_clusters: int | None = None
    covariates: list[str] = field(default_factory=list)
    ratio: float | None = None
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    ratio_p_value: float | None = None

    @property
    def significant(self) -> bool:
        """True when the 95 % confidence interval excludes zero."""
        return bool(self.p_value < 0.05)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["covariates"] = ",".join(self.covariates)
        d["significant"] = self.significant
        return d


# --------------------------------------------------------------------------- sandwich


def sandwich(bread: np.ndarray, scores: np.ndarray, clusters=None) -> tuple[np.ndarray, str]:
    """Robust covariance ``B^-1 M B^-1`` from the bread and per-row score contributions.

    ``scores``: n x k matrix of each row's contribution to the estimating equation. With
    ``clusters``, the scores are summed within cluster and the CR1 factor
    ``G/(G-1) * (n-1)/(n-k)`` applied; otherwise HC0 (no factor).
    """
    n, k = scores.shape
    binv = np.linalg.inv(bread)
    if clusters is None:
        meat = scores.T @ scores
        kind = "HC0"
    else:
        codes, _ = pd.factorize(pd.Series(clusters), sort=True)
        if (codes < 0).any():
            raise ValueError("cluster labels must not be missing")
        g = int(codes.max()) + 1
        summed = np.zeros((g, k))
        np.add.at(summed, codes, scores)
        meat = summed.T @ summed
        meat *= g / (g - 1) * (n - 1) / (n - k) if g > 1 else np.nan
        kind = "cluster"
    return binv @ meat @ binv, kind


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


def _clusters(m, data: pd.DataFrame):
    if m.replace or "subclass" not in data or data["subclass"].isna().any():
        return None
    return data["subclass"].to_numpy()


def _normal(estimate: float, se: float) -> tuple[float, float, float]:
    if not np.isfinite(se) or se <= 0:
        return float("nan"), float("nan"), float("nan")
    p = float(2 * stats.norm.sf(abs(estimate) / se))
    return estimate - Z95 * se, estimate + Z95 * se, p


def wls(y, X, w, clusters=None):
    """Weighted least squares with a robust sandwich; returns (beta, cov, se_type)."""
    Xw = X * w[:, None]
    bread = X.T @ Xw
    beta = np.linalg.solve(bread, Xw.T @ y)
    resid = y - X @ beta
    cov, kind = sandwich(bread, Xw * resid[:, None], clusters)
    return beta, cov, kind


def poisson(y, X, w, clusters=None, tol: float = 1e-12, max_iter: int = 100):
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
    cov, kind = sandwich(info, X * (w * (y - mu))[:, None], clusters)
    return beta, cov, kind


def att(m, outcome: str, kind: str = "binary", covariates=None) -> Effect:
    """ATT of treatment on ``outcome`` in the matched sample ``m``.

    ``m``: any object with ``.data`` (matched rows with ``weights``, ``subclass``, the
    treatment column and ``outcome``), ``.treatment`` (column name) and ``.replace``.
    ``kind``: ``binary`` (difference in proportions + risk ratio), ``count`` (difference in
    means + rate ratio) or ``continuous`` (difference in means).
    Rows with a missing outcome or zero weight are left out.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    covariates = list(covariates or [])
    data = m.data
    missing = [c for c in [m.treatment, "weights", outcome, *covariates] if c not in data]
    if missing:
        raise KeyError(f"matched data lacks column(s) {missing}")
    keep = data[outcome].notna() & (data["weights"] > 0)
    data = data.loc[keep]
    t = data[m.treatment].astype(bool).to_numpy()
    if t.all() or not t.any():
        raise ValueError("att needs both treated and control rows with positive weight")
    y = data[outcome].astype(float).to_numpy()
    w = data["weights"].to_numpy(float)
    clusters = _clusters(m, data)
    X, _ = _design(data, m.treatment, covariates)
    beta, cov, se_type = wls(y, X, w, clusters)
    est, se = float(beta[1]), float(math.sqrt(cov[1, 1]))
    lo, hi, p = _normal(est, se)
    effect = Effect(
        outcome=outcome,
        kind=kind,
        estimate=est,
        se=se,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        n_treated=int(t.sum()),
        n_control=int((~t).sum()),
        mean_treated=float(np.average(y[t], weights=w[t])),
        mean_control=float(np.average(y[~t], weights=w[~t])),
        se_type=se_type,
        n_clusters=None if clusters is None else int(pd.Series(clusters).nunique()),
        covariates=covariates,
    )
    if kind in ("binary", "count"):
        if effect.mean_control > 0 and effect.mean_treated > 0:
            b, v, _ = poisson(y, X, w, clusters)
            lb, seb = float(b[1]), float(math.sqrt(v[1, 1]))
            rlo, rhi, rp = _normal(lb, seb)
            effect.ratio = math.exp(lb)
            effect.ratio_ci_low, effect.ratio_ci_high = math.exp(rlo), math.exp(rhi)
            effect.ratio_p_value = rp
        else:
            effect.ratio = effect.ratio_ci_low = effect.ratio_ci_high = float("nan")
            effect.ratio_p_value = float("nan")
    return effect


# --------------------------------------------------------------------------- JDL reading


def people_needed(effect: Effect, z: float = Z95) -> float:
    """Treated people needed for the observed difference to reach significance at 5 %.

    Assumes the standard error scales as ``1/sqrt(n)`` with the comparison group growing in
    proportion (same matching ratio and outcome variance):
    ``n_needed = n_treated * (z * se / |estimate|)^2``, rounded up. Infinite when the
    estimate is exactly zero. Below ``n_treated`` when the result is already significant.
    """
    if effect.estimate == 0 or not np.isfinite(effect.se):
        return float("inf")
    return float(math.ceil(effect.n_treated * (z * effect.se / abs(effect.estimate)) ** 2))


def typical_100_sentence(effect: Effect, period: str = "a one-year period") -> str:
    """The JDL "for every 100 typical people" reading of a binary or count effect.

    The interval is the 95 % CI of the difference scaled to 100 treated people (a binary
    difference in proportions x 100 = people; a count difference x 100 = re-offences).
    When the interval spans zero, the number of treated people needed to detect the
    observed difference (:func:`people_needed`) is stated.
    """
    lo, hi = 100 * effect.ci_low, 100 * effect.ci_high
    if effect.kind == "binary":
        noun = "people committed a proven re-offence"
    else:
        noun = "proven re-offences were committed"

    def bound(x):
        return f"{abs(x):.0f} {'fewer' if x < 0 else 'more'}"

    head = "For every 100 typical people in the treatment group, the equivalent of between "
    if lo >= 0 or hi <= 0:
        # significant (or on the boundary): both bounds in the same direction
        direction = "fewer" if hi <= 0 else "more"
        a, b = sorted([abs(lo), abs(hi)])
        text = (
            f"{head}{a:.0f} and {b:.0f} {direction} {noun} during {period} than would "
            "have happened without the programme. This is a statistically significant result."
        )
        return text
    text = (
        f"{head}{bound(lo)} and {bound(hi)} {noun} during {period} than would have "
        "happened without the programme. The interval includes zero, so this analysis does "
        "not show a statistically significant effect; more people would be needed"
    )
    need = people_needed(effect)
    if math.isfinite(need):
        text += (
            f": about {need:,.0f} people in the treatment group (now {effect.n_treated:,}) "
            "for a difference of this size to be statistically significant, assuming the "
            "standard error falls with the square root of the sample size."
        )
    else:
        text += "; the observed difference is zero, so no sample size would make it significant."
    return text


MEASURES = {
    "binary": "Proven re-offending rate",
    "count": "Frequency (proven re-offences per person)",
    "continuous": "Mean days to first proven re-offence (re-offenders only)",
}


def headline_table(effects: dict[str, Effect]) -> pd.DataFrame:
    """JDL headline layout: one row per measure.

    ``effects`` maps a measure name (``rate``, ``frequency``, ``time_to_first``) to its
    :class:`Effect`. Columns: measure, label, n_treated, n_comparison, treated, comparison,
    difference, ci_low, ci_high, significant, p_value, ratio (+ CI).
    """
    rows = []
    for measure, e in effects.items():
        rows.append(
            {
                "measure": measure,
                "label": MEASURES.get(e.kind, e.outcome),
                "outcome": e.outcome,
                "kind": e.kind,
                "n_treated": e.n_treated,
                "n_comparison": e.n_control,
                "treated": e.mean_treated,
                "comparison": e.mean_control,
                "difference": e.estimate,
                "se": e.se,
                "ci_low": e.ci_low,
                "ci_high": e.ci_high,
                "significant": e.significant,
                "p_value": e.p_value,
                "ratio": np.nan if e.ratio is None else e.ratio,
                "ratio_ci_low": np.nan if e.ratio_ci_low is None else e.ratio_ci_low,
                "ratio_ci_high": np.nan if e.ratio_ci_high is None else e.ratio_ci_high,
                "se_type": e.se_type,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- pipeline helpers

OUTCOME_COLUMNS = ("reoffended", "n_reoffences", "days_to_first", "event")


def merge_outcomes(
    matched: pd.DataFrame,
    outcomes: pd.DataFrame,
    matched_path: str = "results/matching/matched.parquet",
    outcomes_path: str = "results/outcomes/outcomes.parquet",
) -> pd.DataFrame:
    """The matched rows with their outcomes (one row per matched person).

    Raises :class:`~mydirection.runner.UserError` when a column is missing or a matched
    person has no outcome row. People whose follow-up is incomplete
    (``followup_complete`` False) keep their row, with outcomes set to missing so that
    :func:`att` leaves them out; the count is in ``attrs["n_incomplete"]``.
    """
    from mydirection.errors import UserError

    need = {
        matched_path: (matched, ["person_id", "treated", "weights", "subclass", "index_date"]),
        outcomes_path: (outcomes, ["person_id", *OUTCOME_COLUMNS]),
    }
    for path, (df, cols) in need.items():
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise UserError(
                f"{path}, column {missing[0]}: missing ({len(df)} rows); rerun the stage "
                "that writes this file"
            )
    dup = outcomes["person_id"].duplicated().to_numpy()
    if dup.any():
        rows = ", ".join(str(i) for i in np.flatnonzero(dup)[:5])
        raise UserError(
            f"{outcomes_path}, column person_id: {int(dup.sum())} duplicated rows (e.g. rows "
            f"{rows}); rerun the outcomes stage"
        )
    keep = ["person_id", *OUTCOME_COLUMNS]
    if "followup_complete" in outcomes:
        keep.append("followup_complete")
    out = matched.drop(columns=[c for c in keep[1:] if c in matched.columns]).merge(
        outcomes[keep], on="person_id", how="left", validate="one_to_one", indicator=True
    )
    lost = (out["_merge"] != "both").to_numpy()
    if lost.any():
        rows = ", ".join(str(i) for i in np.flatnonzero(lost)[:5])
        raise UserError(
            f"{matched_path}, column person_id: {int(lost.sum())} matched people have no row "
            f"in {outcomes_path} (e.g. rows {rows}); rerun the outcomes stage on the same cohort"
        )
    out = out.drop(columns="_merge")
    incomplete = np.zeros(len(out), dtype=bool)
    if "followup_complete" in out:
        incomplete = ~out["followup_complete"].fillna(False).astype(bool).to_numpy()
        out.loc[incomplete, list(OUTCOME_COLUMNS)] = np.nan
    out.attrs["n_incomplete"] = int(incomplete.sum())
    return out


def time_to_first(m, duration: str = "days_to_first", event: str = "event") -> Effect:
    """JDL's third measure: mean days to first proven re-offence among re-offenders.

    A difference of weighted means (with the matching weights) among the people who
    re-offended; conditioning on re-offending breaks the matched comparison, so it is
    descriptive (the Cox hazard ratio is the causal summary of time to re-offence).
    """
    data = m.data[m.data[event] == 1]
    sub = MatchedSample(data=data, treatment=m.treatment, replace=m.replace)
    return att(sub, duration, kind="continuous")


def ogrs3_band(score: pd.Series, cuts=(50, 75, 90), labels=("low", "medium", "high", "very_high")):
    """OGRS3 band from a 0-100 score: ``[0, 50)`` low, ``[50, 75)`` medium, ``[75, 90)``
    high, ``[90, 100]`` very high by default (the OGRS3 bands of the two-year score)."""
    if len(labels) != len(cuts) + 1:
        raise ValueError("ogrs3 band labels must be one more than the cut points")
    bins = [-np.inf, *cuts, np.inf]
    return pd.cut(score, bins=bins, labels=list(labels), right=False)  # ordered categorical


def subgroup_effects(
    m,
    outcome: str,
    variables,
    kind: str = "binary",
    min_treated: int = 30,
    min_control: int = 30,
) -> pd.DataFrame:
    """ATT within each level of each subgroup variable.

    Without replacement a matched set belongs to the subgroup of its treated member (the
    controls follow their treated person, so matched sets stay whole); with replacement
    (or without ``subclass``) every person belongs to their own level. A level is estimated
    only when it has at least ``min_treated`` treated and ``min_control`` comparison people
    (``shown``); smaller levels are listed with their n and no estimate.
    """
    data = m.data
    t = data[m.treatment].astype(bool)
    by_set = not m.replace and "subclass" in data and data["subclass"].notna().all()
    rows = []
    for var in variables:
        if var not in data:
            raise KeyError(f"subgroup variable {var!r} is not a column of the matched data")
        level = data[var]
        if isinstance(level.dtype, pd.CategoricalDtype):
            order = [str(c) for c in level.cat.categories]
            level = level.astype(object).where(level.notna(), None)
        else:
            order = sorted({str(v) for v in level.dropna()})
        if by_set:
            treated_level = data.loc[t].drop_duplicates("subclass").set_index("subclass")[var]
            level = data["subclass"].map(treated_level)
        level = level.map(lambda v: None if pd.isna(v) else str(v))
        present_levels = set(level.dropna())
        for value in [v for v in order if v in present_levels]:
            sub = data[level == value]
            present = sub[outcome].notna() & (sub["weights"] > 0)
            st = sub.loc[present, m.treatment].astype(bool)
            n_t, n_c = int(st.sum()), int((~st).sum())
            row = {
                "variable": var,
                "level": str(value),
                "n_treated": n_t,
                "n_control": n_c,
                "shown": n_t >= min_treated and n_c >= min_control,
            }
            if row["shown"]:
                e = att(MatchedSample(sub, m.treatment, m.replace), outcome, kind=kind)
                row.update(
                    mean_treated=e.mean_treated,
                    mean_control=e.mean_control,
                    estimate=e.estimate,
                    se=e.se,
                    ci_low=e.ci_low,
                    ci_high=e.ci_high,
                    p_value=e.p_value,
                )
            rows.append(row)
    cols = ["variable", "level", "n_treated", "n_control", "shown", "mean_treated",
            "mean_control", "estimate", "se", "ci_low", "ci_high", "p_value"]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=cols)


def plot_forest(subgroups: pd.DataFrame, overall: Effect | None, path, title: str) -> None:
    """Forest plot of subgroup ATTs (percentage points for a binary outcome)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = subgroups[subgroups["shown"]].reset_index(drop=True)
    scale = 100.0 if overall is None or overall.kind == "binary" else 1.0
    labels, est, lo, hi = [], [], [], []
    if overall is not None:
        labels.append(f"All matched (n = {overall.n_treated:,} / {overall.n_control:,})")
        est.append(overall.estimate * scale)
        lo.append(overall.ci_low * scale)
        hi.append(overall.ci_high * scale)
    for r in shown.itertuples():
        name = f"{r.variable}: {r.level}".replace("_", " ").capitalize().replace("Ogrs3", "OGRS3")
        labels.append(f"{name} (n = {r.n_treated:,} / {r.n_control:,})")
        est.append(r.estimate * scale)
        lo.append(r.ci_low * scale)
        hi.append(r.ci_high * scale)
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(labels), 2) + 1.5))
    y = np.arange(len(labels))[::-1]
    if labels:
        err = [np.subtract(est, lo), np.subtract(hi, est)]
        ax.errorbar(est, y, xerr=err, fmt="o", color="black", capsize=3)
        if overall is not None:
            ax.plot(est[0], y[0], "D", color="tab:blue", markersize=8)
    else:
        ax.text(0.5, 0.5, "No subgroup large enough to show", ha="center", transform=ax.transAxes)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, labels)
    unit = "percentage points" if scale == 100 else "difference in means"
    ax.set_xlabel(f"Treated minus comparison ({unit}), 95% CI\nn = treated / comparison")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)
