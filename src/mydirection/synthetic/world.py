"""The generative model, steps 1-6 (all vectorised with NumPy).

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

:func:`build` runs every step of the model (these, then the records of
:mod:`~mydirection.synthetic.records` and the data-level quirks of
:mod:`~mydirection.synthetic.mess`) on one :class:`~mydirection.synthetic.common.World`.
"""

from __future__ import annotations

import math

import numpy as np

from mydirection.contract import codes
from mydirection.synthetic import mess, records
from mydirection.synthetic.common import (
    DAYS_PER_MONTH,
    FOLLOWUP_DAYS,
    NA,
    OFFENCE,
    PROVEN_BY_DAYS,
    SENTENCE,
    World,
    choice,
    day,
    expit,
    ogrs_logit,
    randint,
    stream_rng,
)

_GRADE = {"pso": 0.45, "po": 0.45, "senior_po": 0.10}


def build(cfg: dict, seed: int) -> World:
    """The clean world, with the data-level quirks planted (steps 1-8 of the model)."""
    w = _setup(cfg)
    _staff(w, cfg, stream_rng(seed, "staff"))
    _people(w, cfg, stream_rng(seed, "people"))
    _events(w, cfg, stream_rng(seed, "events"))
    _histories(w, cfg, stream_rng(seed, "history"))
    _select(w, cfg, stream_rng(seed, "selection"))
    _fidelity(w, cfg, stream_rng(seed, "fidelity"))
    _reoffending(w, cfg, stream_rng(seed, "reoffending"))
    _breaches(w, cfg, stream_rng(seed, "breaches"))
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


def _events(w: World, cfg: dict, rng) -> None:
    """Supervision events: one index event per person, plus earlier non-index events."""
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
    w.events["end"] = w.events["start"] + np.concatenate([length, e_len])
    w.n_ev = len(w.events["pid"])
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


def _reoffending(w: World, cfg: dict, rng) -> None:
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
    lam = -np.log1p(-expit(true_logit)) / 365.0
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
            randint(rng, 150, 450, m),
            1 + rng.gamma(2.0, 35.0, m).astype(np.int64),
        )
        day0 = np.maximum(np.ceil(t0), 1)
        day1 = np.maximum(np.ceil(t1), 1)
        y0[active] |= (day0 <= FOLLOWUP_DAYS) & (day0 + lag <= PROVEN_BY_DAYS)
        y1[active] |= (day1 <= FOLLOWUP_DAYS) & (day1 + lag <= PROVEN_BY_DAYS)
        t_real = np.where(w.treated[active], t1, t0)
        day_real = np.where(w.treated[active], day1, day0).astype(np.int64)
        g = choice(rng, w.reoffence_share, m)
        rec = (t_real <= horizon[active]) & (w.anchor[active] + day_real + lag <= w.extract_end)
        pid.append(active[rec])
        off.append(w.anchor[active[rec]] + day_real[rec])
        disp.append(w.anchor[active[rec]] + day_real[rec] + lag[rec])
        group.append(g[rec])
        active = active[(t_real < horizon[active]) | (np.minimum(t0, t1) <= FOLLOWUP_DAYS)]
    w.y0, w.y1 = y0, y1
    w.re_pid, w.re_off = np.concatenate(pid), np.concatenate(off)
    w.re_disp, w.re_group = np.concatenate(disp), np.concatenate(group)


def _breaches(w: World, cfg: dict, rng) -> None:
    """Breach offences while the index event runs (recorded, never a proven re-offence)."""
    stop = np.minimum(w.events["end"][: w.n], w.extract_end)
    rate = cfg["reoffending"]["breaches_per_year"] * np.exp(-0.5 * w.engagement) / 365.0
    n_b = rng.poisson(rate * np.maximum(stop - w.anchor, 0))
    bp = np.repeat(np.arange(w.n), n_b)
    off = w.anchor[bp] + randint(rng, 1, np.maximum(stop[bp] - w.anchor[bp], 1))
    disp = off + randint(rng, 14, 120, len(bp))
    keep = disp <= w.extract_end
    w.b_pid, w.b_off, w.b_disp = bp[keep], off[keep], disp[keep]
