"""Running a rule's script: logging, and clear errors instead of tracebacks.

Every entry script in ``scripts/`` ends with ``run(main, snakemake)``. A :class:`UserError`
(bad input or config a user can fix) is printed as one clear message and the script exits
with status 1; Snakemake then removes the job's outputs, so nothing half-written is left.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mydirection.errors import UserError

log = logging.getLogger("mydirection")


def setup_logging(logfile: str | None = None) -> None:
    """Log to stderr and, when given, to the rule's log file (no person-level data, ever)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(name)s: %(message)s", handlers=handlers, force=True
    )
    logging.captureWarnings(True)  # library warnings (e.g. quasi-separation) reach the log


def run(main: Callable, snakemake) -> None:
    """Call ``main(snakemake)`` with logging set up; turn a UserError into a clean exit."""
    logfile = snakemake.log[0] if len(snakemake.log) else None
    setup_logging(logfile)
    started = time.perf_counter()
    log.info("rule %s: started", snakemake.rule)
    try:
        main(snakemake)
    except UserError as err:
        log.error("ERROR in rule %s: %s", snakemake.rule, err)
        for path in snakemake.output:
            p = Path(path)
            if p.is_file():
                p.unlink()
        sys.exit(1)
    log.info("rule %s: done in %.1f s", snakemake.rule, time.perf_counter() - started)
