"""Index dates and what they require (steps 5-6 of :mod:`mydirection.cohort`): the
comparators' drawn enrolment delays and the events that would have stopped an enrolment
between the start of the order and the index date."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from mydirection.errors import UserError

#: The enrolment barriers (``cohort.enrolment_barriers``) in words.
BARRIER_TEXT = {"reoffence": "re-offence", "custody": "custodial sentence"}


def enrolment_barred(idx: pd.DataFrame, convictions: pd.DataFrame, barriers) -> np.ndarray:
    """Per index row: an event that would have stopped an enrolment happened on or after the
    start of the index event and before the index date (module docstring, step 6).

    ``idx``: person_id, event_start, index_date; ``convictions``: person_id, offence_date,
    disposal_date, offence_group, disposal_type (same person keys). ``reoffence``: an
    offence other than a breach committed in the window, whenever it was proven;
    ``custody``: a custodial disposal dated in the window.
    """
    pos = pd.Index(idx["person_id"]).get_indexer(convictions["person_id"])
    keep = pos >= 0
    pos = pos[keep]
    start = idx["event_start"].to_numpy(dtype="datetime64[ns]")[pos]
    end = idx["index_date"].to_numpy(dtype="datetime64[ns]")[pos]

    def inside(column):
        day = convictions[column].to_numpy(dtype="datetime64[ns]")[keep]
        return (day >= start) & (day < end)

    hit = np.zeros(len(pos), dtype=bool)
    if "reoffence" in barriers:
        not_breach = (convictions["offence_group"] != "breach").fillna(True).to_numpy(bool)
        hit |= not_breach[keep] & inside("offence_date")
    if "custody" in barriers:
        custody = (convictions["disposal_type"] == "custody").fillna(False).to_numpy(bool)
        hit |= custody[keep] & inside("disposal_date")
    barred = np.zeros(len(idx), dtype=bool)
    barred[pos[hit]] = True
    return barred


def draw_comparator_delays(treated_delays: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Delays (days) for ``n`` comparators, drawn with replacement from the treated delays.

    Deterministic: the treated delays are sorted first, and the generator is seeded from the
    master seed and this step's name, so the same inputs give the same draws.
    """
    pool = np.sort(np.asarray(treated_delays, dtype=float))
    if n and not len(pool):
        raise UserError(
            "cohort.index_date is 'enrolment' but no one was enrolled during an eligible "
            "event, so there is no delay distribution to give comparators; use event_start"
        )
    rng = np.random.default_rng([seed, zlib.crc32(b"cohort.comparator_index_delay")])
    return rng.choice(pool, size=n, replace=True) if n else np.empty(0)
