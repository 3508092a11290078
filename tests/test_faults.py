"""The fault suite: what an on-call engineer meets, each ending in one clear message or a
correct rerun — never a traceback, a silent wrong result or an output left half-written.

In process (fast): a full disk while cleaning, an unreadable file, a symbolic link that
loops, a folder or a named pipe where a file should be. Through real Snakemake runs on a
copy of the project in real-data mode (slow): stale inputs tracked by content in both
directions, a staff change that does not rerun the cohort, a key change that reruns the
cleaning, every problem of several broken files in one pass, the pre-flight refusals, and
SIGKILL of a running clean job followed by a plain re-run.
"""

from __future__ import annotations

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from clean_harness import run_clean_stage
from helpers import copy_project

from mydirection.contract import EXTRACTS
from mydirection.synthetic import write_extracts

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = {"n_treated": 20, "n_comparator_pool": 200}
KEY = "fault-suite-key-0123456789abcdefXYZ"


@pytest.fixture(scope="module")
def synthetic_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    write_extracts(raw, TINY, 3)
    return raw


def _copy(raw: Path, dest: Path) -> Path:
    shutil.copytree(raw, dest)
    return dest


def _stage(raw: Path, out: Path):
    os.environ["MYDIRECTION_FAULT_KEY"] = KEY
    return run_clean_stage(
        {n: raw / f"{n}.csv" for n in EXTRACTS},
        out,
        raw_dir=str(raw),
        key_env="MYDIRECTION_FAULT_KEY",
        plant_stale=True,
    )


def _read(path: Path):
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def _write(path: Path, header, rows) -> None:
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *rows])


def _one_error(err: str) -> str:
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1, err[-3000:]
    return errors[0]


# --------------------------------------------------------------------------- in process


def test_a_full_disk_while_cleaning_is_one_message_and_no_half_written_table(
    synthetic_raw, tmp_path, capsys, monkeypatch
):
    raw = _copy(synthetic_raw, tmp_path / "raw")
    real = pd.DataFrame.to_parquet

    def full(self, path, *args, **kwargs):
        if str(path).endswith("contacts.parquet"):
            Path(path).write_bytes(b"PAR1 half a file")  # what a full disk leaves
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    run = _stage(raw, tmp_path / "results")
    assert run.code == 1 and run.failed_rule == "clean_extract"
    line = _one_error(capsys.readouterr().err)
    assert "contacts.parquet: no space left on the device" in line and "free disk space" in line
    assert not (run.out / "clean" / "contacts.parquet").exists()


def test_an_unreadable_file_is_named_with_the_fix(synthetic_raw, tmp_path, capsys, monkeypatch):
    raw = _copy(synthetic_raw, tmp_path / "raw")
    target = raw / "plans.csv"
    if os.geteuid() != 0:
        target.chmod(0)
    else:  # root reads everything: make the open fail as it would for another user
        import builtins

        from mydirection import reading

        def deny(path, *args, **kwargs):
            if Path(path) == target:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return builtins.open(path, *args, **kwargs)

        monkeypatch.setattr(reading, "open", deny, raising=False)
    run = _stage(raw, tmp_path / "results")
    assert run.code == 1
    line = _one_error(capsys.readouterr().err)
    assert f"{target}: cannot be read: permission denied" in line and "chmod u+r" in line


@pytest.mark.parametrize("kind", ["symlink_loop", "folder", "fifo", "dangling_link"])
def test_a_path_that_is_not_a_file_is_named_as_such(synthetic_raw, tmp_path, capsys, kind):
    raw = _copy(synthetic_raw, tmp_path / "raw")
    target = raw / "people.csv"
    target.unlink()
    says = {
        "symlink_loop": "symbolic link that loops",
        "folder": "is a folder, not a file",
        "fifo": "is a named pipe (FIFO)",
        "dangling_link": "which does not exist",
    }[kind]
    if kind == "symlink_loop":
        os.symlink("people.csv", target)
    elif kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)  # opening it would block forever: it must never be opened
    else:
        os.symlink(raw / "gone.csv", target)
    run = _stage(raw, tmp_path / "results")
    assert run.code == 1
    line = _one_error(capsys.readouterr().err)
    assert f"{target}: " in line and says in line and "file not found" not in line


