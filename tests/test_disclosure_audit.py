"""The registry of a small pilot, audited as an intruder would (tests/disclosure_audit.py):
no suppressed count of people can be worked out from what the report publishes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from disclosure_audit import audit, true_values
from helpers import copy_project

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
#: A small pilot: 30 people enrolled (about 20 analysed; the generator plants ten lost at
#: eligibility steps), so many counts are small. 15 enrolled leave about 5 in the cohort,
#: where the propensity model separates (the design then stops, as it should).
SMALL_PILOT = {"n_treated": 30, "n_comparator_pool": 5000}


def _registry(numbers: dict, relations=(), threshold: int = 5) -> dict:
    entries = {}
    for key, (value, kind, people, suppressed, derived_from) in numbers.items():
        entries[key] = {
            "value": None if suppressed else value, "kind": kind, "people": people,
            "suppressed": suppressed, "derived_from": derived_from, "rule": key.split(".")[0],
        }  # fmt: skip
    return {"numbers": entries, "relations": [list(r) for r in relations], "threshold": threshold}


def test_the_audit_finds_each_kind_of_leak():
    truth = {
        "a.total": {"value": 12},
        "a.small": {"value": 3},
        "a.big": {"value": 9},
        "a.other": {"value": 2},
        "a.rate": {"value": 0.25},
    }
    count = "count"
    leaky = _registry(
        {
            "a.total": (12, count, True, False, []),
            "a.small": (3, count, True, True, []),
            "a.big": (9, count, True, False, []),
            "a.other": (2, count, True, True, []),
            "a.rate": (0.25, "proportion", False, False, ["a.small"]),
        },
        relations=[("a.total", ["a.small", "a.big"])],
    )
    leaky["numbers"]["a.other"]["value"] = 2  # the registry itself holds a suppressed value
    found = {(how, key) for how, key, _ in audit(leaky, truth)}
    assert found == {("value", "a.other"), ("derived", "a.small"), ("relation", "a.small")}
    safe = _registry(
        {
            "a.total": (12, count, True, True, []),
            "a.small": (3, count, True, True, []),
            "a.big": (9, count, True, False, []),
            "a.rate": (0.25, "proportion", False, True, ["a.small"]),
        },
        relations=[("a.total", ["a.small", "a.big"])],
    )
    assert audit(safe, truth) == []
    # an undeclared identity across stages (participants - scored = not scored)
    truth = {"fidelity.n_not_scored": {"value": 1}}
    cross = _registry(
        {
            "cohort.n_treated": (15, count, True, False, []),
            "fidelity.n_scored": (14, count, True, False, []),
            "fidelity.n_not_scored": (1, count, True, True, []),
        }
    )
    assert [f[:2] for f in audit(cross, truth)] == [("arithmetic", "fidelity.n_not_scored")]


@pytest.mark.slow
def test_a_small_pilot_publishes_nothing_recoverable(tmp_path):
    work = copy_project(tmp_path / "project")
    synthetic = work / "config/synthetic.yaml"
    text = synthetic.read_text()
    for key, value in SMALL_PILOT.items():
        text, n = re.subn(rf"(?m)^{key}: \d+$", f"{key}: {value}", text)
        assert n == 1, key
    synthetic.write_text(text)
    # as on real extracts by default: the simulation study (synthetic replicates, no
    # person of the pilot) is not in the report
    (work / "pilot.yaml").write_text("simulation:\n  in_report: false\n")
    out = subprocess.run(
        [SNAKEMAKE, "results/registry.json", "--cores", "2", "--configfile",
         "tests/e2e_config.yaml", "pilot.yaml"],
        cwd=work, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    registry = json.loads((work / "results/registry.json").read_text())
    truth = true_values(work / "results/numbers")
    n_suppressed = sum(e.get("suppressed", False) for e in registry["numbers"].values())
    assert n_suppressed >= 10  # a small pilot: the audit has something to attack
    assert audit(registry, truth) == []


def test_fidelity_counts_are_protected_across_stages():
    """One unscored participant: fidelity's own relations hide the number enrolled, but the
    cohort publishes it; the cross-stage relation makes the registry hide the complement."""
    from mydirection.reporting import disclosure
    from mydirection.reporting.numbers import Numbers

    n = Numbers()
    n.count("cohort.n_treated", 140, "participants")
    enrolled = n.count("fidelity.n_enrolled", 140, "scored for fidelity")
    scored = n.count("fidelity.n_scored", 139, "with an index")
    unscored = n.count("fidelity.n_not_scored", 1, "without an index")
    without = n.count("fidelity.n_treated_without_enrolment", 0, "no enrolment record")
    bands = [
        n.count(f"fidelity.n_{b}", v, b) for b, v in (("low", 24), ("moderate", 62), ("high", 53))
    ]
    n.relation(enrolled, [scored, unscored], prefer="total")
    n.relation(scored, bands)
    truth = {k: v.as_dict() for k, v in n.items()}

    def published(relations):
        entries = {k: dict(v, rule=k.split(".")[0]) for k, v in truth.items()}
        _, hidden = disclosure.protect(entries, relations, 5)
        numbers = {
            k: dict(e, suppressed=k in hidden, value=None if k in hidden else e["value"])
            for k, e in entries.items()
        }
        return {"numbers": numbers, "relations": [list(r) for r in relations], "threshold": 5}

    within = list(n.relations)
    assert [f[1] for f in audit(published(within), truth)] == ["fidelity.n_not_scored"]
    across = [*within, ("cohort.n_treated", (enrolled, without), "part")]
    assert audit(published(across), truth) == []
