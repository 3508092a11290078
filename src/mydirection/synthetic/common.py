"""Shared pieces of the generator: constants, model tables, random streams, vectorised draws.

Dates are whole days since 1970-01-01 (``int64``/``int32``), :data:`NA` marking a missing
date. Every model step draws from its own random stream (:func:`stream_rng`: a
``numpy.random.SeedSequence`` of the master seed and the stream's position in
:data:`STREAMS`), so changing one step leaves the other steps' draws unchanged.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

FOLLOWUP_DAYS = 365
PROVEN_BY_DAYS = 365 + 182  # follow-up plus the six-month waiting period
NA = np.iinfo(np.int32).min  # missing date (days since 1970-01-01)
NEVER = np.iinfo(np.int64).max  # the day of an event that does not happen
DAYS_PER_MONTH = 30.4375


# Random streams: each part of the model draws from its own, so changing one part leaves
# the others' draws unchanged.
STREAMS = (
    "people",
    "events",
    "history",
    "selection",
    "fidelity",
    "reoffending",
    "breaches",
    "convictions",
    "assessments",
    "contacts",
    "pilot",
    "staff",
    "quirks",
    "ids",
    "offending_before_enrolment",
    "recalls",
)


# Offence groups (contract order) with the share of index offences, an OGRS3 term and a
# custody term; severity shares (indictable, either way, summary) per group.
OFFENCE = {
    #  group                 share  ogrs  custody  severity
    "violence": (0.22, 0.0, 0.3, (0.10, 0.50, 0.40)),
    "sexual": (0.02, -0.6, 1.0, (0.50, 0.50, 0.00)),
    "robbery": (0.02, 0.2, 1.5, (1.00, 0.00, 0.00)),
    "theft": (0.20, 0.5, 0.0, (0.00, 0.60, 0.40)),
    "burglary": (0.06, 0.5, 0.8, (0.10, 0.90, 0.00)),
    "criminal_damage": (0.06, 0.2, -0.3, (0.00, 0.40, 0.60)),
    "drugs": (0.10, 0.0, 0.2, (0.05, 0.85, 0.10)),
    "public_order": (0.06, 0.2, -0.3, (0.00, 0.30, 0.70)),
    "possession_of_weapons": (0.03, 0.0, 0.4, (0.00, 0.90, 0.10)),
    "fraud": (0.04, -0.2, 0.0, (0.05, 0.90, 0.05)),
    "motoring": (0.10, -0.2, -0.5, (0.00, 0.10, 0.90)),
    "breach": (0.03, 0.4, 0.0, (0.00, 0.00, 1.00)),
    "other": (0.06, 0.0, 0.0, (0.05, 0.35, 0.60)),
}
SENTENCE = {  # sentence type: share, duration in months (low, high inclusive)
    "community_order": (0.45, (12, 24)),
    "suspended_sentence_order": (0.25, (12, 24)),
    "licence": (0.20, (3, 12)),
    "post_sentence_supervision": (0.10, (12, 12)),
}
NON_CUSTODY = {  # disposal type shares when not custody
    "suspended_sentence": 0.12,
    "community_order": 0.28,
    "fine": 0.30,
    "conditional_discharge": 0.14,
    "absolute_discharge": 0.02,
    "caution": 0.10,
    "other": 0.04,
}


def day(text: str) -> int:
    return int(np.datetime64(text, "D").astype(np.int64))


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence(entropy=int(seed), spawn_key=(STREAMS.index(stream),))
    )


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def choice(rng, probs, size) -> np.ndarray:
    """Indices drawn from ``probs`` (normalised), as int8/int16."""
    p = np.asarray(list(probs), dtype=float)
    cum = np.cumsum(p / p.sum())
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int16)


def rowwise_choice(rng, prob_matrix, rows) -> np.ndarray:
    """For each row index in ``rows``, a category drawn from ``prob_matrix[row]``."""
    cum = np.cumsum(prob_matrix, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(len(rows))
    out = np.zeros(len(rows), np.int16)
    for j in range(cum.shape[1] - 1):
        out += u >= cum[rows, j]
    return out


def randint(rng, low, high, size=None):
    """Integers uniform on [low, high] inclusive (arrays allowed)."""
    low = np.asarray(low, dtype=np.int64)
    high = np.asarray(high, dtype=np.int64)
    span = np.maximum(high - low + 1, 1)
    if size is None:
        size = np.broadcast(low, high).shape
    return (low + np.floor(rng.random(size) * span).astype(np.int64)).astype(np.int64)


def disposal_types(rng, w, pid: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Disposal-type codes of convictions of people ``pid`` for offences of ``group``.

    Custody with probability expit(-1.6 + 0.5 z + the group's custody term), otherwise a
    non-custodial disposal drawn from :data:`NON_CUSTODY`.
    """
    custody = rng.random(len(pid)) < expit(-1.6 + 0.5 * w.z[pid] + w.group_custody[group])
    other = w.non_custody[choice(rng, NON_CUSTODY.values(), len(pid))]
    return np.where(custody, w.custody, other).astype(np.int16)


def ogrs_logit(o, age, male, n_sanctions, age_first, group_term):
    """OGRS3-like 2-year logit (see the ``ogrs3`` settings)."""
    n = np.maximum(n_sanctions, 1)
    copas = np.log(n / np.maximum(age - age_first + 10.0, 1.0))
    return (
        o["intercept"]
        + o["male"] * male
        + o["age_per_decade"] * (age - 30.0) / 10.0
        + o["copas"] * copas
        + o["first_sanction"] * (n == 1)
        + group_term
    )


class World(SimpleNamespace):
    """The synthetic world under construction: each model step adds its arrays to it.

    Person-level arrays are indexed by person number 0..n-1 (the treated and the comparator
    pool together); event-level arrays by event number (index events 0..n-1 in person
    order, then the earlier non-index events).
    """
