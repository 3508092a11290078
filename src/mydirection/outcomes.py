"""Proven re-offending outcomes for every cohort member (Ministry of Justice definition).

Built from the cohort (person_id, index_date) and the cleaned convictions only, for every
cohort member, independently of matching.

With ``F`` = follow-up days (default 365) and ``W`` = waiting days (default 182), and days
counted from the index date (``offence_date - index_date``):

- A **proven re-offence** is a conviction row that is not a breach (``offence_group ==
  "breach"`` never counts), committed on day 1..F (``0 < offence - index <= F``: an offence
  on day F counts, on day F + 1 does not; one on the index date itself does not) and proven
  by day F + W (``disposal - index <= F + W``: proven on day 547 counts by default, on day
  548 does not). An offence committed before the index date never counts, however late it
  is proven. Each conviction row is one offence.
- ``reoffended`` (0/1); ``n_reoffences`` (frequency); ``days_to_first``: days from the index
  date to the first re-offence, or F (censored at the window's end) when there is none;
  ``event`` = ``reoffended``; ``custodial_reoffence``: any re-offence received custody;
  ``first_reoffence_severity``: severity of the first re-offence (earliest offence date;
  offences on the same day: the most severe, indictable > either_way > summary), None when
  there is none.
- The same for the F days **before** the index date (placebo outcome and pre-period of the
  panel): an offence, not a breach, committed on days -F..-1 (``-F <= offence - index < 0``)
  and proven by day W - 1, i.e. within W days after that window's last day, exactly as the
  follow-up window allows W days after day F. ``pre_reoffended`` (0/1) and
  ``pre_n_offences``. The index offence itself usually falls in this window, so the
  measure is high in both groups; it is for comparing the groups, not for reporting.
- ``followup_complete``: index date + F + W is on or before the extract end date. The cohort
  stage excludes incomplete people by default (cohort.exclude_incomplete_followup); when
  they are kept, their outcomes only see what the extract holds and are flagged false.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.errors import UserError

OUTCOME_COLUMNS = [
    "person_id",
    "reoffended",
    "n_reoffences",
    "days_to_first",
    "event",
    "custodial_reoffence",
    "first_reoffence_severity",
    "pre_reoffended",
    "pre_n_offences",
    "followup_complete",
]

SEVERITY_ORDER = ("indictable", "either_way", "summary")  # most severe first

REQUIRED = {
    "cohort": ["person_id", "index_date"],
    "convictions": [
        "person_id",
        "offence_date",
        "disposal_date",
        "offence_group",
        "disposal_type",
        "severity",
    ],
}

DAY = np.timedelta64(1, "D")


def _check(df: pd.DataFrame, name: str, path: str) -> None:
    missing = [c for c in REQUIRED[name] if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)} ({len(df)} rows); "
            "rerun the stage that writes it"
        )


def classify_convictions(
    cohort: pd.DataFrame, convictions: pd.DataFrame, followup_days: int, waiting_days: int
) -> pd.DataFrame:
    """Each conviction of a cohort member with its position relative to the index date.

    Returns one row per conviction of a cohort member: ``row`` (position of the person in
    ``cohort``), ``offence_day`` and ``disposal_day`` (days from the index date),
    ``reoffence`` and ``pre_offence`` (bool, the definitions of the module docstring),
    ``custody``, ``severity``. Useful for checking a person's classification by hand.
    """
    f, w = int(followup_days), int(waiting_days)
    pos = pd.Index(cohort["person_id"]).get_indexer(convictions["person_id"])
    keep = pos >= 0
    pos = pos[keep]
    index_date = cohort["index_date"].to_numpy(dtype="datetime64[ns]")[pos]

    def days(column):  # days from the index date, one column at a time (no frame copy)
        dates = convictions[column].to_numpy(dtype="datetime64[ns]")[keep]
        return (dates - index_date) / DAY

    offence_day, disposal_day = days("offence_date"), days("disposal_date")
    not_breach = (convictions["offence_group"] != "breach").fillna(True).to_numpy(bool)[keep]
    with np.errstate(invalid="ignore"):  # NaT -> NaN compares False: not counted
        reoffence = not_breach & (offence_day > 0) & (offence_day <= f) & (disposal_day <= f + w)
        pre = not_breach & (offence_day >= -f) & (offence_day < 0) & (disposal_day <= w - 1)
    custody = (convictions["disposal_type"] == "custody").fillna(False).to_numpy(bool)[keep]
    return pd.DataFrame(
        {
            "row": pos,
            "offence_day": offence_day,
            "disposal_day": disposal_day,
            "reoffence": reoffence,
            "pre_offence": pre,
            "custody": custody,
            "severity": convictions["severity"].array[keep],
        },
        copy=False,
    )


def proven_reoffending(
    cohort: pd.DataFrame,
    convictions: pd.DataFrame,
    followup_days: int = 365,
    waiting_days: int = 182,
    extract_end_date=None,
) -> pd.DataFrame:
    """The outcomes table: one row per cohort member, in the cohort's order (docs/stages.md)."""
    _check(cohort, "cohort", "results/cohort/cohort.parquet")
    _check(convictions, "convictions", "results/clean/convictions.parquet")
    if cohort["person_id"].duplicated().any():
        raise UserError(
            "results/cohort/cohort.parquet, column person_id: duplicated people; "
            "rerun the cohort stage"
        )
    n = len(cohort)
    f, w = int(followup_days), int(waiting_days)
    k = classify_convictions(cohort, convictions, f, w)

    re = k[k["reoffence"]]
    n_re = np.bincount(re["row"].to_numpy(), minlength=n)
    custodial = np.bincount(re["row"].to_numpy()[re["custody"].to_numpy()], minlength=n) > 0
    rank = re["severity"].map({s: i for i, s in enumerate(SEVERITY_ORDER)}).fillna(99)
    first = (
        re.assign(_rank=rank.to_numpy())
        .sort_values(["row", "offence_day", "_rank"], kind="stable")
        .drop_duplicates("row", keep="first")
    )
    days = np.full(n, f, dtype="int64")
    days[first["row"].to_numpy()] = first["offence_day"].to_numpy().astype("int64")
    severity = np.full(n, None, dtype=object)
    severity[first["row"].to_numpy()] = np.asarray(first["severity"].to_numpy(), dtype=object)

    pre = k.loc[k["pre_offence"], "row"].to_numpy()
    n_pre = np.bincount(pre, minlength=n)

    if extract_end_date is None:
        complete = np.ones(n, dtype=bool)
    else:
        end = pd.Timestamp(extract_end_date)
        complete = (cohort["index_date"] + pd.Timedelta(days=f + w) <= end).to_numpy(bool)

    out = pd.DataFrame(
        {
            "person_id": cohort["person_id"].to_numpy(),
            "reoffended": (n_re > 0).astype("int64"),
            "n_reoffences": n_re.astype("int64"),
            "days_to_first": days,
            "event": (n_re > 0).astype("int64"),
            "custodial_reoffence": custodial.astype("int64"),
            "first_reoffence_severity": severity,
            "pre_reoffended": (n_pre > 0).astype("int64"),
            "pre_n_offences": n_pre.astype("int64"),
            "followup_complete": complete,
        }
    )
    return out[OUTCOME_COLUMNS]


def outcome_numbers(outcomes: pd.DataFrame, followup_days: int, waiting_days: int):
    """Design numbers of the outcomes stage (no re-offending rate leaves this stage: the
    effects are computed on the matched sample only)."""
    from mydirection.reporting.numbers import Numbers

    n = Numbers()
    n.add("outcomes.followup_days", int(followup_days), "days", "Follow-up window", unit="days")
    n.add("outcomes.waiting_days", int(waiting_days), "days", "Waiting period", unit="days")
    n.count("outcomes.n_people", len(outcomes), "Cohort members with outcomes")
    n.count(
        "outcomes.n_followup_incomplete",
        int((~outcomes["followup_complete"]).sum()),
        "Cohort members whose follow-up ends after the extract end date",
    )
    return n
