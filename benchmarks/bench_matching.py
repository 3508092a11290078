"""Matching at national scale: 1,000 treated against 10k / 100k / 1M controls, 10 covariates.

Each case times ``mydirection.matching.match`` end to end -- propensity fit (logistic
regression), 1:1 greedy nearest neighbour on the logit of the propensity score with a
0.2 SD caliper, weights and the balance table -- on synthetic data made in the same
process (data generation is not part of ``match_seconds``).
Target (issue 4): the 1,000,000-control case in under 3 s and under 2 GB on 2 cores.

BLAS is pinned to one thread, as Snakemake does for a one-thread rule (it sets
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to the job's threads): on a shared, oversubscribed
machine a multi-threaded OpenBLAS spin-waits and the propensity fit can be 30x slower.
``cpu_seconds`` (process CPU time of ``match``) is the figure to read when the machine is
busy; ``match_seconds`` is wall time.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _data(n_control: int, n_treated: int = 1000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_treated + n_control
    treated = np.zeros(n, dtype=bool)
    treated[:n_treated] = True
    shift = np.where(treated, 0.3, 0.0)
    cols = {"treated": treated}
    for j in range(6):  # continuous
        cols[f"x{j}"] = rng.normal(size=n) + shift
    for j in range(3):  # binary
        cols[f"b{j}"] = rng.random(n) < 0.3 + 0.1 * treated
    cols["group"] = rng.choice(np.array(["a", "b", "c", "d"]), n)  # categorical, 4 levels
    return pd.DataFrame(cols)


def _case(n_control: int, **options):
    def run() -> dict:
        from mydirection.matching import match

        df = _data(n_control)
        covs = [c for c in df.columns if c != "treated"]
        start, cpu = time.perf_counter(), time.process_time()
        m = match(df, "treated", covs, distance="logit_ps", caliper=0.2, **options)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        matched = int(m.counts.set_index("group").loc["treated", "matched"])
        return {
            "match_seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "treated_matched": matched,
        }

    return run


CASES = {
    "match_1e4": _case(10_000),
    "match_1e5": _case(100_000),
    "match_1e6": _case(1_000_000),
    "match_1e6_exact_ratio3": _case(1_000_000, ratio=3, exact=["group"]),
}
