"""The DAG as a whole: it parses, lints clean, and runs end to end on small synthetic data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(*args: str, cwd: Path = ROOT, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_dry_run_lists_the_whole_dag():
    out = snakemake("-n", "--forceall", "--quiet", "rules")
    assert out.returncode == 0, out.stderr[-3000:]
    for rule in ("synthetic", "clean", "cohort", "registry", "report"):
        assert rule in out.stdout, f"rule {rule} missing from the DAG:\n{out.stdout}"


def test_snakemake_lint_is_clean():
    out = snakemake("--lint")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("no_such_setting=1", "no_such_setting"),
        ("seed=abc", "seed"),
        ("extract_end_date=30/06/2020", "extract_end_date"),
    ],
)
def test_bad_config_gets_one_clear_message(override, named):
    out = snakemake("-n", "--config", override)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "ERROR: config setting" in text and named in text
    assert "Traceback" not in text and "Failed validating" not in text
