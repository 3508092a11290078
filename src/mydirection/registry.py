"""The results registry: every reported number with its display form and its provenance.

Each rule that reports numbers writes ``results/numbers/<rule>.json`` (see
:mod:`mydirection.numbers`). :func:`build_registry` merges those files into one document,
``results/registry.json``::

    {"threshold": 5,
     "numbers": {KEY: {"value", "display", "unit", "kind", "rule",
                       "script": {"path", "blob"}, "inputs": {path: sha256},
                       "config": {...}, "suppressed", ...}},
     "figures": {KEY: {"path", "caption", "sha256", "rule", "script", "inputs", "config"}}}

- ``value`` is the full-precision value; ``display`` is how the report prints it
  (:func:`format_display`).
- ``script.blob`` is the git blob hash of the entry script's content (what
  ``git hash-object`` prints), so a number can be traced to the exact script version.
- Disclosure control (:func:`apply_disclosure_control`): counts with
  ``0 < n < threshold`` are shown as ``"<5"`` and their value is removed; every number whose
  ``derived_from`` includes a suppressed key is suppressed too (``"[c]"``). Tables with
  totals get secondary suppression from :func:`suppress_table`.
- The registry adds its own entries: ``report.suppression_threshold``, one ``config.<key>``
  entry per setting of the analysis plan, and ``summary.*`` entries computed from the
  re-offending and power numbers (:func:`derive_summary`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mydirection.numbers import number

#: Shown in place of a number derived from a suppressed count, or a secondary suppression.
SUPPRESSED = "[c]"
MINUS = "\u2212"

_DEFAULT_DECIMALS = {
    "proportion": 1,
    "pp": 1,
    "mean": 2,
    "ratio": 2,
    "estimate": 2,
    "days": 0,
    "index": 1,
    "gamma": 2,
    "seconds": 1,
}


class RegistryError(ValueError):
    """The numbers files cannot be merged (duplicate key, unknown derived_from key, ...)."""


# --------------------------------------------------------------------------- hashing
def git_blob_hash(path) -> str:
    """The git blob hash of a file's content: sha1 of ``b"blob <len>\\0" + content``."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks (large extracts are streamed, never loaded whole).

    A directory is hashed as the sorted list of its files' relative paths and hashes.
    """
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            h.update(f"{f.relative_to(p).as_posix()}\0{sha256_file(f)}\n".encode())
        return h.hexdigest()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- display
def _signed(text: str) -> str:
    return MINUS + text[1:] if text.startswith("-") else text


def _fixed(value: float, decimals: int, *, sign: bool = False, thousands: bool = True) -> str:
    spec = f"{'+' if sign else ''}{',' if thousands else ''}.{decimals}f"
    text = format(value, spec)
    if float(text.replace(",", "").lstrip("+")) == 0:  # no "-0.0" / "+0.0"
        text = format(0.0, f".{decimals}f")
    return _signed(text)


def format_display(
    value, kind: str, unit: str = "", decimals: int | None = None, threshold: int = 5
) -> str:
    """How a number is printed in the report.

    counts ``1,234`` (``<5`` when ``0 < n < threshold``); proportions ``12.3%``;
    percentage-point differences ``+1.2 pp`` (the value is a difference of proportions);
    p-values ``0.042`` or ``<0.001``; days ``123``; seconds ``1.5 s``; other kinds plain
    decimals; booleans ``yes``/``no``; a missing value ``n/a``. Negative numbers use the
    minus sign U+2212.
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "text" or isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(format_display(v, kind, unit, decimals, threshold) for v in value)
    d = _DEFAULT_DECIMALS.get(kind, 2) if decimals is None else decimals
    if kind == "count":
        n = int(round(value))
        if 0 < n < threshold:
            return f"<{threshold}"
        return _signed(f"{n:,}")
    if kind == "proportion":
        return _fixed(100 * value, d) + "%"
    if kind == "pp":
        return _fixed(100 * value, d, sign=True) + " pp"
    if kind == "p_value":
        if value < 0.001:
            return "<0.001"
        if value > 0.999:
            return ">0.999"
        return f"{value:.3f}"
    if kind == "seconds":
        return _fixed(value, d) + " s"
    return _fixed(value, d)


