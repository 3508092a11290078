"""The headline analysis, one code path for every consumer.

:func:`headline` is what the headline rules, every specification of the curve, the placebo
and every simulation replicate run: the outcome-blind design (:func:`design`: match, judge
balance, apply the pre-specified revisions while balance fails), the analysis sample
(:func:`analysis_sample`: who is analysed, the follow-up rule included) and the estimate
(:func:`estimate`: the three Justice Data Lab measures). The Snakemake rules run the same
three functions with Parquet files in between (``matching`` writes the design, ``reoffending``
reads it), and a test checks that both paths give the same numbers to the last bit.

The design, in order:

1. Fit the design as specified (``MatchSpec``: propensity model, nearest-neighbour matching
   or IPW) and judge balance: every |SMD| after adjustment at most ``smd_threshold`` and
   every variance ratio within ``var_ratio_bounds`` (no p-values, no outcomes).
2. While balance fails, apply the next revision of ``matching.revisions`` on top of the
   current design (add squares or products of the worst-balanced covariates to the
   propensity model, tighten the caliper, change the ratio or replacement, switch to IPW)
   and judge again; stop at the first design that achieves balance.
3. If none does, keep the design with the smallest largest |SMD| (the earliest on ties).

Who is analysed: the matched (or weighted) people with complete follow-up. People whose
follow-up is incomplete (only possible with ``cohort.exclude_incomplete_followup: false``)
are left out; a matched set left without its treated person or without comparators goes
with them, and matching weights are recomputed from the remaining links.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mydirection.effects import jdl
from mydirection.effects.att import Effect, MatchedSample, att, matched_sample, time_to_first
from mydirection.errors import NotEstimable, UserError
from mydirection.matching import (
    BalanceVerdict,
    MatchResult,
    Preparations,
    Prepared,
    ipw,
    match,
    n_outside_support,
)
from mydirection.outcomes import is_among
from mydirection.reporting import labels
from mydirection.reporting.balance_table import balance_numbers
from mydirection.reporting.numbers import Numbers
from mydirection.settings import AnalysisSpec, MatchSpec

#: Columns of the outcomes table the headline needs.
OUTCOME_COLUMNS = ("reoffended", "n_reoffences", "days_to_first", "event")


# ----------------------------------------------------------------------------- design
def fit(
    cohort: pd.DataFrame, spec: MatchSpec, propensity=None, prepared: Prepared | None = None
) -> MatchResult:
    """Match (or weight) ``cohort`` as ``spec`` says. ``propensity`` (ps, logit_ps aligned to
    the cohort), when given, must be the scores of ``spec``'s own propensity model (its
    covariates and terms); it is then used instead of refitting the model. ``prepared``:
    the cohort prepared for ``spec``'s covariates (shared by the designs on one cohort)."""
    options = {
        "categorical": list(spec.categorical),
        "propensity": propensity,
        "terms": tuple(spec.terms),
        "prepared": prepared,
    }
    if spec.method == "ipw":
        return ipw(cohort, "treated", list(spec.covariates), **options)
    return match(
        cohort,
        "treated",
        list(spec.covariates),
        distance=spec.distance,
        ratio=spec.ratio,
        replace=spec.replace,
        caliper=spec.caliper,
        order=spec.order,
        exact=list(spec.exact),
        seed=spec.seed,
        discard=spec.discard,
        **options,
    )


def _worst(balance: pd.DataFrame, k: int, continuous_only: bool) -> list[str]:
    """The ``k`` covariate columns with the largest |SMD| after adjustment (stable order)."""
    b = balance
    if continuous_only:
        b = b[b["type"] == "continuous"]
    ranked = b.assign(_abs=b["smd_after"].abs().fillna(np.inf)).sort_values(
        "_abs", ascending=False, kind="stable"
    )
    return ranked["covariate"].head(k).tolist()


def revise(spec: MatchSpec, change: dict, balance: pd.DataFrame) -> MatchSpec:
    """``spec`` with one revision step applied (see ``matching.revisions`` in the schema)."""
    values = {k: v for k, v in change.items() if k not in ("squares", "interactions")}
    terms = list(spec.terms)
    if "squares" in change:
        terms += [f"{c}^2" for c in _worst(balance, int(change["squares"]), True)]
    if "interactions" in change:
        cols = _worst(balance, int(change["interactions"]), False)
        terms += [f"{a}*{b}" for i, a in enumerate(cols) for b in cols[i + 1 :]]
    values["terms"] = tuple(dict.fromkeys(terms))
    if "caliper" in values and values["caliper"] is not None:
        values["caliper"] = float(values["caliper"])
    return dataclasses.replace(spec, **values)


