"""Tests of mydirection.effects against hand computations and independent sandwiches."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from mydirection.effects import (
    Effect,
    att,
    headline_table,
    matched_sample,
    people_needed,
    typical_100_sentence,
)


def _matched(n_sets=40, ratio=2, seed=1, effect=0.1):
    """Matched sets of one treated and ``ratio`` controls; control weights 1/ratio."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sets):
        x = rng.normal()
        rows.append({"subclass": s, "treated": True, "weights": 1.0, "x": x})
        for _ in range(ratio):
            rows.append({"subclass": s, "treated": False, "weights": 1.0 / ratio, "x": x})
    df = pd.DataFrame(rows)
    p = 1 / (1 + np.exp(-(-0.5 + 0.8 * df["x"] + effect * df["treated"])))
    df["reoffended"] = (rng.random(len(df)) < p).astype(int)
    df["n_reoffences"] = rng.poisson(np.exp(0.2 + 0.5 * df["x"] - 0.3 * df["treated"]))
    df["days"] = rng.normal(200, 50, len(df))
    df["sex"] = rng.choice(["female", "male"], len(df))
    return df


def _independent_sandwich(X, y, w, clusters):
    """WLS + CR1 sandwich written out row by row (independent of the library's code)."""
    n, k = X.shape
    bread = np.zeros((k, k))
    xty = np.zeros(k)
    for i in range(n):
        bread += w[i] * np.outer(X[i], X[i])
        xty += w[i] * X[i] * y[i]
    beta = np.linalg.solve(bread, xty)
    meat = np.zeros((k, k))
    groups = {}
    for i in range(n):
        u = w[i] * X[i] * (y[i] - X[i] @ beta)
        if clusters is None:
            meat += np.outer(u, u)
        else:
            groups[clusters[i]] = groups.get(clusters[i], 0) + u
    if clusters is not None:
        for u in groups.values():
            meat += np.outer(u, u)
        g = len(groups)
        meat *= g / (g - 1) * (n - 1) / (n - k)
    binv = np.linalg.inv(bread)
    return beta, binv @ meat @ binv


def test_weighted_means_match_hand_computation():
    df = pd.DataFrame(
        {
            "treated": [1, 1, 1, 0, 0, 0, 0],
            "weights": [1, 1, 1, 0.5, 0.5, 1.5, 0.5],
            "subclass": [1, 2, 3, 1, 1, 2, 3],
            "reoffended": [1, 0, 1, 1, 0, 0, 1],
        }
    )
    e = att(matched_sample(df), "reoffended", kind="binary")
    # treated: (1+0+1)/3; control: (0.5*1 + 0.5*0 + 1.5*0 + 0.5*1)/3 = 1/3
    assert e.mean_treated == pytest.approx(2 / 3, abs=1e-12)
    assert e.mean_control == pytest.approx(1 / 3, abs=1e-12)
    assert e.estimate == pytest.approx(1 / 3, abs=1e-12)
    assert e.ratio == pytest.approx(2.0, abs=1e-10)
    assert (e.n_treated, e.n_control) == (3, 4)


@pytest.mark.parametrize("replace", [False, True])
def test_se_matches_independent_sandwich(replace):
    df = _matched()
    e = att(matched_sample(df, replace=replace), "reoffended", kind="binary")
    X = np.column_stack([np.ones(len(df)), df["treated"].astype(float)])
    beta, cov = _independent_sandwich(
        X,
        df["reoffended"].to_numpy(float),
        df["weights"].to_numpy(float),
        None if replace else df["subclass"].to_numpy(),
    )
    assert e.estimate == pytest.approx(beta[1], abs=1e-8)
    assert e.se == pytest.approx(math.sqrt(cov[1, 1]), abs=1e-8)
    assert e.se_type == ("HC0" if replace else "cluster")
    assert e.ci_low == pytest.approx(beta[1] - 1.959963984540054 * e.se, abs=1e-8)


