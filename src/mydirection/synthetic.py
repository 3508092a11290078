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
7. **Records.** Assessments (0-2 per person, some only after the index date); contacts
   from each event's start (treated people's through their enrolment, more often and
   better attended with higher f; attendance otherwise follows engagement); enrolments
   with exits, plans, enabling-fund awards and activities (all more complete with higher
   f); staff with training dates and Action Learning Sets (more for better case managers).
8. **Mess** (the agreement with the cleaning stage, listed under "Quirks" in
   ``docs/data-contract.md``; amounts in config ``mess``): data-level
   quirks first (impossible event dates on non-index events, which get no contacts;
   disposal/offence swaps on pre-2016 convictions; contacts moved after their event's
   end; orphan enrolments), then formatting (DD/MM/YYYY dates; stray whitespace and case
   in codes) on rows that carry no data-level quirk, the two kinds on disjoint rows, then
   exact duplicates appended, copied from rows that carry no other mess.

The proven re-offending outcome in ``truth.json`` uses the outcomes stage's definition:
index date = start of the person's first eligible event; a proven re-offence is a
non-breach offence with 0 < offence_date - index_date <= 365 days and disposal_date -
index_date <= 547 days. Eligible event: started in the pilot year, RoSH low or medium,
person aged 18 or over at the start.