def describe_change(change: dict) -> str:
    """A revision step in words (for the design table and the report)."""
    words = {
        "squares": "add squares of the {} worst-balanced continuous covariates",
        "interactions": "add products of the {} worst-balanced covariates",
        "caliper": "caliper {} SD",
        "ratio": "{} comparators per treated person",
        "replace": "with replacement: {}",
        "distance": "distance {}",
        "method": "method {}",
    }
    parts = []
    for key, value in change.items():
        shown = "none" if value is None else str(value).lower()
        parts.append(words.get(key, key + " {}").format(shown))
    return "; ".join(parts)


@dataclass
class Design:
    """The chosen outcome-blind design and how it was reached."""

    spec: MatchSpec
    result: MatchResult
    verdict: BalanceVerdict
    #: one row per design tried: step, change, design, max |SMD| after, failures, chosen
    steps: pd.DataFrame = field(repr=False)
    #: participants whose propensity score lies outside the comparators' range
    outside_support: int = 0

    @property
    def pairs(self) -> pd.DataFrame:
        """One row per link, with person ids: treated_id, comparator_id, round, subclass."""
        return pair_ids(self.result)

    @property
    def matched(self) -> pd.DataFrame:
        """The matched (or weighted) cohort rows with distance, weights and subclass."""
        m = self.result.data.reset_index(drop=True)
        return m.astype({"subclass": "Int64"})

    @property
    def counts(self) -> pd.DataFrame:
        """All / matched / unmatched / discarded per group (participants, comparators)."""
        return self.result.counts.replace({"group": {"control": "comparator"}})

    @property
    def balance(self) -> pd.DataFrame:
        return self.result.balance

    def propensity(self, cohort: pd.DataFrame) -> pd.DataFrame:
        """The chosen design's propensity scores for every cohort member, in cohort order."""
        prop = self.result.propensity.reset_index(drop=True)
        return pd.DataFrame(
            {
                "person_id": cohort["person_id"].to_numpy(),
                "treated": cohort["treated"].astype(bool).to_numpy(),
                "ps": prop["ps"].to_numpy(float),
                "logit_ps": prop["logit_ps"].to_numpy(float),
            }
        )

    def figures(self, cohort: pd.DataFrame) -> dict:
        """name -> (draw(path), caption): the Love plot, the propensity-score overlap and the
        eCDF of the least balanced covariate. Captions name registry numbers as ``{key}``."""
        from mydirection.matching import plots
        from mydirection.matching.design import expand_covariates

        treated = cohort["treated"].astype(bool).to_numpy()
        ps = self.result.propensity["ps"].to_numpy(float)
        weights = (
            pd.Series(self.result.data["weights"]).reindex(cohort.index).fillna(0.0).to_numpy()
        )
        worst = self.verdict.worst_covariate
        row = self.balance.set_index("covariate").loc[worst]
        values = expand_covariates(cohort, self.spec.covariates, self.spec.categorical)[worst]
        threshold = self.spec.smd_threshold
        return {
            "love_plot": (
                lambda path: plots.love_plot(self.balance, path, threshold),
                "Absolute standardised mean differences of each covariate level before (open "
                "circles) and after matching (filled), against the balance threshold of "
                "{config.matching.smd_threshold} (dashed line). The denominator is the "
                "participants' standard deviation before matching, the same before and after.",
            ),
            "ps_overlap": (
                lambda path: plots.ps_overlap_plot(ps, treated, weights, path),
                "Propensity-score distributions of participants and comparators before matching "
                "and after it (comparators weighted by their matching weights).",
            ),
            "ecdf_worst": (
                lambda path: plots.ecdf_plot(
                    values.to_numpy(float), treated, weights, path, row["variable"], row["level"]
                ),
                "Empirical cumulative distribution of the least balanced covariate after "
                "matching ({matching.worst_covariate}), participants against comparators, "
                "before and after matching.",
            ),
        }

    def numbers(self) -> Numbers:
        """Group sizes, the balance verdict and every design step (registry ``matching.*``)."""
        n = Numbers()
        c = self.counts.set_index("group")
        n_t = n.count("matching.n_treated", c.loc["treated", "all"], "Participants in the cohort")
        n_m = n.count(
            "matching.n_treated_matched", c.loc["treated", "matched"], "Participants matched"
        )
        n_u = n.count(
            "matching.n_treated_unmatched",
            c.loc["treated", "unmatched"] + c.loc["treated", "discarded"],
            "Participants without a match (caliper or common support)",
        )
        n.relation(n_t, [n_m, n_u])
        n.count("matching.n_comparator_pool", c.loc["comparator", "all"], "Comparators in the pool")
        n.count(
            "matching.n_comparators_matched",
            c.loc["comparator", "matched"],
            "Comparators matched (with a weight above zero)",
            unit="comparators",
        )
        n.count(
            "matching.n_treated_outside_support",
            self.outside_support,
            "Participants with a propensity score outside the comparators' range",
        )
        v = self.verdict
        n.add("matching.design", self.spec.describe(), "text", "The design every analysis uses")
        n.add("matching.balance_ok", v.text, "text", "Covariate balance")
        n.add(
            "matching.max_abs_smd_before",
            v.max_abs_smd_before,
            "estimate",
            "Largest absolute standardised mean difference before matching",
            decimals=3,
            signed=False,
        )
        n.add(
            "matching.max_abs_smd_after",
            v.max_abs_smd_after,
            "estimate",
            "Largest absolute standardised mean difference after matching",
            decimals=3,
            signed=False,
        )
        row = self.balance.set_index("covariate").loc[v.worst_covariate]
        n.add(
            "matching.worst_covariate",
            labels.covariate(row["variable"], row["level"]),
            "text",
            "Least balanced covariate after matching",
        )
        n.add(
            "matching.n_covariates_imbalanced",
            len(set(v.smd_failures) | set(v.var_ratio_failures)),
            "count",
            "Covariate levels failing a balance criterion",
            unit="covariate levels",
        )
        n.add(
            "matching.n_covariate_levels",
            len(self.balance),
            "count",
            "Covariate levels judged",
            unit="covariate levels",
        )
        n.add(
            "matching.n_designs_tried",
            len(self.steps),
            "count",
            "Designs tried (as specified, then each revision while balance failed)",
            unit="designs",
        )
        for row in self.steps.itertuples():
            k = f"matching.revision_{row.step}"
            n.add(k + ".change", row.change, "text", f"Design step {row.step}: change")
            n.add(k + ".design", row.design, "text", f"Design step {row.step}: design")
            n.add(
                k + ".max_abs_smd_after",
                row.max_abs_smd_after,
                "estimate",
                f"Design step {row.step}: largest |SMD| after matching",
                decimals=3,
                signed=False,
            )
            n.add(
                k + ".balance",
                "achieved" if row.balance_ok else "not achieved",
                "text",
                f"Design step {row.step}: balance",
            )
        balance_numbers(self.balance, n)  # the numeric table beside the Love plot
        return n


