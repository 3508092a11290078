"""The cohort stage's result: the attrition chevron recorded step by step, and
:class:`CohortResult` (the cohort, its chevron and the numbers the stage reports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from mydirection import tables
from mydirection.reporting.numbers import Numbers

#: Columns of the attrition table (``schemas/tables.yaml``, docs/stages.md).
ATTRITION_COLUMNS = tables.columns("attrition")


class _Attrition:
    """Records, step by step, how many people remain in each group and how many were lost."""

    def __init__(self, enrolled: np.ndarray):
        self.enrolled = enrolled  # bool per person code
        self.rows: list[dict] = []
        self.previous: dict[str, int] | None = None

    def record(self, rule: str, description: str, codes: np.ndarray, reason: str = "") -> None:
        present = np.zeros(len(self.enrolled), dtype=bool)
        present[codes] = True
        n_all = int(present.sum())
        n_treated = int((present & self.enrolled).sum())
        counts = {"treated": n_treated, "comparator": n_all - n_treated, "all": n_all}
        step = len(self.rows) // 3 + 1
        for group, n in counts.items():
            lost = 0 if self.previous is None else self.previous[group] - n
            self.rows.append(
                {
                    "step": step,
                    "rule": rule,
                    "description": description,
                    "group": group,
                    "n_remaining": n,
                    "n_lost": lost,
                    "reason": reason,
                }
            )
        self.previous = counts

    def copy(self) -> _Attrition:
        out = _Attrition(self.enrolled)
        out.rows, out.previous = list(self.rows), self.previous
        return out

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=ATTRITION_COLUMNS)
        return df.astype({"step": "int64", "n_remaining": "int64", "n_lost": "int64"})


GROUPS = ("treated", "comparator", "all")
ATTRITION_CAPTION = (
    "Cohort attrition: people remaining after each eligibility step, participants and "
    "comparators, with the number lost at each step and why (small counts suppressed)."
)


@dataclass
class CohortResult:
    """The cohort, its attrition chevron, and the numbers the cohort stage reports."""

    cohort: pd.DataFrame
    attrition: pd.DataFrame
    #: what :attr:`excluded` is made from: the people and enrolments received, the age bands
    profile_inputs: tuple | None = field(default=None, repr=False)

    @cached_property
    def excluded(self) -> pd.DataFrame | None:
        """Participants not included, by sex, age band and ethnicity
        (mydirection.cohort_profile); made when first asked for (the simulation never does)."""
        if self.profile_inputs is None:
            return None
        from mydirection.cohort_profile import excluded_profile

        people, enrolments, bands = self.profile_inputs
        return excluded_profile(people, enrolments, self.cohort, bands)

    def numbers(self) -> Numbers:
        """Every attrition step (remaining and lost, per group, with the additive relations
        disclosure control needs) and the cohort's summary counts."""
        n = Numbers()
        a = self.attrition
        previous = None
        for _, rows in a.groupby("step", sort=True):
            rows = rows.set_index("group")
            rule_id = rows["rule"].iloc[0]
            what = rows["description"].iloc[0]
            keys = {}
            for g in GROUPS:
                k = f"cohort.attrition.{rule_id}.{g}"
                keys[g] = (k + ".remaining", k + ".lost")
                n.count(keys[g][0], rows.loc[g, "n_remaining"], f"{what}: {g}, remaining")
                if previous is not None:
                    n.count(keys[g][1], rows.loc[g, "n_lost"], f"{what}: {g}, lost")
                    n.relation(previous[g][0], [keys[g][0], keys[g][1]], prefer="total")
            n.relation(keys["all"][0], [keys["treated"][0], keys["comparator"][0]])
            if previous is not None:
                n.relation(keys["all"][1], [keys["treated"][1], keys["comparator"][1]])
            previous = keys
        c = self.cohort
        t = c["treated"].astype(bool)
        first = a[a["step"] == 1].set_index("group")["n_remaining"]
        n_t = n.count("cohort.n_treated", int(t.sum()), "Participants in the cohort (analysed)")
        n_c = n.count("cohort.n_comparator_pool", int((~t).sum()), "Comparator pool (analysed)")
        n.relation(n_t, [previous["treated"][0]])
        n.relation(n_c, [previous["comparator"][0]])
        n.count("cohort.n_received", int(first["all"]), "People in the extracts")
        n_e = n.count("cohort.n_enrolled", int(first["treated"]), "People in the enrolment extract")
        if self.excluded is not None:
            from mydirection.cohort_profile import P, profile_numbers

            n.update(profile_numbers(self.excluded, int(first["treated"]) - int(t.sum())))
            n.relation(n_e, [n_t, P + "n"])
        n.count(
            "cohort.n_treated_ogrs3_missing",
            int(c.loc[t, "ogrs3_missing"].sum()),
            "Participants without an OGRS3 score before the index date",
        )
        n.count(
            "cohort.n_comparator_ogrs3_missing",
            int(c.loc[~t, "ogrs3_missing"].sum()),
            "Comparators without an OGRS3 score before the index date",
        )
        delays = c.loc[t, "enrolment_delay_days"].dropna()
        n.add(
            "cohort.median_enrolment_delay_days",
            float(delays.median()) if len(delays) else None,
            "days",
            "Median days from the start of the order to enrolment (participants)",
            unit="days",
            derived_from=[n_t],
            decimals=0,
        )
        return n

    def plot_attrition(self, path, threshold: int) -> None:
        """The chevron figure, with disclosure control applied to the numbers it shows."""
        from mydirection.cohort_figure import plot_attrition

        plot_attrition(self.attrition, path, self.numbers(), threshold)
