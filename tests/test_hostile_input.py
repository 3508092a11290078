"""Malformed and hostile extracts (issue 9): a corpus made by mutating synthetic extracts.

A tiny synthetic dataset is generated once per module (``mydirection.synthetic``) and cleaned
as the baseline. Each kind below copies it, breaks ONE extract in one way, and runs the clean
entry script (``scripts/clean.py``) the way Snakemake would, with a stand-in ``snakemake``
object. Nothing is committed as data: the corpus only exists in pytest's temporary folders.

Every kind has one of two outcomes:

- **completes**: the stage finishes, every output is written, each file's cleaning log still
  adds up (rows received = kept + excluded) and matches the baseline's log exactly, plus the
  change the mutation should cause (e.g. one more row under ``after_extract_end``); where the
  input is valid but unusual (BOM, CRLF, semicolons, quoted line breaks, long values) the
  cleaned tables are those of the baseline, value for value;
- **stops**: the script exits with status 1 after ONE error line naming the file, the column
  (where there is one), how many rows (where the problem is in rows), an example row number
  where the mutation planted one, and what to do — no traceback, no identifier in the
  message, and none of the outputs left behind (stale outputs of an "earlier run" are planted
  first and must be gone).

Decisions recorded here (the contract is ``workflow/schemas/extracts/*.schema.yaml``):

- header names: surrounding spaces are ignored; case is NOT: ``CRN`` is not ``crn`` (the
  message says which header name looks like the missing column);
- delimiter: comma, semicolon or tab, sniffed from the header; anything else (``|``) stops;
- line ends: LF, CRLF and old-Mac CR are all read; a line break inside a quoted value is part
  of the value (RFC 4180), in a small file and in one larger than Arrow's 1 MiB read block;
- a NUL byte anywhere in a contract column stops the run (a damaged or non-text export);
- formula-like strings (``=cmd|' /C calc'!A0``, ``+``, ``-``, ``@`` prefixes): in an id or
  text column they are data, kept verbatim and never evaluated; the stage writes only Parquet
  and JSON, never a file a spreadsheet would open as cells; in a code column they are an
  unknown code and stop the run;
- a 10,000-character value is data in an id or text column; in a code column it stops the
  run and the message shows only its first characters;
- dates must be YYYY-MM-DD or DD/MM/YYYY exactly (no time, no surrounding spaces) and within
  the years 1678-2261 that ``datetime64[ns]`` holds: a ``9999-12-31`` "no end" placeholder
  stops the run (blank is the contract's "no date"), instead of wrapping round to a wrong
  date; a count above 2**53 or a number overflowing to infinity is out of range;
- a header line repeated inside the data (two exports concatenated) stops the run at the
  first column whose check it fails.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from clean_harness import StageRun, run_clean_stage
from helpers import copy_project

from mydirection.contract import EXTRACTS, extract_schema
from mydirection.keys import fingerprint, source_key_pseudonym
from mydirection.synthetic import write_extracts
from mydirection.validate import normalise_id

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "clean.py"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
END = "2020-06-30"  # extract_end_date of config/config.yaml and of the synthetic defaults
TINY = {"n_treated": 20, "n_comparator_pool": 200}
SEED = 11
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FORMULAS = [
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
]
LONG = 10_000
ARROW_BLOCK = 1 << 20  # pyarrow.csv.ReadOptions.block_size default
HUGE_COPIES = 40  # contacts x 40: ~280,000 rows
KEY_ENV = "MYDIRECTION_HOSTILE_TEST_KEY"
KEY = b"hostile-corpus-test-key-0123456789"
os.environ[KEY_ENV] = KEY.decode()  # the corpus runs as real extracts, with this key


# --------------------------------------------------------------------------- running the script


@dataclass
class Run:
    code: int
    err: str
    stage: StageRun

    def table(self, name: str) -> pd.DataFrame:
        if name == "cleaning_log":
            return pd.read_parquet(self.stage.out / "clean" / "cleaning_log.parquet")
        return self.stage.table(name)


def run_script(raw: Path, out: Path, capsys=None) -> Run:
    """Run the clean stage's jobs on ``raw``; stale outputs of an earlier run planted first."""
    stage = run_clean_stage(
        {n: raw / f"{n}.csv" for n in EXTRACTS},
        out,
        raw_dir=str(raw),  # real-data mode: the mutated files carry no generator stamp
        key_env=KEY_ENV,
        key_fingerprint=fingerprint(KEY),
        plant_stale=True,
    )
    err = capsys.readouterr().err if capsys else stage.log_text()
    return Run(stage.code, err, stage)


def pid(file: str, column: str, raw_value: str) -> str:
    """The cleaned value of a raw source key: normalised, then pseudonymised."""
    domain = extract_schema(file)["columns"][column]["pseudonymised"]
    norm = normalise_id(pd.Series([raw_value], dtype=pd.ArrowDtype(pa.string())))[0].iloc[0]
    return source_key_pseudonym(norm, KEY, domain)


# --------------------------------------------------------------------------- the baseline


@dataclass
class Baseline:
    raw: Path
    log: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    crns: set[str]

    def rows(self, file: str) -> dict[tuple[str, str], int]:
        return _log_rows(self.log, file)


