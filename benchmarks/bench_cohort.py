"""Cohort and outcomes stages at national scale (about a million people in the comparator pool).

Cleaned tables shaped like ``results/clean/<extract>.parquet`` are generated here with NumPy
(fast, independent of the synthetic-extract generator), written to Parquet in a temporary
folder, and the stage is timed as its script runs it: read Parquet, build, write Parquet.

    python benchmarks/run.py cohort

Two data sets: tables drawn here with NumPy (1.6M people, 3.2M events, 6.4M convictions,
2.4M assessments; a comparator pool of 1.13M), and the synthetic generator's national
extracts (``config/synthetic_national.yaml``: 1M pool, 1,000 treated) passed through the
clean stage (set-up case, cached under /tmp/mydirection_bench, shared with bench_clean.py).

Measured 2026-11-29 on the 2-core, shared development machine (wall time inflated by
other engineers' jobs; CPU seconds are the stage's own):

    case                       stage wall s  stage CPU s  peak MB
    cohort_national                    25.9         15.4     2454
    outcomes_national                  17.3          7.6     1626
    cohort_synthetic_national          14.4          7.8     1934
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mydirection.cohort import build_cohort, read_clean_table
from mydirection.covariates import NEEDS
from mydirection.outcomes import REQUIRED as OUTCOME_INPUTS
from mydirection.outcomes import proven_reoffending
from mydirection.settings import CohortSettings

N_PEOPLE = 1_600_000  # gives a comparator pool of about a million people
N_ENROLLED = 3_000
CACHE = Path(tempfile.gettempdir()) / f"mydirection_bench_cohort_arrow_{N_PEOPLE}"
TABLES = ("people", "supervision", "assessments", "convictions", "enrolments")


def national_tables(n_people: int = N_PEOPLE, seed: int = 1) -> dict[str, pd.DataFrame]:
    """Cleaned tables at scale: ~2 events, ~1.5 assessments, ~4 convictions per person."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{x:016x}" for x in rng.integers(0, 2**63, n_people)], dtype=object)
    people = pd.DataFrame(
        {
            "person_id": ids,
            "sex": rng.choice(["male", "female"], n_people, p=[0.85, 0.15]),
            "ethnicity": rng.choice(["white", "black", "asian", "mixed", "other"], n_people),
        }
    )
    day0 = np.datetime64("2016-01-01", "D")

    n_ev = int(n_people * 2)
    who = rng.integers(0, n_people, n_ev)
    in_2018 = rng.random(n_ev) < 0.6  # 60 % of events start in the recruitment year
    start = day0 + np.where(
        in_2018, 2 * 365 + rng.integers(0, 365, n_ev), rng.integers(0, 4 * 365, n_ev)
    ).astype("timedelta64[D]")
    supervision = pd.DataFrame(
        {
            "event_id": np.array([f"E{i:09d}" for i in range(n_ev)], dtype=object),
            "person_id": ids[who],
            "sentence_type": rng.choice(
                [
                    "community_order",
                    "suspended_sentence_order",
                    "licence",
                    "post_sentence_supervision",
                ],
                n_ev,
            ),
            "start_date": start.astype("datetime64[ns]"),
            "end_date": (start + rng.integers(90, 900, n_ev).astype("timedelta64[D]")).astype(
                "datetime64[ns]"
            ),
            "index_offence_group": rng.choice(["theft", "violence", "drugs", "other"], n_ev),
            "rosh": rng.choice(
                ["low", "medium", "high", "very_high"], n_ev, p=[0.5, 0.4, 0.08, 0.02]
            ),
            "office": rng.choice([f"office_{i:02d}" for i in range(60)] + ["hull_central"], n_ev),
            "case_manager_id": np.array([f"S{i:05d}" for i in rng.integers(0, 20_000, n_ev)]),
            "age_at_start": rng.uniform(17, 70, n_ev),
        }
    )

    eligible_2018 = np.flatnonzero(
        (start >= np.datetime64("2018-01-01")) & (start <= np.datetime64("2018-12-31"))
    )
    pick = rng.choice(eligible_2018, N_ENROLLED, replace=False)
    enrol_person, first = np.unique(who[pick], return_index=True)
    enrolments = pd.DataFrame(
        {
            "person_id": ids[enrol_person],
            "enrolment_date": (
                start[pick][first] + rng.integers(0, 60, len(first)).astype("timedelta64[D]")
            ).astype("datetime64[ns]"),
            "case_manager_id": "S00001",
        }
    )

    n_as = int(n_people * 1.5)
    a_who = rng.integers(0, n_people, n_as)
    a_day = day0 - 365 + rng.integers(0, 5 * 365, n_as).astype("timedelta64[D]")
    assessments = pd.DataFrame(
        {
            "person_id": ids[a_who],
            "assessment_date": a_day.astype("datetime64[ns]"),
            "ogrs3_1yr": rng.uniform(1, 99, n_as),
            "ogrs3_2yr": rng.uniform(1, 99, n_as),
            **{need: pd.array(rng.random(n_as) < 0.4, dtype="boolean") for need in NEEDS},
        }
    ).drop_duplicates(["person_id", "assessment_date"])

    n_cv = n_people * 4
    c_who = rng.integers(0, n_people, n_cv)
    off = day0 - 8 * 365 + rng.integers(0, 12 * 365, n_cv).astype("timedelta64[D]")
    convictions = pd.DataFrame(
        {
            "person_id": ids[c_who],
            "offence_date": off.astype("datetime64[ns]"),
            "disposal_date": (off + rng.integers(0, 300, n_cv).astype("timedelta64[D]")).astype(
                "datetime64[ns]"
            ),
            "offence_group": rng.choice(["theft", "violence", "breach", "drugs"], n_cv),
            "disposal_type": rng.choice(["custody", "fine", "community_order"], n_cv),
            "severity": rng.choice(["indictable", "either_way", "summary"], n_cv),
            "age_at_offence": rng.uniform(12, 70, n_cv),
        }
    )
    tables = {
        "people": people,
        "supervision": supervision,
        "assessments": assessments,
        "convictions": convictions,
        "enrolments": enrolments,
    }
    # text columns as the clean stage writes them: Arrow-backed strings
    arrow_string = pd.ArrowDtype(pa.string())
    for df in tables.values():
        for col in df.columns:
            if df[col].dtype == object:
                df[col] = df[col].astype(arrow_string)
    return tables