Each model step draws from its own random stream (``numpy.random.SeedSequence`` of the
seed and the step), and the steps are small functions adding arrays to a :class:`_World`.
The extracts are rendered to CSV text with Arrow, chunk by chunk, so the national scale
(1,000 treated, 1,000,000 comparator pool, about 1.4 GB of CSV) takes about a minute and
1 GB of memory (``benchmarks/bench_synthetic.py``).
"""

from __future__ import annotations

import copy
import json
import math
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

from mydirection.contract import EXTRACTS, codes, extract_schema

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "synthetic.schema.yaml"

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
    "breaches",
    "convictions",
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


def merge_config(base: dict, override: dict) -> dict:
    """``override`` laid over ``base`` (nested settings merged key by key).

    ``offices``, ``ethnicity`` and each ``mess`` kind are replaced whole, not merged: they
    are lists of shares / counts where a partial override would make no sense.
    """
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if (
            isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and key not in ("offices", "ethnicity")
            and key not in MESS_KINDS
        ):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_merge = merge_config  # older name, kept for callers


def default_config() -> dict:
    """Every generator setting at its default (from ``workflow/schemas/synthetic.schema.yaml``)."""
    return _defaults(_schema())


def resolve_config(cfg: dict | None) -> dict:
    """Fill defaults into a (partial) generator config and validate it; ValueError if invalid."""
    import jsonschema

    full = merge_config(default_config(), cfg or {})
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


class _World(SimpleNamespace):
    """The synthetic world under construction: each model step adds its arrays to it.

    Person-level arrays are indexed by person number 0..n-1 (the treated and the comparator
    pool together); event-level arrays by event number (index events 0..n-1 in person
    order, then the earlier non-index events).
    """


def _build(cfg: dict, seed: int) -> dict:
    """The clean world, with data-level quirks planted: per-extract column arrays and truth."""
    w = _setup(cfg)
    _staff(w, cfg, _rng(seed, "staff"))
    _people(w, cfg, _rng(seed, "people"))
    _events(w, cfg, _rng(seed, "events"))
    _histories(w, cfg, _rng(seed, "history"))
    _select(w, cfg, _rng(seed, "selection"))
    _fidelity(w, cfg, _rng(seed, "fidelity"))
    _reoffending(w, cfg, _rng(seed, "reoffending"))
    _breaches(w, cfg, _rng(seed, "breaches"))
    _convictions(w, _rng(seed, "convictions"))
    _assessments(w, cfg, _rng(seed, "assessments"))
    _pilot_records(w, _rng(seed, "pilot"))
    quirks = _rng(seed, "quirks")
    _choose_impossible_events(w, cfg, quirks)
    _contacts(w, cfg, _rng(seed, "contacts"))
    _plant_quirks(w, cfg, quirks)
    tables = _tables(w, _rng(seed, "ids"))
    return {
        "tables": tables,
        "quirk_counts": w.quirk_counts,
        "truth": _truth(w, cfg, seed),
        "po": _potential_outcomes_frame(w),
    }


def _setup(cfg: dict) -> _World:
    groups = codes("convictions", "offence_group")
    assert groups == list(_OFFENCE), "offence groups of the contract changed"
    w = _World()
    w.group_share = np.array([_OFFENCE[g][0] for g in groups])
    w.group_ogrs = np.array([_OFFENCE[g][1] for g in groups])
    w.group_custody = np.array([_OFFENCE[g][2] for g in groups])
    w.group_sev = np.array([_OFFENCE[g][3] for g in groups])
    w.breach = groups.index("breach")
    w.reoffence_share = w.group_share.copy()
    w.reoffence_share[w.breach] = 0.0  # re-offences drawn here are never breaches
    w.caseload_start = _day(cfg["caseload_start"])
    w.pilot_start = _day(cfg["pilot_start"])
    w.pilot_end = _day(cfg["pilot_end"])
    w.extract_end = _day(cfg["extract_end_date"])
    w.offices = list(cfg["offices"])
    w.pilot_office = np.isin(
        np.arange(len(w.offices)), [w.offices.index(o) for o in cfg["pilot_offices"]]
    )
    w.k_cm = cfg["case_managers_per_office"]
    w.n_staff = len(w.offices) * w.k_cm
    w.n_treat = cfg["n_treated"]
    w.n = w.n_treat + cfg["n_comparator_pool"]
    return w


def _staff(w: _World, cfg: dict, rng) -> None:
    """Case managers: office, grade, training (pilot offices), Action Learning Sets, quality."""
    n_staff = w.n_staff
    w.staff_office = np.repeat(np.arange(len(w.offices)), w.k_cm)
    w.staff_grade = _choice(rng, _GRADE.values(), n_staff)
    quality = rng.normal(0.0, cfg["fidelity"]["case_manager_sd"], n_staff)
    w.at_pilot = w.pilot_office[w.staff_office]
    trained = np.where(w.at_pilot, rng.random(n_staff) < 0.92, rng.random(n_staff) < 0.04)
    trained_day = np.where(
        w.at_pilot,
        _randint(rng, _day("2017-10-01"), _day("2018-03-31"), n_staff),
        _randint(rng, _day("2018-06-01"), _day("2019-06-30"), n_staff),
    )
    w.trained_day = np.where(trained, trained_day, NA).astype(np.int32)
    sd_q = max(cfg["fidelity"]["case_manager_sd"], 1e-9)
    als = rng.poisson(np.clip(3.0 + 2.0 * quality / sd_q, 0.2, None))
    w.als = np.where(trained & w.at_pilot, np.minimum(als, 10), 0).astype(np.int64)
    w.quality = quality - 0.15 * ~trained  # untrained case managers deliver less


def _people(w: _World, cfg: dict, rng) -> None:
    """Demographics, latent traits, eligibility, index event start, enrolment delay."""
    n = w.n
    w.male = rng.random(n) < cfg["share_male"]
    eth_codes = codes("people", "ethnicity")
    w.eth = np.array([eth_codes.index(k) for k in cfg["ethnicity"]], dtype=np.int16)[
        _choice(rng, cfg["ethnicity"].values(), n)
    ]
    w.office = _choice(rng, cfg["offices"].values(), n)
    ine = cfg["ineligible"]
    # 0 eligible, 1 rosh_high, 2 under_18, 3 pre_2018_only
    w.inelig = _choice(
        rng,
        [1.0 - sum(ine.values()), ine["rosh_high"], ine["under_18"], ine["pre_2018_only"]],
        n,
    )
    w.z = rng.standard_normal(n)  # offending propensity
    w.engagement = -0.3 * w.z + math.sqrt(1 - 0.09) * rng.standard_normal(n)
    w.hidden = rng.standard_normal(n)  # never recorded anywhere
    age = 18.05 + rng.gamma(2.0, 7.5, n) * np.exp(-0.15 * w.z)
    age = np.minimum(age, 75.0)
    age = np.where(w.inelig == 2, rng.uniform(16.0, 17.95, n), age)
    w.anchor = np.where(
        w.inelig == 3,
        _randint(rng, w.caseload_start, w.pilot_start - 1, n),
        _randint(rng, w.pilot_start, w.pilot_end, n),
    ).astype(np.int64)
    w.dob = w.anchor - np.round(age * 365.25).astype(np.int64)
    w.delay = _randint(rng, 0, cfg["max_enrolment_delay_days"], n)


def _events(w: _World, cfg: dict, rng) -> None:
    """Supervision events: one index event per person, plus earlier non-index events."""
    n = w.n
    sent_types = list(_SENTENCE)
    lo_m = np.array([_SENTENCE[s][1][0] for s in sent_types])
    hi_m = np.array([_SENTENCE[s][1][1] for s in sent_types])

    def attrs(size):
        st = _choice(rng, [_SENTENCE[s][0] for s in sent_types], size)
        months = _randint(rng, lo_m[st], hi_m[st])
        return st, np.round(months * DAYS_PER_MONTH).astype(np.int64)

    st, length = attrs(n)
    rosh_codes = codes("supervision", "rosh")
    rosh = np.where(
        w.inelig == 1,
        np.where(rng.random(n) < 0.85, rosh_codes.index("high"), rosh_codes.index("very_high")),
        np.where(rng.random(n) < 0.4, rosh_codes.index("low"), rosh_codes.index("medium")),
    ).astype(np.int16)
    w.ev_group = _choice(rng, w.group_share, n)
    w.ev_cm = w.office.astype(np.int64) * w.k_cm + rng.integers(0, w.k_cm, n)
    w.two = (w.inelig == 0) & (rng.random(n) < cfg["share_two_events"])
    early_pid = np.flatnonzero(w.two)
    n_early = len(early_pid)
    e_st, e_len = attrs(n_early)
    early_start = _randint(
        rng, w.caseload_start, np.minimum(w.pilot_start - 1, w.anchor[early_pid] - 30)
    )
    early_cm = w.office[early_pid].astype(np.int64) * w.k_cm + rng.integers(0, w.k_cm, n_early)
    w.events = {
        "pid": np.concatenate([np.arange(n), early_pid]),
        "start": np.concatenate([w.anchor, early_start]),
        "st": np.concatenate([st, e_st]),
        "rosh": np.concatenate([rosh, np.where(rng.random(n_early) < 0.4, 0, 1).astype(np.int16)]),
        "group": np.concatenate([w.ev_group, _choice(rng, w.group_share, n_early)]),
        "cm": np.concatenate([w.ev_cm, early_cm]),
        "is_index": np.concatenate([np.ones(n, bool), np.zeros(n_early, bool)]),
    }
    w.events["end"] = w.events["start"] + np.concatenate([length, e_len])
    w.n_ev = len(w.events["pid"])
    w.first_event = w.anchor.copy()
    w.first_event[early_pid] = early_start


def _histories(w: _World, cfg: dict, rng) -> None:
    """Convictions before the first event, one conviction per event, OGRS3 at the index date."""
    n, z = w.n, w.z
    h = cfg["history"]
    age_first_event = (w.first_event - w.dob) / 365.25
    w.age_first = np.clip(
        12.0 + rng.gamma(2.0, 2.5, n) * np.exp(-0.3 * z), 10.0, age_first_event - 0.3
    )
    first_off_day = w.dob + np.round(w.age_first * 365.25).astype(np.int64)
    cutoff = w.first_event - 90
    span_years = np.maximum(cutoff - first_off_day, 0) / 365.25
    sd = h["propensity_sd"]
    rate = h["offences_per_year"] * np.exp(sd * z - sd * sd / 2)
    n_hist = np.minimum(rng.poisson(rate * span_years), 80)
    w.n_hist = np.where(cutoff > first_off_day, n_hist, 0)
    hp = np.repeat(np.arange(n, dtype=np.int32), w.n_hist)
    frac = rng.random(len(hp))
    frac[(np.cumsum(w.n_hist) - w.n_hist)[w.n_hist > 0]] = 0.0  # first offence starts the career
    w.h_pid = hp
    w.h_off = (first_off_day[hp] + np.floor(frac * (cutoff[hp] - first_off_day[hp]))).astype(
        np.int32
    )
    del frac
    w.h_disp = np.minimum(
        w.h_off + 1 + rng.gamma(2.0, 30.0, len(hp)).astype(np.int32), w.first_event[hp] - 1
    ).astype(np.int32)
    w.h_group = _choice(rng, w.reoffence_share, len(hp))

    # the offence each event was imposed for: disposal at the start of an order, earlier
    # custody for a licence or post-sentence supervision
    sent_types = list(_SENTENCE)
    ev_st = w.events["st"]
    disp_codes = codes("convictions", "disposal_type")
    w.ev_disp_type = np.select(
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
        [_randint(rng, 90, 900, w.n_ev), _randint(rng, 30, 180, w.n_ev)],
        0,
    )
    w.e_disp = w.events["start"] - back
    w.e_off = w.e_disp - _randint(rng, 20, 300, w.n_ev)

    # OGRS3 at the index date, from the history recorded by then
    first_disp = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_disp, hp, w.h_disp)
    np.minimum.at(first_disp, w.events["pid"], w.e_disp)
    w.age_first_sanction = (first_disp - w.dob) / 365.25
    w.y_index = _ogrs_logit(
        cfg["ogrs3"],
        (w.anchor - w.dob) / 365.25,
        w.male,
        w.n_hist + 1 + w.two.astype(np.int64),
        w.age_first_sanction,
        w.group_ogrs[w.ev_group],
    )


def _select(w: _World, cfg: dict, rng) -> None:
    """Enrol n_treated eligible people at pilot offices, weighted towards lower risk."""
    s = cfg["selection"]

    def zs(x):
        return (x - x.mean()) / (x.std() or 1.0)

    w.enrol_day = w.anchor + w.delay
    candidate = (w.inelig == 0) & w.pilot_office[w.office] & (w.enrol_day <= w.pilot_end)
    n_cand = int(candidate.sum())
    if n_cand < w.n_treat * 1.2:
        raise ValueError(
            f"synthetic config: only {n_cand} eligible people at the pilot offices for "
            f"n_treated={w.n_treat}; raise n_comparator_pool or lower n_treated"
        )
    score = (
        s["ogrs3"] * zs(w.y_index)
        + s["previous_offences"] * zs(np.log1p(w.n_hist))
        + s["engagement"] * w.engagement
        - cfg["hidden_confounding"]["strength"] * w.hidden
        + rng.gumbel(size=w.n)
    )
    score = np.where(candidate, score, -np.inf)
    chosen = np.argsort(-score, kind="stable")[: w.n_treat]
    w.treated = np.zeros(w.n, bool)
    w.treated[chosen] = True
    w.tp = np.flatnonzero(w.treated)


def _fidelity(w: _World, cfg: dict, rng) -> None:
    """Latent fidelity of the treated: case-manager quality + decay by month of enrolment."""
    fc = cfg["fidelity"]
    month = (w.enrol_day.astype("datetime64[D]").astype("datetime64[M]")).astype(np.int64)
    w.enrol_month = month - np.datetime64(cfg["pilot_start"], "M").astype(np.int64) + 1
    fidelity = np.clip(
        fc["start"]
        + w.quality[w.ev_cm]
        + rng.normal(0.0, fc["person_sd"], w.n)
        - fc["decay_per_month"] * (w.enrol_month - 1),
        0.0,
        1.0,
    )
    w.fidelity = np.where(w.treated, fidelity, np.nan)
    w.mean_f = float(np.nanmean(w.fidelity))


def _reoffending(w: _World, cfg: dict, rng) -> None:
    """Offences after the index date under both potential outcomes (coupled randomness).

    A Poisson process with constant daily hazard ``lam`` (so that P(offence within a year)
    is the true 1-year risk). The k-th offence happens when the cumulative hazard reaches
    the sum of k unit exponentials; under treatment the hazard is multiplied by the hazard
    ratio from the enrolment date on. The same exponentials and conviction lags drive both
    potential outcomes. Treated people realise Y(1), everyone else Y(0).
    """
    r, te, n = cfg["reoffending"], cfg["true_effect"], w.n
    true_logit = (
        w.y_index
        + cfg["ogrs3"]["one_year_offset"]
        + rng.normal(0.0, r["risk_noise_sd"], n)
        - r["engagement_effect"] * w.engagement
        + cfg["hidden_confounding"]["strength"] * w.hidden
    )
    lam = -np.log1p(-_expit(true_logit)) / 365.0
    hr = np.full(n, float(te["hazard_ratio"]))
    if te["depends_on_fidelity"]:
        scaled = np.exp(np.log(te["hazard_ratio"]) * w.fidelity / w.mean_f)
        hr = np.where(w.treated, scaled, hr)
    w.hr = hr
    d_treat = np.where(w.treated, w.delay, 0).astype(float)  # the effect starts at enrolment
    horizon = w.extract_end - w.anchor
    y0, y1 = np.zeros(n, bool), np.zeros(n, bool)
    cum = np.zeros(n)
    active = np.arange(n)
    pid, off, disp, group = [], [], [], []
    while len(active):
        m = len(active)
        cum[active] += rng.exponential(size=m)
        c, lam_a = cum[active], lam[active]
        t0 = c / lam_a
        split = lam_a * d_treat[active]
        t1 = np.where(c < split, t0, d_treat[active] + (c - split) / (lam_a * hr[active]))
        lag = np.where(
            rng.random(m) < r["long_lag_share"],
            _randint(rng, 150, 450, m),
            1 + rng.gamma(2.0, 35.0, m).astype(np.int64),
        )
        day0 = np.maximum(np.ceil(t0), 1)
        day1 = np.maximum(np.ceil(t1), 1)
        y0[active] |= (day0 <= FOLLOWUP_DAYS) & (day0 + lag <= PROVEN_BY_DAYS)
        y1[active] |= (day1 <= FOLLOWUP_DAYS) & (day1 + lag <= PROVEN_BY_DAYS)
        t_real = np.where(w.treated[active], t1, t0)
        day_real = np.where(w.treated[active], day1, day0).astype(np.int64)
        g = _choice(rng, w.reoffence_share, m)
        rec = (t_real <= horizon[active]) & (w.anchor[active] + day_real + lag <= w.extract_end)
        pid.append(active[rec])
        off.append(w.anchor[active[rec]] + day_real[rec])
        disp.append(w.anchor[active[rec]] + day_real[rec] + lag[rec])
        group.append(g[rec])
        active = active[(t_real < horizon[active]) | (np.minimum(t0, t1) <= FOLLOWUP_DAYS)]
    w.y0, w.y1 = y0, y1
    w.re_pid, w.re_off = np.concatenate(pid), np.concatenate(off)
    w.re_disp, w.re_group = np.concatenate(disp), np.concatenate(group)


def _breaches(w: _World, cfg: dict, rng) -> None:
    """Breach offences while the index event runs (recorded, never a proven re-offence)."""
    stop = np.minimum(w.events["end"][: w.n], w.extract_end)
    rate = cfg["reoffending"]["breaches_per_year"] * np.exp(-0.5 * w.engagement) / 365.0
    n_b = rng.poisson(rate * np.maximum(stop - w.anchor, 0))
    bp = np.repeat(np.arange(w.n), n_b)
    off = w.anchor[bp] + _randint(rng, 1, np.maximum(stop[bp] - w.anchor[bp], 1))
    disp = off + _randint(rng, 14, 120, len(bp))
    keep = disp <= w.extract_end
    w.b_pid, w.b_off, w.b_disp = bp[keep], off[keep], disp[keep]


def _convictions(w: _World, rng) -> None:
    """All recorded convictions (history, events, re-offences, breaches) with their codes."""
    n_hist_rows = len(w.h_pid)
    w.c_pid = np.concatenate([w.h_pid, w.events["pid"], w.re_pid, w.b_pid]).astype(np.int32)
    w.c_off = np.concatenate([w.h_off, w.e_off, w.re_off, w.b_off]).astype(np.int32)
    w.c_disp = np.concatenate([w.h_disp, w.e_disp, w.re_disp, w.b_disp]).astype(np.int32)
    w.c_group = np.concatenate(
        [w.h_group, w.events["group"], w.re_group, np.full(len(w.b_pid), w.breach, np.int16)]
    ).astype(np.int16)
    for name in ("h_pid", "h_off", "h_disp", "h_group", "re_pid", "re_off", "re_disp"):
        delattr(w, name)
    for name in ("re_group", "b_pid", "b_off", "b_disp", "e_off", "e_disp"):
        delattr(w, name)
    n_c = len(w.c_pid)
    disp_codes = codes("convictions", "disposal_type")
    custody = rng.random(n_c) < _expit(-1.6 + 0.5 * w.z[w.c_pid] + w.group_custody[w.c_group])
    other = np.array([disp_codes.index(k) for k in _NON_CUSTODY], dtype=np.int16)[
        _choice(rng, _NON_CUSTODY.values(), n_c)
    ]
    w.c_dtype = np.where(custody, disp_codes.index("custody"), other).astype(np.int16)
    w.c_dtype[n_hist_rows : n_hist_rows + w.n_ev] = w.ev_disp_type
    w.c_sev = _rowwise_choice(rng, w.group_sev, w.c_group)
    # two convictions identical in every column would be one exact duplicate row for the
    # cleaning stage (which drops them) and spoil the planted duplicate count: keep one
    keep = ~_identical_rows(
        (w.c_pid.astype(np.int64) << 34)
        | ((w.c_off.astype(np.int64) + 40_000) << 17)
        | (w.c_disp.astype(np.int64) + 40_000),
        w.c_group.astype(np.int64) * 64 + w.c_dtype * 4 + w.c_sev,
    )
    if not keep.all():
        for name in ("c_pid", "c_off", "c_disp", "c_group", "c_dtype", "c_sev"):
            setattr(w, name, getattr(w, name)[keep])


def _identical_rows(key: np.ndarray, key2: np.ndarray) -> np.ndarray:
    """Rows whose (key, key2) repeats an earlier row's (True for every repeat, not the first)."""
    order = np.argsort(key, kind="stable")
    same = key[order][1:] == key[order][:-1]
    out = np.zeros(len(key), bool)
    if same.any():
        rows = np.unique(np.concatenate([order[1:][same], order[:-1][same]]))
        frame = pd.DataFrame({"a": key[rows], "b": key2[rows]})
        out[rows[frame.duplicated(keep="first").to_numpy()]] = True
    return out


