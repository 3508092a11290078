"""The results registry: every reported number with its display form and its provenance.

Each rule that reports numbers writes ``results/numbers/<rule>.json`` through the rule
harness (:mod:`mydirection.runner`). :func:`build_registry` merges those files into one
document, ``results/registry.json``::

    {"threshold": 5, "config_hash": ...,
     "rules":   {RULE: {"stage", "script", "code": {path: blob}, "config": {...},
                        "inputs": {path: {"sha256", "made_by"}}, "outputs": {path: sha256}}},
     "numbers": {KEY: {"value", "display", "kind", "label", "unit", "rule", "suppressed"}},
     "figures": {KEY: {"path", "caption", "sha256", "rule", "withheld"}}}

- Provenance is grouped by rule: a number points at its rule's entry, which lists the
  library stage function, the git blob of every module it ran, its settings and its inputs,
  each with the rule that made it (a link upstream).
- ``value`` is the full-precision value; ``display`` is how the report prints it
  (:func:`mydirection.reporting.format.format_display`).
- Disclosure control (:func:`mydirection.reporting.disclosure.protect`) runs on all numbers
  at once with every stage's additive relations; a suppressed number keeps no value; a
  figure computed from a suppressed number is withheld.
- Every number has a plain-English label: the rule's own, else one from
  :mod:`mydirection.reporting.number_labels`; ``unlabelled`` lists the numbers whose label
  had to be read from their key (the rule should label them).
- A number's key is ``<rule>.<name>``: its prefix is the rule that reported it (a key under
  another rule's name is an error). The registry adds its own entries: one
  ``config.<setting>`` per setting of the analysis plan, and ``registry.*`` (the suppression
  threshold and :func:`mydirection.reporting.summary.derive_summary`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from mydirection.reporting import disclosure
from mydirection.reporting.format import format_config_value, format_display
from mydirection.reporting.number_labels import NUMBER_LABELS, UNITS, number_label, readable_text
from mydirection.reporting.numbers import Number
from mydirection.reporting.summary import derive_summary


class RegistryError(ValueError):
    """The numbers files cannot be merged (duplicate key, unknown derived_from key, ...)."""


def flatten_config(config: Mapping, prefix: str = "") -> dict:
    """Dotted keys for every leaf setting (lists are leaves)."""
    out = {}
    for k in sorted(config):
        v = config[k]
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten_config(v, key + "."))
        elif not (isinstance(v, Mapping) and not v):
            out[key] = v
    return out


def schema_descriptions(schema: Mapping, prefix: str = "") -> dict[str, str]:
    """Dotted setting key -> description, from the JSON schema of the config."""
    out = {}
    for k, sub in (schema.get("properties") or {}).items():
        key = f"{prefix}{k}"
        if "description" in sub:
            out[key] = " ".join(str(sub["description"]).split())
        if sub.get("properties"):
            out.update(schema_descriptions(sub, key + "."))
    return out


def config_hash(config: Mapping) -> str:
    """SHA-256 of the config as canonical JSON (sorted keys)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def load_numbers(paths: Iterable) -> list[dict]:
    """Parse numbers files; raises :class:`RegistryError` naming a malformed file."""
    docs = []
    for p in paths:
        try:
            doc = json.loads(Path(p).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise RegistryError(
                f"{p}: not a readable numbers file ({err}); rerun its rule"
            ) from err
        for field in ("rule", "script", "numbers"):
            if field not in doc:
                raise RegistryError(f"{p}: field {field!r} missing; rerun its rule")
        docs.append(doc)
    return docs


def _pattern(output: str) -> re.Pattern:
    """A Snakemake output pattern (``results/x/batch_{batch}.parquet``) as a regex."""
    parts = re.split(r"\{[^{}]*\}", output)
    return re.compile("[^/]+".join(re.escape(p) for p in parts) + r"(/.*)?")


def producer_of(path: str, producers: Mapping[str, Iterable[str]] | None) -> str | None:
    """The rule whose output pattern matches ``path`` (the first by rule name), or None."""
    for rule in sorted(producers or {}):
        if any(_pattern(o).fullmatch(path) for o in producers[rule]):
            return rule
    return None


def _rules(docs: list[dict], producers: Mapping | None = None) -> dict[str, dict]:
    made_by = {path: d["rule"] for d in docs for path in d.get("outputs", {})}
    rules = {}
    for d in sorted(docs, key=lambda d: d["rule"]):
        inputs = {}
        for path, sha in sorted(d.get("inputs", {}).items()):
            made = made_by.get(path) or producer_of(path, producers)
            inputs[path] = {"sha256": sha, "made_by": made}
        rules[d["rule"]] = {
            "stage": d.get("stage"),
            "script": d["script"],
            "code": d.get("code", {}),
            "config": d.get("config", {}),
            "inputs": inputs,
            "outputs": d.get("outputs", {}),
        }
    return rules


def build_registry(
    numbers_docs: Iterable[dict],
    *,
    threshold: int,
    alpha: float,
    config: Mapping | None = None,
    schema: Mapping | None = None,
    own: dict | None = None,
    producers: Mapping[str, Iterable[str]] | None = None,
) -> dict:
    """Merge the rules' numbers documents into the registry (see the module docstring).

    ``own`` is the registry rule's own provenance (``{"script", "code", "inputs", "config"}``,
    the config keys of its settings objects).
    ``producers`` maps each workflow rule to its output patterns, so that an input made by a
    rule that reports no numbers (a batch rule) still names the rule that made it.
    Raises :class:`RegistryError` on a key reported by two rules or an unknown
    ``derived_from`` key.
    """
    docs = sorted(numbers_docs, key=lambda d: d["rule"])
    numbers: dict[str, dict] = {}
    figures: dict[str, dict] = {}
    owner: dict[str, str] = {}
    relations: list = []
    used_by: dict[str, set] = {}
    for doc in docs:
        rule = doc["rule"]
        for ck in doc.get("config", {}):
            used_by.setdefault(ck, set()).add(rule)
        for key in [*doc.get("numbers", {}), *doc.get("figures", {})]:
            if key in owner:
                raise RegistryError(
                    f"key {key!r} is reported by two rules: {owner[key]} and {rule}; "
                    "each number must come from one rule -- rename one of them"
                )
            owner[key] = rule
        for key, entry in doc.get("numbers", {}).items():
            if key.split(".", 1)[0] != rule:
                raise RegistryError(
                    f"rule {rule} reports {key!r}: a number's key starts with the name of the "
                    f"rule that reports it; rename it {rule}.{key.split('.', 1)[-1]}"
                )
            numbers[key] = {**entry, "rule": rule}
        for key, fig in doc.get("figures", {}).items():
            path = fig["path"]
            if not Path(path).is_file():
                raise RegistryError(f"rule {rule}, figure {key}: file {path} does not exist")
            figures[key] = {**fig, "rule": rule, "sha256": _sha(path)}
        relations += [(r[0], tuple(r[1]), *r[2:]) for r in doc.get("relations", [])]

    added: dict[str, dict] = {
        "registry.suppression_threshold": Number(
            threshold, "count", "Suppression threshold (people)", unit="people", decimals=0
        ).as_dict()
    }
    added.update(derive_summary(numbers, alpha))
    descriptions = schema_descriptions(schema or {})
    for ck, cv in flatten_config(config or {}).items():
        entry = Number(format_config_value(cv), "text", ck).as_dict()
        entry.update(
            setting=ck,
            config_value=cv,
            description=descriptions.get(ck, ""),
            used_by=sorted(used_by.get(ck, ())),
        )
        added[f"config.{ck}"] = entry
    for key, entry in added.items():
        if key in owner:
            raise RegistryError(
                f"key {key!r} is reserved for the registry but rule {owner[key]} reports it"
            )
        numbers[key] = {**entry, "rule": "registry"}

    unlabelled = []
    for key, e in numbers.items():
        if not key.startswith("config."):
            if not (e.get("label") or "").strip() and key not in NUMBER_LABELS:
                unlabelled.append(key)  # labelled from its key: the rule should label it
            e["label"] = readable_text(number_label(key, e.get("label")))
            if e.get("unit") in UNITS:
                e["unit"] = UNITS[e["unit"]]
            if e.get("kind") == "text" and isinstance(e.get("value"), str):
                e["value"] = readable_text(e["value"])
        for d in e.get("derived_from", ()):
            if d not in numbers:
                raise RegistryError(
                    f"number {key!r} (rule {e['rule']}) is derived_from {d!r}, which no rule "
                    "reports; report that count too or fix the key"
                )
    first, hidden = disclosure.protect(numbers, relations, threshold)
    for key, e in numbers.items():
        if key in hidden:
            e.update(value=None, suppressed=True)
            e["display"] = f"<{threshold}" if key in first else disclosure.SUPPRESSED
        else:
            e["suppressed"] = False
            e["display"] = format_display(
                e.get("value"), e["kind"], e.get("decimals"), signed=e.get("signed", True)
            )
    for f in figures.values():
        f["withheld"] = any(d in hidden for d in f.get("derived_from", ()))

    rules = _rules(docs, producers)
    rules["registry"] = {
        "stage": "mydirection.reporting.registry.build_registry",
        "script": (own or {}).get("script", "scripts/registry.py"),
        "code": (own or {}).get("code", {}),
        "config": dict(sorted((own or {}).get("config", {}).items())),
        "inputs": {
            p: {"sha256": h, "made_by": None}
            for p, h in sorted((own or {}).get("inputs", {}).items())
        },
        "outputs": {},
    }
    return {
        "threshold": threshold,
        "config_hash": config_hash(config or {}),
        "rules": rules,
        "numbers": dict(sorted(numbers.items())),
        "figures": dict(sorted(figures.items())),
        "relations": [[r[0], list(r[1]), *r[2:]] for r in relations],
        "unlabelled": sorted(unlabelled),
    }


def _sha(path) -> str:
    from mydirection.reporting.provenance import sha256_file

    return sha256_file(path)


def dumps(registry: dict) -> str:
    """The registry as stable JSON text (sorted keys, no NaN)."""
    return (
        json.dumps(registry, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"
    )


__all__ = [
    "RegistryError",
    "build_registry",
    "config_hash",
    "dumps",
    "flatten_config",
    "load_numbers",
    "schema_descriptions",
]
