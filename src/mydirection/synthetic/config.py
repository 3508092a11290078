"""Generator settings: schema defaults, merging, validation, loading.

Every setting is documented, with its default, in ``schemas/synthetic.schema.yaml``
(package data; also ``workflow/schemas/synthetic.schema.yaml``). :func:`resolve_config`
lays a partial config over the defaults and validates it; errors are ``ValueError``
messages starting ``synthetic config`` that name the setting.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import yaml

from mydirection.contract import codes

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "synthetic.schema.yaml"


#: Kinds of planted mess (``mess.json`` has every kind for every extract, zeros included).
MESS_KINDS = (
    "duplicate_rows",
    "mixed_date_formats",
    "code_whitespace_case",
    "impossible_dates",
    "disposal_before_offence",
    "contacts_after_order_end",
    "orphan_enrolments",
)


#: Kinds of planted treated attrition (``treated_attrition`` settings; counts in truth.json).
ATTRITION_KINDS = ("order_before_window", "rosh_high", "under_18", "incomplete_followup")

#: The extracts each data-level quirk belongs to.
QUIRK_EXTRACT = {
    "impossible_dates": "supervision",
    "disposal_before_offence": "convictions",
    "contacts_after_order_end": "contacts",
    "orphan_enrolments": "enrolments",
}


@cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _defaults(schema: dict) -> object:
    if schema.get("type") == "object" and "properties" in schema:
        out = copy.deepcopy(schema.get("default", {}))
        for key, sub in schema["properties"].items():
            if "default" in sub or "properties" in sub:
                value = _defaults(sub)
                if isinstance(value, dict) and isinstance(out.get(key), dict):
                    value = {**value, **out[key]}
                out[key] = value
        return out
    return copy.deepcopy(schema.get("default"))


def merge_config(base: dict, override: dict) -> dict:
    """``override`` laid over ``base`` (nested settings merged key by key).

    ``offices``, ``ethnicity`` and each ``mess`` kind are replaced whole, not merged: they
    are lists of shares / counts where a partial override would make no sense.
    """
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if (
            isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and key not in ("offices", "ethnicity")
            and key not in MESS_KINDS
        ):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_config() -> dict:
    """Every generator setting at its default (from ``workflow/schemas/synthetic.schema.yaml``)."""
    return _defaults(_schema())


@cache
def _validator():
    """The schema's validator, built (and the schema checked) once per process."""
    import jsonschema

    schema = _schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def resolve_config(cfg: dict | None) -> dict:
    """Fill defaults into a (partial) generator config and validate it; ValueError if invalid."""
    from jsonschema.exceptions import best_match

    full = merge_config(default_config(), cfg or {})
    err = best_match(_validator().iter_errors(full))  # as jsonschema.validate reports
    if err is not None:
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ValueError(f"synthetic config, setting {where}: {err.message}")
    unknown = [o for o in full["pilot_offices"] if o not in full["offices"]]
    if unknown:
        raise ValueError(
            f"synthetic config, setting pilot_offices: {', '.join(unknown)} not among offices; "
            "list only offices defined under `offices`"
        )
    bad = [k for k in full["ethnicity"] if k not in codes("people", "ethnicity")]
    if bad:
        raise ValueError(
            f"synthetic config, setting ethnicity: {', '.join(bad)} are not ethnicity codes "
            f"({', '.join(codes('people', 'ethnicity'))})"
        )
    if sum(full["treated_attrition"].values()) >= full["n_treated"]:
        raise ValueError(
            "synthetic config, setting treated_attrition: the counts must add up to fewer "
            f"than n_treated ({full['n_treated']}); lower them or raise n_treated"
        )
    if sum(full["ineligible"].values()) >= 0.9:
        raise ValueError("synthetic config, setting ineligible: shares must add up to < 0.9")
    return full


def load_config(path) -> dict:
    """Read a generator config file (YAML), fill defaults and validate it."""
    return resolve_config(yaml.safe_load(Path(path).read_text()) or {})


def mess_amount(cfg: dict, kind: str, extract: str) -> int:
    """Requested count of one kind of mess in one extract (0 where the kind does not apply)."""
    if kind in QUIRK_EXTRACT and QUIRK_EXTRACT[kind] != extract:
        return 0
    value = cfg["mess"][kind]
    if isinstance(value, dict):
        return int(value.get(extract, 0))
    return int(value)
