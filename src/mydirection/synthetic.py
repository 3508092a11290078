"""Synthetic raw extracts with known ground truth (the pipeline's embedded default).

:func:`generate` builds the ten raw extracts of the contract (``docs/data-contract.md``)
for a CRC caseload in Hull and the East Riding, 2017-07 to 2018-12, with My Direction
enrolments at the pilot offices in 2018; :func:`write_extracts` writes them as
``<extract>.csv`` beside ``truth.json`` (the planted truth) and ``mess.json`` (the exact
counts of planted mess). Same config and seed, same bytes.

The generative model, in the order it is built (all vectorised with NumPy):

1. **People and events.** Demographics; a latent offending propensity ``z``, engagement
   ``e`` (drives contact attendance, correlated -0.3 with ``z``) and a hidden trait ``u``.
   Each person has an index supervision event at an office (shares in config) starting
   in the pilot year; some also have an earlier event that started before it (a
   non-index event); a configurable few are ineligible (RoSH high/very_high, aged 16-17
   at the start, or only an event that started before the pilot year).
2. **Criminal histories.** Age at first offence and a Poisson number of proven offences
   over the criminal career (rate grows with ``z``), plus one conviction per event (its
   index offence; disposal = event start for orders, earlier custody for licences).
   Custody, severity and disposal types depend on offence group and ``z``.
3. **OGRS3.** An OGRS3-like logistic score from sex, age, the Copas rate (sanctions per
   career length) and offence group, recomputed at each assessment from the recorded
   history up to that date (see ``ogrs3`` in the generator schema).
4. **Selection.** Among eligible people at pilot offices whose enrolment (event start +
   0-60 days) falls in the pilot year, the ``n_treated`` with the highest score plus
   Gumbel noise are enrolled: lower OGRS3, fewer previous offences, more engagement and,
   when ``hidden_confounding.strength`` > 0, a lower hidden trait make enrolment likelier.
5. **Fidelity.** Treated person i gets f_i = clip(start + case-manager quality + noise -
   decay * (enrolment month - 1), 0, 1); every pilot record's completeness rises with f.
6. **Re-offending, both potential outcomes.** A Poisson offence process from the index
   date with a constant hazard from the true risk (OGRS3 at the index date + noise +
   hidden trait). Under treatment the hazard is multiplied by the hazard ratio from the
   enrolment date on (``true_effect``). The same unit exponentials and conviction lags
   drive Y(0) and Y(1) (coupled randomness), so the sample ATT is exact. Treated people
   realise Y(1), everyone else Y(0). Breach offences (never counted) come on top.
7. **Records.** Assessments, contacts, enrolments, plans, enabling-fund awards,
   activities, staff.
8. **Mess** (``/work/brief/mess.md`` agreement, amounts in config ``mess``): data-level
   quirks first (impossible event dates on non-index events, which get no contacts;
   disposal/offence swaps on pre-2016 convictions; contacts moved after their event's
   end; orphan enrolments), then formatting (DD/MM/YYYY dates; stray whitespace and case
   in codes) on rows that carry no data-level quirk, the two kinds on disjoint rows, then
   exact duplicates appended, copied from rows that carry no other mess.

The proven re-offending outcome in ``truth.json`` uses the outcomes stage's definition:
index date = start of the person's first eligible event; a proven re-offence is a
non-breach offence with 0 < offence_date - index_date <= 365 days and disposal_date -
index_date <= 547 days.
"""

from __future__ import annotations

import copy
import json
import math
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

from mydirection.contract import EXTRACTS, codes, extract_schema

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "synthetic.schema.yaml"

#: Kinds of planted mess (``mess.json`` has every kind for every extract, zeros included).
MESS_KINDS = (
    "duplicate_rows",
    "mixed_date_formats",
    "code_whitespace_case",
    "impossible_dates",
    "disposal_before_offence",
    "contacts_after_order_end",
    "orphan_enrolments",
)
#: The extracts each data-level quirk belongs to.
QUIRK_EXTRACT = {
    "impossible_dates": "supervision",
    "disposal_before_offence": "convictions",
    "contacts_after_order_end": "contacts",
    "orphan_enrolments": "enrolments",
}

FOLLOWUP_DAYS = 365
PROVEN_BY_DAYS = 365 + 182  # follow-up plus the six-month waiting period
NA = np.iinfo(np.int32).min  # missing date (days since 1970-01-01)
DAYS_PER_MONTH = 30.4375

# Random streams: each part of the model draws from its own, so changing one part leaves
# the others' draws unchanged.
_STREAMS = (
    "people",
    "events",
    "history",
    "selection",
    "fidelity",
    "reoffending",
    "assessments",
    "contacts",
    "pilot",
    "staff",
    "quirks",
    "ids",
)

# Offence groups (contract order) with the share of index offences, an OGRS3 term and a
# custody term; severity shares (indictable, either way, summary) per group.
_OFFENCE = {
    #  group                 share  ogrs  custody  severity
    "violence": (0.22, 0.0, 0.3, (0.10, 0.50, 0.40)),
    "sexual": (0.02, -0.6, 1.0, (0.50, 0.50, 0.00)),
    "robbery": (0.02, 0.2, 1.5, (1.00, 0.00, 0.00)),
    "theft": (0.20, 0.5, 0.0, (0.00, 0.60, 0.40)),
    "burglary": (0.06, 0.5, 0.8, (0.10, 0.90, 0.00)),
    "criminal_damage": (0.06, 0.2, -0.3, (0.00, 0.40, 0.60)),
    "drugs": (0.10, 0.0, 0.2, (0.05, 0.85, 0.10)),
    "public_order": (0.06, 0.2, -0.3, (0.00, 0.30, 0.70)),
    "possession_of_weapons": (0.03, 0.0, 0.4, (0.00, 0.90, 0.10)),
    "fraud": (0.04, -0.2, 0.0, (0.05, 0.90, 0.05)),
    "motoring": (0.10, -0.2, -0.5, (0.00, 0.10, 0.90)),
    "breach": (0.03, 0.4, 0.0, (0.00, 0.00, 1.00)),
    "other": (0.06, 0.0, 0.0, (0.05, 0.35, 0.60)),
}
_SENTENCE = {  # sentence type: share, duration in months (low, high inclusive)
    "community_order": (0.45, (12, 24)),
    "suspended_sentence_order": (0.25, (12, 24)),
    "licence": (0.20, (3, 12)),
    "post_sentence_supervision": (0.10, (12, 12)),
}
_NON_CUSTODY = {  # disposal type shares when not custody
    "suspended_sentence": 0.12,
    "community_order": 0.28,
    "fine": 0.30,
    "conditional_discharge": 0.14,
    "absolute_discharge": 0.02,
    "caution": 0.10,
    "other": 0.04,
}
_NEEDS = {  # need flag: base logit, weight on offending propensity, weight on engagement
    "need_accommodation": (-0.9, 0.4, -0.3),
    "need_ete": (0.0, 0.3, -0.3),
    "need_finance": (-0.4, 0.3, -0.2),
    "need_relationships": (-0.4, 0.2, -0.2),
    "need_lifestyle": (0.0, 0.5, -0.2),
    "need_drugs": (-0.4, 0.6, -0.2),
    "need_alcohol": (-0.8, 0.2, -0.1),
    "need_thinking": (0.8, 0.4, -0.2),
    "need_attitudes": (-0.4, 0.4, -0.4),
}
_CONTACT_TYPE = {
    "office_appointment": 0.70,
    "home_visit": 0.08,
    "telephone": 0.17,
    "group_session": 0.05,
}
_NOT_ATTENDED = {"fta_acceptable": 0.40, "fta_unacceptable": 0.35, "rescheduled": 0.25}
_ACTIVITY = {"peer_mentor": 0.30, "time_bank": 0.25, "community_partner": 0.25, "small_group": 0.20}
_PURPOSE = {
    "training": 0.25,
    "equipment": 0.20,
    "travel": 0.20,
    "clothing": 0.15,
    "activity": 0.12,
    "other": 0.08,
}
_GRADE = {"pso": 0.45, "po": 0.45, "senior_po": 0.10}


