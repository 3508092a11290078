"""Typed settings: the analysis plan (config) as one frozen dataclass per stage.

A settings object is built from the validated config by ``X.from_config(config)``, which
reads exactly the dotted config keys its fields declare (``setting("matching.caliper")``).
Defaults live only in the config schema (``schemas/config.schema.yaml``): a config is
completed with them by :func:`with_defaults` before any settings object is built, so a
missing key is a bug, not a silent default. ``obj.config_keys()`` returns the keys read
and their values: rule params and provenance are derived from it, never hand-written.

A specification of the specification curve is ``dataclasses.replace(headline_spec,
**choice)``: :class:`AnalysisSpec` is flat, so every choice is one of its fields.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from mydirection.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


# ----------------------------------------------------------------------------- the config
@cache
def _schema_text(path: str) -> str:
    return Path(path).read_text()


@cache
def _load_schema(path: str) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(_schema_text(path), Loader=loader)


def schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The config schema (parsed once per process, with the C YAML loader when available)."""
    return copy.deepcopy(_load_schema(str(path)))


def _coerce(value, sub: Mapping):
    """A scalar from ``--config`` given as text ('10', 'true') in the type the schema wants."""
    if not isinstance(value, str):
        return value
    types = sub.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    text = value.strip()
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            return float(text)
        except ValueError:
            pass
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "null" in types and text.lower() in ("null", "none", "~"):
        return None
    return value


def _fill(instance, sub: Mapping):
    """Fill defaults (and coerce text scalars) of one schema node, recursively."""
    if isinstance(instance, dict) and "properties" in sub:
        for key, prop in sub["properties"].items():
            if key not in instance and "default" in prop:
                instance[key] = copy.deepcopy(prop["default"])
            if key in instance:
                instance[key] = _fill(instance[key], prop)
        extra = sub.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key in instance:
                if key not in sub["properties"]:
                    instance[key] = _fill(instance[key], extra)
        return instance
    if isinstance(instance, dict) and isinstance(sub.get("additionalProperties"), Mapping):
        return {k: _fill(v, sub["additionalProperties"]) for k, v in instance.items()}
    if isinstance(instance, list) and isinstance(sub.get("items"), Mapping):
        return [_fill(v, sub["items"]) for v in instance]
    return _coerce(instance, sub)


def with_defaults(config: Mapping, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """A copy of ``config`` completed with the schema's defaults (the only defaults there
    are), text scalars from ``--config`` coerced to the schema's types."""
    return _fill(copy.deepcopy(dict(config)), _load_schema(str(schema_path)))


def load_config(path: str | Path = "config/config.yaml", overrides: Mapping | None = None) -> dict:
    """The analysis plan as the pipeline runs it: the YAML file, ``overrides`` merged over it
    (nested sections merged key by key), defaults filled and the result checked."""
    import yaml

    from mydirection.config import check_config

    config = yaml.safe_load(Path(path).read_text()) or {}
    config = merge(config, overrides or {})
    config = with_defaults(config)
    check_config(config, SCHEMA_PATH)
    return config


def merge(base: Mapping, override: Mapping) -> dict:
    """``override`` merged over ``base``, nested mappings key by key."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def lookup(config: Mapping, key: str):
    """The value of a dotted config key; a clear error when it is absent."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(
                f"config setting {key}: missing; the config was not completed with its "
                f"defaults (use mydirection.settings.load_config or with_defaults)"
            )
        node = node[part]
    return node


# ----------------------------------------------------------------------------- base class
def setting(key: str, convert=None):
    """A settings field read from the dotted config ``key`` (``convert`` applied)."""
    return field(metadata={"key": key, "convert": convert})


def _frozen(value):
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _plain(value):
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Base of every settings object (see the module docstring)."""

    @classmethod
    def keys(cls) -> dict[str, str]:
        """Field name -> dotted config key, for every field read from the config."""
        return {f.name: f.metadata["key"] for f in fields(cls) if "key" in f.metadata}

    @classmethod
    def from_config(cls, config: Mapping):
        values = {}
        for f in fields(cls):
            if "key" not in f.metadata:
                continue
            raw = lookup(config, f.metadata["key"])
            convert = f.metadata.get("convert")
            values[f.name] = convert(raw) if convert else _frozen(raw)
        obj = cls(**values)
        obj.check()
        return obj

    @classmethod
    def default(cls, **overrides):
        """The schema's defaults, with ``overrides`` by field name (tests and notebooks)."""
        return dataclasses.replace(cls.from_config(with_defaults({})), **overrides)

    def check(self) -> None:
        """Rules that span settings; raise ConfigError naming the settings and the fix."""

    def config_keys(self) -> dict[str, Any]:
        """Dotted config key -> value used (plain JSON types), for params and provenance."""
        return {key: _plain(getattr(self, name)) for name, key in sorted(type(self).keys().items())}

    def fingerprint(self) -> str:
        """A short stable text of the settings (for logs and file names)."""
        return json.dumps(self.config_keys(), sort_keys=True, separators=(",", ":"))


