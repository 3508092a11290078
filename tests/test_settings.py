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
    assert other.outcome.followup_days == 182
    assert S.MatchSpec.from_dict(spec.match.as_dict()) == spec.match


def test_the_threshold_may_not_go_below_the_published_rule():
    with pytest.raises(ConfigError, match="below the published rule"):
        S.ReportSettings.from_config(S.with_defaults({"report": {"suppression_threshold": 3}}))