def _log_rows(log: pd.DataFrame, file: str) -> dict[tuple[str, str], int]:
    sel = log[log["file"] == file]
    return {(r.rule, r.action): int(r.rows) for r in sel.itertuples()}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Baseline:
    raw = tmp_path_factory.mktemp("synthetic")
    write_extracts(raw, TINY, SEED)
    run = run_script(raw, tmp_path_factory.mktemp("baseline"))
    assert run.code == 0, run.err
    tables = {n: run.table(n) for n in EXTRACTS}
    people = pd.read_csv(raw / "people.csv", dtype=str, keep_default_na=False)
    return Baseline(raw, run.table("cleaning_log"), tables, set(people["crn"].str.strip()))


# --------------------------------------------------------------------------- mutation helpers


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def write_rows(
    path: Path, header, rows, *, delimiter=",", encoding="utf-8", quoting=csv.QUOTE_MINIMAL
) -> None:
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n", quoting=quoting)
        writer.writerow(header)
        writer.writerows(rows)


def _key(name: str) -> list[str]:
    return list(extract_schema(name)["key"] or [])


def pick_rows(name: str, header, rows, b: Baseline, n: int = 1) -> list[int]:
    """Indices of ``n`` ordinary rows: unique key, kept by the baseline, codes already
    normalised, ISO dates (so editing them changes exactly what the kind intends)."""
    spec = extract_schema(name)["columns"]
    key = [header.index(c) for c in _key(name)]
    counts = Counter(tuple(r[i] for i in key) for r in rows)
    id_col = _key(name)[0] if _key(name) else None
    kept = set(b.tables[name][id_col]) if id_col in b.tables[name] else None
    chosen = []
    for i, r in enumerate(rows):
        rec = dict(zip(header, r, strict=True))
        if key and counts[tuple(r[j] for j in key)] != 1:
            continue
        if kept is not None and pid(name, id_col, rec[id_col]) not in kept:
            continue
        if any(s["type"] == "code" and rec[c] != rec[c].strip().lower() for c, s in spec.items()):
            continue
        if any(s["type"] == "date" and rec[c] and not ISO.match(rec[c]) for c, s in spec.items()):
            continue
        if i < 3:  # leave the first rows alone: example row numbers are then non-trivial
            continue
        chosen.append(i)
        if len(chosen) == n:
            return chosen
    raise AssertionError(f"no ordinary row in {name}")


def set_cells(column: str, *values: str):
    """Mutation: ``column`` of ordinary rows set to ``values`` (one row per value)."""

    def how(path: Path, b: Baseline) -> dict:
        header, rows = read_rows(path)
        idx = pick_rows(path.stem, header, rows, b, len(values))
        ids = _ids(path.stem, header, rows, idx)  # before the edit
        for i, v in zip(idx, values, strict=True):
            rows[i][header.index(column)] = v
        write_rows(path, header, rows)
        return {"rows": [i + 1 for i in idx], "ids": ids}

    return how


def _ids(name, header, rows, idx):
    id_col = _key(name)[0] if _key(name) else None
    if id_col is None:
        return []
    return [rows[i][header.index(id_col)] for i in idx]


def append_like(**changes):
    """Mutation: a copy of an ordinary row appended with ``changes`` (values may be
    callables of the copied row)."""

    def how(path: Path, b: Baseline) -> dict:
        header, rows = read_rows(path)
        (i,) = pick_rows(path.stem, header, rows, b)
        orig = dict(zip(header, rows[i], strict=True))
        rec = {**orig, **{k: v(orig) if callable(v) else v for k, v in changes.items()}}
        rows.append([rec[c] for c in header])
        write_rows(path, header, rows)
        return {"rows": [len(rows)], "orig": orig}

    return how


def rewrite(**kw):
    """Mutation: the same rows written again with other CSV settings."""

    def how(path: Path, b: Baseline) -> None:
        header, rows = read_rows(path)
        write_rows(path, header, rows, **kw)

    return how


def on_bytes(fn: Callable[[bytes], bytes]):
    def how(path: Path, b: Baseline) -> None:
        path.write_bytes(fn(path.read_bytes()))

    return how


def on_header(fn: Callable[[list[str]], list[str]]):
    def how(path: Path, b: Baseline) -> None:
        header, rows = read_rows(path)
        write_rows(path, fn(header), rows)

    return how


def drop_column(column: str):
    def how(path: Path, b: Baseline) -> None:
        header, rows = read_rows(path)
        j = header.index(column)
        write_rows(path, header[:j] + header[j + 1 :], [r[:j] + r[j + 1 :] for r in rows])

    return how


def add_column(column: str, value: str):
    def how(path: Path, b: Baseline) -> None:
        header, rows = read_rows(path)
        write_rows(
            path, [*header[:2], column, *header[2:]], [[*r[:2], value, *r[2:]] for r in rows]
        )

    return how


def not_utf8(path: Path, b: Baseline) -> dict:
    header, rows = read_rows(path)
    (i,) = pick_rows(path.stem, header, rows, b)
    rows[i][header.index("office")] = "Beverley Caf\xe9"
    write_rows(path, header, rows, encoding="latin-1")
    return {"rows": [i + 1]}


def extra_field(path: Path, b: Baseline) -> dict:
    header, rows = read_rows(path)
    (i,) = pick_rows(path.stem, header, rows, b)
    rows[i].append("surplus")
    write_rows(path, header, rows)
    return {"rows": [i + 1]}


def unbalanced_quote(path: Path, b: Baseline) -> dict:
    header, rows = read_rows(path)
    (i,) = pick_rows(path.stem, header, rows, b)
    write_rows(path, header, rows, quoting=csv.QUOTE_ALL)
    lines = path.read_bytes().split(b"\n")
    assert lines[i + 1].endswith(b'"')
    lines[i + 1] = lines[i + 1][:-1]  # the last value's closing quote is lost
    path.write_bytes(b"\n".join(lines))
    return {"rows": [i + 1]}


