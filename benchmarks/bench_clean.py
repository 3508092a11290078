"""Clean stage at national scale: about 1M people and 10M supervision contacts
(``config/synthetic_national.yaml``).

The raw extracts are made by the synthetic generator (``mydirection.synthetic``) once and
cached under ``/tmp/mydirection_bench/`` (keyed by the generator config, seed and the
generator's source), because generating ~4 GB of CSV takes a few minutes. Each case then
runs the stage as its script does: read the ten CSVs, validate, clean, pseudonymise, write
Parquet.

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


def clean_small() -> dict:
    return _clean(SMALL)


def clean_national() -> dict:
    return _clean(NATIONAL)


CASES = {"clean_small": clean_small, "clean_national": clean_national}
