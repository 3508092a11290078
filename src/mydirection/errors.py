"""Errors a user can cause and fix, raised by the library (no dependency on Snakemake).

Every message names the file (or setting), the column, how many rows, and what to do.
The rule harness (:mod:`mydirection.runner`) prints a :class:`UserError` as one line and
exits with status 1, leaving no outputs behind.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix. The message names file, column, rows and what to do."""


class ConfigError(UserError, ValueError):
    """The config breaks the schema or a rule that spans settings."""


class NotEstimable(UserError, ValueError):
    """The data cannot support the analysis as specified (e.g. perfect separation in the
    propensity model). The headline rule stops with the message; a consumer that tries
    many specifications (the curve, the simulation) records the specification as failed."""
