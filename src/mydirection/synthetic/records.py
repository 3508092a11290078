"""The records, step 8 of the model (after :mod:`~mydirection.synthetic.world`).

8. **Records.** Convictions (history, index offences, re-offences, breaches) with
   disposal types and severity; assessments (0-2 per person, some only after the index
   date; OGRS3 from the convictions proven by then); contacts from each event's start
   (treated people's through their enrolment, more often and better attended with higher
   f; attendance otherwise follows engagement); enrolments with exits, plans,
   enabling-fund awards and activities (all more complete with higher f). Staff with
   training dates and Action Learning Sets (more for better case managers) are drawn
   first, in :mod:`~mydirection.synthetic.world`, as case-manager quality drives fidelity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.contract import codes
from mydirection.synthetic.common import (
    DAYS_PER_MONTH,
    NA,
    World,
    choice,
    disposal_types,
    expit,
    ogrs_logit,
    randint,
    rowwise_choice,
)

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


def add_convictions(w: World, rng) -> None:
    """All recorded convictions (history, events, re-offences, breaches) with their codes.

    Disposal types and severity of re-offences and breaches were drawn with each offence
    (:mod:`~mydirection.synthetic.offending`); those of the history are drawn here, and an
    event's own conviction has the disposal that imposed the event.
    """
    n_before = len(w.h_pid) + w.n_ev
    w.c_pid = np.concatenate([w.h_pid, w.events["pid"], w.re_pid, w.b_pid]).astype(np.int32)
    w.c_off = np.concatenate([w.h_off, w.e_off, w.re_off, w.b_off]).astype(np.int32)
    w.c_disp = np.concatenate([w.h_disp, w.e_disp, w.re_disp, w.b_disp]).astype(np.int32)
    w.c_group = np.concatenate(
        [w.h_group, w.events["group"], w.re_group, np.full(len(w.b_pid), w.breach, np.int16)]
    ).astype(np.int16)
    h_dtype = disposal_types(rng, w, w.h_pid, w.h_group)
    w.c_dtype = np.concatenate([h_dtype, w.ev_disp_type, w.re_dtype, w.b_dtype]).astype(np.int16)
    sev = rowwise_choice(rng, w.group_sev, w.c_group[:n_before])
    w.c_sev = np.concatenate([sev, w.re_sev, w.b_sev]).astype(np.int16)
    for name in ("h_pid", "h_off", "h_disp", "h_group", "re_pid", "re_off", "re_disp"):
        delattr(w, name)
    for name in ("re_group", "re_dtype", "re_sev", "b_pid", "b_off", "b_disp", "b_dtype"):
        delattr(w, name)
    for name in ("b_sev", "e_off", "e_disp"):
        delattr(w, name)
    # two convictions identical in every column would be one exact duplicate row for the
    # cleaning stage (which drops them) and spoil the planted duplicate count: keep one
    keep = ~identical_rows(
        (w.c_pid.astype(np.int64) << 34)
        | ((w.c_off.astype(np.int64) + 40_000) << 17)
        | (w.c_disp.astype(np.int64) + 40_000),
        w.c_group.astype(np.int64) * 64 + w.c_dtype * 4 + w.c_sev,
    )
    if not keep.all():
        for name in ("c_pid", "c_off", "c_disp", "c_group", "c_dtype", "c_sev"):
            setattr(w, name, getattr(w, name)[keep])


def identical_rows(key: np.ndarray, key2: np.ndarray) -> np.ndarray:
    """Rows whose (key, key2) repeats an earlier row's (True for every repeat, not the first)."""
    order = np.argsort(key, kind="stable")
    same = key[order][1:] == key[order][:-1]
    out = np.zeros(len(key), bool)
    if same.any():
        rows = np.unique(np.concatenate([order[1:][same], order[:-1][same]]))
        frame = pd.DataFrame({"a": key[rows], "b": key2[rows]})
        out[rows[frame.duplicated(keep="first").to_numpy()]] = True
    return out


