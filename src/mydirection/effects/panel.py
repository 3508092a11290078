"""Event-study panel: proven offences per person and quarter around the index date.

Each matched person contributes one row per *relative quarter* ``k`` from
``-quarters_before`` to ``quarters_after - 1``: with ``d = offence_date - index_date`` in
days, quarter ``k`` holds ``k * 91.3125 < d <= (k + 1) * 91.3125``. Quarter 0 is days
1..91, as the proven re-offending window starts on day 1 (an offence on the index date
falls in quarter -1, with the pre-index offences); quarters 0..3 are days 1..365, exactly
the default follow-up window. The outcome is the number of offences (breaches excluded) in
the cleaned convictions (all proven by the extract's end) *committed* in that quarter.
Each row also carries the calendar quarter in which its relative quarter starts.

Models (least squares weighted by the matching weights, :func:`fit`), all with person
effects, calendar-quarter effects and a *common event-time profile* ``D_k`` (one dummy per
relative quarter, shared by the treated and the comparators: everyone is observed around an
index date, and offending peaks around the index offence whatever the group):

- difference in differences (:func:`did`): ``offences ~ D_k + treated x post``;
- event study (:func:`event_study`): ``offences ~ D_k + sum_k treated x D_k`` for every
  ``k`` except the reference quarter (default ``-1``);
- with enrolment cohorts of different effects, the interaction-weighted estimator of Sun and
  Abraham (2021) in :mod:`mydirection.effects.panel_cohorts`.

Identification. The profile ``D_k`` is normalised at the reference quarter (person effects
absorb its level). When every person's relative quarters fall in consecutive calendar
quarters, event time is calendar time minus the index quarter, so person and calendar
effects determine the profile up to a linear trend (the age-period-cohort identity); the
first relative quarter is then normalised too (as ``fixest::sunab``'s second reference
period). Quarters of 90-92 days make some relative quarters start one calendar quarter
later, which identifies the trend; no second normalisation is then imposed, so the
estimates are exactly those of least squares on all the dummies. Which columns to drop is
decided by a QR decomposition of the person-demeaned design; a treated term that is not
identified (e.g. a cohort x quarter cell whose calendar quarter holds treated people only)
is an error, never a silent normalisation. The calendar-quarter effects enter as dummies after exact within-person
demeaning, so the fit has no iterative tolerance.

Standard errors are clustered by matched set (``subclass``, matching without replacement:
Abadie and Spiess 2022) or by person (matching with replacement, where a comparator belongs
to several sets); :func:`resolve_cluster` makes the choice and refuses an impossible one.
The small-sample factor is ``G/(G-1) * (n-1)/(n-K)`` with ``K`` the coefficients not
nested in the clusters (``fixest``'s default; person effects are nested). Intervals and
p-values use the normal distribution, as the headline ATT.

The leads are a weak check here: see :mod:`mydirection.effects.panel_leads`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mydirection import normal
from mydirection.errors import UserError

QUARTER_DAYS = 365.25 / 4
CLUSTERS = ("auto", "person", "subclass")
_TOL = 1e-9  # |R_jj| / column norm below this: the column is a combination of earlier ones


def offence_panel(
    matched: pd.DataFrame,
    convictions: pd.DataFrame,
    quarters_before: int = 8,
    quarters_after: int = 4,
    exclude_groups=("breach",),
    person: str = "person_id",
    treatment: str = "treated",
) -> pd.DataFrame:
    """Person x relative-quarter counts of proven offences for the matched sample.

    ``matched``: one row per matched person with ``person_id``, ``treated``, ``index_date``,
    ``weights`` and (optionally) ``subclass``. ``convictions``: the cleaned convictions with
    ``person_id``, ``offence_date`` and ``offence_group`` (and optionally
    ``disposal_date``). Offences in ``exclude_groups`` (breaches) and rows without an
    offence date are ignored.
    Returns ``person_id``, ``treated``, ``weights``, ``subclass``, ``rel_quarter``,
    ``calendar_quarter`` (e.g. ``2018Q3``), ``post`` and ``offences``; with
    ``disposal_date``, also ``offences_proven_before_index`` (those the pre-index history
    covariates of the matching can see: proven strictly before the index date).
    """
    cols = [person, treatment, "index_date", "weights"]
    base = matched[cols + (["subclass"] if "subclass" in matched else [])].copy()
    if "subclass" not in base:
        base["subclass"] = np.nan
    base = base.reset_index(drop=True)
    ks = np.arange(-quarters_before, quarters_after)
    panel = base.loc[base.index.repeat(len(ks))].reset_index(drop=True)
    panel["rel_quarter"] = np.tile(ks, len(base))
    start = panel["index_date"] + pd.to_timedelta(panel["rel_quarter"] * QUARTER_DAYS, unit="D")
    panel["calendar_quarter"] = start.dt.to_period("Q").astype(str)
    panel["post"] = (panel["rel_quarter"] >= 0).astype(int)

    proven = "disposal_date" in convictions
    conv = convictions.loc[
        convictions["offence_date"].notna()
        & ~convictions["offence_group"].isin(list(exclude_groups)),
        [person, "offence_date"] + (["disposal_date"] if proven else []),
    ]
    conv = conv.merge(base[[person, "index_date"]], on=person, how="inner")
    days = (conv["offence_date"] - conv["index_date"]).dt.total_seconds() / 86400
    k = (np.ceil(days / QUARTER_DAYS) - 1).astype(int)  # (k*Q, (k+1)*Q] days
    conv = conv.assign(rel_quarter=k, offences=1)
    if proven:
        conv["offences_proven_before_index"] = (conv["disposal_date"] < conv["index_date"]) * 1
    conv = conv[(k >= -quarters_before) & (k < quarters_after)]
    counted = ["offences"] + (["offences_proven_before_index"] if proven else [])
    counts = conv.groupby([person, "rel_quarter"])[counted].sum().reset_index()
    panel = panel.merge(counts, on=[person, "rel_quarter"], how="left")
    for col in counted:
        panel[col] = panel[col].fillna(0).astype(int)
    panel[treatment] = panel[treatment].astype(bool)
    return panel.sort_values([person, "rel_quarter"], kind="stable").reset_index(drop=True)


def resolve_cluster(cluster: str, replace: bool, subclass: pd.Series | None = None) -> str:
    """The cluster for the panel's standard errors: ``person`` or ``subclass``.

    ``auto``: the matched set when matching was without replacement (each person in one
    set), the person otherwise. ``subclass`` is refused (:class:`UserError`) after matching
    with replacement or when a matched person has no subclass.
    """
    if cluster not in CLUSTERS:
        raise UserError(
            f"config effects.panel.cluster: {cluster!r} is not one of {', '.join(CLUSTERS)}"
        )
    missing = 0 if subclass is None else int(pd.Series(subclass).isna().sum())
    sets_ok = not replace and subclass is not None and missing == 0
    if cluster == "auto":
        return "subclass" if sets_ok else "person"
    if cluster == "subclass" and not sets_ok:
        why = (
            "matching was with replacement (a comparator can be in several matched sets)"
            if replace
            else f"{missing} matched people have no subclass"
            if subclass is not None
            else "the matched sample has no subclass column"
        )
        raise UserError(
            f"config effects.panel.cluster: subclass is impossible because {why}; "
            "use cluster: person (or auto)"
        )
    return cluster


def positive(panel: pd.DataFrame) -> pd.DataFrame:
    """The rows with a positive matching weight (weight 0: discarded by the matching)."""
    keep = panel["weights"].to_numpy(float) > 0
    return panel if keep.all() else panel[keep].reset_index(drop=True)


def _codes(values) -> np.ndarray:
    return pd.factorize(pd.Series(values), sort=True)[0]


def _within(X: np.ndarray, person: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sqrt(w) * (X - weighted person means of X): the person effects partialled out."""
    sw = np.bincount(person, weights=w)
    means = np.column_stack([np.bincount(person, weights=w * x) for x in X.T]) / sw[:, None]
    return np.sqrt(w)[:, None] * (X - means[person])


