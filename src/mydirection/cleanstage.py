"""The clean stage as Snakemake runs it: two kinds of job (``scripts/clean.py``).

1. ``clean_extract`` (one job per extract, people first): reads, validates and cleans one
   extract (one read of the file), linked to the cleaned people table (and contacts to
   supervision). When its file has a problem, the job also validates every other raw file
   (it reads them only for that, through ``params.raw_files``, so they are not its inputs)
   and reports EVERY problem of every file in one message, one line each: the first job
   that fails names them all, and leaves none of its outputs (the jobs that succeeded keep
   theirs: their files are valid). A file validated before with the same content, contract
   and code is not validated again (``.snakemake/mydirection/validated/``). On synthetic
   extracts it refuses files the generator did not make (:func:`synthetic_stamp_problems`).
   Writes ``results/clean/<extract>.parquet`` and its part of the log,
   ``results/clean/log/<extract>.parquet``.
2. ``clean``: gathers the parts into ``results/clean/cleaning_log.parquet`` (received =
   kept + excluded per file, checked) and ``results/numbers/clean.json``.

Each job loads the key again and checks its fingerprint against the one the DAG was built
with (``params.key_fingerprint``), so a key changed mid-run is noticed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pandas as pd

from mydirection.clean import (
    EXCLUSIONS,
    NEEDS,
    clean_extract,
    load_key,
    log_frame,
    read_for_cleaning,
    write_parquet,
)
from mydirection.contract import EXTRACTS, SCHEMA_DIR, extract_schema
from mydirection.errors import UserError
from mydirection.keys import fingerprint
from mydirection.preflight import checksums
from mydirection.reading import ExtractProblems, Problem

log = logging.getLogger("mydirection.clean")

VALIDATED_CACHE = Path(".snakemake") / "mydirection" / "validated"
#: Keys the generator may use to record the checksums of the CSVs it wrote.
STAMP_KEYS = ("sha256", "checksums", "extract_sha256")


def _key(p) -> bytes:
    synthetic = not p.raw_dir
    key = load_key(dict(p.pseudonymisation or {}), synthetic=synthetic)
    want = getattr(p, "key_fingerprint", None)
    if want and fingerprint(key) != want:
        raise UserError(
            f"the pseudonymisation key changed after the run was planned (fingerprint "
            f"{fingerprint(key)}, planned {want}); re-run so that every table uses one key"
        )
    return key


def _code_tag() -> str:
    """Contract and validation code: a cached validation holds only while both are unchanged."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in sorted(SCHEMA_DIR.glob("*.yaml")) + [here / "validate.py", here / "reading.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def synthetic_stamp_problems(folder: Path) -> list[Problem]:
    """Problems when the synthetic folder holds files the generator did not make.

    Real extracts put in ``data/synthetic`` would be pseudonymised with the public synthetic
    key. The generator writes ``truth.json`` and ``mess.json`` after the ten CSVs: both must be
    there, no CSV may be newer than them, and where the stamp records checksums of the CSVs
    (under one of :data:`STAMP_KEYS`) they must match.
    """
    label = str(folder)
    fix = (
        "real extracts must be given with `--config raw_dir=/path/to/extracts` (pseudonymised "
        "with your own key), never put in data/synthetic; remove them and re-run"
    )
    stamps = [folder / "truth.json", folder / "mess.json"]
    missing = [s.name for s in stamps if not s.is_file()]
    if missing:
        return [
            Problem(
                label,
                None,
                f"holds extracts without the synthetic generator's stamp ({', '.join(missing)} "
                f"missing), so they may be real data",
                fix,
            )
        ]
    newest_stamp = max(s.stat().st_mtime_ns for s in stamps)
    csvs = {n: folder / extract_schema(n)["file"] for n in EXTRACTS}
    newer = [p.name for p in csvs.values() if p.is_file() and p.stat().st_mtime_ns > newest_stamp]
    if newer:
        return [
            Problem(
                label,
                None,
                f"{', '.join(newer)} changed after the synthetic generator wrote its stamp, so "
                f"they may be real data",
                fix,
            )
        ]
    recorded = {}
    for stamp in stamps:
        try:
            doc = json.loads(stamp.read_text())
        except (OSError, ValueError):
            return [Problem(str(stamp), None, "is not the generator's JSON stamp", fix)]
        for k in STAMP_KEYS:
            if isinstance(doc.get(k), dict):
                recorded.update(doc[k])
    if recorded:
        sums = checksums({n: str(p) for n, p in csvs.items()})
        wrong = [
            csvs[n].name
            for n in EXTRACTS
            if (recorded.get(n) or recorded.get(csvs[n].name)) not in (None, sums[n])
        ]
        if wrong:
            return [
                Problem(
                    label,
                    None,
                    f"{', '.join(wrong)} do not match the checksums the synthetic generator "
                    f"recorded, so they may be real data",
                    fix,
                )
            ]
    return []


# --------------------------------------------------------------------------- validation


