"""The results registry: hashing, display formats, disclosure control, merging."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mydirection.reporting.disclosure import (
    SUPPRESSED,
    protect,
    secondary_suppression,
    suppress_table,
)
from mydirection.reporting.format import format_display
from mydirection.reporting.numbers import Number
from mydirection.reporting.provenance import git_blob_hash, sha256_file
from mydirection.reporting.registry import RegistryError, build_registry, dumps
from mydirection.reporting.summary import derive_summary


def number(value, kind, unit="", *, derived_from=(), people=None, label="a number", **kw):
    """A registry entry as a stage reports it (counts of people unless told otherwise)."""
    if people is None:
        people = kind == "count"
    return Number(
        value, kind, label, unit=unit, people=people, derived_from=tuple(derived_from), **kw
    ).as_dict()


def apply_disclosure_control(entries, threshold, relations=()):
    """The registry's disclosure step on plain entries (display and suppressed flags)."""
    first, hidden = protect(entries, relations, threshold)
    out = {}
    for k, e in entries.items():
        e = dict(e)
        if k in hidden:
            e.update(value=None, suppressed=True)
            e["display"] = f"<{threshold}" if k in first else SUPPRESSED
        else:
            e.update(suppressed=False, display=format_display(e["value"], e["kind"]))
        out[k] = e
    return out