def design(
    panel: pd.DataFrame,
    treated_terms: dict[str, np.ndarray],
    reference: int = -1,
    person: str = "person_id",
    treatment: str = "treated",
) -> tuple[pd.DataFrame, list[int]]:
    """Regressors besides the person effects: the treated terms, calendar-quarter dummies
    and the common event-time dummies ``q{k}`` (``k != reference``), without the
    calendar or event-time dummies that are combinations of the others.

    Returns the regressors and the relative quarters normalised besides the reference.
    Raises ``ValueError`` if a treated term is not identified.
    """
    ks = sorted(panel["rel_quarter"].unique())
    if reference not in ks:
        raise ValueError(f"reference quarter {reference} is outside the panel")
    t = panel[treatment].to_numpy(bool)
    w = panel["weights"].to_numpy(float)
    if not ((t & (w > 0)).any() and (~t & (w > 0)).any()):
        raise ValueError("the panel needs treated and comparison people with positive weights")
    cal = _codes(panel["calendar_quarter"])
    labels = np.sort(panel["calendar_quarter"].unique())
    k = panel["rel_quarter"].to_numpy()
    cols = {f"cal_{labels[c]}": (cal == c).astype(float) for c in range(1, len(labels))}
    cols.update({name: np.asarray(x, float) for name, x in treated_terms.items()})
    event = [q for q in reversed(ks) if q != reference]  # the first quarter goes last
    cols.update({f"q{q}": (k == q).astype(float) for q in event})
    names = list(cols)
    X = np.column_stack(list(cols.values()))
    Z = _within(X, _codes(panel[person]), w)
    scale = np.sqrt((w[:, None] * X**2).sum(0))
    r = np.abs(np.diag(np.linalg.qr(Z, mode="r")))
    dependent = r <= _TOL * np.where(scale > 0, scale, 1.0)
    flags = dict(zip(names, dependent, strict=True))
    bad = [n for n in treated_terms if flags[n]]
    if bad:
        raise ValueError(
            "not identified with person, calendar-quarter and event-time effects: "
            + ", ".join(bad)
            + " (e.g. a calendar quarter that holds treated people only)"
        )
    keep = [n for n in names if not flags[n]]
    dropped = [q for q in event if flags[f"q{q}"]]
    return pd.DataFrame({n: cols[n] for n in keep}), dropped


