"""Run the benchmark suite and print one table: wall time and peak memory per case.

Each ``benchmarks/bench_<name>.py`` defines ``CASES``: a dict mapping a case name to a
zero-argument callable. Each case runs in its own process, so its peak resident memory is
its own (with its child processes). A callable may return a dict of extra figures (e.g.
``{"inner_seconds": 1.2}``), shown in the table's last column, and under ``"rows"`` a list
of ``{"case", "wall_s", "peak_mb"}`` rows it measured itself (e.g. one per pipeline rule).

    python benchmarks/run.py                 # every case
    python benchmarks/run.py matching        # cases of bench_matching.py only
    python benchmarks/run.py --case bench_matching:match_1e6   # one case (used internally)
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(module: str):
    spec = importlib.util.spec_from_file_location(module, HERE / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_case(ref: str) -> None:
    module, case = ref.split(":")
    extra = _load(module).CASES[case]() or {}
    print("RESULT " + json.dumps(extra, sort_keys=True))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--case"]:
        run_case(argv[1])
        return 0
    wanted = set(argv)
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    rows = []
    for module in modules:
        if wanted and module.removeprefix("bench_") not in wanted:
            continue
        for case in _load(module).CASES:
            start = time.perf_counter()
            with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
                proc = subprocess.Popen(
                    [sys.executable, __file__, "--case", f"{module}:{case}"],
                    stdout=out,
                    stderr=err,
                    text=True,
                    cwd=HERE.parent,
                )
                _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
                wall = time.perf_counter() - start
                out.seek(0)
                err.seek(0)
                stdout, stderr = out.read(), err.read()
            mem = f"{usage.ru_maxrss / 1024:.0f}"
            extra, sub_rows = "", []
            for line in stdout.splitlines():
                if line.startswith("RESULT "):
                    result = json.loads(line[7:])
                    sub_rows = result.pop("rows", [])
                    extra = ", ".join(f"{k}={v}" for k, v in result.items())
            if os.waitstatus_to_exitcode(status) != 0:
                extra = "FAILED: " + (stderr.strip().splitlines() or ["?"])[-1]
            suite = module.removeprefix("bench_")
            rows.append((suite, case, f"{wall:8.1f}", mem, extra))
            for sub in sub_rows:  # per-stage rows a case measured itself
                rows.append((suite, sub["case"], f"{sub['wall_s']:8.1f}", f"{sub['peak_mb']}", ""))
            print(f"  ran {module}:{case} in {wall:.1f} s", file=sys.stderr, flush=True)
    header = ("suite", "case", "wall s", "peak MB", "notes")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