def test_cluster_se_agrees_with_statsmodels():
    df = _matched(seed=3)
    e = att(matched_sample(df), "n_reoffences", kind="count")
    X = sm.add_constant(df["treated"].astype(float))
    fit = sm.WLS(df["n_reoffences"], X, weights=df["weights"]).fit(
        cov_type="cluster", cov_kwds={"groups": df["subclass"]}
    )
    assert e.estimate == pytest.approx(fit.params["treated"], abs=1e-10)
    assert e.se == pytest.approx(fit.bse["treated"], abs=1e-8)
    assert e.p_value == pytest.approx(fit.pvalues["treated"], abs=1e-8)


def test_covariate_adjusted_is_gcomputation_att_with_same_sandwich():
    df = _matched(seed=5)
    df["x2"] = df["x"] + np.random.default_rng(0).normal(size=len(df))
    e = att(matched_sample(df), "days", kind="continuous", covariates=["x2", "sex"])
    # independent g-computation: fit outcome ~ t * (x2 + male) by WLS, average the
    # predicted difference over the treated (weighted)
    male = (df["sex"] == "male").astype(float)
    t = df["treated"].astype(float)
    X = np.column_stack([np.ones(len(df)), t, df["x2"], df["x2"] * t, male, male * t])
    w = df["weights"].to_numpy(float)
    beta, _ = _independent_sandwich(X, df["days"].to_numpy(float), w, None)
    tr = t.to_numpy() == 1
    diff = beta[1] + beta[3] * df["x2"].to_numpy() + beta[5] * male.to_numpy()
    assert e.estimate == pytest.approx(np.average(diff[tr], weights=w[tr]), abs=1e-8)
    # SE: the same sandwich on the centred design
    xc = df["x2"] - np.average(df["x2"][tr], weights=w[tr])
    mc = male - np.average(male[tr], weights=w[tr])
    Xc = np.column_stack([np.ones(len(df)), t, xc, xc * t, mc, mc * t])
    _, cov = _independent_sandwich(Xc, df["days"].to_numpy(float), w, df["subclass"].to_numpy())
    assert e.se == pytest.approx(math.sqrt(cov[1, 1]), abs=1e-8)


def test_risk_ratio_hc0_matches_closed_form():
    df = _matched(seed=7)
    e = att(matched_sample(df, replace=True), "reoffended", kind="binary")
    y, w, t = df["reoffended"].to_numpy(float), df["weights"].to_numpy(float), df["treated"]
    var = 0.0
    for grp in (t, ~t):
        mu = np.average(y[grp], weights=w[grp])
        var += np.sum((w[grp] * (y[grp] - mu)) ** 2) / np.sum(w[grp] * mu) ** 2
    rr = e.mean_treated / e.mean_control
    assert e.ratio == pytest.approx(rr, rel=1e-10)
    z = 1.959963984540054
    assert e.ratio_ci_low == pytest.approx(rr * math.exp(-z * math.sqrt(var)), rel=1e-8)
    assert e.ratio_ci_high == pytest.approx(rr * math.exp(z * math.sqrt(var)), rel=1e-8)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.SpecificationWarning")
def test_rate_ratio_cluster_matches_statsmodels_glm():
    df = _matched(seed=11)
    e = att(matched_sample(df), "n_reoffences", kind="count")
    X = sm.add_constant(df["treated"].astype(float))
    fit = sm.GLM(
        df["n_reoffences"], X, family=sm.families.Poisson(), var_weights=df["weights"]
    ).fit(cov_type="cluster", cov_kwds={"groups": df["subclass"]}, tol=1e-12)
    assert math.log(e.ratio) == pytest.approx(fit.params["treated"], abs=1e-8)
    se = (math.log(e.ratio_ci_high) - math.log(e.ratio_ci_low)) / (2 * 1.959963984540054)
    assert se == pytest.approx(fit.bse["treated"], rel=1e-6)