def _assessments(w: _World, cfg: dict, rng) -> None:
    """0-2 OASys assessments per person; OGRS3 from the convictions proven by then."""
    a, n = cfg["assessments"], w.n
    n_a = _choice(rng, [a["share_none"], 1 - a["share_none"] - a["share_two"], a["share_two"]], n)
    after = rng.random(n) < a["share_first_after_index"]
    first = np.where(after, w.anchor + _randint(rng, 0, 45, n), w.anchor - _randint(rng, 1, 90, n))
    second = first + _randint(rng, 90, 300, n)
    pid = np.concatenate([np.flatnonzero(n_a >= 1), np.flatnonzero(n_a >= 2)])
    day = np.concatenate([first[n_a >= 1], second[n_a >= 2]])
    ok = day <= w.extract_end
    pid, day = pid[ok], day[ok]
    # sanctions proven by each assessment date: one sorted key (person, disposal day)
    key = w.c_pid.astype(np.int64) * (1 << 20) + (w.c_disp + 40_000)
    key.sort()
    lo = np.searchsorted(key, pid.astype(np.int64) * (1 << 20), side="left")
    hi = np.searchsorted(key, pid.astype(np.int64) * (1 << 20) + (day + 40_000), side="right")
    del key
    o = cfg["ogrs3"]
    y = _ogrs_logit(
        o,
        (day - w.dob[pid]) / 365.25,
        w.male[pid],
        hi - lo,
        w.age_first_sanction[pid],
        w.group_ogrs[w.ev_group[pid]],
    )
    w.a_pid, w.a_day = pid, day
    w.ogrs2 = np.round(100 * _expit(y), 1)
    w.ogrs1 = np.round(100 * _expit(y + o["one_year_offset"]), 1)
    w.needs = {}
    for name, (b0, bz, be) in _NEEDS.items():
        p = _expit(b0 + bz * w.z[pid] + be * w.engagement[pid])
        val = (rng.random(len(pid)) < p).astype(np.int8)
        val[rng.random(len(pid)) < a["need_missing"]] = -1
        w.needs[name] = val