def params(*settings: Settings) -> dict[str, Any]:
    """Rule params from settings objects: the union of their config keys."""
    out: dict[str, Any] = {}
    for s in settings:
        out.update(s.config_keys())
    return dict(sorted(out.items()))


def iso_date(key):
    """A converter for setting ``key``: a real YYYY-MM-DD date, kept as text."""

    def convert(value):
        import datetime as dt

        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(
                f"config setting {key}: {value!r} is not a real date; use YYYY-MM-DD"
            ) from None
        return str(value)

    return convert


def _optional_float(value):
    return None if value is None else float(value)


# ----------------------------------------------------------------------------- the plan
@dataclass(frozen=True, kw_only=True)
class TestLevel(Settings):
    """The analysis plan's one test level and power: every alpha, confidence level and power
    in the pipeline comes from here."""

    alpha: float = setting("analysis.alpha", float)
    power: float = setting("analysis.power", float)

    @property
    def confidence(self) -> float:
        """Confidence level of every interval: 1 - alpha."""
        return 1.0 - self.alpha


@dataclass(frozen=True, kw_only=True)
class CleanSettings(Settings):
    """The clean stage (mydirection.clean): the extract's end and the key's variable."""

    extract_end_date: str = setting("extract_end_date", iso_date("extract_end_date"))
    key_env: str = setting("pseudonymisation.key_env", str)


@dataclass(frozen=True, kw_only=True)
class OutcomeSettings(Settings):
    """Proven re-offending windows (mydirection.outcomes)."""

    followup_days: int = setting("outcomes.followup_days", int)
    waiting_days: int = setting("outcomes.waiting_days", int)
    extract_end_date: str = setting("extract_end_date", iso_date("extract_end_date"))
    placebo_start_days: int = setting("outcomes.placebo_window_start_days", int)
    placebo_end_days: int = setting("outcomes.placebo_window_end_days", int)

    def check(self) -> None:
        if self.placebo_end_days > self.placebo_start_days:
            raise ConfigError(
                "config setting outcomes.placebo_window_end_days is after (larger than) "
                "outcomes.placebo_window_start_days; the window runs from start_days to "
                "end_days before the index date"
            )


