"""The fidelity measures' settings: the ``fidelity`` section of the analysis plan.

Every threshold, weight and band cut-off of :mod:`mydirection.fidelity` is a field of
:class:`FidelitySettings`, read from the validated config (``FidelitySettings.from_config``)
with its dotted config key; the defaults are the schema's (``schemas/config.schema.yaml``,
whose descriptions document each setting), never the code's. Tests and notebooks use
``FidelitySettings.default(**overrides)``. The confidence level of every fidelity interval
is the analysis plan's one test level (:class:`mydirection.settings.TestLevel`, confidence
``1 - analysis.alpha``), passed beside these settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mydirection.errors import ConfigError
from mydirection.settings import Settings, iso_date, setting


def _weights(value: Mapping) -> dict[str, float]:
    return {str(k): float(v) for k, v in sorted(dict(value).items())}


def _alternatives(value: Mapping) -> dict[str, dict[str, float]]:
    return {str(name): _weights(w) for name, w in sorted(dict(value).items())}


@dataclass(frozen=True, kw_only=True)
class FidelitySettings(Settings):
    """Thresholds, weights and bands of the fidelity measures (rules: the item modules)."""

    plan_within_days: int = setting("fidelity.plan_within_days", int)
    review_every_days: int = setting("fidelity.review_every_days", int)
    expected_contacts_per_month: float = setting("fidelity.expected_contacts_per_month", float)
    contact_min_exposure_days: int = setting("fidelity.contact_min_exposure_days", int)
    min_strengths: int = setting("fidelity.min_strengths", int)
    min_goals_own_words: int = setting("fidelity.min_goals_own_words", int)
    activity_types: tuple[str, ...] = setting("fidelity.activity_types", tuple)
    weights: Mapping[str, float] = setting("fidelity.weights", _weights)
    alternative_weights: Mapping[str, Mapping[str, float]] = setting(
        "fidelity.alternative_weights", _alternatives
    )
    min_scorable_items: int = setting("fidelity.min_scorable_items", int)
    band_moderate: float = setting("fidelity.bands.moderate", float)
    band_high: float = setting("fidelity.bands.high", float)
    monthly_se: str = setting("fidelity.monthly_se")
    funnel_outer_z: float = setting("fidelity.funnel_outer_z", float)
    #: enrolments still open are scored up to the extract end date
    extract_end_date: str = setting("extract_end_date", iso_date("extract_end_date"))

    def check(self) -> None:
        if not self.band_moderate < self.band_high:
            raise ConfigError(
                "config setting fidelity.bands: moderate "
                f"({self.band_moderate:g}) must be below high ({self.band_high:g}); "
                "set moderate lower than high"
            )
        for name, w in {
            "weights": self.weights,
            **{f"alternative_weights.{k}": v for k, v in self.alternative_weights.items()},
        }.items():
            if not any(v > 0 for v in w.values()):
                raise ConfigError(
                    f"config setting fidelity.{name}: no item has a positive weight; give at "
                    "least one item a weight above 0"
                )


@dataclass(frozen=True, kw_only=True)
class DoseSettings(Settings):
    """The dose-response model (the ``fidelity.dose_*`` settings) of
    :mod:`mydirection.effects.dose`; here, beside the other ``fidelity`` settings, so the
    Snakefile reads it without importing the model."""

    model: str = setting("fidelity.dose_model")
    per_points: float = setting("fidelity.dose_per_points", float)
    ps_term: str = setting("fidelity.dose_ps_term")


__all__ = ["DoseSettings", "FidelitySettings"]