def _pilot_records(w: _World, rng) -> None:
    """Enrolments (with exits), plans, enabling-fund awards and activities of the treated.

    Every record's completeness rises with the person's fidelity f.
    """
    tp, m = w.tp, len(w.tp)
    f = w.fidelity[tp]
    enrol = w.enrol_day[tp]
    ev_end = w.events["end"][tp]
    other_cm = w.office[tp].astype(np.int64) * w.k_cm + rng.integers(0, w.k_cm, m)
    w.t_cm = np.where(rng.random(m) < 0.95, w.ev_cm[tp], other_cm)
    withdrew = rng.random(m) < 0.35 * (1.0 - f)
    completion = enrol + _randint(rng, 270, 450, m)
    codes_exit = codes("enrolments", "exit_reason")
    exit_day = np.where(withdrew, enrol + _randint(rng, 30, 240, m), np.minimum(completion, ev_end))
    reason = np.where(
        withdrew,
        codes_exit.index("withdrew"),
        np.where(
            ev_end < completion, codes_exit.index("order_ended"), codes_exit.index("completed")
        ),
    )
    u = rng.random(m)
    transferred = ~withdrew & (u < 0.04)
    exit_day = np.where(transferred, enrol + _randint(rng, 30, 300, m), exit_day)
    reason = np.where(transferred, codes_exit.index("transferred"), reason)
    reason = np.where(~withdrew & ~transferred & (u > 0.98), codes_exit.index("other"), reason)
    still = exit_day > w.extract_end
    w.exit_day = np.where(still, NA, exit_day)
    w.exit_reason = np.where(still, -1, reason).astype(np.int16)
    end = np.where(still, w.extract_end, exit_day)  # end of the enrolled period
    w.enrol_end = end

    # plans: made within 28 days, co-signed, strengths, goals, reviews every 91 days
    has_plan = rng.random(m) < 0.55 + 0.45 * f
    on_time = rng.random(m) < 0.25 + 0.70 * f
    created = enrol + np.where(on_time, _randint(rng, 0, 28, m), _randint(rng, 29, 120, m))
    w.plan_rows = np.flatnonzero(has_plan & (created <= end))
    w.created = created
    w.co_signed = rng.random(m) < 0.2 + 0.75 * f
    w.n_strengths = rng.poisson(0.3 + 3.5 * f)
    w.n_goals = rng.poisson(0.2 + 3.0 * f)
    span = end - created
    reviewed = rng.random(m) < 0.15 + 0.80 * f
    last_on_time = np.maximum(end - _randint(rng, 0, 90, m), created + 1)
    late = created + _randint(rng, 1, np.maximum(span - 92, 1))
    w.last_rev = np.where(
        reviewed,
        np.where(span >= 1, last_on_time, NA),
        np.where((span > 92) & (rng.random(m) < 0.5), late, NA),
    )

    # enabling fund
    awarded = rng.random(m) < 0.15 + 0.60 * f
    n_awards = np.where(awarded, 1 + rng.poisson(0.4, m), 0)
    fp = np.repeat(np.arange(m), n_awards)
    day = enrol[fp] + np.floor(rng.random(len(fp)) * (end[fp] - enrol[fp] + 1)).astype(np.int64)
    amount = np.round(np.clip(rng.lognormal(np.log(80.0), 0.6, len(fp)), 10, 500), 2)
    purpose = _choice(rng, _PURPOSE.values(), len(fp))
    order = np.lexsort((fp, day))
    w.fund = {"t": fp[order], "day": day[order], "amount": amount[order], "purpose": purpose[order]}

    # activities
    ap = np.repeat(np.arange(m), rng.poisson(0.5 + 7.0 * f))
    day = enrol[ap] + np.floor(rng.random(len(ap)) * (end[ap] - enrol[ap] + 1)).astype(np.int64)
    kind = _choice(rng, _ACTIVITY.values(), len(ap))
    attended = rng.random(len(ap)) < 0.35 + 0.60 * f[ap]
    order = np.lexsort((ap, day))
    w.activity = {
        "t": ap[order],
        "day": day[order],
        "type": kind[order],
        "attended": attended[order],
    }


