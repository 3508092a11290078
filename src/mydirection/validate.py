"""Validating the text of the raw extracts against their contract.

Each extract is read as text by :mod:`mydirection.reading`, then checked with a pandera
:class:`~pandera.api.pandas.container.DataFrameSchema` built from its contract
(``workflow/schemas/extracts/<name>.schema.yaml``, see :mod:`mydirection.contract`). Nothing
here is written per file by hand: the column types of the contract (``id``, ``text``,
``date``, ``code``, ``flag``, ``score``, ``count``, ``amount``) decide the checks.

Every problem found is reported, in every column (:func:`extract_problems`), as one line:
file, column, how many rows, up to five example line numbers of the raw file (the header is
line 1) and what to do.

Values are quoted in a message only where they cannot identify anyone (:func:`quotable`):
from a ``code`` or ``flag`` column the contract does not mark identifying, and only when the
value has the shape of a code (lower-case letters and underscores, at most
:data:`MAX_SHOWN` characters). With a mislabelled export (``crn`` and ``rosh`` headers
swapped, a case note typed into ``outcome``) no CRN, PNC id, date or free text is printed,
to the terminal or to the log. Dates and numbers are described, never shown.

Identifiers (``crn``, ``pnc_id`` and the other ``id`` columns marked ``normalise`` in the
contract) are normalised by ONE rule before they are checked and linked
(:func:`normalise_id`): Unicode NFKC, every whitespace and invisible format character
(zero-width space, byte-order mark, ...) removed, upper case.
"""

from __future__ import annotations

import re
import sys
from functools import partial

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_
import pyarrow.compute as pc

from mydirection.contract import extract_schema
from mydirection.reading import (  # noqa: F401  (re-exported: the reading API lives there)
    DELIMITERS,
    ExtractProblems,
    Problem,
    RawExtract,
    _schema_file,
    read_extract,
    sniff_delimiter,
)


def _pandera_without_hypothesis() -> None:
    """Load pandera's data-synthesis strategies with ``hypothesis`` hidden.

    pandera imports its hypothesis strategies (about 0.5 s) on the first validation when
    hypothesis is installed (a dev dependency); validation never uses them. Hidden for the
    moment they load (``sys.modules`` entry ``None``: the import fails, pandera falls back
    to its placeholders), then visible again, so ``import hypothesis`` still works later.
    Nothing to do when hypothesis is already imported (the test suite)."""
    if "hypothesis" in sys.modules:
        return
    sys.modules["hypothesis"] = None  # type: ignore[assignment]
    try:
        import pandera.strategies.pandas_strategies  # noqa: F401
    finally:
        if sys.modules.get("hypothesis", 0) is None:
            del sys.modules["hypothesis"]


_pandera_without_hypothesis()

#: Accepted spellings of a flag (compared after strip + lower case).
FLAG_TRUE = ("true", "t", "yes", "y", "1")
FLAG_FALSE = ("false", "f", "no", "n", "0")

#: Accepted date formats: ISO (the contract) and DD/MM/YYYY (recoverable, counted as fixed).
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
DMY_DATE = r"^\d{1,2}/\d{1,2}/\d{4}$"
#: The range of dates accepted: what ``datetime64[ns]`` holds (years 1678-2261 in full).
FIRST_DAY = np.datetime64("1677-09-22", "D")
LAST_DAY = np.datetime64("2262-04-11", "D")
#: Largest count accepted when the contract sets no maximum: beyond it a whole number is no
#: longer exact as a float64 and would overflow the int64 of the cleaned table.
MAX_COUNT = 2**53
_INTEGER = r"^[+-]?\d+$"
_DECIMAL = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"

MAX_EXAMPLES = 5

#: Longest value shown in a message (longer values are cut, with their length given).
MAX_SHOWN = 40


def _text(series: pd.Series) -> pa_.ChunkedArray:
    """The pyarrow array behind a text column."""
    arr = series.array
    if hasattr(arr, "__arrow_array__"):
        out = arr.__arrow_array__()
    else:
        out = pa_.array(series.to_numpy(dtype=object), type=pa_.string(), from_pandas=True)
    return out if isinstance(out, pa_.ChunkedArray) else pa_.chunked_array([out])


