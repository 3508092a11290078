"""Effects stage at national scale: ATT, Cox, Kaplan-Meier and the event-study panel.

The matched sample of a national evaluation is far smaller than the comparator pool, but
the same functions also run on whole cohorts (IPW, the naive comparison in the simulation
study), so each is timed on a million rows; the panel on 50,000 matched people
(600,000 person-quarters). Data are generated here with NumPy.

    python benchmarks/run.py effects
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

N = 1_000_000
N_PANEL_PEOPLE = 50_000


def matched_frame(n: int = N, ratio: int = 3, seed: int = 1) -> pd.DataFrame:
    """Matched sets of one treated and ``ratio`` controls with outcomes."""
    rng = np.random.default_rng(seed)
    n_sets = n // (ratio + 1)
    subclass = np.repeat(np.arange(n_sets), ratio + 1)
    treated = np.tile(np.r_[True, np.zeros(ratio, bool)], n_sets)
    risk = rng.normal(size=n_sets)[subclass]
    p = 1 / (1 + np.exp(-(-1 + 0.8 * risk - 0.2 * treated)))
    days = rng.exponential(-365 / np.log1p(-p))
    event = days <= 365
    return pd.DataFrame(
        {
            "person_id": np.arange(len(subclass)).astype(str),
            "treated": treated,
            "subclass": subclass,
            "weights": np.where(treated, 1.0, 1.0),
            "reoffended": event.astype(int),
            "n_reoffences": rng.poisson(2 * p),
            "days_to_first": np.minimum(np.ceil(days), 365),
            "event": event.astype(int),
            "age": rng.uniform(18, 60, len(subclass)),
            "sex": rng.choice(["female", "male"], len(subclass)),
        }
    )


def _timed(fn):
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 2)


def att_1e6():
    from mydirection.effects import att, matched_sample

    df = matched_frame()
    m = matched_sample(df)
    return {
        "rows": len(df),
        "binary_cluster_s": _timed(lambda: att(m, "reoffended", "binary")),
        "count_hc0_s": _timed(
            lambda: att(matched_sample(df, replace=True), "n_reoffences", "count")
        ),
        "binary_dr_s": _timed(lambda: att(m, "reoffended", "binary", covariates=["age", "sex"])),
    }


def cox_1e6():
    from mydirection.effects.survival import cox

    df = matched_frame()
    df["t"] = df["treated"].astype(float)
    df["x"] = np.random.default_rng(3).normal(size=len(df))
    return {
        "rows": len(df),
        "events": int(df["event"].sum()),
        "weighted_clustered_s": _timed(
            lambda: cox(df, "days_to_first", "event", ["t"], weights="weights", cluster="subclass")
        ),
        "three_covariates_s": _timed(lambda: cox(df, "days_to_first", "event", ["t", "age", "x"])),
    }  # fmt: skip


def km_1e6():
    from mydirection.effects.survival import kaplan_meier

    df = matched_frame()
    return {
        "rows": len(df),
        "weighted_by_group_s": _timed(
            lambda: kaplan_meier(df, "days_to_first", "event", group="treated", weights="weights")
        ),
    }


def event_study_50k():
    from mydirection.effects.panel import did, event_study, offence_panel

    rng = np.random.default_rng(2)
    n = N_PANEL_PEOPLE
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
    conv = pd.DataFrame(
        {
            "person_id": matched["person_id"].to_numpy()[owner],
            "offence_date": matched["index_date"].to_numpy()[owner]
            + pd.to_timedelta(rng.integers(-760, 400, len(owner)), unit="D"),
            "offence_group": rng.choice(["theft", "breach"], len(owner), p=[0.8, 0.2]),
        }
    )
    out = {}
    start = time.perf_counter()
    panel = offence_panel(matched, conv)
    out["panel_rows"] = len(panel)
    out["build_s"] = round(time.perf_counter() - start, 2)
    out["did_s"] = _timed(lambda: did(panel))
    out["event_study_s"] = _timed(lambda: event_study(panel))
    return out


CASES = {
    "att_1e6": att_1e6,
    "cox_1e6": cox_1e6,
    "km_1e6": km_1e6,
    "event_study_50k": event_study_50k,
}
