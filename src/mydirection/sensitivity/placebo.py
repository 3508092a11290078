"""Placebo treatment: the matched design run among comparators only, with treatment
assigned at random (the true effect is zero by construction)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def placebo_size(n_treated: int, n_comparators: int, ratio: int = 1) -> int:
    """How many comparators get the placebo 'treatment': as many as there are treated
    people, but no more than a ``1 / (1 + ratio)`` share of the pool, so each can still find
    ``ratio`` placebo comparators."""
    return int(max(0, min(n_treated, n_comparators // (1 + max(int(ratio), 1)))))


def placebo_assignments(n_pool: int, n_placebo: int, repetitions: int, seed: int):
    """Yield ``repetitions`` boolean masks of length ``n_pool`` with ``n_placebo`` True each,
    drawn without replacement by ``numpy.random.default_rng(seed)`` (one generator, in order)."""
    rng = np.random.default_rng(seed)
    for _ in range(repetitions):
        mask = np.zeros(n_pool, dtype=bool)
        mask[rng.choice(n_pool, size=n_placebo, replace=False)] = True
        yield mask


def placebo_distribution(
    comparators: pd.DataFrame, n_placebo: int, repetitions: int, seed: int, estimate
) -> pd.DataFrame:
    """Effects of a placebo treatment randomly assigned among comparators.

    ``comparators``: comparator rows (covariates and outcomes), in a stable order.
    ``estimate(data)`` receives a copy with ``treated`` replaced by the placebo assignment
    and returns an object with ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value``
    (an :class:`mydirection.effects.Effect`), e.g. the default matching then ``att``.
    The true effect of the placebo is zero by construction. A repetition that cannot be
    estimated (the estimate is NaN) keeps its reason in ``error`` when ``estimate`` gives one.
    """
    rows = []
    pool = comparators.reset_index(drop=True)
    for rep, mask in enumerate(placebo_assignments(len(pool), n_placebo, repetitions, seed)):
        data = pool.copy()
        data["treated"] = mask
        e = estimate(data)
        rows.append(
            {
                "rep": rep,
                "estimate": e.estimate,
                "se": e.se,
                "ci_low": e.ci_low,
                "ci_high": e.ci_high,
                "p_value": e.p_value,
                "error": getattr(e, "error", ""),
            }
        )
    return pd.DataFrame(rows)
