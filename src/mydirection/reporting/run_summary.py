"""The few lines a run ends with: the headline, the balance verdict and where the report is.

Read from the registry (the report's own displays, suppression included), so the terminal
shows nothing the report does not publish. Nothing is printed when the run did not reach
the report (a run of one stage, say)."""

from __future__ import annotations

import json
from pathlib import Path


def run_summary(
    registry: str | Path = "results/registry.json",
    report: str | Path = "results/report/evaluation.html",
) -> list[str]:
    registry, report = Path(registry), Path(report)
    if not (registry.is_file() and report.is_file()):
        return []
    if report.stat().st_mtime < registry.stat().st_mtime:
        return []  # the report is older than the numbers: it was not rebuilt by this run
    numbers = json.loads(registry.read_text())["numbers"]

    def show(key: str) -> str:
        return str(numbers[key]["display"]) if key in numbers else "not available"

    lines = []
    if "reoffending.rate_difference" in numbers:
        lines.append(
            f"Headline: proven re-offending {show('reoffending.rate_treated')} (My Direction) "
            f"vs {show('reoffending.rate_comparison')} (matched comparison), a difference of "
            f"{show('reoffending.rate_difference')} ({show('reoffending.rate_difference_ci_low')}"
            f" to {show('reoffending.rate_difference_ci_high')}); {show('registry.verdict')}."
        )
    if "matching.balance_ok" in numbers:
        lines.append(
            f"Covariate balance: {show('matching.balance_ok')} (largest absolute standardised "
            f"difference after matching {show('matching.max_abs_smd_after')})."
        )
    lines.append(f"Report: {report}")
    return lines
