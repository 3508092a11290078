"""Synthetic-extract generation at pilot and national scale (wall time, peak memory).

Each case writes the ten extracts, truth.json and mess.json into a temporary folder with
``mydirection.synthetic.write_extracts``, exactly as the ``synthetic`` rule does, and reports
the generator's own time and the size written.

    python benchmarks/run.py synthetic
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from mydirection.synthetic import load_config, write_extracts

ROOT = Path(__file__).resolve().parents[1]
SEED = 20180101


def _generate(config: str) -> dict:
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


CASES = {
    "pilot_150_5000": lambda: _generate("config/synthetic.yaml"),
    "national_1000_1e6": lambda: _generate("config/synthetic_national.yaml"),
}