def test_zero_weight_and_missing_outcome_rows_are_left_out():
    df = _matched(seed=2)
    base = att(matched_sample(df), "reoffended")
    extra = df.iloc[:3].copy()
    extra["weights"] = 0.0
    extra["subclass"] = 999
    more = df.iloc[:2].copy()
    more["reoffended"] = np.nan
    e = att(matched_sample(pd.concat([df, extra, more])), "reoffended")
    assert e.estimate == pytest.approx(base.estimate, abs=1e-12)
    assert e.se == pytest.approx(base.se, abs=1e-12)


def test_bad_kind_and_one_group_raise():
    df = _matched()
    with pytest.raises(ValueError):
        att(matched_sample(df), "reoffended", kind="rate")
    with pytest.raises(ValueError):
        att(matched_sample(df[df["treated"]]), "reoffended")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 1), min_size=6, max_size=30),
    st.integers(0, 2**16),
)
def test_estimate_is_difference_of_weighted_means(ys, seed):
    rng = np.random.default_rng(seed)
    n = len(ys)
    df = pd.DataFrame(
        {
            "treated": np.arange(n) % 2 == 0,
            "weights": rng.uniform(0.2, 2.0, n),
            "subclass": np.arange(n) // 2,
            "reoffended": ys,
        }
    )
    e = att(matched_sample(df), "reoffended")
    t = df["treated"]
    diff = np.average(df["reoffended"][t], weights=df["weights"][t]) - np.average(
        df["reoffended"][~t], weights=df["weights"][~t]
    )
    assert e.estimate == pytest.approx(diff, abs=1e-10)


def _effect(est, lo, hi, n=300, kind="binary"):
    se = (hi - lo) / (2 * 1.959963984540054)
    from scipy import stats

    p = 2 * stats.norm.sf(abs(est) / se)
    return Effect("reoffended", kind, est, se, lo, hi, p, n, n, 0.4, 0.4 - est, "cluster")


def test_people_needed_scales_with_inverse_square():
    e = _effect(-0.02, -0.06, 0.02)
    # z*se/|d| = 0.04/0.02 = 2 -> n * 4
    assert people_needed(e) == 1200
    # at n_needed the (scaled) interval just excludes zero
    se_new = e.se * math.sqrt(e.n_treated / people_needed(e))
    assert abs(e.estimate) / se_new >= 1.959963984540054 - 1e-9


def test_typical_100_sentence_reads_the_numbers():
    spans = typical_100_sentence(_effect(-0.02, -0.06, 0.02))
    assert "between 6 fewer and 2 more people committed a proven re-offence" in spans
    assert "1,200 people in the treatment group" in spans
    sig = typical_100_sentence(_effect(-0.08, -0.12, -0.04))
    assert "between 4 and 12 fewer people" in sig
    assert "statistically significant result" in sig
    freq = typical_100_sentence(_effect(0.3, 0.1, 0.5, kind="count"))
    assert "between 10 and 50 more proven re-offences" in freq
    zero = typical_100_sentence(_effect(0.0, -0.05, 0.05))
    assert "no sample size" in zero


def test_headline_table_layout():
    t = headline_table({"rate": _effect(-0.02, -0.06, 0.02)})
    assert list(t.columns[:12]) == [
        "measure", "label", "outcome", "kind", "n_treated", "n_comparison", "treated",
        "comparison", "difference", "se", "ci_low", "ci_high",
    ]  # fmt: skip
    assert not t.loc[0, "significant"]


# --------------------------------------------------------------------------- pipeline helpers


def test_ogrs3_band_edges():
    from mydirection.effects import ogrs3_band

    band = ogrs3_band(pd.Series([0, 49.9, 50, 74.99, 75, 89.9, 90, 100, np.nan]))
    assert list(band.astype(object).where(band.notna(), None)) == [
        "low", "low", "medium", "medium", "high", "high", "very_high", "very_high", None,
    ]  # fmt: skip
    assert list(band.cat.categories) == ["low", "medium", "high", "very_high"]


