"""Typed settings: one translation of the analysis plan, defaults only from the schema."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mydirection import settings as S
from mydirection.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CLASSES = [
    S.TestLevel,
    S.OutcomeSettings,
    S.MatchSpec,
    S.AnalysisSpec,
    S.CohortSettings,
    S.ReportSettings,
]


def _schema_leaves(node, prefix=""):
    out = set()
    for k, sub in (node.get("properties") or {}).items():
        key = f"{prefix}{k}"
        out.add(key)
        out |= _schema_leaves(sub, key + ".")
    return out


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_field_reads_a_documented_config_key(cls):
    documented = _schema_leaves(S.schema())
    for name, key in cls.keys().items():
        assert key in documented, f"{cls.__name__}.{name} reads {key}, which the schema lacks"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_config_keys_are_exactly_what_was_read(cls):
    config = S.load_config(ROOT / "config" / "config.yaml")
    obj = cls.from_config(config)
    keys = obj.config_keys()
    assert set(keys) == set(cls.keys().values())
    for key, value in keys.items():
        raw = S.lookup(config, key)
        assert value == raw or list(value) == list(raw), key


def test_no_settings_class_carries_a_default_of_its_own():
    """Defaults come only from the schema: a field read from the config has no default."""
    for cls in CLASSES:
        for f in dataclasses.fields(cls):
            if "key" in f.metadata:
                assert f.default is dataclasses.MISSING, f"{cls.__name__}.{f.name}"


def test_a_missing_key_is_an_error_not_a_silent_default():
    with pytest.raises(ConfigError, match="matching.covariates: missing"):
        S.MatchSpec.from_config({"matching": {}, "seed": 1})


def test_schema_defaults_fill_an_empty_config():
    config = S.with_defaults({})
    assert S.TestLevel.from_config(config).alpha == 0.05
    assert S.CohortSettings.from_config(config).index_date == "enrolment"


def test_text_overrides_from_the_command_line_are_coerced():
    """`--config 'simulation={replicates: 10}'` gives the text '10' (issue 17)."""
    config = S.with_defaults({"simulation": {"replicates": "10"}, "matching": {"caliper": "null"}})
    assert config["simulation"]["replicates"] == 10
    assert config["matching"]["caliper"] is None


def test_a_specification_is_a_replace_of_the_headline_spec():
    spec = S.AnalysisSpec.from_config(S.load_config(ROOT / "config" / "config.yaml"))
    other = dataclasses.replace(spec, caliper=0.1, followup_days=182)
    assert other.match == dataclasses.replace(spec.match, caliper=0.1)
    assert other.followup_days == 182
    assert S.MatchSpec.from_dict(spec.match.as_dict()) == spec.match


def test_the_threshold_may_not_go_below_the_published_rule():
    with pytest.raises(ConfigError, match="below the published rule"):
        S.ReportSettings.from_config(S.with_defaults({"report": {"suppression_threshold": 3}}))


# --------------------------------------------------------------------------- the one test level
TEST_LEVEL_NAMES = {"alpha", "level", "power", "confidence"}


def _typed_test_levels(source: str) -> list[str]:
    """Where ``source`` types a test level into code: a numeric default of a parameter named
    alpha/level/power/confidence, an assignment of a number to such a name, a normal or t
    quantile of a literal probability, or the 1.96 of a 95 % interval."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            pos = args.posonlyargs + args.args
            pairs = list(zip(pos[len(pos) - len(args.defaults) :], args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d]
            for arg, default in pairs:
                literal = isinstance(default, ast.Constant) and type(default.value) in (int, float)
                if arg.arg in TEST_LEVEL_NAMES and literal:
                    found.append(f"line {node.lineno}: {node.name}({arg.arg}={default.value})")
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            for t in targets:
                if (
                    isinstance(t, ast.Name)
                    and t.id in TEST_LEVEL_NAMES
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, float)
                ):
                    found.append(f"line {node.lineno}: {t.id} = {value.value}")
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in {"ppf", "isf", "ndtri"} and any(
                isinstance(a, ast.Constant) and isinstance(a.value, float) for a in node.args
            ):
                found.append(f"line {node.lineno}: {name} of a literal probability")
        elif (
            isinstance(node, ast.Constant)
            and type(node.value) is float
            and round(node.value, 2) == 1.96
        ):
            found.append(f"line {node.lineno}: {node.value}")
    return found


def test_the_guard_finds_a_typed_test_level():
    src = (
        "def f(x, alpha=0.05):\n    return x\n"
        "def g(*, power: float = 0.8):\n    level = 0.95\n    return stats.norm.ppf(0.975)\n"
        "z = 1.959964\n"
        "def ok(alpha):\n    return ndtri(1 - alpha / 2)\n"
    )
    assert len(_typed_test_levels(src)) == 5


def test_no_test_level_is_typed_into_the_library():
    """Every alpha, confidence level and power comes from the analysis plan (TestLevel)."""
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    found = {
        str(p.relative_to(ROOT)): hits
        for p in files
        if (hits := _typed_test_levels(p.read_text(encoding="utf-8")))
    }
    assert not found


def _schema_keys() -> set[str]:
    keys = set()

    def walk(node, prefix=""):
        for name, sub in (node.get("properties") or {}).items():
            keys.add(prefix + name)
            if isinstance(sub, dict) and sub.get("type") == "object":
                walk(sub, f"{prefix}{name}.")

    walk(S.schema())
    return {k for k in keys if "." in k}


def _typed_config_keys(source: str, keys: set[str]) -> list[str]:
    """Dotted config keys written as strings outside a settings field (``setting(...)``) or
    the key of a reported number (``numbers.add/count(key, ...)``, ``{key: Number(...)}``)."""
    import ast

    tree = ast.parse(source)
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name == "setting":
                allowed |= {id(n) for a in node.args for n in ast.walk(a)}
            elif name in {"add", "count"}:
                allowed.add(id(node.args[0]))
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                calls = [c for c in ast.walk(v) if isinstance(c, ast.Call)]
                if any(getattr(c.func, "id", "") == "Number" for c in calls):
                    allowed.add(id(k))
    return [
        f"line {node.lineno}: {node.value}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in keys and id(node) not in allowed
    ]


def test_the_guard_finds_a_hand_written_config_key():
    keys = {"analysis.alpha", "report.suppression_threshold"}
    src = (
        'a = setting("analysis.alpha", float)\n'
        'n.add("analysis.alpha", 0.05, "proportion", "x")\n'
        'own = {"config": {"report.suppression_threshold": 5}}\n'
    )
    assert _typed_config_keys(src, keys) == ["line 3: report.suppression_threshold"]


def test_no_config_key_is_written_by_hand_outside_the_settings():
    """Provenance and rule params come from settings objects (``config_keys()``), never from
    hand-kept lists of keys (they drift). The config checker names the date settings."""
    keys = _schema_keys()
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    found = {
        str(p.relative_to(ROOT)): hits
        for p in files
        if p.name != "config.py" and (hits := _typed_config_keys(p.read_text(), keys))
    }
    assert not found
