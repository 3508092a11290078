"""Offending during supervision: before the planned enrolment, what it prevents, and after.

Steps 4 and 7 of the model (steps 5 and 6, selection and fidelity, are in
:mod:`~mydirection.synthetic.world`):

4. **Offending before the planned enrolment date, and what it prevents.** Everyone has a
   true risk (OGRS3 1-year logit at the index date + noise - engagement effect + hidden
   trait) and a constant daily hazard ``lam`` from it (so P(offence within a year) is the
   true 1-year risk). Offences from the start of the index event to the planned
   enrolment date (times in (0, delay)) are drawn first: treatment starts at enrolment,
   so they are the same under Y(0) and Y(1). Breach offences (recorded, never a proven
   re-offence) are drawn for the whole index event. Each of these, on or after the start
   of the index event and before the planned enrolment date, prevents enrolment when its
   mechanism is on (``enrolment_prevention``): a proven re-offence (a non-breach offence
   committed then that appears in the convictions), a custodial disposal (of a
   re-offence or a breach), a recall of the index licence (drawn with the events).
7. **Re-offending from the planned enrolment date, both potential outcomes.** The same
   Poisson process carries on from the planned enrolment date (a fresh sequence of unit
   exponentials: the process is memoryless). Under treatment the hazard is multiplied by
   the hazard ratio (``true_effect``) from the enrolment date on. The same unit
   exponentials, conviction lags, offence groups and disposals drive Y(0) and Y(1)
   (coupled randomness), so each sample ATT is exact. Treated people realise Y(1),
   everyone else Y(0). Both potential outcomes are kept for two follow-up windows: from
   the start of the index event (the ``event_start`` index-date design) and, for the
   treated, from the enrolment date.

An offence at continuous time t (days after the start of the index event) is on day
max(ceil(t), 1), so an offence before the enrolment can fall on the enrolment day itself
(it prevents nothing: the window ends the day before); it is proven in a window when its
disposal (offence day + conviction lag) falls within the window's 365 + 182 days, and
recorded in the convictions when the disposal is by the extract end date.
"""

from __future__ import annotations

import numpy as np

from mydirection.synthetic.common import (
    FOLLOWUP_DAYS,
    NEVER,
    PROVEN_BY_DAYS,
    World,
    choice,
    disposal_types,
    expit,
    randint,
    rowwise_choice,
)

#: Reasons a planned enrolment is prevented (codes 1, 2, 3 of ``World.prevented_by``).
PREVENTION_KINDS = ("reoffence", "custody", "recall")


def _lags(rng, m: int, long_share: float) -> np.ndarray:
    """Conviction lags (days from offence to disposal) of ``m`` offences."""
    return np.where(
        rng.random(m) < long_share,
        randint(rng, 150, 450, m),
        1 + rng.gamma(2.0, 35.0, m).astype(np.int64),
    )


def _offence_days(t: np.ndarray) -> np.ndarray:
    return np.maximum(np.ceil(t), 1).astype(np.int64)


def before_enrolment(w: World, cfg: dict, rng) -> None:
    """True risk of everyone, and their offences before the planned enrolment date."""
    r, n = cfg["reoffending"], w.n
    true_logit = (
        w.y_index
        + cfg["ogrs3"]["one_year_offset"]
        + rng.normal(0.0, r["risk_noise_sd"], n)
        - r["engagement_effect"] * w.engagement
        + cfg["hidden_confounding"]["strength"] * w.hidden
    )
    w.lam = -np.log1p(-expit(true_logit)) / 365.0
    delay = w.delay.astype(float)
    cum = np.zeros(n)
    active = np.flatnonzero(w.delay > 0)
    pid, days, lags, groups = [], [], [], []
    with np.errstate(divide="ignore"):
        while len(active):
            cum[active] += rng.exponential(size=len(active))
            t = cum[active] / w.lam[active]
            inside = t < delay[active]
            active, t = active[inside], t[inside]
            m = len(active)
            pid.append(active)
            days.append(_offence_days(t))
            lags.append(_lags(rng, m, r["long_lag_share"]))
            groups.append(choice(rng, w.reoffence_share, m))
    pid = np.concatenate([np.zeros(0, np.int64), *pid])
    offence = w.anchor[pid] + np.concatenate([np.zeros(0, np.int64), *days])
    lag = np.concatenate([np.zeros(0, np.int64), *lags])
    group = np.concatenate([np.zeros(0, np.int16), *groups])
    recorded = offence + lag <= w.extract_end
    w.early = {
        "pid": pid,
        "off": offence,
        "lag": lag,
        "group": group,
        "recorded": recorded,
        "dtype": disposal_types(rng, w, pid, group),
        "sev": rowwise_choice(rng, w.group_sev, group),
    }


