"""The planted truth (``truth.json``) and the per-person potential outcomes.

The proven re-offending outcome uses the outcomes stage's definition, in two follow-up
windows: a proven re-offence is a non-breach offence with 0 < offence_date - index_date
<= 365 days and disposal_date - index_date <= 547 days, where the index date is

- ``event_start``: the start of the person's index event (their first eligible event;
  for the treated the event they were enrolled during), or
- ``enrolment``: the enrolment date (treated people only).

Eligible event: started in the pilot year, RoSH low or medium, person aged 18 or over at
the start. Each sample ATT is the mean of Y(1) - Y(0) over the treated people the cohort
stage analyses under that index date: enrolled during an eligible event that was still
running on the enrolment date, with the follow-up and waiting period over by the extract
end date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.synthetic.common import FOLLOWUP_DAYS, PROVEN_BY_DAYS, World, expit
from mydirection.synthetic.config import ATTRITION_KINDS
from mydirection.synthetic.offending import PREVENTION_KINDS


def analysed_treated(w: World) -> dict[str, np.ndarray]:
    """Per index-date design, the treated people the cohort stage analyses (boolean masks)."""
    during = w.treated & (w.inelig == 0) & (w.enrol_day <= w.events["end"][: w.n])
    return {
        "event_start": during & (w.anchor + PROVEN_BY_DAYS <= w.extract_end),
        "enrolment": during & (w.enrol_day + PROVEN_BY_DAYS <= w.extract_end),
    }


def _fidelity_truth(w: World, cfg: dict) -> dict:
    treated = w.treated
    first = np.datetime64(cfg["pilot_start"], "M")
    last = max(np.datetime64(cfg["pilot_end"], "M"), first + int(w.enrol_month[treated].max()) - 1)
    months = np.arange(first, last + 1)
    by_month = {}
    for i, m in enumerate(months, start=1):
        sel = treated & (w.enrol_month == i)
        by_month[str(m)] = {
            "n": int(sel.sum()),
            "mean_fidelity": round(float(w.fidelity[sel].mean()), 6) if sel.any() else None,
        }
    if len(np.unique(w.enrol_month[treated])) > 1:
        slope = float(np.polyfit(w.enrol_month[treated], w.fidelity[treated], 1)[0])
    else:
        slope = float("nan")
    return {
        "mean": round(w.mean_f, 6),
        "by_enrolment_month": by_month,
        "slope_per_month": round(slope, 6),
        "planted_decay_per_month": float(cfg["fidelity"]["decay_per_month"]),
    }


def planted_truth(w: World, cfg: dict, seed: int) -> dict:
    """truth.json: effect parameters, sample ATTs, prevention, attrition, fidelity."""
    treated, eligible = w.treated, w.inelig == 0
    comparators = eligible & ~treated
    te, o = cfg["true_effect"], cfg["ogrs3"]
    analysed = analysed_treated(w)
    windows = {
        "event_start": (w.y0, w.y1, "start_date of the index event"),
        "enrolment": (w.y0_enrolment, w.y1_enrolment, "enrolment date (treated people)"),
    }
    outcomes = {}
    for name, (y0, y1, index_date) in windows.items():
        sel = analysed[name]
        outcomes[name] = {
            "index_date": index_date,
            "n_treated": int(sel.sum()),
            "sample_att": float((y1[sel].astype(int) - y0[sel].astype(int)).mean()),
            "treated_mean_y1": float(y1[sel].mean()),
            "treated_mean_y0": float(y0[sel].mean()),
        }
    outcomes["event_start"]["comparator_mean_y0"] = float(w.y0[comparators].mean())

    def latent_ogrs(sel):
        return float(100 * expit(w.y_index[sel] + o["one_year_offset"]).mean())

    prevention = cfg["enrolment_prevention"]
    return {
        "description": (
            "Planted ground truth of the synthetic extracts. Only validation and simulation "
            "rules may read this file; no analysis rule does."
        ),
        "seed": int(seed),
        "n_people": int(w.n),
        "n_treated": int(w.n_treat),
        "n_comparator_pool": int(cfg["n_comparator_pool"]),
        "n_eligible_comparators": int(comparators.sum()),
        "true_effect": {
            "hazard_ratio": float(te["hazard_ratio"]),
            "depends_on_fidelity": bool(te["depends_on_fidelity"]),
            "effect_starts": "enrolment date",
        },
        "hidden_confounding": {"strength": float(cfg["hidden_confounding"]["strength"])},
        "outcome_definition": {
            "index_date": {k: v[2] for k, v in windows.items()},
            "eligible_event": {
                "start_from": cfg["pilot_start"],
                "start_to": cfg["pilot_end"],
                "rosh": ["low", "medium"],
                "min_age_at_start": 18,
            },
            "followup_days": FOLLOWUP_DAYS,
            "proven_by_days": PROVEN_BY_DAYS,
            "rule": "non-breach offence with 0 < offence_date - index_date <= 365 and "
            "disposal_date - index_date <= 547",
            "treated_analysed": "enrolled during an eligible event still running on the "
            "enrolment date, index date + 547 days by the extract end date",
        },
        "sample_att_event_start": outcomes["event_start"]["sample_att"],
        "sample_att_enrolment": outcomes["enrolment"]["sample_att"],
        "potential_outcomes": outcomes,
        "enrolment_prevention": {
            **{k: bool(prevention[k]) for k in PREVENTION_KINDS},
            "n_prevented": int(w.prevented.sum()),
            "prevented_by": {
                k: int((w.prevented & (w.blocked_by == i)).sum())
                for i, k in enumerate(PREVENTION_KINDS, start=1)
            },
            "eligible_comparators_with_preventing_event": int((comparators & w.blocked).sum()),
            "description": "n_prevented: people chosen for enrolment but passed over for "
            "the next candidate because of a preventing event between the start of their "
            "index event and their planned enrolment date (they stay in the comparator "
            "pool); eligible_comparators_with_preventing_event: eligible comparators with "
            "such an event before their own planned enrolment date",
        },
        "treated_attrition": {
            "not_found_in_case_management": int(w.n_orph),
            **{k: int(w.attrition_planted[k]) for k in ATTRITION_KINDS},
            "description": "enrolled people the evaluation cannot use: not_found_in_"
            "case_management = enrolment rows whose CRN is in no other extract (on top of "
            "n_treated; mess.json orphan_enrolments); the others are among n_treated",
        },
        "fidelity": _fidelity_truth(w, cfg),
        "selection": {
            "treated_mean_ogrs3_1yr_latent": latent_ogrs(treated),
            "comparator_mean_ogrs3_1yr_latent": latent_ogrs(comparators),
        },
    }


def potential_outcomes_frame(w: World) -> pd.DataFrame:
    """One row per person (never written under ``results/``).

    ``treated`` (enrolled), ``eligible`` (index event eligible), ``attrition`` (the planted
    treated-attrition kind, NaN if none), ``prevented`` (passed over for enrolment),
    ``preventing_event`` (the first event between the start of the index event and the
    planned enrolment date that prevents enrolment, NaN if none), ``index_date`` (start
    of the index event), ``planned_enrolment_date`` (index date + the person's enrolment
    delay), ``enrolment_date`` (treated), ``fidelity``, ``hazard_ratio`` (treated),
    ``y0``/``y1`` (potential outcomes with the index date at the start of the index event)
    and ``y0_enrolment``/``y1_enrolment`` (with the index date at the enrolment date;
    treated people only, NA otherwise).
    """
    treated = w.treated

    def dates(days, where):
        out = days.astype("datetime64[D]")
        out[~where] = np.datetime64("NaT")
        return out

    def treated_only(y):
        out = pd.array(y.astype(np.int8), dtype="Int8")
        out[~treated] = pd.NA
        return out

    return pd.DataFrame(
        {
            "crn": pd.arrays.ArrowExtensionArray(w.crn.slice(0, w.n)),
            "treated": treated,
            "eligible": w.inelig == 0,
            "attrition": pd.Categorical.from_codes(w.attrition - 1, ATTRITION_KINDS),
            "prevented": w.prevented,
            "preventing_event": pd.Categorical.from_codes(w.prevented_by - 1, PREVENTION_KINDS),
            "index_date": w.anchor.astype("datetime64[D]"),
            "planned_enrolment_date": w.enrol_day.astype("datetime64[D]"),
            "enrolment_date": dates(w.enrol_day, treated),
            "fidelity": w.fidelity,
            "hazard_ratio": np.where(treated, w.hr, np.nan),
            "y0": w.y0.astype(np.int8),
            "y1": w.y1.astype(np.int8),
            "y0_enrolment": treated_only(w.y0_enrolment),
            "y1_enrolment": treated_only(w.y1_enrolment),
        }
    )