def pair_ids(m: MatchResult) -> pd.DataFrame:
    """The links of a match (index labels) as person ids (``pairs.parquet``); empty for IPW."""
    data_ids = m.data["person_id"]
    p = m.pairs
    return pd.DataFrame(
        {
            "treated_id": data_ids.loc[p["treated"]].to_numpy(),
            "comparator_id": data_ids.loc[p["control"]].to_numpy(),
            "round": p["round"].to_numpy(),
            "subclass": p["subclass"].to_numpy(),
        }
    )


def design(
    cohort: pd.DataFrame,
    spec: MatchSpec,
    propensity=None,
    preparations: Preparations | None = None,
) -> Design:
    """The design stage (module docstring, steps 1-3). ``cohort`` must have a default
    RangeIndex (row positions are the stable tie-breaking key). ``preparations``: shared
    with other designs on the same people (:class:`Preparations`)."""
    current = dataclasses.replace(spec, revisions=())
    # the propensity model depends only on the terms: fitted once per set of terms
    scores = {} if propensity is None else {tuple(current.terms): propensity}
    preparations = preparations or Preparations()  # shared by the revisions
    tried = []
    changes = [None, *spec.revisions]
    for step, change in enumerate(changes):
        if change is not None:
            last = next(t for t in reversed(tried) if t[1] is not None)  # step 0 fitted
            if last[2].ok:
                break
            current = revise(current, change, last[1].balance)
        try:
            prepared = preparations.get(
                cohort, "treated", list(current.covariates), list(current.categorical)
            )
            m = fit(cohort, current, scores.get(tuple(current.terms)), prepared)
        except ValueError as err:
            if not tried:  # the analysis plan's own design cannot be fitted: say why, stop
                raise NotEstimable(f"matching ({len(cohort)} cohort members): {err}") from None
            tried.append((step, None, None, current, change, str(err)))
            continue
        scores[tuple(current.terms)] = m.propensity
        verdict = m.verdict(current.smd_threshold, current.var_ratio_bounds)
        tried.append((step, m, verdict, current, change, ""))
    usable = [t for t in tried if t[1] is not None]
    balanced = [t for t in usable if t[2].ok]
    chosen = (
        balanced[0]
        if balanced
        else min(usable, key=lambda t: (np.nan_to_num(t[2].max_abs_smd_after, nan=np.inf), t[0]))
    )
    rows = []
    for step, m, verdict, s, change, error in tried:
        rows.append(
            {
                "step": step,
                "change": "as specified" if change is None else describe_change(change),
                "design": s.describe(),
                "max_abs_smd_after": math.nan if verdict is None else verdict.max_abs_smd_after,
                "n_failing": -1
                if verdict is None
                else len(set(verdict.smd_failures) | set(verdict.var_ratio_failures)),
                "balance_ok": bool(verdict is not None and verdict.ok),
                "n_treated_matched": 0 if m is None else m.n_matched("treated"),
                "error": error,
                "chosen": step == chosen[0],
            }
        )
    m = chosen[1]
    outside = n_outside_support(
        m.propensity["ps"].to_numpy(float), cohort["treated"].astype(bool).to_numpy()
    )
    return Design(
        spec=chosen[3],
        result=m,
        verdict=chosen[2],
        steps=pd.DataFrame(rows),
        outside_support=outside,
    )


