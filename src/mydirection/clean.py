"""Cleaning and pseudonymising the raw extracts (the boundary of the analysis).

The steps, in order, for each of the ten extracts (:data:`mydirection.contract.EXTRACTS`):

1. read the file as text (:func:`mydirection.validate.read_extract`);
2. ``exact_duplicate``: drop rows that repeat an earlier row exactly, on the raw text
   (excluded);
3. validate the text against the contract with pandera
   (:func:`mydirection.validate.validate_extract`) — a problem stops the run;
4. ``code_normalised``: codes with stray whitespace or upper case are stripped and
   lower-cased (fixed); ``date_format``: dates written DD/MM/YYYY are read as such (fixed);
5. ``after_extract_end``: rows whose record date (:data:`RECORD_DATES`) is after the
   extract end date (excluded);
6. the documented quirks (excluded): ``end_before_start`` (supervision end before start),
   ``disposal_before_offence`` (convictions), ``contact_after_order_end`` (contact dated after
   the end of its supervision event, judged against the cleaned supervision table);
7. ``person_not_in_people``: rows of any extract with a ``crn`` whose person is not in the
   cleaned people extract (excluded);
8. pseudonymisation: ``crn`` → ``person_id`` (HMAC-SHA256 with a secret key, first 16 hex
   characters); ``supervision.age_at_start`` and ``convictions.age_at_offence`` are derived
   from the date of birth; every column the contract marks ``identifying`` (``pnc_id``,
   ``date_of_birth``) is dropped.

Each row excluded is counted under the FIRST rule that excludes it, so per file
``received = kept + excluded`` exactly. ``fixed`` counts the kept rows a fix touched (a
subset of kept). The log is :func:`CleaningLog.frame` — one row per (file, rule, action),
``file`` being the extract name: ``read``/``received`` (data rows in the file), one
``excluded`` row per exclusion rule that applies to the file and one ``fixed`` row per fix
(zeros included, so a reader sees every rule was checked), and ``kept``/``kept``.
:data:`MESS_RULES` maps each kind of planted mess in ``mess.json`` to its log row.

Scale: every step is vectorised (Arrow compute, integer row codes for duplicates), and
:func:`clean_extracts` can hand each cleaned table to a writer as soon as it is ready, so
only one extract is in memory at a time (national scale: ~18M rows, ~40 s of CPU, under
3 GB; see ``benchmarks/bench_clean.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa_
import pyarrow.compute as pc

from mydirection.contract import EXTRACTS, extract_schema
from mydirection.errors import UserError
from mydirection.validate import (
    FLAG_TRUE,
    _text,
    duplicated_rows,
    normalise_code,
    parse_dates,
    read_extract,
    to_number,
    validate_extract_frame,
)

log = logging.getLogger("mydirection.clean")

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The fixed key used on synthetic extracts (``raw_dir: null``). It is not a secret: the
#: synthetic people do not exist. Real extracts need a key of their own.
SYNTHETIC_KEY = b"mydirection-synthetic-extracts-not-a-secret"

#: A real key must have at least this many bytes (a short key is easy to brute-force
#: against the small space of CRNs).
MIN_KEY_BYTES = 16

#: The date(s) at which each record happened. A row whose record date is after the extract
#: end date cannot be in a correct extract and is excluded (rule ``after_extract_end``).
#: Other dates (a planned supervision end, an exit date, a review date) may lie in the future.
RECORD_DATES = {
    "people": ["date_of_birth"],
    "supervision": ["start_date"],
    "assessments": ["assessment_date"],
    "convictions": ["offence_date", "disposal_date"],
    "contacts": ["contact_date"],
    "enrolments": ["enrolment_date"],
    "plans": ["created_date"],
    "enabling_fund": ["award_date"],
    "activities": ["activity_date"],
    "staff": [],
}

#: The quirk each extract may carry (rule name, reason).
QUIRKS = {
    "supervision": ("end_before_start", "supervision event ends before it starts"),
    "convictions": ("disposal_before_offence", "offence proven before it was committed"),
    "contacts": ("contact_after_order_end", "contact dated after its supervision event ended"),
}

#: Rule of the cleaning log that accounts for each kind of planted mess in
#: ``data/synthetic/mess.json`` (see docs/stages.md and the generator's agreement).
MESS_RULES = {
    "duplicate_rows": ("exact_duplicate", "excluded"),
    "mixed_date_formats": ("date_format", "fixed"),
    "code_whitespace_case": ("code_normalised", "fixed"),
    "impossible_dates": ("end_before_start", "excluded"),
    "disposal_before_offence": ("disposal_before_offence", "excluded"),
    "contacts_after_order_end": ("contact_after_order_end", "excluded"),
    "orphan_enrolments": ("person_not_in_people", "excluded"),
}

#: Derived ages: extract → (new column, date column it is measured at).
AGES = {
    "supervision": ("age_at_start", "start_date"),
    "convictions": ("age_at_offence", "offence_date"),
}

DAYS_PER_YEAR = 365.25


# --------------------------------------------------------------------------- the log


@dataclass
class CleaningLog:
    """Rows of the cleaning log: file, rule, action, rows, reason."""

    entries: list[dict] = field(default_factory=list)

    def add(self, file: str, rule: str, action: str, rows: int, reason: str) -> None:
        self.entries.append(
            {"file": file, "rule": rule, "action": action, "rows": int(rows), "reason": reason}
        )

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.entries, columns=["file", "rule", "action", "rows", "reason"])
        df["rows"] = df["rows"].astype("int64")
        for c in ("file", "rule", "action", "reason"):
            df[c] = df[c].astype("string")
        return df


# --------------------------------------------------------------------------- keys


def load_key(
    settings: Mapping,
    *,
    synthetic: bool,
    repo_root: Path = REPO_ROOT,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """The pseudonymisation key.

    On synthetic extracts (``synthetic=True``) the fixed, documented :data:`SYNTHETIC_KEY`,
    so synthetic runs give the same bytes everywhere. On real extracts: the environment
    variable named by ``settings["key_env"]``, else the file ``settings["key_file"]``, which
    must lie outside the repository. No key, an empty or short key, or a key file inside the
    repository stops the run with a message saying how to set it.
    """
    if synthetic:
        return SYNTHETIC_KEY
    environ = os.environ if environ is None else environ
    env_name = settings.get("key_env") or "MYDIRECTION_PSEUDO_KEY"
    how = (
        f"set the environment variable {env_name} to a long random secret "
        f"(e.g. `export {env_name}=$(python -c 'import secrets; print(secrets.token_hex(32))')`) "
        f"or set pseudonymisation.key_file in config/config.yaml to a file outside the "
        f"repository holding it"
    )
    value = environ.get(env_name, "")
    if value:
        key = value.encode("utf-8")
        source = f"environment variable {env_name}"
    elif settings.get("key_file"):
        path = Path(settings["key_file"]).expanduser().resolve()
        root = Path(repo_root).resolve()
        if path == root or root in path.parents:
            raise UserError(
                f"pseudonymisation.key_file {settings['key_file']}: the key file is inside the "
                f"repository ({root}), where it could be committed; move it outside the "
                f"repository and point key_file at the new place"
            )
        if not path.is_file():
            raise UserError(
                f"pseudonymisation.key_file {settings['key_file']}: file not found; {how}"
            )
        key = path.read_bytes().strip()
        source = f"key file {settings['key_file']}"
    else:
        raise UserError(f"no pseudonymisation key for real extracts: {how}")
    if len(key) < MIN_KEY_BYTES:
        raise UserError(
            f"pseudonymisation key from the {source} is too short ({len(key)} bytes; at "
            f"least {MIN_KEY_BYTES} needed): {how}"
        )
    return key


def pseudonym(crn: str, key: bytes) -> str:
    """The person id of one CRN: HMAC-SHA256(key, crn) as hex, first 16 characters."""
    return hmac.new(key, crn.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def pseudonymise(crn: pd.Series, key: bytes) -> pd.Series:
    """Replace CRNs by :func:`pseudonym` (each distinct CRN hashed once)."""
    codes, uniques = pd.factorize(crn, use_na_sentinel=True)
    values = pa_.array(uniques).to_pylist() if len(uniques) else []
    hashed = [hmac.digest(key, str(v).encode("utf-8"), "sha256").hex()[:16] for v in values]
    ids = pa_.array(hashed, pa_.string()).take(pa_.array(codes))
    return pd.Series(pd.arrays.ArrowStringArray(pa_.chunked_array([ids])), index=crn.index)


# --------------------------------------------------------------------------- single-file steps


def exact_duplicates(data: pd.DataFrame, key: list[str] | None = None) -> pd.Series:
    """Rows repeating an earlier row exactly (same text in every contract column).

    With a ``key``, only rows whose key repeats can be exact duplicates, so full rows are
    compared among those rows only (much faster on large extracts).
    """
    columns, index = list(data.columns), data.index
    dup = np.zeros(len(data), dtype=bool)
    rows = np.arange(len(data))
    if key:
        rows = np.flatnonzero(duplicated_rows(data, key, keep=False))
        if len(rows) == 0:
            return pd.Series(dup, index=index)
        data = data.iloc[rows]
    dup[rows] = duplicated_rows(data, columns, keep="first")
    return pd.Series(dup, index=index)


def as_string(series: pd.Series) -> pd.Series:
    """A text column as pandas' Arrow-backed ``string`` dtype (zero-copy, NA stays NA)."""
    return pd.Series(pd.arrays.ArrowStringArray(_text(series)), index=series.index)


