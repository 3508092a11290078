"""Single-file steps of the cleaning (see :mod:`mydirection.clean`): typing validated text,
exact duplicates, keyed pseudonyms, and writing tables with a clear error on a full disk."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa_
import pyarrow.compute as pc

from mydirection.contract import extract_schema
from mydirection.errors import UserError
from mydirection.keys import pseudonymiser, source_key_pseudonymiser
from mydirection.validate import (
    FLAG_TRUE,
    _text,
    duplicated_rows,
    normalise_code,
    normalise_id,
    parse_dates,
    to_number,
)

# --------------------------------------------------------------------------- pseudonyms


#: CRN -> person id, per key, remembered within one process (a simulation batch cleans the
#: same people hundreds of times); emptied once it holds more than ``MEMO_MAX`` ids.
_MEMO: dict[bytes, dict[str, str]] = {}
MEMO_MAX = 1 << 18


@dataclass(frozen=True)
class Pseudonyms:
    """A column's pseudonyms: those of its distinct values (``distinct``) and each row's
    position among them (``codes``, -1 where the value is missing)."""

    codes: np.ndarray
    distinct: pa_.Array

    def _rows(self) -> np.ndarray:
        """Each row's position among the distinct values, a missing one at one past them
        (where each caller appends its missing value)."""
        return np.where(self.codes < 0, len(self.distinct), self.codes)

    def series(self, index) -> pd.Series:
        """One pseudonym per row (missing where the value is)."""
        hashed = pa_.concat_arrays([self.distinct, pa_.array([None], pa_.string())])
        ids = hashed.take(pa_.array(self._rows(), pa_.int64()))
        return pd.Series(pd.arrays.ArrowStringArray(pa_.chunked_array([ids])), index=index)

    def positions_in(self, table_keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Row of ``table_keys`` holding each row's pseudonym (0 where absent) and whether
        found: looked up once per distinct value (a missing value is found nowhere)."""
        idx, found = _positions(pd.Series(pd.arrays.ArrowStringArray(self.distinct)), table_keys)
        rows = self._rows()
        return np.append(idx, 0)[rows], np.append(found, False)[rows]


def person_pseudonyms(crn: pd.Series, key: bytes) -> Pseudonyms:
    """The person ids of CRNs (:func:`mydirection.keys.pseudonymiser`; each distinct CRN
    hashed once, and remembered for the next call with the same key)."""
    person_id = pseudonymiser(key)
    memo = _MEMO.setdefault(key, {})
    if len(memo) > MEMO_MAX:
        memo.clear()

    def one(v: str) -> str:
        pid = memo.get(v)
        if pid is None:
            pid = memo[v] = person_id(v)
        return pid

    return _hashed(crn, one)


def pseudonymise(crn: pd.Series, key: bytes) -> pd.Series:
    """Replace CRNs by their person ids (:func:`person_pseudonyms`)."""
    return person_pseudonyms(crn, key).series(crn.index)


def key_pseudonyms(values: pd.Series, key: bytes, domain: str, distinct=False) -> Pseudonyms:
    """The keyed pseudonyms of source-system keys of ``domain``. ``distinct``: the values
    are (nearly) all different, e.g. an extract's own key: each row is hashed as it comes
    instead of each distinct value once (the same pseudonyms, without the hash table of
    millions of strings that finding the distinct values costs)."""
    fn = source_key_pseudonymiser(key, domain)
    return _hashed_rows(values, fn) if distinct else _hashed(values, fn)


def pseudonymise_key(values: pd.Series, key: bytes, domain: str, distinct=False) -> pd.Series:
    """Replace source-system keys of ``domain`` by their keyed pseudonyms."""
    return key_pseudonyms(values, key, domain, distinct).series(values.index)


#: Values hashed per batch (bounds the Python strings alive at once).
HASH_BATCH = 500_000


def _hashed(values: pd.Series, fn) -> Pseudonyms:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniques = pa_.array(uniques, pa_.string()) if len(uniques) else pa_.array([], pa_.string())
    return Pseudonyms(np.asarray(codes, dtype=np.int64), _apply(fn, uniques))


def _hashed_rows(values: pd.Series, fn) -> Pseudonyms:
    """Every row hashed (missing stays missing): the distinct values are the rows."""
    text = _text(values).combine_chunks() if len(values) else pa_.array([], pa_.string())
    codes = np.where(pc.is_valid(text).to_numpy(zero_copy_only=False), np.arange(len(text)), -1)
    return Pseudonyms(codes.astype(np.int64), _apply(fn, text))


