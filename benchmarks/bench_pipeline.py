"""End-to-end pipeline benchmarks: the whole DAG at pilot and national scale.

Each case builds the pipeline from nothing in a fresh copy of the project (no results, no
data) and reads the per-rule figures Snakemake recorded with its ``benchmark:`` directive
(``results/benchmarks/``): wall seconds and peak resident memory of each job. Rules with
many jobs (one per specification, one per replicate) are summed (time) and maxed (memory).

The simulation study is left out of these cases (``simulation.in_report: false``): it does
not depend on the scale of the extracts and is timed by ``bench_simulation.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
OVERLAY = "simulation:\n  in_report: false\n"


def _copy(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "results", "data", ".snakemake", "__pycache__", ".hypothesis", "*.egg-info"
    )
    shutil.copytree(ROOT, dest, ignore=ignore)
    (dest / "bench_overlay.yaml").write_text(OVERLAY)
    return dest


def per_rule(results: Path) -> list[dict]:
    """One row per rule from Snakemake's benchmark files: jobs, wall s (sum), peak MB (max)."""
    rows = {}
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rel = tsv.relative_to(results / "benchmarks")
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        b = pd.read_csv(tsv, sep="\t")
        row = rows.setdefault(rule, {"rule": rule, "jobs": 0, "wall_s": 0.0, "peak_mb": 0.0})
        row["jobs"] += 1
        row["wall_s"] += float(b["s"].iloc[0])
        row["peak_mb"] = max(row["peak_mb"], float(pd.to_numeric(b["max_rss"], "coerce").iloc[0]))
    return list(rows.values())


def _pipeline(*configfiles: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = _copy(Path(tmp) / "project")
        args = [SNAKEMAKE, "--cores", "2", "--configfile", *configfiles, "bench_overlay.yaml"]
        start = time.perf_counter()
        out = subprocess.run(args, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        rules = per_rule(work / "results")
    return {
        "end_to_end_s": round(wall, 1),
        "rows": [
            {"case": f"  {r['rule']} ({r['jobs']} jobs)" if r["jobs"] > 1 else f"  {r['rule']}",
             "wall_s": round(r["wall_s"], 1), "peak_mb": round(r["peak_mb"])}
            for r in rules
        ],
    }  # fmt: skip


def dry_run() -> dict:
    start = time.perf_counter()
    subprocess.run([SNAKEMAKE, "-n", "--forceall", "-q"], cwd=ROOT, check=True, capture_output=True)
    return {"dry_run_s": round(time.perf_counter() - start, 2)}


CASES = {
    "dry_run": dry_run,
    "pilot_end_to_end": lambda: _pipeline("config/config.yaml"),
    "national_end_to_end": lambda: _pipeline("config/national.yaml"),
}