def _choose_impossible_events(w: _World, cfg: dict, rng) -> None:
    """Non-index events that will get end_date < start_date (chosen before contacts: they get none)."""
    want = mess_amount(cfg, "impossible_dates", "supervision")
    pool = np.flatnonzero(~w.events["is_index"] & (w.events["end"] <= w.extract_end))
    w.imp_rows = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))


def _contacts(w: _World, cfg: dict, rng) -> None:
    """Contacts from each event's start for up to `contacts.months` months, with attendance."""
    cc, ev = cfg["contacts"], w.events
    ev_pid = ev["pid"]
    ev_f = np.where(ev["is_index"] & w.treated[ev_pid], w.fidelity[ev_pid], np.nan)
    months = np.round(cc["months"] * DAYS_PER_MONTH).astype(np.int64)
    recorded_to = ev["start"] + months
    # the index event of a treated person: contacts recorded through the enrolment too
    recorded_to[w.tp] = np.maximum(recorded_to[w.tp], w.enrol_end)
    w_end = np.minimum(np.minimum(ev["end"], recorded_to), w.extract_end)
    w_len = np.maximum(w_end - ev["start"], 0)
    rate = np.where(
        np.isnan(ev_f),
        cc["comparator_per_month"],
        cc["treated_per_month"] * (0.3 + 1.2 * np.nan_to_num(ev_f)),
    )
    n_contacts = rng.poisson(rate * w_len / DAYS_PER_MONTH)
    n_contacts[w.imp_rows] = 0
    ce = np.repeat(np.arange(w.n_ev, dtype=np.int32), n_contacts)
    day = (ev["start"][ce] + np.floor(rng.random(len(ce)) * (w_len[ce] + 1))).astype(np.int32)
    order = np.argsort((day.astype(np.int64) + 40_000) * (1 << 32) + ce, kind="stable")
    ce, day = ce[order], day[order]
    del order
    pid = ev_pid[ce].astype(np.int32)
    f = ev_f[ce]
    boost = np.where(~np.isnan(f) & (day >= w.enrol_day[pid]), 2.0 * (np.nan_to_num(f) - 0.5), 0.0)
    del f
    attended = rng.random(len(ce)) < _expit(1.1 + 0.8 * w.engagement[pid] + boost)
    del boost
    outcome_codes = codes("contacts", "outcome")
    not_att = np.array([outcome_codes.index(k) for k in _NOT_ATTENDED], dtype=np.int16)[
        _choice(rng, _NOT_ATTENDED.values(), len(ce))
    ]
    w.con_outcome = np.where(attended, outcome_codes.index("attended"), not_att).astype(np.int16)
    del attended, not_att
    w.con_type = _choice(rng, _CONTACT_TYPE.values(), len(ce))
    ev_office = ev["cm"] // w.k_cm
    w.con_cm = np.where(
        rng.random(len(ce)) < 0.9,
        ev["cm"][ce],
        ev_office[ce] * w.k_cm + rng.integers(0, w.k_cm, len(ce)),
    ).astype(np.int32)
    w.con_event, w.con_day, w.con_pid = ce, day, pid


