"""One analysis, one code path: the headline rules, a specification equal to the headline,
the placebo and a simulation replicate all run pipeline.headline, and agree to the bit."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, run_script

from mydirection import pipeline
from mydirection.clean import clean_extracts, load_key
from mydirection.contract import EXTRACTS
from mydirection.settings import AnalysisSpec, MatchSpec, load_config
from mydirection.simulation import CHAIN_EXTRACTS, analyse_tables
from mydirection.synthetic import load_config as load_generator_config
from mydirection.synthetic import write_extracts

CONFIG = load_config(ROOT / "config" / "config.yaml")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default extracts through the cohort, outcomes, matching and reoffending scripts."""
    tmp = tmp_path_factory.mktemp("pipeline")
    raw = tmp / "raw"
    write_extracts(raw, load_generator_config(ROOT / "config" / "synthetic.yaml"), CONFIG["seed"])
    tables, _ = clean_extracts(
        {n: raw / f"{n}.csv" for n in EXTRACTS},
        CONFIG["extract_end_date"],
        load_key({}, synthetic=True),
    )
    clean = {}
    for name in CHAIN_EXTRACTS:
        clean[name] = tmp / "clean" / f"{name}.parquet"
        clean[name].parent.mkdir(parents=True, exist_ok=True)
        tables[name].to_parquet(clean[name], index=False)
    out = {k: tmp / f"{k}.{ext}" for k, ext in (
        ("cohort", "parquet"), ("attrition", "parquet"), ("fig_attrition", "png"),
        ("outcomes", "parquet"), ("propensity", "parquet"), ("matched", "parquet"),
        ("pairs", "parquet"), ("counts", "parquet"), ("design_steps", "parquet"),
        ("balance", "parquet"), ("design", "json"), ("fig_love_plot", "png"),
        ("fig_ps_overlap", "png"), ("fig_ecdf_worst", "png"), ("headline", "parquet"),
    )}  # fmt: skip
    num = {r: tmp / f"{r}.json" for r in ("cohort", "outcomes", "matching", "reoffending")}
    run_script("cohort.py", "cohort", clean,
               {**{k: out[k] for k in ("cohort", "attrition", "fig_attrition")}, "numbers": num["cohort"]})  # fmt: skip
    run_script("outcomes.py", "outcomes",
               {"cohort": out["cohort"], "convictions": clean["convictions"]},
               {"outcomes": out["outcomes"], "numbers": num["outcomes"]})  # fmt: skip
    match_out = ("propensity", "matched", "pairs", "counts", "design_steps", "balance", "design",
                 "fig_love_plot", "fig_ps_overlap", "fig_ecdf_worst")  # fmt: skip
    run_script("matching.py", "matching", {"cohort": out["cohort"]},
               {**{k: out[k] for k in match_out}, "numbers": num["matching"]})  # fmt: skip
    run_script("reoffending.py", "reoffending",
               {k: out[k] for k in ("matched", "pairs", "design", "outcomes")},
               {"headline": out["headline"], "numbers": num["reoffending"]})  # fmt: skip
    return tables, out, {r: json.loads(p.read_text()) for r, p in num.items()}


