"""The generative model: people, events, histories, selection, fidelity (vectorised NumPy).

Steps 1-3, 5 and 6 of the model; the offending steps 4 and 7 are in
:mod:`~mydirection.synthetic.offending`, the records (8) in
:mod:`~mydirection.synthetic.records`, the mess (9) in :mod:`~mydirection.synthetic.mess`.

1. **People and events.** Demographics; a latent offending propensity ``z``, engagement
   ``e`` (drives contact attendance, correlated -0.3 with ``z``) and a hidden trait ``u``.
   Each person has an index supervision event at an office (shares in config) starting
   in the pilot year; some also have an earlier event that started before it (a
   non-index event); a configurable few are ineligible (RoSH high/very_high, aged 16-17
   at the start, or only an event that started before the pilot year). A licence may end
   early with a recall to custody (``recall``; rate grows with ``z``). Each person has a
   planned enrolment date: index event start + a delay of 0-``max_enrolment_delay_days``.
2. **Criminal histories.** Age at first offence and a Poisson number of proven offences
   over the criminal career (rate grows with ``z``), plus one conviction per event (its
   index offence; disposal = event start for orders, earlier custody for licences).
   Custody, severity and disposal types depend on offence group and ``z``.
3. **OGRS3.** An OGRS3-like logistic score from sex, age, the Copas rate (sanctions per
   career length) and offence group, recomputed at each assessment from the recorded
   history up to that date (see ``ogrs3`` in the generator schema).
5. **Selection** (after step 4, the offending before the planned enrolment date). Each
   person gets a score: lower OGRS3, fewer previous offences, more engagement and, when
   ``hidden_confounding.strength`` > 0, a lower hidden trait make enrolment likelier,
   plus Gumbel noise. Enrolment goes down the score order within a pool of people at the
   pilot offices; a person whose planned enrolment is prevented (step 4) is passed over
   (``prevented``) and stays in the comparator pool. First the planted
   ``treated_attrition`` (each kind from its own pool: an only order that started before
   the pilot year, RoSH high, under 18 at the start, or an eligible order with the
   planned enrolment after the pilot year and too late for complete follow-up), then the
   rest of the ``n_treated`` from the eligible people whose planned enrolment falls in
   the pilot year. The treated are enrolled on their planned date.
6. **Fidelity.** Treated person i gets f_i = clip(start + case-manager quality + noise -
   decay * (enrolment month - 1), 0, 1); every pilot record's completeness rises with f.

:func:`build` runs every step of the model on one
:class:`~mydirection.synthetic.common.World`.
"""

from __future__ import annotations

import math

import numpy as np

from mydirection.contract import codes
from mydirection.synthetic import mess, offending, records
from mydirection.synthetic.common import (
    DAYS_PER_MONTH,
    NA,
    NEVER,
    NON_CUSTODY,
    OFFENCE,
    PROVEN_BY_DAYS,
    SENTENCE,
    World,
    choice,
    day,
    ogrs_logit,
    randint,
    stream_rng,
)
from mydirection.synthetic.config import ATTRITION_KINDS

_GRADE = {"pso": 0.45, "po": 0.45, "senior_po": 0.10}


def build(cfg: dict, seed: int) -> World:
    """The clean world, with the data-level quirks planted (steps 1-9 of the model)."""
    w = _setup(cfg)
    _staff(w, cfg, stream_rng(seed, "staff"))
    _people(w, cfg, stream_rng(seed, "people"))
    _events(w, cfg, stream_rng(seed, "events"), stream_rng(seed, "recalls"))
    _histories(w, cfg, stream_rng(seed, "history"))
    offending.before_enrolment(w, cfg, stream_rng(seed, "offending_before_enrolment"))
    offending.breaches(w, cfg, stream_rng(seed, "breaches"))
    offending.preventing_events(w, cfg)
    _select(w, cfg, stream_rng(seed, "selection"))
    _fidelity(w, cfg, stream_rng(seed, "fidelity"))
    offending.after_enrolment(w, cfg, stream_rng(seed, "reoffending"))
    records.add_convictions(w, stream_rng(seed, "convictions"))
    records.add_assessments(w, cfg, stream_rng(seed, "assessments"))
    records.add_pilot_records(w, stream_rng(seed, "pilot"))
    quirks = stream_rng(seed, "quirks")
    mess.choose_impossible_events(w, cfg, quirks)
    records.add_contacts(w, cfg, stream_rng(seed, "contacts"))
    mess.plant_quirks(w, cfg, quirks)
    return w