def _plant_quirks(w: _World, cfg: dict, rng) -> None:
    """The data-level quirks of the mess agreement, on rows where they cannot touch the truth."""
    ev = w.events
    ev_end = ev["end"].copy()
    imp = w.imp_rows
    ev_end[imp] = ev["start"][imp] - _randint(rng, 1, 120, len(imp))
    w.ev_end = np.where(ev_end > w.extract_end, NA, ev_end)  # blank while still running

    want = mess_amount(cfg, "disposal_before_offence", "convictions")
    pool = np.flatnonzero((w.c_off < _day("2016-01-01")) & (w.c_disp > w.c_off))
    swap = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))
    w.c_off[swap], w.c_disp[swap] = w.c_disp[swap].copy(), w.c_off[swap].copy()
    w.swap_rows = swap

    want = mess_amount(cfg, "contacts_after_order_end", "contacts")
    end_c = ev_end[w.con_event]
    movable = (w.ev_end[w.con_event] != NA) & (end_c <= w.extract_end - 60)
    pool = np.flatnonzero(movable & (end_c >= ev["start"][w.con_event]))
    moved = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))
    w.con_day[moved] = end_c[moved] + _randint(rng, 1, 60, len(moved))
    w.moved_rows = moved

    w.n_orph = mess_amount(cfg, "orphan_enrolments", "enrolments")
    pilot_staff = np.flatnonzero(w.at_pilot)
    w.orph_enrol = _randint(rng, w.pilot_start, w.pilot_end, w.n_orph)
    w.orph_cm = pilot_staff[rng.integers(0, len(pilot_staff), w.n_orph)]
    w.quirk_counts = {
        "supervision": {"impossible_dates": len(imp)},
        "convictions": {"disposal_before_offence": len(swap)},
        "contacts": {"contacts_after_order_end": len(moved)},
        "enrolments": {"orphan_enrolments": w.n_orph},
    }