def truncated(path: Path, b: Baseline) -> dict:
    data = path.read_bytes()
    path.write_bytes(data[:-30])
    return {"rows": [data.count(b"\n") - 1]}


def repeated_header(path: Path, b: Baseline) -> dict:
    """Two exports concatenated: the header line again in the middle of the data."""
    header, rows = read_rows(path)
    at = len(rows) // 2
    write_rows(path, header, [*rows[:at], header, *rows[at:]])
    return {"rows": [at + 1]}


def duplicated_key(path: Path, b: Baseline) -> dict:
    header, rows = read_rows(path)
    (i,) = pick_rows(path.stem, header, rows, b)
    copy = list(rows[i])
    j = header.index("ethnicity")
    copy[j] = "other" if copy[j] != "other" else "white"
    rows.append(copy)
    write_rows(path, header, rows)
    return {"rows": [i + 1, len(rows)]}


def exact_copies(path: Path, b: Baseline) -> None:
    header, rows = read_rows(path)
    write_rows(path, header, [*rows, rows[10], rows[20], rows[20]])


def huge_contacts(path: Path, b: Baseline) -> None:
    """Every contact repeated HUGE_COPIES times, each copy with fresh contact ids (so the
    planted mess repeats too: exact duplicates stay duplicates within a copy)."""
    header, rows = read_rows(path)
    j = header.index("contact_id")
    out = []
    for k in range(HUGE_COPIES):
        for r in rows:
            r = list(r)
            r[j] = f"K{k:02d}{r[j]}"
            out.append(r)
    write_rows(path, header, out)


MULTILINE = "first line\nsecond line\r\nthird"


def quoted_newline_at_block_edge(path: Path, b: Baseline) -> dict:
    """Supervision padded past Arrow's 1 MiB read block with copies of an ordinary event
    (fresh event ids); the event straddling the block edge gets an office value with a line
    break as the last byte before the edge, so the block boundary Arrow's chunker picks (the
    last line end in the block) falls inside a quoted value."""
    header, rows = read_rows(path)
    (i,) = pick_rows(path.stem, header, rows, b)
    j_id, j_office = header.index("event_id"), header.index("office")
    pad, size = [], path.stat().st_size
    while size < 2 * ARROW_BLOCK:
        r = list(rows[i])
        r[j_id] = f"EPAD{len(pad):06d}"
        pad.append(r)
        size += len(",".join(r)) + 1
    out_rows = rows + pad
    write_rows(path, header, out_rows)
    data = path.read_bytes()
    prefix = len(",".join(pad[0][:j_office]).encode()) + 1  # office starts this far in
    starts = [m.end() for m in re.finditer(b"\n", data)]
    start = max(s for s in starts if s + prefix + 3 < ARROW_BLOCK)
    line_no = data.count(b"\n", 0, start)  # = data row number of the row starting there
    target = out_rows[line_no - 1]
    assert target[j_id].startswith("EPAD")
    value = "y" * (ARROW_BLOCK - 2 - start - prefix) + "\nz"
    target[j_office] = value
    write_rows(path, header, out_rows)
    data = path.read_bytes()
    assert data.rfind(b"\n", 0, ARROW_BLOCK) == ARROW_BLOCK - 1
    assert data[start + prefix : ARROW_BLOCK] == b'"' + value[:-1].encode()
    return {"padded": len(pad), "event": target[j_id], "office": value}


def every_crn(fn: Callable[[str], str]):
    """Mutation: every ``crn`` of the file rewritten by ``fn``; info n = rows kept before."""

    def how(path: Path, b: Baseline) -> dict:
        header, rows = read_rows(path)
        j = header.index("crn")
        for r in rows:
            r[j] = fn(r[j])
        write_rows(path, header, rows)
        return {"n": b.rows(path.stem)[("kept", "kept")]}

    return how


def new_people(*changes: dict):
    """Mutation: new people appended, copies of an ordinary person with fresh CRNs."""

    def how(path: Path, b: Baseline) -> dict:
        header, rows = read_rows(path)
        (i,) = pick_rows(path.stem, header, rows, b)
        for k, change in enumerate(changes):
            rec = dict(zip(header, rows[i], strict=True))
            rec.update(crn=f"Q{900000 + k}", **change)
            rows.append([rec[c] for c in header])
        write_rows(path, header, rows)
        return {"rows": list(range(len(rows) - len(changes) + 1, len(rows) + 1))}

    return how


def contact_of_another_persons_event(path: Path, b: Baseline) -> dict:
    header, rows = read_rows(path)
    (i,) = pick_rows(path.stem, header, rows, b)
    sup_header, sup = read_rows(path.parent / "supervision.csv")
    me = rows[i][header.index("crn")]
    other = next(r for r in sup if r[sup_header.index("crn")] != me)
    rec = dict(zip(header, rows[i], strict=True))
    rec.update(contact_id="CNEW9", event_id=other[sup_header.index("event_id")])
    rows.append([rec[c] for c in header])
    write_rows(path, header, rows)
    return {"rows": [len(rows)]}


