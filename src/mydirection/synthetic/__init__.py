"""Synthetic raw extracts with known ground truth (the pipeline's embedded default).

:func:`generate` builds the ten raw extracts of the contract (``docs/data-contract.md``)
for a CRC caseload in Hull and the East Riding, 2017-07 to 2018-12, with My Direction
enrolments at the pilot offices in 2018 (a planted few later), as in-memory text tables;
:func:`write_extracts` writes them as ``<extract>.csv`` beside ``truth.json`` (the planted
truth) and ``mess.json`` (the exact counts of planted mess). Same config and seed, same
bytes.

The package, in the order the world is built (each module's docstring states its part
of the model, step by step):

- :mod:`~mydirection.synthetic.config`: the settings (schema defaults, merge, validation).
- :mod:`~mydirection.synthetic.world`: people and events, criminal histories, OGRS3
  (steps 1-3), selection with prevented enrolments and planted treated attrition (5),
  fidelity (6); :func:`~mydirection.synthetic.world.build` runs every step.
- :mod:`~mydirection.synthetic.offending`: offending before the planned enrolment date
  and the events that prevent enrolment (4); re-offending after it under both potential
  outcomes, for an index date at the start of the order and at enrolment (7).
- :mod:`~mydirection.synthetic.records`: the records (8: convictions, assessments,
  contacts, the pilot's own records).
- :mod:`~mydirection.synthetic.mess`: the planted mess (9).
- :mod:`~mydirection.synthetic.truth`: ``truth.json`` and the potential-outcomes frame.
- :mod:`~mydirection.synthetic.write`: identifiers and row order, rendering to CSV text,
  :func:`generate` (in memory) and :func:`write_extracts` (files).
- :mod:`~mydirection.synthetic.common`: constants, model tables, random streams.
"""

from mydirection.synthetic.config import (
    ATTRITION_KINDS,
    MESS_KINDS,
    QUIRK_EXTRACT,
    SCHEMA_PATH,
    default_config,
    load_config,
    merge_config,
    mess_amount,
    resolve_config,
)
from mydirection.synthetic.offending import PREVENTION_KINDS
from mydirection.synthetic.records import identical_rows
from mydirection.synthetic.write import Synthetic, generate, write_extracts

__all__ = [
    "ATTRITION_KINDS",
    "MESS_KINDS",
    "PREVENTION_KINDS",
    "QUIRK_EXTRACT",
    "SCHEMA_PATH",
    "Synthetic",
    "default_config",
    "generate",
    "identical_rows",
    "load_config",
    "merge_config",
    "mess_amount",
    "resolve_config",
    "write_extracts",
]