def test_subgroups_follow_the_treated_member_and_respect_minimum():
    from mydirection.effects import subgroup_effects

    df = _matched(n_sets=60, seed=4)
    # a control's own sex differs from its treated person's: the set follows the treated
    treated_sex = np.where(np.arange(60) < 40, "female", "male")
    df["sex"] = np.where(df["treated"], treated_sex[df["subclass"]], "male")
    table = subgroup_effects(matched_sample(df), "reoffended", ["sex"], min_treated=30)
    f = table.set_index("level").loc["female"]
    assert (f["n_treated"], f["n_control"]) == (40, 80)
    assert bool(f["shown"])
    sub = df[df["subclass"] < 40]
    assert f["estimate"] == pytest.approx(att(matched_sample(sub), "reoffended").estimate)
    m = table.set_index("level").loc["male"]
    assert (m["n_treated"], m["n_control"]) == (20, 40) and not m["shown"]
    assert np.isnan(m["estimate"])
    # with replacement each person counts in their own level
    own = subgroup_effects(
        matched_sample(df, replace=True), "reoffended", ["sex"], min_treated=1, min_control=1
    )
    assert own.set_index("level").loc["female", "n_control"] == 0


def _outcomes_for(matched):
    return pd.DataFrame(
        {
            "person_id": matched["person_id"],
            "reoffended": matched["reoffended"],
            "n_reoffences": matched["n_reoffences"],
            "days_to_first": 365,
            "event": matched["reoffended"],
            "followup_complete": True,
        }
    )


def test_merge_outcomes_checks_and_incomplete_followup():
    from mydirection.effects import merge_outcomes
    from mydirection.errors import UserError

    df = _matched(n_sets=10)
    df["person_id"] = [f"p{i:03d}" for i in range(len(df))]
    df["index_date"] = pd.Timestamp("2018-03-01")
    out = _outcomes_for(df)
    out.loc[[0, 3], "followup_complete"] = False
    merged = merge_outcomes(df.drop(columns=["reoffended", "n_reoffences"]), out)
    assert merged.attrs["n_incomplete"] == 2
    assert merged["reoffended"].isna().sum() == 2
    with pytest.raises(UserError, match=r"2 matched people have no row .*rows 0, 1"):
        merge_outcomes(df, out.iloc[2:])
    with pytest.raises(UserError, match="column event"):
        merge_outcomes(df, out.drop(columns="event"))
    with pytest.raises(UserError, match="duplicated"):
        merge_outcomes(df, pd.concat([out, out.iloc[:1]]))