# ----------------------------------------------------------------------------- sample
def analysis_sample(
    matched: pd.DataFrame, outcomes: pd.DataFrame, pairs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The matched (or weighted) rows with their outcomes: who is analysed, for every consumer.

    One row per matched person with weight > 0; people with incomplete follow-up
    (``followup_complete`` false) are left out with their matched set as the module
    docstring says, and ``attrs["n_incomplete"]`` counts them. ``pairs`` (person ids, as
    ``results/matching/pairs.parquet``) lets the weights be recomputed when links are lost.
    """
    need = ["person_id", "treated", "weights", "subclass"]
    missing = [c for c in need if c not in matched.columns]
    missing_o = [c for c in ("person_id", *OUTCOME_COLUMNS) if c not in outcomes.columns]
    if missing or missing_o:
        what = f"matched column {missing[0]}" if missing else f"outcomes column {missing_o[0]}"
        raise UserError(f"analysis sample: {what} is missing; rerun the stage that writes it")
    keep = ["person_id", *[c for c in outcomes.columns if c != "person_id"]]
    base = matched[matched["weights"] > 0].drop(
        columns=[c for c in keep[1:] if c in matched.columns]
    )
    # the matched people's outcome rows first: a placebo repetition matches a few thousand
    # people out of a national cohort's million outcome rows
    mine = np.flatnonzero(is_among(outcomes["person_id"], base["person_id"]))
    ids = pd.Index(outcomes["person_id"].iloc[mine])
    if not ids.is_unique:
        raise UserError(
            f"outcomes: {int(ids.duplicated().sum())} matched people have two outcome rows "
            "(column person_id); rerun the outcomes stage"
        )
    row = ids.get_indexer(base["person_id"])
    lost = int((row < 0).sum())
    if lost:
        raise UserError(
            f"outcomes: {lost} matched people have no outcome row (column person_id); rerun "
            "the outcomes stage on the same cohort"
        )
    data = pd.concat(
        [base.reset_index(drop=True), outcomes.iloc[mine[row]][keep[1:]].reset_index(drop=True)],
        axis=1,
    )
    complete = (
        data["followup_complete"].fillna(False).astype(bool).to_numpy()
        if "followup_complete" in data
        else np.ones(len(data), dtype=bool)
    )
    n_incomplete = int((~complete).sum())
    if n_incomplete:
        data = _drop_incomplete(data, complete, pairs)
    data = data.reset_index(drop=True)
    data.attrs["n_incomplete"] = n_incomplete
    return data


def _drop_incomplete(data: pd.DataFrame, complete: np.ndarray, pairs) -> pd.DataFrame:
    ok_ids = set(data.loc[complete, "person_id"])
    if pairs is None or pairs.empty:  # IPW (or no links): drop the people, keep the weights
        return data[complete]
    links = pairs[pairs["treated_id"].isin(ok_ids) & pairs["comparator_id"].isin(ok_ids)]
    k = links.groupby("treated_id")["comparator_id"].transform("size")
    share = (1.0 / k).groupby(links["comparator_id"]).sum()
    treated = set(links["treated_id"])
    keep = data["person_id"].isin(treated | set(share.index)).to_numpy()
    out = data[keep].copy()
    comp = ~out["treated"].astype(bool)
    w = out.loc[comp, "person_id"].map(share).astype(float)
    out.loc[comp, "weights"] = w * (len(w) / w.sum()) if len(w) else w
    return out


# ----------------------------------------------------------------------------- estimate
@dataclass
class Headline:
    """The three Justice Data Lab measures of one specification, with what made them."""

    spec: AnalysisSpec
    sample: pd.DataFrame = field(repr=False)
    rate: Effect
    frequency: Effect
    time_to_first: Effect | None = None
    design: Design | None = field(default=None, repr=False)

    @property
    def n_incomplete(self) -> int:
        return int(self.sample.attrs.get("n_incomplete", 0))

    def effects(self) -> dict[str, Effect]:
        out = {"rate": self.rate, "frequency": self.frequency}
        if self.time_to_first is not None:
            out["time_to_first"] = self.time_to_first
        return out

    def table(self) -> pd.DataFrame:
        """The JDL headline table (one row per measure)."""
        return jdl.headline_table(self.effects())

    def numbers(self, power: float) -> Numbers:
        return jdl.headline_numbers(
            self.rate,
            self.frequency,
            self.time_to_first,
            self.sample,
            power=power,
            followup_days=self.spec.followup_days,
        )


def se_type(spec: AnalysisSpec) -> str:
    """The ATT's standard errors for a design: cluster-robust by matched set without
    replacement; ``effects.se_with_replacement`` with replacement; HC0/HC3 for IPW."""
    if spec.method == "ipw":
        return "HC3" if spec.se_with_replacement == "hc3" else "HC0"
    if not spec.replace:
        return "cluster"
    return {"twoway": "twoway", "hc3": "HC3", "hc0": "HC0"}[spec.se_with_replacement]


def sample_object(sample: pd.DataFrame, spec: AnalysisSpec, pairs) -> MatchedSample:
    """The analysis sample wrapped for the ATT functions (replacement and the pairs)."""
    replace = bool(spec.replace or spec.method == "ipw")
    pairs = pairs if pairs is not None and len(pairs) else None
    return matched_sample(sample, "treated", replace=replace, pairs=pairs)


def estimate(sample: pd.DataFrame, spec: AnalysisSpec, pairs=None) -> Headline:
    """The rate, frequency and time-to-first-re-offence effects on the analysis sample, at
    the plan's level (``spec.alpha``) with the design's standard errors (:func:`se_type`)."""
    m = sample_object(sample, spec, pairs)
    covariates = list(spec.effect_covariates)
    absent = [c for c in covariates if c not in sample.columns]
    if absent:
        raise UserError(
            f"config setting effects.covariates: {absent[0]} is not a cohort column; use "
            "cohort columns (docs/stages.md)"
        )
    options = {"covariates": covariates, "alpha": spec.alpha, "se": se_type(spec)}
    rate = att(m, "reoffended", kind="binary", **options)
    freq = att(m, "n_reoffences", kind="count", **options)
    try:
        ttf = time_to_first(m, alpha=spec.alpha, se=options["se"])
    except ValueError:  # a group without re-offenders
        ttf = None
    return Headline(spec=spec, sample=sample, rate=rate, frequency=freq, time_to_first=ttf)


def headline(
    cohort: pd.DataFrame,
    outcomes: pd.DataFrame,
    spec: AnalysisSpec,
    propensity=None,
    preparations: Preparations | None = None,
) -> Headline:
    """Design -> analysis sample -> estimate: the one path every consumer runs.
    ``preparations``: shared by the consumers that run it many times on the same people
    (:class:`Preparations`; the same result, less work)."""
    d = design(cohort.reset_index(drop=True), spec.match, propensity, preparations)
    chosen = spec.with_design(d.spec)
    pairs = d.pairs
    sample = analysis_sample(d.result.data, outcomes, pairs)
    out = estimate(sample, chosen, pairs)
    out.design = d
    return out


__all__ = [
    "Design",
    "Headline",
    "analysis_sample",
    "describe_change",
    "design",
    "estimate",
    "fit",
    "headline",
    "pair_ids",
    "revise",
]


def rule_inputs(job) -> tuple[AnalysisSpec, pd.DataFrame, pd.DataFrame]:
    """What every rule after matching starts from, read through a rule's job: the chosen
    specification (the analysis plan with the design the ``matching`` rule chose), the
    analysis sample (:func:`analysis_sample`) and the pairs of the match."""
    spec = job.settings(AnalysisSpec).with_design(MatchSpec.from_dict(job.read_json("design")))
    pairs = job.read("pairs")
    sample = analysis_sample(job.read("matched"), job.read("outcomes"), pairs)
    return spec, sample, pairs
