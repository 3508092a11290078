"""Batched jobs against the old one-job-per-item layout, back to back on the same machine.

In one scratch copy of the workflow (the working tree's ``results/`` is untouched), the
inputs of the specification curve and the simulation study are built once (untimed); then
the two targets ``spec_curve`` and ``simulation`` are rebuilt (``--forcerun spec_batch
simulation_batch``) twice, alternately:

- ``one_job_each``: ``sensitivity.spec_curve_batches`` = the number of specifications and
  ``simulation.batches`` = the number of replicates (the layout before batching: one
  interpreter per specification and per replicate; a replicate job runs every scenario);
- ``batched``: the defaults (one batch job per core).

It reports both wall times, their ratio, and checks that the gathered tables
(``spec_curve.parquet``, ``replicates.parquet``) are the same bytes. Environment:
``MYDIRECTION_BENCH_SIM_R`` (replicates, default the config's), ``MYDIRECTION_BENCH_CORES``
(default 2), ``MYDIRECTION_BENCH_ROUNDS`` (alternations, default 1). The machines are
shared: read the ratio (``load`` is ``os.getloadavg()`` at the start and the end).

    python benchmarks/run.py layout
    MYDIRECTION_BENCH_SIM_R=20 python benchmarks/bench_layout.py
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TABLES = ("results/sensitivity/spec_curve.parquet", "results/simulation/replicates.parquet")


def _load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _n_specs(config_files: list[Path]) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from mydirection import settings as S
    from mydirection.sensitivity.grid import grid_choices

    config: dict = {}
    for f in config_files:
        config = S.merge(config, yaml.safe_load(f.read_text()) or {})
    config = S.with_defaults(config)
    headline = S.AnalysisSpec.from_config(config)
    return len(grid_choices(S.SpecCurveSettings.from_config(config).grid, headline))


def _digest(work: Path) -> str:
    h = hashlib.sha256()
    for t in TABLES:
        h.update((work / t).read_bytes())
    return h.hexdigest()[:16]


def layouts() -> dict:
    replicates = int(
        os.environ.get(
            "MYDIRECTION_BENCH_SIM_R",
            yaml.safe_load((ROOT / "config/config.yaml").read_text())["simulation"]["replicates"],
        )
    )
    cores = os.environ.get("MYDIRECTION_BENCH_CORES", "2")
    rounds = int(os.environ.get("MYDIRECTION_BENCH_ROUNDS", "1"))
    with tempfile.TemporaryDirectory(prefix="mydirection-bench-layout-") as tmp:
        work = Path(tmp)
        for part in (
            "Snakefile",
            "workflow",
            "config",
            "scripts",
            "src",
            "reports",
            "environment.yml",
        ):
            src = ROOT / part
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / part)
        base = work / "bench_base.yaml"
        base.write_text(yaml.safe_dump({"simulation": {"replicates": replicates}}))
        n_specs = _n_specs([work / "config/config.yaml", base])
        one = work / "bench_one_each.yaml"
        one.write_text(
            yaml.safe_dump(
                {
                    "simulation": {"replicates": replicates, "batches": replicates},
                    "sensitivity": {"spec_curve_batches": n_specs},
                }
            )
        )
        targets = ["spec_curve", "simulation"]
        common = [SNAKEMAKE, "--cores", cores, "--quiet", "all"]
        # the shared inputs, once, untimed (cohort, convictions, propensity, design)
        subprocess.run(
            [*common, "--configfile", str(base), "--omit-from", "spec_batch", "simulation_batch",
             "--", *targets],
            cwd=work, check=True, capture_output=True,
        )  # fmt: skip
        times: dict[str, list[float]] = {"one_job_each": [], "batched": []}
        digests = {}
        load_start = _load()
        for _ in range(rounds):
            for name, cfg in (("one_job_each", one), ("batched", base)):
                shutil.rmtree(work / "results/sensitivity/specs", ignore_errors=True)
                shutil.rmtree(work / "results/simulation/batches", ignore_errors=True)
                start = time.perf_counter()
                subprocess.run(
                    [*common, "--configfile", str(cfg), "--forcerun", "spec_batch",
                     "simulation_batch", "--", *targets],
                    cwd=work, check=True, capture_output=True,
                )  # fmt: skip
                times[name].append(time.perf_counter() - start)
                digests[name] = _digest(work)
    one_s, batched_s = min(times["one_job_each"]), min(times["batched"])
    return {
        "specs": n_specs,
        "replicates": replicates,
        "cores": cores,
        "one_job_each_s": round(one_s, 1),
        "batched_s": round(batched_s, 1),
        "ratio": round(one_s / batched_s, 2),
        "same_bytes": digests["one_job_each"] == digests["batched"],
        "load": f"{load_start} -> {_load()}",
    }


CASES = {"one_job_each_vs_batched": layouts}


if __name__ == "__main__":
    print(layouts())