def test_scripts_write_every_output(tmp_path):
    """The four entry scripts on hand-made matched data, outcomes and convictions."""
    import json
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    import yaml

    class Named(list):
        def __init__(self, d):
            super().__init__(d.values())
            self.__dict__.update(d)

    rng = np.random.default_rng(8)
    df = _matched(n_sets=200, seed=8)
    df["person_id"] = [f"p{i:04d}" for i in range(len(df))]
    df["index_date"] = pd.Timestamp("2018-01-01") + pd.to_timedelta(
        rng.integers(0, 365, len(df)), unit="D"
    )
    df["sentence_type"] = rng.choice(["community_order", "licence"], len(df))
    df["ogrs3_2yr"] = rng.uniform(0, 100, len(df))
    out = _outcomes_for(df)
    out["days_to_first"] = np.where(out["event"] == 1, rng.integers(1, 366, len(df)), 365)
    conv = pd.DataFrame(
        {
            "person_id": rng.choice(df["person_id"], 900),
            "offence_date": pd.Timestamp("2017-01-01")
            + pd.to_timedelta(rng.integers(0, 900, 900), unit="D"),
            "offence_group": rng.choice(["theft", "breach"], 900),
        }
    )
    paths = {n: tmp_path / f"{n}.parquet" for n in ("matched", "outcomes", "convictions")}
    df.drop(columns=["reoffended", "n_reoffences", "days"]).to_parquet(paths["matched"])
    out.to_parquet(paths["outcomes"])
    conv.to_parquet(paths["convictions"])
    cfg = yaml.safe_load(Path("config/config.yaml").read_text())["effects"]
    o = tmp_path / "out"
    mo = {"matched": str(paths["matched"]), "outcomes": str(paths["outcomes"])}
    jobs = {
        "effects": (mo, ["headline.parquet", "effects.json"], {"covariates": [], "replace": False, "followup_days": 365}),
        "survival": (mo, ["km.parquet", "cox.parquet", "km.png", "survival.json"], {"min_reoffenders": 30, "ties": "efron", "km_at_risk_days": cfg["km_at_risk_days"], "replace": False}),
        "event_study": ({"matched": str(paths["matched"]), "convictions": str(paths["convictions"])}, ["event_study.parquet", "did.parquet", "event_study.png", "event_study.json"], {"panel": cfg["panel"], "replace": False}),
        "subgroups": (mo, ["subgroups.parquet", "subgroups_forest.png", "subgroups.json"], {"subgroups": cfg["subgroups"], "min_treated": 30, "min_comparison": 30, "ogrs3_band": cfg["ogrs3_band"], "replace": False}),
    }  # fmt: skip
    names = {
        "effects": ["headline", "numbers"],
        "survival": ["km", "cox", "figure", "numbers"],
        "event_study": ["event_study", "did", "figure", "numbers"],
        "subgroups": ["table", "figure", "numbers"],
    }
    for rule, (inputs, outputs, params) in jobs.items():
        output = {k: str(o / f) for k, f in zip(names[rule], outputs, strict=True)}
        sm = SimpleNamespace(
            input=Named(inputs),
            output=Named(output),
            params=SimpleNamespace(**params),
            log=[str(tmp_path / f"{rule}.log")],
            rule=rule,
        )
        runpy.run_path(f"scripts/{rule}.py", init_globals={"snakemake": sm}, run_name="__main__")
        for path in output.values():
            assert Path(path).stat().st_size > 0, path
    nums = json.loads((o / "effects.json").read_text())["numbers"]
    for key in [
        "reoffending.rate_treated", "reoffending.rate_comparison", "reoffending.rate_difference",
        "reoffending.rate_difference_ci_low", "reoffending.rate_difference_ci_high",
        "reoffending.rate_difference_p", "reoffending.risk_ratio", "reoffending.frequency_difference",
        "reoffending.n_treated", "reoffending.n_comparison", "reoffending.n_reoffenders_treated",
        "reoffending.typical_100_sentence",
    ]:  # fmt: skip
        assert key in nums
    assert nums["reoffending.rate_difference"]["kind"] == "pp"
    assert nums["reoffending.n_treated"]["value"] == 200
    surv = json.loads((o / "survival.json").read_text())["numbers"]
    assert surv["survival.headline_ok"]["value"] in ("yes", "no")
    panel = json.loads((o / "event_study.json").read_text())["numbers"]
    assert "panel.did" in panel and "panel.did_ci_low" in panel
    headline = pd.read_parquet(o / "headline.parquet")
    assert list(headline["measure"]) == ["rate", "frequency", "time_to_first"]


def test_effects_script_bad_covariate_is_one_clear_error(tmp_path):
    import runpy
    from types import SimpleNamespace

    df = _matched(n_sets=20)
    df["person_id"] = [f"p{i:03d}" for i in range(len(df))]
    df["index_date"] = pd.Timestamp("2018-03-01")
    df.drop(columns=["reoffended", "n_reoffences"]).to_parquet(tmp_path / "m.parquet")
    _outcomes_for(df).to_parquet(tmp_path / "o.parquet")

    class Named(list):
        def __init__(self, d):
            super().__init__(d.values())
            self.__dict__.update(d)

    log = tmp_path / "effects.log"
    sm = SimpleNamespace(
        input=Named({"matched": str(tmp_path / "m.parquet"), "outcomes": str(tmp_path / "o.parquet")}),
        output=Named({"headline": str(tmp_path / "h.parquet"), "numbers": str(tmp_path / "n.json")}),
        params=SimpleNamespace(covariates=["shoe_size"], replace=False, followup_days=365),
        log=[str(log)],
        rule="effects",
    )  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path("scripts/effects.py", init_globals={"snakemake": sm}, run_name="__main__")
    assert exit_.value.code == 1
    text = log.read_text()
    assert "config effects.covariates: shoe_size is not a column" in text
    assert "Traceback" not in text
    assert not (tmp_path / "h.parquet").exists()