def add_assessments(w: World, cfg: dict, rng) -> None:
    """0-2 OASys assessments per person; OGRS3 from the convictions proven by then."""
    a, n = cfg["assessments"], w.n
    n_a = choice(rng, [a["share_none"], 1 - a["share_none"] - a["share_two"], a["share_two"]], n)
    after = rng.random(n) < a["share_first_after_index"]
    first = np.where(after, w.anchor + randint(rng, 0, 45, n), w.anchor - randint(rng, 1, 90, n))
    second = first + randint(rng, 90, 300, n)
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
    y = ogrs_logit(
        o,
        (day - w.dob[pid]) / 365.25,
        w.male[pid],
        hi - lo,
        w.age_first_sanction[pid],
        w.group_ogrs[w.ev_group[pid]],
    )
    w.a_pid, w.a_day = pid, day
    w.ogrs2 = np.round(100 * expit(y), 1)
    w.ogrs1 = np.round(100 * expit(y + o["one_year_offset"]), 1)
    w.needs = {}
    for name, (b0, bz, be) in _NEEDS.items():
        p = expit(b0 + bz * w.z[pid] + be * w.engagement[pid])
        val = (rng.random(len(pid)) < p).astype(np.int8)
        val[rng.random(len(pid)) < a["need_missing"]] = -1
        w.needs[name] = val


def add_pilot_records(w: World, rng) -> None:
    """Enrolments (with exits), plans, enabling-fund awards and activities of the treated.

    Every record's completeness rises with the person's fidelity f.
    """
    tp, m = w.tp, len(w.tp)
    f = w.fidelity[tp]
    enrol = w.enrol_day[tp]
    # (an index event recalled before the enrolment, only with enrolment_prevention.recall off)
    ev_end = np.maximum(w.events["end"][tp], enrol)
    other_cm = w.office[tp].astype(np.int64) * w.k_cm + rng.integers(0, w.k_cm, m)
    w.t_cm = np.where(rng.random(m) < 0.95, w.ev_cm[tp], other_cm)
    withdrew = rng.random(m) < 0.35 * (1.0 - f)
    completion = enrol + randint(rng, 270, 450, m)
    codes_exit = codes("enrolments", "exit_reason")
    exit_day = np.where(withdrew, enrol + randint(rng, 30, 240, m), np.minimum(completion, ev_end))
    reason = np.where(
        withdrew,
        codes_exit.index("withdrew"),
        np.where(
            ev_end < completion, codes_exit.index("order_ended"), codes_exit.index("completed")
        ),
    )
    u = rng.random(m)
    transferred = ~withdrew & (u < 0.04)
    exit_day = np.where(transferred, enrol + randint(rng, 30, 300, m), exit_day)
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
    created = enrol + np.where(on_time, randint(rng, 0, 28, m), randint(rng, 29, 120, m))
    w.plan_rows = np.flatnonzero(has_plan & (created <= end))
    w.created = created
    w.co_signed = rng.random(m) < 0.2 + 0.75 * f
    w.n_strengths = rng.poisson(0.3 + 3.5 * f)
    w.n_goals = rng.poisson(0.2 + 3.0 * f)
    span = end - created
    reviewed = rng.random(m) < 0.15 + 0.80 * f
    last_on_time = np.maximum(end - randint(rng, 0, 90, m), created + 1)
    late = created + randint(rng, 1, np.maximum(span - 92, 1))
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
    purpose = choice(rng, _PURPOSE.values(), len(fp))
    order = np.lexsort((fp, day))
    w.fund = {"t": fp[order], "day": day[order], "amount": amount[order], "purpose": purpose[order]}

    # activities
    ap = np.repeat(np.arange(m), rng.poisson(0.5 + 7.0 * f))
    day = enrol[ap] + np.floor(rng.random(len(ap)) * (end[ap] - enrol[ap] + 1)).astype(np.int64)
    kind = choice(rng, _ACTIVITY.values(), len(ap))
    attended = rng.random(len(ap)) < 0.35 + 0.60 * f[ap]
    order = np.lexsort((ap, day))
    w.activity = {
        "t": ap[order],
        "day": day[order],
        "type": kind[order],
        "attended": attended[order],
    }


def add_contacts(w: World, cfg: dict, rng) -> None:
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
    attended = rng.random(len(ce)) < expit(1.1 + 0.8 * w.engagement[pid] + boost)
    del boost
    outcome_codes = codes("contacts", "outcome")
    not_att = np.array([outcome_codes.index(k) for k in _NOT_ATTENDED], dtype=np.int16)[
        choice(rng, _NOT_ATTENDED.values(), len(ce))
    ]
    w.con_outcome = np.where(attended, outcome_codes.index("attended"), not_att).astype(np.int16)
    del attended, not_att
    w.con_type = choice(rng, _CONTACT_TYPE.values(), len(ce))
    ev_office = ev["cm"] // w.k_cm
    w.con_cm = np.where(
        rng.random(len(ce)) < 0.9,
        ev["cm"][ce],
        ev_office[ce] * w.k_cm + rng.integers(0, w.k_cm, len(ce)),
    ).astype(np.int32)
    w.con_event, w.con_day, w.con_pid = ce, day, pid
