"""Running the clean stage's rules in process, the way Snakemake would (tests only).

``run_clean_stage`` runs ``scripts/clean.py`` once per job of the stage, in DAG order
(clean_extract per extract, people first, then clean), each with a stand-in ``snakemake``
object, and stops at the first job that exits. Each job's log goes to its own file, as in
the real rules; the returned :class:`StageRun` has them all.
"""

from __future__ import annotations

import runpy
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from helpers import Names

from mydirection.contract import EXTRACTS
from mydirection.keys import SYNTHETIC_KEY, fingerprint
from mydirection.settings import with_defaults

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "clean.py"
END = "2020-06-30"
NEEDS = {n: ["people"] for n in EXTRACTS if n not in ("people", "staff")}
NEEDS["contacts"] = ["people", "supervision"]


@dataclass
class StageRun:
    code: int
    out: Path
    logs: list[Path] = field(default_factory=list)
    failed_rule: str | None = None
    failed_outputs: list[Path] = field(default_factory=list)

    @property
    def outputs(self) -> list[Path]:
        """Every output of the stage (cleaned tables, log parts, log, numbers, stamp)."""
        clean = self.out / "clean"
        return (
            [clean / f"{n}.parquet" for n in EXTRACTS]
            + [clean / "log" / f"{n}.parquet" for n in EXTRACTS]
            + [clean / "cleaning_log.parquet"]
            + [self.out / "numbers" / "clean.json"]
        )

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.out / "clean" / f"{name}.parquet")

    def log_text(self) -> str:
        return "".join(p.read_text() for p in self.logs if p.is_file())


def _params(step, raw_dir, key_env, key_fingerprint, **extra):
    return SimpleNamespace(
        step=step,
        raw_dir=raw_dir,
        extract_end_date=END,
        pseudonymisation={"key_env": key_env, "key_file": None},
        key_fingerprint=key_fingerprint,
        checksums={},
        **extra,
    )


def _run(fake) -> int:
    try:
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": fake}, run_name="__main__")
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def run_clean_stage(
    paths: dict[str, str | Path],
    out: Path,
    *,
    raw_dir=None,
    key_env: str = "MYDIRECTION_TEST_KEY_UNSET",
    key_fingerprint: str | None = None,
    plant_stale: bool = False,
) -> StageRun:
    """Run the stage's jobs on ``paths`` (extract -> raw CSV) with outputs under ``out``."""
    out = Path(out)
    clean = out / "clean"
    if raw_dir is None:  # synthetic mode: the folder must carry the generator's stamp
        folder = Path(paths["people"]).parent
        for stamp in ("truth.json", "mess.json"):
            if not (folder / stamp).exists():
                (folder / stamp).write_text("{}\n")
    run = StageRun(0, out)
    if plant_stale:  # outputs of an "earlier run": a failing job must leave none behind
        for p in run.outputs:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("left over from an earlier run")
    fp = key_fingerprint or (fingerprint(SYNTHETIC_KEY) if raw_dir is None else None)
    jobs = [("clean_extract", n) for n in EXTRACTS] + [("clean", None)]
    for rule, name in jobs:
        logfile = out / "logs" / (f"clean_{name}.log" if name else f"{rule}.log")
        run.logs.append(logfile)
        if rule == "clean_extract":
            inputs = {"raw": str(paths[name])}
            inputs.update({k: str(clean / f"{k}.parquet") for k in NEEDS.get(name, [])})
            outputs = {
                "table": str(clean / f"{name}.parquet"),
                "log_part": str(clean / "log" / f"{name}.parquet"),
            }
            params = _params("extract", raw_dir, key_env, fp, extract=name, raw_files=dict(paths))
        else:
            inputs = {"parts": [str(clean / "log" / f"{n}.parquet") for n in EXTRACTS]}
            outputs = {
                "log_table": str(clean / "cleaning_log.parquet"),
                "numbers": str(out / "numbers" / "clean.json"),
            }
            params = _params("merge", raw_dir, key_env, fp)
        for p in outputs.values():  # Snakemake removes a job's old outputs before it runs
            Path(p).unlink(missing_ok=True)
        fake = SimpleNamespace(
            input=Names(inputs),
            output=Names(outputs),
            params=params,
            log=[str(logfile)],
            rule=rule,
            config=with_defaults(
                {"extract_end_date": END, "pseudonymisation": {"key_env": key_env}}
            ),
        )
        code = _run(fake)
        if code:
            run.code, run.failed_rule = code, rule
            run.failed_outputs = [Path(p) for p in outputs.values()]
            return run
    return run
