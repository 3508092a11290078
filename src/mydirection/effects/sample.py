"""The analysis sample: the matched rows with their outcomes, one row per matched person."""

from __future__ import annotations

import numpy as np
import pandas as pd

OUTCOME_COLUMNS = ("reoffended", "n_reoffences", "days_to_first", "event")


def merge_outcomes(
    matched: pd.DataFrame,
    outcomes: pd.DataFrame,
    matched_path: str = "results/matching/matched.parquet",
    outcomes_path: str = "results/outcomes/outcomes.parquet",
) -> pd.DataFrame:
    """The matched rows with their outcomes (one row per matched person).

    Raises :class:`~mydirection.runner.UserError` when a column is missing or a matched
    person has no outcome row. People whose follow-up is incomplete
    (``followup_complete`` False) keep their row, with outcomes set to missing so that
    :func:`att` leaves them out; the count is in ``attrs["n_incomplete"]``.
    """
    from mydirection.errors import UserError

    need = {
        matched_path: (matched, ["person_id", "treated", "weights", "subclass", "index_date"]),
        outcomes_path: (outcomes, ["person_id", *OUTCOME_COLUMNS]),
    }
    for path, (df, cols) in need.items():
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise UserError(
                f"{path}, column {missing[0]}: missing ({len(df)} rows); rerun the stage "
                "that writes this file"
            )
    dup = outcomes["person_id"].duplicated().to_numpy()
    if dup.any():
        rows = ", ".join(str(i) for i in np.flatnonzero(dup)[:5])
        raise UserError(
            f"{outcomes_path}, column person_id: {int(dup.sum())} duplicated rows (e.g. rows "
            f"{rows}); rerun the outcomes stage"
        )
    keep = ["person_id", *OUTCOME_COLUMNS]
    if "followup_complete" in outcomes:
        keep.append("followup_complete")
    out = matched.drop(columns=[c for c in keep[1:] if c in matched.columns]).merge(
        outcomes[keep], on="person_id", how="left", validate="one_to_one", indicator=True
    )
    lost = (out["_merge"] != "both").to_numpy()
    if lost.any():
        rows = ", ".join(str(i) for i in np.flatnonzero(lost)[:5])
        raise UserError(
            f"{matched_path}, column person_id: {int(lost.sum())} matched people have no row "
            f"in {outcomes_path} (e.g. rows {rows}); rerun the outcomes stage on the same cohort"
        )
    out = out.drop(columns="_merge")
    incomplete = np.zeros(len(out), dtype=bool)
    if "followup_complete" in out:
        incomplete = ~out["followup_complete"].fillna(False).astype(bool).to_numpy()
        out.loc[incomplete, list(OUTCOME_COLUMNS)] = np.nan
    out.attrs["n_incomplete"] = int(incomplete.sum())
    return out
