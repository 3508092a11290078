"""Reading one raw extract as text, with every file-level problem named (never a traceback).

File-level choices (documented in docs/data-contract.md, tested in ``tests/test_clean.py``
and ``tests/test_hostile_input.py``):

- the path must be a regular, readable file: a folder, a named pipe (never opened: it would
  block), a symbolic link that loops or points nowhere, or a permission problem each get
  their own message; a file named like the extract in another case (``People.csv``) is named;
- encoding UTF-8, with or without a byte-order mark; NUL bytes (a damaged copy, a file padded
  by a crash, a UTF-16 export) are refused with the lines holding them;
- delimiter: sniffed from the header line, one of comma, semicolon or tab;
- header names are stripped of surrounding spaces and matched case-sensitively; columns not
  in the contract are not read (the caller logs how many);
- fields of any length are read (no 128 KiB limit); a header line over
  :data:`MAX_HEADER_BYTES` is refused (not a CSV header);
- a row with the wrong number of fields is refused with its line number.

Row numbers: every message and every cleaned table (column ``source_row``) counts lines of
the raw file with the header as line 1, so data row 1 is line 2. When a quoted value holds a
line break or the file has blank lines, the physical line where the record starts is used.

Header names (which may be data when the header is missing) are quoted in a message only
when they look like column names (:func:`quotable_name`).
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa_
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from mydirection.contract import extract_schema
from mydirection.errors import UserError

#: Delimiters recognised when sniffing a header line.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
#: A header line longer than this is not a CSV header (a binary file, or no line ends).
MAX_HEADER_BYTES = 1 << 20
MAX_EXAMPLES = 5
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]{0,39}$")
_DIGITS = re.compile(r"\d{3,}")


@dataclass
class Problem:
    """One problem in one extract: file, column (or None), what, the fix, and the lines of
    the raw file it is on (header = line 1; None for a problem of the whole file)."""

    path: str
    column: str | None
    what: str
    fix: str
    lines: np.ndarray | None = None

    def message(self) -> str:
        where = f"{self.path}, column {self.column}" if self.column else self.path
        if self.lines is None:
            return f"{where}: {self.what}; {self.fix}"
        n = len(self.lines)
        return f"{where}: {n} rows {self.what} ({lines_text(self.lines)}); {self.fix}"


class ExtractProblems(UserError):
    """One or more problems, in one or more extracts: one line each, all reported at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(problems_text(self.problems))


def problems_text(problems: list[Problem]) -> str:
    """One problem: its line. Several: a count, then one indented line per problem."""
    if len(problems) == 1:
        return problems[0].message()
    files = sorted({Path(p.path).name for p in problems})
    head = (
        f"{len(problems)} problems in {len(files)} extract(s) ({', '.join(files)}); "
        f"fix them all, then re-run:"
    )
    return "\n".join([head, *(f"  - {p.message()}" for p in problems)])


def lines_text(lines) -> str:
    """``e.g. lines 5, 9; line 1 is the header`` for line numbers ``lines``."""
    lines = sorted({int(r) for r in lines})[:MAX_EXAMPLES]
    return "e.g. lines " + ", ".join(str(r) for r in lines) + "; line 1 is the header"


def quotable_name(name: str) -> bool:
    """Whether a header name may be shown: it looks like a column name, not like data."""
    return bool(_NAME.match(name)) and not _DIGITS.search(name)


@dataclass
class RawExtract:
    """One extract as received: text columns of the contract, data-row numbers as index."""

    name: str
    path: str
    data: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)
    delimiter: str = ","
    #: line of the raw file where each data row starts (header = line 1), aligned with data
    lines: np.ndarray | None = None


def sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: the most frequent of comma, semicolon and tab."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _schema_file(name: str) -> str:
    return f"workflow/schemas/extracts/{name}.schema.yaml"