def format_config_value(value) -> str:
    """A config value as shown in the methods appendix."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _signed(repr(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(format_config_value(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {format_config_value(v)}" for k, v in sorted(value.items()))
    return _signed(str(value))


# --------------------------------------------------------------------------- disclosure
#: Count keys that partition a total (the levels of one subgroup variable): one
#: suppressed level could be recovered as total minus the others, so a second is suppressed.
ADDITIVE_GROUPS = (r"^subgroups\.(?P<group>[^.]+)\.[^.]+\.(?P<measure>n_\w+)$",)


def additive_secondary(
    entries: dict[str, dict], primary: set[str], patterns=ADDITIVE_GROUPS
) -> set[str]:
    """Secondary suppression for count keys that are parts of one total.

    Keys matching a pattern are grouped by its ``group`` and ``measure`` parts; in a group
    with exactly one suppressed count, the smallest non-zero other count (then the first by
    key) is suppressed too, so the suppressed one cannot be recovered from the total.
    """
    import re

    groups: dict[tuple, list[str]] = {}
    for pattern in patterns:
        rx = re.compile(pattern)
        for k in sorted(entries):
            m = rx.match(k)
            if m and entries[k].get("kind") == "count" and _is_number(entries[k].get("value")):
                groups.setdefault((pattern, m["group"], m["measure"]), []).append(k)
    out = set()
    for keys in groups.values():
        hidden = [k for k in keys if k in primary]
        if len(hidden) == 1 and len(keys) > 1:
            others = sorted(
                (k for k in keys if k not in primary),
                key=lambda k: (entries[k]["value"] == 0, entries[k]["value"], k),
            )
            out.add(others[0])
    return out


def apply_disclosure_control(
    entries: dict[str, dict], threshold: int, additive_groups=ADDITIVE_GROUPS
) -> dict[str, dict]:
    """Suppress small counts and everything derived from them.

    Primary: a ``count`` with ``0 < value < threshold`` (zero may be shown). Secondary: in
    additive groups (:data:`ADDITIVE_GROUPS`, see :func:`additive_secondary`) a second
    count, so the first cannot be recovered from the total. Then, until nothing changes,
    any entry whose ``derived_from`` names a suppressed key. A suppressed entry keeps no
    value (``value: None``), displays ``<threshold`` (primary counts) or ``[c]``, and has
    ``suppressed: True``. Returns a new dict; raises :class:`RegistryError` when a
    ``derived_from`` key is not in ``entries``.
    """
    for key, e in entries.items():
        for d in e.get("derived_from", ()):
            if d not in entries:
                raise RegistryError(
                    f"number {key!r} (rule {e.get('rule', '?')}) is derived_from {d!r}, which no "
                    "rule reports; report that count too or fix the key"
                )
    primary = {
        k
        for k, e in entries.items()
        if e.get("kind") == "count"
        and _is_number(e.get("value"))
        and 0 < int(round(e["value"])) < threshold
    }
    suppressed = primary | additive_secondary(entries, primary, additive_groups)
    changed = True
    while changed:
        changed = False
        for k in sorted(entries):
            if k not in suppressed and any(
                d in suppressed for d in entries[k].get("derived_from", ())
            ):
                suppressed.add(k)
                changed = True
    out = {}
    for k, e in entries.items():
        e = dict(e)
        if k in suppressed:
            e["value"] = None
            e["display"] = f"<{threshold}" if k in primary else SUPPRESSED
            e["suppressed"] = True
        else:
            e["display"] = format_display(
                e.get("value"),
                e.get("kind", "estimate"),
                e.get("unit", ""),
                e.get("decimals"),
                threshold,
            )
            e["suppressed"] = False
        out[k] = e
    return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _lines(shape: tuple[int, int]) -> list[list[tuple[int, int]]]:
    """The additive lines of a table whose last row and column are totals."""
    r, c = shape
    return [[(i, j) for j in range(c)] for i in range(r)] + [
        [(i, j) for i in range(r)] for j in range(c)
    ]


def _determined_cells(values: np.ndarray, mask: np.ndarray) -> list[tuple[int, int]]:
    """Suppressed cells an intruder can recover exactly by linear programming.

    Unknowns are the suppressed cells (non-negative); each row and column says interior
    cells sum to the total. A cell is determined when its minimum equals its maximum.
    """
    from scipy.optimize import linprog

    cells = [tuple(x) for x in np.argwhere(mask)]
    if not cells:
        return []
    idx = {cell: n for n, cell in enumerate(cells)}
    r, c = values.shape
    a_eq, b_eq = [], []
    for line in _lines(values.shape):
        row = np.zeros(len(cells))
        rhs = 0.0
        for i, j in line:
            # interior cells +1, the line's total -1
            is_total = (j == c - 1) if line[0][0] == line[-1][0] else (i == r - 1)
            coef = -1.0 if is_total else 1.0
            if (i, j) in idx:
                row[idx[(i, j)]] += coef
            else:
                rhs -= coef * values[i, j]
        a_eq.append(row)
        b_eq.append(rhs)
    a_eq, b_eq = np.array(a_eq), np.array(b_eq)
    determined = []
    for cell, n in idx.items():
        obj = np.zeros(len(cells))
        obj[n] = 1.0
        lo = linprog(obj, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        hi = linprog(-obj, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        if lo.status == 0 and hi.status == 0 and (-hi.fun - lo.fun) < 0.5:
            determined.append(cell)
    return determined


def secondary_suppression(values: np.ndarray, primary: np.ndarray) -> np.ndarray:
    """Cells to suppress so no primary-suppressed cell can be recovered from the totals.

    ``values`` is a table whose last row and last column are totals. Starting from the
    ``primary`` mask: while a row or column has exactly one suppressed cell, also suppress
    its smallest non-zero unsuppressed cell (interior before totals, then the first by
    position); then audit by linear programming (:func:`_determined_cells`) and, while any
    suppressed cell is still exactly recoverable, suppress the smallest remaining cell in
    one of its lines. Returns the full mask (primary | secondary).
    """
    values = np.asarray(values, dtype=float)
    mask = np.asarray(primary, dtype=bool).copy()
    r, c = values.shape
    lines = _lines(values.shape)

    def rank(cell):
        i, j = cell
        return (values[i, j] == 0, i == r - 1 or j == c - 1, values[i, j], i, j)

    def protect(line) -> bool:
        free = sorted((cell for cell in line if not mask[cell]), key=rank)
        if not free:
            return False
        mask[free[0]] = True
        return True

    while True:
        changed = True
        while changed:
            changed = False
            for line in lines:
                if sum(mask[cell] for cell in line) == 1 and protect(line):
                    changed = True
        bad = _determined_cells(values, mask)
        if not bad:
            return mask
        cell = bad[0]
        if not any(protect(line) for line in lines if cell in line):
            return mask  # everything in reach is suppressed already


def suppress_table(counts: pd.DataFrame, threshold: int = 5, total_label: str = "Total"):
    """A count table with totals, ready to publish, with primary and secondary suppression.

    Adds a total column and a total row to ``counts`` (people, non-negative integers),
    suppresses cells with ``0 < n < threshold`` (shown ``<threshold``), then suppresses
    further cells (shown ``[c]``) so that no suppressed cell can be worked out from the
    totals (:func:`secondary_suppression`). Returns ``(display, mask)``: a DataFrame of
    strings and a boolean DataFrame of the suppressed cells, both including the totals.
    """
    full = counts.copy()
    full[total_label] = full.sum(axis=1)
    full.loc[total_label] = full.sum(axis=0)
    values = full.to_numpy(dtype=float)
    primary = (values > 0) & (values < threshold)
    mask = secondary_suppression(values, primary)
    display = pd.DataFrame(
        [
            [
                (f"<{threshold}" if primary[i, j] else SUPPRESSED)
                if mask[i, j]
                else format_display(int(values[i, j]), "count", threshold=threshold)
                for j in range(values.shape[1])
            ]
            for i in range(values.shape[0])
        ],
        index=full.index,
        columns=full.columns,
    )
    return display, pd.DataFrame(mask, index=full.index, columns=full.columns)


# --------------------------------------------------------------------------- summary
def derive_summary(entries: dict[str, dict], alpha: float = 0.05) -> dict[str, dict]:
    """The summary's computed numbers and sentences (``summary.*``), from registry values.

    Needs ``reoffending.rate_treated``/``rate_comparison`` (the "for 100 typical people"
    reading), ``reoffending.rate_difference_ci_low/_ci_high/_p`` (the verdict), and
    ``power.mde_rate_pp`` (the power caveat); entries are made when those keys are present
    (value ``None``, shown ``n/a``, when a source value is missing or not finite).
    Every entry lists the keys it was computed from, so suppression propagates.
    """
    v = {k: e.get("value") for k, e in entries.items()}
    out: dict[str, dict] = {}
    rt, rc = "reoffending.rate_treated", "reoffending.rate_comparison"
    ok = _is_number(v.get(rt)) and _is_number(v.get(rc))
    if ok or (rt in entries and rc in entries):
        out["summary.typical_n"] = number(
            100, "estimate", "people", decimals=0, label="Typical people in the reading"
        )
        out["summary.typical_treated"] = number(
            100 * v[rt] if ok else None,
            "estimate",
            "people per 100",
            decimals=0,
            derived_from=[rt],
            label="Of 100 typical participants, re-offended",
        )
        out["summary.typical_comparison"] = number(
            100 * v[rc] if ok else None,
            "estimate",
            "people per 100",
            decimals=0,
            derived_from=[rc],
            label="Of 100 similar non-participants, re-offended",
        )
        diff = round(100 * v[rt]) - round(100 * v[rc]) if ok else None
        word = (
            None
            if diff is None
            else (
                "fewer participants than comparators re-offend"
                if diff < 0
                else "more participants than comparators re-offend"
                if diff > 0
                else "as many participants as comparators re-offend"
            )
        )
        out["summary.typical_direction"] = number(
            word, "text", derived_from=[rt, rc], label="Direction of the difference"
        )
    lo, hi, p = (
        "reoffending.rate_difference_ci_low",
        "reoffending.rate_difference_ci_high",
        "reoffending.rate_difference_p",
    )
    if not all(_is_number(v.get(k)) for k in (lo, hi)) and lo in entries and hi in entries:
        out["summary.verdict"] = number(
            None,
            "text",
            derived_from=[lo, hi],
            label="Statistical verdict on the re-offending rate",
        )
    elif lo in entries and hi in entries:
        significant = v[lo] > 0 or v[hi] < 0
        if _is_number(v.get(p)):
            significant = significant and v[p] < alpha
        if not significant:
            verdict = "not statistically significant"
        elif v[hi] < 0:
            verdict = "a statistically significant reduction"
        else:
            verdict = "a statistically significant increase"
        out["summary.verdict"] = number(
            verdict,
            "text",
            derived_from=[k for k in (lo, hi, p) if k in entries],
            label="Statistical verdict on the re-offending rate",
        )
    d, mde = "reoffending.rate_difference", "power.mde_rate_pp"
    if d in entries and mde in entries and not (_is_number(v.get(d)) and _is_number(v.get(mde))):
        out["summary.power_caveat"] = number(
            None,
            "text",
            derived_from=[d, mde],
            label="Observed difference against the detectable difference",
        )
    elif d in entries and mde in entries:
        mde_prop = v[mde] / 100 if entries[mde].get("kind") != "pp" else v[mde]
        within = abs(v[d]) < mde_prop
        out["summary.power_caveat"] = number(
            "smaller than" if within else "at least as large as",
            "text",
            derived_from=[d, mde],
            label="Observed difference against the detectable difference",
        )
    return out


# --------------------------------------------------------------------------- registry
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
    """Dotted setting key → description, from the JSON schema of the config."""
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


def build_registry(
    numbers_docs: Iterable[dict],
    *,
    threshold: int = 5,
    config: Mapping | None = None,
    schema: Mapping | None = None,
    own: dict | None = None,
    alpha: float = 0.05,
) -> dict:
    """Merge the rules' numbers documents into the registry (see module docstring).

    ``numbers_docs`` are the parsed ``results/numbers/<rule>.json`` files; paths in them
    are relative to the working directory. ``own`` is the registry rule's own provenance
    (``{"rule", "script", "inputs"}``) used for the entries it adds. Raises
    :class:`RegistryError` on a key reported by two rules or a missing file.
    """
    hashes: dict[str, str] = {}

    def sha(path: str, what: str) -> str:
        if path not in hashes:
            if not Path(path).exists():
                raise RegistryError(f"{what}: file {path} does not exist")
            hashes[path] = sha256_file(path)
        return hashes[path]

    numbers: dict[str, dict] = {}
    figures: dict[str, dict] = {}
    owner: dict[str, str] = {}
    used_by: dict[str, set] = {}
    for doc in sorted(numbers_docs, key=lambda d: d["rule"]):
        rule = doc["rule"]
        script = doc["script"]
        prov = {
            "rule": rule,
            "script": {
                "path": script,
                "blob": git_blob_hash(script) if Path(script).is_file() else None,
            },
            "inputs": {p: sha(p, f"rule {rule}, input") for p in sorted(doc.get("inputs", []))},
            "config": doc.get("config", {}),
        }
        for ck in prov["config"]:
            used_by.setdefault(ck, set()).add(rule)
        for key, entry in doc.get("numbers", {}).items():
            if key in owner:
                raise RegistryError(
                    f"key {key!r} is reported by two rules: {owner[key]} and {rule}; "
                    "each number must come from one rule — rename one of them"
                )
            owner[key] = rule
            numbers[key] = {**entry, **prov}
        for key, fig in doc.get("figures", {}).items():
            if key in owner:
                raise RegistryError(
                    f"key {key!r} is reported by two rules: {owner[key]} and {rule}; rename one"
                )
            owner[key] = rule
            figures[key] = {
                "path": fig["path"],
                "caption": fig.get("caption", ""),
                "sha256": sha(fig["path"], f"rule {rule}, figure {key}"),
                **prov,
            }

    own = own or {
        "rule": "registry",
        "script": {"path": "scripts/registry.py", "blob": None},
        "inputs": {},
    }
    own_prov = {**own, "config": {"report.suppression_threshold": threshold}}
    added = {
        "report.suppression_threshold": number(
            threshold, "estimate", "people", decimals=0, label="Suppression threshold"
        )
    }
    for key, entry in derive_summary(numbers, alpha).items():
        added[key] = entry
    descriptions = schema_descriptions(schema or {})
    for ck, cv in flatten_config(config or {}).items():
        entry = number(format_config_value(cv), "text", label=ck)
        entry["setting"] = ck
        entry["config_value"] = cv
        entry["description"] = descriptions.get(ck, "")
        entry["used_by"] = sorted(used_by.get(ck, ()))
        added[f"config.{ck}"] = entry
    for key, entry in added.items():
        if key in owner:
            raise RegistryError(
                f"key {key!r} is reserved for the registry but rule {owner[key]} reports it"
            )
        numbers[key] = {
            **entry,
            **own_prov,
            "config": {key[len("config.") :]: entry["config_value"]}
            if key.startswith("config.")
            else own_prov["config"],
        }

    numbers = apply_disclosure_control(numbers, threshold)
    return {
        "threshold": threshold,
        "config_hash": config_hash(config or {}),
        "numbers": dict(sorted(numbers.items())),
        "figures": dict(sorted(figures.items())),
    }


def dumps(registry: dict) -> str:
    """The registry as stable JSON text (sorted keys, no NaN)."""
    return (
        json.dumps(registry, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"
    )


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
                raise RegistryError(
                    f"{p}: field {field!r} missing; write it with mydirection.numbers.write_numbers"
                )
        docs.append(doc)
    return docs


__all__ = [
    "ADDITIVE_GROUPS",
    "SUPPRESSED",
    "RegistryError",
    "additive_secondary",
    "apply_disclosure_control",
    "build_registry",
    "config_hash",
    "derive_summary",
    "dumps",
    "flatten_config",
    "format_config_value",
    "format_display",
    "git_blob_hash",
    "load_numbers",
    "schema_descriptions",
    "secondary_suppression",
    "sha256_file",
    "suppress_table",
]
