"""The raw-extract contract: which files, which columns, which codes.

The contract lives in ``src/mydirection/schemas/extracts/<name>.schema.yaml`` (package
data, also reached as ``workflow/schemas/extracts/``; one file per extract, machine-readable) and is described for people in ``docs/data-contract.md``.
"""

from __future__ import annotations

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
    return yaml.safe_load((SCHEMA_DIR / f"{name}.schema.yaml").read_text())


def required_columns(name: str) -> list[str]:
    return list(extract_schema(name)["columns"])


def codes(name: str, column: str) -> list[str]:
    """Allowed codes of a ``code`` column."""
    return list(extract_schema(name)["columns"][column]["codes"])