def _mask(values, index) -> pd.Series:
    """A plain numpy-bool Series (NA → False) from a pyarrow boolean result."""
    if isinstance(values, pa_.ChunkedArray | pa_.Array):
        values = pc.fill_null(values, False).to_numpy(zero_copy_only=False)
    return pd.Series(np.asarray(values, dtype=bool), index=index)


# --------------------------------------------------------------------------- checks


def _strict_dates(arr, fmt: str, pattern: str, day_of):
    """Vectorised strict parse of ``fmt``: (days as datetime64[D], ok as bool ndarray).

    ``strptime`` alone rolls impossible days over (2019-02-30 -> 2019-03-02), so the day it
    read is compared with the day written (``day_of(arr)``).
    """
    shaped = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    safe = pc.if_else(shaped, arr, pa_.scalar(None, pa_.string()))
    parsed = pc.strptime(safe, format=fmt, unit="s", error_is_null=True)
    ok = pc.fill_null(pc.equal(pc.day(parsed), day_of(safe)), False)
    days = pc.cast(parsed, pa_.date32()).to_numpy(zero_copy_only=False)
    ok = ok.to_numpy(zero_copy_only=False).astype(bool)
    return np.where(ok, days, np.datetime64("NaT", "D")), ok


def _iso_day(arr):
    return pc.cast(pc.utf8_slice_codeunits(arr, 8, 10), pa_.int64())


def _dmy_day(arr):
    return pc.cast(pc.list_element(pc.split_pattern(arr, "/"), 0), pa_.int64())