def _rate(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index("measure").loc["rate"]


def test_the_rule_path_and_the_in_memory_headline_agree_exactly(default_run):
    tables, out, _ = default_run
    headline = _rate(pd.read_parquet(out["headline"]))
    cohort = pd.read_parquet(out["cohort"])
    outcomes = pd.read_parquet(out["outcomes"])
    h = pipeline.headline(cohort, outcomes, AnalysisSpec.from_config(CONFIG))
    for field in ("estimate", "se", "ci_low", "ci_high", "p_value"):
        assert getattr(h.rate, field) == headline[{"estimate": "difference"}.get(field, field)]


def test_a_simulation_replicate_on_the_default_extracts_is_the_headline(default_run):
    """The simulation study validates the path the headline takes: the replicate's chain
    (clean -> cohort -> outcomes -> headline) on the default extracts gives the headline's
    estimate, standard error and interval to the last bit."""
    tables, out, _ = default_run
    rows = {r["method"]: r for r in analyse_tables(tables, CONFIG)}
    headline = _rate(pd.read_parquet(out["headline"]))
    r = rows["headline"]
    assert (r["estimate"], r["se"], r["ci_low"], r["ci_high"]) == (
        headline["difference"],
        headline["se"],
        headline["ci_low"],
        headline["ci_high"],
    )
    assert rows["event_start"]["estimate"] != r["estimate"]  # a different design, not a copy


def test_a_specification_equal_to_the_headline_reproduces_it(default_run):
    from mydirection.sensitivity import spec_curve as sc

    _, out, _ = default_run
    chosen = AnalysisSpec.from_config(CONFIG).with_design(
        MatchSpec.from_dict(json.loads(out["design"].read_text()))
    )
    cohort = pd.read_parquet(out["cohort"])
    outcomes = pd.read_parquet(out["outcomes"])
    choices = sc.grid_choices(CONFIG["sensitivity"]["spec_curve"], chosen)
    own = [name for name, c in choices.items() if c == sc.headline_choice(chosen)]
    assert len(own) == 1
    propensity = pd.read_parquet(out["propensity"])[["ps", "logit_ps"]]
    row = sc.run_spec(cohort, outcomes, chosen, choices[own[0]], own[0], propensity)
    headline = _rate(pd.read_parquet(out["headline"]))
    assert row["is_headline"]
    assert (row["estimate"], row["se"], row["ci_low"], row["ci_high"]) == (
        headline["difference"],
        headline["se"],
        headline["ci_low"],
        headline["ci_high"],
    )
    other = dataclasses.replace(chosen, followup_days=182)
    assert sc.headline_choice(other) != sc.headline_choice(chosen)


def test_the_design_is_revised_only_while_balance_fails(default_run):
    _, out, numbers = default_run
    steps = pd.read_parquet(out["design_steps"])
    assert steps["chosen"].sum() == 1
    chosen = steps[steps["chosen"]].iloc[0]
    earlier = steps[steps["step"] < chosen["step"]]
    assert not earlier["balance_ok"].any()  # every earlier design failed the criterion
    if chosen["balance_ok"]:
        assert chosen["step"] == steps["step"].max()  # nothing tried after the first balanced
    else:  # none balanced: the smallest largest |SMD| is kept
        assert chosen["max_abs_smd_after"] == steps["max_abs_smd_after"].min()
    n = numbers["matching"]["numbers"]
    assert n["matching.balance_ok"]["value"] == (
        "achieved" if chosen["balance_ok"] else "not achieved"
    )
    assert "outcomes" not in json.dumps(numbers["matching"]["inputs"])  # outcome-blind


def test_who_is_analysed_is_decided_once(default_run):
    """Incomplete follow-up: the analysis sample leaves people out with their matched set,
    for every consumer (today's merge_outcomes kept them in power and the bounds)."""
    _, out, _ = default_run
    matched = pd.read_parquet(out["matched"])
    outcomes = pd.read_parquet(out["outcomes"])
    pairs = pd.read_parquet(out["pairs"])
    complete = pipeline.analysis_sample(matched, outcomes, pairs)
    assert complete.attrs["n_incomplete"] == 0
    lost = outcomes.copy()
    treated = matched.loc[matched["treated"], "person_id"].iloc[:3]
    lost.loc[lost["person_id"].isin(treated), "followup_complete"] = False
    sample = pipeline.analysis_sample(matched, lost, pairs)
    assert sample.attrs["n_incomplete"] == 3
    assert not sample["person_id"].isin(treated).any()
    if len(pairs):  # their comparators go too, unless they serve another participant
        partners = pairs.loc[pairs["treated_id"].isin(treated), "comparator_id"]
        others = pairs.loc[~pairs["treated_id"].isin(treated), "comparator_id"]
        gone = set(partners) - set(others)
        assert not sample["person_id"].isin(gone).any()
    assert np.isclose(sample.loc[~sample["treated"], "weights"].sum(), (~sample["treated"]).sum())


def test_a_plan_whose_propensity_model_cannot_be_fitted_stops_with_one_message(default_run):
    """Perfect separation (a covariate that predicts enrolment exactly, as in a tiny pilot)
    is the user's to resolve: a UserError naming the fix, not a traceback."""
    from mydirection.errors import UserError

    _, out, _ = default_run
    cohort = pd.read_parquet(out["cohort"]).reset_index(drop=True)
    cohort["age"] = np.where(cohort["treated"], 70.0, 30.0) + np.arange(len(cohort)) * 1e-6
    spec = AnalysisSpec.from_config(CONFIG).match
    with pytest.raises(UserError, match=r"matching \(\d+ cohort members\): .*separation.*remove"):
        pipeline.design(cohort, spec)