class Synthetic(NamedTuple):
    """What :func:`generate` returns.

    ``extracts``: the ten raw extracts (text columns as the CSV holds them, mess included);
    ``truth``: the planted truth (as in truth.json); ``mess``: planted mess counts (as in
    mess.json); ``potential_outcomes``: one row per person with both potential outcomes
    (for tests and the simulation study only; never written under ``results/``).
    """

    extracts: dict[str, pd.DataFrame]
    truth: dict
    mess: dict
    potential_outcomes: pd.DataFrame


# --------------------------------------------------------------------------- config


@cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _defaults(schema: dict) -> object:
    if schema.get("type") == "object" and "properties" in schema:
        out = copy.deepcopy(schema.get("default", {}))
        for key, sub in schema["properties"].items():
            if "default" in sub or "properties" in sub:
                value = _defaults(sub)
                if isinstance(value, dict) and isinstance(out.get(key), dict):
                    value = {**value, **out[key]}
                out[key] = value
        return out
    return copy.deepcopy(schema.get("default"))


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if (
            isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and key not in ("offices", "ethnicity")
            and key not in MESS_KINDS
        ):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_config() -> dict:
    """Every generator setting at its default (from ``workflow/schemas/synthetic.schema.yaml``)."""
    return _defaults(_schema())


def resolve_config(cfg: dict | None) -> dict:
    """Fill defaults into a (partial) generator config and validate it; ValueError if invalid."""
    import jsonschema

    full = _merge(default_config(), cfg or {})
    try:
        jsonschema.validate(full, _schema())
    except jsonschema.ValidationError as err:
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ValueError(f"synthetic config, setting {where}: {err.message}") from None
    unknown = [o for o in full["pilot_offices"] if o not in full["offices"]]
    if unknown:
        raise ValueError(
            f"synthetic config, setting pilot_offices: {', '.join(unknown)} not among offices; "
            "list only offices defined under `offices`"
        )
    bad = [k for k in full["ethnicity"] if k not in codes("people", "ethnicity")]
    if bad:
        raise ValueError(
            f"synthetic config, setting ethnicity: {', '.join(bad)} are not ethnicity codes "
            f"({', '.join(codes('people', 'ethnicity'))})"
        )
    if sum(full["ineligible"].values()) >= 0.9:
        raise ValueError("synthetic config, setting ineligible: shares must add up to < 0.9")
    return full


def load_config(path) -> dict:
    """Read a generator config file (YAML), fill defaults and validate it."""
    return resolve_config(yaml.safe_load(Path(path).read_text()) or {})


def mess_amount(cfg: dict, kind: str, extract: str) -> int:
    """Requested count of one kind of mess in one extract (0 where the kind does not apply)."""
    if kind in QUIRK_EXTRACT and QUIRK_EXTRACT[kind] != extract:
        return 0
    value = cfg["mess"][kind]
    if isinstance(value, dict):
        return int(value.get(extract, 0))
    return int(value)


# --------------------------------------------------------------------------- helpers


def _day(text: str) -> int:
    return int(np.datetime64(text, "D").astype(np.int64))


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence(entropy=int(seed), spawn_key=(_STREAMS.index(stream),))
    )


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _choice(rng, probs, size) -> np.ndarray:
    """Indices drawn from ``probs`` (normalised), as int8/int16."""
    p = np.asarray(list(probs), dtype=float)
    cum = np.cumsum(p / p.sum())
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int16)


