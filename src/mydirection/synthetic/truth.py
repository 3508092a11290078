"""The planted truth (``truth.json``) and the per-person potential outcomes.

The proven re-offending outcome in ``truth.json`` uses the outcomes stage's definition:
index date = start of the person's first eligible event; a proven re-offence is a
non-breach offence with 0 < offence_date - index_date <= 365 days and disposal_date -
index_date <= 547 days. Eligible event: started in the pilot year, RoSH low or medium,
person aged 18 or over at the start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.synthetic.common import FOLLOWUP_DAYS, PROVEN_BY_DAYS, World, expit


def planted_truth(w: World, cfg: dict, seed: int) -> dict:
    """truth.json: effect parameters, sample ATT from the potential outcomes, fidelity."""
    treated, eligible = w.treated, w.inelig == 0
    te, fc, o = cfg["true_effect"], cfg["fidelity"], cfg["ogrs3"]
    diff = (w.y1.astype(int) - w.y0.astype(int))[treated]
    months = np.arange(
        np.datetime64(cfg["pilot_start"], "M"), np.datetime64(cfg["pilot_end"], "M") + 1
    )
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

    def latent_ogrs(sel):
        return float(100 * expit(w.y_index[sel] + o["one_year_offset"]).mean())

    return {
        "description": (
            "Planted ground truth of the synthetic extracts. Only validation and simulation "
            "rules may read this file; no analysis rule does."
        ),
        "seed": int(seed),
        "n_people": int(w.n),
        "n_treated": int(w.n_treat),
        "n_comparator_pool": int(cfg["n_comparator_pool"]),
        "n_eligible_comparators": int((eligible & ~treated).sum()),
        "true_effect": {
            "hazard_ratio": float(te["hazard_ratio"]),
            "depends_on_fidelity": bool(te["depends_on_fidelity"]),
            "effect_starts": "enrolment date",
        },
        "hidden_confounding": {"strength": float(cfg["hidden_confounding"]["strength"])},
        "outcome_definition": {
            "index_date": "start_date of the person's first eligible supervision event",
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
        },
        "sample_att": float(diff.mean()),
        "treated_mean_y1": float(w.y1[treated].mean()),
        "treated_mean_y0": float(w.y0[treated].mean()),
        "comparator_mean_y0": float(w.y0[eligible & ~treated].mean()),
        "fidelity": {
            "mean": round(w.mean_f, 6),
            "by_enrolment_month": by_month,
            "slope_per_month": round(slope, 6),
            "planted_decay_per_month": float(fc["decay_per_month"]),
        },
        "selection": {
            "treated_mean_ogrs3_1yr_latent": latent_ogrs(treated),
            "comparator_mean_ogrs3_1yr_latent": latent_ogrs(eligible & ~treated),
        },
    }


def potential_outcomes_frame(w: World) -> pd.DataFrame:
    """One row per person: treated, eligible, index and enrolment dates, f, HR, Y(0), Y(1)."""
    treated = w.treated
    return pd.DataFrame(
        {
            "crn": pd.arrays.ArrowExtensionArray(w.crn.slice(0, w.n)),
            "treated": treated,
            "eligible": w.inelig == 0,
            "index_date": w.anchor.astype("datetime64[D]"),
            "enrolment_date": pd.to_datetime(np.where(treated, w.enrol_day, 0), unit="D").where(
                treated
            ),
            "fidelity": w.fidelity,
            "hazard_ratio": np.where(treated, w.hr, np.nan),
            "y0": w.y0.astype(np.int8),
            "y1": w.y1.astype(np.int8),
        }
    )