def test_make_report_passes_raw_dir_to_snakemake():
    root = Path(__file__).resolve().parents[1]
    stamp = root / ".venv" / ".installed"
    if not stamp.exists():
        pytest.skip("no .venv stamp: make would install first")

    def plan(*args):
        out = subprocess.run(
            ["make", "-n", "report", *args], cwd=root, capture_output=True, text=True
        )
        return [line for line in out.stdout.splitlines() if "snakemake" in line][-1]

    assert "--config 'raw_dir=/secure/extracts'" in plan("RAW_DIR=/secure/extracts")
    assert "--config 'raw_dir='" in plan("RAW_DIR=")  # an unset variable: refused, not synthetic
    assert "raw_dir" not in plan()


# --------------------------------------------------------------------------- through Snakemake


def _snakemake(work: Path, *args: str, key: str | None = KEY, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "MYDIRECTION_PSEUDO_KEY"}
    if key is not None:
        env["MYDIRECTION_PSEUDO_KEY"] = key
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def _ran(out) -> set[str]:
    text = out.stdout + out.stderr
    jobs = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")):
            jobs.add(line.split()[1].rstrip(":"))
    return jobs


@pytest.fixture(scope="module")
def project(tmp_path_factory, synthetic_raw):
    work = copy_project(tmp_path_factory.mktemp("faults") / "project")
    raw = _copy(synthetic_raw, tmp_path_factory.mktemp("extracts") / "raw")
    return work, raw


def _planned(out) -> set[str]:
    return {line.split()[0] for line in (out.stdout + out.stderr).splitlines() if line.strip()}


@pytest.mark.slow
def test_a_real_data_run_leaves_out_the_synthetic_simulation_unless_asked(project):
    work, raw = project
    real = _snakemake(work, "-n", "--config", f"raw_dir={raw}", "--quiet", "rules")
    assert real.returncode == 0, real.stderr[-3000:]
    assert "report" in _planned(real) and "simulation_batch" not in _planned(real)
    asked = _snakemake(
        work, "-n", "--config", f"raw_dir={raw}", "simulation={in_report: true}",
        "--quiet", "rules",
    )  # fmt: skip
    assert "simulation_batch" in _planned(asked)
    synthetic = _snakemake(work, "-n", "--quiet", "rules")
    assert "simulation_batch" in _planned(synthetic)


@pytest.mark.slow
def test_raw_extracts_are_tracked_by_content_not_by_date(project):
    work, raw = project
    config = ["--config", f"raw_dir={raw}"]
    out = _snakemake(work, "cohort", "clean", *config)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    cohort = work / "results/cohort/cohort.parquet"
    before = cohort.stat().st_mtime_ns

    # unchanged content, new date: nothing to do
    (raw / "supervision.csv").touch()
    out = _snakemake(work, "-n", "cohort", "clean", *config)
    assert "Nothing to be done" in out.stdout + out.stderr, out.stdout[-3000:]

    # a corrected extract with an OLD date (cp -p): reruns what depends on it
    fixed = raw.parent / "fixed_supervision.csv"
    lines = (raw / "supervision.csv").read_text().splitlines(keepends=True)
    fixed.write_text("".join(lines[:-1]))  # the last event withdrawn
    os.utime(fixed, ns=(1_000_000_000, 1_000_000_000))  # 1970: older than every output
    subprocess.run(["cp", "-p", str(fixed), str(raw / "supervision.csv")], check=True)
    out = _snakemake(work, "cohort", "clean", *config)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert {"clean_extract", "clean", "cohort"} <= _ran(out)
    assert cohort.stat().st_mtime_ns > before

    # staff.csv changes: cleaning staff reruns, the cohort (which never reads it) does not
    staff = raw / "staff.csv"
    text = staff.read_text().splitlines(keepends=True)
    staff.write_text("".join(text[:-1]))  # one case manager fewer
    out = _snakemake(work, "cohort", "clean", "-n", *config, "--quiet", "rules")
    text = out.stdout + out.stderr
    planned = {line.split()[0] for line in text.splitlines() if line.strip()}
    assert {"clean_extract", "clean"} <= planned, out.stdout
    assert "cohort" not in planned, out.stdout
    out = _snakemake(work, "cohort", "clean", *config)
    assert out.returncode == 0 and "cohort" not in _ran(out)

    # a key change reruns the cleaning (the fingerprint is a param)
    out = _snakemake(work, "clean", "-n", *config, "--quiet", "rules", key=KEY + "-rotated")
    assert "clean_extract" in out.stdout, out.stdout


