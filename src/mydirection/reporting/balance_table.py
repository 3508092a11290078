"""The numeric balance table beside the Love plot (a Justice Data Lab table): for every
covariate level, the standardised mean difference before and after matching and the
variance ratio after matching, as registry numbers ``matching.balance.<level>.*``.

Only these summaries are reported, never the group means of a level (a mean of a binary
level of a small group is a count of people in disguise).
"""

from __future__ import annotations

import math
import re

import pandas as pd

from mydirection.reporting import labels
from mydirection.reporting.numbers import Numbers

PREFIX = "matching.balance"
MEASURES = ("smd_before", "smd_after", "var_ratio_after")


def level_key(covariate: str) -> str:
    """The registry key part of a covariate level (lower case, ``[a-z0-9_]``)."""
    return re.sub(r"[^a-z0-9_]+", "_", str(covariate).lower()).strip("_") or "level"


def balance_numbers(balance: pd.DataFrame, numbers: Numbers, prefix: str = PREFIX) -> None:
    """Add the balance table's numbers for every row of ``balance`` (columns ``covariate``,
    ``variable``, ``level``, ``smd_before``, ``smd_after``, ``var_ratio_after``)."""
    for row in balance.itertuples(index=False):
        name = labels.covariate(row.variable, row.level)
        key = f"{prefix}.{level_key(row.covariate)}"
        numbers.add(
            f"{key}.smd_before",
            row.smd_before,
            "estimate",
            f"{name}: standardised mean difference before matching",
            decimals=3,
        )
        numbers.add(
            f"{key}.smd_after",
            row.smd_after,
            "estimate",
            f"{name}: standardised mean difference after matching",
            decimals=3,
        )
        vr = getattr(row, "var_ratio_after", None)
        if vr is not None and not (isinstance(vr, float) and math.isnan(vr)):
            numbers.add(
                f"{key}.var_ratio_after",
                vr,
                "ratio",
                f"{name}: variance ratio after matching",
                decimals=2,
            )


__all__ = ["MEASURES", "PREFIX", "balance_numbers", "level_key"]