def conviction_at_age_5(path: Path, b: Baseline) -> dict:
    """A conviction dated when its person was about five (negative-age kind of fact)."""
    header, rows = read_rows(path)
    (i,) = pick_rows(path.stem, header, rows, b)
    p_header, people = read_rows(path.parent / "people.csv")
    dob = {r[p_header.index("crn")]: r[p_header.index("date_of_birth")] for r in people}
    rec = dict(zip(header, rows[i], strict=True))
    born = dob[rec["crn"]]
    year = int(born[:4]) if ISO.match(born) else int(born[-4:])
    rec.update(offence_date=f"{year + 5}-06-01", disposal_date=f"{year + 5}-07-01")
    rows.append([rec[c] for c in header])
    write_rows(path, header, rows)
    return {"rows": [len(rows)]}


def swap_headers(a: str, c: str):
    """Mutation: a mislabelled export, the header names of two columns swapped."""
    return on_header(lambda h: [c if x == a else a if x == c else x for x in h])


def us_dates(path: Path, b: Baseline) -> dict:
    """Every date of the column written MM/DD/YYYY (a spreadsheet in a US locale)."""
    header, rows = read_rows(path)
    j = header.index("contact_date")
    bad = []
    for i, r in enumerate(rows):
        if ISO.match(r[j]):
            y, m, d = r[j].split("-")
            r[j] = f"{m}/{d}/{y}"
            if int(d) > 12:
                bad.append(i + 1)
    write_rows(path, header, rows)
    return {"rows": bad}


def nul_padding(n: int):
    """A file padded with NUL bytes, as a crash while copying or writing leaves it."""

    def how(path: Path, b: Baseline) -> dict:
        data = path.read_bytes()
        path.write_bytes(data + b"\x00" * n)
        return {"rows": [data.count(b"\n")]}

    return how


def nul_line(path: Path, b: Baseline) -> dict:
    """One line overwritten with NUL bytes (a damaged block), same length."""
    lines = path.read_bytes().split(b"\n")
    lines[7] = b"\x00" * len(lines[7])
    path.write_bytes(b"\n".join(lines))
    return {"rows": [7]}


def too_few_fields(path: Path, b: Baseline) -> dict:
    header, rows = read_rows(path)
    (i,) = pick_rows(path.stem, header, rows, b)
    rows[i] = rows[i][:-2]
    write_rows(path, header, rows)
    return {"rows": [i + 1]}


def spaces_line(path: Path, b: Baseline) -> dict:
    lines = path.read_bytes().split(b"\n")
    lines.insert(6, b"   ")  # line 7: data row 6
    path.write_bytes(b"\n".join(lines))
    return {"rows": [6]}


# --------------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class Completes:
    """The stage completes; the mutated file's log is the baseline's x ``factor`` + ``delta``."""

    file: str
    how: Callable
    delta: dict[str, int] | Callable[[dict], dict[str, int]] = field(default_factory=dict)
    factor: int = 1
    check: Callable | None = None  # check(run, baseline, info); default: tables unchanged


@dataclass(frozen=True)
class Stops:
    """The stage stops with one message: file, ``column``, ``rows`` and the ``says`` text."""

    file: str
    how: Callable
    says: str
    column: str | None = None
    rows: int | None = None
    linking: bool = False  # found when linking to people (clean_extract), not validating


def _rows_only(table: pd.DataFrame) -> pd.DataFrame:
    """A cleaned table without source_row (lines shift when a mutation adds lines)."""
    return table.drop(columns="source_row")


def _same_tables(run: Run, b: Baseline, info, skip: str | None = None) -> None:
    for name in EXTRACTS:
        if name == skip:
            continue
        pd.testing.assert_frame_equal(
            _rows_only(run.table(name)), _rows_only(b.tables[name]), obj=name
        )


def _value_kept(file: str, id_col: str, column: str, value: str):
    """Every table as the baseline's, except ``column`` of ``file`` on the mutated rows,
    which holds ``value`` verbatim."""

    def check(run: Run, b: Baseline, info) -> None:
        got = run.table(file)
        at = got[id_col].isin([pid(file, id_col, i) for i in info["ids"]])
        assert at.sum() == len(info["ids"])
        assert (got.loc[at, column] == value).all()
        base = b.tables[file].copy()
        base.loc[at.to_numpy(), column] = value
        pd.testing.assert_frame_equal(_rows_only(got), _rows_only(base), obj=file)
        _same_tables(run, b, info, skip=file)

    return check


def _ids_kept_verbatim(file: str, id_col: str, values: list[str]):
    def check(run: Run, b: Baseline, info) -> None:
        got = run.table(file)
        old_to_new = {
            pid(file, id_col, o): pid(file, id_col, v)
            for o, v in zip(info["ids"], values, strict=True)
        }
        base = b.tables[file].copy()
        base[id_col] = base[id_col].replace(old_to_new)
        pd.testing.assert_frame_equal(got, base, obj=file)
        # pseudonymised like every source key: the raw value (a formula) never reaches results
        assert {pid(file, id_col, v) for v in values} <= set(got[id_col])
        assert not set(values) & set(got[id_col])
        written = {p.suffix for p in run.stage.out.rglob("*.*")}
        assert written <= {".parquet", ".json", ".log"}, written  # nothing a spreadsheet opens

    return check


def _extra_column_logged(run: Run, b: Baseline, info) -> None:
    _same_tables(run, b, info)
    assert "contacts: 1 column(s) not in the contract dropped: free_text_notes" in run.err
    assert "free_text_notes" not in run.table("contacts")


