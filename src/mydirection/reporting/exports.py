"""The report's published tables as files: one CSV per table and one ``tables.xlsx``.

The tables are read back from the rendered HTML (:func:`html_tables`), so every cell is
exactly what the reader sees, suppressed cells included (``<5``, ``[c]``): nothing is
recomputed and no raw value can leak. Cells are written as text, as printed.

Each table is named after the report section it is in and its position there
(``reoffending-1``), or its ``data-section`` (``methods-matching``); ``index.csv`` lists every table with its section heading. The
reproducibility stamp and the provenance appendix are not published tables.

Both formats are deterministic: CSV with ``\\n`` line ends, the workbook with fixed
document dates and zip entry times (:func:`write_xlsx`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

SKIP_CLASSES = frozenset({"stamp"})
SKIP_SECTIONS = frozenset({"provenance", "reproducibility"})
FIXED_TIME = dt.datetime(2000, 1, 1)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class Table:
    """One published table: its name, the section heading it sits under, its rows."""

    name: str
    section: str
    heading: str
    rows: list[list[str]] = field(default_factory=list)


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[str] = []
        self.section_tags: list[bool] = []  # per open <section>/<div>: is it a section?
        self.heading = ""
        self._in_heading = False
        self._heading_text: list[str] = []
        self.tables: list[Table] = []
        self.count: dict[str, int] = {}
        self.depth = 0  # nesting of tables being skipped or read
        self.current: Table | None = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        elif tag in ("h1", "h2", "h3", "h4"):
            self._in_heading, self._heading_text = True, []
        elif tag == "table":
            self.depth += 1
            if self.depth > 1:
                return
            classes = set((a.get("class") or "").split())
            top = next((s for s in reversed(self.sections) if s), "report")
            if classes & SKIP_CLASSES or any(s in SKIP_SECTIONS for s in self.sections):
                self.current = None
                return
            part = re.sub(r"[^a-z0-9_-]+", "-", (a.get("data-section") or "").lower())
            if part:  # a named table (the methods appendix: one per group of settings)
                self.current = Table(f"{top}-{part}", top, self.heading)
                return
            k = self.count[top] = self.count.get(top, 0) + 1
            self.current = Table(f"{top}-{k}", top, self.heading)
        elif self.current is not None and self.depth == 1:
            if tag == "tr":
                self.row = []
            elif tag in ("td", "th") and self.row is not None:
                self.cell = []
            elif tag == "br" and self.cell is not None:
                self.cell.append(" ")

    def handle_endtag(self, tag):
        if tag == "section" and self.sections:
            self.sections.pop()
        elif tag in ("h1", "h2", "h3", "h4") and self._in_heading:
            self._in_heading = False
            self.heading = " ".join("".join(self._heading_text).split())
        elif tag == "table":
            if self.depth == 1 and self.current is not None:
                self.tables.append(self.current)
                self.current = None
            self.depth = max(0, self.depth - 1)
        elif self.current is not None and self.depth == 1:
            if tag in ("td", "th") and self.cell is not None and self.row is not None:
                self.row.append(" ".join("".join(self.cell).split()))
                self.cell = None
            elif tag == "tr" and self.row is not None:
                self.current.rows.append(self.row)
                self.row = None

    def handle_data(self, data):
        if self._in_heading:
            self._heading_text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def html_tables(html: str) -> list[Table]:
    """The published tables of a rendered report, in document order."""
    body = html.split("<body", 1)[-1]
    parser = _Tables()
    parser.feed(body)
    parser.close()
    return [t for t in parser.tables if t.rows]


def sheet_name(name: str, taken: set[str]) -> str:
    """An Excel sheet name (at most 31 characters, none of ``[]:*?/\\``), unique."""
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:31]
    out, i = base, 2
    while out.lower() in taken:
        suffix = f"~{i}"
        out, i = base[: 31 - len(suffix)] + suffix, i + 1
    taken.add(out.lower())
    return out


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_csvs(tables: list[Table], folder) -> list[Path]:
    """``<folder>/<name>.csv`` per table and ``<folder>/index.csv``; stale CSVs removed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    out = []
    for t in tables:
        p = folder / f"{t.name}.csv"
        p.write_text(csv_text(t.rows))
        out.append(p)
    index = [["table", "section", "heading", "rows"]] + [
        [t.name, t.section, t.heading, str(len(t.rows))] for t in tables
    ]
    (folder / "index.csv").write_text(csv_text(index))
    return out


def write_xlsx(tables: list[Table], path) -> None:
    """One workbook, one sheet per table (cells as printed), with deterministic bytes."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    taken: set[str] = set()
    index = wb.create_sheet(sheet_name("index", taken))
    index.append(["table", "sheet", "section", "heading", "rows"])
    for t in tables:
        name = sheet_name(t.name, taken)
        ws = wb.create_sheet(name)
        for r, row in enumerate(t.rows, start=1):
            for c, value in enumerate(row, start=1):
                cell = ws.cell(row=r, column=c, value=value)
                cell.data_type = "s"  # as printed; "=..." is never read as a formula
        index.append([t.name, name, t.section, t.heading, len(t.rows)])
    wb.properties.creator = "mydirection"
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    buf = io.BytesIO()
    wb.save(buf)
    _normalise_zip(buf.getvalue(), path)


def _normalise_zip(data: bytes, path) -> None:
    """Rewrite a zip with fixed entry times and a fixed modified date in docProps/core.xml."""
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)",
                    rb"\g<1>" + stamp.encode() + rb"\g<2>",
                    content,
                )
            zi = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, content)


def read_xlsx(path) -> dict[str, list[list[str]]]:
    """Sheet name -> rows (as text), for checking a workbook against the report."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    return {
        ws.title: [
            ["" if v is None else str(v) for v in row] for row in ws.iter_rows(values_only=True)
        ]
        for ws in wb.worksheets
    }


__all__ = ["Table", "html_tables", "read_xlsx", "sheet_name", "write_csvs", "write_xlsx"]
