"""The event-study panel at the pilot's size and at a national evaluation's size.

The pilot matched about 300 people (150 pairs); a national Justice Data Lab-sized cohort
about 2,000. Each case builds the person x quarter panel (8 quarters before, 4 from the
index date) from generated convictions and times the pooled difference in differences, the
event study, and the interaction-weighted (Sun-Abraham) versions by enrolment cohort, all
clustered by matched pair. Each estimator is timed on its second call. Data are generated
here with NumPy.

    python benchmarks/run.py panel
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd


def _inputs(n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    matched = pd.DataFrame(
        {
            "person_id": [f"p{i:07d}" for i in range(n)],
            "treated": np.arange(n) % 2 == 0,
            "index_date": pd.Timestamp("2018-01-01")
            + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "weights": 1.0,
            "subclass": np.arange(n) // 2,
        }
    )
    k = rng.poisson(3, n)
    owner = np.repeat(np.arange(n), k)
    offence = matched["index_date"].to_numpy()[owner] + pd.to_timedelta(
        rng.integers(-760, 400, len(owner)), unit="D"
    )
    conv = pd.DataFrame(
        {
            "person_id": matched["person_id"].to_numpy()[owner],
            "offence_date": offence,
            "disposal_date": offence + pd.to_timedelta(rng.integers(20, 200, len(owner)), "D"),
            "offence_group": rng.choice(["theft", "breach"], len(owner), p=[0.8, 0.2]),
        }
    )
    return matched, conv


def _timed(fn):
    fn()
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)


def _case(n: int):
    from mydirection.effects.panel import did, event_study, offence_panel
    from mydirection.effects.panel_cohorts import did_by_cohort, event_study_by_cohort

    matched, conv = _inputs(n)
    start = time.perf_counter()
    panel = offence_panel(matched, conv)
    out = {"people": n, "panel_rows": len(panel)}
    out["build_s"] = round(time.perf_counter() - start, 3)
    out["did_s"] = _timed(lambda: did(panel, cluster="subclass", level=0.95))
    out["event_study_s"] = _timed(lambda: event_study(panel, cluster="subclass", level=0.95))
    out["did_by_cohort_s"] = _timed(lambda: did_by_cohort(panel, cluster="subclass", level=0.95))
    out["event_study_by_cohort_s"] = _timed(
        lambda: event_study_by_cohort(panel, cluster="subclass", level=0.95)
    )
    return out


def pilot_300():
    return _case(300)


def national_2000():
    return _case(2_000)


CASES = {"pilot_300": pilot_300, "national_2000": national_2000}
