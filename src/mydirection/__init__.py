"""mydirection: evaluation pipeline for the My Direction probation pilot."""

__version__ = "0.1.0"
