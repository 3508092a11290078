"""Effects within subgroups (sex, sentence type, OGRS3 band, ...), their multiplicity and
heterogeneity, within-subgroup balance, and the forest plot.

Who belongs to a level
----------------------
A matched set belongs to the level of its **treated** person: its comparators follow their
treated partner whatever their own value, so matched sets are never split and the
comparison within a level is still the matched comparison.

- Without replacement: each comparator is in one set, hence in one level, with its weight.
- With replacement: a comparator can serve several sets (``pairs``). It is counted in the
  level of each treated partner, with its weight *share* in that level: ``1 / k_s`` for each
  set ``s`` of the level it serves (``k_s`` = comparators in set ``s``), as in MatchIt's
  ``get_matches()`` layout. A comparator serving partners in two levels is counted in both
  (``n_comparators`` counts distinct people per level, so the levels' counts can add up to more
  than the matched comparators). The pairs table is required.
- Without matched sets (e.g. weighting: no ``subclass``): every person in their own level.

Multiplicity: ``p_holm`` is Holm's step-down adjustment over all levels shown (every
variable together). Heterogeneity: :func:`subgroup_heterogeneity` tests, per variable,
that the treatment effect is the same at every level shown -- a joint Wald test on a fully
interacted regression (a separate intercept and treatment effect per level) with the same
robust sandwich as the ATT, chi-squared with (levels - 1) degrees of freedom.

Within-level balance: ``max_abs_smd`` is the largest |SMD| of the balance covariates among
the people the level's estimate uses (outcome present), from
:func:`mydirection.matching.balance_table` on that level's rows: the denominator is the SD
of the level's *treated* people (cobalt's ATT convention, fixed within the level; binary
covariates ``sqrt(p (1 - p))``; the pooled SD when the treated SD is 0), the means are
weighted with the level's weights (the weight shares above).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.effects.att import (
    Effect,
    MatchedSample,
    _resolve_se,
    att,
    link_rows,
    resolve_alpha,
    wls,
)


def ogrs3_band(score: pd.Series, cuts=(50, 75, 90), labels=("low", "medium", "high", "very_high")):
    """OGRS3 band from a 0-100 score: ``[0, 50)`` low, ``[50, 75)`` medium, ``[75, 90)``
    high, ``[90, 100]`` very high by default (the OGRS3 bands of the two-year score)."""
    if len(labels) != len(cuts) + 1:
        raise ValueError("ogrs3 band labels must be one more than the cut points")
    bins = [-np.inf, *cuts, np.inf]
    return pd.cut(score, bins=bins, labels=list(labels), right=False)  # ordered categorical


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are left out and stay NaN).

    Sorted ascending ``p_(1) <= ... <= p_(m)``: ``adj_(i) = max_{j <= i} min(1, (m - j + 1)
    p_(j))`` (Holm 1979), as ``statsmodels.stats.multitest.multipletests(method="holm")``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adj)
    return out


def _layout(m, data: pd.DataFrame) -> pd.DataFrame:
    """One row per (matched set, person): row (position in data), subclass, unit, treated,
    weight. See the module docstring for who is where."""
    t = data[m.treatment].astype(bool).to_numpy()
    weighting = "subclass" not in data or data["subclass"].isna().all()
    if m.replace and not weighting:
        if getattr(m, "pairs", None) is None or len(m.pairs) == 0:
            raise ValueError(
                "subgroups after matching with replacement need the pairs table (comparators "
                "are assigned to the level of each treated partner); pass pairs="
            )
        return link_rows(m, data)
    n = len(data)
    has_sets = "subclass" in data and data["subclass"].notna().all()
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "subclass": data["subclass"].to_numpy() if has_sets else np.full(n, np.nan),
            "unit": np.arange(n),
            "treated": t,
            "weight": data["weights"].to_numpy(float),
        }
    )


def _levels(data: pd.DataFrame, layout: pd.DataFrame, var: str) -> tuple[list[str], pd.Series]:
    """The level order of ``var`` and each layout row's level (its treated partner's)."""
    if var not in data:
        raise KeyError(f"subgroup variable {var!r} is not a column of the matched data")
    value = data[var]
    if isinstance(value.dtype, pd.CategoricalDtype):
        order = [str(c) for c in value.cat.categories]
        value = value.astype(object).where(value.notna(), None)
    else:
        order = sorted({str(v) for v in value.dropna()})
    own = pd.Series(
        [None if pd.isna(v) else str(v) for v in value.to_numpy()], dtype=object
    ).to_numpy()[layout["row"].to_numpy()]
    level = pd.Series(own, index=layout.index, dtype=object)
    if layout["subclass"].notna().all():
        tr = layout[layout["treated"]]
        of_set = pd.Series(level[tr.index].to_numpy(), index=tr["subclass"].to_numpy())
        of_set = of_set[~of_set.index.duplicated()]
        level = pd.Series(layout["subclass"].map(of_set).to_numpy(), index=layout.index)
    present = set(level.dropna())
    return [v for v in order if v in present], level


def _level_sample(m, data: pd.DataFrame, rows: pd.DataFrame) -> MatchedSample:
    """The matched sample of one level: each person once, with their weight share."""
    share = rows.groupby("row", sort=True)["weight"].sum()
    sub = data.iloc[share.index.to_numpy()].copy()
    sub["weights"] = share.to_numpy()
    pairs = getattr(m, "pairs", None)
    if pairs is not None and len(pairs) and "subclass" in pairs:
        pairs = pairs[pairs["subclass"].isin(set(rows["subclass"].dropna()))]
    return MatchedSample(sub, m.treatment, m.replace, pairs, getattr(m, "id_col", "person_id"))


def _balance(sub: pd.DataFrame, treatment: str, outcome: str, covariates, categorical):
    from mydirection.matching import balance_table

    keep = sub[outcome].notna() & (sub["weights"] > 0)
    s = sub.loc[keep].reset_index(drop=True)
    bal = balance_table(s, treatment, covariates, s["weights"], categorical=categorical)
    a = bal["smd_after"].abs()
    if a.isna().all():
        return np.nan, None
    return float(a.max()), str(bal.loc[a.fillna(-1).idxmax(), "covariate"])


def subgroup_effects(
    m,
    outcome: str,
    variables,
    kind: str = "binary",
    min_treated: int = 30,
    min_comparators: int = 30,
    *,
    alpha: float | None = None,
    se: str = "auto",
    balance_covariates=None,
    categorical=None,
) -> pd.DataFrame:
    """ATT within each level of each subgroup variable.

    Levels and comparators as in the module docstring. A level is estimated only when it
    has at least ``min_treated`` treated and ``min_comparators`` comparison people with the
    outcome (``shown``); smaller levels are listed with their n and no estimate. ``alpha``:
    the plan's two-sided level (each level's CI is at ``1 - alpha``); ``se`` as in
    :func:`~mydirection.effects.att` (``"auto"``: pair-clustered without replacement,
    two-way with replacement). ``p_holm``: Holm-adjusted over all rows shown. With
    ``balance_covariates`` (the matching covariates; ``categorical`` as for
    ``balance_table``), ``max_abs_smd`` and ``worst_covariate`` give the within-level
    balance.
    """
    alpha = resolve_alpha(alpha, "subgroup_effects")
    data = m.data
    layout = _layout(m, data)
    rows = []
    for var in variables:
        order, level = _levels(data, layout, var)
        for value in order:
            sm = _level_sample(m, data, layout[level == value])
            sub = sm.data
            present = sub[outcome].notna() & (sub["weights"] > 0)
            st = sub.loc[present, m.treatment].astype(bool)
            n_t, n_c = int(st.sum()), int((~st).sum())
            row = {
                "variable": var,
                "level": str(value),
                "n_treated": n_t,
                "n_comparators": n_c,
                "shown": n_t >= min_treated and n_c >= min_comparators,
            }
            if row["shown"]:
                e = att(sm, outcome, kind=kind, alpha=alpha, se=se)
                row.update(
                    mean_treated=e.mean_treated,
                    mean_comparator=e.mean_comparator,
                    estimate=e.estimate,
                    se=e.se,
                    ci_low=e.ci_low,
                    ci_high=e.ci_high,
                    p_value=e.p_value,
                    se_type=e.se_type,
                )
                if balance_covariates:
                    smd, worst = _balance(
                        sub, m.treatment, outcome, balance_covariates, categorical
                    )
                    row.update(max_abs_smd=smd, worst_covariate=worst)
            rows.append(row)
    cols = ["variable", "level", "n_treated", "n_comparators", "shown", "mean_treated",
            "mean_comparator", "estimate", "se", "ci_low", "ci_high", "p_value", "p_holm",
            "se_type", "max_abs_smd", "worst_covariate"]  # fmt: skip
    table = pd.DataFrame(rows).reindex(columns=cols)
    shown = table["shown"].astype(bool).to_numpy()
    p = np.where(shown, table["p_value"].to_numpy(dtype=float), np.nan)
    table["p_holm"] = holm(p)
    table.attrs["alpha"] = alpha
    return table


def subgroup_heterogeneity(
    m,
    outcome: str,
    variables,
    min_treated: int = 30,
    min_comparators: int = 30,
    *,
    se: str = "auto",
) -> pd.DataFrame:
    """Per variable, the joint Wald test that the treatment effect is equal at every level
    shown (the levels :func:`subgroup_effects` estimates).

    The fully interacted regression ``y ~ sum_l [1(level l) + 1(level l) x treated]`` is fit
    by weighted least squares on the same rows and weights as the level estimates (its
    treatment coefficients *are* the level ATTs), with the ATT's sandwich: pair-clustered
    without replacement, clustered on matched set and person (two-way, one row per set and
    person) with replacement, or HC0/HC3. ``W = (R b)' (R V R')^-1 (R b)`` with ``R`` the
    ``levels - 1`` differences from the last level; p from chi-squared(``levels - 1``). NaN
    with fewer than two levels shown.
    """
    data = m.data
    se = _resolve_se(se, m, data)
    layout = _layout(m, data)
    y_all = data[outcome].to_numpy(dtype=float)
    out = []
    for var in variables:
        order, level = _levels(data, layout, var)
        lay = layout.assign(level=level.to_numpy())
        ok = np.isfinite(y_all[lay["row"].to_numpy()]) & (lay["weight"].to_numpy() > 0)
        lay = lay[ok & lay["level"].notna().to_numpy()]
        if se != "twoway":  # one row per person and level, with the summed weight share
            lay = (
                lay.groupby(["row", "level"], sort=True)
                .agg(
                    subclass=("subclass", "first"),
                    unit=("unit", "first"),
                    treated=("treated", "first"),
                    weight=("weight", "sum"),
                )
                .reset_index()
            )
        counts = lay.groupby(["level", "treated"])["unit"].nunique()
        shown = [
            v
            for v in order
            if counts.get((v, True), 0) >= min_treated
            and counts.get((v, False), 0) >= min_comparators
        ]
        row = {"variable": var, "n_levels": len(shown), "levels": ",".join(shown)}
        if len(shown) < 2:
            out.append({**row, "statistic": np.nan, "df": max(len(shown) - 1, 0),
                        "p_value": np.nan})  # fmt: skip
            continue
        lay = lay[lay["level"].isin(shown)]
        lev = lay["level"].to_numpy()
        t = lay["treated"].to_numpy(dtype=float)
        dummies = np.column_stack([(lev == v).astype(float) for v in shown])
        X = np.column_stack([dummies, dummies * t[:, None]])
        y = y_all[lay["row"].to_numpy()]
        w = lay["weight"].to_numpy(dtype=float)
        clusters = None
        if se == "twoway":
            clusters = np.column_stack([lay["subclass"].to_numpy(), lay["unit"].to_numpy()])
        elif se == "cluster":
            clusters = lay["subclass"].to_numpy()
        b, V, kind = wls(y, X, w, clusters, hc3=se == "HC3")
        n_lev = len(shown)
        R = np.column_stack([np.eye(n_lev - 1), -np.ones(n_lev - 1)])
        d = R @ b[n_lev:]
        stat = float(d @ np.linalg.solve(R @ V[n_lev:, n_lev:] @ R.T, d))
        from scipy import stats  # here, not at import: most jobs never need scipy.stats

        out.append(
            {
                **row,
                "statistic": stat,
                "df": n_lev - 1,
                "p_value": float(stats.chi2.sf(stat, n_lev - 1)),
                "se_type": kind,
            }  # fmt: skip
        )
    cols = ["variable", "n_levels", "levels", "statistic", "df", "p_value", "se_type"]
    return pd.DataFrame(out).reindex(columns=cols)


def plot_forest(
    subgroups: pd.DataFrame, overall: Effect | None, path, title: str, *, ci_level: float
) -> None:
    """Forest plot of subgroup ATTs (percentage points for a binary outcome), readable level
    names, the overall estimate first. Only levels shown (large enough) are drawn."""
    from mydirection.reporting.figures import COLOURS, figure
    from mydirection.reporting.labels import covariate

    shown = subgroups[subgroups["shown"]].reset_index(drop=True)
    comparison = "n_comparison" if "n_comparison" in shown else "n_comparators"
    scale = 100.0 if overall is None or overall.kind == "binary" else 1.0
    labels, est, lo, hi = [], [], [], []
    if overall is not None:
        labels.append(f"All matched (n = {overall.n_treated:,} / {overall.n_comparators:,})")
        est.append(overall.estimate * scale)
        lo.append(overall.ci_low * scale)
        hi.append(overall.ci_high * scale)
    for r in shown.itertuples():
        n_c = getattr(r, comparison)
        labels.append(f"{covariate(r.variable, r.level)} (n = {r.n_treated:,} / {n_c:,})")
        est.append(r.estimate * scale)
        lo.append(r.ci_low * scale)
        hi.append(r.ci_high * scale)
    with figure(path, figsize=(8, 0.45 * max(len(labels), 2) + 1.5)) as (fig, ax):
        y = np.arange(len(labels))[::-1]
        if labels:
            err = [np.subtract(est, lo), np.subtract(hi, est)]
            ax.errorbar(est, y, xerr=err, fmt="o", color=COLOURS["neutral"], capsize=3)
            if overall is not None:
                ax.plot(est[0], y[0], "D", color=COLOURS["treated"], markersize=8)
        else:
            ax.text(0.5, 0.5, "No subgroup large enough to show", ha="center",
                    transform=ax.transAxes)  # fmt: skip
        ax.axvline(0, color=COLOURS["faint"], linestyle="--", linewidth=1)
        ax.set_yticks(y, labels)
        unit = "percentage points" if scale == 100 else "difference in means"
        ax.set_xlabel(
            f"Participants minus comparison ({unit}), {100 * ci_level:.10g}% interval\n"
            "n = participants / comparators"
        )
        fig.suptitle(title, fontsize=11)