def _setup(cfg: dict) -> World:
    groups = codes("convictions", "offence_group")
    assert groups == list(OFFENCE), "offence groups of the contract changed"
    w = World()
    w.group_share = np.array([OFFENCE[g][0] for g in groups])
    w.group_ogrs = np.array([OFFENCE[g][1] for g in groups])
    w.group_custody = np.array([OFFENCE[g][2] for g in groups])
    w.group_sev = np.array([OFFENCE[g][3] for g in groups])
    w.breach = groups.index("breach")
    disp_codes = codes("convictions", "disposal_type")
    w.custody = disp_codes.index("custody")
    w.non_custody = np.array([disp_codes.index(k) for k in NON_CUSTODY], dtype=np.int16)
    w.reoffence_share = w.group_share.copy()
    w.reoffence_share[w.breach] = 0.0  # re-offences drawn here are never breaches
    w.caseload_start = day(cfg["caseload_start"])
    w.pilot_start = day(cfg["pilot_start"])
    w.pilot_end = day(cfg["pilot_end"])
    w.extract_end = day(cfg["extract_end_date"])
    w.offices = list(cfg["offices"])
    w.pilot_office = np.isin(
        np.arange(len(w.offices)), [w.offices.index(o) for o in cfg["pilot_offices"]]
    )
    w.k_cm = cfg["case_managers_per_office"]
    w.n_staff = len(w.offices) * w.k_cm
    w.n_treat = cfg["n_treated"]
    w.n = w.n_treat + cfg["n_comparator_pool"]
    return w


def _staff(w: World, cfg: dict, rng) -> None:
    """Case managers: office, grade, training (pilot offices), Action Learning Sets, quality."""
    n_staff = w.n_staff
    w.staff_office = np.repeat(np.arange(len(w.offices)), w.k_cm)
    w.staff_grade = choice(rng, _GRADE.values(), n_staff)
    quality = rng.normal(0.0, cfg["fidelity"]["case_manager_sd"], n_staff)
    w.at_pilot = w.pilot_office[w.staff_office]
    trained = np.where(w.at_pilot, rng.random(n_staff) < 0.92, rng.random(n_staff) < 0.04)
    trained_day = np.where(
        w.at_pilot,
        randint(rng, day("2017-10-01"), day("2018-03-31"), n_staff),
        randint(rng, day("2018-06-01"), day("2019-06-30"), n_staff),
    )
    w.trained_day = np.where(trained, trained_day, NA).astype(np.int32)
    sd_q = max(cfg["fidelity"]["case_manager_sd"], 1e-9)
    als = rng.poisson(np.clip(3.0 + 2.0 * quality / sd_q, 0.2, None))
    w.als = np.where(trained & w.at_pilot, np.minimum(als, 10), 0).astype(np.int64)
    w.quality = quality - 0.15 * ~trained  # untrained case managers deliver less


def _people(w: World, cfg: dict, rng) -> None:
    """Demographics, latent traits, eligibility, index event start, enrolment delay."""
    n = w.n
    w.male = rng.random(n) < cfg["share_male"]
    eth_codes = codes("people", "ethnicity")
    w.eth = np.array([eth_codes.index(k) for k in cfg["ethnicity"]], dtype=np.int16)[
        choice(rng, cfg["ethnicity"].values(), n)
    ]
    w.office = choice(rng, cfg["offices"].values(), n)
    ine = cfg["ineligible"]
    # 0 eligible, 1 rosh_high, 2 under_18, 3 pre_2018_only
    w.inelig = choice(
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
        randint(rng, w.caseload_start, w.pilot_start - 1, n),
        randint(rng, w.pilot_start, w.pilot_end, n),
    ).astype(np.int64)
    w.dob = w.anchor - np.round(age * 365.25).astype(np.int64)
    w.delay = randint(rng, 0, cfg["max_enrolment_delay_days"], n)


