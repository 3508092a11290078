"""Simulation study: summary arithmetic by hand; a tiny in-process study through the headline's
own path; batches that do not change the results."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mydirection import simulation as sim


def three_reps() -> pd.DataFrame:
    # truth -0.05 in every replicate; three matched estimates and three naive ones
    return pd.DataFrame(
        {
            "rep": [0, 1, 2, 0, 1, 2],
            "scenario": ["measured"] * 6,
            "method": ["headline"] * 3 + ["naive"] * 3,
            "truth": [-0.05] * 6,
            "estimate": [-0.07, -0.02, -0.06, 0.01, 0.03, -0.01],
            "se": [0.02, 0.02, 0.04, 0.01, 0.01, 0.01],
            "ci_low": [-0.11, -0.06, -0.14, -0.01, 0.01, -0.03],
            "ci_high": [-0.03, 0.02, 0.02, 0.03, 0.05, 0.01],
            "p_value": [0.0005, 0.32, 0.13, 0.32, 0.003, 0.32],
            "n_treated": 100,
            "n_comparators": 100,
            "error": "",
        }
    )


def test_summary_by_hand():
    s = sim.summarise(three_reps(), alpha=0.05).set_index("method")
    m = s.loc["headline"]
    # errors: -0.02, +0.03, -0.01
    assert m["n_reps"] == 3 and m["n_failed"] == 0
    assert m["bias"] == pytest.approx(0.0 / 3)
    assert m["mean_estimate"] == pytest.approx(-0.05)
    assert m["rmse"] == pytest.approx(math.sqrt((0.0004 + 0.0009 + 0.0001) / 3))
    # CIs: [-.11,-.03] yes, [-.06,.02] yes, [-.14,.02] yes
    assert m["coverage"] == pytest.approx(1.0)
    assert m["rejection_rate"] == pytest.approx(1 / 3)
    assert m["empirical_se"] == pytest.approx(np.std([-0.07, -0.02, -0.06], ddof=1))
    assert m["model_se"] == pytest.approx(math.sqrt((0.0004 + 0.0004 + 0.0016) / 3))
    n = s.loc["naive"]
    # errors: .06, .08, .04 -> bias .06, rmse sqrt((.0036+.0064+.0016)/3)
    assert n["bias"] == pytest.approx(0.06)
    assert n["rmse"] == pytest.approx(math.sqrt(0.0116 / 3))
    assert n["coverage"] == pytest.approx(0.0)
    assert n["coverage_mcse"] == pytest.approx(0.0)
    assert n["bias_mcse"] == pytest.approx(0.02 / math.sqrt(3))


def test_failed_replicates_counted_not_used():
    reps = three_reps()
    reps.loc[1, ["estimate", "se", "ci_low", "ci_high", "p_value"]] = np.nan
    m = sim.summarise(reps, alpha=0.05).set_index("method").loc["headline"]
    assert (m["n_reps"], m["n_failed"]) == (2, 1)
    assert m["bias"] == pytest.approx((-0.02 - 0.01) / 2)
    assert m["coverage_mcse"] == pytest.approx(0.0)


def test_missing_columns_named():
    with pytest.raises(ValueError, match="se"):
        sim.summarise(three_reps().drop(columns="se"), alpha=0.05)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=-1, max_value=1), min_size=2, max_size=30))
def test_rmse_decomposes_into_bias_and_variance(errors):
    e = np.array(errors)
    reps = pd.DataFrame(
        {
            "rep": range(len(e)),
            "scenario": "measured",
            "method": "headline",
            "truth": 0.0,
            "estimate": e,
            "se": 0.1,
            "ci_low": e - 0.196,
            "ci_high": e + 0.196,
            "p_value": 0.5,
            "n_treated": 1,
            "n_comparators": 1,
            "error": "",
        }
    )
    s = sim.summarise(reps, alpha=0.05).iloc[0]
    r = len(e)
    # RMSE^2 = bias^2 + (R-1)/R * empirical variance
    assert s["rmse"] ** 2 == pytest.approx(
        s["bias"] ** 2 + (r - 1) / r * s["empirical_se"] ** 2, abs=1e-12
    )
    assert s["coverage"] == pytest.approx(np.mean(np.abs(e) <= 0.196))


# ------------------------------------------------------------------ tiny in-process study
ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_treated": 40, "n_comparator_pool": 400, "true_effect": {"hazard_ratio": 0.7}}


def _config(**simulation):
    from mydirection.settings import load_config

    return load_config(
        ROOT / "config" / "config.yaml",
        {"simulation": {"generator": TINY, "replicates": 3, **simulation}, "seed": 7},
    )


def _settings(config):
    from mydirection.settings import SimulationSettings

    return SimulationSettings.from_config(config)


def test_replicate_seeds_distinct_and_stable():
    seeds = [sim.replicate_seed(20180101, r) for r in range(50)]
    assert len(set(seeds)) == 50
    assert seeds == [sim.replicate_seed(20180101, r) for r in range(50)]


def test_generator_config_scenarios():
    base = {"n_treated": 150, "hidden_confounding": {"strength": 0.3}, "mess": {"x": 1}}
    s = _settings(_config())
    m = sim.generator_config(base, s, "measured")
    h = sim.generator_config(base, s, "hidden")
    z = sim.generator_config(base, s, "no_effect")
    assert m["hidden_confounding"]["strength"] == 0.3  # the base's own setting is kept
    assert h["hidden_confounding"]["strength"] == s.hidden_confounding_strength
    assert m["n_treated"] == 40 and m["true_effect"]["hazard_ratio"] == 0.7
    assert z["true_effect"]["hazard_ratio"] == 1.0
    assert m["mess"] == {"x": 1}
    with pytest.raises(ValueError, match="unknown scenario"):
        sim.generator_config(base, s, "other")


@pytest.fixture(scope="module")
def tiny_study():
    config = _config()
    return sim.run_batch(range(3), config, {}, _settings(config))


def test_tiny_study_rows_and_truth(tiny_study):
    reps = tiny_study
    assert list(reps.columns) == sim.REPLICATE_COLUMNS
    assert len(reps) == 3 * len(sim.SCENARIOS) * len(sim.METHODS)
    assert set(reps["method"]) == set(sim.METHODS) and set(reps["scenario"]) == set(sim.SCENARIOS)
    ok = reps.dropna(subset=["estimate"])
    assert len(ok) == len(reps), reps.loc[reps["estimate"].isna(), "error"].tolist()
    # the truth is a sample ATT of 0/1 outcomes: within [-1, 0] for a protective hazard ratio
    # given coupled potential outcomes (treatment can only remove offences), and zero in the
    # no-effect scenario
    assert ((reps["truth"] <= 0) & (reps["truth"] >= -1)).all()
    assert (reps.loc[reps["scenario"] == "no_effect", "truth"] == 0).all()
    assert (ok["ci_low"] <= ok["estimate"]).all() and (ok["estimate"] <= ok["ci_high"]).all()
    # the naive comparison uses every cohort member (as many as IPW, more than matching)
    naive = reps[reps["method"] == "naive"].set_index(["scenario", "rep"])["n_comparators"]
    head = reps[reps["method"] == "headline"].set_index(["scenario", "rep"])["n_comparators"]
    assert (naive >= head).all()


def test_tiny_study_summary_by_hand(tiny_study):
    s = sim.summarise(tiny_study, alpha=0.05).set_index(["scenario", "method"])
    for method in sim.METHODS:
        g = tiny_study[(tiny_study["method"] == method) & (tiny_study["scenario"] == "measured")]
        e = g["estimate"].to_numpy() - g["truth"].to_numpy()
        row = s.loc[("measured", method)]
        assert row["n_reps"] == 3
        assert row["bias"] == pytest.approx(e.sum() / 3)
        assert row["rmse"] == pytest.approx(math.sqrt((e**2).sum() / 3))
        inside = sum(
            lo <= t <= hi for lo, t, hi in zip(g["ci_low"], g["truth"], g["ci_high"], strict=True)
        )
        assert row["coverage"] == pytest.approx(inside / 3)
        assert row["rejection_rate"] == pytest.approx(sum(p < 0.05 for p in g["p_value"]) / 3)


def test_batches_do_not_change_the_rows(tiny_study):
    """Per-replicate seeds: one batch of every replicate and one job per replicate give the
    same table, byte for byte (the gathered table is what the summary reads)."""
    import io
    import warnings

    from mydirection.matching.propensity import QuasiSeparation

    config = _config()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        one_each = sim.sort_rows(
            pd.concat([sim.run_batch([r], config, {}, _settings(config)) for r in range(3)])
        )
    # quasi-separation in a replicate's propensity model is counted, not printed per fit
    assert not [w for w in caught if issubclass(w.category, QuasiSeparation)]

    def parquet(frame):
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue()

    assert parquet(one_each) == parquet(sim.sort_rows(tiny_study))
    assert sim.batch_reps(10, 3, 1) == [1, 4, 7]
    assert sorted(r for b in range(3) for r in sim.batch_reps(10, 3, b)) == list(range(10))


def test_each_scenario_alone_gives_the_rows_it_gives_after_another(tiny_study):
    """run_batch hands a replicate's next scenario the cleaned tables of the one before; a
    scenario run alone, cleaning every table, gives the same rows."""
    config = _config()
    alone = [sim.run_replicate(1, s, config, {}, _settings(config))[0] for s in sim.SCENARIOS]
    batch = tiny_study[tiny_study["rep"] == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(sim.sort_rows(pd.concat(alone)), batch)


def test_a_scenario_reuses_exactly_the_tables_whose_text_is_unchanged():
    from mydirection import synthetic

    config = _config()
    seed, end = sim.replicate_seed(7, 0), config["extract_end_date"]
    raw = {
        s: synthetic.generate(
            sim.generator_config({}, _settings(config), s), seed, extracts=sim.CHAIN_EXTRACTS
        ).extracts
        for s in ("measured", "hidden")
    }
    first = sim._clean(raw["measured"], end)
    later = sim._clean(raw["hidden"], end, first)
    alone = sim._clean(raw["hidden"], end)
    reused = {n for n in sim.CHAIN_EXTRACTS if later.read[n] is first.read[n]}
    # common random numbers: the scenarios share the people and supervision extracts; the
    # hidden trait changes who enrols, so the enrolments differ
    assert {"people", "supervision"} <= reused and "enrolments" not in reused
    for n in sim.CHAIN_EXTRACTS:
        assert (n in reused) == raw["hidden"][n].equals(raw["measured"][n]), n
        pd.testing.assert_frame_equal(later.read[n], alone.read[n])
    # one changed person: every table is checked against people, so none is reused
    people = raw["hidden"]["people"].copy()
    people.loc[0, "pnc_id"] = ""
    changed = sim._clean({**raw["hidden"], "people": people}, end, first)
    assert not any(changed.read[n] is first.read[n] for n in sim.CHAIN_EXTRACTS)


def test_simulation_figure_deterministic(tiny_study, tmp_path):
    config = _config()
    s = sim.summarise(tiny_study, alpha=0.05)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    sim.plot_simulation(tiny_study, s, a, _settings(config))
    sim.plot_simulation(tiny_study, s, b, _settings(config))
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 10_000


# ------------------------------------------------------------------------------- dry runs


def dry_run(*args: str) -> str:
    snakemake = Path(sys.executable).parent / "snakemake"
    proc = subprocess.run(
        [str(snakemake), "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    return proc.stdout + proc.stderr


@pytest.fixture
def four_replicates(tmp_path):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("simulation:\n  replicates: 4\n")
    return str(cfg)


def test_dry_run_batches_the_study(four_replicates):
    """Two batch jobs (the setting), each running its replicates in one process."""
    out = dry_run(
        "simulation",
        "--configfile",
        four_replicates,
        "--config",
        "simulation={replicates: 4, batches: 2}",
    )
    assert re.search(r"^simulation_batch\s+2$", out, re.M)
    assert re.search(r"^simulation\s+1$", out, re.M)


def test_dry_run_with_slurm_profile(four_replicates):
    """The workflow profile parses and the SLURM executor plans the batch jobs (the profile
    sets a larger batch count, so a cluster still fans out; a dry run submits nothing)."""
    out = dry_run(
        "simulation",
        "--workflow-profile",
        "profiles/slurm",
        "--executor",
        "slurm",
        "--configfile",
        four_replicates,
    )
    assert "Using workflow specific profile profiles/slurm" in out
    assert re.search(r"^simulation_batch\s+4$", out, re.M)
    assert "Group job" not in out
