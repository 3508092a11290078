"""Synthetic raw extracts with known ground truth (the pipeline's embedded default).

:func:`generate` builds the ten raw extracts of the contract (``docs/data-contract.md``)
for a CRC caseload in Hull and the East Riding, 2017-07 to 2018-12, with My Direction
enrolments at the pilot offices in 2018; :func:`write_extracts` writes them as
``<extract>.csv`` beside ``truth.json`` (the planted truth) and ``mess.json`` (the exact
counts of planted mess). Same config and seed, same bytes.

The package, in the order the world is built (each module's docstring states its part
of the model, step by step):

- :mod:`~mydirection.synthetic.config`: the settings (schema defaults, merge, validation).
- :mod:`~mydirection.synthetic.world`: the generative model, steps 1-6 (people and
  events, criminal histories, OGRS3, selection, fidelity, re-offending under both
  potential outcomes).
- :mod:`~mydirection.synthetic.records`: step 7, the records (convictions, assessments,
  contacts, the pilot's own records).
- :mod:`~mydirection.synthetic.mess`: step 8, the planted mess.
- :mod:`~mydirection.synthetic.truth`: ``truth.json`` and the potential-outcomes frame.
- :mod:`~mydirection.synthetic.write`: identifiers and row order, rendering to CSV text,
  :func:`generate` and :func:`write_extracts`.
"""

from mydirection.synthetic.config import (
    MESS_KINDS,
    QUIRK_EXTRACT,
    SCHEMA_PATH,
    default_config,
    load_config,
    merge_config,
    mess_amount,
    resolve_config,
)
from mydirection.synthetic.records import identical_rows
from mydirection.synthetic.write import Synthetic, generate, write_extracts

__all__ = [
    "MESS_KINDS",
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