# --------------------------------------------------------------------------- acceptance

COVARIATES = [
    "age", "sex", "ethnicity", "sentence_type", "index_offence_group", "rosh", "ogrs3_1yr",
    "ogrs3_2yr", "ogrs3_missing", "n_previous_offences", "n_previous_custody",
    "offences_last_12m", "copas_rate", "age_first_offence", "needs_missing",
    "need_accommodation", "need_ete", "need_finance", "need_relationships", "need_lifestyle",
    "need_drugs", "need_alcohol", "need_thinking", "need_attitudes",
]  # fmt: skip


def _synthetic_att(hazard_ratio: float, seed: int = 20180101):
    """The library chain on synthetic extracts: generate, clean, cohort, outcomes, match
    (1:1 nearest neighbour on the logit propensity score, caliper 0.2), ATT."""
    import tempfile
    from pathlib import Path

    import yaml

    from mydirection import synthetic
    from mydirection.clean import clean_extracts
    from mydirection.cohort import CohortSettings, build_cohort
    from mydirection.effects import merge_outcomes
    from mydirection.matching import match
    from mydirection.outcomes import proven_reoffending
    from mydirection.simulation import _write_csvs

    cfg = yaml.safe_load(Path("config/config.yaml").read_text())
    base = synthetic.load_config("config/synthetic.yaml")
    gen = synthetic.merge_config(
        base,
        {
            "n_treated": 3000,
            "n_comparator_pool": 30000,
            "true_effect": {"hazard_ratio": hazard_ratio},
        },
    )
    syn = synthetic.generate(gen, seed)
    end = cfg["extract_end_date"]
    with tempfile.TemporaryDirectory() as tmp:
        tables, _ = clean_extracts(_write_csvs(syn.extracts, tmp), end, b"test-key")
    f, w = cfg["outcomes"]["followup_days"], cfg["outcomes"]["waiting_days"]
    settings = CohortSettings.from_config(
        dict(cfg["cohort"]), followup_days=f, waiting_days=w, extract_end_date=end, seed=seed
    )
    names = ("people", "supervision", "assessments", "convictions", "enrolments")
    cohort = build_cohort(**{n: tables[n] for n in names}, settings=settings).cohort
    outcomes = proven_reoffending(cohort, tables["convictions"], f, w, end)
    m = match(cohort, "treated", COVARIATES, distance="logit_ps", caliper=0.2)
    m.data = merge_outcomes(m.data.reset_index(drop=True), outcomes)
    # the truth of the index-date design in use (the generator plants both)
    return att(m, "reoffended", kind="binary"), syn.truth, cfg["cohort"]["index_date"]


@pytest.mark.slow
def test_acceptance_planted_effect_is_covered():
    # Seed: the project's master seed. With the generator's default (engagement drives
    # selection but not re-offending, so the design is identified from the recorded
    # covariates), (estimate - sample ATT) / SE over seeds 1-6 was 0.22, -0.44, -0.94, 1.11,
    # 1.48, -0.70 at hazard ratio 0.6 and all six null runs were non-significant.
    e, truth, design = _synthetic_att(0.6)
    sample_att = truth[f"sample_att_{design}"]
    assert sample_att < -0.05  # the planted effect is large enough to detect
    assert e.n_treated >= 2900
    assert e.ci_low <= sample_att <= e.ci_high
    assert e.p_value < 0.05


@pytest.mark.slow
def test_acceptance_no_effect_is_not_significant():
    e, truth, design = _synthetic_att(1.0)
    assert truth[f"sample_att_{design}"] == 0.0
    assert e.ci_low <= 0.0 <= e.ci_high
    assert not e.significant