def _tables(w: _World, rng) -> dict:
    """Identifiers, row order and the column arrays of each extract (rendered later)."""
    n, ev = w.n, w.events
    crn = _crns(n + w.n_orph)
    w.crn = crn
    person_order = rng.permutation(n)
    rank = np.empty(n, np.int64)
    rank[person_order] = np.arange(n)
    staff_id = _ids("CM", np.arange(1, w.n_staff + 1), 4)
    first_year = np.floor((w.dob + np.round(w.age_first * 365.25)) / 365.25) + 1970
    pnc = pc.binary_join_element_wise(
        pc.utf8_lpad(pc.cast(pa.array(first_year.astype(np.int64) % 100), pa.string()), 2, "0"),
        pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 10_000_000, n)), pa.string()), 7, "0"),
        "/",
    )
    letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))[rng.integers(0, 24, n)]
    pnc = pc.binary_join_element_wise(pnc, pa.array(letters), "")
    pnc = pc.if_else(pa.array(rng.random(n) < 0.02), pa.nulls(n, pa.string()), pnc)

    eo = np.lexsort((rank[ev["pid"]], ev["start"]))
    ev_number = np.empty(w.n_ev, np.int64)
    ev_number[eo] = np.arange(1, w.n_ev + 1)
    event_id = _ids("E", ev_number, 8)
    offices = pa.array(w.offices)

    def code(col, extract, column):
        return ("code", np.asarray(col, dtype=np.int16), codes(extract, column))

    def date(col):
        return ("date", np.asarray(col, dtype=np.int32))

    def mask(size, rows):
        out = np.zeros(size, bool)
        out[rows] = True
        return out

    tables = {}
    po = person_order
    tables["people"] = {
        "columns": {
            "crn": ("ref", po, crn),
            "pnc_id": ("ref", po, pnc),
            "date_of_birth": date(w.dob[po]),
            "sex": code(np.where(w.male[po], 0, 1), "people", "sex"),
            "ethnicity": code(w.eth[po], "people", "ethnicity"),
        },
        "quirk": np.zeros(n, bool),
    }
    tables["supervision"] = {
        "columns": {
            "event_id": ("ref", eo, event_id),
            "crn": ("ref", ev["pid"][eo], crn),
            "sentence_type": code(ev["st"][eo], "supervision", "sentence_type"),
            "start_date": date(ev["start"][eo]),
            "end_date": date(w.ev_end[eo]),
            "index_offence_group": code(ev["group"][eo], "supervision", "index_offence_group"),
            "rosh": code(ev["rosh"][eo], "supervision", "rosh"),
            "office": ("ref", ev["cm"][eo] // w.k_cm, offices),
            "case_manager_id": ("ref", ev["cm"][eo], staff_id),
        },
        "quirk": mask(w.n_ev, w.imp_rows)[eo],
    }
    ao = np.lexsort((w.a_day, rank[w.a_pid]))
    cols = {
        "crn": ("ref", w.a_pid[ao], crn),
        "assessment_date": date(w.a_day[ao]),
        "ogrs3_1yr": ("num", w.ogrs1[ao]),
        "ogrs3_2yr": ("num", w.ogrs2[ao]),
    }
    for name, val in w.needs.items():
        cols[name] = ("flag", val[ao], ("1", "0"))
    tables["assessments"] = {"columns": cols, "quirk": np.zeros(len(ao), bool)}

    co = np.argsort(rank[w.c_pid] * (1 << 18) + (w.c_off + 40_000), kind="stable")
    quirk = mask(len(co), w.swap_rows)[co]
    cols = {}
    for col, arr in (("crn", "c_pid"), ("offence_date", "c_off"), ("disposal_date", "c_disp")):
        values = getattr(w, arr)[co]
        delattr(w, arr)
        cols[col] = ("ref", values, crn) if col == "crn" else date(values)
    for col, arr in (
        ("offence_group", "c_group"),
        ("disposal_type", "c_dtype"),
        ("severity", "c_sev"),
    ):
        cols[col] = code(getattr(w, arr)[co], "convictions", col)
        delattr(w, arr)
    tables["convictions"] = {"columns": cols, "quirk": quirk}
    del co

    tables["contacts"] = {
        "columns": {
            "contact_id": ("seq", "C", 9),
            "crn": ("ref", w.con_pid, crn),
            "event_id": ("ref", w.con_event, event_id),
            "contact_date": date(w.con_day),
            "contact_type": code(w.con_type, "contacts", "contact_type"),
            "outcome": code(w.con_outcome, "contacts", "outcome"),
            "case_manager_id": ("ref", w.con_cm, staff_id),
        },
        "quirk": mask(len(w.con_day), w.moved_rows),
    }

    tp = w.tp
    to = np.argsort(rank[tp], kind="stable")
    n_orph = w.n_orph
    tables["enrolments"] = {
        "columns": {
            "crn": ("ref", np.concatenate([tp[to], np.arange(n, n + n_orph)]), crn),
            "enrolment_date": date(np.concatenate([w.enrol_day[tp][to], w.orph_enrol])),
            "case_manager_id": ("ref", np.concatenate([w.t_cm[to], w.orph_cm]), staff_id),
            "exit_date": date(np.concatenate([w.exit_day[to], np.full(n_orph, NA)])),
            "exit_reason": code(
                np.concatenate([w.exit_reason[to], np.full(n_orph, -1)]),
                "enrolments",
                "exit_reason",
            ),
        },
        "quirk": np.concatenate([np.zeros(len(tp), bool), np.ones(n_orph, bool)]),
    }
    pr = w.plan_rows[np.argsort(rank[tp[w.plan_rows]], kind="stable")]
    pr = pr[np.argsort(w.created[pr], kind="stable")]
    tables["plans"] = {
        "columns": {
            "plan_id": ("seq", "P", 6),
            "crn": ("ref", tp[pr], crn),
            "created_date": date(w.created[pr]),
            "co_signed": ("flag", w.co_signed[pr].astype(np.int8), ("Y", "N")),
            "n_strengths": ("num", w.n_strengths[pr]),
            "n_goals_own_words": ("num", w.n_goals[pr]),
            "last_reviewed_date": date(w.last_rev[pr]),
        },
        "quirk": np.zeros(len(pr), bool),
    }
    fund = w.fund
    tables["enabling_fund"] = {
        "columns": {
            "award_id": ("seq", "F", 6),
            "crn": ("ref", tp[fund["t"]], crn),
            "award_date": date(fund["day"]),
            "amount_gbp": ("num", fund["amount"]),
            "purpose": code(fund["purpose"], "enabling_fund", "purpose"),
        },
        "quirk": np.zeros(len(fund["t"]), bool),
    }
    act = w.activity
    tables["activities"] = {
        "columns": {
            "activity_id": ("seq", "A", 7),
            "crn": ("ref", tp[act["t"]], crn),
            "activity_date": date(act["day"]),
            "activity_type": code(act["type"], "activities", "activity_type"),
            "attended": ("flag", act["attended"].astype(np.int8), ("true", "false")),
        },
        "quirk": np.zeros(len(act["t"]), bool),
    }
    tables["staff"] = {
        "columns": {
            "case_manager_id": ("str", staff_id),
            "office": ("ref", w.staff_office, offices),
            "grade": code(w.staff_grade, "staff", "grade"),
            "trained_date": date(w.trained_day),
            "action_learning_sets_attended": ("num", w.als),
        },
        "quirk": np.zeros(w.n_staff, bool),
    }
    for name in EXTRACTS:
        assert list(tables[name]["columns"]) == list(extract_schema(name)["columns"]), name
    return tables


def _truth(w: _World, cfg: dict, seed: int) -> dict:
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
        return float(100 * _expit(w.y_index[sel] + o["one_year_offset"]).mean())

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


def _potential_outcomes_frame(w: _World) -> pd.DataFrame:
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
