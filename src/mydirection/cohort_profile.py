"""The profile of the participants not included: people enrolled in My Direction whom an
eligibility step of :mod:`mydirection.cohort` left out, by sex, age band at their first
enrolment and ethnicity (as a Justice Data Lab report shows them, small counts suppressed).

Levels are the extract contract's codes (plus ``not_recorded`` for a missing value), so the table
has the same rows whatever the data; each variable's levels add up to the number not
included, declared as a relation so that no suppressed level can be worked out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.contract import age_in_years, codes
from mydirection.reporting.numbers import Numbers

VARIABLES = ("sex", "age_band", "ethnicity")
P = "cohort.excluded_profile."
#: The level of a missing or uncoded value (no extract code is spelled like this).
MISSING = "not_recorded"


def band_labels(lower: tuple[int, ...]) -> list[str]:
    """``[18, 25, 35]`` -> ``["under 18", "18-24", "25-34", "35+"]``."""
    inner = [f"{a}-{b - 1}" for a, b in zip(lower, lower[1:], strict=False)]
    return [f"under {lower[0]}", *inner, f"{lower[-1]}+"]


def excluded_profile(
    people: pd.DataFrame,
    enrolments: pd.DataFrame,
    cohort: pd.DataFrame,
    age_bands: tuple[int, ...],
) -> pd.DataFrame:
    """Counts of the participants not included: columns variable, level, n."""
    first = enrolments.groupby("person_id")["enrolment_date"].min()
    included = cohort.loc[cohort["treated"].astype(bool), "person_id"]
    out = first.index.difference(pd.Index(included))
    who = people.drop_duplicates("person_id").set_index("person_id").reindex(out)
    birth = who["birth_year"] if "birth_year" in who else pd.Series(np.nan, index=who.index)
    ages = age_in_years(pd.Series(first.reindex(out).to_numpy()), birth.to_numpy(float))
    labels = band_labels(tuple(age_bands))
    edges = [-np.inf, *age_bands, np.inf]
    band = pd.cut(pd.Series(np.asarray(ages, float)), edges, right=False, labels=labels)
    values = {
        "sex": who["sex"].to_numpy(),
        "age_band": band.astype(object).to_numpy(),
        "ethnicity": who["ethnicity"].to_numpy(),
    }
    levels = {"sex": codes("people", "sex"), "age_band": labels,
              "ethnicity": codes("people", "ethnicity")}  # fmt: skip
    rows = []
    for var in VARIABLES:
        v = pd.Series(values[var], dtype=object)
        known = set(levels[var])
        for level in [*levels[var], MISSING]:
            hit = v.isin([level]) if level != MISSING else ~v.isin(known)
            rows.append({"variable": var, "level": level, "n": int(hit.sum())})
    return pd.DataFrame(rows)


def profile_numbers(profile: pd.DataFrame, n_not_included: int) -> Numbers:
    """The profile as registry numbers, each variable's levels adding up to the total."""
    n = Numbers()
    total = n.count(P + "n", n_not_included, "Participants not included in the analysis")
    names = {"sex": "Sex", "age_band": "Age at enrolment", "ethnicity": "Ethnicity"}
    for var, rows in profile.groupby("variable", sort=False):
        parts = [
            n.count(
                f"{P}{var}.{r.level}",
                r.n,
                f"Participants not included: {names[var].lower()} {str(r.level).replace('_', ' ')}",
            )
            for r in rows.itertuples()
        ]
        n.relation(total, parts)
    return n