# ----------------------------------------------------------------------------- hashing
def test_git_blob_hash_matches_git_hash_object(tmp_path):
    for i, content in enumerate([b"", b"print('hi')\n", bytes(range(256)) * 50]):
        f = tmp_path / f"f{i}.py"
        f.write_bytes(content)
        expected = subprocess.run(
            ["git", "hash-object", str(f)], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert git_blob_hash(f) == expected


def test_sha256_streams_large_files(tmp_path):
    f = tmp_path / "big.csv"
    data = b"crn,offence\n" + b"x" * (3 * (1 << 20) + 17)
    f.write_bytes(data)
    assert sha256_file(f, chunk_size=1000) == hashlib.sha256(data).hexdigest()
    assert sha256_file(f) == hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- display
@pytest.mark.parametrize(
    ("value", "kind", "decimals", "expected"),
    [
        (1234567, "count", None, "1,234,567"),
        (0, "count", None, "0"),
        (3, "count", None, "<5"),
        (5, "count", None, "5"),
        (0.34166, "proportion", None, "34.2%"),
        (0.5, "proportion", 0, "50%"),
        (-0.0385, "pp", None, "\u22123.9 pp"),
        (0.0151, "pp", None, "+1.5 pp"),
        (-0.0001, "pp", None, "0.0 pp"),
        (0.00042, "p_value", None, "<0.001"),
        (0.04249, "p_value", None, "0.042"),
        (0.9995, "p_value", None, ">0.999"),
        (0.912, "ratio", None, "0.91"),
        (-0.1234, "mean", None, "\u22120.12"),
        (1.349, "gamma", None, "1.35"),
        (63.25, "index", None, "63.2"),
        (182.6, "days", None, "183"),
        (12.34, "seconds", None, "12.3 s"),
        (1234.5, "estimate", 1, "1,234.5"),
        (True, "text", None, "yes"),
        ("smaller than", "text", None, "smaller than"),
        (None, "proportion", None, "n/a"),
    ],
)
def test_format_display(value, kind, decimals, expected):
    if expected == "<5":  # suppression is disclosure control's job, not formatting's
        expected = f"{value:,}"
    assert format_display(value, kind, decimals=decimals) == expected


def test_a_size_is_printed_without_a_sign():
    assert format_display(-0.14, "pp", signed=False) == "14.0 pp"
    assert format_display(-1.83, "estimate", signed=False) == "1.83"
    assert format_display(0.14, "pp") == "+14.0 pp"


def test_count_threshold_is_configurable():
    e = {"a": number(7, "count"), "b": number(10, "count")}
    out = apply_disclosure_control(e, 10)
    assert out["a"]["display"] == "<10" and out["b"]["display"] == "10"


def test_only_counts_of_people_are_suppressed():
    e = {
        "x.n_specifications": number(3, "count", "specifications", people=False),
        "x.n_people": number(3, "count"),
    }
    out = apply_disclosure_control(e, 5)
    assert out["x.n_specifications"]["display"] == "3"
    assert out["x.n_people"]["display"] == "<5"


# ----------------------------------------------------------------------------- disclosure
def _entries():
    return {
        "c.small": {**number(2, "count"), "rule": "a"},
        "c.zero": {**number(0, "count"), "rule": "a"},
        "c.big": {**number(40, "count"), "rule": "a"},
        "c.rate": {**number(2 / 42, "proportion", derived_from=["c.small", "c.big"]), "rule": "b"},
        "c.diff": {**number(0.01, "pp", derived_from=["c.rate"]), "rule": "b"},
        "c.ok": {**number(0.5, "proportion", derived_from=["c.big", "c.zero"]), "rule": "b"},
    }


def test_primary_and_derived_suppression():
    out = apply_disclosure_control(_entries(), threshold=5)
    assert out["c.small"] == {**out["c.small"], "value": None, "display": "<5", "suppressed": True}
    assert out["c.zero"]["display"] == "0" and not out["c.zero"]["suppressed"]
    assert out["c.rate"]["suppressed"] and out["c.rate"]["value"] is None
    assert out["c.rate"]["display"] == SUPPRESSED
    assert out["c.diff"]["suppressed"]  # transitively, through c.rate
    assert not out["c.ok"]["suppressed"] and out["c.ok"]["display"] == "50.0%"
    assert "2" not in json.dumps({k: out[k]["value"] for k in ("c.small", "c.rate")})


def test_subgroup_levels_get_secondary_suppression():
    e = {
        "subgroups.sex.female.n_treated": {**number(3, "count"), "rule": "s"},
        "subgroups.sex.male.n_treated": {**number(40, "count"), "rule": "s"},
        "subgroups.sex.other.n_treated": {**number(9, "count"), "rule": "s"},
        "subgroups.sex.female.n_comparison": {**number(30, "count"), "rule": "s"},
        "subgroups.sex.male.n_comparison": {**number(90, "count"), "rule": "s"},
        "subgroups.sex.male.rate_difference": {
            **number(0.1, "pp", derived_from=["subgroups.sex.male.n_treated"]),
            "rule": "s",
        },
        "reoffending.n_treated": {**number(52, "count"), "rule": "e"},
    }
    levels = [f"subgroups.sex.{lvl}.n_treated" for lvl in ("female", "male", "other")]
    out = apply_disclosure_control(e, 5, [("reoffending.n_treated", levels)])
    assert out["subgroups.sex.female.n_treated"]["display"] == "<5"
    # 52 - 40 - 9 would give the female count away: the smallest other level goes too
    assert out["subgroups.sex.other.n_treated"]["suppressed"]
    assert out["subgroups.sex.other.n_treated"]["display"] == SUPPRESSED
    assert out["subgroups.sex.other.n_treated"]["value"] is None
    assert not out["subgroups.sex.male.n_treated"]["suppressed"]
    assert not out["subgroups.sex.male.rate_difference"]["suppressed"]
    assert not any(out[k]["suppressed"] for k in e if k.endswith("n_comparison"))


def test_unknown_derived_from_key_is_an_error(tmp_path):
    doc = _doc("x", {"x.rate": number(0.1, "proportion", derived_from=["x.n"])})
    with pytest.raises(RegistryError, match=r"'x.rate' \(rule x\).*'x.n'"):
        build_registry([doc], threshold=5, alpha=0.05)


# ----------------------------------------------------------------------------- tables
def _with_totals(interior: np.ndarray) -> np.ndarray:
    full = np.zeros((interior.shape[0] + 1, interior.shape[1] + 1), dtype=int)
    full[:-1, :-1] = interior
    full[:-1, -1] = interior.sum(axis=1)
    full[-1, :-1] = interior.sum(axis=0)
    full[-1, -1] = interior.sum()
    return full


def recoverable_cells(full: np.ndarray, mask: np.ndarray) -> list[tuple[int, int]]:
    """Brute force: suppressed cells that no other non-negative table with the same
    published cells can change. Any two integer tables with equal margins differ by a sum of
    +-1 cycles, so it is enough to try every perturbation of the suppressed cells in
    {-1, 0, 1} that keeps all rows and columns adding up and no cell negative."""
    cells = [tuple(c) for c in np.argwhere(mask)]
    movable = set()
    for delta in itertools.product((-1, 0, 1), repeat=len(cells)):
        if not any(delta):
            continue
        d = np.zeros_like(full)
        for (i, j), x in zip(cells, delta, strict=True):
            d[i, j] = x
        if (full + d).min() < 0:
            continue
        if (d[:-1, :-1].sum(axis=1) != d[:-1, -1]).any() or (
            d[:-1, :-1].sum(axis=0) != d[-1, :-1]
        ).any():
            continue
        if d[:-1, -1].sum() != d[-1, -1] or d[-1, :-1].sum() != d[-1, -1]:
            continue
        movable.update(c for c, x in zip(cells, delta, strict=True) if x)
    return [c for c in cells if c not in movable]


def test_single_small_cell_gets_a_complement():
    interior = np.array([[2, 10, 12], [20, 30, 15]])
    full = _with_totals(interior)
    primary = (full > 0) & (full < 5)
    assert recoverable_cells(full, primary) == [(0, 0)]  # alone, it is recoverable
    mask = secondary_suppression(full, primary)
    assert mask[0, 0] and mask.sum() >= 4
    # only the small (primary) cell needs protecting; a complement may be recoverable
    assert (0, 0) not in recoverable_cells(full, mask)
    # the complements are the smallest cells of the affected row and column
    assert mask[0, 1] and mask[1, 0]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 3).flatmap(
        lambda r: st.integers(2, 3).flatmap(
            lambda c: st.lists(
                st.lists(st.integers(0, 12), min_size=c, max_size=c), min_size=r, max_size=r
            )
        )
    )
)
def test_secondary_suppression_leaves_nothing_recoverable(rows):
    full = _with_totals(np.array(rows))
    primary = (full > 0) & (full < 5)
    mask = secondary_suppression(full, primary)
    assert (mask | ~primary).all()  # keeps every primary suppression
    if mask.sum() <= 10:  # brute force stays fast
        exposed = [c for c in recoverable_cells(full, mask) if primary[c]]
        assert exposed == []


