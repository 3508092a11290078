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
subset of kept). The log is :func:`CleaningLog.frame` — one row per (file, rule, action).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa_
import pyarrow.compute as pc

from mydirection.contract import EXTRACTS, extract_schema
from mydirection.runner import UserError
from mydirection.validate import (
    FLAG_TRUE,
    RawExtract,
    _text,
    normalise_code,
    parse_dates,
    read_extract,
    to_number,
    validate_extract,
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


def pseudonymise(crn: pd.Series, key: bytes, cache: dict | None = None) -> pd.Series:
    """Replace CRNs by :func:`pseudonym` (each distinct CRN hashed once)."""
    cache = {} if cache is None else cache
    codes, uniques = pd.factorize(crn, use_na_sentinel=True)
    base = hmac.new(key, digestmod=hashlib.sha256)
    hashed = []
    for value in uniques:
        pid = cache.get(value)
        if pid is None:
            h = base.copy()
            h.update(str(value).encode("utf-8"))
            pid = cache[value] = h.hexdigest()[:16]
        hashed.append(pid)
    values = pa_.array(hashed, pa_.string()).take(pa_.array(codes))
    return pd.Series(pd.arrays.ArrowExtensionArray(values), index=crn.index).astype(
        pd.StringDtype("pyarrow")
    )


# --------------------------------------------------------------------------- single-file steps


def exact_duplicates(data: pd.DataFrame) -> pd.Series:
    """Rows repeating an earlier row exactly (same text in every contract column)."""
    arrays = [_text(data[c]) for c in data.columns]
    sep = "\x1f"
    if any(pc.any(pc.match_substring(a, sep)).as_py() for a in arrays):
        return pd.Series(data.duplicated(keep="first").to_numpy(), index=data.index)
    joined = pc.binary_join_element_wise(*arrays, sep)
    row = pd.Series(pd.arrays.ArrowExtensionArray(joined))
    return pd.Series(row.duplicated(keep="first").to_numpy(), index=data.index)


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
            changed = pc.not_equal(_text(raw[col]), _text(normalise_code(raw[col])))
            code_fixed |= pc.fill_null(changed, False).to_numpy(zero_copy_only=False)
            out[col] = text.astype(pd.StringDtype("pyarrow"))
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
            out[col] = text.astype(pd.StringDtype("pyarrow"))
    return pd.DataFrame(out, index=index), code_fixed, date_fixed


def _lookup(keys: pd.Series, table_keys: pd.Series, values: np.ndarray, fill):
    """``values`` of ``table_keys`` matching each of ``keys`` (``fill`` where absent)."""
    pos = pc.index_in(_text(keys), value_set=_text(table_keys).combine_chunks())
    found = pc.is_valid(pos).to_numpy(zero_copy_only=False)
    idx = pc.fill_null(pos, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(values) == 0:
        return np.full(len(found), fill), found
    return np.where(found, values[idx], fill), found


def _in(keys: pd.Series, table_keys: pd.Series) -> np.ndarray:
    mask = pc.is_in(_text(keys), value_set=_text(table_keys).combine_chunks())
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------- the stage


@dataclass
class _State:
    raw: RawExtract
    table: pd.DataFrame
    code_fixed: np.ndarray
    date_fixed: np.ndarray
    received: int
    excluded: dict[str, int] = field(default_factory=dict)

    def exclude(self, rule: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool)
        self.excluded[rule] = self.excluded.get(rule, 0) + int(mask.sum())
        keep = ~mask
        self.table = self.table[keep]
        self.code_fixed = self.code_fixed[keep]
        self.date_fixed = self.date_fixed[keep]


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
    dup = exact_duplicates(raw.data).to_numpy()
    data = raw.data[~dup]
    prepared = validate_extract(raw, data)
    table, code_fixed, date_fixed = typed_table(data, prepared, name)
    state = _State(raw, table, code_fixed, date_fixed, received)
    state.excluded["exact_duplicate"] = int(dup.sum())
    return state


def clean_extracts(
    paths: Mapping[str, str | Path], extract_end_date: str, key: bytes
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Clean and pseudonymise the ten extracts.

    ``paths`` maps each extract name to its CSV. Returns the cleaned tables (by extract
    name, in :data:`EXTRACTS` order) and the cleaning log.
    """
    end = pd.Timestamp(extract_end_date)
    states = {name: read_and_validate(paths[name], name) for name in EXTRACTS}

    for name, st in states.items():
        cols = RECORD_DATES[name]
        if not cols:
            continue
        mask = np.zeros(len(st.table), dtype=bool)
        for c in cols:
            mask |= (st.table[c] > end).to_numpy()
        st.exclude("after_extract_end", mask)

    sup = states["supervision"]
    sup.exclude("end_before_start", (sup.table["end_date"] < sup.table["start_date"]).to_numpy())
    conv = states["convictions"]
    conv.exclude(
        "disposal_before_offence",
        (conv.table["disposal_date"] < conv.table["offence_date"]).to_numpy(),
    )
    con = states["contacts"]
    event_end, _ = _lookup(
        con.table["event_id"],
        sup.table["event_id"],
        sup.table["end_date"].to_numpy(),
        np.datetime64("NaT", "ns"),
    )
    con.exclude("contact_after_order_end", (con.table["contact_date"].to_numpy() > event_end))

    people = states["people"].table
    for name, st in states.items():
        if name != "people" and "crn" in st.table.columns:
            st.exclude("person_not_in_people", ~_in(st.table["crn"], people["crn"]))

    for name, (age_col, at_col) in AGES.items():
        t = states[name].table
        dob, _ = _lookup(
            t["crn"], people["crn"], people["date_of_birth"].to_numpy(), np.datetime64("NaT", "ns")
        )
        days = (t[at_col].to_numpy() - dob) / np.timedelta64(1, "D")
        t[age_col] = days / DAYS_PER_YEAR

    cache: dict = {}
    tables = {}
    clog = CleaningLog()
    for name, st in states.items():
        tables[name] = _pseudonymised(st.table, name, key, cache)
        _log_file(clog, name, st)
    return tables, clog.frame()


def _pseudonymised(table: pd.DataFrame, name: str, key: bytes, cache: dict) -> pd.DataFrame:
    contract = extract_schema(name)
    out = {}
    for col in table.columns:
        spec = contract["columns"].get(col, {})
        if col == "crn":
            out["person_id"] = pseudonymise(table[col], key, cache)
        elif spec.get("identifying"):
            continue
        else:
            out[col] = table[col]
    return pd.DataFrame(out).reset_index(drop=True)


def _log_file(clog: CleaningLog, name: str, st: _State) -> None:
    contract = extract_schema(name)
    kinds = {spec["type"] for spec in contract["columns"].values()}
    kept = len(st.table)
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
            int(st.code_fixed.sum()),
            "code with stray whitespace or upper case stripped and lower-cased",
        )
    if "date" in kinds:
        clog.add(
            name,
            "date_format",
            "fixed",
            int(st.date_fixed.sum()),
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


def write_tables(
    tables: Mapping[str, pd.DataFrame], log_frame: pd.DataFrame, outputs: Mapping[str, str]
) -> None:
    """Write each cleaned table and the log to Parquet (deterministic bytes)."""
    for name, table in tables.items():
        Path(outputs[name]).parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(outputs[name], index=False)
    log_frame.to_parquet(outputs["cleaning_log"], index=False)
