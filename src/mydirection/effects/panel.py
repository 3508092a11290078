"""Event-study panel: proven offences per person and quarter around the index date.

Each matched person contributes one row per *relative quarter* ``k`` from
``-quarters_before`` to ``quarters_after - 1``: with ``d = offence_date - index_date`` in
days, quarter ``k`` holds ``k * 91.3125 < d <= (k + 1) * 91.3125``. Quarter 0 is days
1..91, as the proven re-offending window starts on day 1 (an offence on the index date
falls in quarter -1, with the pre-index offences); quarters 0..3 are days 1..365, exactly
the default follow-up window. The outcome is the number of offences (breaches excluded) in
the cleaned convictions (all proven by the extract's end) *committed* in that quarter.
Each row also carries the calendar quarter in which its relative quarter starts.

Models (linearmodels ``PanelOLS``, weighted by the matching weights, person effects and
calendar-quarter effects, SEs clustered by person or matched set):

- difference in differences: ``offences ~ post + treated x post``;
- event study: ``offences ~ sum_k D_k + sum_k treated x D_k`` for every ``k`` except the
  reference quarter (default ``-1``). The common event-time profile ``D_k`` is needed
  because everyone (treated and comparator) is observed around an index date; person and
  calendar effects determine event time up to a linear trend, so the common profile is also
  normalised at the first quarter. The treated x quarter coefficients (leads and lags) are
  what is reported; leads near zero support the parallel-trends assumption.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

QUARTER_DAYS = 365.25 / 4
Z95 = float(stats.norm.ppf(0.975))


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
    ``person_id``, ``offence_date`` and ``offence_group``. Offences in ``exclude_groups``
    (breaches) and rows without an offence date are ignored.
    Returns ``person_id``, ``treated``, ``weights``, ``subclass``, ``rel_quarter``,
    ``calendar_quarter`` (e.g. ``2018Q3``), ``post`` and ``offences``.
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

    conv = convictions.loc[
        convictions["offence_date"].notna()
        & ~convictions["offence_group"].isin(list(exclude_groups)),
        [person, "offence_date"],
    ]
    conv = conv.merge(base[[person, "index_date"]], on=person, how="inner")
    days = (conv["offence_date"] - conv["index_date"]).dt.total_seconds() / 86400
    k = (np.ceil(days / QUARTER_DAYS) - 1).astype(int)  # (k*Q, (k+1)*Q] days
    conv = conv.assign(rel_quarter=k)
    conv = conv[(k >= -quarters_before) & (k < quarters_after)]
    counts = conv.groupby([person, "rel_quarter"]).size().rename("offences").reset_index()
    panel = panel.merge(counts, on=[person, "rel_quarter"], how="left")
    panel["offences"] = panel["offences"].fillna(0).astype(int)
    panel[treatment] = panel[treatment].astype(bool)
    return panel.sort_values([person, "rel_quarter"], kind="stable").reset_index(drop=True)


def _fit(panel, exog: pd.DataFrame, cluster: str, person: str):
    from linearmodels.panel import PanelOLS

    idx = pd.MultiIndex.from_arrays([panel[person], panel["rel_quarter"]])
    y = pd.Series(panel["offences"].to_numpy(float), index=idx, name="offences")
    X = exog.set_index(idx)
    other = pd.DataFrame(
        {"calendar": pd.factorize(panel["calendar_quarter"], sort=True)[0]}, index=idx
    )
    w = pd.Series(panel["weights"].to_numpy(float), index=idx)
    model = PanelOLS(y, X, weights=w, entity_effects=True, other_effects=other)
    if cluster == "person":
        return model.fit(cov_type="clustered", cluster_entity=True)
    if cluster == "subclass":
        codes = pd.factorize(panel["subclass"], sort=True)[0]
        if (codes < 0).any():
            raise ValueError("clustering by matched set needs a subclass for every row")
        return model.fit(cov_type="clustered", clusters=pd.DataFrame({"set": codes}, index=idx))
    raise ValueError("cluster must be 'person' or 'subclass'")


def _tidy(res, names: dict[str, object]) -> pd.DataFrame:
    rows = []
    for term, k in names.items():
        est, se = float(res.params[term]), float(res.std_errors[term])
        rows.append(
            {
                "term": term,
                "rel_quarter": k,
                "estimate": est,
                "se": se,
                "ci_low": est - Z95 * se,
                "ci_high": est + Z95 * se,
                "p_value": float(2 * stats.norm.sf(abs(est / se))) if se > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def did(
    panel: pd.DataFrame, cluster: str = "person", person: str = "person_id", treatment="treated"
) -> pd.DataFrame:
    """Difference in differences (treated x post) with person and calendar-quarter effects.

    One row: ``term`` = ``treated_x_post``, estimate (offences per person per quarter), se,
    ci_low, ci_high, p_value, plus n_people, n_rows and n_clusters.
    """
    post = panel["post"].to_numpy(float)
    t = panel[treatment].to_numpy(float)
    exog = pd.DataFrame({"post": post, "treated_x_post": t * post})
    res = _fit(panel, exog, cluster, person)
    out = _tidy(res, {"treated_x_post": None})
    out["n_people"] = int(panel[person].nunique())
    out["n_rows"] = int(res.nobs)
    out["n_clusters"] = int(
        panel[person].nunique() if cluster == "person" else panel["subclass"].nunique()
    )
    return out


def event_study(
    panel: pd.DataFrame,
    reference: int = -1,
    cluster: str = "person",
    person: str = "person_id",
    treatment: str = "treated",
) -> pd.DataFrame:
    """Per-quarter leads and lags of treated vs comparison, relative to ``reference``.

    One row per relative quarter (the reference row has estimate 0 and no SE): ``term``,
    ``rel_quarter``, estimate, se, ci_low, ci_high, p_value, ``period`` (lead/reference/lag).
    ``attrs``: ``leads_joint_chi2``, ``leads_joint_df`` and ``leads_joint_p``, the Wald test
    that all leads are zero (with the clustered covariance).
    """
    ks = sorted(panel["rel_quarter"].unique())
    if reference not in ks:
        raise ValueError(f"reference quarter {reference} is outside the panel")
    t = panel[treatment].to_numpy(float)
    cols, names = {}, {}
    first = ks[0]
    for k in ks:
        if k == reference:
            continue
        d = (panel["rel_quarter"].to_numpy() == k).astype(float)
        if k != first:
            cols[f"q{k}"] = d
        cols[f"treated_q{k}"] = d * t
        names[f"treated_q{k}"] = k
    res = _fit(panel, pd.DataFrame(cols), cluster, person)
    out = _tidy(res, names)
    leads = [term for term, k in names.items() if k < 0]
    chi2 = p_joint = float("nan")
    if leads:
        b = res.params[leads].to_numpy()
        v = res.cov.loc[leads, leads].to_numpy()
        chi2 = float(b @ np.linalg.solve(v, b))
        p_joint = float(stats.chi2.sf(chi2, len(leads)))
    ref = pd.DataFrame(
        [{"term": f"treated_q{reference}", "rel_quarter": reference, "estimate": 0.0}]
    )
    out = pd.concat([out, ref], ignore_index=True).sort_values("rel_quarter", kind="stable")
    out["period"] = np.select(
        [out["rel_quarter"] == reference, out["rel_quarter"] < 0], ["reference", "lead"], "lag"
    )
    out = out.reset_index(drop=True)
    out.attrs.update({"leads_joint_chi2": chi2, "leads_joint_df": len(leads),
                      "leads_joint_p": p_joint})  # fmt: skip
    return out


def plot_event_study(es: pd.DataFrame, path, title: str, did_row: pd.Series | None = None) -> None:
    """Leads and lags with 95 % CIs; dashed zero line, dotted line before quarter 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
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
    if did_row is not None:
        title += (
            f"\nDifference in differences: {did_row['estimate']:.3f} "
            f"(95% CI {did_row['ci_low']:.3f} to {did_row['ci_high']:.3f})"
        )
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)