@pytest.mark.slow
def test_every_problem_in_every_file_in_one_pass(project, tmp_path):
    work, raw = project
    broken = _copy(raw, tmp_path / "broken")
    sup = broken / "supervision.csv"
    sup.write_text(sup.read_text().replace("community_order", "Community Sentence", 1))
    con = broken / "contacts.csv"
    header, rows = _read(con)
    rows[4][header.index("contact_date")] = "03/25/2019"  # a US date
    _write(con, header, rows)
    out = _snakemake(work, "clean", "--config", f"raw_dir={broken}")
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Traceback" not in text
    assert "2 problems in 2 extract(s) (contacts.csv, supervision.csv)" in text
    assert "supervision.csv, column sentence_type" in text
    assert "contacts.csv, column contact_date" in text and "US dates (MM/DD/YYYY)" in text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("empty_raw_dir", "config setting raw_dir is empty"),
        ("braces", "cannot be used in a Snakemake input path"),
        ("misnamed", "the folder has 'People.csv'"),
        ("no_key", "no pseudonymisation key for real extracts"),
        ("weak_key", "too little variety"),
        ("spaces_key", "is blank"),
    ],
)
def test_preflight_refuses_before_any_job(project, tmp_path, setup, says):
    work, raw = project
    folder, key = raw, KEY
    if setup == "empty_raw_dir":
        folder = ""
    elif setup == "braces":
        folder = _copy(raw, tmp_path / "ex{tract}s")
    elif setup == "misnamed":
        folder = _copy(raw, tmp_path / "misnamed")
        (folder / "people.csv").rename(folder / "People.csv")
    elif setup == "no_key":
        key = None
    elif setup == "weak_key":
        key = "a" * 32
    elif setup == "spaces_key":
        key = " " * 16
    started = time.perf_counter()
    out = _snakemake(work, "-n", "clean", "--config", f"raw_dir={folder}", key=key)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Traceback" not in text
    assert "ERROR: " in text and says in text, text[-2000:]
    assert "Building DAG" not in text or "rule clean" not in text
    assert time.perf_counter() - started < 60


@pytest.mark.slow
def test_sigkill_during_cleaning_then_a_plain_rerun(project, tmp_path):
    work, raw = project
    big = _copy(raw, tmp_path / "big")
    contacts = big / "contacts.csv"
    header, rows = _read(contacts)
    j = header.index("contact_id")
    body = []
    for k in range(60):  # slow enough to be killed while it runs
        for row in rows:
            body.append([f"K{k}{v}" if i == j else v for i, v in enumerate(row)])
    _write(contacts, header, body)
    shutil.rmtree(work / "results", ignore_errors=True)
    env = {**os.environ, "MYDIRECTION_PSEUDO_KEY": KEY}
    proc = subprocess.Popen(
        [SNAKEMAKE, "--cores", "1", "clean", "--config", f"raw_dir={big}"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not (work / "results/clean/people.parquet").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = _snakemake(work, "clean", "--config", f"raw_dir={big}")
    text = out.stdout + out.stderr
    if out.returncode != 0:  # the first error line gives the recovery command
        first = [line for line in text.splitlines() if "ERROR" in line or "Error" in line][0]
        assert "recover with: snakemake --unlock" in first, text[-3000:]
        command = first.split("recover with: ", 1)[1]
        for step in command.split(" && "):
            args = step.split()[1:]
            args = [a for a in args if a not in ("--cores", "2")]
            again = _snakemake(work, *args)
        assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert (work / "results/clean/cleaning_log.parquet").is_file()
    log = pd.read_parquet(work / "results/clean/cleaning_log.parquet")
    assert int(log.loc[log["file"] == "contacts", "rows"].iloc[0]) == len(body)