def _events(w: World, cfg: dict, rng, recalls) -> None:
    """Supervision events: one index event per person, plus earlier non-index events.

    A licence may end early with a recall to custody (``recall``; drawn from ``recalls``).
    """
    n = w.n
    sent_types = list(SENTENCE)
    lo_m = np.array([SENTENCE[s][1][0] for s in sent_types])
    hi_m = np.array([SENTENCE[s][1][1] for s in sent_types])

    def attrs(size):
        st = choice(rng, [SENTENCE[s][0] for s in sent_types], size)
        months = randint(rng, lo_m[st], hi_m[st])
        return st, np.round(months * DAYS_PER_MONTH).astype(np.int64)

    st, length = attrs(n)
    rosh_codes = codes("supervision", "rosh")
    rosh = np.where(
        w.inelig == 1,
        np.where(rng.random(n) < 0.85, rosh_codes.index("high"), rosh_codes.index("very_high")),
        np.where(rng.random(n) < 0.4, rosh_codes.index("low"), rosh_codes.index("medium")),
    ).astype(np.int16)
    w.ev_group = choice(rng, w.group_share, n)
    w.ev_cm = w.office.astype(np.int64) * w.k_cm + rng.integers(0, w.k_cm, n)
    w.two = (w.inelig == 0) & (rng.random(n) < cfg["share_two_events"])
    early_pid = np.flatnonzero(w.two)
    n_early = len(early_pid)
    e_st, e_len = attrs(n_early)
    early_start = randint(
        rng, w.caseload_start, np.minimum(w.pilot_start - 1, w.anchor[early_pid] - 30)
    )
    early_cm = w.office[early_pid].astype(np.int64) * w.k_cm + rng.integers(0, w.k_cm, n_early)
    w.events = {
        "pid": np.concatenate([np.arange(n), early_pid]),
        "start": np.concatenate([w.anchor, early_start]),
        "st": np.concatenate([st, e_st]),
        "rosh": np.concatenate([rosh, np.where(rng.random(n_early) < 0.4, 0, 1).astype(np.int16)]),
        "group": np.concatenate([w.ev_group, choice(rng, w.group_share, n_early)]),
        "cm": np.concatenate([w.ev_cm, early_cm]),
        "is_index": np.concatenate([np.ones(n, bool), np.zeros(n_early, bool)]),
    }
    ev = w.events
    ev["end"] = ev["start"] + np.concatenate([length, e_len])
    w.n_ev = len(ev["pid"])
    wait = recalls.exponential(size=w.n_ev)  # unit exponentials
    rate = cfg["recall"]["per_year"] * np.exp(0.5 * w.z[ev["pid"]] - 0.125) / 365.0
    with np.errstate(divide="ignore"):
        offset = np.ceil(wait / rate)  # days from the start (inf: never)
    recalled = (ev["st"] == sent_types.index("licence")) & (offset < ev["end"] - ev["start"])
    ev["recall"] = np.where(
        recalled, ev["start"] + np.where(recalled, offset, 0).astype(np.int64), NEVER
    )
    ev["end"] = np.where(recalled, ev["recall"], ev["end"])
    w.first_event = w.anchor.copy()
    w.first_event[early_pid] = early_start