def parse_dates(series: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse a text date column written YYYY-MM-DD or DD/MM/YYYY.

    Returns ``(dates, is_dmy, bad)``: the dates (``datetime64[ns]``, NaT where blank or
    unparseable), whether the value was written DD/MM/YYYY, and whether a non-blank value
    is not a real calendar date in either format (e.g. ``2019-02-30`` or ``13/13/2019``) or
    lies outside :data:`FIRST_DAY`-:data:`LAST_DAY` (e.g. a ``9999-12-31`` placeholder).

    Fast path: values without a ``/`` are cast to dates by Arrow's strict ISO parser in one
    go; only when that fails (a bad value somewhere) is the slower per-value check run. The
    few values with a ``/`` are parsed day-first separately.
    """
    arr = _text(series)
    n = len(arr)
    null = pa_.scalar(None, pa_.string())
    length = pc.utf8_length(arr)
    blank = pc.fill_null(pc.equal(length, 0), True)
    slash = pc.fill_null(pc.match_substring(arr, "/"), False)
    iso_in = pc.if_else(pc.or_(blank, slash), null, arr)
    blank_np = blank.to_numpy(zero_copy_only=False).astype(bool)
    slash_np = slash.to_numpy(zero_copy_only=False).astype(bool)
    try:
        days = pc.cast(iso_in, pa_.date32()).to_numpy(zero_copy_only=False)
        bad = np.zeros(n, dtype=bool)
    except pa_.ArrowInvalid:
        days, ok = _strict_dates(iso_in, "%Y-%m-%d", ISO_DATE, _iso_day)
        bad = ~ok & ~blank_np & ~slash_np
    days = np.asarray(days, dtype="datetime64[D]")
    idx = np.flatnonzero(slash_np)
    is_dmy = np.zeros(n, dtype=bool)
    if len(idx):
        dmy_days, dmy_ok = _strict_dates(arr.take(pa_.array(idx)), "%d/%m/%Y", DMY_DATE, _dmy_day)
        days[idx] = dmy_days
        is_dmy[idx] = dmy_ok
        bad[idx] = ~dmy_ok
    # a date datetime64[ns] cannot hold (e.g. a 9999-12-31 placeholder) would silently wrap
    # round to another date: it is not accepted
    outside = (days < FIRST_DAY) | (days > LAST_DAY)
    if outside.any():
        days = np.where(outside, np.datetime64("NaT", "D"), days)
        bad = bad | outside
        is_dmy = is_dmy & ~outside
    index = series.index
    dates = pd.Series(days.astype("datetime64[ns]"), index=index)
    return dates, pd.Series(is_dmy, index=index), pd.Series(bad, index=index)


def _nonblank(series: pd.Series) -> pd.Series:
    return _mask(pc.greater(pc.utf8_length(_text(series)), 0), series.index)


def _check_date(series: pd.Series) -> pd.Series:
    return ~parse_dates(series)[2]


def _number_ok(series: pd.Series, pattern: str) -> pd.Series:
    arr = pc.utf8_trim_whitespace(_text(series))
    ok = pc.or_(pc.equal(pc.utf8_length(arr), 0), pc.match_substring_regex(arr, pattern))
    return _mask(ok, series.index)


def to_number(series: pd.Series, integer: bool) -> pd.Series:
    """Text to float64 (NaN where blank or not a number); integers are whole floats."""
    arr = pc.utf8_trim_whitespace(_text(series))
    pattern = _INTEGER if integer else _DECIMAL
    ok = pc.match_substring_regex(arr, pattern)
    arr = pc.if_else(ok, arr, pa_.scalar(None, pa_.string()))
    return pd.Series(
        pc.cast(arr, pa_.float64()).to_numpy(zero_copy_only=False), index=series.index
    ).astype("float64")


def _range_ok(series: pd.Series, integer: bool, lo, hi) -> pd.Series:
    values = to_number(series, integer)
    ok = values.isna()
    # a number too large for a float (e.g. 1e400) reads as infinity: never in range
    inside = pd.Series(np.isfinite(values.to_numpy()), index=series.index)
    if lo is not None:
        inside &= values >= lo
    if hi is not None:
        inside &= values <= hi
    return ok | inside


def normalise_code(series: pd.Series) -> pd.Series:
    """Strip surrounding whitespace and lower-case a code column (vectorised)."""
    arr = pc.utf8_lower(pc.utf8_trim_whitespace(_text(series)))
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=series.index)


def _isin(series: pd.Series, allowed) -> pd.Series:
    arr = _text(series)
    return _mask(pc.is_in(arr, value_set=pa_.array(list(allowed), pa_.string())), series.index)


def _flag_ok(series: pd.Series) -> pd.Series:
    return _isin(normalise_code(series), FLAG_TRUE + FLAG_FALSE)


#: Check names (pandera ``error=``) → how the message describes the problem and the fix.
PROBLEMS = {
    "not_nullable": (
        "have a blank value in a required column",
        "fill in the missing values (or remove those rows) in the extract and re-run",
    ),
    "unknown_code": (
        "have a code that is not in the contract",
        "map them to the contract's codes (listed in {schema}) and re-export",
    ),
    "unparseable_date": (
        "have a date that is not a real date written YYYY-MM-DD or DD/MM/YYYY in the years "
        "1678-2261",
        "correct these dates in the extract (where the column may be blank, leave it blank "
        "rather than writing a placeholder such as 9999-12-31) and re-run",
    ),
    "not_numeric": (
        "have a value that is not a number",
        "correct these values (digits only, '.' as decimal point) and re-run",
    ),
    "not_whole_number": (
        "have a value that is not a whole number",
        "correct these values (whole numbers, digits only) and re-run",
    ),
    "out_of_range": (
        "have a value outside the allowed range {range}",
        "correct these values in the extract and re-run",
    ),
    "unknown_flag": (
        "have a flag that is not one of true/false, yes/no, Y/N, 1/0",
        "correct these values in the extract and re-run",
    ),
    "duplicated_key": (
        "share their key ({key}) with another row that is not an exact duplicate",
        "the extract must have one row per {one_row_per}: remove or correct the conflicting "
        "rows and re-export",
    ),
}


def _bounds(spec: dict) -> tuple:
    """(min, max) allowed for a number column; counts are capped at :data:`MAX_COUNT`."""
    lo, hi = spec.get("min"), spec.get("max")
    if spec.get("type") == "count" and hi is None:
        hi = MAX_COUNT
    return lo, hi


def _range_text(spec: dict) -> str:
    lo, hi = _bounds(spec)
    if lo is not None and hi is not None:
        return f"{lo}-{hi}"
    if lo is not None:
        return f"{lo} or more"
    return f"up to {hi}"


def build_schema(name: str) -> pa.DataFrameSchema:
    """A pandera schema for the text of one extract, built from its contract.

    Expects blank fields as NA and code columns already stripped and lower-cased
    (see :func:`prepare_for_validation`).
    """
    contract = extract_schema(name)
    columns = {}
    for col, spec in contract["columns"].items():
        kind = spec["type"]
        checks = []
        if kind == "code":
            checks.append(
                pa.Check(partial(_isin, allowed=tuple(spec["codes"])), error="unknown_code")
            )
        elif kind == "date":
            checks.append(pa.Check(_check_date, error="unparseable_date"))
        elif kind == "flag":
            checks.append(pa.Check(_flag_ok, error="unknown_flag"))
        elif kind in ("score", "count", "amount"):
            integer = kind == "count"
            checks.append(
                pa.Check(
                    partial(_number_ok, pattern=_INTEGER if integer else _DECIMAL),
                    error="not_whole_number" if integer else "not_numeric",
                )
            )
            lo, hi = _bounds(spec)
            bounds = {"lo": lo, "hi": hi}
            checks.append(
                pa.Check(partial(_range_ok, integer=integer, **bounds), error="out_of_range")
            )
        columns[col] = pa.Column(nullable=bool(spec.get("nullable", False)), checks=checks)
    checks = []
    if contract.get("key"):
        # pandera's own ``unique=`` calls Series.unique(), several times slower on millions of
        # Arrow strings than the hash-based duplicated() used here; same semantics as
        # ``unique=key, report_duplicates="all"``.
        checks.append(
            pa.Check(
                partial(_key_unique, key=list(contract["key"])),
                error="duplicated_key",
                ignore_na=False,
            )
        )
    return pa.DataFrameSchema(columns, checks=checks, name=name)


#: Row codes are unsigned 64-bit: a mixed-radix code stays below this.
CODE_SPACE = 2**64


def row_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One uint64 per row, equal for two rows exactly when their text in ``columns`` is equal.

    Each column is dictionary-encoded by Arrow and the codes are combined (mixed radix,
    re-numbered densely whenever the code space would overflow), so duplicates among
    millions of rows are found by comparing integers instead of strings, in little memory.
    """
    acc = np.zeros(len(frame), dtype=np.uint64)
    card = 1
    for col in columns:
        arr = _text(frame[col])
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
        enc = pc.dictionary_encode(arr, null_encoding="encode")
        k = max(len(enc.dictionary), 1)
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.uint64)
        if card * k > CODE_SPACE:
            uniques, dense = np.unique(acc, return_inverse=True)
            acc, card = dense.astype(np.uint64).ravel(), max(len(uniques), 1)
        acc = acc * np.uint64(k) + codes
        card *= k
    return acc


