"""The analysis plan is checked with one clear message per problem."""

from pathlib import Path

import pytest
import yaml

from mydirection.config import ConfigError, check_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def default_config() -> dict:
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_shipped_config_is_valid():
    check_config(default_config(), SCHEMA)


def test_every_setting_is_documented():
    def walk(node, where):
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{where}{name} has no description"
            walk(prop, f"{where}{name}.")

    walk(yaml.safe_load(SCHEMA.read_text()), "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(unknown_key=1), "'unknown_key' was unexpected"),
        (lambda c: c.update(seed="x"), "seed"),
        (lambda c: c["report"].update(suppression_threshold=0), "report.suppression_threshold"),
        (
            lambda c: c["cohort"].update(
                recruitment_start="2018-12-31", recruitment_end="2018-01-01"
            ),
            "ends (2018-01-01) before it starts",
        ),
        # impossible dates are named as such, not as a window to swap
        (lambda c: c.update(extract_end_date="2020-02-30"), "'2020-02-30' is not a real calendar"),
        (
            lambda c: c["cohort"].update(recruitment_end="2018-13-01"),
            "cohort.recruitment_end: '2018-13-01' is not a real calendar date",
        ),
    ],
)
def test_bad_settings_are_named(change, message):
    config = default_config()
    change(config)
    with pytest.raises(ConfigError, match=r".*") as err:
        check_config(config, SCHEMA)
    assert message in str(err.value)
    assert "config/config.yaml" in str(err.value)
