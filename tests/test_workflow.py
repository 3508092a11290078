"""The DAG as a whole: it parses, lints clean, and runs end to end on small synthetic data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import copy_project

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def own_library(cwd: Path) -> dict:
    """The environment for Snakemake in ``cwd``: a copy of the project runs its own ``src/``
    (so a test that edits the library edits the copy's, never the source tree that tests
    running beside it use)."""
    env = dict(os.environ)
    if Path(cwd).resolve() != ROOT:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(cwd).resolve() / "src"), env.get("PYTHONPATH")) if p
        )
    return env


def snakemake(*args: str, cwd: Path = ROOT, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=own_library(cwd),
    )  # fmt: skip


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


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full build of the pipeline on synthetic data, in a fresh copy of the project."""
    work = copy_project(tmp_path_factory.mktemp("e2e") / "project")
    out = snakemake("--cores", "2", "--configfile", "tests/e2e_config.yaml", cwd=work)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    return work


@pytest.mark.slow
def test_end_to_end_builds_the_report(built):
    report = built / "results/report/evaluation.html"
    assert report.stat().st_size > 10_000
    registry = json.loads((built / "results/registry.json").read_text())
    for key in ("cohort.n_treated", "matching.max_abs_smd_after", "reoffending.rate_difference"):
        assert key in registry["numbers"], key


@pytest.mark.slow
def test_second_run_has_nothing_to_do(built):
    out = snakemake("-n", "--configfile", "tests/e2e_config.yaml", cwd=built)
    assert out.returncode == 0
    assert "Nothing to be done" in out.stdout + out.stderr


def _jobs_to_run(dry_run: str) -> set[str]:
    """Rule names in the "Job stats" table of a dry run's output."""
    assert "Job stats:" in dry_run, dry_run[-2000:]
    table = dry_run.split("Job stats:", 1)[1].split("total", 1)[0]
    return {line.split()[0] for line in table.splitlines()[3:] if line.strip()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "module, stage",
    [("effects/ph_test.py", "survival"), ("effects/panel_leads.py", "panel")],
)
def test_a_library_edit_reruns_exactly_the_rules_that_run_it(built, module, stage):
    """Each rule declares the library modules its script imports (code inputs), so editing
    one module reruns the rule that runs it and what depends on its outputs, and nothing
    else. The edit is a comment line (Snakemake compares checksums, so touching a file is
    not an edit) in the build's own copy of the library; its bytes and time are restored
    afterwards for the other tests of the build."""
    path = built / "src" / "mydirection" / module
    before, text = path.stat(), path.read_bytes()
    try:
        path.write_bytes(text + b"\n# an edit\n")
        out = snakemake("-n", "--configfile", "tests/e2e_config.yaml", cwd=built)
    finally:
        path.write_bytes(text)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert out.returncode == 0, out.stderr[-3000:]
    forced = snakemake(
        "-n", "--forcerun", stage, "--configfile", "tests/e2e_config.yaml", cwd=built
    )
    downstream = _jobs_to_run(forced.stdout + forced.stderr)  # the rule and what needs it
    assert _jobs_to_run(out.stdout + out.stderr) == downstream
    assert {stage, "report"} <= downstream and not {"cohort", "matching"} & downstream


@pytest.mark.slow
def test_no_raw_identifier_reaches_results(built):
    people = (built / "data/synthetic/people.csv").read_text().splitlines()[1:]
    crns = {line.split(",")[0].strip() for line in people if line}
    leaked = []
    for path in (built / "results").rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            leaked += [path.name for crn in list(crns)[:200] if crn.encode() in blob]
    assert not leaked


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_bytes(built, tmp_path):
    """SIGTERM during matching, then a plain re-run: same registry and report as `built`.

    `built` was made in another fresh copy without interruption, so this is also the
    "two clean builds are byte-identical" check.
    """
    work = copy_project(tmp_path / "project")
    args = [SNAKEMAKE, "--cores", "2", "--configfile", "tests/e2e_config.yaml"]
    proc = subprocess.Popen(
        args, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=own_library(work)
    )
    matching_started = work / "results/logs/matching.log"
    deadline = time.monotonic() + 900
    while not matching_started.exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "matching never started"
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) != 0
    assert not (work / "results/registry.json").exists()

    resumed = snakemake("--cores", "2", "--configfile", "tests/e2e_config.yaml", cwd=work)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-6000:]
    for path in ("results/registry.json", "results/report/evaluation.html"):
        assert (work / path).read_bytes() == (built / path).read_bytes(), path


@pytest.mark.slow
def test_template_keys_and_registry_keys_agree_and_the_key_list_is_current(built):
    """Every key the template prints is reported (or the template asks has_key first), every
    reported number is shown somewhere in the report, and docs/registry-keys.md is the
    list generated from this build."""
    import re

    from bs4 import BeautifulSoup

    from mydirection.reporting.keys_doc import keys_doc

    registry = json.loads((built / "results/registry.json").read_text())
    template = re.sub(
        r"<!--#.*?#-->", "", (ROOT / "reports/evaluation.qmd").read_text(), flags=re.S
    )
    # keys printed outside every {% if %}: rendered whatever the data, so they must be reported
    # (inside a branch that renders, a missing key stops the build with ReportKeyError)
    depth, unconditional = 0, []
    for token in re.split(r"(\{%-?\s*(?:if|endif)\b[^%]*%\})", template):
        if re.match(r"\{%-?\s*if\b", token):
            depth += 1
        elif re.match(r"\{%-?\s*endif\b", token):
            depth -= 1
        elif depth == 0:
            unconditional.append(token)
    pattern = r"""\b(?:n|r\.n|r\.p|r\.size|r\.opt|r\.value)\("([a-z0-9_.\-]+)"\)"""
    assert set(re.findall(pattern, template)), "the template prints no registry key?"
    assert not set(re.findall(pattern, "".join(unconditional))) - set(registry["numbers"])
    html = BeautifulSoup((built / "results/report/evaluation.html").read_text(), "html.parser")
    shown = {s["data-key"] for s in html.find_all(attrs={"data-key": True})}
    assert not set(registry["numbers"]) - shown
    doc = (ROOT / "docs/registry-keys.md").read_text()
    assert doc == keys_doc(registry), (
        "docs/registry-keys.md is stale: python -m mydirection.reporting.keys_doc "
        "<e2e build>/results/registry.json docs/registry-keys.md"
    )