def _histories(w: World, cfg: dict, rng) -> None:
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
    w.h_group = choice(rng, w.reoffence_share, len(hp))

    # the offence each event was imposed for: disposal at the start of an order, earlier
    # custody for a licence or post-sentence supervision
    sent_types = list(SENTENCE)
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
        [randint(rng, 90, 900, w.n_ev), randint(rng, 30, 180, w.n_ev)],
        0,
    )
    w.e_disp = w.events["start"] - back
    w.e_off = w.e_disp - randint(rng, 20, 300, w.n_ev)

    # OGRS3 at the index date, from the history recorded by then
    first_disp = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_disp, hp, w.h_disp)
    np.minimum.at(first_disp, w.events["pid"], w.e_disp)
    w.age_first_sanction = (first_disp - w.dob) / 365.25
    w.y_index = ogrs_logit(
        cfg["ogrs3"],
        (w.anchor - w.dob) / 365.25,
        w.male,
        w.n_hist + 1 + w.two.astype(np.int64),
        w.age_first_sanction,
        w.group_ogrs[w.ev_group],
    )


def _select(w: World, cfg: dict, rng) -> None:
    """Enrol n_treated people at pilot offices, weighted towards lower risk (step 5).

    Each group of enrolled people (the planted ``treated_attrition`` kinds, then the
    eligible rest) is chosen from its own pool by the same score; a person whose planned
    enrolment is prevented is passed over for the next in score order (``prevented``).
    """
    s = cfg["selection"]

    def zs(x):
        return (x - x.mean()) / (x.std() or 1.0)

    score = (
        s["ogrs3"] * zs(w.y_index)
        + s["previous_offences"] * zs(np.log1p(w.n_hist))
        + s["engagement"] * w.engagement
        - cfg["hidden_confounding"]["strength"] * w.hidden
        + rng.gumbel(size=w.n)
    )
    w.enrol_day = planned = w.anchor + w.delay  # the planned enrolment date
    at_pilot = w.pilot_office[w.office]
    in_year = (planned >= w.pilot_start) & (planned <= w.pilot_end)
    late = (planned > w.pilot_end) & (planned + PROVEN_BY_DAYS > w.extract_end)
    pools = {
        "order_before_window": at_pilot & (w.inelig == 3) & in_year,
        "rosh_high": at_pilot & (w.inelig == 1) & in_year,
        "under_18": at_pilot & (w.inelig == 2) & in_year,
        "incomplete_followup": at_pilot & (w.inelig == 0) & late & (planned <= w.extract_end),
    }
    blocked = w.blocked
    w.treated = np.zeros(w.n, bool)
    w.prevented = np.zeros(w.n, bool)
    w.attrition = np.zeros(w.n, np.int8)  # 0 none, else 1 + index in ATTRITION_KINDS
    w.attrition_planted = {}
    for code, kind in enumerate(ATTRITION_KINDS, start=1):
        chosen = _enrol(w, score, pools[kind], blocked, cfg["treated_attrition"][kind])
        w.attrition[chosen] = code
        w.attrition_planted[kind] = len(chosen)
    n_main = w.n_treat - sum(w.attrition_planted.values())
    main = at_pilot & (w.inelig == 0) & in_year
    n_cand = int((main & ~blocked).sum())
    if n_cand < n_main * 1.2:
        raise ValueError(
            f"synthetic config: only {n_cand} eligible people at the pilot offices for "
            f"n_treated={w.n_treat}; raise n_comparator_pool or lower n_treated"
        )
    _enrol(w, score, main, blocked, n_main)
    w.tp = np.flatnonzero(w.treated)


def _enrol(w: World, score, pool, blocked, k: int) -> np.ndarray:
    """Enrol the ``k`` people of ``pool`` with the highest score whose enrolment is not
    prevented (``blocked``); those passed over on the way are marked ``prevented``."""
    order = np.flatnonzero(pool)
    order = order[np.argsort(-score[order], kind="stable")]
    free = ~blocked[order]
    reached = np.cumsum(free) - free < k  # fewer than k enrolled before this person
    w.prevented[order[reached & ~free]] = True
    chosen = order[reached & free]
    w.treated[chosen] = True
    return chosen


def _fidelity(w: World, cfg: dict, rng) -> None:
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
