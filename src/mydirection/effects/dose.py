"""Exploratory dose-response: does re-offending vary with the fidelity of delivery?

An effect analysis on outcomes (rule ``fidelity_dose``), kept apart from the fidelity
measures (:mod:`mydirection.fidelity`, which never read an outcome). Fidelity is measured
after treatment starts and may reflect the person as much as the service, so these
analyses are exploratory.

Rules, in order:

1. **Who is analysed**: the headline's analysis sample, from
   :func:`mydirection.pipeline.analysis_sample` (matched or weighted people with complete
   follow-up; a matched set that loses its treated person or all its comparators goes with
   them) -- never a hand-made merge of outcomes. Treated people need a fidelity index
   (``results/fidelity/index_person.parquet``).
2. **Band comparisons** (:func:`band_comparisons`): each treated person in a fidelity band
   is compared with the mean outcome of their own matched comparators (every link of the
   match, ``pairs.parquet``, so a comparator serving several treated people after matching
   with replacement counts for each); the band's difference is the mean of these
   treated-minus-comparator differences (an ATT within the band), with a t interval on
   clusters - 1 degrees of freedom whose standard error is clustered by group of treated
   people who share comparators (each matched set is its own group without replacement).
   Without links (weighting) there are no matched comparators and nothing is estimated.
3. **Within-treated regression** (:func:`dose_regression`): ``reoffended`` on
   index / ``fidelity.dose_per_points`` adjusting for the propensity score
   (``fidelity.dose_ps_term``), as a linear probability model (slope in proportion per
   ``dose_per_points`` points) or a logit (``fidelity.dose_model``), standard errors
   clustered by case manager. Not estimable (all NaN) with fewer than 4 people, 2 case
   managers, 2 index values or without both outcomes.

Every interval is at the analysis plan's confidence level ``1 - analysis.alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mydirection import normal
from mydirection.errors import UserError
from mydirection.fidelity import BANDS, Slope
from mydirection.fidelity.settings import DoseSettings  # light: read while the Snakefile is parsed
from mydirection.reporting import disclosure
from mydirection.reporting.figures import COLOURS, figure
from mydirection.reporting.numbers import Numbers
from mydirection.settings import TestLevel

P = "fidelity_dose."

#: Columns read from each input (table specs in schemas/tables.yaml).
READS = {
    "index_person": ["person_id", "case_manager_id", "index", "band"],
    "matched": ["person_id", "treated", "weights", "subclass"],
    "propensity": ["person_id", "ps", "logit_ps"],
    "outcomes": [
        "person_id",
        "reoffended",
        "n_reoffences",
        "days_to_first",
        "event",
        "followup_complete",
    ],
    "pairs": ["treated_id", "comparator_id", "round", "subclass"],
}

CAPTION = (
    "Exploratory (fidelity is measured after treatment starts): proven re-offending of the "
    "treated participants in each fidelity band and of their own matched comparators, and "
    "the treated-minus-comparator difference with its {fidelity.confidence_level} confidence "
    "interval, on the headline's analysis sample. A band with fewer than "
    "{registry.suppression_threshold} treated participants or comparators, or whose count "
    "could otherwise be worked out, is not drawn."
)


# ----------------------------------------------------------------------------- links
def links(sample: pd.DataFrame, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The match's links between people of ``sample`` with an outcome: ``treated_id``,
    ``comparator_id``, ``subclass``. From ``pairs`` (every link) when given, else from the
    shared ``subclass`` (exact without replacement, where each comparator is in one set)."""
    ok = sample.dropna(subset=["reoffended"])
    ids = set(ok["person_id"])
    cols = ["treated_id", "comparator_id", "subclass"]
    if pairs is not None and len(pairs):
        keep = pairs["treated_id"].isin(ids) & pairs["comparator_id"].isin(ids)
        out = pairs.loc[keep, cols]
    else:
        s = ok.dropna(subset=["subclass"])
        t = s.loc[s["treated"].astype(bool), ["person_id", "subclass"]]
        c = s.loc[~s["treated"].astype(bool), ["person_id", "subclass"]]
        out = t.merge(c, on="subclass", suffixes=("_t", "_c")).rename(
            columns={"person_id_t": "treated_id", "person_id_c": "comparator_id"}
        )[cols]
    return out.sort_values(cols, kind="stable").reset_index(drop=True)


