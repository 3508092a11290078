"""Simulation study: summary arithmetic by hand; a tiny in-process replicate run."""

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
            "method": ["matched"] * 3 + ["naive"] * 3,
            "truth": [-0.05] * 6,
            "estimate": [-0.07, -0.02, -0.06, 0.01, 0.03, -0.01],
            "se": [0.02, 0.02, 0.04, 0.01, 0.01, 0.01],
            "ci_low": [-0.11, -0.06, -0.14, -0.01, 0.01, -0.03],
            "ci_high": [-0.03, 0.02, 0.02, 0.03, 0.05, 0.01],
            "p_value": [0.0005, 0.32, 0.13, 0.32, 0.003, 0.32],
            "n_treated": 100,
            "n_control": 100,
        }
    )


def test_summary_by_hand():
    s = sim.summarise(three_reps()).set_index("method")
    m = s.loc["matched"]
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
    m = sim.summarise(reps).set_index("method").loc["matched"]
    assert (m["n_reps"], m["n_failed"]) == (2, 1)
    assert m["bias"] == pytest.approx((-0.02 - 0.01) / 2)
    assert m["coverage_mcse"] == pytest.approx(0.0)


def test_missing_columns_named():
    with pytest.raises(ValueError, match="se"):
        sim.summarise(three_reps().drop(columns="se"))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=-1, max_value=1), min_size=2, max_size=30))
def test_rmse_decomposes_into_bias_and_variance(errors):
    e = np.array(errors)
    reps = pd.DataFrame(
        {
            "rep": range(len(e)),
            "scenario": "measured",
            "method": "matched",
            "truth": 0.0,
            "estimate": e,
            "se": 0.1,
            "ci_low": e - 0.196,
            "ci_high": e + 0.196,
            "p_value": 0.5,
            "n_treated": 1,
            "n_control": 1,
        }
    )
    s = sim.summarise(reps).iloc[0]
    r = len(e)
    # RMSE^2 = bias^2 + (R-1)/R * empirical variance
    assert s["rmse"] ** 2 == pytest.approx(
        s["bias"] ** 2 + (r - 1) / r * s["empirical_se"] ** 2, abs=1e-12
    )
    assert s["coverage"] == pytest.approx(np.mean(np.abs(e) <= 0.196))


# ------------------------------------------------------------------ tiny in-process study

COVARIATES = [
    "age",
    "sex",
    "sentence_type",
    "ogrs3_2yr",
    "ogrs3_missing",
    "n_previous_offences",
    "offences_last_12m",
]
MATCHING = {"covariates": COVARIATES, "distance": "logit_ps", "caliper": 0.2, "ratio": 1}
COHORT = {}
OUTCOMES = {"followup_days": 365, "waiting_days": 182}
TINY = {"n_treated": 40, "n_comparator_pool": 400, "true_effect": {"hazard_ratio": 0.7}}


def test_replicate_seeds_distinct_and_stable():
    seeds = [sim.replicate_seed(20180101, r) for r in range(50)]
    assert len(set(seeds)) == 50
    assert seeds == [sim.replicate_seed(20180101, r) for r in range(50)]


def test_generator_config_scenarios():
    base = {"n_treated": 150, "hidden_confounding": {"strength": 0.3}, "mess": {"x": 1}}
    m = sim.generator_config(base, TINY, "measured", 1.0)
    h = sim.generator_config(base, TINY, "hidden", 1.0)
    assert m["hidden_confounding"]["strength"] == 0.0
    assert h["hidden_confounding"]["strength"] == 1.0
    assert m["n_treated"] == 40 and m["true_effect"]["hazard_ratio"] == 0.7
    assert m["mess"] == {"x": 1}


@pytest.fixture(scope="module")
def tiny_study():
    rows = [
        sim.run_replicate(
            rep,
            "measured",
            generator=sim.generator_config({}, TINY, "measured", 1.0),
            seed=sim.replicate_seed(7, rep),
            cohort=COHORT,
            outcomes=OUTCOMES,
            matching=MATCHING,
            extract_end_date="2020-06-30",
        )
        for rep in range(3)
    ]
    return pd.concat(rows, ignore_index=True)


def test_tiny_study_rows_and_truth(tiny_study):
    reps = tiny_study
    assert list(reps.columns) == sim.REPLICATE_COLUMNS
    assert len(reps) == 6 and set(reps["method"]) == {"matched", "naive"}
    ok = reps.dropna(subset=["estimate"])
    assert len(ok) == 6
    # the truth is a sample ATT of 0/1 outcomes: within [-1, 0] for a protective hazard ratio
    # given coupled potential outcomes (treatment can only remove offences)
    assert ((reps["truth"] <= 0) & (reps["truth"] >= -1)).all()
    assert (ok["ci_low"] <= ok["estimate"]).all() and (ok["estimate"] <= ok["ci_high"]).all()
    # the naive comparison uses every cohort member
    naive = reps[reps["method"] == "naive"]
    assert (naive["n_control"] > reps.loc[reps["method"] == "matched", "n_control"].max()).all()


def test_tiny_study_summary_by_hand(tiny_study):
    s = sim.summarise(tiny_study).set_index(["scenario", "method"])
    for method in ("matched", "naive"):
        g = tiny_study[tiny_study["method"] == method]
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


def test_replicate_is_deterministic(tiny_study):
    again = sim.run_replicate(
        1,
        "measured",
        generator=sim.generator_config({}, TINY, "measured", 1.0),
        seed=sim.replicate_seed(7, 1),
        cohort=COHORT,
        outcomes=OUTCOMES,
        matching=MATCHING,
        extract_end_date="2020-06-30",
    )
    pd.testing.assert_frame_equal(
        again.reset_index(drop=True),
        tiny_study[tiny_study["rep"] == 1].reset_index(drop=True),
    )


def test_simulation_figure_deterministic(tiny_study, tmp_path):
    s = sim.summarise(tiny_study)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    sim.plot_simulation(tiny_study, s, a)
    sim.plot_simulation(tiny_study, s, b)
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 10_000


# ------------------------------------------------------------------------------- dry runs

ROOT = Path(__file__).resolve().parents[1]


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


def test_dry_run_one_job_per_replicate(four_replicates):
    out = dry_run("simulation", "--configfile", four_replicates)
    jobs = re.findall(r"wildcards: scenario=(\w+), rep=(\d+)", out)
    assert sorted(jobs) == sorted((s, str(r)) for s in sim.SCENARIOS for r in range(4))
    assert re.search(r"^simulation_replicate\s+8$", out, re.M)
    assert re.search(r"^simulation\s+1$", out, re.M)


def test_dry_run_with_slurm_profile(four_replicates):
    """The workflow profile parses and the SLURM executor plans the same jobs, one SLURM
    job per replicate (a dry run submits nothing)."""
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
    assert re.search(r"^simulation_replicate\s+8$", out, re.M)
    assert "Group job" not in out