def _large_file_read(run: Run, b: Baseline, info) -> None:
    got = run.table("supervision")
    event = pid("supervision", "event_id", info["event"])
    assert got.loc[got["event_id"] == event, "office"].tolist() == [info["office"]]
    pads = {pid("supervision", "event_id", f"EPAD{k:06d}") for k in range(info["padded"])}
    rest = got[~got["event_id"].isin(pads)].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, b.tables["supervision"])
    # source_row is the line each record starts on: after the value with a line break,
    # records start one line later than their data-row number + 1
    at = int(got.loc[got["event_id"] == event, "source_row"].iloc[0])
    after = got.loc[got["source_row"] > at, "source_row"]
    assert got["source_row"].is_monotonic_increasing and after.min() == at + 2


def _appended(file: str, id_col: str, new_id: str, column: str, expected: Callable):
    """The baseline's tables plus one row ``new_id`` whose ``column`` is ``expected(orig)``
    (``orig``: the raw row it copies)."""

    def check(run: Run, b: Baseline, info) -> None:
        got = run.table(file)
        new = got[id_col] == pid(file, id_col, new_id)
        assert new.sum() == 1
        assert got.loc[new, column].iloc[0] == expected(info["orig"])
        assert got.loc[new, "source_row"].iloc[0] == info["rows"][0] + 1  # its line
        pd.testing.assert_frame_equal(got[~new].reset_index(drop=True), b.tables[file], obj=file)
        _same_tables(run, b, info, skip=file)

    return check


def _huge_contacts_kept(run: Run, b: Baseline, info) -> None:
    got = run.table("contacts")
    assert len(got) == HUGE_COPIES * len(b.tables["contacts"])
    assert got["contact_id"].is_unique


def _dmy(rec_date: str) -> str:
    y, m, d = rec_date.split("-")
    return f"{d}/{m}/{y}"