def typed_table(raw: pd.DataFrame, prepared: pd.DataFrame, name: str):
    """Convert validated text to the cleaned types.

    Returns ``(table, code_fixed, date_fixed)``: the typed table (dates ``datetime64[ns]``,
    codes lower-case strings, flags booleans, scores/amounts float, counts integer, ids and
    text strings) and, per row, whether a code was normalised or a date read as DD/MM/YYYY.
    """
    contract = extract_schema(name)
    index = raw.index
    code_fixed = np.zeros(len(raw), dtype=bool)
    date_fixed = np.zeros(len(raw), dtype=bool)
    out = {}
    for col, spec in contract["columns"].items():
        kind = spec["type"]
        nullable = bool(spec.get("nullable", False))
        text = prepared[col]
        if kind == "date":
            dates, dmy, _ = parse_dates(raw[col])
            date_fixed |= dmy.to_numpy()
            out[col] = dates
        elif kind == "code":
            changed = pc.not_equal(_text(raw[col]), _text(text))  # text: normalised
            code_fixed |= pc.fill_null(changed, False).to_numpy(zero_copy_only=False)
            out[col] = as_string(text)
        elif kind == "flag":
            norm = normalise_code(text)
            value = pd.Series(
                pc.is_in(_text(norm), value_set=pa_.array(FLAG_TRUE)).to_numpy(
                    zero_copy_only=False
                ),
                index=index,
            )
            if nullable:
                value = value.astype("boolean").mask(text.isna())
            out[col] = value
        elif kind in ("score", "amount"):
            out[col] = to_number(text.fillna(""), integer=False)
        elif kind == "count":
            values = to_number(text.fillna(""), integer=True)
            out[col] = values.astype("Int64") if nullable else values.astype("int64")
        else:  # id, text
            out[col] = as_string(text)
    return pd.DataFrame(out, index=index), code_fixed, date_fixed


