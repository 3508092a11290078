"""The raw-extract contract: which files, which columns, which codes.

The contract lives in ``src/mydirection/schemas/extracts/<name>.schema.yaml`` (package
data, also reached as ``workflow/schemas/extracts/``; one file per extract,
machine-readable) and is described for people in ``docs/data-contract.md``.

Two facts about the cleaned tables live here too, for every later stage (light: no pandas
at import):

- :func:`age_in_years`: the only age fact kept after the cleaning boundary is
  ``people.birth_year``; every age is derived from it by this one function;
- :func:`source_lines`: every cleaned table has ``source_row``, the line of the raw file a
  row comes from (header = line 1); this turns rows into "people.csv lines 41, 57".
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import yaml

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "extracts"

#: The ten extracts, in the order they are documented and processed.
EXTRACTS = (
    "people",
    "supervision",
    "assessments",
    "convictions",
    "contacts",
    "enrolments",
    "plans",
    "enabling_fund",
    "activities",
    "staff",
)


@cache
def extract_schema(name: str) -> dict:
    """The contract of one extract: ``file``, ``one_row_per``, ``key`` and ``columns``."""
    if name not in EXTRACTS:
        raise KeyError(f"unknown extract {name!r}; known: {', '.join(EXTRACTS)}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when available
    return yaml.load((SCHEMA_DIR / f"{name}.schema.yaml").read_text(), Loader=loader)


def codes(name: str, column: str) -> list[str]:
    """Allowed codes of a ``code`` column."""
    return list(extract_schema(name)["columns"][column]["codes"])


#: The birthday assumed by :func:`age_in_years` (month, day): the middle of the year.
BIRTHDAY = (7, 1)


def age_in_years(dates, birth_year):
    """Whole-year age at ``dates`` from the birth year alone (the only age fact stored).

    The birthday is taken as 1 July of the birth year: the age is ``year - birth_year``,
    less one before 1 July. It differs from the true age by at most one year (either way),
    and it carries nothing about the date of birth beyond its year. Missing -> NaN.
    """
    import numpy as np
    import pandas as pd

    d = pd.DatetimeIndex(np.asarray(dates, dtype="datetime64[ns]"))
    year = d.year.to_numpy(dtype=float)
    before = (d.month.to_numpy() < BIRTHDAY[0]).astype(float)
    age = year - np.asarray(birth_year, dtype=float) - before
    return np.where(np.isnat(d.to_numpy()), np.nan, age)


def source_lines(rows, name: str, limit: int = 5) -> str:
    """Rows of a cleaned table named against the raw file: ``"people.csv lines 41, 57"``.

    ``rows`` is a cleaned table (or its ``source_row`` column, or any line numbers). At
    most ``limit`` lines are listed, smallest first, then "and N more".
    """
    if hasattr(rows, "columns"):
        rows = rows["source_row"]
    values = sorted({int(r) for r in _values(rows)})
    file = extract_schema(name)["file"]
    if not values:
        return f"{file} (no rows)"
    shown = ", ".join(str(v) for v in values[:limit])
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    word = "line" if len(values) == 1 else "lines"
    return f"{file} {word} {shown}{more}"


def _values(rows) -> Iterable:
    if hasattr(rows, "dropna"):
        rows = rows.dropna()
    return rows