KINDS: dict[str, Completes | Stops] = {
    # ---- valid but unusual: read as the plain file would be
    "extra_unknown_column": Completes(
        "contacts", add_column("free_text_notes", "called twice"), check=_extra_column_logged
    ),
    "semicolon_delimiter": Completes("people", rewrite(delimiter=";")),
    "tab_delimiter": Completes("assessments", rewrite(delimiter="\t")),
    "byte_order_mark": Completes("staff", on_bytes(lambda d: b"\xef\xbb\xbf" + d)),
    "crlf_line_ends": Completes("contacts", on_bytes(lambda d: d.replace(b"\n", b"\r\n"))),
    "cr_line_ends": Completes("supervision", on_bytes(lambda d: d.replace(b"\n", b"\r"))),
    "every_value_quoted": Completes("assessments", rewrite(quoting=csv.QUOTE_ALL)),
    "trailing_blank_lines": Completes("people", on_bytes(lambda d: d + b"\n\n\r\n\n")),
    "no_final_line_end": Completes("activities", on_bytes(lambda d: d.rstrip(b"\n"))),
    "header_with_spaces": Completes(
        "people", on_header(lambda h: [f"  {c} " if c in ("crn", "sex") else c for c in h])
    ),
    "quoted_line_breaks": Completes(
        "staff",
        set_cells("office", MULTILINE),
        check=_value_kept("staff", "case_manager_id", "office", MULTILINE),
    ),
    "quoted_line_breaks_in_large_file": Completes(
        "supervision",
        quoted_newline_at_block_edge,
        delta=lambda info: {"read": info["padded"], "kept": info["padded"]},
        check=_large_file_read,
    ),
    "long_field_in_id": Completes(
        "contacts",
        set_cells("contact_id", "C" * LONG),
        check=_ids_kept_verbatim("contacts", "contact_id", ["C" * LONG]),
    ),
    "long_field_in_text": Completes(
        "supervision",
        set_cells("office", "o" * LONG),
        check=_value_kept("supervision", "event_id", "office", "o" * LONG),
    ),
    "formula_strings_in_id": Completes(
        "contacts",
        set_cells("contact_id", *FORMULAS),
        delta={"id_normalised": len(FORMULAS)},  # spaces removed, upper-cased
        check=_ids_kept_verbatim("contacts", "contact_id", FORMULAS),
    ),
    "formula_string_in_text": Completes(
        "staff",
        set_cells("office", FORMULAS[0]),
        check=_value_kept("staff", "case_manager_id", "office", FORMULAS[0]),
    ),
    # ---- fixed or excluded, and counted in the cleaning log
    "date_after_extract_end": Completes(
        "contacts",
        append_like(contact_id="CNEW1", contact_date="2031-01-01"),
        delta={"read": 1, "after_extract_end": 1},
    ),
    "exact_duplicate_rows": Completes(
        "convictions", exact_copies, delta={"read": 3, "exact_duplicate": 3}
    ),
    "crn_in_enrolments_not_in_people": Completes(
        "enrolments", append_like(crn="Z0000001"), delta={"read": 1, "person_not_in_people": 1}
    ),
    "code_case_and_whitespace": Completes(
        "supervision",
        append_like(event_id="ENEW1", rosh=lambda r: f"  {r['rosh'].upper()} "),
        delta={"read": 1, "kept": 1, "code_normalised": 1},
        check=_appended("supervision", "event_id", "ENEW1", "rosh", lambda r: r["rosh"]),
    ),
    "day_month_year_date": Completes(
        "supervision",
        append_like(event_id="ENEW1", start_date=lambda r: _dmy(r["start_date"])),
        delta={"read": 1, "kept": 1, "date_format": 1},
        check=_appended(
            "supervision",
            "event_id",
            "ENEW1",
            "start_date",
            lambda r: pd.Timestamp(r["start_date"]),
        ),
    ),
    "crns_padded_cased_and_zero_width": Completes(  # every enrolment still links
        "enrolments",
        every_crn(lambda c: f"  {c.lower()}\u200b "),
        delta=lambda info: {"id_normalised": info["n"]},
    ),
    "field_over_128k_in_text": Completes(
        "supervision",
        set_cells("office", "o" * 200_000),
        check=_value_kept("supervision", "event_id", "office", "o" * 200_000),
    ),
    "header_name_over_128k": Completes(
        "plans",
        add_column("n" * 200_000, "x"),
        check=lambda run, b, info: _same_tables(run, b, info),
    ),
    "contact_with_an_unknown_event": Completes(
        "contacts",
        append_like(contact_id="CNEW1", event_id="ENOSUCH1"),
        delta={"read": 1, "event_not_in_supervision": 1},
    ),
    "contact_of_another_persons_event": Completes(
        "contacts",
        contact_of_another_persons_event,
        delta={"read": 1, "event_of_another_person": 1},
    ),
    "date_of_birth_in_1850": Completes(
        "people",
        new_people({"date_of_birth": "1850-03-01", "pnc_id": ""}),
        delta={"read": 1, "implausible_birth_date": 1},
    ),
    "one_pnc_id_two_birth_dates": Completes(
        "people",
        new_people(
            {"pnc_id": "99/0000001Z", "date_of_birth": "1980-01-01"},
            {"pnc_id": "99/0000001Z", "date_of_birth": "1981-02-02"},
        ),
        delta={"read": 2, "pnc_id_two_birth_dates": 2},
    ),
    "one_person_under_two_crns": Completes(
        "people",
        new_people(
            {"pnc_id": "99/0000002Y", "date_of_birth": "1980-01-01"},
            {"pnc_id": "99/0000002Y", "date_of_birth": "1980-01-01"},
        ),
        delta={"read": 2, "one_person_several_crns": 2},
    ),
    "conviction_before_age_10": Completes(
        "convictions", conviction_at_age_5, delta={"read": 1, "dated_before_age_10": 1}
    ),
    "huge_file_of_valid_rows": Completes(
        "contacts", huge_contacts, factor=HUGE_COPIES, check=_huge_contacts_kept
    ),
    # ---- the run stops with one message
    "missing_file": Stops("people", lambda p, b: p.unlink(), "file not found"),
    "empty_file": Stops("staff", on_bytes(lambda d: b""), "the file is empty"),
    "blank_lines_only": Stops("staff", on_bytes(lambda d: b"\n \n\n"), "the file is empty"),
    "header_only": Stops(
        "plans", on_bytes(lambda d: d.split(b"\n")[0] + b"\n"), "header but no data rows"
    ),
    "missing_column": Stops(
        "supervision", drop_column("rosh"), "missing from the header", column="rosh"
    ),
    "header_in_upper_case": Stops(
        "people",
        on_header(lambda h: [c.upper() if c == "crn" else c for c in h]),
        "missing from the header .*'CRN'",
        column="crn",
    ),
    "wrong_delimiter": Stops(
        "people",
        rewrite(delimiter="|"),
        "missing from the header .*header read with comma as delimiter",
        column="crn",
    ),
    "spreadsheet_sep_line": Stops(
        "staff",
        on_bytes(lambda d: b"sep=,\n" + d),
        "missing from the header",
        column="case_manager_id",
    ),
    "non_utf8_bytes": Stops("staff", not_utf8, "not valid UTF-8", rows=1),
    "utf16_file": Stops(
        "staff",
        on_bytes(lambda d: d.decode("utf-8").encode("utf-16")),
        "header line is not UTF-8",
    ),
    "nul_byte": Stops(
        "contacts", set_cells("contact_id", "C00\x00001"), "NUL byte", column="contact_id", rows=1
    ),
    "row_with_too_many_fields": Stops(
        "staff", extra_field, "do not have the 5 fields of the header", rows=1
    ),
    "truncated_last_row": Stops(
        "contacts", truncated, "do not have the 7 fields of the header", rows=1
    ),
    "unbalanced_quote": Stops(
        "contacts", unbalanced_quote, "do not have the 7 fields of the header", rows=1
    ),
    "unparseable_date": Stops(
        "contacts",
        set_cells("contact_date", "next week"),
        "not a real date",
        column="contact_date",
        rows=1,
    ),
    "impossible_date": Stops(
        "supervision",
        set_cells("start_date", "2018-02-30"),
        "not a real date .*1 not a calendar date",
        column="start_date",
        rows=1,
    ),
    "date_with_spaces": Stops(
        "contacts",
        set_cells("contact_date", " 2018-03-05 "),
        "not a real date",
        column="contact_date",
        rows=1,
    ),
    "header_repeated_in_the_data": Stops(
        "contacts",
        repeated_header,
        "not a real date .*header line repeated in the data",
        column="contact_date",
        rows=1,
    ),
    "placeholder_end_date_9999": Stops(  # was: wrapped round, excluded as end_before_start
        "supervision",
        set_cells("end_date", "9999-12-31", "31/12/9999"),
        "not a real date .*2 outside the years 1678-2261 \\(a placeholder such as 9999-12-31",
        column="end_date",
        rows=2,
    ),
    "date_in_year_1": Stops(  # was: kept as 1754-08-30
        "contacts",
        set_cells("contact_date", "0001-01-01"),
        "not a real date",
        column="contact_date",
        rows=1,
    ),
    "date_in_year_2300": Stops(
        "supervision",
        set_cells("end_date", "2300-01-01"),
        "not a real date .*1 outside the years 1678-2261",
        column="end_date",
        rows=1,
    ),
    "date_with_time": Stops(
        "contacts",
        set_cells("contact_date", "2018-03-05 00:00:00"),
        "not a real date",
        column="contact_date",
        rows=1,
    ),
    "negative_ogrs3": Stops(
        "assessments",
        set_cells("ogrs3_1yr", "-3.5"),
        "outside the allowed range 0-100",
        column="ogrs3_1yr",
        rows=1,
    ),
    "ogrs3_above_100": Stops(
        "assessments",
        set_cells("ogrs3_2yr", "100.5", "250"),
        "outside the allowed range 0-100",
        column="ogrs3_2yr",
        rows=2,
    ),
    "unknown_code": Stops(
        "supervision",
        set_cells("rosh", "severe"),
        "code that is not in the contract .*'severe'.*allowed: low, medium",
        column="rosh",
        rows=1,
    ),
    "formula_string_in_code": Stops(
        "contacts",
        set_cells("outcome", FORMULAS[0]),
        "code that is not in the contract",
        column="outcome",
        rows=1,
    ),
    "formula_prefixes_in_code": Stops(
        "contacts",
        set_cells("contact_type", "=telephone", "+telephone", "-telephone", "@telephone"),
        "code that is not in the contract",
        column="contact_type",
        rows=4,
    ),
    "long_field_in_code": Stops(
        "contacts",
        set_cells("outcome", "x" * LONG),
        "code that is not in the contract",
        column="outcome",
        rows=1,
    ),
    "duplicated_key": Stops(
        "people",
        duplicated_key,
        # one problem: pandera lists the key's failing rows once per column
        "share their key \\(crn\\)(?!.*further problem)",
        column="crn",
        rows=2,
    ),
    "required_value_blank": Stops(
        "contacts",
        set_cells("event_id", ""),
        "blank value in a required column",
        column="event_id",
        rows=1,
    ),
    # ---- added for the privacy and hard-knocks issue
    "field_over_128k_in_code": Stops(
        "contacts",
        set_cells("outcome", "x" * 200_000),
        "code that is not in the contract .*not shown",
        column="outcome",
        rows=1,
    ),
    "nul_filled_file": Stops("staff", on_bytes(lambda d: b"\x00" * 4096), "NUL bytes"),
    "nul_padded_tail": Stops("contacts", nul_padding(3000), "NUL bytes", rows=1),
    "nul_line_in_the_middle": Stops("supervision", nul_line, "NUL bytes", rows=1),
    "row_with_too_few_fields": Stops(
        "assessments", too_few_fields, "do not have the 13 fields of the header", rows=1
    ),
    "line_of_spaces": Stops(
        "enrolments", spaces_line, "do not have the 5 fields of the header", rows=1
    ),
    "crn_and_rosh_headers_swapped": Stops(
        "supervision",
        swap_headers("crn", "rosh"),
        "code that is not in the contract .*not shown: they do not look like codes",
        column="rosh",
    ),
    "case_note_typed_into_a_code": Stops(
        "contacts",
        set_cells("outcome", "Called twice, spoke to Mr Smith of 12 Hull Rd about rent"),
        "code that is not in the contract \\(1 other value\\(s\\) not shown",
        column="outcome",
        rows=1,
    ),
    "us_dates": Stops("contacts", us_dates, "US dates \\(MM/DD/YYYY\\)", column="contact_date"),
    "no_enrolment_links_to_people": Stops(
        "enrolments",
        every_crn(lambda c: "Q" + c[1:][::-1]),
        "no people linked",
        column="crn",
        linking=True,
    ),
    "amount_not_a_number": Stops(
        "enabling_fund",
        set_cells("amount_gbp", "\xa312.50"),
        "not a number",
        column="amount_gbp",
        rows=1,
    ),
    "count_not_whole": Stops(
        "plans", set_cells("n_strengths", "2.5"), "not a whole number", column="n_strengths", rows=1
    ),
    "count_too_large": Stops(  # was: kept as -9223372036854775808
        "plans",
        set_cells("n_goals_own_words", "99999999999999999999"),
        "outside the allowed range 0-9007199254740992",
        column="n_goals_own_words",
        rows=1,
    ),
    "amount_overflowing_to_infinity": Stops(  # was: kept as inf
        "enabling_fund",
        set_cells("amount_gbp", "1e400"),
        "outside the allowed range 0 or more",
        column="amount_gbp",
        rows=1,
    ),
    "unknown_flag": Stops(
        "activities",
        set_cells("attended", "maybe"),
        "flag that is not one of",
        column="attended",
        rows=1,
    ),
}


