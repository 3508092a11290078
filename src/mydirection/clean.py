"""Cleaning and pseudonymising the raw extracts (the boundary of the analysis).

Each extract is cleaned on its own (:func:`clean_extract`), people first: every other
extract is linked to the cleaned people table, and contacts to the cleaned supervision table.
The steps, in order, for one extract (each exclusion counted under the FIRST rule that
excludes the row, so per file ``received = kept + excluded`` exactly):

1. read the file as text (:func:`mydirection.reading.read_extract`), or take the in-memory
   text tables of a simulation replicate (:func:`clean_tables`);
2. ``exact_duplicate``: rows repeating an earlier row exactly, on the raw text (excluded);
3. ``id_normalised``: identifiers (every ``id`` column and ``crn``) normalised by the one rule
   of :func:`mydirection.validate.normalise_id` (fixed);
4. validate the text against the contract (pandera) — every problem is reported, the run
   stops (skipped when a validation job already checked this very file, or on request);
5. ``code_normalised`` and ``date_format`` (fixed): codes stripped and lower-cased, dates
   written DD/MM/YYYY read as such;
6. ``after_extract_end``: a record date (:data:`RECORD_DATES`) after the extract end date;
7. people only: ``implausible_birth_date`` (aged under :data:`MIN_AGE` or over
   :data:`MAX_AGE` at the extract end, e.g. born in 1850); ``pnc_id_two_birth_dates`` (one
   PNC id on rows with different dates of birth: all its rows); ``one_person_several_crns``
   (one PNC id and date of birth under several CRNs: all of them) — identities the data
   cannot resolve;
8. the quirks: ``end_before_start`` (supervision), ``disposal_before_offence`` (convictions);
   contacts: ``event_not_in_supervision`` (unknown event, or one excluded from supervision),
   ``event_of_another_person``, ``contact_after_order_end``;
9. ``person_not_in_people``: a ``crn`` whose person is not in the cleaned people table (for
   contacts before the event checks of step 8); if no row of an extract links at all, the
   run stops ("no people linked");
10. ``dated_before_age_10``: a record dated in a calendar year before the person turned 10
    (the age of criminal responsibility; covers negative ages) — judged from the birth year;
11. pseudonymisation: ``crn`` → ``person_id`` (HMAC-SHA256, :func:`mydirection.keys.pseudonym`);
    every source-system key the contract marks ``pseudonymised`` (event, contact, plan,
    award, activity and staff ids) → a keyed BLAKE2b pseudonym of its domain (joins between
    tables still hold); ``pnc_id`` and ``date_of_birth`` dropped. People keep ONE age fact,
    ``birth_year``; no other age is stored (see :func:`age_in_years` for how later stages
    derive ages from it, at most a year from the true age);
12. ``source_row``: the line of the raw file each cleaned row comes from (header = line 1),
    for messages of later stages (:func:`mydirection.contract.source_lines`).

The log is one row per (file, rule, action): ``read``/``received``, one ``excluded`` row per
exclusion rule that applies to the file, one ``fixed`` row per fix (zeros included, so a
reader sees every rule was checked), and ``kept``/``kept``. :data:`MESS_RULES` maps each
kind of planted mess in ``mess.json`` to its log row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa_
import pyarrow.compute as pc

from mydirection.cleansteps import (  # noqa: F401  (re-exported: the library API)
    HASH_BATCH,
    Pseudonyms,
    as_string,
    exact_duplicates,
    key_pseudonyms,
    normalise_ids,
    parquet_writer,
    person_pseudonyms,
    pnc_conflicts,
    pseudonymise,
    pseudonymise_key,
    typed_table,
    write_error,
    write_parquet,
    write_tables,
)
from mydirection.contract import EXTRACTS, age_in_years, extract_schema
from mydirection.errors import UserError
from mydirection.keys import (  # noqa: F401  (re-exported)
    SYNTHETIC_KEY,
    KeyProblem,
    fingerprint,
    pseudonym,
    source_key_pseudonym,
)
from mydirection.keys import load_key as _load_key
from mydirection.reading import ExtractProblems, Problem, read_extract
from mydirection.validate import (
    _text,
    normalise_id,
    prepare_for_validation,
    validate_extract_frame,
)

log = logging.getLogger("mydirection.clean")

#: The date(s) at which each record happened (rule ``after_extract_end``). Other dates (a
#: planned supervision end, an exit date, a review date) may lie in the future.
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

#: Plausible ages at the extract end date (rule ``implausible_birth_date``).
MIN_AGE, MAX_AGE = 10, 110
#: The age of criminal responsibility in England and Wales (rule ``dated_before_age_10``).
AGE_OF_RESPONSIBILITY = 10

#: Every rule: name -> reason (the log's ``reason`` column).
REASONS = {
    "exact_duplicate": "exact duplicate of an earlier row (raw text)",
    "after_extract_end": "record date after the extract end date",
    "implausible_birth_date": f"date of birth gives an age under {MIN_AGE} or over {MAX_AGE} "
    "at the extract end date",
    "pnc_id_two_birth_dates": "one PNC id on people with different dates of birth (all rows)",
    "one_person_several_crns": "one person (PNC id and date of birth) under several CRNs "
    "(all of them)",
    "end_before_start": "supervision event ends before it starts",
    "disposal_before_offence": "offence proven before it was committed",
    "event_not_in_supervision": "supervision event (event_id) not in the cleaned supervision "
    "table (unknown, or excluded there)",
    "event_of_another_person": "supervision event (event_id) belongs to another person",
    "contact_after_order_end": "contact dated after its supervision event ended",
    "person_not_in_people": "person (crn) not in the cleaned people extract",
    "dated_before_age_10": "record dated in a year before the person turned 10 (the age of "
    "criminal responsibility): impossible",
    "id_normalised": "identifier with spaces, invisible characters or lower case normalised "
    "(NFKC, removed, upper-cased)",
    "code_normalised": "code with stray whitespace or upper case stripped and lower-cased",
    "date_format": "date written DD/MM/YYYY read as day/month/year",
}

#: Exclusion rules of each extract, in the order they are applied.
EXCLUSIONS = {
    name: ["exact_duplicate"]
    + (["after_extract_end"] if RECORD_DATES[name] else [])
    + {
        "people": ["implausible_birth_date", "pnc_id_two_birth_dates", "one_person_several_crns"],
        "supervision": ["end_before_start"],
        "convictions": ["disposal_before_offence"],
        "contacts": [
            "person_not_in_people",
            "event_not_in_supervision",
            "event_of_another_person",
            "contact_after_order_end",
        ],
    }.get(name, [])
    + (["person_not_in_people"] if name not in ("people", "staff", "contacts") else [])
    + (["dated_before_age_10"] if name not in ("people", "staff") else [])
    for name in EXTRACTS
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

#: What each extract needs from earlier cleaned tables.
NEEDS = {
    name: ([] if name in ("people", "staff") else ["people"])
    + (["supervision"] if name == "contacts" else [])
    for name in EXTRACTS
}


def load_key(settings, *, synthetic: bool, repo_root=None, environ=None, workflow_dir=None):
    """:func:`mydirection.keys.load_key`, with a key problem as a :class:`UserError`."""
    try:
        return _load_key(
            settings,
            synthetic=synthetic,
            workflow_dir=workflow_dir,
            repo_root=repo_root,
            environ=environ,
        )
    except KeyProblem as err:
        raise UserError(str(err)) from None


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
        return log_frame(self.entries)


def log_frame(entries) -> pd.DataFrame:
    df = pd.DataFrame(list(entries), columns=["file", "rule", "action", "rows", "reason"])
    df["rows"] = df["rows"].astype("int64")
    for c in ("file", "rule", "action", "reason"):
        df[c] = df[c].astype("string")
    return df


# --------------------------------------------------------------------------- one extract


@dataclass
class Cleaned:
    """One cleaned extract and its rows of the cleaning log."""

    name: str
    table: pd.DataFrame
    log: list[dict]


class _Rows:
    """Which rows are still alive, and how many each rule excluded (first rule wins)."""

    def __init__(self, n: int):
        self.alive = np.ones(n, dtype=bool)
        self.excluded: dict[str, int] = {}

    def exclude(self, rule: str, mask) -> None:
        hit = np.asarray(mask, dtype=bool) & self.alive
        self.excluded[rule] = self.excluded.get(rule, 0) + int(hit.sum())
        self.alive &= ~hit


def text_frame(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """An in-memory raw table as the reader gives it: the contract's columns as Arrow text,
    blanks as empty strings, data rows numbered from 1 (missing columns are an error)."""
    columns = list(extract_schema(name)["columns"])
    if missing := [c for c in columns if c not in table.columns]:
        raise UserError(f"{name}: in-memory table lacks column(s) {', '.join(missing)}")
    out = {}
    for col in columns:
        values = table[col]
        if hasattr(values.array, "__arrow_array__"):  # Arrow already: no copy
            arr = pa_.chunked_array(values.array.__arrow_array__())
        else:
            arr = pa_.chunked_array([pa_.array(values.to_numpy(dtype=object), from_pandas=True)])
        if arr.type != pa_.string():
            arr = pc.cast(arr, pa_.string())  # numbers: the text a CSV writer gives them
        if arr.null_count:
            arr = pc.fill_null(arr, "")
        out[col] = pd.arrays.ArrowExtensionArray(arr)
    return pd.DataFrame(out, index=pd.RangeIndex(1, len(table) + 1, name="row"))


def clean_extract(
    name: str,
    data: pd.DataFrame,
    extract_end_date: str,
    key: bytes,
    cleaned: Mapping[str, pd.DataFrame] | None = None,
    *,
    path: str | None = None,
    lines: np.ndarray | None = None,
    validate: bool = True,
    quiet: bool = False,
) -> Cleaned:
    """Clean one extract's text ``data`` (as :func:`text_frame` or the reader gives it).

    ``data`` may be given as a one-element list, which is emptied: the caller then holds
    no reference and the raw text is freed as soon as it is typed (national scale).
    ``cleaned`` holds the cleaned tables this extract is checked against (:data:`NEEDS`:
    people, and supervision for contacts). ``lines`` is the raw line of each data row
    (default row + 1, as in a file without embedded line breaks). Raises
    :class:`~mydirection.reading.ExtractProblems` when validation finds problems.
    """
    contract = extract_schema(name)
    label = path or contract["file"]
    if isinstance(data, list):  # [frame]: the caller hands the frame over (freed early)
        data = data.pop()
    n = len(data)
    lines = np.arange(2, n + 2, dtype=np.int64) if lines is None else np.asarray(lines)
    rows = _Rows(n)
    dup = exact_duplicates(data, contract.get("key")).to_numpy()
    all_lines = lines  # by data-row number (the frame's index), for messages
    if dup.any():
        data, lines = data[~dup], lines[~dup]
    rows.alive = np.ones(len(data), dtype=bool)
    rows.excluded["exact_duplicate"] = int(dup.sum())
    id_fixed = np.zeros(len(data), dtype=bool)
    ids = {}
    for col, spec in contract["columns"].items():
        if spec["type"] == "id":
            ids[col], changed = normalise_id(data[col])
            id_fixed |= changed
    if ids:
        data = data.assign(**ids)
    if validate:
        prepared = validate_extract_frame(data, name, label, all_lines)
    else:
        prepared = prepare_for_validation(data, name)
    t, code_fixed, date_fixed = typed_table(data, prepared, name)
    del prepared, data
    end = pd.Timestamp(extract_end_date)
    hashed = _Pseudonyms(t, name, key)
    for rule in EXCLUSIONS[name][1:]:
        mask = _exclusion(rule, name, t, end, hashed, cleaned or {}, label)
        rows.exclude(rule, mask)
    if name == "people":
        born = pd.DatetimeIndex(t["date_of_birth"][rows.alive]).year.to_numpy(dtype=np.int64)
    table = _pseudonymised(t, rows.alive, name, hashed)
    if name == "people":
        table["birth_year"] = born
    del t, hashed
    table["source_row"] = lines[rows.alive].astype(np.int64)
    entries = _log_rows(name, n, rows, len(table), contract, id_fixed, code_fixed, date_fixed)
    (log.debug if quiet else log.info)(
        "%s: %d rows received, %d kept, %d excluded", name, n, len(table), n - len(table)
    )
    return Cleaned(name, table.reset_index(drop=True), entries)


def _record_dates(t: pd.DataFrame, name: str):
    return [t[c].to_numpy(dtype="datetime64[ns]") for c in RECORD_DATES[name]]


class _Pseudonyms:
    """Pseudonyms of one typed table's id columns, each computed once (on every row), and
    their rows in the cleaned tables they link to (each link looked up once, per distinct
    value)."""

    def __init__(self, t: pd.DataFrame, name: str, key: bytes):
        self.t, self.key = t, key
        contract = extract_schema(name)
        self.spec = contract["columns"]
        self.key_columns = list(contract.get("key") or [])
        self.done: dict[str, Pseudonyms] = {}
        self.links: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def link(self, col: str, table: pd.DataFrame, table_col: str):
        """(row of ``table`` holding each row's ``col``, 0 where absent; whether found)."""
        if (col, table_col) not in self.links:
            self.links[col, table_col] = self.pseudonyms(col).positions_in(table[table_col])
        return self.links[col, table_col]

    def pop(self, col: str) -> pd.Series:
        value = self[col]
        del self.done[col]
        return value

    def __getitem__(self, col: str) -> pd.Series:
        return self.pseudonyms(col).series(self.t.index)

    def pseudonyms(self, col: str) -> Pseudonyms:
        if col not in self.done:
            if col == "crn":
                self.done[col] = person_pseudonyms(self.t[col], self.key)
            else:
                domain = self.spec[col]["pseudonymised"]
                own_key = self.key_columns == [col]  # unique once validated
                self.done[col] = key_pseudonyms(self.t[col], self.key, domain, own_key)
        return self.done[col]


def _exclusion(rule, name, t, end, hashed, cleaned, label) -> np.ndarray:
    """The rows ``rule`` excludes (before 'first rule wins')."""
    if rule == "after_extract_end":
        mask = np.zeros(len(t), dtype=bool)
        for d in _record_dates(t, name):
            mask |= d > end.to_datetime64()
        return mask
    if rule == "implausible_birth_date":
        dob = pd.DatetimeIndex(t["date_of_birth"])
        age = age_in_years(np.full(len(t), end.to_datetime64()), dob.year)
        return (age < MIN_AGE) | (age > MAX_AGE)
    if rule in ("pnc_id_two_birth_dates", "one_person_several_crns"):
        return pnc_conflicts(t)[rule]
    if rule == "end_before_start":
        return (t["end_date"] < t["start_date"]).to_numpy()
    if rule == "disposal_before_offence":
        return (t["disposal_date"] < t["offence_date"]).to_numpy()
    if rule.startswith("event_") or rule == "contact_after_order_end":
        events = cleaned["supervision"]
        pos, found = hashed.link("event_id", events, "event_id")
        if rule == "event_not_in_supervision":
            return ~found
        if rule == "event_of_another_person":
            owner = _text(events["person_id"]).combine_chunks().take(pa_.array(pos))
            mine = _text(hashed["crn"]).combine_chunks()
            return pc.fill_null(pc.not_equal(owner, mine), True).to_numpy(zero_copy_only=False)
        event_end = events["end_date"].to_numpy(dtype="datetime64[ns]")[pos]
        event_end = np.where(found, event_end, np.datetime64("NaT"))
        return t["contact_date"].to_numpy(dtype="datetime64[ns]") > event_end
    people = cleaned["people"]
    pos, found = hashed.link("crn", people, "person_id")
    if rule == "person_not_in_people":
        if len(t) and not found.any():
            raise ExtractProblems(
                [
                    Problem(
                        label,
                        "crn",
                        f"no people linked: none of the {len(t)} rows' crn is in the cleaned "
                        f"people extract (after normalising case, spaces and invisible "
                        f"characters)",
                        "check that this file and people.csv come from the same export (and "
                        "that crn holds CRNs), then re-run",
                    )
                ]
            )
        return ~found
    birth_year = people["birth_year"].to_numpy(dtype=float)[pos]
    mask = np.zeros(len(t), dtype=bool)
    for d in _record_dates(t, name):
        years = pd.DatetimeIndex(d).year.to_numpy(dtype=float)
        mask |= found & (years - birth_year < AGE_OF_RESPONSIBILITY)
    return mask


def _pseudonymised(t: pd.DataFrame, alive, name: str, hashed: _Pseudonyms) -> pd.DataFrame:
    """Kept rows: ``crn`` → ``person_id``, source keys → pseudonyms, identifying dropped."""
    out = {}
    keep = pa_.array(np.asarray(alive, dtype=bool))
    for col, spec in extract_schema(name)["columns"].items():
        if spec.get("identifying") and col != "crn":
            continue
        hashed_col = col == "crn" or spec.get("pseudonymised")
        values = hashed.pop(col) if hashed_col else t.pop(col)
        out["person_id" if col == "crn" else col] = _kept(values, keep)
        del values
    return pd.DataFrame(out)


def _kept(values: pd.Series, keep: pa_.Array) -> pd.Series:
    """The kept rows of one column (Arrow filter for text: no Python objects)."""
    if isinstance(values.dtype, pd.StringDtype | pd.ArrowDtype):
        arr = _text(values).filter(keep)
        return pd.Series(pd.arrays.ArrowStringArray(arr))
    return values[keep.to_numpy(zero_copy_only=False)].reset_index(drop=True)


def _log_rows(name, received, rows, kept, contract, id_fixed, code_fixed, date_fixed):
    kinds = {spec["type"] for spec in contract["columns"].values()}
    alive = rows.alive
    out = [_entry(name, "read", "received", received, f"data rows in {contract['file']}")]
    for rule in EXCLUSIONS[name]:
        reason = REASONS[rule]
        if rule == "after_extract_end":
            reason = f"record date ({', '.join(RECORD_DATES[name])}) after the extract end date"
        out.append(_entry(name, rule, "excluded", rows.excluded.get(rule, 0), reason))
    if "id" in kinds:
        out.append(
            _entry(name, "id_normalised", "fixed", id_fixed[alive].sum(), REASONS["id_normalised"])
        )
    if "code" in kinds:
        out.append(
            _entry(
                name,
                "code_normalised",
                "fixed",
                code_fixed[alive].sum(),
                REASONS["code_normalised"],
            )
        )
    if "date" in kinds:
        out.append(
            _entry(name, "date_format", "fixed", date_fixed[alive].sum(), REASONS["date_format"])
        )
    out.append(_entry(name, "kept", "kept", kept, f"rows written to results/clean/{name}.parquet"))
    assert received == kept + sum(rows.excluded.values())
    return out


def _entry(file, rule, action, rows, reason) -> dict:
    return {"file": file, "rule": rule, "action": action, "rows": int(rows), "reason": reason}


# --------------------------------------------------------------------------- whole stage


def read_for_cleaning(path: str | Path, name: str, *, quiet: bool = False):
    """(text, lines) of one raw file, with extra columns logged by count and name."""
    raw = read_extract(path, name)
    if raw.extra_columns:
        from mydirection.reading import quotable_name

        shown = [c for c in raw.extra_columns if quotable_name(c)]
        (log.debug if quiet else log.info)(
            "%s: %d column(s) not in the contract dropped%s",
            name,
            len(raw.extra_columns),
            (": " + ", ".join(shown)) if shown else "",
        )
    return raw.data, raw.lines


def clean_extracts(
    paths: Mapping[str, str | Path],
    extract_end_date: str,
    key: bytes,
    write: Callable[[str, pd.DataFrame], None] | None = None,
    *,
    validate: bool = True,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Clean and pseudonymise the ten extracts read from ``paths`` (one process).

    Returns the cleaned tables (by extract name, :data:`EXTRACTS` order) and the cleaning
    log. With ``write``, each cleaned table is passed to ``write(name, table)`` as soon as it
    is ready and only those later extracts need are kept. Every file is validated even after
    one has problems, and :class:`~mydirection.reading.ExtractProblems` names them all.
    """
    tables: dict[str, pd.DataFrame] = {}
    entries: list[dict] = []
    problems: list[Problem] = []
    for name in EXTRACTS:
        try:
            data, lines = read_for_cleaning(paths[name], name)
            if problems:  # only validate: the cleaning stops anyway
                if validate:
                    validate_extract_frame(normalise_ids(data, name), name, str(paths[name]))
                continue
            holder = [data]
            del data
            done = clean_extract(
                name,
                holder,
                extract_end_date,
                key,
                tables,
                path=str(paths[name]),
                lines=lines,
                validate=validate,
            )
        except ExtractProblems as err:
            problems.extend(err.problems)
            continue
        entries.extend(done.log)
        if write is not None:
            write(name, done.table)
            if name not in ("people", "supervision"):
                continue
            if name == "supervision":
                done.table = done.table[["event_id", "person_id", "end_date"]]
        tables[name] = done.table
    if problems:
        raise ExtractProblems(problems)
    if write is not None:
        tables = {}
    return tables, log_frame(entries)


def clean_tables(
    raw: Mapping[str, pd.DataFrame],
    extract_end_date: str,
    key: bytes,
    *,
    validate: bool = False,
    done: Mapping[str, pd.DataFrame] | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The lean path (the simulation study): in-memory raw text tables (some or all of the
    extracts, with those they are checked against, :data:`NEEDS`) cleaned by the file
    path's rules without CSV parsing and, unless ``validate``, without the pandera pass.
    Quiet at INFO. Returns the cleaned tables and the cleaning log, exactly as
    :func:`clean_extracts` gives them for the same data written to CSV.

    ``done``: tables this function already cleaned from the same raw text, with the same
    tables they are checked against; they are returned as they are, and the log leaves
    them out.
    """
    names = [n for n in EXTRACTS if n in raw]
    absent = sorted({need for n in names for need in NEEDS[n]} - set(raw))
    if absent or len(names) < len(raw):
        raise ValueError(f"clean_tables: extracts {sorted(raw)}; add {absent}, use {EXTRACTS}")
    tables: dict[str, pd.DataFrame] = {}
    entries: list[dict] = []
    for name in names:
        if done and name in done:
            tables[name] = done[name]
            continue
        cleaned = clean_extract(
            name,
            text_frame(raw[name], name),
            extract_end_date,
            key,
            tables,
            validate=validate,
            quiet=True,
        )
        tables[name] = cleaned.table
        entries.extend(cleaned.log)
    return tables, log_frame(entries)
