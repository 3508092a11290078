"""The simulation study through a real SLURM cluster (snakemake-executor-plugin-slurm).

Stands up a one-node cluster on this machine (tests/slurm_cluster.py), runs a small
simulation-study target through `--executor slurm --workflow-profile profiles/slurm`, and
checks that (1) the results are the bytes a local run of the same target gives, and (2)
every job Snakemake submitted ran under SLURM: each external job id it reported is in the
cluster's job-completion log as COMPLETED.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import copy_project
from slurm_cluster import jobs_completed, local_slurm_cluster, missing_requirements

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TARGET = ["simulation", "--configfile", "tests/slurm_config.yaml"]
OUTPUTS = ["results/simulation/summary.parquet", "results/numbers/simulation.json"]

pytestmark = pytest.mark.slow


def test_simulation_study_runs_on_slurm_and_matches_a_local_run(tmp_path):
    reason = missing_requirements()
    if reason:
        pytest.skip(f"no SLURM cluster can be started here: {reason}")

    local = copy_project(tmp_path / "local")
    out = subprocess.run(
        [SNAKEMAKE, "--cores", "2", *TARGET], cwd=local, capture_output=True, text=True
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]

    cluster = copy_project(tmp_path / "cluster")
    with local_slurm_cluster(tmp_path / "slurm") as env:
        started = time.monotonic()
        out = subprocess.run(
            [
                SNAKEMAKE, "--executor", "slurm", "--workflow-profile", "profiles/slurm",
                "--slurm-status-command", "squeue", "--slurm-no-account",
                "--slurm-init-seconds-before-status-checks", "1", "--jobs", "4", *TARGET,
            ],
            cwd=cluster, capture_output=True, text=True, env=env, timeout=1200,
        )  # fmt: skip
        seconds = time.monotonic() - started
        log = out.stdout + out.stderr
        assert out.returncode == 0, log[-6000:]
        completed = {j["JobId"]: j for j in jobs_completed(tmp_path / "slurm")}

    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", log))
    # two batch jobs (the profile's batch count, capped at the 2 replicates) + the summary:
    # every job of the target went through SLURM
    assert len(submitted) == 3, "Snakemake reported these SLURM job ids: " + str(submitted)
    for job_id in submitted:
        assert completed.get(job_id, {}).get("JobState") == "COMPLETED", job_id
    print(f"SLURM run: {len(submitted)} SLURM jobs in {seconds:.0f} s")
    for path in OUTPUTS:
        assert (cluster / path).read_bytes() == (local / path).read_bytes(), path