def breaches(w: World, cfg: dict, rng) -> None:
    """Breach offences while the index event runs (recorded, never a proven re-offence)."""
    stop = np.minimum(w.events["end"][: w.n], w.extract_end)
    rate = cfg["reoffending"]["breaches_per_year"] * np.exp(-0.5 * w.engagement) / 365.0
    n_b = rng.poisson(rate * np.maximum(stop - w.anchor, 0))
    bp = np.repeat(np.arange(w.n), n_b)
    off = w.anchor[bp] + randint(rng, 1, np.maximum(stop[bp] - w.anchor[bp], 1))
    disp = off + randint(rng, 14, 120, len(bp))
    keep = disp <= w.extract_end
    w.b_pid, w.b_off, w.b_disp = bp[keep], off[keep], disp[keep]
    group = np.full(len(w.b_pid), w.breach, np.int16)
    w.b_dtype = disposal_types(rng, w, w.b_pid, group)
    w.b_sev = rowwise_choice(rng, w.group_sev, group)


def preventing_events(w: World, cfg: dict) -> None:
    """The events that prevent each person's planned enrolment (``enrolment_prevention``).

    Sets ``prevented_by`` (0 none, else 1 + the index in :data:`PREVENTION_KINDS` of the
    first event, from the start of the index event to the day before the planned
    enrolment date, of any kind, switched on or not), ``blocked_by`` (the same among the
    kinds switched on) and ``blocked`` (the person cannot be enrolled on the planned date).
    """
    n = w.n
    planned = w.anchor + w.delay
    first = np.full((len(PREVENTION_KINDS), n), NEVER, dtype=np.int64)
    e = w.early
    hit = e["recorded"] & (e["off"] < planned[e["pid"]])
    np.minimum.at(first[0], e["pid"][hit], e["off"][hit])
    disp = e["off"] + e["lag"]
    hit = e["recorded"] & (e["dtype"] == w.custody) & (disp < planned[e["pid"]])
    np.minimum.at(first[1], e["pid"][hit], disp[hit])
    hit = (w.b_dtype == w.custody) & (w.b_disp < planned[w.b_pid])
    np.minimum.at(first[1], w.b_pid[hit], w.b_disp[hit])
    recall = w.events["recall"][:n]
    hit = recall < planned  # NEVER when not recalled
    first[2][hit] = recall[hit]
    w.prevented_by = _first_kind(first)
    on = np.array([cfg["enrolment_prevention"][k] for k in PREVENTION_KINDS])
    w.blocked_by = _first_kind(np.where(on[:, None], first, NEVER))
    w.blocked = w.blocked_by > 0


def _first_kind(first: np.ndarray) -> np.ndarray:
    """Per person (column), 1 + the row of the earliest day (0 if every day is NEVER)."""
    return np.where(first.min(axis=0) < NEVER, first.argmin(axis=0) + 1, 0).astype(np.int8)


