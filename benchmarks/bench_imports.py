"""Start-up cost: the imports of each rule entry point and of the Snakefile's parse.

A ``script:`` job pays its imports every time it runs (issue 15: 80 % of ``make report``
was start-up). Each case runs, in a fresh interpreter, ``python -X importtime -c <the
script's own top-level imports>`` (read from ``scripts/<name>.py`` with :mod:`ast`, so the
script itself does not run), and reports the total import time and the self+children time
of the heavy packages it pulled in. ``dry_run`` times ``snakemake -n --forceall`` beside an
empty Snakefile's dry run (Snakemake's own floor on this machine) and reports the ratio.

Timings are CPU-bound and the machines are shared: read the ratios and the user CPU
seconds, and note ``uptime`` (printed as ``load``).

    python benchmarks/run.py imports
    python benchmarks/bench_imports.py          # the same table, without run.py
"""

from __future__ import annotations

import ast
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
#: Heavy packages worth naming when a script imports them.
HEAVY = (
    "numpy", "pandas", "pyarrow", "scipy.stats", "scipy.optimize", "scipy.special", "scipy.sparse",
    "statsmodels", "linearmodels", "lifelines", "matplotlib", "pandera", "hypothesis",
    "jsonschema", "jinja2",
)  # fmt: skip
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def script_imports(script: Path) -> str:
    """The top-level import statements of a script, as source."""
    tree = ast.parse(script.read_text())
    lines = [
        ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    return "\n".join(lines)


def import_profile(code: str) -> dict:
    """Total import seconds of ``code`` and the seconds spent in each heavy package's own
    modules (their self times; a package's dependencies count under their own name)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    total, heavy = 0, {}
    for m in LINE.finditer(out.stderr):
        self_us, name = int(m[1]), m[4]
        total += self_us
        for pkg in HEAVY:  # the package's own modules (self time, not its dependencies)
            if name == pkg or name.startswith(pkg + "."):
                heavy[pkg] = heavy.get(pkg, 0) + self_us
    return {"import_s": round(total / 1e6, 2), "heavy": heavy}


def _script_case(script: Path):
    def run() -> dict:
        prof = import_profile(script_imports(script))
        heavy = sorted(prof["heavy"].items(), key=lambda kv: -kv[1])
        return {
            "import_s": prof["import_s"],
            "heavy": " ".join(f"{k}:{v / 1e6:.2f}" for k, v in heavy[:5]) or "-",
        }

    return run


def _timed(args: list[str], cwd: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def dry_run(repeats: int = 3) -> dict:
    """``snakemake -n --forceall`` of the workflow and of an empty Snakefile, interleaved
    (best of ``repeats``), and their ratio: what our Snakefile adds to Snakemake's floor."""
    args = [SNAKEMAKE, "-n", "--forceall", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Snakefile").write_text('rule all:\n    shell: "true"\n')
        ours, empty = [], []
        for _ in range(repeats):
            ours.append(_timed(args, ROOT))
            empty.append(_timed(args, Path(tmp)))
    wall, cpu = min(w for w, _ in ours), min(c for _, c in ours)
    wall0, cpu0 = min(w for w, _ in empty), min(c for _, c in empty)
    return {
        "dry_run_s": round(wall, 2),
        "dry_run_cpu_s": round(cpu, 2),
        "empty_snakefile_s": round(wall0, 2),
        "empty_snakefile_cpu_s": round(cpu0, 2),
        "ratio_wall": round(wall / wall0, 2),
        "ratio_cpu": round(cpu / cpu0, 2),
        "load": load(),
    }


CASES = {
    "dry_run": dry_run,
    **{f"script_{p.stem}": _script_case(p) for p in sorted((ROOT / "scripts").glob("*.py"))},
}


if __name__ == "__main__":
    print(load())
    for name, case in CASES.items():
        print(f"{name:28s} {case()}")