def _protect_solving_every_range(entries, relations, threshold):
    """The reference for :func:`protect`: each round solves both linear programs of every
    hidden count (the intruder's full answer, ``_ranges``), then hides the same next count."""
    from mydirection.reporting import disclosure as d

    relations = [(r[0], tuple(r[1]), r[2] if len(r) > 2 else "part") for r in relations]
    first = d.primary(entries, threshold)
    hidden = d.derived(entries, first)
    values = {k: float(e["value"]) for k, e in entries.items() if e["kind"] == "count"}
    while True:
        published = {k: v for k, v in values.items() if k not in hidden}
        bounds = {k: (1, threshold - 1) if k in first else (0, None) for k in hidden}
        ranges = d._ranges(published, [r[:2] for r in relations], hidden & set(values), bounds)
        determined = {k for k, (lo, hi) in ranges.items() if hi - lo < 0.5}
        choice = None
        for key in sorted(determined & first):
            choice = d._next_to_hide(key, relations, published, determined.__contains__)
            if choice is not None:
                break
        if choice is None:
            return first, hidden
        hidden = d.derived(entries, hidden | {choice})


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=2, max_size=7),
    st.lists(st.integers(0, 12), min_size=4, max_size=4),
    st.sampled_from(["total", "part"]),
)
def test_protect_asks_fewer_questions_but_answers_as_if_it_solved_every_range(chain, cells, prefer):
    """An attrition-like chain (each step = the next + those excluded) and a 2 x 2 table
    with totals: protect, which decides exposure one key at a time, hides exactly what
    solving every range each round hides."""
    entries, relations = {}, []
    remaining = sum(chain) + 3
    entries["step0"] = number(remaining, "count")
    for i, lost in enumerate(chain, start=1):
        remaining -= lost
        entries[f"step{i}"] = number(remaining, "count")
        entries[f"lost{i}"] = number(lost, "count")
        relations.append((f"step{i - 1}", (f"step{i}", f"lost{i}"), prefer))
    a, b, c, e = cells
    for k, v in {"a": a, "b": b, "c": c, "e": e, "ab": a + b, "ce": c + e,
                 "ac": a + c, "be": b + e, "all": a + b + c + e}.items():  # fmt: skip
        entries[k] = number(v, "count")
    relations += [("ab", ("a", "b")), ("ce", ("c", "e")), ("ac", ("a", "c")),
                  ("be", ("b", "e")), ("all", ("ab", "ce"))]  # fmt: skip
    entries["rate"] = number(0.5, "proportion", derived_from=["a"])
    assert protect(entries, relations, 5) == _protect_solving_every_range(entries, relations, 5)