def file_problem(path: Path, name: str) -> Problem | None:
    """Why ``path`` cannot be read as the ``name`` extract (without opening a pipe)."""
    label = str(path)
    try:
        info = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return Problem(
                label,
                None,
                "is a symbolic link that loops (it points, directly or not, at itself)",
                "point the link at the real file (`ls -l` shows where it goes) and re-run",
            )
        if err.errno == errno.ENOENT:
            if os.path.islink(path):
                return Problem(
                    label,
                    None,
                    f"is a symbolic link to {os.readlink(path)!r}, which does not exist",
                    "point the link at the real extract, or copy the file here, and re-run",
                )
            return Problem(label, None, "file not found", _missing_fix(path, name))
        if err.errno == errno.EACCES:
            return Problem(
                label,
                None,
                "cannot be reached: permission denied on its folder",
                "give the user running the pipeline access to the folder (`chmod u+rx`) and re-run",
            )
        return Problem(label, None, f"cannot be read ({err.strerror})", "check the file and re-run")
    if stat.S_ISDIR(info.st_mode):
        return Problem(
            label,
            None,
            "is a folder, not a file",
            f"put the {name} extract itself at this path (raw_dir is the folder holding the "
            f"ten .csv files) and re-run",
        )
    if not stat.S_ISREG(info.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else "not a regular file"
        return Problem(
            label,
            None,
            f"is {kind}, not a file on disk",
            f"save the {name} extract as a regular file at this path and re-run",
        )
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except PermissionError:
        return Problem(
            label,
            None,
            "cannot be read: permission denied",
            "give the user running the pipeline read access (`chmod u+r`) and re-run",
        )
    except OSError as err:
        return Problem(label, None, f"cannot be read ({err.strerror})", "check the file and re-run")
    return None


def _missing_fix(path: Path, name: str) -> str:
    folder = path.parent
    want = path.name.lower()
    try:
        near = sorted(
            p.name
            for p in folder.iterdir()
            if p.name != path.name
            and (p.name.lower() == want or p.name.lower().strip().replace(" ", "") == want)
        )
    except OSError:
        near = []
    if near:
        return (
            f"the folder has {near[0]!r}: file names must be exactly {path.name!r} (lower case); "
            f"rename it and re-run"
        )
    return (
        f"the {name} extract must be at this path (set raw_dir to the folder holding all ten "
        f"extracts) and re-run"
    )


def _first_line(path: Path) -> bytes:
    """The header line: up to the first LF or CR (old Mac files end lines with CR alone)."""
    with path.open("rb") as fh:
        return fh.readline(MAX_HEADER_BYTES + 1).split(b"\r", 1)[0].rstrip(b"\n")


def _nul_lines(path: Path) -> np.ndarray:
    """Physical lines (header = 1) holding a NUL byte."""
    data = np.fromfile(path, dtype=np.uint8)
    nul = np.flatnonzero(data == 0)
    if not len(nul):
        return np.array([], dtype=np.int64)
    newlines = np.flatnonzero((data == 10) | (data == 13))
    return np.unique(np.searchsorted(newlines, nul)) + 1


def _records(path: Path, delimiter: str):
    """(start line, fields) of every non-blank record after the header (csv module, any size)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        with open(path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            lines = (line.replace("\x00", "\ufffd") for line in text)
            reader = csv.reader(lines, delimiter=delimiter)
            next(reader, None)
            previous = reader.line_num
            for row in reader:
                start = previous + 1
                previous = reader.line_num
                if row:
                    yield start, row
    finally:
        csv.field_size_limit(limit)


def _ragged_lines(path: Path, delimiter: str, n_fields: int) -> list[int]:
    """Lines where a record whose field count differs from the header's starts."""
    return [start for start, row in _records(path, delimiter) if len(row) != n_fields]


def record_lines(path: Path, delimiter: str, n_rows: int) -> np.ndarray:
    """Line (header = 1) where each of the ``n_rows`` data rows starts.

    Cheap when every record is one line (one streaming count of line ends tells): row r is
    line r + 1. Otherwise (a quoted line break, blank lines, CR line ends) the file is read
    once more with the csv module.
    """
    simple = np.arange(2, n_rows + 2, dtype=np.int64)
    n_lf = n_cr = 0
    blank = False
    last = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            n_lf += chunk.count(b"\n")
            n_cr += chunk.count(b"\r")
            blank = blank or b"\n\n" in chunk or (last == b"\n" and chunk[:1] == b"\n")
            last = chunk[-1:]
    lines_total = n_lf + (0 if last == b"\n" else 1)  # a last line without its line end
    if n_cr in (0, n_lf) and not blank and lines_total == n_rows + 1:
        return simple
    starts = np.fromiter((s for s, _ in _records(path, delimiter)), dtype=np.int64)
    return starts if len(starts) == n_rows else simple


def read_extract(path: str | Path, name: str) -> RawExtract:
    """Read one raw extract as text, checking file-level problems.

    Every contract column is read as a string; blank fields stay empty strings. Raises
    :class:`ExtractProblems` (a :class:`UserError`) naming every file-level problem.
    """
    path = Path(path)
    contract = extract_schema(name)
    columns = list(contract["columns"])
    label = str(path)
    problem = file_problem(path, name)
    if problem:
        raise ExtractProblems([problem])
    first = _first_line(path)
    if len(first) > MAX_HEADER_BYTES:
        raise ExtractProblems(
            [
                Problem(
                    label,
                    None,
                    f"the first line is over {MAX_HEADER_BYTES >> 10} KiB long, so it is not a CSV "
                    f"header (a binary file, or a file without line ends)",
                    f"re-export the {name} extract as CSV UTF-8 with one header line and re-run",
                )
            ]
        )
    if not first.strip():
        raise ExtractProblems(
            [
                Problem(
                    label,
                    None,
                    "the file is empty (no header line)",
                    f"re-export the {name} extract with a header and its data rows",
                )
            ]
        )
    try:
        header = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ExtractProblems(
            [
                Problem(
                    label,
                    None,
                    "the header line is not UTF-8 text",
                    "re-export the file as UTF-8 (CSV UTF-8) and re-run",
                )
            ]
        ) from None
    if b"\x00" in first:
        raise ExtractProblems(
            [
                Problem(
                    label,
                    None,
                    "the header line contains NUL bytes: the file is damaged (a broken copy) or "
                    "not UTF-8 text (UTF-16?)",
                    f"re-export the {name} extract as CSV UTF-8 and re-run",
                )
            ]
        )
    delimiter = sniff_delimiter(header)
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        names = [n.strip() for n in next(csv.reader([header], delimiter=delimiter), [])]
    finally:
        csv.field_size_limit(limit)
    problems = _header_problems(label, name, names, columns, delimiter)
    if problems:
        raise ExtractProblems(problems)
    extra = [n for n in names if n not in columns]
    table = _read_table(path, name, names, columns, delimiter)
    table = table.select(columns)
    lines = record_lines(path, delimiter, table.num_rows)
    nul = []
    for col in columns:
        rows = _nul_rows(table.column(col))
        if len(rows):
            rows = lines[rows - 1]
            nul.append(
                Problem(
                    label,
                    col,
                    "contain a NUL byte",
                    f"the file is damaged or not a plain-text export: re-export the {name} "
                    f"extract as CSV UTF-8 and re-run",
                    rows,
                )
            )
    if nul:
        raise ExtractProblems(nul)
    data = table.to_pandas(types_mapper=pd.ArrowDtype)
    del table
    data.index = pd.RangeIndex(1, len(data) + 1, name="row")
    return RawExtract(name, label, data, extra, delimiter, lines)


def _header_problems(label, name, names, columns, delimiter) -> list[Problem]:
    repeated = sorted({n for n in names if names.count(n) > 1 and n in columns})
    problems = [
        Problem(
            label,
            col,
            "the header names this column more than once",
            "keep one column per name and re-export",
        )
        for col in repeated
    ]
    missing = [c for c in columns if c not in names]
    if missing:
        found = [c for c in columns if c in names]
        other_case = [n for n in names if n.lower() == missing[0].lower() and quotable_name(n)]
        if other_case:
            hint = (
                f"; the header has {other_case[0]!r}: column names must match the contract "
                f"exactly, in lower case"
            )
        elif not found:
            hint = (
                "; no contract column is in the first line: is the header missing (the first "
                "line a data row), or a line such as 'sep=,' above it?"
            )
        else:
            hint = ""
        problems.append(
            Problem(
                label,
                missing[0],
                f"missing from the header ({len(missing)} contract column(s) missing: "
                f"{', '.join(missing)}; header read with {DELIMITERS[delimiter]} as "
                f"delimiter{hint})",
                f"add it to the extract (the columns are listed in {_schema_file(name)}) and "
                f"re-export",
            )
        )
    return problems


def _read_table(path: Path, name: str, names, columns, delimiter) -> pa_.Table:
    label = str(path)
    block = 1 << 20
    while True:
        try:
            table = pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(
                    column_names=names, skip_rows=1, block_size=block, encoding="utf8"
                ),
                parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(
                    column_types={n: pa_.string() for n in names},
                    include_columns=columns,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            break
        except pa_.ArrowInvalid as err:
            text = str(err)
            if "straddling" in text and block < (1 << 30):
                block *= 16  # one record longer than a read block: read bigger blocks
                continue
            raise ExtractProblems([_read_problem(path, name, names, delimiter, text)]) from None
        except OSError as err:
            raise ExtractProblems(
                [Problem(label, None, f"could not be read ({err})", "check the file and re-run")]
            ) from None
    if table.num_rows == 0:
        raise ExtractProblems(
            [
                Problem(
                    label,
                    None,
                    "the file has a header but no data rows",
                    f"re-export the {name} extract with its data",
                )
            ]
        )
    return table


def _read_problem(path: Path, name: str, names, delimiter, text: str) -> Problem:
    label = str(path)
    nul = _nul_lines(path)
    if len(nul):
        return Problem(
            label,
            None,
            "contain NUL bytes: the file is damaged (a broken copy or a crash while writing "
            "pads a file with NUL bytes) or not UTF-8 text",
            f"copy or re-export the {name} extract again and re-run",
            nul,
        )
    if "UTF8" in text or "utf8" in text.lower() or "utf-8" in text.lower():
        rows = _non_utf8_rows(path)
        return Problem(
            label,
            None,
            "are not valid UTF-8 text",
            "re-export the file as UTF-8 (CSV UTF-8) and re-run",
            np.asarray(rows or [2]),
        )
    rows = _ragged_lines(path, delimiter, len(names))
    if not rows:
        return Problem(
            label,
            None,
            f"the file could not be read as {DELIMITERS[delimiter]}-separated text (a line "
            f"break inside a quoted value, or an unbalanced quote)",
            "remove line breaks from values and check the quoting, then re-export",
        )
    return Problem(
        label,
        None,
        f"do not have the {len(names)} fields of the header",
        f"check for unquoted {DELIMITERS[delimiter]}s inside values, an unbalanced quote or "
        f"truncated lines, and re-export",
        np.asarray(rows),
    )


def _non_utf8_rows(path: Path) -> list[int]:
    """Lines (header = 1) whose bytes are not valid UTF-8 (error path only)."""
    bad = []
    with path.open("rb") as fh:
        fh.readline()
        for i, line in enumerate(fh, start=2):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(i)
    return bad


def _nul_rows(column: pa_.ChunkedArray) -> np.ndarray:
    """Data-row numbers (1-based) whose value holds a NUL byte (a cheap buffer scan first)."""

    def has_nul(chunk) -> bool:
        data = chunk.buffers()[2]
        return data is not None and data.size > 0 and np.frombuffer(data, np.uint8).min() == 0

    if not any(has_nul(c) for c in column.chunks):
        return np.array([], dtype=np.int64)
    hit = pc.fill_null(pc.match_substring(column, "\x00"), False)
    return np.flatnonzero(hit.to_numpy(zero_copy_only=False)) + 1
