"""Enrolment cohorts in the panel: the interaction-weighted estimator (Sun and Abraham 2021).

The treated are enrolled (indexed) over a year, so they fall into *enrolment cohorts*: the
calendar quarter of the index date. If the pilot's effect differs between cohorts (a model
that improved, or decayed, as the pilot went on), the pooled treated x post coefficient of
:func:`mydirection.effects.panel.did` is a regression-weighted average of the cohort effects
whose weights depend on the calendar timing of the cohorts, not on their sizes (Goodman-Bacon
2021; Sun and Abraham 2021). The interaction-weighted (IW) estimator avoids this:

1. one regression with person, calendar-quarter and common event-time effects plus an
   interaction ``treated x cohort g x relative quarter l`` for every cohort ``g`` and every
   ``l`` except the reference quarter. ``beta_{g,l}`` is cohort ``g``'s difference from the
   comparators at ``l`` relative to the reference quarter (the cohort average treatment
   effect on the treated, CATT, for ``l >= 0``). The comparators are never treated, so the
   calendar and event-time effects come from them and no treated cohort serves as another's
   control. Every cohort x quarter cell must fall in calendar quarters in which comparators
   are observed (else its effect would rest on extrapolated calendar effects): an error;
2. aggregation with cohort shares: ``theta_l = sum_g s_{g,l} beta_{g,l}`` with ``s_{g,l}``
   the (matching-weighted) share of cohort ``g`` among the treated observed at ``l``
   (:func:`event_study_by_cohort`); a cohort's difference in differences is the mean of its
   ``beta_{g,l}`` after the index date minus their mean before it (every pre-index
   quarter, as :func:`mydirection.effects.panel.did`), and the overall effect weights the
   cohorts by their shares of the treated (:func:`did_by_cohort`).

This is ``fixest``'s ``sunab()`` with ``aggregate(agg = "period")``; ``agg = "att"`` is
``did_by_cohort(baseline="reference")``. The shares are taken as known (the sample shares),
so the variance is ``a' V a`` with ``V`` the clustered covariance of the ``beta`` (Sun and
Abraham's extra term for estimated shares is left out, as in ``fixest``). With one cohort
the IW event study is the event study.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection import normal
from mydirection.effects.panel import _row, design, event_table, fit, positive, wald


def enrolment_cohort(
    panel: pd.DataFrame, person: str = "person_id", treatment: str = "treated"
) -> pd.Series:
    """Per row: the calendar quarter of the person's index date (their relative quarter 0
    starts on the index date), for the treated; ``None`` for the comparators."""
    if not (panel["rel_quarter"] == 0).any():
        raise ValueError("the panel has no relative quarter 0 (the index quarter)")
    q0 = panel.loc[panel["rel_quarter"] == 0].set_index(person)["calendar_quarter"]
    cohort = panel[person].map(q0)
    return cohort.where(panel[treatment].astype(bool), None)


def _fit(panel, reference, cluster, person, treatment):
    """The saturated regression: results, {term: (cohort, l)}, weighted rows per term."""
    panel = positive(panel)
    ks = sorted(panel["rel_quarter"].unique())
    if reference not in ks:
        raise ValueError(f"reference quarter {reference} is outside the panel")
    cohort = enrolment_cohort(panel, person, treatment)
    k = panel["rel_quarter"].to_numpy()
    w = panel["weights"].to_numpy(float)
    t = panel[treatment].to_numpy(bool)
    cal = panel["calendar_quarter"].to_numpy()
    covered = np.isin(cal, np.unique(cal[~t & (w > 0)]))  # a comparator is observed then
    terms, x, mass, unsupported = {}, {}, {}, []
    for g in sorted(cohort.dropna().unique()):
        in_g = (cohort == g).to_numpy()
        for q in ks:
            if q == reference:
                continue
            name = f"treated_{g}_q{q}"
            cell = in_g & (k == q)
            terms[name], x[name], mass[name] = (g, q), cell.astype(float), w[cell].sum()
            if not covered[cell].all():
                unsupported.append(name)
    if unsupported:
        raise ValueError(
            "not identified from the comparators (some of their rows fall in calendar "
            "quarters in which no comparator is observed): " + ", ".join(unsupported)
        )
    exog, dropped = design(panel, x, reference, person, treatment)
    res = fit(panel, exog, cluster, person)
    return res, terms, pd.Series(mass), [reference, *dropped]


def _combine(a, b, v):
    """Estimate and SE of ``a @ b`` given the covariance ``v`` of ``b`` (``a`` fixed)."""
    return float(a @ b), float(np.sqrt(a @ v @ a))


def event_study_by_cohort(
    panel: pd.DataFrame,
    reference: int = -1,
    cluster: str = "person",
    person: str = "person_id",
    treatment: str = "treated",
    *,
    level: float,
) -> pd.DataFrame:
    """Interaction-weighted leads and lags: the event study robust to cohort effects.

    Same columns and ``attrs`` as :func:`mydirection.effects.panel.event_study` (the
    leads test is on the aggregated leads); ``attrs["cohort_shares"]`` maps each cohort to
    its share of the treated.
    """
    res, terms, mass, normalised = _fit(panel, reference, cluster, person, treatment)
    z = float(normal.norm_ppf(0.5 + level / 2))
    names, cov = list(terms), res.cov
    A = {}
    for q in sorted({q for _, q in terms.values()}):
        cell = [n for n in names if terms[n][1] == q]
        A[q] = pd.Series(mass[cell] / mass[cell].sum(), index=cell).reindex(names, fill_value=0)
    A = pd.DataFrame(A).T  # lags x terms
    b = res.params[names].to_numpy()
    theta = A.to_numpy() @ b
    V = A.to_numpy() @ cov.loc[names, names].to_numpy() @ A.to_numpy().T
    rows = [
        _row(f"iw_q{q}", q, theta[i], float(np.sqrt(V[i, i])), z) for i, q in enumerate(A.index)
    ]
    lead = np.asarray(A.index) < 0
    out = event_table(pd.DataFrame(rows), reference, theta[lead], V[np.ix_(lead, lead)], normalised)
    out.loc[out["period"] == "reference", "term"] = f"iw_q{reference}"
    out.attrs["cohort_shares"] = _shares(terms, mass)
    return out


def _shares(terms, mass) -> dict[str, float]:
    by = pd.Series({n: g for n, (g, _) in terms.items()})
    s = mass.groupby(by).sum()
    return {str(g): float(v) for g, v in (s / s.sum()).items()}


def did_by_cohort(
    panel: pd.DataFrame,
    reference: int = -1,
    cluster: str = "person",
    person: str = "person_id",
    treatment: str = "treated",
    *,
    level: float,
    baseline: str = "pre",
) -> pd.DataFrame:
    """Interaction-weighted difference in differences and the effect of each cohort.

    A cohort's effect is the mean of its ``beta_{g,l}`` over the post-index quarters minus
    their mean over the pre-index quarters (``baseline="pre"``, the reference counting as
    0: the same baseline as :func:`mydirection.effects.panel.did`, which it equals when
    every cohort has the same effect), or minus the reference quarter only
    (``baseline="reference"``: ``fixest``'s ``aggregate(agg = "att")``).
    Rows: ``iw_att`` (the cohort effects weighted by the cohorts' shares of the treated),
    then ``cohort_<quarter>``. Columns: term, cohort, share, estimate, se, ci_low, ci_high,
    p_value, n_people, n_rows, n_clusters. ``attrs``: ``cohort_homogeneity_chi2``, ``_df``,
    ``_p`` (Wald test that all cohorts have the same effect; NaN with one cohort),
    ``baseline`` and ``event_time_normalised``.
    """
    if baseline not in ("pre", "reference"):
        raise ValueError("baseline must be 'pre' or 'reference'")
    panel = positive(panel)
    res, terms, mass, normalised = _fit(panel, reference, cluster, person, treatment)
    z = float(normal.norm_ppf(0.5 + level / 2))
    names = list(terms)
    cohort = pd.Series({n: g for n, (g, _) in terms.items()})
    post = pd.Series({n: q >= 0 for n, (_, q) in terms.items()})
    ref_mass = _reference_mass(panel, reference, person, treatment)
    shares = _shares(terms, mass)
    A = []
    for g in shares:
        on = (cohort == g) & post
        a = (mass / mass[on].sum()).where(on, 0.0)
        if baseline == "pre":
            before = (cohort == g) & ~post
            a -= (mass / (mass[before].sum() + ref_mass[g])).where(before, 0.0)
        A.append(a[names].to_numpy())
    A = np.array(A)
    b, v = res.params[names].to_numpy(), res.cov.loc[names, names].to_numpy()
    att = np.array(list(shares.values())) @ A
    rows = [{**_row("iw_att", None, *_combine(att, b, v), z), "cohort": None, "share": 1.0}]
    for g, a in zip(shares, A, strict=True):
        rows.append({**_row(f"cohort_{g}", None, *_combine(a, b, v), z), "cohort": g,
                     "share": shares[g]})  # fmt: skip
    C = A[1:] - A[0]  # every cohort against the first
    chi2, df, p = wald(C @ b, C @ v @ C.T) if len(C) else (np.nan, 0, np.nan)
    out = pd.DataFrame(rows).drop(columns="rel_quarter")
    out = out[["term", "cohort", "share", "estimate", "se", "ci_low", "ci_high", "p_value"]]
    out["n_people"] = int(panel[person].nunique())
    out["n_rows"] = int(res.nobs)
    out["n_clusters"] = res.n_clusters
    out.attrs.update({"cohort_homogeneity_chi2": chi2, "cohort_homogeneity_df": df,
                      "cohort_homogeneity_p": p, "baseline": baseline,
                      "event_time_normalised": ",".join(str(q) for q in normalised)})  # fmt: skip
    return out


def _reference_mass(panel, reference, person, treatment) -> dict[str, float]:
    """Weighted treated rows of each cohort in the reference quarter."""
    cohort = enrolment_cohort(panel, person, treatment)
    at = (panel["rel_quarter"] == reference) & cohort.notna()
    return panel.loc[at, "weights"].groupby(cohort[at]).sum().to_dict()
