"""What the fidelity stage reads, and the checks its inputs must pass.

The tables are read through their specs (``schemas/tables.yaml``: ``clean.enrolments``,
``clean.plans``, ``clean.contacts``, ``clean.enabling_fund``, ``clean.activities``,
``clean.staff``, ``clean.supervision`` and ``cohort``), which check columns and types.
On top, rules the specs cannot state (messages name the file, column, number of rows and
up to five example rows, 1-based as in the file -- never values):

1. enrolments: one enrolment per person; an enrolment date and a case manager on every
   row; no exit before the enrolment date;
2. plans: a creation date on every row;
3. at least one treated person of the cohort has an enrolment record.

The stage never reads an outcome, a matching file or anything after the index date other
than the pilot's own records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection import tables
from mydirection.errors import UserError

#: Columns the stage reads from each input (by input name; table ``clean.<name>`` or ``cohort``).
READS: dict[str, list[str]] = {
    "enrolments": ["person_id", "enrolment_date", "case_manager_id", "exit_date"],
    "plans": [
        "person_id",
        "created_date",
        "co_signed",
        "n_strengths",
        "n_goals_own_words",
        "last_reviewed_date",
    ],
    "enabling_fund": ["person_id", "award_date"],
    "activities": ["person_id", "activity_date", "activity_type", "attended"],
    "staff": [
        "case_manager_id",
        "office",
        "grade",
        "trained_date",
        "action_learning_sets_attended",
    ],
    "supervision": ["case_manager_id", "start_date", "end_date"],
    "contacts": ["person_id", "contact_date", "outcome"],
    "cohort": ["person_id", "treated", "event_end"],
}


def table_of(name: str) -> str:
    """The table spec an input is read through."""
    return "cohort" if name == "cohort" else f"clean.{name}"


def check_table(df: pd.DataFrame, name: str, path) -> list[str]:
    """Problems with an enrolments or plans table (rules 1-2 of the module docstring).

    Returns messages (empty when fine), each naming the file, column, number of rows and up
    to five example row numbers (1-based, as in the file) -- never values.
    """
    need = {"enrolments": READS["enrolments"], "plans": ["person_id", "created_date"]}[name]
    missing = [c for c in need if c not in df.columns]
    if missing:
        return [f"{path}: missing column(s) {', '.join(missing)}; re-run the upstream stage."]
    problems = []

    def rows_msg(mask, col, what, fix):
        idx = np.flatnonzero(np.asarray(mask))
        if len(idx):
            eg = ", ".join(str(i + 1) for i in idx[:5])
            problems.append(f"{path}, column {col}: {len(idx)} rows {what} (e.g. rows {eg}); {fix}")

    rows_msg(df["person_id"].isna(), "person_id", "are blank", "every row needs a person.")
    if name == "enrolments":
        rows_msg(
            df["person_id"].duplicated(),
            "person_id",
            "repeat an enrolled person",
            "keep one enrolment per person (the first) in the cleaning stage.",
        )
        rows_msg(
            df["enrolment_date"].isna(),
            "enrolment_date",
            "are blank",
            "an enrolment needs its date.",
        )
        rows_msg(
            df["exit_date"] < df["enrolment_date"],
            "exit_date",
            "are before the enrolment date",
            "correct or blank the exit date.",
        )
        rows_msg(
            df["case_manager_id"].isna(),
            "case_manager_id",
            "are blank",
            "every enrolment needs its case manager.",
        )
    if name == "plans":
        rows_msg(
            df["created_date"].isna(),
            "created_date",
            "are blank",
            "a plan needs its creation date.",
        )
    return problems


def check_inputs(enrolments: pd.DataFrame, plans: pd.DataFrame) -> None:
    """Raise the first problem of :func:`check_table` as a :class:`UserError`."""
    for name, df in (("enrolments", enrolments), ("plans", plans)):
        problems = check_table(df, name, tables.spec(table_of(name))["path"])
        if problems:
            raise UserError(problems[0])


def treated_enrolments(enrolments: pd.DataFrame, cohort: pd.DataFrame) -> pd.DataFrame:
    """The enrolment records of the cohort's treated people: the people the stage scores
    (rule 3: none is an error naming both files)."""
    treated = cohort.loc[cohort["treated"].astype(bool), "person_id"]
    scored = enrolments[enrolments["person_id"].isin(treated)]
    if scored.empty:
        raise UserError(
            f"{tables.spec('clean.enrolments')['path']}, column person_id: 0 rows match a "
            f"treated person in {tables.spec('cohort')['path']}; check that both come from "
            "the same cleaning run."
        )
    return scored


__all__ = ["READS", "check_inputs", "check_table", "table_of", "treated_enrolments"]