def sharing_groups(link: pd.DataFrame) -> pd.Series:
    """Treated id -> group label: treated people linked (directly or through others) by a
    shared comparator are one group; each matched set is its own group without replacement."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    t_codes, t_ids = pd.factorize(link["treated_id"], sort=True)
    c_codes, _ = pd.factorize(link["comparator_id"], sort=True)
    n_t = len(t_ids)
    n = n_t + int(c_codes.max()) + 1 if len(c_codes) else n_t
    graph = coo_matrix((np.ones(len(link)), (t_codes, n_t + c_codes)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return pd.Series(labels[:n_t], index=t_ids)


def _clustered_mean(d: pd.Series, clusters, alpha: float):
    """Mean of d with a cluster-robust t interval (G - 1 df) at 1 - alpha; NaNs below 2
    clusters."""
    n = len(d)
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    est = float(d.mean())
    e = (d - est).groupby(np.asarray(clusters)).sum()
    g = len(e)
    if g < 2:
        return est, np.nan, np.nan, np.nan, g
    var = (e**2).sum() / n**2 * g / (g - 1)
    se = float(np.sqrt(var))
    if se == 0:
        return est, est, est, np.nan, g
    tcrit = normal.t_ppf(1 - alpha / 2, g - 1)
    p = float(2 * normal.t_sf(abs(est / se), g - 1))
    return est, est - tcrit * se, est + tcrit * se, p, g


def band_comparisons(
    sample: pd.DataFrame, person: pd.DataFrame, pairs: pd.DataFrame | None = None, *, alpha: float
) -> pd.DataFrame:
    """Re-offending of each fidelity band against its own matched comparators (rule 2).

    ``sample`` is the analysis sample (:func:`mydirection.pipeline.analysis_sample`),
    ``person`` the fidelity index per person (``band``), ``pairs`` the links of the match.
    Treated people without a band or without a linked comparator in the sample are left out.
    """
    y = sample.set_index("person_id")["reoffended"].astype(float)
    link = links(sample, pairs)
    link = link.assign(y_c=link["comparator_id"].map(y))
    per_t = link.groupby("treated_id", sort=True).agg(y_c=("y_c", "mean"))
    per_t["cluster"] = sharing_groups(link).reindex(per_t.index)
    per_t["band"] = per_t.index.map(person.set_index("person_id")["band"])
    per_t = per_t.dropna(subset=["band"])
    per_t["y"] = per_t.index.map(y)
    per_t["d"] = per_t["y"] - per_t["y_c"]
    rows = []
    for b in BANDS:
        s = per_t[per_t["band"] == b]
        n = len(s)
        est, lo, hi, p, g = _clustered_mean(s["d"], s["cluster"], alpha)
        rows.append(
            {
                "analysis": "band_vs_matched",
                "group": b,
                "n_treated": n,
                "n_comparators": int(
                    link.loc[link["treated_id"].isin(s.index), "comparator_id"].nunique()
                ),
                "treated_rate": s["y"].mean() if n else np.nan,
                "comparator_rate": s["y_c"].mean() if n else np.nan,
                "estimate": est,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": p,
                "n_clusters": g,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- regression
def dose_regression(
    person: pd.DataFrame,
    propensity: pd.DataFrame,
    sample: pd.DataFrame,
    *,
    alpha: float,
    per_points: float,
    ps_term: str,
    model: str,
) -> Slope:
    """Within-treated regression of re-offending on the index, adjusting for the PS (rule 3).

    ``sample``: the analysis sample (its treated rows and their ``reoffended``).
    ``model="lpm"``: linear probability model, slope = change in the probability of
    re-offending per ``per_points`` index points; ``"logit"``: log-odds per
    ``per_points``. Standard errors clustered by case manager; interval at 1 - alpha.
    """
    import statsmodels.api as sm

    if model not in ("lpm", "logit"):
        raise ValueError(f"model must be 'lpm' or 'logit', not {model!r}")
    treated = sample.loc[sample["treated"].astype(bool), ["person_id", "reoffended"]]
    d = person[["person_id", "case_manager_id", "index"]].dropna(subset=["index"])
    d = d.merge(propensity[["person_id", ps_term]], on="person_id").merge(treated, on="person_id")
    d = d.dropna(subset=[ps_term, "reoffended"]).sort_values("person_id", kind="stable")
    x = pd.DataFrame(
        {"index": d["index"].to_numpy() / per_points, "ps": d[ps_term].to_numpy(dtype=float)}
    )
    X = sm.add_constant(x, has_constant="add")
    y = d["reoffended"].to_numpy(dtype=float)
    groups = pd.factorize(d["case_manager_id"], sort=True)[0]
    n_cl = int(len(np.unique(groups)))
    if len(d) < 4 or n_cl < 2 or x["index"].nunique() < 2 or len(np.unique(y)) < 2:
        return Slope.not_estimable(len(d), n_cl)
    kw = {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
    if model == "logit":
        res = sm.Logit(y, X).fit(disp=0, **kw)
    else:
        res = sm.OLS(y, X).fit(use_t=True, **kw)
    return Slope.from_fit(res, "index", alpha, len(d), n_cl)


# ----------------------------------------------------------------------------- result
@dataclass
class DoseResult:
    """The dose-response analyses, their numbers and their figure."""

    sample: pd.DataFrame
    bands: pd.DataFrame
    slope: Slope
    settings: DoseSettings
    alpha: float

    def table(self) -> pd.DataFrame:
        """``dose_response.parquet``: the band rows, then the regression row."""
        s, sl = self.settings, self.slope
        reg = pd.DataFrame(
            [
                {
                    "analysis": f"within_treated_{s.model}",
                    "group": f"index per {s.per_points:g} points",
                    "n_treated": sl.n,
                    "n_comparators": 0,
                    "treated_rate": np.nan,
                    "comparator_rate": np.nan,
                    "estimate": sl.estimate,
                    "ci_low": sl.ci_low,
                    "ci_high": sl.ci_high,
                    "p_value": sl.p_value,
                    "n_clusters": sl.n_clusters,
                }
            ]
        )
        out = pd.concat([self.bands, reg], ignore_index=True)
        return out.astype({"n_treated": "int64", "n_comparators": "int64", "n_clusters": "int64"})

    def numbers(self) -> Numbers:
        n = Numbers()
        s, sl = self.settings, self.slope
        dose_n = n.count(
            P + "n",
            sl.n,
            "Treated participants in the dose-response analysis (analysis sample, with an index)",
            unit="treated people",
        )
        clusters = n.count(
            P + "n_clusters",
            sl.n_clusters,
            "Case managers in the dose-response regression (its clusters)",
            unit="case managers",
            people=True,
        )
        kind = "pp" if s.model == "lpm" else "estimate"
        unit = (
            f"per {s.per_points:g} index points"
            if s.model == "lpm"
            else f"log-odds per {s.per_points:g} points"
        )
        what = f"Exploratory: change in re-offending per {s.per_points:g} fidelity-index points"
        src = [dose_n, clusters]
        n.add(P + "slope", sl.estimate, kind, what, unit=unit, derived_from=src)
        n.add(
            P + "slope_ci_low",
            sl.ci_low,
            kind,
            what + ": lower confidence limit",
            unit=unit,
            derived_from=src,
        )
        n.add(
            P + "slope_ci_high",
            sl.ci_high,
            kind,
            what + ": upper confidence limit",
            unit=unit,
            derived_from=src,
        )
        n.add(P + "slope_p", sl.p_value, "p_value", what + ": p-value", derived_from=src)
        parts = []
        for row in self.bands.itertuples():
            b = row.group
            nt = n.count(
                P + f"{b}_n_treated",
                int(row.n_treated),
                f"Treated participants in the {b} fidelity band (dose-response)",
                unit="treated people",
            )
            # a band's comparators are those of its treated: when that count is hidden, so is this
            nc = n.count(
                P + f"{b}_n_comparators",
                int(row.n_comparators),
                f"Matched comparators of the {b} fidelity band",
                unit="comparators",
                derived_from=[nt],
            )
            parts.append(nt)
            both = [nt, nc]
            band = f"{b} fidelity band"
            n.add(
                P + f"{b}_treated_rate",
                row.treated_rate,
                "proportion",
                f"Re-offending rate of treated participants in the {band}",
                derived_from=[nt],
            )
            n.add(
                P + f"{b}_comparator_rate",
                row.comparator_rate,
                "proportion",
                f"Re-offending rate of the matched comparators of the {band}",
                derived_from=both,
            )
            diff = f"Re-offending difference, {band} against own matched comparators"
            n.add(P + f"{b}_difference", row.estimate, "pp", diff, derived_from=both)
            n.add(
                P + f"{b}_difference_ci_low",
                row.ci_low,
                "pp",
                diff + ": lower confidence limit",
                derived_from=both,
            )
            n.add(
                P + f"{b}_difference_ci_high",
                row.ci_high,
                "pp",
                diff + ": upper confidence limit",
                derived_from=both,
            )
            n.add(
                P + f"{b}_difference_p",
                row.p_value,
                "p_value",
                diff + ": p-value",
                derived_from=both,
            )
        if int(self.bands["n_treated"].sum()) == sl.n:  # the same treated people, by band
            n.relation(dose_n, parts)
        return n

    def hidden(self, threshold: int) -> dict[str, str]:
        numbers = self.numbers()
        return disclosure.display(
            {k: v.as_dict() for k, v in numbers.items()}, numbers.relations, threshold
        )

    def drawn_bands(self, threshold: int) -> pd.DataFrame:
        """The bands the figure draws: both counts publishable and at least ``threshold``."""
        hidden = self.hidden(threshold)
        keep = [
            P + f"{r.group}_n_treated" not in hidden
            and P + f"{r.group}_n_comparators" not in hidden
            and r.n_treated >= threshold
            and r.n_comparators >= threshold
            for r in self.bands.itertuples()
        ]
        return self.bands[keep]

    def plot_bands(self, path, threshold: int) -> pd.DataFrame:
        drawn = self.drawn_bands(threshold)
        plot_dose_bands(self.bands, drawn["group"].tolist(), path, threshold)
        return drawn

    def figures(self, threshold: int) -> list[tuple]:
        return [
            (
                "fidelity_dose_response",
                lambda path: self.plot_bands(path, threshold),
                CAPTION,
                [P + "n"],
            )
        ]


def plot_dose_bands(bands: pd.DataFrame, drawn, path, threshold: int) -> None:
    """Re-offending per fidelity band vs own matched comparators: rates, and differences
    (treated minus comparators) with their intervals. Only the bands in ``drawn`` are
    drawn; the others are labelled "not shown"."""
    b = bands.reset_index(drop=True)
    show = b["group"].isin(list(drawn)).to_numpy()
    k = np.arange(len(b))
    labels = [
        f"{g}\n(n={disclosure.shown_count(n, threshold)})" if ok else f"{g}\n(not shown)"
        for g, n, ok in zip(b["group"], b["n_treated"], show, strict=True)
    ]
    masked = lambda col: np.where(show, b[col].to_numpy(dtype=float), np.nan)  # noqa: E731
    with figure(path, 1, 2, figsize=(10, 4.4)) as (fig, (ax, ax2)):
        ax.bar(
            k - 0.2,
            100 * np.nan_to_num(masked("treated_rate")),
            0.4,
            label="treated",
            color=COLOURS["treated"],
        )
        ax.bar(
            k + 0.2,
            100 * np.nan_to_num(masked("comparator_rate")),
            0.4,
            label="matched comparators",
            color=COLOURS["comparator"],
        )
        ax.set_xticks(k, labels)
        ax.set_ylabel("Proven re-offending (%)")
        ax.set_xlabel("Fidelity band of the treated person")
        ax.set_title("Re-offending rates")
        # below the axes, so the legend never covers a bar
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, fontsize=8)
        est = 100 * masked("estimate")
        lo = est - 100 * masked("ci_low")
        hi = 100 * masked("ci_high") - est
        ax2.errorbar(
            k,
            est,
            yerr=[np.nan_to_num(lo), np.nan_to_num(hi)],
            fmt="o",
            capsize=4,
            color=COLOURS["treated"],
        )
        ax2.axhline(0, color=COLOURS["neutral"], linewidth=1)
        ax2.set_xticks(k, labels)
        ax2.set_xlim(-0.5, len(b) - 0.5)
        ax2.set_ylabel("Treated minus comparators (pp)")
        ax2.set_xlabel("Fidelity band of the treated person")
        ax2.set_title("Difference with its confidence interval")
        fig.suptitle("Exploratory: re-offending by fidelity band vs own matched comparators")


# ----------------------------------------------------------------------------- stage
def dose_response(
    person: pd.DataFrame,
    matched: pd.DataFrame,
    propensity: pd.DataFrame,
    outcomes: pd.DataFrame,
    pairs: pd.DataFrame | None = None,
    *,
    settings: DoseSettings,
    level: TestLevel,
) -> DoseResult:
    """The dose-response stage (module docstring): the analysis sample, then rules 2-3."""
    from mydirection.pipeline import analysis_sample

    sample = analysis_sample(matched, outcomes, pairs)
    bands = band_comparisons(sample, person, pairs, alpha=level.alpha)
    try:
        slope = dose_regression(
            person,
            propensity,
            sample,
            alpha=level.alpha,
            per_points=settings.per_points,
            ps_term=settings.ps_term,
            model=settings.model,
        )
    except ValueError as err:  # e.g. a perfectly separated logit
        from mydirection import tables

        raise UserError(
            f"{tables.spec('fidelity.index_person')['path']}, column index: the dose-response "
            f"regression could not be fitted ({err}); it needs scored treated people with "
            "outcomes and propensity scores, or set fidelity.dose_model to lpm"
        ) from err
    return DoseResult(sample=sample, bands=bands, slope=slope, settings=settings, alpha=level.alpha)


__all__ = [
    "CAPTION",
    "READS",
    "DoseResult",
    "DoseSettings",
    "band_comparisons",
    "dose_regression",
    "dose_response",
    "links",
    "plot_dose_bands",
    "sharing_groups",
]
