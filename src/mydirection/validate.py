"""Reading and validating the raw extracts against their contract.

Each extract is read as text (every column a string, a blank field an empty string), then
checked with a pandera :class:`~pandera.api.pandas.container.DataFrameSchema` built from its
contract (``workflow/schemas/extracts/<name>.schema.yaml``, see :mod:`mydirection.contract`).
Nothing here is written per file by hand: the column types of the contract (``id``, ``text``,
``date``, ``code``, ``flag``, ``score``, ``count``, ``amount``) decide the checks.

A problem the user has to fix raises :class:`~mydirection.runner.UserError` with ONE message:
file, column, how many rows, up to five example row numbers and what to do. Row numbers are
1-based data rows (row 1 is the first line after the header) of the file as received. The
value itself is shown only for code, flag, date and number columns the contract does not mark
as identifying.

File-level choices (documented, tested in ``tests/test_clean.py`` and
``tests/test_hostile_input.py``):

- encoding: UTF-8, with or without a byte-order mark (the BOM is skipped). Any other
  encoding is rejected with a message saying which data rows are not valid UTF-8;
- delimiter: sniffed from the header line, one of comma, semicolon or tab (the most frequent
  of the three in the header);
- extra columns not in the contract are not read; the caller logs their names;
- a row with the wrong number of fields is rejected (its row number is given);
- line ends LF, CRLF or CR; header names are stripped of surrounding spaces but matched
  case-sensitively (the message points at a header name differing only in case);
- a NUL byte in a contract column is rejected (a damaged or non-text export);
- values shown in a message are cut to :data:`MAX_SHOWN` characters.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from mydirection.contract import extract_schema
from mydirection.errors import UserError

#: Delimiters recognised when sniffing a header line.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}

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


@dataclass
class RawExtract:
    """One extract as received: text columns of the contract, original row numbers as index."""

    name: str
    path: str
    data: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)
    delimiter: str = ","


# --------------------------------------------------------------------------- reading


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


def sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: the most frequent of comma, semicolon and tab."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _first_line(path: Path) -> bytes:
    """The header line: up to the first LF or CR (old Mac files end lines with CR alone)."""
    with path.open("rb") as fh:
        return fh.readline(1 << 20).split(b"\r", 1)[0]


def _nul_rows(column: pa_.ChunkedArray) -> np.ndarray:
    """Data-row numbers (1-based) whose value holds a NUL byte.

    A scan of the raw character buffers first (no copy, ~free); the exact rows only when a
    NUL byte is somewhere in them.
    """

    def has_nul(chunk) -> bool:
        data = chunk.buffers()[2]
        return data is not None and data.size > 0 and np.frombuffer(data, np.uint8).min() == 0

    if not any(has_nul(c) for c in column.chunks):
        return np.array([], dtype=np.int64)
    hit = pc.fill_null(pc.match_substring(column, "\x00"), False)
    return np.flatnonzero(hit.to_numpy(zero_copy_only=False)) + 1


def _non_utf8_rows(path: Path) -> list[int]:
    """Data-row numbers (1-based) whose bytes are not valid UTF-8 (error path only)."""
    bad = []
    with path.open("rb") as fh:
        fh.readline()
        for i, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(i)
    return bad


def _ragged_rows(path: Path, delimiter: str, n_fields: int) -> list[int]:
    """Data-row numbers whose field count differs from the header's (error path only)."""
    bad = []
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader, None)
        for i, row in enumerate(reader, start=1):
            if len(row) != n_fields and row:
                bad.append(i)
    return bad


def _schema_file(name: str) -> str:
    return f"workflow/schemas/extracts/{name}.schema.yaml"


def _examples(rows) -> str:
    rows = sorted(set(int(r) for r in rows))[:MAX_EXAMPLES]
    return ", ".join(str(r) for r in rows)


