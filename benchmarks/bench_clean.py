"""Clean stage at national scale: about 1M people, 7.7M convictions and 6.7M supervision
contacts (``config/synthetic_national.yaml``), side by side in one run:

- ``clean_*_one_job``: the ten extracts cleaned one after another in one process (the layout
  before the stage was split: one ``clean`` job writing every table);
- ``clean_*_per_extract``: the stage as Snakemake runs it now, one ``clean_extract`` job per
  extract (people first, contacts after supervision) and the ``clean`` merge, with
  ``--cores 2``, on a copy of the project in real-data mode; each job's wall time and peak
  memory come from Snakemake's ``benchmark:`` files (``results/benchmarks/clean_*.tsv``).

The raw extracts are made by the synthetic generator (``mydirection.synthetic``) once and
cached under ``/tmp/mydirection_bench/`` (keyed by the generator config, seed and the
generator's source), because generating ~1.4 GB of CSV takes a minute or more.

    python benchmarks/run.py clean
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from mydirection import synthetic
from mydirection.clean import SYNTHETIC_KEY, clean_extracts, parquet_writer
from mydirection.contract import EXTRACTS

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path("/tmp/mydirection_bench")
SEED = 20180101

#: National scale: the generator's national configuration (1,000 treated, 1,000,000 in the
#: comparator pool, contacts thinned to six months at one a month for comparators).
NATIONAL = yaml.safe_load((ROOT / "config" / "synthetic_national.yaml").read_text())
SMALL = {"n_treated": 150, "n_comparator_pool": 5000}


def extracts(cfg: dict, seed: int = SEED) -> Path:
    """The raw extracts for ``cfg`` (generated on first use, then cached)."""
    source = Path(synthetic.__file__).read_bytes()
    tag = hashlib.sha256(json.dumps([cfg, seed], sort_keys=True).encode() + source).hexdigest()[:12]
    folder = CACHE / f"clean_{tag}"
    if not (folder / "mess.json").is_file():
        synthetic.write_extracts(folder, cfg, seed)
    return folder


def _clean(cfg: dict) -> dict:
    raw = extracts(cfg)
    paths = {n: raw / f"{n}.csv" for n in EXTRACTS}
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {n: Path(tmp) / f"{n}.parquet" for n in EXTRACTS}
        outputs["cleaning_log"] = Path(tmp) / "cleaning_log.parquet"
        write = parquet_writer(outputs)
        _, log = clean_extracts(paths, "2020-06-30", SYNTHETIC_KEY, write=write)
        write("cleaning_log", log)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
    received = log.loc[log["action"] == "received"].set_index("file")["rows"]
    return {
        "stage_seconds": round(seconds, 1),
        "stage_cpu_seconds": round(cpu, 1),
        "load_avg_1min": round(os.getloadavg()[0], 1),
        "rows_received": int(received.sum()),
        "contacts": int(received["contacts"]),
        "people": int(received["people"]),
    }


def _per_extract(cfg: dict) -> dict:
    """The clean rules through Snakemake (real-data mode) on a fresh copy of the project."""
    import shutil
    import subprocess
    import sys

    import pandas as pd

    raw = extracts(cfg)
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "project"
        shutil.copytree(
            ROOT,
            work,
            ignore=shutil.ignore_patterns(".venv", ".git", "results", "data", ".snakemake"),
        )
        env = {**os.environ, "MYDIRECTION_PSEUDO_KEY": "benchmark-key-0123456789abcdefXYZ"}
        started = time.perf_counter()
        out = subprocess.run(
            [snakemake, "--cores", "2", "clean", "--config", f"raw_dir={raw}"],
            cwd=work,
            capture_output=True,
            text=True,
            env=env,
        )
        seconds = time.perf_counter() - started
        if out.returncode:
            raise RuntimeError(out.stderr[-3000:])
        rows, cpu, peak = [], 0.0, 0.0
        for tsv in sorted((work / "results" / "benchmarks").glob("clean*.tsv")):
            b = pd.read_csv(tsv, sep="\t").iloc[0]
            rss = float(pd.to_numeric(b["max_rss"], errors="coerce"))
            rows.append({"case": f"  {tsv.stem}", "wall_s": float(b["s"]), "peak_mb": rss})
            cpu += float(pd.to_numeric(b.get("cpu_time", 0), errors="coerce") or 0)
            peak = max(peak, rss)
    return {
        "stage_seconds": round(seconds, 1),
        "jobs_cpu_seconds": round(cpu, 1),
        "largest_job_peak_mb": round(peak),
        "load_avg_1min": round(os.getloadavg()[0], 1),
        "rows": rows,
    }


def clean_small_one_job() -> dict:
    return _clean(SMALL)


def clean_small_per_extract() -> dict:
    return _per_extract(SMALL)


def clean_national_one_job() -> dict:
    return _clean(NATIONAL)


def clean_national_per_extract() -> dict:
    return _per_extract(NATIONAL)


CASES = {
    "clean_small_one_job": clean_small_one_job,
    "clean_small_per_extract": clean_small_per_extract,
    "clean_national_one_job": clean_national_one_job,
    "clean_national_per_extract": clean_national_per_extract,
}