def _apply(fn, values: pa_.Array) -> pa_.Array:
    """``fn`` of each value (missing stays missing), in batches of :data:`HASH_BATCH`."""
    parts = [
        pa_.array(
            [None if v is None else fn(v) for v in values.slice(i, HASH_BATCH).to_pylist()],
            pa_.string(),
        )
        for i in range(0, len(values), HASH_BATCH)
    ]
    return pa_.concat_arrays(parts) if parts else pa_.array([], pa_.string())


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
            value = pc.is_in(_text(norm), value_set=pa_.array(FLAG_TRUE)).to_numpy(
                zero_copy_only=False
            )
            if nullable:  # a blank flag is missing
                value = pd.arrays.BooleanArray(value, text.isna().to_numpy(dtype=bool))
            out[col] = pd.Series(value, index=index)
        elif kind in ("score", "amount"):
            out[col] = to_number(text.fillna(""), integer=False)
        elif kind == "count":
            values = to_number(text.fillna(""), integer=True)
            out[col] = values.astype("Int64") if nullable else values.astype("int64")
        else:  # id, text
            out[col] = as_string(text)
    return pd.DataFrame(out, index=index), code_fixed, date_fixed


def _positions(keys: pd.Series, table_keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Row of ``table_keys`` holding each of ``keys`` (0 where absent) and whether found."""
    pos = pc.index_in(_text(keys), value_set=_text(table_keys).combine_chunks())
    found = pc.is_valid(pos).to_numpy(zero_copy_only=False)
    idx = pc.fill_null(pos, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return idx, found


def pnc_conflicts(t: pd.DataFrame) -> dict[str, np.ndarray]:
    """The rows of the people rules pnc_id_two_birth_dates (a PNC id with two or more birth
    dates) and one_person_several_crns (a PNC id on several rows, one birth date)."""
    pnc = t["pnc_id"]
    has = pnc.notna().to_numpy() & (pc.utf8_length(_text(pnc)).to_numpy(zero_copy_only=False) > 0)
    out = {
        "pnc_id_two_birth_dates": np.zeros(len(t), bool),
        "one_person_several_crns": np.zeros(len(t), bool),
    }
    if not has.any():
        return out
    n_dob, n_rows = pnc_counts(pnc[has], t["date_of_birth"][has].to_numpy("datetime64[ns]"))
    idx = np.flatnonzero(has)
    out["pnc_id_two_birth_dates"][idx[n_dob > 1]] = True
    out["one_person_several_crns"][idx[(n_dob == 1) & (n_rows > 1)]] = True
    return out


def pnc_counts(pnc: pd.Series, dob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: how many distinct birth dates (missing ones not counted) and how many rows
    its PNC id has, by integer codes (a million people's text grouped in a second)."""
    code, uniques = pd.factorize(pnc)
    n_pnc = len(uniques)
    dated = ~np.isnat(dob)
    day, days = pd.factorize(dob[dated])
    width = max(len(days), 1)
    pairs = pd.unique(code[dated].astype(np.int64) * width + day)  # each (pnc, dob) once
    n_dob = np.bincount(pairs // width, minlength=n_pnc)[code]
    return n_dob, np.bincount(code, minlength=n_pnc)[code]


def parquet_writer(outputs: Mapping[str, str | Path]) -> Callable[[str, pd.DataFrame], None]:
    """A ``write`` callback for :func:`clean_extracts`: each table to ``outputs[name]``.

    A full disk (or any other write error) becomes one clear :class:`UserError`, and the
    half-written file is removed.
    """

    def write(name: str, table: pd.DataFrame) -> None:
        write_parquet(table, outputs[name])

    return write


def write_parquet(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` to ``path``; an OS error (disk full, ...) is one clear UserError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(path, index=False)
    except OSError as err:
        path.unlink(missing_ok=True)
        raise UserError(write_error(path, err)) from None


def write_error(path, err: OSError) -> str:
    import errno

    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{path}: no space left on the device while writing it ({err.strerror}); free disk "
            f"space (or point results/ at a larger disk) and re-run: the stage starts again "
            f"from its inputs"
        )
    return f"{path}: could not be written ({err.strerror or err}); check the folder and re-run"


def write_tables(
    tables: Mapping[str, pd.DataFrame], log_table: pd.DataFrame, outputs: Mapping[str, str]
) -> None:
    """Write each cleaned table and the log to Parquet (deterministic bytes)."""
    write = parquet_writer(outputs)
    for name, table in tables.items():
        write(name, table)
    write("cleaning_log", log_table)


def normalise_ids(data: pd.DataFrame, name: str) -> pd.DataFrame:
    """``data`` with every id column normalised (:func:`normalise_id`)."""
    ids = {
        c: normalise_id(data[c])[0]
        for c, s in extract_schema(name)["columns"].items()
        if s["type"] == "id"
    }
    return data.assign(**ids) if ids else data
