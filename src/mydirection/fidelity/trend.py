"""Decay over 2018: the fidelity index by month of enrolment and its linear trend.

Rules, in order:

1. **Months**: every calendar month from the first to the last enrolment, numbered from 0;
   per month the people enrolled, the people scored (with an index) and their mean index
   with a t interval at the analysis plan's confidence level ``1 - analysis.alpha``.
2. **Trend** (:func:`monthly_slope`): OLS of the person index on month of enrolment (index
   points per month) over the scored people; standard errors clustered by case manager
   with a t reference on clusters - 1 degrees of freedom (``fidelity.monthly_se:
   cluster``), or heteroskedasticity-robust HC1 (``hc1``). Its interval is at
   ``1 - analysis.alpha`` too. Not estimable (all NaN) with fewer than two months with
   scored people, fewer than three scored people or, clustered, fewer than two case
   managers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mydirection.fidelity.index import mean_ci


def monthly_index(person: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Index by month of enrolment: people enrolled, people scored, mean with CI."""
    months = pd.period_range(
        person["enrolment_date"].min(), person["enrolment_date"].max(), freq="M"
    ).to_timestamp()
    rows = []
    for k, mth in enumerate(months):
        sel = person[person["enrolment_month"] == mth]
        m, lo, hi, n = mean_ci(sel["index"], alpha)
        rows.append(
            {
                "month": mth,
                "month_number": k,
                "n_enrolled": len(sel),
                "n_scored": n,
                "mean_index": m,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    out = pd.DataFrame(rows)
    return out.astype({"month_number": "int64", "n_enrolled": "int64", "n_scored": "int64"})


@dataclass(frozen=True)
class Slope:
    """A regression slope with its confidence interval (at ``1 - alpha``) and p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    n_clusters: int

    @classmethod
    def not_estimable(cls, n: int, n_clusters: int) -> Slope:
        return cls(np.nan, np.nan, np.nan, np.nan, n, n_clusters)

    @classmethod
    def from_fit(cls, res, term: str, alpha: float, n: int, n_clusters: int) -> Slope:
        """The coefficient ``term`` of a fitted statsmodels result, interval at 1 - alpha."""
        ci = res.conf_int(alpha=alpha).loc[term]
        return cls(
            float(res.params[term]),
            float(ci.iloc[0]),
            float(ci.iloc[1]),
            float(res.pvalues[term]),
            n,
            n_clusters,
        )


def monthly_slope(person: pd.DataFrame, alpha: float, se: str = "cluster") -> Slope:
    """Linear trend of the person index on month of enrolment (index points per month).

    OLS on scored people; ``se="cluster"`` clusters standard errors by case manager (t
    reference with clusters - 1 degrees of freedom), ``"hc1"`` uses heteroskedasticity-
    robust errors; the interval is at ``1 - alpha``. Not estimable (all NaN) with fewer
    than two months with scored people or, with ``"cluster"``, fewer than two case managers.
    """
    import statsmodels.api as sm

    if se not in ("cluster", "hc1"):
        raise ValueError(f"se must be 'cluster' or 'hc1', not {se!r}")
    d = person.dropna(subset=["index"])
    groups = pd.factorize(d["case_manager_id"], sort=True)[0] if se == "cluster" else None
    n_cl = int(len(np.unique(groups))) if groups is not None else len(d)
    if d["enrolment_month"].nunique() < 2 or len(d) < 3 or n_cl < 2:
        return Slope.not_estimable(len(d), n_cl)
    first = d["enrolment_month"].min()
    month = (d["enrolment_month"].dt.year * 12 + d["enrolment_month"].dt.month) - (
        first.year * 12 + first.month
    )
    x = pd.DataFrame({"month": month.astype(float).to_numpy()})
    y = d["index"].to_numpy(dtype=float)
    X = sm.add_constant(x, has_constant="add")
    if groups is not None:
        res = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    else:
        res = sm.OLS(y, X).fit(cov_type="HC1", use_t=True)
    return Slope.from_fit(res, "month", alpha, len(d), n_cl)


__all__ = ["Slope", "monthly_index", "monthly_slope"]