def _lookup(keys: pd.Series, table_keys: pd.Series, values: np.ndarray, fill):
    """``values`` of ``table_keys`` matching each of ``keys`` (``fill`` where absent)."""
    pos = pc.index_in(_text(keys), value_set=_text(table_keys).combine_chunks())
    found = pc.is_valid(pos).to_numpy(zero_copy_only=False)
    idx = pc.fill_null(pos, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(values) == 0:
        return np.full(len(found), fill), found
    return np.where(found, values[idx], fill), found


# --------------------------------------------------------------------------- the stage


@dataclass
class _State:
    name: str
    table: pd.DataFrame
    code_fixed: np.ndarray
    date_fixed: np.ndarray
    received: int
    excluded: dict[str, int] = field(default_factory=dict)
    alive: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.alive is None:
            self.alive = np.ones(len(self.table), dtype=bool)

    def exclude(self, rule: str, mask) -> None:
        """Exclude the rows of ``mask`` not already excluded by an earlier rule."""
        hit = np.asarray(mask, dtype=bool) & self.alive
        self.excluded[rule] = self.excluded.get(rule, 0) + int(hit.sum())
        self.alive &= ~hit

    def kept(self, columns=None) -> pd.DataFrame:
        table = self.table if columns is None else self.table[columns]
        return table[self.alive]


def read_and_validate(path: str | Path, name: str) -> _State:
    """Steps 1-4 for one extract: read, drop exact duplicates, validate, type."""
    raw = read_extract(path, name)
    if raw.extra_columns:
        log.info(
            "%s: %d column(s) not in the contract dropped: %s",
            name,
            len(raw.extra_columns),
            ", ".join(raw.extra_columns),
        )
    received = len(raw.data)
    dup = exact_duplicates(raw.data, extract_schema(name).get("key")).to_numpy()
    data = raw.data[~dup] if dup.any() else raw.data
    del raw
    prepared = validate_extract_frame(data, name, path)
    table, code_fixed, date_fixed = typed_table(data, prepared, name)
    del data, prepared
    state = _State(name, table, code_fixed, date_fixed, received)
    state.excluded["exact_duplicate"] = int(dup.sum())
    return state


def clean_extracts(
    paths: Mapping[str, str | Path],
    extract_end_date: str,
    key: bytes,
    write: Callable[[str, pd.DataFrame], None] | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Clean and pseudonymise the ten extracts.

    ``paths`` maps each extract name to its CSV. Returns the cleaned tables (by extract
    name, in :data:`EXTRACTS` order) and the cleaning log. With ``write``, each cleaned
    table is passed to ``write(name, table)`` as soon as it is ready and not kept (the
    returned dict is then empty): at national scale only one extract is in memory at a time.

    Extracts are processed in :data:`EXTRACTS` order; people and supervision come first
    because the other extracts are checked against them (``person_not_in_people``,
    ``contact_after_order_end``).
    """
    end = pd.Timestamp(extract_end_date)
    tables: dict[str, pd.DataFrame] = {}
    clog = CleaningLog()
    people = people_ids = people_crn = events = None
    for name in EXTRACTS:
        st = read_and_validate(paths[name], name)
        t = st.table
        if RECORD_DATES[name]:
            mask = np.zeros(len(t), dtype=bool)
            for c in RECORD_DATES[name]:
                mask |= (t[c] > end).to_numpy()
            st.exclude("after_extract_end", mask)
        if name == "supervision":
            st.exclude("end_before_start", (t["end_date"] < t["start_date"]).to_numpy())
        elif name == "convictions":
            st.exclude(
                "disposal_before_offence", (t["disposal_date"] < t["offence_date"]).to_numpy()
            )
        elif name == "contacts":
            event_end, _ = _lookup(
                t["event_id"],
                events["event_id"],
                events["end_date"].to_numpy(),
                np.datetime64("NaT", "ns"),
            )
            st.exclude("contact_after_order_end", t["contact_date"].to_numpy() > event_end)

        person = None
        if name == "people":
            people = st.kept(["crn", "date_of_birth"])
            people_ids = pseudonymise(people["crn"], key)
            people_crn = _text(people["crn"]).combine_chunks()
            person = np.arange(len(people))
        elif "crn" in t.columns:
            pos = pc.index_in(_text(t["crn"]), value_set=people_crn)
            st.exclude("person_not_in_people", ~pc.is_valid(pos).to_numpy(zero_copy_only=False))
            person = pc.fill_null(pos, 0).to_numpy(zero_copy_only=False)[st.alive]
        if name == "supervision":
            events = st.kept(["event_id", "end_date"])

        table = st.kept()
        st.table = t = None  # free the unfiltered table
        extra = {}
        if name in AGES:
            age_col, at_col = AGES[name]
            dob = people["date_of_birth"].to_numpy()[person]
            days = (table[at_col].to_numpy() - dob) / np.timedelta64(1, "D")
            extra[age_col] = days / DAYS_PER_YEAR
        cleaned = _pseudonymised(table, name, people_ids, person, extra)
        del table
        _log_file(clog, name, st, len(cleaned))
        if write is None:
            tables[name] = cleaned
        else:
            write(name, cleaned)
        del cleaned
    return tables, clog.frame()


def _pseudonymised(
    table: pd.DataFrame,
    name: str,
    people_ids: pd.Series,
    person: np.ndarray | None,
    extra: dict | None = None,
) -> pd.DataFrame:
    """``crn`` replaced by the person's id (``person``: row of each row's person in people);
    identifying columns dropped."""
    contract = extract_schema(name)
    out = {}
    for col in table.columns:
        spec = contract["columns"].get(col, {})
        if col == "crn":
            ids = _text(people_ids).take(pa_.array(person, type=pa_.int64()))
            out["person_id"] = pd.Series(pd.arrays.ArrowStringArray(ids))
        elif spec.get("identifying"):
            continue
        else:
            out[col] = table[col].reset_index(drop=True)
    for col, values in (extra or {}).items():
        out[col] = pd.Series(values)
    return pd.DataFrame(out)


def _log_file(clog: CleaningLog, name: str, st: _State, kept: int) -> None:
    contract = extract_schema(name)
    kinds = {spec["type"] for spec in contract["columns"].values()}
    clog.add(name, "read", "received", st.received, f"data rows in {contract['file']}")
    reasons = {
        "exact_duplicate": "exact duplicate of an earlier row (raw text)",
        "after_extract_end": "record date ("
        + ", ".join(RECORD_DATES[name] or ["none"])
        + ") after the extract end date",
        "person_not_in_people": "person (crn) not in the people extract",
    }
    for rule_name, reason in QUIRKS.values():
        reasons[rule_name] = reason
    for rule, n in st.excluded.items():
        clog.add(name, rule, "excluded", n, reasons[rule])
    if "code" in kinds:
        clog.add(
            name,
            "code_normalised",
            "fixed",
            int(st.code_fixed[st.alive].sum()),
            "code with stray whitespace or upper case stripped and lower-cased",
        )
    if "date" in kinds:
        clog.add(
            name,
            "date_format",
            "fixed",
            int(st.date_fixed[st.alive].sum()),
            "date written DD/MM/YYYY read as day/month/year",
        )
    clog.add(name, "kept", "kept", kept, f"rows written to results/clean/{name}.parquet")
    log.info(
        "%s: %d rows received, %d kept, %d excluded",
        name,
        st.received,
        kept,
        st.received - kept,
    )
    assert st.received == kept + sum(st.excluded.values())


def parquet_writer(outputs: Mapping[str, str | Path]) -> Callable[[str, pd.DataFrame], None]:
    """A ``write`` callback for :func:`clean_extracts`: each table to ``outputs[name]``."""

    def write(name: str, table: pd.DataFrame) -> None:
        Path(outputs[name]).parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(outputs[name], index=False)

    return write


def write_tables(
    tables: Mapping[str, pd.DataFrame], log_frame: pd.DataFrame, outputs: Mapping[str, str]
) -> None:
    """Write each cleaned table and the log to Parquet (deterministic bytes)."""
    write = parquet_writer(outputs)
    for name, table in tables.items():
        write(name, table)
    write("cleaning_log", log_frame)