def _rowwise_choice(rng, prob_matrix, rows) -> np.ndarray:
    """For each row index in ``rows``, a category drawn from ``prob_matrix[row]``."""
    cum = np.cumsum(prob_matrix, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(len(rows))
    out = np.zeros(len(rows), np.int16)
    for j in range(cum.shape[1] - 1):
        out += u >= cum[rows, j]
    return out


def _randint(rng, low, high, size=None):
    """Integers uniform on [low, high] inclusive (arrays allowed)."""
    low = np.asarray(low, dtype=np.int64)
    high = np.asarray(high, dtype=np.int64)
    span = np.maximum(high - low + 1, 1)
    if size is None:
        size = np.broadcast(low, high).shape
    return (low + np.floor(rng.random(size) * span).astype(np.int64)).astype(np.int64)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Identifier strings ``prefix`` + zero-padded numbers, built in Arrow (fast)."""
    digits = pc.utf8_lpad(
        pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()), width, "0"
    )
    return pc.binary_join_element_wise(prefix, digits, "")


def _crns(n: int) -> pa.Array:
    """``n`` distinct CRNs (a letter and six digits) in scrambled order (affine permutation)."""
    space = 26 * 1_000_000
    if n > space:
        raise ValueError(f"synthetic config: at most {space} people supported")
    nums = (np.arange(n, dtype=np.int64) * 7_368_787 + 1_234_567) % space
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))[nums // 1_000_000]
    digits = pc.utf8_lpad(pc.cast(pa.array(nums % 1_000_000), pa.string()), 6, "0")
    return pc.binary_join_element_wise(pa.array(letters), digits, "")


def _group_count(pid: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(pid, minlength=n)


# ----------------------------------------------------------------------- the model


def _ogrs_logit(o, age, male, n_sanctions, age_first, group_term):
    """OGRS3-like 2-year logit (see the ``ogrs3`` settings)."""
    n = np.maximum(n_sanctions, 1)
    copas = np.log(n / np.maximum(age - age_first + 10.0, 1.0))
    return (
        o["intercept"]
        + o["male"] * male
        + o["age_per_decade"] * (age - 30.0) / 10.0
        + o["copas"] * copas
        + o["first_sanction"] * (n == 1)
        + group_term
    )


def _build(cfg: dict, seed: int) -> dict:
    """The clean world: per-person arrays, per-extract column arrays, truth."""
    groups = codes("convictions", "offence_group")
    assert groups == list(_OFFENCE), "offence groups of the contract changed"
    group_share = np.array([_OFFENCE[g][0] for g in groups])
    group_ogrs = np.array([_OFFENCE[g][1] for g in groups])
    group_custody = np.array([_OFFENCE[g][2] for g in groups])
    group_sev = np.array([_OFFENCE[g][3] for g in groups])
    breach = groups.index("breach")
    reoffence_share = group_share.copy()
    reoffence_share[breach] = 0.0

    caseload_start = _day(cfg["caseload_start"])
    pilot_start = _day(cfg["pilot_start"])
    pilot_end = _day(cfg["pilot_end"])
    extract_end = _day(cfg["extract_end_date"])

    offices = list(cfg["offices"])
    n_off = len(offices)
    pilot_office = np.isin(np.arange(n_off), [offices.index(o) for o in cfg["pilot_offices"]])
    k_cm = cfg["case_managers_per_office"]
    n_staff = n_off * k_cm
    n_treat = cfg["n_treated"]
    n = n_treat + cfg["n_comparator_pool"]

    # ---- staff
    rng = _rng(seed, "staff")
    staff_office = np.repeat(np.arange(n_off), k_cm)
    staff_grade = _choice(rng, _GRADE.values(), n_staff)
    quality = rng.normal(0.0, cfg["fidelity"]["case_manager_sd"], n_staff)
    at_pilot = pilot_office[staff_office]
    trained = np.where(at_pilot, rng.random(n_staff) < 0.92, rng.random(n_staff) < 0.04)
    trained_day = np.where(
        at_pilot,
        _randint(rng, _day("2017-10-01"), _day("2018-03-31"), n_staff),
        _randint(rng, _day("2018-06-01"), _day("2019-06-30"), n_staff),
    )
    trained_day = np.where(trained, trained_day, NA).astype(np.int32)
    sd_q = max(cfg["fidelity"]["case_manager_sd"], 1e-9)
    als = rng.poisson(np.clip(3.0 + 2.0 * quality / sd_q, 0.2, None))
    als = np.where(trained & at_pilot, np.minimum(als, 10), 0)
    quality = quality - 0.15 * ~trained  # untrained case managers deliver less

    # ---- people
    rng = _rng(seed, "people")
    male = rng.random(n) < cfg["share_male"]
    eth_codes = codes("people", "ethnicity")
    eth = np.array([eth_codes.index(k) for k in cfg["ethnicity"]], dtype=np.int16)[
        _choice(rng, cfg["ethnicity"].values(), n)
    ]
    office = _choice(rng, cfg["offices"].values(), n)
    ine = cfg["ineligible"]
    # 0 eligible, 1 rosh_high, 2 under_18, 3 pre_2018_only
    inelig = _choice(
        rng,
        [1.0 - sum(ine.values()), ine["rosh_high"], ine["under_18"], ine["pre_2018_only"]],
        n,
    )
    z = rng.standard_normal(n)
    engagement = -0.3 * z + math.sqrt(1 - 0.09) * rng.standard_normal(n)
    hidden = rng.standard_normal(n)
    age = 18.05 + rng.gamma(2.0, 7.5, n) * np.exp(-0.15 * z)
    age = np.minimum(age, 75.0)
    age = np.where(inelig == 2, rng.uniform(16.0, 17.95, n), age)
    anchor = np.where(
        inelig == 3,
        _randint(rng, caseload_start, pilot_start - 1, n),
        _randint(rng, pilot_start, pilot_end, n),
    ).astype(np.int64)
    dob = anchor - np.round(age * 365.25).astype(np.int64)
    delay = _randint(rng, 0, cfg["max_enrolment_delay_days"], n)

    # ---- events: index event per person (row i = person i), earlier events appended
    rng = _rng(seed, "events")
    sent_types = list(_SENTENCE)

    def event_attrs(size):
        st = _choice(rng, [_SENTENCE[s][0] for s in sent_types], size)
        lo = np.array([_SENTENCE[s][1][0] for s in sent_types])[st]
        hi = np.array([_SENTENCE[s][1][1] for s in sent_types])[st]
        months = _randint(rng, lo, hi)
        return st, np.round(months * DAYS_PER_MONTH).astype(np.int64)

    ev_st, ev_len = event_attrs(n)
    rosh_codes = codes("supervision", "rosh")
    ev_rosh = np.where(
        inelig == 1,
        np.where(rng.random(n) < 0.85, rosh_codes.index("high"), rosh_codes.index("very_high")),
        np.where(rng.random(n) < 0.4, rosh_codes.index("low"), rosh_codes.index("medium")),
    ).astype(np.int16)
    ev_group = _choice(rng, group_share, n)
    ev_cm = office.astype(np.int64) * k_cm + rng.integers(0, k_cm, n)
    two = (inelig == 0) & (rng.random(n) < cfg["share_two_events"])
    early_pid = np.flatnonzero(two)
    n_early = len(early_pid)
    e_st, e_len = event_attrs(n_early)
    early_start = _randint(rng, caseload_start, np.minimum(pilot_start - 1, anchor[early_pid] - 30))
    events = {
        "pid": np.concatenate([np.arange(n), early_pid]),
        "start": np.concatenate([anchor, early_start]),
        "st": np.concatenate([ev_st, e_st]),
        "rosh": np.concatenate(
            [ev_rosh, np.where(rng.random(n_early) < 0.4, 0, 1).astype(np.int16)]
        ),
        "group": np.concatenate([ev_group, _choice(rng, group_share, n_early)]),
        "cm": np.concatenate(
            [ev_cm, office[early_pid].astype(np.int64) * k_cm + rng.integers(0, k_cm, n_early)]
        ),
        "is_index": np.concatenate([np.ones(n, bool), np.zeros(n_early, bool)]),
    }
    events["end"] = events["start"] + np.concatenate([ev_len, e_len])
    first_event = anchor.copy()
    first_event[early_pid] = early_start

    # ---- criminal histories (convictions before the first event) + event convictions
    rng = _rng(seed, "history")
    h = cfg["history"]
    age_first_event = (first_event - dob) / 365.25
    age_first = 12.0 + rng.gamma(2.0, 2.5, n) * np.exp(-0.3 * z)
    age_first = np.clip(age_first, 10.0, age_first_event - 0.3)
    first_off_day = dob + np.round(age_first * 365.25).astype(np.int64)
    cutoff = first_event - 90
    span_years = np.maximum(cutoff - first_off_day, 0) / 365.25
    sd = h["propensity_sd"]
    rate = h["offences_per_year"] * np.exp(sd * z - sd * sd / 2)
    n_hist = np.minimum(rng.poisson(rate * span_years), 80)
    n_hist = np.where(cutoff > first_off_day, n_hist, 0)
    hp = np.repeat(np.arange(n, dtype=np.int32), n_hist)
    frac = rng.random(len(hp))
    frac[(np.cumsum(n_hist) - n_hist)[n_hist > 0]] = 0.0  # the first offence starts the career
    h_off = (first_off_day[hp] + np.floor(frac * (cutoff[hp] - first_off_day[hp]))).astype(np.int32)
    del frac
    h_disp = np.minimum(
        h_off + 1 + rng.gamma(2.0, 30.0, len(hp)).astype(np.int32), first_event[hp] - 1
    ).astype(np.int32)
    h_group = _choice(rng, reoffence_share, len(hp))

    # event convictions: the offence each event was imposed for
    n_ev = len(events["pid"])
    ev_st = events["st"]
    disp_codes = codes("convictions", "disposal_type")
    ev_disp_type = np.select(
        [
            ev_st == sent_types.index("community_order"),
            ev_st == sent_types.index("suspended_sentence_order"),
        ],
        [disp_codes.index("community_order"), disp_codes.index("suspended_sentence")],
        disp_codes.index("custody"),
    ).astype(np.int16)
    back = np.select(
        [
            ev_st == sent_types.index("licence"),
            ev_st == sent_types.index("post_sentence_supervision"),
        ],
        [_randint(rng, 90, 900, n_ev), _randint(rng, 30, 180, n_ev)],
        0,
    )
    e_disp = events["start"] - back
    e_off = e_disp - _randint(rng, 20, 300, n_ev)

    # ---- OGRS3 at the index date (the history recorded by then)
    o = cfg["ogrs3"]
    n_sanctions_index = n_hist + 1 + two.astype(np.int64)
    first_disp = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_disp, hp, h_disp)
    np.minimum.at(first_disp, events["pid"], e_disp)
    age_first_sanction = (first_disp - dob) / 365.25
    age_index = (anchor - dob) / 365.25
    y_index = _ogrs_logit(
        o, age_index, male, n_sanctions_index, age_first_sanction, group_ogrs[ev_group]
    )

    # ---- selection into the pilot
    rng = _rng(seed, "selection")
    s = cfg["selection"]
    strength = cfg["hidden_confounding"]["strength"]

    def zs(x):
        return (x - x.mean()) / (x.std() or 1.0)

    enrol_day = anchor + delay
    candidate = (inelig == 0) & pilot_office[office] & (enrol_day <= pilot_end)
    n_cand = int(candidate.sum())
    if n_cand < n_treat * 1.2:
        raise ValueError(
            f"synthetic config: only {n_cand} eligible people at the pilot offices for "
            f"n_treated={n_treat}; raise n_comparator_pool or lower n_treated"
        )
    score = (
        s["ogrs3"] * zs(y_index)
        + s["previous_offences"] * zs(np.log1p(n_hist))
        + s["engagement"] * engagement
        - strength * hidden
        + rng.gumbel(size=n)
    )
    score = np.where(candidate, score, -np.inf)
    chosen = np.argsort(-score, kind="stable")[:n_treat]
    treated = np.zeros(n, bool)
    treated[chosen] = True

    # ---- fidelity of the treated
    rng = _rng(seed, "fidelity")
    fc = cfg["fidelity"]
    enrol_month = (
        (np.datetime64(0, "D") + enrol_day.astype("timedelta64[D]"))
        .astype("datetime64[M]")
        .astype(np.int64)
        - np.datetime64(cfg["pilot_start"], "M").astype(np.int64)
        + 1
    )
    fidelity = np.clip(
        fc["start"]
        + quality[ev_cm]
        + rng.normal(0.0, fc["person_sd"], n)
        - fc["decay_per_month"] * (enrol_month - 1),
        0.0,
        1.0,
    )
    fidelity = np.where(treated, fidelity, np.nan)
    mean_f = float(np.nanmean(fidelity))

    # ---- re-offending: both potential outcomes, coupled
    rng = _rng(seed, "reoffending")
    r = cfg["reoffending"]
    true_logit = (
        y_index
        + o["one_year_offset"]
        + rng.normal(0.0, r["risk_noise_sd"], n)
        - 0.2 * engagement
        + strength * hidden
    )
    p1 = _expit(true_logit)
    lam = -np.log1p(-p1) / 365.0  # daily hazard: P(offence within a year) = p1
    te = cfg["true_effect"]
    hr = np.full(n, float(te["hazard_ratio"]))
    if te["depends_on_fidelity"]:
        hr = np.where(treated, np.exp(np.log(te["hazard_ratio"]) * fidelity / mean_f), hr)
    d_treat = np.where(treated, delay, 0).astype(float)  # effect starts at enrolment
    horizon = extract_end - anchor
    y0 = np.zeros(n, bool)
    y1 = np.zeros(n, bool)
    cum = np.zeros(n)
    active = np.arange(n)
    re_pid, re_off, re_disp, re_group = [], [], [], []
    long_share = r["long_lag_share"]
    while len(active):
        cum[active] += rng.exponential(size=len(active))
        c = cum[active]
        lam_a = lam[active]
        t0 = c / lam_a
        split = lam_a * d_treat[active]
        t1 = np.where(c < split, t0, d_treat[active] + (c - split) / (lam_a * hr[active]))
        lag = np.where(
            rng.random(len(active)) < long_share,
            _randint(rng, 150, 450, len(active)),
            1 + rng.gamma(2.0, 35.0, len(active)).astype(np.int64),
        )
        day0 = np.maximum(np.ceil(t0), 1)
        day1 = np.maximum(np.ceil(t1), 1)
        y0[active] |= (day0 <= FOLLOWUP_DAYS) & (day0 + lag <= PROVEN_BY_DAYS)
        y1[active] |= (day1 <= FOLLOWUP_DAYS) & (day1 + lag <= PROVEN_BY_DAYS)
        t_real = np.where(treated[active], t1, t0)
        day_real = np.where(treated[active], day1, day0).astype(np.int64)
        group = _choice(rng, reoffence_share, len(active))
        rec = (t_real <= horizon[active]) & (anchor[active] + day_real + lag <= extract_end)
        re_pid.append(active[rec])
        re_off.append(anchor[active[rec]] + day_real[rec])
        re_disp.append(anchor[active[rec]] + day_real[rec] + lag[rec])
        re_group.append(group[rec])
        keep = (t_real < horizon[active]) | (np.minimum(t0, t1) <= FOLLOWUP_DAYS)
        active = active[keep]
    re_pid = np.concatenate(re_pid)
    re_off = np.concatenate(re_off)
    re_disp = np.concatenate(re_disp)
    re_group = np.concatenate(re_group)

    # breaches while the index event runs (never a proven re-offence)
    ev_stop = np.minimum(events["end"][:n], extract_end)
    b_rate = r["breaches_per_year"] * np.exp(-0.5 * engagement) / 365.0
    n_b = rng.poisson(b_rate * np.maximum(ev_stop - anchor, 0))
    bp = np.repeat(np.arange(n), n_b)
    b_off = anchor[bp] + _randint(rng, 1, np.maximum(ev_stop[bp] - anchor[bp], 1))
    b_disp = b_off + _randint(rng, 14, 120, len(bp))
    b_keep = b_disp <= extract_end
    bp, b_off, b_disp = bp[b_keep], b_off[b_keep], b_disp[b_keep]

    # ---- convictions table (clean)
    n_hist_rows, n_ev_rows = len(hp), n_ev
    c_pid = np.concatenate([hp, events["pid"], re_pid, bp]).astype(np.int32)
    c_off = np.concatenate([h_off, e_off, re_off, b_off]).astype(np.int32)
    c_disp = np.concatenate([h_disp, e_disp, re_disp, b_disp]).astype(np.int32)
    c_group = np.concatenate(
        [h_group, events["group"], re_group, np.full(len(bp), breach, np.int16)]
    ).astype(np.int16)
    del hp, h_off, h_disp, h_group, re_pid, re_off, re_disp, re_group, bp, b_off, b_disp
    n_c = len(c_pid)
    custody = rng.random(n_c) < _expit(-1.6 + 0.5 * z[c_pid] + group_custody[c_group])
    other_disp = np.array([disp_codes.index(k) for k in _NON_CUSTODY], dtype=np.int16)[
        _choice(rng, _NON_CUSTODY.values(), n_c)
    ]
    c_dtype = np.where(custody, disp_codes.index("custody"), other_disp).astype(np.int16)
    c_dtype[n_hist_rows : n_hist_rows + n_ev_rows] = ev_disp_type
    c_sev = _rowwise_choice(rng, group_sev, c_group)

    # ---- assessments (0-2 per person), OGRS3 from the history recorded by then
    rng = _rng(seed, "assessments")
    a = cfg["assessments"]
    n_a = _choice(rng, [a["share_none"], 1 - a["share_none"] - a["share_two"], a["share_two"]], n)
    after = rng.random(n) < a["share_first_after_index"]
    first_a = np.where(after, anchor + _randint(rng, 0, 45, n), anchor - _randint(rng, 1, 90, n))
    second_a = first_a + _randint(rng, 90, 300, n)
    a_pid = np.concatenate([np.flatnonzero(n_a >= 1), np.flatnonzero(n_a >= 2)])
    a_day = np.concatenate([first_a[n_a >= 1], second_a[n_a >= 2]])
    ok = a_day <= extract_end
    a_pid, a_day = a_pid[ok], a_day[ok]
    base = 40_000
    key = c_pid.astype(np.int64) * (1 << 20) + (c_disp + base)
    key.sort()
    lo = np.searchsorted(key, a_pid.astype(np.int64) * (1 << 20), side="left")
    hi = np.searchsorted(key, a_pid.astype(np.int64) * (1 << 20) + (a_day + base), side="right")
    del key
    a_sanctions = hi - lo
    a_age = (a_day - dob[a_pid]) / 365.25
    a_y = _ogrs_logit(
        o, a_age, male[a_pid], a_sanctions, age_first_sanction[a_pid], group_ogrs[ev_group[a_pid]]
    )
    ogrs2 = np.round(100 * _expit(a_y), 1)
    ogrs1 = np.round(100 * _expit(a_y + o["one_year_offset"]), 1)
    needs = {}
    for name, (b0, bz, be) in _NEEDS.items():
        val = (rng.random(len(a_pid)) < _expit(b0 + bz * z[a_pid] + be * engagement[a_pid])).astype(
            np.int8
        )
        val[rng.random(len(a_pid)) < a["need_missing"]] = -1
        needs[name] = val

    # ---- enrolments and pilot records of the treated
    rng = _rng(seed, "pilot")
    tp = np.flatnonzero(treated)
    f_t = fidelity[tp]
    t_enrol = enrol_day[tp]
    t_ev_end = events["end"][tp]
    same_office = ev_cm[tp]
    other_cm = office[tp].astype(np.int64) * k_cm + rng.integers(0, k_cm, len(tp))
    t_cm = np.where(rng.random(len(tp)) < 0.95, same_office, other_cm)
    withdrew = rng.random(len(tp)) < 0.35 * (1.0 - f_t)
    completion = t_enrol + _randint(rng, 270, 450, len(tp))
    exit_reason_codes = codes("enrolments", "exit_reason")
    exit_day = np.where(
        withdrew, t_enrol + _randint(rng, 30, 240, len(tp)), np.minimum(completion, t_ev_end)
    )
    reason = np.where(
        withdrew,
        exit_reason_codes.index("withdrew"),
        np.where(
            t_ev_end < completion,
            exit_reason_codes.index("order_ended"),
            exit_reason_codes.index("completed"),
        ),
    )
    u_reason = rng.random(len(tp))
    transferred = ~withdrew & (u_reason < 0.04)
    exit_day = np.where(transferred, t_enrol + _randint(rng, 30, 300, len(tp)), exit_day)
    reason = np.where(transferred, exit_reason_codes.index("transferred"), reason)
    other = ~withdrew & ~transferred & (u_reason > 0.98)
    reason = np.where(other, exit_reason_codes.index("other"), reason)
    still = exit_day > extract_end
    exit_day = np.where(still, NA, exit_day)
    reason = np.where(still, -1, reason).astype(np.int16)
    window_end = np.where(still, extract_end, exit_day)

    # plans
    has_plan = rng.random(len(tp)) < 0.55 + 0.45 * f_t
    on_time = rng.random(len(tp)) < 0.25 + 0.70 * f_t
    created = t_enrol + np.where(
        on_time, _randint(rng, 0, 28, len(tp)), _randint(rng, 29, 120, len(tp))
    )
    has_plan &= created <= window_end
    co_signed = rng.random(len(tp)) < 0.2 + 0.75 * f_t
    n_strengths = rng.poisson(0.3 + 3.5 * f_t)
    n_goals = rng.poisson(0.2 + 3.0 * f_t)
    span = window_end - created
    reviewed = rng.random(len(tp)) < 0.15 + 0.80 * f_t
    last_on_time = np.maximum(window_end - _randint(rng, 0, 90, len(tp)), created + 1)
    late = created + _randint(rng, 1, np.maximum(span - 92, 1))
    last_rev = np.where(
        reviewed,
        np.where(span >= 1, last_on_time, NA),
        np.where((span > 92) & (rng.random(len(tp)) < 0.5), late, NA),
    )
    plan_rows = np.flatnonzero(has_plan)

    # enabling fund
    awarded = rng.random(len(tp)) < 0.15 + 0.60 * f_t
    n_awards = np.where(awarded, 1 + rng.poisson(0.4, len(tp)), 0)
    fp = np.repeat(np.arange(len(tp)), n_awards)
    award_day = t_enrol[fp] + np.floor(
        rng.random(len(fp)) * (window_end[fp] - t_enrol[fp] + 1)
    ).astype(np.int64)
    amount = np.round(np.clip(rng.lognormal(np.log(80.0), 0.6, len(fp)), 10, 500), 2)
    purpose = _choice(rng, _PURPOSE.values(), len(fp))
    f_order = np.lexsort((fp, award_day))

    # activities
    n_act = rng.poisson(0.5 + 7.0 * f_t)
    ap = np.repeat(np.arange(len(tp)), n_act)
    act_day = t_enrol[ap] + np.floor(
        rng.random(len(ap)) * (window_end[ap] - t_enrol[ap] + 1)
    ).astype(np.int64)
    act_type = _choice(rng, _ACTIVITY.values(), len(ap))
    attended = rng.random(len(ap)) < 0.35 + 0.60 * f_t[ap]
    a_order = np.lexsort((ap, act_day))

    # ---- data-level quirks chosen before contacts (impossible events get no contacts)
    rng = _rng(seed, "quirks")
    n_imp = mess_amount(cfg, "impossible_dates", "supervision")
    non_index = np.flatnonzero(~events["is_index"] & (events["end"] <= extract_end))
    imp_rows = np.sort(rng.choice(non_index, size=min(n_imp, len(non_index)), replace=False))

    # ---- contacts
    rng_c = _rng(seed, "contacts")
    cc = cfg["contacts"]
    ev_pid = events["pid"]
    ev_f = np.where(events["is_index"] & treated[ev_pid], fidelity[ev_pid], np.nan)
    w_end = np.minimum.reduce(
        [
            events["end"],
            events["start"] + np.round(cc["months"] * DAYS_PER_MONTH).astype(np.int64),
            np.full(n_ev, extract_end),
        ]
    )
    w_len = np.maximum(w_end - events["start"], 0)
    rate = np.where(
        np.isnan(ev_f),
        cc["comparator_per_month"],
        cc["treated_per_month"] * (0.6 + 0.8 * np.nan_to_num(ev_f)),
    )
    n_contacts = rng_c.poisson(rate * w_len / DAYS_PER_MONTH)
    n_contacts[imp_rows] = 0
    ce = np.repeat(np.arange(n_ev, dtype=np.int32), n_contacts)
    c_day = (events["start"][ce] + np.floor(rng_c.random(len(ce)) * (w_len[ce] + 1))).astype(
        np.int32
    )
    order = np.argsort((c_day.astype(np.int64) + 40_000) * (1 << 32) + ce, kind="stable")
    ce, c_day = ce[order], c_day[order]
    del order
    cpid = ev_pid[ce]
    boost = np.where(
        ~np.isnan(ev_f[ce]) & (c_day >= enrol_day[cpid]), 1.2 * (np.nan_to_num(ev_f[ce]) - 0.5), 0.0
    )
    p_att = _expit(1.1 + 0.8 * engagement[cpid] + boost)
    att = rng_c.random(len(ce)) < p_att
    outcome_codes = codes("contacts", "outcome")
    not_att = np.array([outcome_codes.index(k) for k in _NOT_ATTENDED], dtype=np.int16)[
        _choice(rng_c, _NOT_ATTENDED.values(), len(ce))
    ]
    c_outcome = np.where(att, outcome_codes.index("attended"), not_att).astype(np.int16)
    c_type = _choice(rng_c, _CONTACT_TYPE.values(), len(ce))
    ev_office = events["cm"] // k_cm
    c_cm = np.where(
        rng_c.random(len(ce)) < 0.9,
        events["cm"][ce],
        ev_office[ce] * k_cm + rng_c.integers(0, k_cm, len(ce)),
    )

    # ---- remaining data-level quirks
    quirks = {}
    ev_end = events["end"].copy()
    ev_end[imp_rows] = events["start"][imp_rows] - _randint(rng, 1, 120, len(imp_rows))
    quirks["supervision"] = imp_rows
    ev_end_na = np.where(ev_end > extract_end, NA, ev_end)

    n_swap = mess_amount(cfg, "disposal_before_offence", "convictions")
    old = np.flatnonzero((c_off < _day("2016-01-01")) & (c_disp > c_off))
    swap = np.sort(rng.choice(old, size=min(n_swap, len(old)), replace=False))
    c_off[swap], c_disp[swap] = c_disp[swap].copy(), c_off[swap].copy()
    quirks["convictions"] = swap

    n_after = mess_amount(cfg, "contacts_after_order_end", "contacts")
    ended = (
        (ev_end_na[ce] != NA)
        & (ev_end[ce] <= extract_end - 60)
        & (ev_end[ce] >= events["start"][ce])
    )
    movable = np.flatnonzero(ended)
    moved = np.sort(rng.choice(movable, size=min(n_after, len(movable)), replace=False))
    c_day[moved] = ev_end[ce[moved]] + _randint(rng, 1, 60, len(moved))
    quirks["contacts"] = moved

    n_orph = mess_amount(cfg, "orphan_enrolments", "enrolments")
    pilot_staff = np.flatnonzero(at_pilot)
    orph_enrol = _randint(rng, pilot_start, pilot_end, n_orph)
    orph_cm = pilot_staff[rng.integers(0, len(pilot_staff), n_orph)]

    # ---- identifiers and row order
    rng = _rng(seed, "ids")
    crn = _crns(n + n_orph)
    person_order = rng.permutation(n)
    rank = np.empty(n, np.int64)
    rank[person_order] = np.arange(n)
    staff_id = _ids("CM", np.arange(1, n_staff + 1), 4)
    pnc_year = (np.floor((dob + np.round(age_first * 365.25)) / 365.25) + 1970).astype(
        np.int64
    ) % 100
    pnc_num = rng.integers(0, 10_000_000, n)
    pnc_letter = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))[rng.integers(0, 24, n)]
    pnc = pc.binary_join_element_wise(
        pc.utf8_lpad(pc.cast(pa.array(pnc_year), pa.string()), 2, "0"),
        pc.utf8_lpad(pc.cast(pa.array(pnc_num), pa.string()), 7, "0"),
        "/",
    )
    pnc = pc.binary_join_element_wise(pnc, pa.array(pnc_letter), "")
    pnc = pc.if_else(pa.array(rng.random(n) < 0.02), pa.nulls(n, pa.string()), pnc)

    ev_order = np.lexsort((rank[ev_pid], events["start"]))
    ev_number = np.empty(n_ev, np.int64)
    ev_number[ev_order] = np.arange(1, n_ev + 1)
    event_id = _ids("E", ev_number, 8)

    conv_order = np.argsort(rank[c_pid] * (1 << 18) + (c_off + 40_000), kind="stable")
    c_pid, c_off, c_disp = c_pid[conv_order], c_off[conv_order], c_disp[conv_order]
    c_group, c_dtype, c_sev = c_group[conv_order], c_dtype[conv_order], c_sev[conv_order]
    swap_mask = np.zeros(n_c, bool)
    swap_mask[swap] = True
    swap_mask = swap_mask[conv_order]
    del conv_order
    ass_order = np.lexsort((a_day, rank[a_pid]))
    moved_mask = np.zeros(len(ce), bool)
    moved_mask[moved] = True
    imp_mask = np.zeros(n_ev, bool)
    imp_mask[imp_rows] = True

    t_order = np.argsort(rank[tp], kind="stable")

    def code(col, extract, column):
        return ("code", np.asarray(col, dtype=np.int16), codes(extract, column))

    def date(col):
        return ("date", np.asarray(col, dtype=np.int32))

    tables = {}
    po = person_order
    tables["people"] = {
        "columns": {
            "crn": ("ref", po, crn),
            "pnc_id": ("ref", po, pnc),
            "date_of_birth": date(dob[po]),
            "sex": code(np.where(male[po], 0, 1), "people", "sex"),
            "ethnicity": code(eth[po], "people", "ethnicity"),
        },
        "quirk": np.zeros(n, bool),
    }
    eo = ev_order
    tables["supervision"] = {
        "columns": {
            "event_id": ("ref", eo, event_id),
            "crn": ("ref", ev_pid[eo], crn),
            "sentence_type": code(events["st"][eo], "supervision", "sentence_type"),
            "start_date": date(events["start"][eo]),
            "end_date": date(ev_end_na[eo]),
            "index_offence_group": code(events["group"][eo], "supervision", "index_offence_group"),
            "rosh": code(events["rosh"][eo], "supervision", "rosh"),
            "office": ("ref", ev_office[eo], pa.array(offices)),
            "case_manager_id": ("ref", events["cm"][eo], staff_id),
        },
        "quirk": imp_mask[eo],
    }
    ao = ass_order
    ass_cols = {
        "crn": ("ref", a_pid[ao], crn),
        "assessment_date": date(a_day[ao]),
        "ogrs3_1yr": ("num", ogrs1[ao]),
        "ogrs3_2yr": ("num", ogrs2[ao]),
    }
    for name, val in needs.items():
        ass_cols[name] = ("flag", val[ao], ("1", "0"))
    tables["assessments"] = {"columns": ass_cols, "quirk": np.zeros(len(ao), bool)}
    tables["convictions"] = {
        "columns": {
            "crn": ("ref", c_pid, crn),
            "offence_date": date(c_off),
            "disposal_date": date(c_disp),
            "offence_group": code(c_group, "convictions", "offence_group"),
            "disposal_type": code(c_dtype, "convictions", "disposal_type"),
            "severity": code(c_sev, "convictions", "severity"),
        },
        "quirk": swap_mask,
    }
    tables["contacts"] = {
        "columns": {
            "contact_id": ("seq", "C", 9),
            "crn": ("ref", cpid, crn),
            "event_id": ("ref", ce, event_id),
            "contact_date": date(c_day),
            "contact_type": code(c_type, "contacts", "contact_type"),
            "outcome": code(c_outcome, "contacts", "outcome"),
            "case_manager_id": ("ref", c_cm, staff_id),
        },
        "quirk": moved_mask,
    }
    to = t_order
    tables["enrolments"] = {
        "columns": {
            "crn": ("ref", np.concatenate([tp[to], np.arange(n, n + n_orph)]), crn),
            "enrolment_date": date(np.concatenate([t_enrol[to], orph_enrol])),
            "case_manager_id": ("ref", np.concatenate([t_cm[to], orph_cm]), staff_id),
            "exit_date": date(np.concatenate([exit_day[to], np.full(n_orph, NA)])),
            "exit_reason": code(
                np.concatenate([reason[to], np.full(n_orph, -1)]), "enrolments", "exit_reason"
            ),
        },
        "quirk": np.concatenate([np.zeros(len(tp), bool), np.ones(n_orph, bool)]),
    }
    pr = plan_rows[np.argsort(rank[tp[plan_rows]], kind="stable")]
    pr = pr[np.argsort(created[pr], kind="stable")]
    tables["plans"] = {
        "columns": {
            "plan_id": ("seq", "P", 6),
            "crn": ("ref", tp[pr], crn),
            "created_date": date(created[pr]),
            "co_signed": ("flag", co_signed[pr].astype(np.int8), ("Y", "N")),
            "n_strengths": ("num", n_strengths[pr]),
            "n_goals_own_words": ("num", n_goals[pr]),
            "last_reviewed_date": date(last_rev[pr]),
        },
        "quirk": np.zeros(len(pr), bool),
    }
    fo = f_order
    tables["enabling_fund"] = {
        "columns": {
            "award_id": ("seq", "F", 6),
            "crn": ("ref", tp[fp[fo]], crn),
            "award_date": date(award_day[fo]),
            "amount_gbp": ("num", amount[fo]),
            "purpose": code(purpose[fo], "enabling_fund", "purpose"),
        },
        "quirk": np.zeros(len(fo), bool),
    }
    ao2 = a_order
    tables["activities"] = {
        "columns": {
            "activity_id": ("seq", "A", 7),
            "crn": ("ref", tp[ap[ao2]], crn),
            "activity_date": date(act_day[ao2]),
            "activity_type": code(act_type[ao2], "activities", "activity_type"),
            "attended": ("flag", attended[ao2].astype(np.int8), ("true", "false")),
        },
        "quirk": np.zeros(len(ao2), bool),
    }
    tables["staff"] = {
        "columns": {
            "case_manager_id": ("str", staff_id),
            "office": ("ref", staff_office, pa.array(offices)),
            "grade": code(staff_grade, "staff", "grade"),
            "trained_date": date(trained_day),
            "action_learning_sets_attended": ("num", als.astype(np.int64)),
        },
        "quirk": np.zeros(n_staff, bool),
    }
    for name in EXTRACTS:
        assert list(tables[name]["columns"]) == list(extract_schema(name)["columns"]), name

    quirk_counts = {
        "supervision": {"impossible_dates": len(imp_rows)},
        "convictions": {"disposal_before_offence": len(swap)},
        "contacts": {"contacts_after_order_end": len(moved)},
        "enrolments": {"orphan_enrolments": n_orph},
    }

    # ---- truth
    eligible = inelig == 0
    diff = (y1.astype(int) - y0.astype(int))[treated]
    months = [
        str(m)
        for m in np.arange(
            np.datetime64(cfg["pilot_start"], "M"), np.datetime64(cfg["pilot_end"], "M") + 1
        )
    ]
    by_month = {}
    for i, m in enumerate(months, start=1):
        sel = treated & (enrol_month == i)
        by_month[m] = {
            "n": int(sel.sum()),
            "mean_fidelity": round(float(fidelity[sel].mean()), 6) if sel.any() else None,
        }
    if len(np.unique(enrol_month[treated])) > 1:
        slope = float(np.polyfit(enrol_month[treated], fidelity[treated], 1)[0])
    else:
        slope = float("nan")
    truth = {
        "description": (
            "Planted ground truth of the synthetic extracts. Only validation and simulation "
            "rules may read this file; no analysis rule does."
        ),
        "seed": int(seed),
        "n_people": int(n),
        "n_treated": int(n_treat),
        "n_comparator_pool": int(cfg["n_comparator_pool"]),
        "n_eligible_comparators": int((eligible & ~treated).sum()),
        "true_effect": {
            "hazard_ratio": float(te["hazard_ratio"]),
            "depends_on_fidelity": bool(te["depends_on_fidelity"]),
            "effect_starts": "enrolment date",
        },
        "hidden_confounding": {"strength": float(strength)},
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
        "treated_mean_y1": float(y1[treated].mean()),
        "treated_mean_y0": float(y0[treated].mean()),
        "comparator_mean_y0": float(y0[eligible & ~treated].mean()),
        "fidelity": {
            "mean": round(mean_f, 6),
            "by_enrolment_month": by_month,
            "slope_per_month": round(slope, 6),
            "planted_decay_per_month": float(fc["decay_per_month"]),
        },
        "selection": {
            "treated_mean_ogrs3_1yr_latent": float(
                100 * _expit(y_index[treated] + o["one_year_offset"]).mean()
            ),
            "comparator_mean_ogrs3_1yr_latent": float(
                100 * _expit(y_index[eligible & ~treated] + o["one_year_offset"]).mean()
            ),
        },
    }

    po_frame = pd.DataFrame(
        {
            "crn": pd.arrays.ArrowExtensionArray(crn.slice(0, n)),
            "treated": treated,
            "eligible": eligible,
            "index_date": anchor.astype("datetime64[D]"),
            "enrolment_date": pd.to_datetime(np.where(treated, enrol_day, 0), unit="D").where(
                treated
            ),
            "fidelity": fidelity,
            "hazard_ratio": np.where(treated, hr, np.nan),
            "y0": y0.astype(np.int8),
            "y1": y1.astype(np.int8),
        }
    )
    return {"tables": tables, "quirk_counts": quirk_counts, "truth": truth, "po": po_frame}


# ------------------------------------------------------------------------ rendering


def _dmy(days: np.ndarray) -> list[str]:
    return [
        f"{d.day:02d}/{d.month:02d}/{d.year:04d}"
        for d in np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype(object)
    ]


_STYLES = ("upper", "title", "mixed")


def _messy_code(value: str, style: int, lead: int, trail: int) -> str:
    if _STYLES[style] == "upper":
        text = value.upper()
    elif _STYLES[style] == "title":
        text = "_".join(p.capitalize() for p in value.split("_"))
    else:
        text = "".join(ch.upper() if i % 2 == 0 else ch for i, ch in enumerate(value))
        if text == value:
            text = value.upper()
    return " " * lead + text + " " * trail


def _plan_mess(world: dict, name: str, cfg: dict, seed: int) -> dict:
    """Choose the rows that get formatting mess and the rows duplicated (deterministic)."""
    spec = world["tables"][name]
    cols = spec["columns"]
    quirk = spec["quirk"]
    n = len(quirk)
    rng = np.random.default_rng(
        np.random.SeedSequence(entropy=int(seed), spawn_key=(100 + EXTRACTS.index(name),))
    )
    date_cols = [c for c, v in cols.items() if v[0] == "date"]
    code_cols = [c for c, v in cols.items() if v[0] == "code"]
    counts = dict.fromkeys(MESS_KINDS, 0)
    counts.update(world["quirk_counts"].get(name, {}))

    has_date = np.zeros(n, bool)
    for c in date_cols:
        has_date |= cols[c][1] != NA
    has_code = np.zeros(n, bool)
    for c in code_cols:
        has_code |= cols[c][1] >= 0
    want = mess_amount(cfg, "mixed_date_formats", name) if date_cols else 0
    pool = np.flatnonzero(~quirk & has_date)
    date_rows = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))
    taken = quirk.copy()
    taken[date_rows] = True
    want = mess_amount(cfg, "code_whitespace_case", name) if code_cols else 0
    pool = np.flatnonzero(~taken & has_code)
    code_rows = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))
    taken[code_rows] = True
    # messy spelling of every code value in the chosen rows
    messy = {}
    for c in code_cols:
        idx, cats = cols[c][1], cols[c][2]
        sel = code_rows[idx[code_rows] >= 0]
        styles = rng.integers(0, len(_STYLES), len(sel))
        leads = rng.integers(1, 3, len(sel))
        trails = rng.integers(0, 3, len(sel))
        messy[c] = dict(
            zip(
                sel.tolist(),
                [
                    _messy_code(cats[i], st, a, b)
                    for i, st, a, b in zip(idx[sel], styles, leads, trails, strict=True)
                ],
                strict=True,
            )
        )
    want = mess_amount(cfg, "duplicate_rows", name)
    pool = np.flatnonzero(~taken)
    dup = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))
    counts["mixed_date_formats"] = len(date_rows)
    counts["code_whitespace_case"] = len(code_rows)
    counts["duplicate_rows"] = len(dup)
    return {"date_rows": date_rows, "messy_codes": messy, "duplicates": dup, "counts": counts}


def _replace(arr: pa.Array, rows: np.ndarray, chosen: np.ndarray, text_of) -> pa.Array:
    """Replace the values of ``arr`` (holding ``rows``) at the rows in ``chosen``."""
    hit = np.isin(rows, chosen)
    if not hit.any():
        return arr
    return pc.replace_with_mask(arr, pa.array(hit), pa.array([text_of(r) for r in rows[hit]]))


def _render_rows(spec: dict, plan: dict, rows: np.ndarray) -> pa.Table:
    """The given rows of one extract as an Arrow table of CSV text, formatting mess applied."""
    arrays = {}
    for c, v in spec["columns"].items():
        kind = v[0]
        if kind == "date":
            days = v[1][rows]
            arr = pa.array(days.astype("datetime64[D]"), mask=days == NA).cast(pa.string())
            dated = plan["date_rows"][v[1][plan["date_rows"]] != NA]
            arr = _replace(arr, rows, dated, lambda r, d=v[1]: _dmy(d[r : r + 1])[0])
        elif kind == "code":
            idx, cats = v[1][rows], v[2]
            arr = pa.DictionaryArray.from_arrays(
                pa.array(idx.astype(np.int32), mask=idx < 0), pa.array(cats)
            ).cast(pa.string())
            messy = plan["messy_codes"][c]
            if messy:
                arr = _replace(arr, rows, np.fromiter(messy, np.int64), messy.__getitem__)
        elif kind == "ref":
            arr = v[2].take(pa.array(np.asarray(v[1][rows], dtype=np.int64)))
        elif kind == "str":
            arr = v[1].take(pa.array(rows))
        elif kind == "seq":  # row numbers from 1 as identifiers
            arr = _ids(v[1], rows + 1, v[2])
        elif kind == "flag":
            val, (yes, no) = v[1][rows], v[2]
            arr = pa.DictionaryArray.from_arrays(
                pa.array(np.where(val == 1, 0, 1).astype(np.int32), mask=val < 0),
                pa.array([yes, no]),
            ).cast(pa.string())
        elif kind == "num":
            arr = pa.array(v[1][rows])
        else:  # pragma: no cover
            raise AssertionError(kind)
        arrays[c] = arr
    return pa.table(arrays)


def _render(world: dict, name: str, cfg: dict, seed: int) -> tuple[pa.Table, dict]:
    """One whole extract (original rows, then the appended duplicates) and its mess counts."""
    spec = world["tables"][name]
    plan = _plan_mess(world, name, cfg, seed)
    rows = np.arange(len(spec["quirk"]))
    table = _render_rows(spec, plan, rows)
    if len(plan["duplicates"]):
        table = pa.concat_tables([table, _render_rows(spec, plan, plan["duplicates"])])
    return table, plan["counts"]


def _write(world: dict, name: str, cfg: dict, seed: int, path: Path, chunk: int) -> dict:
    """Write one extract to CSV in chunks of rows (bounded memory); return its mess counts."""
    spec = world["tables"][name]
    plan = _plan_mess(world, name, cfg, seed)
    n = len(spec["quirk"])
    schema = _render_rows(spec, plan, np.arange(min(n, 1))).schema
    with pacsv.CSVWriter(path, schema) as writer:
        for start in range(0, n, chunk):
            writer.write_table(_render_rows(spec, plan, np.arange(start, min(n, start + chunk))))
        if len(plan["duplicates"]):
            writer.write_table(_render_rows(spec, plan, plan["duplicates"]))
    return plan["counts"]


def generate(cfg: dict | None, seed: int) -> Synthetic:
    """Generate the ten raw extracts, the planted truth and the mess counts.

    ``cfg`` is a (partial) generator config (defaults from the generator schema);
    ``seed`` the master seed. Returns :class:`Synthetic` (unpacks as ``extracts, truth,
    mess, potential_outcomes``). Extract columns are text exactly as written to CSV
    (Arrow-backed strings; blanks are missing), counts and scores numeric.
    """
    cfg = resolve_config(cfg)
    world = _build(cfg, seed)
    extracts, mess = {}, {}
    for name in EXTRACTS:
        table, mess[name] = _render(world, name, cfg, seed)
        extracts[name] = table.to_pandas(types_mapper=pd.ArrowDtype)
    return Synthetic(extracts, world["truth"], mess, world["po"])


def write_extracts(
    out_dir, cfg: dict | None, seed: int, *, chunk: int = 500_000
) -> tuple[dict, dict]:
    """Write ``<extract>.csv`` for all ten extracts, ``truth.json`` and ``mess.json``.

    Extracts are rendered and written one at a time, ``chunk`` rows at a time, so the
    national scale stays within memory. The bytes do not depend on ``chunk``.
    Returns ``(truth, mess)``.
    """
    cfg = resolve_config(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = _build(cfg, seed)
    mess = {}
    for name in EXTRACTS:
        mess[name] = _write(world, name, cfg, seed, out / f"{name}.csv", chunk)
        world["tables"][name] = None  # free memory as we go
    truth = world["truth"]
    (out / "truth.json").write_text(json.dumps(_jsonable(truth), indent=2, sort_keys=True) + "\n")
    (out / "mess.json").write_text(json.dumps(mess, indent=2, sort_keys=True) + "\n")
    return truth, mess


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