def read_extract(path: str | Path, name: str) -> RawExtract:
    """Read one raw extract as text, checking file-level problems.

    Every contract column is read as a string; blank fields stay empty strings (nothing is
    turned into NA by guessing). Columns not in the contract are skipped and reported in
    ``extra_columns``. Raises :class:`UserError` for a missing or empty file, a header
    without data rows, a missing or repeated column, a row with the wrong number of fields,
    or bytes that are not UTF-8.
    """
    path = Path(path)
    contract = extract_schema(name)
    columns = list(contract["columns"])
    label = str(path)
    if not path.is_file():
        raise UserError(
            f"{label}: file not found; the {name} extract must be at this path "
            f"(set raw_dir to the folder holding all ten extracts)"
        )
    first = _first_line(path)
    if not first.strip():
        raise UserError(
            f"{label}: the file is empty (no header line); re-export the {name} extract "
            f"with a header and its data rows"
        )
    try:
        header = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise UserError(
            f"{label}: the header line is not UTF-8 text; re-export the file as UTF-8 "
            f"(CSV UTF-8) and re-run"
        ) from None
    delimiter = sniff_delimiter(header)
    names = next(csv.reader([header], delimiter=delimiter))
    names = [n.strip() for n in names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(
            f"{label}, column {repeated[0]}: the header names this column more than once; "
            f"keep one column per name and re-export"
        )
    missing = [c for c in columns if c not in names]
    if missing:
        other_case = [n for n in names if n.lower() == missing[0].lower()]
        hint = (
            f"; the header has {other_case[0]!r}: column names must match the contract "
            f"exactly, in lower case"
            if other_case
            else ""
        )
        raise UserError(
            f"{label}, column {missing[0]}: missing from the header "
            f"({len(missing)} contract column(s) missing: {', '.join(missing)}; "
            f"header read with {DELIMITERS[delimiter]} as delimiter{hint}); add it to the extract "
            f"(the columns are listed in {_schema_file(name)}) and re-export"
        )
    extra = [n for n in names if n not in columns]
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa_.string() for n in names},
                include_columns=columns,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa_.ArrowInvalid as err:
        text = str(err)
        if "UTF8" in text or "utf8" in text.lower():
            rows = _non_utf8_rows(path)
            raise UserError(
                f"{label}: {len(rows)} rows are not valid UTF-8 text (e.g. rows "
                f"{_examples(rows)}); re-export the file as UTF-8 (CSV UTF-8) and re-run"
            ) from None
        rows = _ragged_rows(path, delimiter, len(names))
        if not rows:
            raise UserError(
                f"{label}: the file could not be read as {DELIMITERS[delimiter]}-separated "
                f"text (a line break inside a quoted value, or an unbalanced quote); remove "
                f"line breaks from values and check the quoting, then re-export"
            ) from None
        raise UserError(
            f"{label}: {len(rows)} rows do not have the {len(names)} fields of the header "
            f"(e.g. rows {_examples(rows)}); check for unquoted {DELIMITERS[delimiter]}s "
            f"inside values or truncated lines, and re-export"
        ) from None
    if table.num_rows == 0:
        raise UserError(
            f"{label}: the file has a header but no data rows; re-export the {name} extract "
            f"with its data"
        )
    table = table.select(columns)
    for col in columns:
        nul = _nul_rows(table.column(col))
        if len(nul):
            raise UserError(
                f"{label}, column {col}: {len(nul)} rows contain a NUL byte (e.g. rows "
                f"{_examples(nul)}); the file is damaged or not a plain-text export: "
                f"re-export the {name} extract as CSV UTF-8 and re-run"
            )
    data = table.to_pandas(types_mapper=pd.ArrowDtype)
    data.index = pd.RangeIndex(1, len(data) + 1, name="row")
    return RawExtract(name, label, data, extra, delimiter)


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


