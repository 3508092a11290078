"""Simulation study timings.

- ``replicate``: one replicate of each scenario at the configured (modest) size, in process.
- ``simulation_target``: the real Snakemake target ``simulation`` at the full number of
  replicates (config ``simulation.replicates``, default 200; override with the environment
  variable ``MYDIRECTION_BENCH_SIM_R``), run in a scratch copy of the workflow so that the
  working tree's ``results/`` is untouched. Uses ``--cores`` from ``MYDIRECTION_BENCH_CORES``
  (default all).

The documented command for the full study is simply ``snakemake simulation --cores all``
(or with ``--workflow-profile profiles/slurm`` on a cluster).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def replicate() -> dict:
    from mydirection import simulation as sim

    cfg = _config()
    base = yaml.safe_load((ROOT / cfg["synthetic"]).read_text()) or {}
    s = cfg["simulation"]
    times = {}
    for scenario in sim.SCENARIOS:
        gen = sim.generator_config(base, s["generator"], scenario, s["hidden_confounding_strength"])
        start = time.perf_counter()
        sim.run_replicate(
            0,
            scenario,
            generator=gen,
            seed=sim.replicate_seed(cfg["seed"], 0),
            cohort=cfg["cohort"],
            outcomes=cfg["outcomes"],
            matching=cfg["matching"],
            extract_end_date=cfg["extract_end_date"],
        )
        times[f"{scenario}_seconds"] = round(time.perf_counter() - start, 2)
    return times


def simulation_target() -> dict:
    r = int(os.environ.get("MYDIRECTION_BENCH_SIM_R", _config()["simulation"]["replicates"]))
    cores = os.environ.get("MYDIRECTION_BENCH_CORES", "all")
    with tempfile.TemporaryDirectory(prefix="mydirection-bench-sim-") as tmp:
        for part in ("Snakefile", "workflow", "config", "scripts", "src", "environment.yml"):
            src = ROOT / part
            (shutil.copytree if src.is_dir() else shutil.copy)(src, Path(tmp) / part)
        (Path(tmp) / "bench.yaml").write_text(f"simulation:\n  replicates: {r}\n")
        start = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "snakemake"),
                "simulation",
                "--cores",
                cores,
                "--configfile",
                "bench.yaml",
                "--quiet",
                "all",
            ],
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        summary = __import__("pandas").read_parquet(
            Path(tmp) / "results/simulation/summary.parquet"
        )
    head = summary[(summary.scenario == "measured") & (summary.method == "matched")].iloc[0]
    return {
        "replicates": r,
        "seconds": round(wall, 1),
        "coverage": round(float(head["coverage"]), 3),
        "bias_pp": round(100 * float(head["bias"]), 2),
    }


CASES = {"replicate": replicate, "simulation_target": simulation_target}