def after_enrolment(w: World, cfg: dict, rng) -> None:
    """Offences from the planned enrolment date on, both potential outcomes, both windows.

    Sets ``y0``/``y1`` (window from the start of the index event), ``y0_enrolment``/
    ``y1_enrolment`` (window from the enrolment date; meaningful for the treated) and the
    realised offences ``re_*`` (before and after the planned enrolment date). The treated
    and everyone else draw from two streams of their own, so the records of the people
    never enrolled do not depend on the effect planted in the treated (for a hazard ratio
    up to 1).
    """
    te, n = cfg["true_effect"], w.n
    hr = np.full(n, float(te["hazard_ratio"]))
    if te["depends_on_fidelity"]:
        scaled = np.exp(np.log(te["hazard_ratio"]) * w.fidelity / w.mean_f)
        hr = np.where(w.treated, scaled, hr)
    w.hr = hr
    # the offences before the planned enrolment date count in the window from the start
    e = w.early
    k = e["off"] - w.anchor[e["pid"]]
    proven = (k <= FOLLOWUP_DAYS) & (k + e["lag"] <= PROVEN_BY_DAYS)
    w.y0 = np.zeros(n, bool)
    w.y0[e["pid"][proven]] = True
    w.y1 = w.y0.copy()
    w.y0_enrolment, w.y1_enrolment = np.zeros(n, bool), np.zeros(n, bool)
    rows = {"pid": [e["pid"]], "off": [e["off"]], "disp": [e["off"] + e["lag"]]}
    rows.update(group=[e["group"]], dtype=[e["dtype"]], sev=[e["sev"]])
    keep = [e["recorded"]]
    groups = (np.flatnonzero(w.treated), np.flatnonzero(~w.treated))
    for people, child in zip(groups, rng.spawn(2), strict=True):
        part = _follow(w, cfg["reoffending"]["long_lag_share"], people, child)
        for key, value in part.items():
            rows[key].append(value)
        keep.append(np.ones(len(part["pid"]), bool))
    keep = np.concatenate(keep)
    for key, values in rows.items():
        setattr(w, f"re_{key}", np.concatenate(values)[keep])
    del w.early


def _follow(w: World, long_share: float, active: np.ndarray, rng) -> dict:
    """The offence process of people ``active`` from their planned enrolment date: sets
    their potential outcomes on ``w`` and returns their recorded (realised) offences."""
    d = w.delay.astype(float)
    horizon = w.extract_end - w.anchor
    cum = np.zeros(w.n)
    out = {"pid": [], "off": [], "disp": [], "group": [], "dtype": [], "sev": []}
    while len(active):
        m = len(active)
        cum[active] += rng.exponential(size=m)
        c, lam_a, d_a = cum[active], w.lam[active], d[active]
        with np.errstate(divide="ignore"):
            t0 = d_a + c / lam_a
            t1 = d_a + c / (lam_a * w.hr[active])
        lag = _lags(rng, m, long_share)
        day0, day1 = _offence_days(t0), _offence_days(t1)
        w.y0[active] |= (day0 <= FOLLOWUP_DAYS) & (day0 + lag <= PROVEN_BY_DAYS)
        w.y1[active] |= (day1 <= FOLLOWUP_DAYS) & (day1 + lag <= PROVEN_BY_DAYS)
        k0, k1 = day0 - w.delay[active], day1 - w.delay[active]  # >= 1: after enrolment
        w.y0_enrolment[active] |= (k0 <= FOLLOWUP_DAYS) & (k0 + lag <= PROVEN_BY_DAYS)
        w.y1_enrolment[active] |= (k1 <= FOLLOWUP_DAYS) & (k1 + lag <= PROVEN_BY_DAYS)
        treated = w.treated[active]
        t_real = np.where(treated, t1, t0)
        day_real = np.where(treated, day1, day0)
        g = choice(rng, w.reoffence_share, m)
        dt = disposal_types(rng, w, active, g)  # the same under Y(0) and Y(1), too
        sv = rowwise_choice(rng, w.group_sev, g)
        rec = (t_real <= horizon[active]) & (w.anchor[active] + day_real + lag <= w.extract_end)
        out["pid"].append(active[rec])
        out["off"].append(w.anchor[active[rec]] + day_real[rec])
        out["disp"].append(w.anchor[active[rec]] + day_real[rec] + lag[rec])
        out["group"].append(g[rec])
        out["dtype"].append(dt[rec])
        out["sev"].append(sv[rec])
        followed = np.minimum(t0, t1) <= d_a + FOLLOWUP_DAYS
        active = active[(t_real < horizon[active]) | followed]
    empty = {"pid": np.int64, "off": np.int64, "disp": np.int64}
    return {k: np.concatenate([np.zeros(0, empty.get(k, np.int16)), *v]) for k, v in out.items()}