def make_corpus(kind: str, b: Baseline, folder: Path) -> tuple[Path, dict]:
    """The baseline extracts in ``folder`` with the one extract of ``kind`` broken."""
    spec = KINDS[kind]
    shutil.copytree(b.raw, folder)
    info = spec.how(folder / f"{spec.file}.csv", b) or {}
    return folder, info


# --------------------------------------------------------------------------- the test


def test_corpus_is_large_enough():
    assert len(KINDS) >= 25
    assert {k.file for k in KINDS.values()} == set(EXTRACTS)
    assert sum(isinstance(k, Completes) for k in KINDS.values()) >= 10
    assert sum(isinstance(k, Stops) for k in KINDS.values()) >= 10


def _error_line(err: str) -> str:
    """The error message: its one line, or (several problems) the count line and one
    indented line per problem."""
    lines = err.splitlines()
    errors = [i for i, line in enumerate(lines) if "ERROR" in line]
    assert len(errors) == 1, err[-3000:]
    first = re.split(r"ERROR in rule clean\w*: ", lines[errors[0]], maxsplit=1)[1]
    rest = []
    for line in lines[errors[0] + 1 :]:
        if not line.startswith("  - "):
            break
        rest.append(line[4:])
    return "\n".join([first, *rest])


def _problems(message: str) -> list[str]:
    lines = message.splitlines()
    return lines[1:] if len(lines) > 1 else lines


