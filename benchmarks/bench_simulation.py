"""Simulation study timings.

- ``replicate``: ``MYDIRECTION_BENCH_REPS`` replicates (default 5) of each scenario at the
  configured (modest) size, in process, through ``simulation.run_replicate`` -- the
  function the ``simulation_batch`` rule runs. CPU seconds per replicate-scenario (the
  figure to read on a busy machine) and wall seconds per scenario. BLAS pinned to one
  thread, as Snakemake does for a one-thread rule.
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

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def replicate() -> dict:
    from mydirection import simulation as sim
    from mydirection.settings import SimulationSettings, load_config

    cfg = load_config(ROOT / "config" / "config.yaml")
    base = yaml.safe_load((ROOT / cfg["synthetic"]).read_text()) or {}
    settings = SimulationSettings.from_config(cfg)
    reps = int(os.environ.get("MYDIRECTION_BENCH_REPS", 5))
    out = {"replicates": reps}
    cpu = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quasi-separation, counted by run_batch, not here
        sim.run_replicate(reps, sim.SCENARIOS[0], cfg, base, settings)  # imports, warm-up
        for scenario in sim.SCENARIOS:
            wall, c0 = time.perf_counter(), time.process_time()
            for rep in range(reps):
                sim.run_replicate(rep, scenario, cfg, base, settings)
            cpu += time.process_time() - c0
            out[f"{scenario}_seconds"] = round((time.perf_counter() - wall) / reps, 3)
    out["cpu_seconds_per_replicate_scenario"] = round(cpu / (reps * len(sim.SCENARIOS)), 3)
    return out


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
    head = summary[(summary.scenario == "measured") & (summary.method == "headline")].iloc[0]
    return {
        "replicates": r,
        "seconds": round(wall, 1),
        "coverage": round(float(head["coverage"]), 3),
        "bias_pp": round(100 * float(head["bias"]), 2),
    }


CASES = {"replicate": replicate, "simulation_target": simulation_target}
