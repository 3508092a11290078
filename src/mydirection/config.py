"""Checking the analysis plan (config) with one clear message per problem."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

from mydirection.errors import ConfigError

__all__ = ["ConfigError", "check_config"]


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


@cache
def _validator(schema_path: str):
    """The schema's validator, built once per process (the schema parsed once, with the C
    YAML loader, shared with :func:`mydirection.settings.with_defaults`)."""
    import jsonschema

    from mydirection.settings import _load_schema

    return jsonschema.Draft202012Validator(_load_schema(schema_path))


def check_config(config: dict, schema_path: str | Path) -> None:
    """Raise ConfigError naming the setting, what is wrong and where it is documented.

    Called after snakemake.utils.validate has filled in the defaults; the schema's own
    message for the first problem is kept, without the schema dump.
    """
    errors = sorted(_validator(str(schema_path)).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        from jsonschema.exceptions import best_match

        err = best_match(errors)
        raise ConfigError(
            f"config setting {_where(err.path)}: {err.message}. Fix it in config/config.yaml "
            f"(or the --config/--configfile given); every setting is documented in {schema_path}."
        )
    for where, value in _dates(config):
        if value is None:
            continue
        try:
            date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(
                f"config setting {where}: {value!r} is not a real calendar date (YYYY-MM-DD, "
                f"month 01-12, a day that exists in that month); correct it in "
                f"config/config.yaml (or the --config/--configfile given)."
            ) from None
    for section, start, end in _date_ranges(config):
        if start and end and str(end) < str(start):
            raise ConfigError(
                f"config setting {section}: the window ends ({end}) before it starts ({start}); "
                "swap or correct the dates in config/config.yaml."
            )


def _date_ranges(config: dict):
    cohort = config.get("cohort", {})
    yield (
        "cohort.recruitment_start/recruitment_end",
        cohort.get("recruitment_start"),
        cohort.get("recruitment_end"),
    )


def _dates(config: dict):
    """Every date setting (YYYY-MM-DD strings in the schema), with its dotted name."""
    cohort = config.get("cohort", {}) or {}
    yield "extract_end_date", config.get("extract_end_date")
    yield "cohort.recruitment_start", cohort.get("recruitment_start")
    yield "cohort.recruitment_end", cohort.get("recruitment_end")