def assert_stops(spec: Stops, run: Run, raw: Path, b: Baseline, info: dict) -> str:
    assert run.code == 1
    assert "Traceback" not in run.err
    message = _error_line(run.err)
    path = str(raw / f"{spec.file}.csv")
    first = _problems(message)[0]
    assert first.startswith(path + (f", column {spec.column}:" if spec.column else ":")), message
    if spec.rows is not None:
        assert re.search(rf"\b{spec.rows} rows\b", message), message
    for row in info.get("rows", [])[:5]:  # data row r is line r + 1 (the header is line 1)
        assert re.search(rf"lines [\d, ]*\b{row + 1}\b", message), (row, message)
    assert re.search(spec.says, message), message
    assert re.search(r"re-export|re-run|raw_dir", message), message  # what to do
    for line in _problems(message):  # one readable line each, whatever the value
        assert len(line) < len(path) + 650, line
    assert not any(crn in message for crn in b.crns)  # no identifier
    logged = run.stage.log_text()  # results/logs/clean_*.log: no identifier either
    assert not any(crn in logged for crn in b.crns)
    assert run.stage.failed_rule == "clean_extract"
    assert not [p for p in run.stage.failed_outputs if p.exists()]  # nothing left behind
    return message


def assert_completes(spec: Completes, run: Run, b: Baseline, info: dict) -> None:
    assert run.code == 0, run.err[-3000:]
    assert "Traceback" not in run.err and "ERROR" not in run.err
    log = run.table("cleaning_log")
    for name in EXTRACTS:
        got = _log_rows(log, name)
        want = b.rows(name)
        if name == spec.file:
            want = {k: v * spec.factor for k, v in want.items()}
            delta = spec.delta(info) if callable(spec.delta) else spec.delta
            for rule, d in delta.items():
                (k,) = [k for k in want if k[0] == rule]
                want[k] += d
        assert got == want, name
        received = got[("read", "received")]
        excluded = sum(v for (r, a), v in got.items() if a == "excluded")
        assert received == got[("kept", "kept")] + excluded, name
        assert len(run.table(name)) == got[("kept", "kept")], name
    (spec.check or _same_tables)(run, b, info)


@pytest.mark.parametrize("kind", list(KINDS))
def test_hostile_extract(kind, baseline, tmp_path, capsys):
    spec = KINDS[kind]
    raw, info = make_corpus(kind, baseline, tmp_path / "raw")
    capsys.readouterr()
    run = run_script(raw, tmp_path / "results", capsys)
    if isinstance(spec, Stops):
        assert_stops(spec, run, raw, baseline, info)
    else:
        assert_completes(spec, run, baseline, info)


# --------------------------------------------------------------------------- through Snakemake


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["date_after_extract_end", "formula_string_in_code"])
def test_snakemake_on_a_hostile_real_extract(kind, baseline, tmp_path):
    spec = KINDS[kind]
    raw, info = make_corpus(kind, baseline, tmp_path / "raw")
    work = copy_project(tmp_path / "project")
    target = "results/clean/cleaning_log.parquet"
    env = {**os.environ, "MYDIRECTION_PSEUDO_KEY": "a-real-key-0123456789abcdef"}
    out = subprocess.run(
        [SNAKEMAKE, "--cores", "1", target, "--config", f"raw_dir={raw}"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    text = out.stdout + out.stderr
    assert "Traceback" not in text
    if isinstance(spec, Stops):
        assert out.returncode != 0
        message = _error_line(text)
        assert message.startswith(f"{raw / spec.file}.csv, column {spec.column}: 1 rows have")
        # the failing extract writes nothing, nor does anything after it; the extracts
        # cleaned before it (its upstream, or independent ones) are whole files
        clean_dir = work / "results/clean"
        assert not (clean_dir / f"{spec.file}.parquet").exists()
        assert not (work / target).exists()
        for done in clean_dir.glob("*.parquet"):
            assert len(pd.read_parquet(done)) == len(baseline.tables[done.stem]), done.name
        assert not (work / "results/numbers/clean.json").exists()
    else:
        assert out.returncode == 0, text[-3000:]
        log = pd.read_parquet(work / target)
        want = {k: v + spec.delta.get(k[0], 0) for k, v in baseline.rows(spec.file).items()}
        assert _log_rows(log, spec.file) == want
        for name in EXTRACTS:
            if name != spec.file:
                assert _log_rows(log, name) == baseline.rows(name), name
        # a real key: person ids differ from the synthetic-key baseline, rows do not
        people = pd.read_parquet(work / "results/clean/people.parquet")
        assert len(people) == len(baseline.tables["people"])
        assert not set(people["person_id"]) & set(baseline.tables["people"]["person_id"])