def generate_national_tables():
    """Write the national tables once (a case of its own, so its memory is not counted)."""
    done = CACHE / "done"
    if not done.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        for name, df in national_tables().items():
            df.to_parquet(CACHE / f"{name}.parquet", index=False)
        done.write_text("ok\n")
    return {"rows": sum(pq.ParquetFile(CACHE / f"{n}.parquet").metadata.num_rows for n in TABLES)}


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - wall, 1), round(time.process_time() - cpu, 1)


def cohort_national():
    """The cohort script's work: read the five cleaned tables, build, write."""
    generate_national_tables()
    with tempfile.TemporaryDirectory() as tmp:

        def stage():
            tables = {n: read_clean_table(CACHE / f"{n}.parquet", n) for n in TABLES}
            result = build_cohort(**tables, settings=CohortSettings.default())
            result.cohort.to_parquet(Path(tmp) / "cohort.parquet", index=False)
            result.attrition.to_parquet(Path(tmp) / "attrition.parquet", index=False)
            return result

        result, wall, cpu = _timed(stage)
        c = result.cohort
        c.to_parquet(CACHE / "cohort.parquet", index=False)
        return {
            "stage_wall_s": wall,
            "stage_cpu_s": cpu,
            "n_treated": int(c["treated"].sum()),
            "n_comparator_pool": int((~c["treated"]).sum()),
        }