def test_suppress_table_display():
    counts = pd.DataFrame(
        {"Hull": [2, 20], "East Riding": [10, 30]}, index=["treated", "comparator"]
    )
    display, mask = suppress_table(counts, threshold=5)
    assert list(display.columns) == ["Hull", "East Riding", "Total"]
    assert list(display.index) == ["treated", "comparator", "Total"]
    assert display.loc["treated", "Hull"] == "<5"
    assert display.loc["Total", "Total"] == "62"
    assert mask.to_numpy().sum() >= 4
    shown = display.to_numpy()[~mask.to_numpy()]
    assert all(s not in ("<5", SUPPRESSED) for s in shown)
    assert set(display.to_numpy()[mask.to_numpy()]) <= {"<5", SUPPRESSED}


# ----------------------------------------------------------------------------- summary
def test_summary_for_a_significant_reduction():
    e = {
        "reoffending.rate_treated": number(0.30, "proportion"),
        "reoffending.rate_comparison": number(0.40, "proportion"),
        "reoffending.rate_difference": number(-0.10, "pp"),
        "reoffending.rate_difference_ci_low": number(-0.15, "pp"),
        "reoffending.rate_difference_ci_high": number(-0.05, "pp"),
        "reoffending.rate_difference_p": number(0.0004, "p_value"),
        "power.mde_rate_pp": number(0.06, "pp"),
    }
    s = derive_summary(e, 0.05)
    assert s["registry.typical_treated"]["value"] == pytest.approx(30)
    assert s["registry.typical_comparison"]["value"] == pytest.approx(40)
    assert (
        s["registry.typical_direction"]["value"] == "fewer participants than comparators re-offend"
    )
    assert s["registry.verdict"]["value"] == "a statistically significant reduction"
    assert s["registry.power_caveat"]["value"] == "at least as large as"
    assert "reoffending.rate_treated" in s["registry.typical_treated"]["derived_from"]


def test_summary_not_significant_when_interval_spans_zero():
    e = {
        "reoffending.rate_difference_ci_low": number(-0.05, "pp"),
        "reoffending.rate_difference_ci_high": number(0.01, "pp"),
        "reoffending.rate_difference_p": number(0.2, "p_value"),
    }
    assert derive_summary(e, 0.05)["registry.verdict"]["value"] == "not statistically significant"


# ----------------------------------------------------------------------------- merging
def _doc(rule, numbers, figures=None, inputs=None, outputs=None):
    """A numbers file as the rule harness writes it."""
    return {
        "rule": rule,
        "stage": f"mydirection.{rule}.stage",
        "script": f"scripts/{rule}.py",
        "code": {f"src/mydirection/{rule}.py": "b" * 40},
        "inputs": inputs or {},
        "outputs": outputs or {},
        "config": {"seed": 1},
        "numbers": numbers,
        "figures": figures or {},
        "relations": [],
    }


def test_build_registry_groups_provenance_by_rule(tmp_path):
    (tmp_path / "results" / "figures").mkdir(parents=True)
    (tmp_path / "results" / "figures" / "f.png").write_bytes(b"\x89PNG fake")
    a = _doc(
        "cohort",
        {"cohort.n_treated": number(412, "count", "people")},
        figures={"figures.f": {"path": "results/figures/f.png", "caption": "F"}},
        inputs={"data/in.csv": "1" * 64},
        outputs={"results/cohort/cohort.parquet": "2" * 64},
    )
    b = _doc(
        "reoffending",
        {"reoffending.rate_treated": number(0.3, "proportion")},
        inputs={"results/cohort/cohort.parquet": "2" * 64},
    )
    with contextlib.chdir(tmp_path):
        reg = build_registry(
            [b, a], threshold=5, alpha=0.05, config={"seed": 1, "report": {"x": [1, 2]}}
        )
    n = reg["numbers"]["cohort.n_treated"]
    assert n["value"] == 412 and n["display"] == "412" and n["unit"] == "people"
    assert n["rule"] == "cohort" and n["suppressed"] is False
    rule = reg["rules"]["cohort"]
    assert rule["stage"] == "mydirection.cohort.stage" and rule["config"] == {"seed": 1}
    assert rule["inputs"] == {"data/in.csv": {"sha256": "1" * 64, "made_by": None}}
    assert (
        reg["rules"]["reoffending"]["inputs"]["results/cohort/cohort.parquet"]["made_by"]
        == "cohort"
    )
    f = reg["figures"]["figures.f"]
    assert f["sha256"] == hashlib.sha256(b"\x89PNG fake").hexdigest() and f["rule"] == "cohort"
    assert reg["numbers"]["config.seed"]["used_by"] == ["cohort", "reoffending"]
    assert reg["numbers"]["config.report.x"]["display"] == "1, 2"
    assert reg["numbers"]["registry.suppression_threshold"]["display"] == "5"
    text = dumps(reg)
    assert text == dumps(json.loads(text))  # stable, sorted


