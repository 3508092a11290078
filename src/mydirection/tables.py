"""The tables passed between stages: one declared spec per table, one reader, one writer.

The specs are ``schemas/tables.yaml`` (package data): for each table its file, the rule
that writes it, what one row is, and its columns with their kind and meaning. :func:`read`
checks a table against its spec on the way in and :func:`write` on the way out, so a
stage never runs on a table that lacks what it needs; the message names the file, the
column, the rows and the rule to rerun. ``docs/stages.md`` is generated from the specs
(``python -m mydirection.tables``); a test checks it is up to date.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import pandas as pd

from mydirection.errors import UserError

SPEC_PATH = Path(__file__).resolve().parent / "schemas" / "tables.yaml"
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "stages.md"  # repository checkout

KINDS = {
    "string": pd.api.types.is_string_dtype,
    "bool": pd.api.types.is_bool_dtype,
    "int": pd.api.types.is_integer_dtype,
    "float": pd.api.types.is_float_dtype,
    "number": lambda d: pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d),
    "date": pd.api.types.is_datetime64_any_dtype,
    "any": lambda d: True,
}


@cache
def specs() -> dict:
    """Every table spec, by name (``extends`` resolved: the parent's columns come first)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(SPEC_PATH.read_text(), Loader=loader)
    out = {}
    for name, spec in raw.items():
        columns = dict(raw[spec["extends"]]["columns"]) if "extends" in spec else {}
        columns.update(spec["columns"])
        out[name] = {**spec, "columns": columns}
    return out


def spec(name: str) -> dict:
    try:
        return specs()[name]
    except KeyError:
        raise KeyError(f"table {name!r} is not declared in {SPEC_PATH.name}") from None


def columns(name: str) -> list[str]:
    """The declared columns of a table, in order."""
    return list(spec(name)["columns"])


def _problem(frame: pd.DataFrame, name: str, wanted) -> str | None:
    cols = spec(name)["columns"]
    for col in wanted:
        c = cols[col]
        if col not in frame.columns:
            return f"column {col}: missing ({len(frame)} rows)"
        dtype = frame[col].dtype
        if not KINDS[c["kind"]](dtype) and not (frame[col].isna().all() and c.get("nullable")):
            return f"column {col}: {dtype} values, the spec says {c['kind']} ({len(frame)} rows)"
        if not c.get("nullable"):
            missing = int(frame[col].isna().sum())
            if missing:
                return f"column {col}: {missing} of {len(frame)} rows missing, the spec says never"
    return None


_EMPTY = {"string": "object", "bool": "bool", "int": "int64", "float": "float64",
          "number": "float64", "date": "datetime64[ns]", "any": "object"}  # fmt: skip


def empty(name: str) -> pd.DataFrame:
    """A table with no rows and the declared columns and kinds (e.g. bounds under IPW)."""
    cols = spec(name)["columns"]
    return pd.DataFrame({c: pd.Series(dtype=_EMPTY[s["kind"]]) for c, s in cols.items()})


def check(frame: pd.DataFrame, name: str, path, wanted=None) -> None:
    """Raise :class:`UserError` when ``frame`` breaks the spec of table ``name``."""
    s = spec(name)
    problem = _problem(frame, name, wanted or list(s["columns"]))
    if problem:
        rule = s["written_by"]
        raise UserError(
            f"{path} (table {name}, written by rule {rule}): {problem}; rerun that rule "
            f"(snakemake --forcerun {rule}) or see docs/stages.md"
        )


def _arrow_strings(arrow_type):
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.ArrowDtype(pa.string())
    return None


def as_read(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as :func:`read` with ``arrow_strings`` gives it back from its Parquet
    file (text as Arrow strings; the index dropped), without the file."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.to_pandas(types_mapper=_arrow_strings)


def read(
    path, name: str, columns=None, *, arrow_strings: bool = False, filters=None
) -> pd.DataFrame:
    """Table ``name`` from ``path``, checked against its spec (only ``columns`` if given).

    ``arrow_strings``: text as Arrow-backed strings (a tenth of the memory of Python
    strings at national scale); ``filters``: pyarrow row filters (read less).
    """
    import pyarrow.parquet as pq

    wanted = list(columns) if columns is not None else list(spec(name)["columns"])
    try:
        present = set(pq.read_schema(path).names)
    except (OSError, ValueError) as err:
        rule = spec(name)["written_by"]
        raise UserError(
            f"{path} (table {name}): not a readable Parquet file ({type(err).__name__}); "
            f"rerun rule {rule} (snakemake --forcerun {rule})"
        ) from None
    extra = [c for c in present if c not in spec(name)["columns"]] if columns is None else []
    table = pq.read_table(
        path, columns=[c for c in wanted if c in present] + extra, filters=filters
    )
    mapper = _arrow_strings if arrow_strings else None
    frame = table.to_pandas(types_mapper=mapper)
    check(frame, name, path, wanted)
    return frame[[*wanted, *extra]] if columns is not None else frame


def write(frame: pd.DataFrame, path, name: str) -> None:
    """Write table ``name`` (Parquet, no index) after checking it against its spec; a
    column the spec does not declare is an error (declare it in schemas/tables.yaml)."""
    declared = spec(name)["columns"]
    undeclared = [c for c in frame.columns if c not in declared]
    if undeclared:
        raise ValueError(
            f"table {name}: column {undeclared[0]} is not declared in {SPEC_PATH.name}; "
            "declare it (kind and meaning) before writing it"
        )
    check(frame, name, path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame[list(declared)].to_parquet(path, index=False)


# ----------------------------------------------------------------------------- docs
def render_doc() -> str:
    """``docs/stages.md``: every table spec as a page a person reads."""
    lines = [
        "# Stages and the tables between them",
        "",
        "<!-- Generated from src/mydirection/schemas/tables.yaml by `python -m mydirection.tables`.",
        "     Edit the spec, not this page; tests/test_tables.py checks it is up to date. -->",
        "",
        "Each stage is one rule file (`workflow/rules/<stage>.smk`), a thin entry script",
        "(`scripts/`), its library code (`src/mydirection/`) and its tests (`tests/`). Tables",
        "pass between stages as Parquet; each is read and written through its spec",
        "(`mydirection.tables`), so a column listed here may be relied on downstream. The raw",
        "extracts have their own contract: [data-contract.md](data-contract.md).",
        "",
        "| table | file | written by | one row per |",
        "|---|---|---|---|",
    ]
    for name, s in specs().items():
        lines.append(
            f"| [{name}](#{name.replace('.', '')}) | `{s['path']}` | `{s['written_by']}` | {s['one_row_per']} |"
        )
    for name, s in specs().items():
        lines += [
            "",
            f"## {name}",
            "",
            f"`{s['path']}`, written by rule `{s['written_by']}`; one row per {s['one_row_per']}.",
        ]
        if "extends" in s:
            lines.append(f"All columns of `{s['extends']}`, then:")
            own = specs()[s["extends"]]["columns"]
            cols = {k: v for k, v in s["columns"].items() if k not in own}
        else:
            cols = s["columns"]
        lines += ["", "| column | kind | missing allowed | meaning |", "|---|---|---|---|"]
        for col, c in cols.items():
            lines.append(
                f"| `{col}` | {c['kind']} | {'yes' if c.get('nullable') else 'no'} | {c['description']} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m mydirection.tables [path]
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOC_PATH
    target.write_text(render_doc())
    print(f"wrote {target}")
