"""Tests of mydirection.effects.panel_leads: which leads the design balances by itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from panel_truth import EMPTY, people, profile

from mydirection.effects.panel import did, event_study, offence_panel
from mydirection.effects.panel_leads import lead_diagnostics, quarter_days, window_quarters


def test_quarter_days_and_matching_windows():
    assert quarter_days(-1) == (-91, 0)  # an offence on the index date is a pre-index one
    assert quarter_days(0) == (1, 91)
    assert quarter_days(-4) == (-365, -274)
    assert quarter_days(-5) == (-456, -366)
    assert window_quarters(365, 8) == [-4, -3, -2, -1]  # offences_last_12m
    assert window_quarters(364, 8) == [-3, -2, -1]
    assert window_quarters(182, 8) == [-2, -1]
    assert window_quarters(float("inf"), 8) == list(range(-8, 0))


def _matched_on_recent_offending():
    """Daw and Hatfield (2018) in miniature, noise-free. Treated: usual level 1.0 a quarter
    and an episode of +0.5 in the year before the index date (the offending that led to the
    order). Comparator pool: usual level 0.5 with episodes of 0, 0.5 or 1.0. No effect."""
    dates = [pd.Timestamp(f"2018-{m:02d}-15") for m in (2, 5, 8, 11)]
    ppl = people([d for d in dates for _ in range(5)], [d for d in dates for _ in range(15)])
    panel = offence_panel(ppl, EMPTY)
    treated = panel["treated"].to_numpy()
    i = pd.factorize(panel["person_id"])[0]
    k = panel["rel_quarter"].to_numpy()
    level = np.where(treated, 1.0, 0.5)
    episode = np.where(treated, 0.5, (i % 3) * 0.5)
    in_year = np.isin(k, window_quarters(365, 8))
    panel["offences"] = level + episode * in_year + profile(k)
    # Exact matching on offences in the 365 days before the index date (offences_last_12m).
    last_12m = panel["offences"].where(in_year, 0.0).groupby(panel["person_id"]).transform("sum")
    target = last_12m[treated].iloc[0]
    matched = panel[treated | np.isclose(last_12m, target)]
    return panel, matched.reset_index(drop=True)


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt")  # exact fit: SE 0
def test_leads_inside_the_matching_window_are_balanced_by_construction():
    pool, matched = _matched_on_recent_offending()
    assert matched["person_id"].nunique() == 20 + 20
    # Unmatched, the groups differ in level but their trends are parallel: no bias.
    assert did(pool).iloc[0]["estimate"] == pytest.approx(0.0, abs=1e-10)
    assert np.allclose(event_study(pool)["estimate"], 0.0, atol=1e-10)
    # Matched on recent offending: the leads inside the window are zero by construction ...
    es = event_study(matched).set_index("rel_quarter")["estimate"]
    assert np.allclose(es.loc[[-4, -3, -2]], 0.0, atol=1e-10)
    # ... while the comparators regress to their lower usual level after the index date:
    # a spurious "effect" of +0.5 in every lag (DiD +0.25) with no effect at all. Only the
    # leads outside the window (quarters -8..-5) show the difference.
    assert np.allclose(es.loc[[0, 1, 2, 3]], 0.5, atol=1e-10)
    assert did(matched).iloc[0]["estimate"] == pytest.approx(0.25, abs=1e-10)
    assert np.allclose(es.loc[[-8, -7, -6, -5]], 0.5, atol=1e-10)
    diag = lead_diagnostics(matched, covariates=["age", "offences_last_12m"])
    assert diag.attrs["window_leads"] == [-4, -3, -2, -1]
    assert diag.attrs["outside_leads"] == [-8, -7, -6, -5]
    assert list(diag["matched_window"]) == [""] * 4 + ["offences_last_12m"] * 4
    gap = diag["treated_mean"] - diag["comparison_mean"]
    assert np.allclose(gap, [0.5] * 4 + [0.0] * 4)
    # Not matched on recent offending: no lead is balanced by construction.
    assert lead_diagnostics(matched, covariates=["age"]).attrs["window_leads"] == []


def test_lead_diagnostics_shares_of_the_pre_period():
    matched = pd.DataFrame(
        {
            "person_id": ["a", "b"],
            "treated": [True, False],
            "weights": [1.0, 3.0],
            "index_date": pd.to_datetime(["2018-04-01", "2018-04-01"]),
        }
    )
    conv = pd.DataFrame(
        {
            "person_id": ["a", "a", "b", "b"],
            "offence_date": pd.to_datetime(
                ["2016-06-01", "2018-01-10", "2018-01-10", "2018-05-01"]
            ),
            # b's January offence is the index offence: proven on the index date
            "disposal_date": pd.to_datetime(
                ["2016-08-01", "2018-02-01", "2018-04-01", "2018-07-01"]
            ),
            "offence_group": ["theft"] * 4,
        }
    )
    diag = lead_diagnostics(offence_panel(matched, conv)).set_index("rel_quarter")
    # weighted pre-index offences: a's two (weight 1) and b's index offence (weight 3)
    assert diag.loc[-1, "share_of_pre_offences"] == pytest.approx(4 / 5)
    assert diag.loc[-8, "share_of_pre_offences"] == pytest.approx(1 / 5)
    assert diag.loc[-1, "share_proven_on_or_after_index"] == pytest.approx(3 / 4)
    assert diag.loc[-1, "treated_mean"] == 1 and diag.loc[-1, "comparison_mean"] == 1
    assert diag.attrs["share_pre_in_window"] == pytest.approx(4 / 5)
    assert diag.attrs["share_pre_proven_on_or_after_index"] == pytest.approx(3 / 5)