@dataclass(frozen=True, kw_only=True)
class MatchSpec(Settings):
    """The outcome-blind design: propensity model, matching specification and the balance
    criterion (mydirection.matching). ``seed`` is the master seed (random order only)."""

    covariates: tuple[str, ...] = setting("matching.covariates", tuple)
    categorical: tuple[str, ...] = setting("matching.categorical", tuple)
    method: str = setting("matching.method")
    distance: str = setting("matching.distance")
    ratio: int = setting("matching.ratio", int)
    replace: bool = setting("matching.replace", bool)
    caliper: float | None = setting("matching.caliper", _optional_float)
    order: str = setting("matching.order")
    exact: tuple[str, ...] = setting("matching.exact", tuple)
    discard: str = setting("matching.discard")
    smd_threshold: float = setting("matching.smd_threshold", float)
    var_ratio_bounds: tuple[float, float] = setting(
        "matching.var_ratio_bounds", lambda v: (float(v[0]), float(v[1]))
    )
    seed: int = setting("seed", int)
    #: the pre-specified revision order (mydirection.pipeline.design); () once applied
    revisions: tuple[Mapping, ...] = setting(
        "matching.revisions", lambda v: tuple(dict(x) for x in v)
    )
    #: extra propensity-model terms (``"age^2"``, ``"age*ogrs3_2yr"``), from the revisions
    terms: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """The design as plain data (``results/matching/design.json``)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(MatchSpec)}

    @classmethod
    def from_dict(cls, data: Mapping) -> MatchSpec:
        """The inverse of :meth:`as_dict`."""
        values = {k: _frozen(v) for k, v in data.items()}
        values["var_ratio_bounds"] = tuple(float(b) for b in values["var_ratio_bounds"])
        values["revisions"] = tuple(dict(r) for r in values.get("revisions", ()))
        return cls(**values)

    def check(self) -> None:
        lo, hi = self.var_ratio_bounds
        if not lo < 1 < hi:
            raise ConfigError(
                f"config setting matching.var_ratio_bounds: [{lo}, {hi}] must contain 1 "
                "(lower below 1, upper above 1)"
            )
        missing = [c for c in self.categorical if c not in self.covariates]
        if missing:
            raise ConfigError(
                f"config setting matching.categorical: {missing[0]} is not in "
                "matching.covariates; list it there too or remove it"
            )

    def describe(self) -> str:
        """One line naming the design (for logs and tables)."""
        if self.method == "ipw":
            return "inverse-probability weighting (ATT odds weights)"
        caliper = "no caliper" if self.caliper is None else f"caliper {self.caliper:g} SD"
        rep = "with" if self.replace else "without"
        extra = f", extra terms {', '.join(self.terms)}" if self.terms else ""
        exact = f", exact on {', '.join(self.exact)}" if self.exact else ""
        return (
            f"{self.ratio}:1 nearest neighbour on {self.distance}, {caliper}, {rep} "
            f"replacement{exact}{extra}"
        )


@dataclass(frozen=True, kw_only=True)
class AnalysisSpec(MatchSpec):
    """One complete specification of the headline analysis: the design plus who is analysed
    and how the effect is estimated. Flat, so a specification of the curve is
    ``dataclasses.replace(headline_spec, **choice)``."""

    followup_days: int = setting("outcomes.followup_days", int)
    waiting_days: int = setting("outcomes.waiting_days", int)
    extract_end_date: str = setting("extract_end_date", iso_date("extract_end_date"))
    exclude_incomplete_followup: bool = setting("cohort.exclude_incomplete_followup", bool)
    effect_covariates: tuple[str, ...] = setting("effects.covariates", tuple)
    se_with_replacement: str = setting("effects.se_with_replacement")
    alpha: float = setting("analysis.alpha", float)

    @property
    def match(self) -> MatchSpec:
        """The outcome-blind part of the specification."""
        names = [f.name for f in fields(MatchSpec)]
        return MatchSpec(**{n: getattr(self, n) for n in names})

    def with_design(self, design: MatchSpec) -> AnalysisSpec:
        """This specification with the design of ``design`` (e.g. after the revisions)."""
        return dataclasses.replace(
            self, **{f.name: getattr(design, f.name) for f in fields(MatchSpec)}
        )


@dataclass(frozen=True, kw_only=True)
class SurvivalSettings(Settings):
    """Time to first proven re-offence: Kaplan-Meier, Cox and its proportional-hazards test."""

    min_reoffenders: int = setting("effects.min_reoffenders_for_survival", int)
    ties: str = setting("effects.cox_ties")
    at_risk_days: tuple[float, ...] = setting("effects.km_at_risk_days", tuple)
    alpha: float = setting("analysis.alpha", float)
    threshold: int = setting("report.suppression_threshold", int)


@dataclass(frozen=True, kw_only=True)
class SubgroupSettings(Settings):
    """Effects within subgroups (exploratory)."""

    variables: tuple[str, ...] = setting("effects.subgroups", tuple)
    min_treated: int = setting("effects.min_subgroup_treated", int)
    min_comparison: int = setting("effects.min_subgroup_comparison", int)
    ogrs3_band: Mapping = setting("effects.ogrs3_band", dict)
    alpha: float = setting("analysis.alpha", float)


@dataclass(frozen=True, kw_only=True)
class PanelSettings(Settings):
    """The person x quarter panel around the index date (event study and DiD)."""

    quarters_before: int = setting("effects.panel.quarters_before", int)
    quarters_after: int = setting("effects.panel.quarters_after", int)
    reference_quarter: int = setting("effects.panel.reference_quarter", int)
    cluster: str = setting("effects.panel.cluster")
    alpha: float = setting("analysis.alpha", float)


@dataclass(frozen=True, kw_only=True)
class PowerSettings(Settings):
    """Minimum detectable effects and the sample size for the plan's target effect."""

    alpha: float = setting("analysis.alpha", float)
    power: float = setting("analysis.power", float)
    target_effect_pp: float = setting("power.target_effect_pp", float)


@dataclass(frozen=True, kw_only=True)
class BoundsSettings(Settings):
    """Rosenbaum bounds and E-values (sensitivity to hidden bias)."""

    alpha: float = setting("analysis.alpha", float)
    gamma_grid: tuple[float, ...] = setting("sensitivity.gamma_grid", tuple)
    gamma_max: float = setting("sensitivity.gamma_max", float)
    rare_outcome_threshold: float = setting("sensitivity.rare_outcome_threshold", float)


@dataclass(frozen=True, kw_only=True)
class PlaceboSettings(Settings):
    """The placebo treatment among comparators and the placebo outcome's window."""

    repetitions: int = setting("sensitivity.placebo_repetitions", int)
    seed: int = setting("seed", int)