def row_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One int64 per row, equal for two rows exactly when their text in ``columns`` is equal.

    Each column is dictionary-encoded by Arrow and the codes are combined (mixed radix,
    re-numbered densely whenever 62 bits would overflow), so duplicates among millions of
    rows are found by hashing integers instead of strings, in little memory.
    """
    acc = np.zeros(len(frame), dtype=np.int64)
    card = 1
    for col in columns:
        arr = _text(frame[col])
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
        enc = pc.dictionary_encode(arr, null_encoding="encode")
        k = max(len(enc.dictionary), 1)
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        if card * k >= 2**62:
            acc, uniques = pd.factorize(acc)
            card = max(len(uniques), 1)
        acc = acc * k + codes
        card *= k
    return acc


def duplicated_rows(frame: pd.DataFrame, columns: list[str], keep="first") -> np.ndarray:
    """Like ``frame.duplicated(columns, keep=keep)``, fast on millions of Arrow strings."""
    return pd.Series(row_codes(frame, columns)).duplicated(keep=keep).to_numpy()


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


def _show_values(spec: dict) -> bool:
    return not spec.get("identifying") and spec["type"] in (
        "code",
        "flag",
        "date",
        "score",
        "count",
        "amount",
    )


def _shown(value: str) -> str:
    """A value as shown in a message: quoted, cut to :data:`MAX_SHOWN` characters."""
    if len(value) <= MAX_SHOWN:
        return repr(value)
    return f"{value[:MAX_SHOWN]!r}... ({len(value)} characters)"


def failure_message(failures: pd.DataFrame, name: str, path: str) -> str:
    """One user message from pandera's failure cases: the first failing column and check.

    Columns are taken in contract order; within a column, blanks first, then the column's
    checks in order; the duplicated-key check last.
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
    first = fc.iloc[0]
    # a duplicated key is one problem, however many columns pandera lists its rows under
    others = fc[~fc["is_key"]]
    problems = others.groupby(["column", "check"], sort=False, dropna=False).ngroups + int(
        fc["is_key"].any()
    )
    schema_file = _schema_file(name)
    if first["is_key"]:
        key = contract.get("key") or []
        rows = fc.loc[fc["is_key"], "index"]
        check, column = "duplicated_key", ", ".join(key)
        spec = contract["columns"][key[0]]
    else:
        check, column = first["check"], first["column"]
        sel = fc[(fc["column"] == column) & (fc["check"] == check)]
        rows = sel["index"]
        spec = contract["columns"][column]
    rows = pd.Series(rows).dropna().astype(int).unique()
    what, fix = PROBLEMS.get(check, (f"fail the check {check}", "correct them and re-run"))
    fmt = {
        "schema": schema_file,
        "range": _range_text(spec),
        "key": ", ".join(contract.get("key") or []),
        "one_row_per": contract.get("one_row_per", "record"),
    }
    what, fix = what.format(**fmt), fix.format(**fmt)
    shown = ""
    if check not in ("not_nullable", "duplicated_key") and _show_values(spec):
        values = fc.loc[(fc["column"] == column) & (fc["check"] == check), "failure_case"]
        values = sorted({str(v) for v in values.dropna()})[:MAX_EXAMPLES]
        if values:
            shown = " (values: " + ", ".join(_shown(v) for v in values) + ")"
        if check == "unknown_code":
            shown += f"; allowed: {', '.join(spec['codes'])}"
    others = problems - 1
    also = (
        f" [{others} further problem(s) in this file are reported after this is fixed]"
        if others
        else ""
    )
    return (
        f"{path}, column {column}: {len(rows)} rows {what}{shown} "
        f"(e.g. data rows {_examples(rows)}; row 1 is the first line after the header); "
        f"{fix}{also}"
    )


def validate_extract(raw: RawExtract, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """Validate an extract's text against its contract; return the prepared text frame.

    ``data`` defaults to ``raw.data`` (pass the frame after exact duplicates were dropped,
    so that a duplicated key means two different rows). Raises :class:`UserError` with one
    message built from pandera's failure cases.
    """
    return validate_extract_frame(raw.data if data is None else data, raw.name, raw.path)


def validate_extract_frame(data: pd.DataFrame, name: str, path) -> pd.DataFrame:
    """:func:`validate_extract` on a text frame of extract ``name`` read from ``path``."""
    prepared = prepare_for_validation(data, name)
    schema = build_schema(name)
    try:
        schema.validate(prepared, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise UserError(failure_message(err.failure_cases, name, str(path))) from None
    except pa.errors.SchemaError as err:  # pragma: no cover - lazy=True collects errors
        raise UserError(f"{path}: {err}") from None
    return prepared
