"""Synthetic-extract generation: files at pilot and national scale, tables in memory.

The ``*_files`` cases write the ten extracts, truth.json and mess.json into a temporary
folder with ``mydirection.synthetic.write_extracts``, exactly as the ``synthetic`` rule
does, and report the generator's own time and the size written. The ``generate_*`` cases
time ``mydirection.synthetic.generate`` (the ten extracts as in-memory text tables, no
file), as a simulation replicate calls it: the median of 7 calls after a warm-up one.

With ``MYDIRECTION_BASELINE_SRC`` set to another checkout's ``src`` folder (for instance
``/work/main/src``), the ``*_vs_baseline`` cases run the national-scale case with that
code and with this one, back to back in fresh processes, and report the ratio of their
times and of their peak memory (the machines are shared and noisy: compare the ratio).

    python benchmarks/run.py synthetic
    MYDIRECTION_BASELINE_SRC=/work/main/src python benchmarks/run.py synthetic
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 20180101
PILOT = "config/synthetic.yaml"
NATIONAL = "config/synthetic_national.yaml"


def _files(config: str) -> dict:
    from mydirection.synthetic import load_config, write_extracts

    cfg = load_config(ROOT / config)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        truth, _ = write_extracts(tmp, cfg, SEED)
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    return {
        "inner_seconds": round(seconds, 1),
        "people": truth["n_people"],
        "written_MB": round(size / 1e6),
    }


def _in_memory(config: str, overrides: dict) -> dict:
    from mydirection.synthetic import generate, load_config, merge_config

    cfg = merge_config(load_config(ROOT / config), overrides)
    generate(cfg, SEED - 1)  # warm-up: imports, schema validator
    seconds = []
    for k in range(7):
        start = time.perf_counter()
        syn = generate(cfg, SEED + k)
        seconds.append(time.perf_counter() - start)
    rows = sum(len(df) for df in syn.extracts.values())
    return {
        "median_seconds": round(statistics.median(seconds), 3),
        "min_seconds": round(min(seconds), 3),
        "rows": rows,
    }


_CHILD = """
import json, sys, tempfile, time
from pathlib import Path
from mydirection.synthetic import load_config, write_extracts
cfg = load_config(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    write_extracts(tmp, cfg, int(sys.argv[2]))
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in Path(tmp).iterdir())
print(json.dumps({"seconds": seconds, "MB": size / 1e6}))
"""


def _run_with(src: str, config: str) -> dict:
    """A file case with the library in ``src`` and the config of its checkout (``src/..``),
    in a fresh process."""
    env = {**os.environ, "PYTHONPATH": src}
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(Path(src).parent / config), str(SEED)],
            stdout=out,
            env=env,
            cwd=ROOT,
            text=True,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"generator in {src} failed")
        out.seek(0)
        result = json.loads(out.read().strip().splitlines()[-1])
    return {**result, "peak_MB": usage.ru_maxrss / 1024}


def _vs_baseline(config: str) -> dict:
    baseline = os.environ["MYDIRECTION_BASELINE_SRC"]
    base = _run_with(baseline, config)
    this = _run_with(str(ROOT / "src"), config)
    return {
        "baseline_seconds": round(base["seconds"], 1),
        "seconds": round(this["seconds"], 1),
        "time_ratio": round(this["seconds"] / base["seconds"], 2),
        "baseline_peak_MB": round(base["peak_MB"]),
        "peak_MB": round(this["peak_MB"]),
        "memory_ratio": round(this["peak_MB"] / base["peak_MB"], 2),
        "baseline_written_MB": round(base["MB"]),
        "written_MB": round(this["MB"]),
    }


CASES = {
    "pilot_150_5000_files": lambda: _files(PILOT),
    "national_1000_1e6_files": lambda: _files(NATIONAL),
    "generate_simulation_150_2000": lambda: _in_memory(
        PILOT, {"n_treated": 150, "n_comparator_pool": 2000}
    ),
    "generate_pilot_150_5000": lambda: _in_memory(PILOT, {}),
}
if os.environ.get("MYDIRECTION_BASELINE_SRC"):
    CASES["national_1000_1e6_vs_baseline"] = lambda: _vs_baseline(NATIONAL)