def _validate_one(name: str, path: str, tag: str) -> None:
    """Validate one raw file (raises ExtractProblems); a success is remembered by content."""
    from mydirection.cleansteps import exact_duplicates, normalise_ids
    from mydirection.reading import file_problem
    from mydirection.validate import extract_problems

    problem = file_problem(Path(path), name)
    if problem:
        raise ExtractProblems([problem])
    cached = _cache_file(name, path, tag)
    if cached.is_file():
        return
    data, lines = read_for_cleaning(path, name, quiet=True)
    dup = exact_duplicates(data, extract_schema(name).get("key")).to_numpy()
    if dup.any():
        data = data[~dup]
    data = normalise_ids(data, name)
    found = extract_problems(data, name, path, lines)
    del data
    if found:
        raise ExtractProblems(found)
    _remember(cached)


def _cache_file(name: str, path: str, tag: str) -> Path:
    sha = checksums({name: path})[name]
    return VALIDATED_CACHE / f"{name}-{sha}-{tag}.ok"


def _remember(cached: Path) -> None:
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text("valid\n")
    except OSError:
        pass


def every_problem(raw_files: dict, first: list[Problem], failed: str) -> list[Problem]:
    """``first`` (the problems of ``failed``) and those of every other raw file, so that one
    run names them all (the error path only: a file validated before is not read again)."""
    tag = _code_tag()
    problems = []
    for name in EXTRACTS:
        if name == failed:
            problems.extend(first)
            continue
        try:
            _validate_one(name, str(raw_files[name]), tag)
        except ExtractProblems as err:
            problems.extend(err.problems)
    return problems


# --------------------------------------------------------------------------- one extract

#: The columns of earlier cleaned tables an extract is checked against.
LINK_COLUMNS = {
    "people": ["person_id", "birth_year"],
    "supervision": ["event_id", "person_id", "end_date"],
}


def read_link_table(path, columns) -> pd.DataFrame:
    """Only the linking columns, text as Arrow strings (a fraction of the memory)."""
    import pyarrow as pa_
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)

    def mapper(t):
        return pd.ArrowDtype(t) if pa_.types.is_string(t) or pa_.types.is_large_string(t) else None

    return table.to_pandas(types_mapper=mapper)


def extract_step(snakemake) -> None:
    p = snakemake.params
    name = p.extract
    path = str(snakemake.input.raw)
    raw_files = dict(p.raw_files)
    if not p.raw_dir:
        stamp = synthetic_stamp_problems(Path(path).parent)
        if stamp:
            raise ExtractProblems(stamp)
    key = _key(p)
    tag = _code_tag()
    cached = _cache_file(name, path, tag)
    try:
        from mydirection.reading import file_problem

        problem = file_problem(Path(path), name)
        if problem:
            raise ExtractProblems([problem])
        earlier = {}
        for need, columns in LINK_COLUMNS.items():
            path_of = getattr(snakemake.input, need, None)
            if path_of and need in NEEDS[name]:
                earlier[need] = read_link_table(path_of, columns)
        data, lines = read_for_cleaning(path, name)
        holder = [data]
        del data  # handed over: freed once typed
        done = clean_extract(
            name,
            holder,
            p.extract_end_date,
            key,
            earlier,
            path=path,
            lines=lines,
            validate=not cached.is_file(),
        )
    except ExtractProblems as err:
        linking = [q for q in err.problems if "no people linked" in q.what]
        if linking:
            raise
        raise ExtractProblems(every_problem(raw_files, err.problems, name)) from None
    _remember(cached)
    write_parquet(done.table, snakemake.output.table)
    write_parquet(log_frame(done.log), snakemake.output.log_part)


# --------------------------------------------------------------------------- merge


def merge_step(job) -> None:
    from mydirection.reporting.numbers import Numbers
    from mydirection.settings import CleanSettings

    p = job.params
    parts = {Path(f).stem: pd.read_parquet(f) for f in job.input.parts}
    log_table = log_frame(
        pd.concat([parts[n] for n in EXTRACTS], ignore_index=True).to_dict("records")
    )
    for name in EXTRACTS:
        rows = log_table[log_table["file"] == name]
        got = dict(zip(rows["action"] + ":" + rows["rule"], rows["rows"], strict=True))
        excluded = sum(int(got.get(f"excluded:{r}", 0)) for r in EXCLUSIONS[name])
        if got.get("received:read") != got.get("kept:kept") + excluded:
            raise UserError(f"cleaning log of {name}: rows received != kept + excluded; re-run")
    write_parquet(log_table, job.output.log_table)

    def total(action, file=None):
        sel = log_table[
            (log_table["action"] == action) & ((log_table["file"] == file) if file else True)
        ]
        return int(sel["rows"].sum())

    job.settings(CleanSettings)
    numbers = Numbers()
    numbers.count("clean.rows_received", total("received"), "rows received", unit="rows")
    numbers.count("clean.rows_kept", total("kept"), "rows kept", unit="rows")
    numbers.count("clean.rows_excluded", total("excluded"), "rows excluded", unit="rows")
    numbers.count(
        "clean.row_fixes",
        total("fixed"),
        "rows fixed, summed over the fixing rules (id_normalised, code_normalised, date_format)",
        unit="rows",
    )
    numbers.count("clean.n_people", total("kept", "people"), "people in the cleaned extract")
    numbers.add(
        "clean.key_fingerprint",
        p.key_fingerprint,
        "text",
        "fingerprint of the pseudonymisation key (first 12 hex of HMAC-SHA256(key, "
        "'mydirection-key-fingerprint')): equal in two builds exactly when they used the "
        "same key",
    )
    job.report(numbers)