def duplicated_rows(frame: pd.DataFrame, columns: list[str], keep="first") -> np.ndarray:
    """Like ``frame.duplicated(columns, keep=keep)`` (``keep``: "first" or False), fast on
    millions of Arrow strings: the row codes are sorted (stably, so the first of equal rows
    comes first) and compared with their neighbours."""
    codes = row_codes(frame, columns)
    order = np.argsort(codes, kind="stable")
    same = codes[order[1:]] == codes[order[:-1]]  # sorted position i+1 repeats position i
    dup = np.zeros(len(codes), dtype=bool)
    dup[order[1:][same]] = True
    if keep is False:
        dup[order[:-1][same]] = True
    elif keep != "first":
        raise ValueError(f"keep must be 'first' or False, not {keep!r}")
    return dup


def _key_unique(frame: pd.DataFrame, key: list[str]) -> pd.Series:
    """False on every row whose key value(s) appear on another row."""
    return pd.Series(~duplicated_rows(frame, key, keep=False), index=frame.index)


def prepare_for_validation(data: pd.DataFrame, name: str) -> pd.DataFrame:
    """Blank fields → NA (what pandera's ``nullable`` checks); codes stripped + lower-cased."""
    contract = extract_schema(name)
    out = {}
    for col, spec in contract["columns"].items():
        s = normalise_code(data[col]) if spec["type"] == "code" else data[col]
        arr = _text(s)
        blank = pc.equal(pc.utf8_length(arr), 0)
        if pc.any(blank).as_py():
            arr = pc.if_else(blank, pa_.scalar(None, pa_.string()), arr)
            s = pd.Series(pd.arrays.ArrowExtensionArray(arr), index=data.index)
        out[col] = s
    return pd.DataFrame(out, index=data.index)


