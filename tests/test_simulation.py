"""Simulation study: summary arithmetic by hand; a tiny in-process replicate run."""

from __future__ import annotations

import math

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