def test_duplicate_key_names_both_rules():
    a = _doc("cohort", {"cohort.n": number(10, "count")})
    b = _doc("matching", {"cohort.n": number(11, "count")})
    with pytest.raises(RegistryError, match="cohort and matching"):
        build_registry([a, b], threshold=5, alpha=0.05)


def test_a_key_starts_with_the_name_of_the_rule_that_reports_it():
    """Registry keys follow their rule: ``matching.*`` from rule matching, never a key under
    another stage's name (the report's sections and provenance links rely on it)."""
    ok = _doc("matching", {"matching.n_treated": number(10, "count")})
    assert "matching.n_treated" in build_registry([ok], threshold=5, alpha=0.05)["numbers"]
    stray = _doc("placebo", {"sensitivity.placebo_sd": number(0.1, "pp")})
    with pytest.raises(RegistryError, match="rule placebo reports 'sensitivity.placebo_sd'.*"
                       "rename it placebo.placebo_sd"):  # fmt: skip
        build_registry([stray], threshold=5, alpha=0.05)


def test_missing_figure_file_is_named(tmp_path):
    a = _doc("cohort", {}, figures={"figures.g": {"path": "results/gone.png", "caption": "G"}})
    with contextlib.chdir(tmp_path), pytest.raises(RegistryError, match="results/gone.png"):
        build_registry([a], threshold=5, alpha=0.05)


def test_a_figure_from_a_suppressed_count_is_withheld(tmp_path):
    (tmp_path / "f.png").write_bytes(b"\x89PNG")
    a = _doc(
        "survival",
        {"survival.n": number(3, "count")},
        figures={"figures.km": {"path": "f.png", "caption": "KM", "derived_from": ["survival.n"]}},
    )
    with contextlib.chdir(tmp_path):
        reg = build_registry([a], threshold=5, alpha=0.05)
    assert reg["figures"]["figures.km"]["withheld"] is True


def test_summary_entries_exist_but_are_na_when_a_source_is_not_finite():
    e = {
        "reoffending.rate_treated": number(float("nan"), "proportion"),
        "reoffending.rate_comparison": number(0.3, "proportion"),
        "reoffending.rate_difference_ci_low": number(None, "pp"),
        "reoffending.rate_difference_ci_high": number(0.01, "pp"),
    }
    s = derive_summary(e, 0.05)
    assert s["registry.typical_treated"]["value"] is None
    assert s["registry.typical_direction"]["value"] is None
    assert s["registry.verdict"]["value"] is None
    assert format_display(s["registry.verdict"]["value"], "text") == "n/a"
    assert derive_summary({}, 0.05) == {}


def test_the_run_ends_with_the_headline_balance_and_report_path(tmp_path):
    """The onsuccess summary prints the registry's displays (suppression included) and only
    when this run rebuilt the report."""
    import os

    from mydirection.reporting.run_summary import run_summary

    def entry(display):
        return {"display": display, "value": None}

    registry, report = tmp_path / "registry.json", tmp_path / "evaluation.html"
    numbers = {
        "reoffending.rate_treated": entry("21.0%"),
        "reoffending.rate_comparison": entry("<5"),
        "reoffending.rate_difference": entry("[c]"),
        "reoffending.rate_difference_ci_low": entry("[c]"),
        "reoffending.rate_difference_ci_high": entry("[c]"),
        "registry.verdict": entry("not statistically significant"),
        "matching.balance_ok": entry("balanced"),
        "matching.max_abs_smd_after": entry("0.04"),
    }
    registry.write_text(json.dumps({"numbers": numbers}))
    assert run_summary(registry, report) == []  # no report: the run stopped earlier
    report.write_text("<html></html>")
    lines = run_summary(registry, report)
    assert "21.0%" in lines[0] and "<5" in lines[0] and "[c]" in lines[0]
    assert "balanced" in lines[1] and "0.04" in lines[1]
    assert lines[-1] == f"Report: {report}"
    os.utime(report, (1, 1))  # a report older than the numbers was not made by this run
    assert run_summary(registry, report) == []