@dataclass(frozen=True)
class PanelFit:
    """A fitted panel regression: coefficients, their clustered covariance, rows, clusters."""

    params: pd.Series
    cov: pd.DataFrame
    nobs: int
    n_clusters: int

    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index)


def _nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Whether each group of ``inner`` lies inside one group of ``outer`` (integer codes)."""
    pairs = inner.astype(np.int64) * (int(outer.max()) + 1) + outer
    return len(np.unique(pairs)) == len(np.unique(inner))


def fit(
    panel: pd.DataFrame, exog: pd.DataFrame, cluster: str, person: str = "person_id"
) -> PanelFit:
    """Weighted least squares of ``offences`` on ``exog`` with person effects.

    The person effects are removed exactly (weighted within-person demeaning); the
    covariance is the cluster sandwich times ``G/(G-1) * (n-1)/(n-K)``, ``K`` the regressors
    plus the person effects when these are not nested in the clusters. This is linearmodels'
    ``PanelOLS(..., entity_effects=True, weights=w).fit(cov_type="clustered",
    debiased=True, group_debias=True)``, which the tests compare it with.
    """
    people = _codes(panel[person])
    if cluster == "person":
        groups = people
    elif cluster == "subclass":
        if panel["subclass"].isna().any():
            raise ValueError("clustering by matched set needs a subclass for every row")
        groups = _codes(panel["subclass"])
    else:
        raise ValueError("cluster must be 'person' or 'subclass'")
    X = exog.to_numpy(float)
    yx = np.column_stack([panel["offences"].to_numpy(float), X])
    Z = _within(yx, people, panel["weights"].to_numpy(float))
    zy, zx = Z[:, 0], Z[:, 1:]
    bread = np.linalg.inv(zx.T @ zx)
    b = bread @ (zx.T @ zy)
    scores = zx * (zy - zx @ b)[:, None]
    n_clusters = int(groups.max() + 1)
    by_cluster = np.column_stack(
        [np.bincount(groups, weights=s, minlength=n_clusters) for s in scores.T]
    )
    n, k = X.shape
    if not _nested(people, groups):
        k += int(people.max() + 1)
    factor = n_clusters / (n_clusters - 1) * (n - 1) / (n - k)
    cov = factor * bread @ (by_cluster.T @ by_cluster) @ bread
    cov = (cov + cov.T) / 2  # exactly symmetric, whatever the rounding
    names = list(exog.columns)
    return PanelFit(
        pd.Series(b, index=names),
        pd.DataFrame(cov, index=names, columns=names),
        n,
        n_clusters,
    )


def tidy(res, terms: dict[str, object], level: float) -> pd.DataFrame:
    """Estimate, SE, normal-theory interval at ``level`` and two-sided p-value per term."""
    z = float(normal.norm_ppf(0.5 + level / 2))
    rows = []
    for term, k in terms.items():
        est, se = float(res.params[term]), float(res.std_errors[term])
        rows.append(_row(term, k, est, se, z))
    return pd.DataFrame(rows)


def _row(term, k, est, se, z) -> dict:
    p = float(2 * normal.norm_sf(abs(est / se))) if se > 0 else np.nan
    return {"term": term, "rel_quarter": k, "estimate": est, "se": se,
            "ci_low": est - z * se, "ci_high": est + z * se, "p_value": p}  # fmt: skip


def wald(b: np.ndarray, v: np.ndarray) -> tuple[float, int, float]:
    """Chi-squared Wald statistic that ``b = 0`` given its covariance ``v``, df, p-value."""
    if len(b) == 0:
        return float("nan"), 0, float("nan")
    from scipy import stats  # here, not at import: most jobs never need scipy.stats

    chi2 = float(b @ np.linalg.solve(v, b))
    return chi2, len(b), float(stats.chi2.sf(chi2, len(b)))


def did(
    panel: pd.DataFrame,
    cluster: str = "person",
    person: str = "person_id",
    treatment="treated",
    *,
    level: float,
) -> pd.DataFrame:
    """Difference in differences: treated x post with person, calendar-quarter and common
    event-time effects (every pre-index quarter is the baseline).

    One row: ``term`` = ``treated_x_post``, estimate (offences per person per quarter), se,
    ci_low, ci_high, p_value, plus n_people, n_rows, n_clusters and
    ``event_time_normalised``: the relative quarters whose common effect is set to zero,
    comma-separated (the last pre-index quarter, and the first when event time is collinear
    with person and calendar effects; see the module docstring). Zero-weight rows are left
    out (people the matching discarded).
    """
    panel = positive(panel)
    k = panel["rel_quarter"].to_numpy()
    if not ((k < 0).any() and (k >= 0).any()):
        raise ValueError("the panel needs quarters before and after the index date")
    ref = int(k[k < 0].max())  # normalising any one quarter gives the same estimate
    t_post = panel[treatment].to_numpy(float) * (k >= 0)
    exog, dropped = design(panel, {"treated_x_post": t_post}, ref, person, treatment)
    res = fit(panel, exog, cluster, person)
    out = tidy(res, {"treated_x_post": None}, level)
    out["n_people"] = int(panel[person].nunique())
    out["n_rows"] = int(res.nobs)
    out["n_clusters"] = res.n_clusters
    out["event_time_normalised"] = ",".join(str(q) for q in [ref, *dropped])
    return out


def event_study(
    panel: pd.DataFrame,
    reference: int = -1,
    cluster: str = "person",
    person: str = "person_id",
    treatment: str = "treated",
    *,
    level: float,
) -> pd.DataFrame:
    """Per-quarter leads and lags of treated vs comparison, relative to ``reference``.

    One row per relative quarter (the reference row has estimate 0 and no SE): ``term``,
    ``rel_quarter``, estimate, se, ci_low, ci_high, p_value, ``period`` (lead/reference/lag).
    ``attrs``: ``leads_joint_chi2``, ``leads_joint_df`` and ``leads_joint_p``, the Wald test
    that all leads are zero (with the clustered covariance), and ``event_time_normalised``.
    """
    panel = positive(panel)
    ks = sorted(panel["rel_quarter"].unique())
    if reference not in ks:
        raise ValueError(f"reference quarter {reference} is outside the panel")
    t = panel[treatment].to_numpy(float)
    k = panel["rel_quarter"].to_numpy()
    terms = {f"treated_q{q}": q for q in ks if q != reference}
    x = {name: t * (k == q) for name, q in terms.items()}
    exog, dropped = design(panel, x, reference, person, treatment)
    res = fit(panel, exog, cluster, person)
    leads = [n for n, q in terms.items() if q < 0]
    b, v = res.params[leads].to_numpy(), res.cov.loc[leads, leads].to_numpy()
    return event_table(tidy(res, terms, level), reference, b, v, [reference, *dropped])


def event_table(out, reference, lead_b, lead_v, normalised) -> pd.DataFrame:
    """Add the reference row, the period labels and the joint leads test (``attrs``)."""
    chi2, df, p = wald(lead_b, lead_v)
    ref = pd.DataFrame(
        [{"term": f"treated_q{reference}", "rel_quarter": reference, "estimate": 0.0}]
    )
    out = pd.concat([out, ref], ignore_index=True).sort_values("rel_quarter", kind="stable")
    out["period"] = np.select(
        [out["rel_quarter"] == reference, out["rel_quarter"] < 0], ["reference", "lead"], "lag"
    )
    out = out.reset_index(drop=True)
    out.attrs.update({"leads_joint_chi2": chi2, "leads_joint_df": df, "leads_joint_p": p,
                      "event_time_normalised": ",".join(str(q) for q in normalised)})  # fmt: skip
    return out


def plot_event_study(
    es: pd.DataFrame,
    path,
    title: str,
    *,
    level: float,
    window_leads=(),
) -> None:
    """Leads and lags with their ``level`` CIs; dashed zero line, dotted line before 0.

    ``window_leads``: the leads balanced by the matching itself (see
    :func:`mydirection.effects.panel_leads.lead_diagnostics`), shaded and labelled.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    if len(window_leads):
        ax.axvspan(min(window_leads) - 0.5, max(window_leads) + 0.5, color="0.92", zorder=0)
        ax.text(
            (min(window_leads) + max(window_leads)) / 2, 0.98, "balanced by the matching",
            transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8,
            color="0.35",
        )  # fmt: skip
    est = es[es["period"] != "reference"]
    ax.errorbar(
        est["rel_quarter"],
        est["estimate"],
        yerr=[est["estimate"] - est["ci_low"], est["ci_high"] - est["estimate"]],
        fmt="o",
        color="black",
        capsize=3,
    )
    ref = es[es["period"] == "reference"]
    ax.plot(ref["rel_quarter"], ref["estimate"], "o", mfc="white", color="black")
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.axvline(-0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(sorted(es["rel_quarter"].unique()))
    ax.set_xlabel("Quarter relative to the index date (reference: open circle)")
    ax.set_ylabel("Treated minus comparison\n(offences per person per quarter)")
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)