def outcomes_national():
    """The outcomes script's work: read cohort and convictions, classify, write."""
    if not (CACHE / "cohort.parquet").exists():
        cohort_national()
    with tempfile.TemporaryDirectory() as tmp:

        def stage():
            c = read_clean_table(CACHE / "cohort.parquet", "cohort", OUTCOME_INPUTS["cohort"])
            conv = read_clean_table(
                CACHE / "convictions.parquet", "convictions", OUTCOME_INPUTS["convictions"]
            )
            out = proven_reoffending(c, conv, extract_end_date="2020-06-30")
            out.to_parquet(Path(tmp) / "outcomes.parquet", index=False)
            return out

        out, wall, cpu = _timed(stage)
        return {"stage_wall_s": wall, "stage_cpu_s": cpu, "n_people": len(out)}


# ---- the same stages on the synthetic generator's national extracts, through the clean stage

SYNTHETIC_RAW = Path("/tmp/mydirection_bench")  # shared with bench_clean.py (same key)
SEED = 20180101


def _synthetic_clean_folder() -> Path:
    """Cleaned national synthetic tables (generated and cleaned once, then cached)."""
    import hashlib
    import json

    import yaml

    from mydirection import synthetic
    from mydirection.clean import SYNTHETIC_KEY, clean_extracts, write_tables
    from mydirection.contract import EXTRACTS

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "config" / "synthetic_national.yaml").read_text())
    source = Path(synthetic.__file__).read_bytes()
    tag = hashlib.sha256(json.dumps([cfg, SEED], sort_keys=True).encode() + source).hexdigest()
    raw = SYNTHETIC_RAW / f"clean_{tag[:12]}"
    if not (raw / "mess.json").is_file():
        synthetic.write_extracts(raw, cfg, SEED)
    cleaned = SYNTHETIC_RAW / f"cohort_input_{tag[:12]}"
    if not (cleaned / "done").is_file():
        cleaned.mkdir(parents=True, exist_ok=True)
        tables, log = clean_extracts(
            {n: raw / f"{n}.csv" for n in EXTRACTS}, "2020-06-30", SYNTHETIC_KEY
        )
        outputs = {n: cleaned / f"{n}.parquet" for n in EXTRACTS}
        outputs["cleaning_log"] = cleaned / "cleaning_log.parquet"
        write_tables(tables, log, outputs)
        (cleaned / "done").write_text("ok\n")
    return cleaned


def prepare_synthetic_national():
    """Set-up (not a stage timing): generate and clean the national synthetic extracts."""
    folder = _synthetic_clean_folder()
    return {"rows": sum(pq.ParquetFile(folder / f"{n}.parquet").metadata.num_rows for n in TABLES)}


def cohort_synthetic_national():
    """The cohort script's work on the cleaned national synthetic tables."""
    folder = _synthetic_clean_folder()
    with tempfile.TemporaryDirectory() as tmp:

        def stage():
            tables = {n: read_clean_table(folder / f"{n}.parquet", n) for n in TABLES}
            result = build_cohort(**tables, settings=CohortSettings.default())
            result.cohort.to_parquet(Path(tmp) / "cohort.parquet", index=False)
            result.attrition.to_parquet(Path(tmp) / "attrition.parquet", index=False)
            return result

        result, wall, cpu = _timed(stage)
        return {
            "stage_wall_s": wall,
            "stage_cpu_s": cpu,
            "n_treated": int(result.cohort["treated"].sum()),
            "n_comparator_pool": int((~result.cohort["treated"]).sum()),
        }


CASES = {
    "generate_national_tables": generate_national_tables,
    "cohort_national": cohort_national,
    "outcomes_national": outcomes_national,
    "prepare_synthetic_national": prepare_synthetic_national,
    "cohort_synthetic_national": cohort_synthetic_national,
}