#: The shape of a value that may be quoted: a code (see the module docstring).
CODE_SHAPE = re.compile(r"^[a-z][a-z_]{0,39}$")


def quotable(value: str, spec: dict) -> bool:
    """Whether ``value`` of a column with contract ``spec`` may appear in a message."""
    if spec.get("identifying") or spec["type"] not in ("code", "flag"):
        return False
    return bool(CODE_SHAPE.match(str(value)))


def _shown(value: str) -> str:
    return repr(value)


_DATE_SHAPES = (
    (re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$"), "iso"),
    (re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$"), "slash"),
)


def _date_detail(values: pd.Series, column: str) -> str:
    """What is wrong with bad date values, in words and counts (no value is shown)."""
    kinds = {"not_a_date": 0, "impossible": 0, "out_of_years": 0, "us_order": 0, "header": 0}
    for v in values.astype(str):
        v = v.strip()
        if v == column:
            kinds["header"] += 1
            continue
        shape = next((k for rx, k in _DATE_SHAPES if rx.match(v)), None)
        if shape is None:
            kinds["not_a_date"] += 1
            continue
        if shape == "iso":
            y, m, d = (int(x) for x in v.split("-"))
        else:
            d, m, y = (int(x) for x in v.split("/"))
            if m > 12 and d <= 12:
                kinds["us_order"] += 1
                continue
        if not 1678 <= y <= 2261:
            kinds["out_of_years"] += 1
        else:
            kinds["impossible"] += 1
    words = {
        "not_a_date": "not written as YYYY-MM-DD or DD/MM/YYYY (spaces, a time or words?)",
        "impossible": "not a calendar date (day 30 in February, month 13, ...)",
        "out_of_years": "outside the years 1678-2261 (a placeholder such as 9999-12-31?)",
        "us_order": "a month over 12 in DD/MM/YYYY: the file looks like US dates (MM/DD/YYYY)",
        "header": "the column's own name: a header line repeated in the data (two exports joined?)",
    }
    parts = [f"{n} {words[k]}" for k, n in kinds.items() if n]
    return "; ".join(parts)


def failure_problems(failures: pd.DataFrame, name: str, path: str, lines=None) -> list:
    """Every problem in pandera's failure cases: one per (column, check), key last.

    Columns are taken in contract order; within a column, blanks first, then the column's
    checks in order. ``lines`` maps data row r (1-based) to its line in the raw file
    (default r + 1).
    """
    contract = extract_schema(name)
    order = {c: i for i, c in enumerate(contract["columns"])}
    fc = failures.copy()
    fc["check"] = fc["check"].astype(str)
    fc["col_order"] = fc["column"].map(order).fillna(len(order))
    fc["is_key"] = fc["check"] == "duplicated_key"
    fc["check_order"] = np.where(
        fc["check"] == "not_nullable", -1, pd.to_numeric(fc["check_number"], errors="coerce")
    )
    fc = fc.sort_values(["is_key", "col_order", "check_order"], kind="stable")
    fmt = {
        "schema": _schema_file(name),
        "key": ", ".join(contract.get("key") or []),
        "one_row_per": contract.get("one_row_per", "record"),
    }

    def to_lines(rows) -> np.ndarray:
        rows = pd.Series(rows).dropna().astype(np.int64).unique()
        rows.sort()
        return rows + 1 if lines is None else np.asarray(lines)[rows - 1]

    problems = []
    groups = fc[~fc["is_key"]].groupby(["col_order", "check_order", "column", "check"], sort=True)
    for (_, _, column, check), sel in groups:
        spec = contract["columns"][column]
        what, fix = PROBLEMS.get(check, (f"fail the check {check}", "correct them and re-run"))
        what = what.format(range=_range_text(spec), **fmt)
        fix = fix.format(**fmt)
        values = sel["failure_case"].dropna()
        if check == "unparseable_date":
            detail = _date_detail(values, column)
            if detail:
                what += f" ({detail})"
            if "US dates" in detail:
                fix = (
                    "re-export the file with dates written YYYY-MM-DD (its other DD/MM dates "
                    "may have been misread too) and re-run"
                )
        elif check not in ("not_nullable",) and spec["type"] in ("code", "flag"):
            shown = sorted({str(v) for v in values if quotable(str(v), spec)})[:MAX_EXAMPLES]
            hidden = len({str(v) for v in values}) - len(shown)
            if shown:
                what += " (values: " + ", ".join(_shown(v) for v in shown) + ")"
            if hidden:
                what += (
                    f" ({hidden} other value(s) not shown: they do not look like codes; is the "
                    f"column mislabelled, or free text typed into it?)"
                )
            if check == "unknown_code":
                what += f"; allowed: {', '.join(spec['codes'])}"
        problems.append(Problem(path, column, what, fix, to_lines(sel["index"])))
    if fc["is_key"].any():
        what, fix = PROBLEMS["duplicated_key"]
        problems.append(
            Problem(
                path,
                fmt["key"],
                what.format(**fmt),
                fix.format(**fmt),
                to_lines(fc.loc[fc["is_key"], "index"]),
            )
        )
    return problems


def extract_problems(data: pd.DataFrame, name: str, path, lines=None) -> list:
    """Every problem of an extract's text against its contract (empty when valid)."""
    prepared = prepare_for_validation(data, name)
    try:
        build_schema(name).validate(prepared, lazy=True)
    except pa.errors.SchemaErrors as err:
        return failure_problems(err.failure_cases, name, str(path), lines)
    return []


def validate_extract_frame(data: pd.DataFrame, name: str, path, lines=None) -> pd.DataFrame:
    """Validate an extract's text; return the prepared text frame or raise
    :class:`~mydirection.reading.ExtractProblems` naming every problem."""
    prepared = prepare_for_validation(data, name)
    try:
        build_schema(name).validate(prepared, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise ExtractProblems(failure_problems(err.failure_cases, name, str(path), lines)) from None
    return prepared


# --------------------------------------------------------------------------- identifiers

#: Characters removed from identifiers: every whitespace and invisible format character.
_INVISIBLE = r"[\s\p{Z}\p{Cf}\p{Cc}]"


def normalise_id(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Identifiers by the one rule of the module docstring; returns (ids, changed per row).

    Most ids are printable ASCII without spaces, which the rule only upper-cases (NFKC
    leaves ASCII as it is and there is nothing invisible to remove): those rows are
    upper-cased, and the full rule (:func:`_normalise_id_text`) runs on the other rows."""
    arr = _text(series)
    plain = pc.and_(pc.string_is_ascii(arr), pc.ascii_is_printable(arr))
    plain = pc.fill_null(pc.and_(plain, pc.invert(pc.match_substring(arr, " "))), True)
    norm = pc.ascii_upper(arr)
    if not pc.all(plain).as_py():
        other = pc.invert(plain)
        fixed = _normalise_id_text(pc.filter(arr, other)).combine_chunks()
        replaced = pc.replace_with_mask(norm.combine_chunks(), other.combine_chunks(), fixed)
        norm = pa_.chunked_array([replaced])
    changed = pc.fill_null(pc.not_equal(norm, arr), False).to_numpy(zero_copy_only=False)
    return pd.Series(pd.arrays.ArrowExtensionArray(norm), index=series.index), changed


def _normalise_id_text(arr):
    """The rule on every value: Unicode NFKC, invisible characters removed, upper case."""
    norm = pc.utf8_normalize(arr, "NFKC")
    norm = pc.replace_substring_regex(norm, _INVISIBLE, "")
    return pc.utf8_upper(norm)