@dataclass(frozen=True, kw_only=True)
class SpecCurveSettings(Settings):
    """The specification curve's grid of defensible choices."""

    grid: Mapping = setting("sensitivity.spec_curve", dict)


@dataclass(frozen=True, kw_only=True)
class SimulationSettings(Settings):
    """The simulation study against known truth."""

    replicates: int = setting("simulation.replicates", int)
    generator: Mapping = setting("simulation.generator", dict)
    hidden_confounding_strength: float = setting("simulation.hidden_confounding_strength", float)
    coverage_bounds: tuple[float, float] = setting("simulation.coverage_bounds", tuple)
    alpha: float = setting("analysis.alpha", float)


@dataclass(frozen=True, kw_only=True)
class Batches(Settings):
    """How many batch jobs the specification curve and the simulation study are split into
    (the DAG only: no result depends on it)."""

    spec_curve: int | None = setting("sensitivity.spec_curve_batches")
    simulation: int | None = setting("simulation.batches")

    @staticmethod
    def _count(setting, n_items: int) -> int:
        import os

        return max(1, min(n_items, setting or os.cpu_count() or 1))

    def for_specs(self, n_specs: int) -> int:
        """Batch jobs of the curve: the setting, else one per core of this machine."""
        return self._count(self.spec_curve, n_specs)

    def for_replicates(self, n_replicates: int) -> int:
        """Batch jobs of the study: the setting, else one per core of this machine."""
        return self._count(self.simulation, n_replicates)


__all__ = [
    "Batches",
    "BoundsSettings",
    "PanelSettings",
    "PlaceboSettings",
    "PowerSettings",
    "SimulationSettings",
    "SpecCurveSettings",
    "SubgroupSettings",
    "SurvivalSettings",
    "SCHEMA_PATH",
    "AnalysisSpec",
    "CohortSettings",
    "MatchSpec",
    "OutcomeSettings",
    "ReportSettings",
    "Settings",
    "TestLevel",
    "load_config",
    "lookup",
    "merge",
    "params",
    "schema",
    "setting",
    "with_defaults",
]


@dataclass(frozen=True, kw_only=True)
class CohortSettings(Settings):
    """Who is analysed and from when (mydirection.cohort): eligibility, treated, comparator
    pool, index date, and the follow-up dates (outcome-blind: dates only)."""

    recruitment_start: str = setting(
        "cohort.recruitment_start", iso_date("cohort.recruitment_start")
    )
    recruitment_end: str = setting("cohort.recruitment_end", iso_date("cohort.recruitment_end"))
    rosh: tuple[str, ...] = setting("cohort.rosh", tuple)
    sentence_types: tuple[str, ...] = setting("cohort.sentence_types", tuple)
    min_age: float = setting("cohort.min_age", float)
    profile_age_bands: tuple[int, ...] = setting("cohort.profile_age_bands", tuple)
    index_date: str = setting("cohort.index_date")
    enrolment_barriers: tuple[str, ...] = setting("cohort.enrolment_barriers", tuple)
    pilot_offices: tuple[str, ...] = setting("cohort.pilot_offices", tuple)
    exclude_pilot_office_nonenrolled: bool = setting(
        "cohort.exclude_pilot_office_nonenrolled", bool
    )
    exclude_incomplete_followup: bool = setting("cohort.exclude_incomplete_followup", bool)
    followup_days: int = setting("outcomes.followup_days", int)
    waiting_days: int = setting("outcomes.waiting_days", int)
    extract_end_date: str = setting("extract_end_date", iso_date("extract_end_date"))
    seed: int = setting("seed", int)

    def check(self) -> None:
        if self.recruitment_start > self.recruitment_end:
            raise ConfigError(
                "config setting cohort.recruitment_start is after cohort.recruitment_end "
                f"({self.recruitment_start} > {self.recruitment_end}); swap them"
            )


@dataclass(frozen=True, kw_only=True)
class ReportSettings(Settings):
    """Disclosure control and rendering (mydirection.reporting)."""

    suppression_threshold: int = setting("report.suppression_threshold", int)
    engine: str = setting("report.engine")

    def check(self) -> None:
        from mydirection.reporting.disclosure import MIN_THRESHOLD

        if self.suppression_threshold < MIN_THRESHOLD:
            raise ConfigError(
                f"config setting report.suppression_threshold: {self.suppression_threshold} is "
                f"below the published rule ({MIN_THRESHOLD}); counts of fewer than "
                f"{MIN_THRESHOLD} people may never be published, so use {MIN_THRESHOLD} or more"
            )
