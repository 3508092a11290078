"""The planted mess, step 9 of the model.

9. **Mess** (the agreement with the cleaning stage, listed under "Quirks" in
   ``docs/data-contract.md``; amounts in config ``mess``): data-level
   quirks first (impossible event dates on non-index events, which get no contacts;
   disposal/offence swaps on pre-2016 convictions; contacts moved after their event's
   end; orphan enrolments), then formatting (DD/MM/YYYY dates; stray whitespace and case
   in codes) on rows that carry no data-level quirk, the two kinds on disjoint rows, then
   exact duplicates appended, copied from rows that carry no other mess.

The data-level quirks are planted on the world (:func:`choose_impossible_events`,
:func:`plant_quirks`); the formatting mess and duplicates are chosen per extract when it
is rendered (:func:`plan_mess`).
"""

from __future__ import annotations

import numpy as np

from mydirection.contract import EXTRACTS
from mydirection.synthetic.common import NA, World, day, randint
from mydirection.synthetic.config import MESS_KINDS, mess_amount


def choose_impossible_events(w: World, cfg: dict, rng) -> None:
    """Non-index events that will get end_date < start_date (chosen before contacts: they get none)."""
    want = mess_amount(cfg, "impossible_dates", "supervision")
    pool = np.flatnonzero(~w.events["is_index"] & (w.events["end"] <= w.extract_end))
    w.imp_rows = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))


def plant_quirks(w: World, cfg: dict, rng) -> None:
    """The data-level quirks of the mess agreement, on rows where they cannot touch the truth."""
    ev = w.events
    ev_end = ev["end"].copy()
    imp = w.imp_rows
    ev_end[imp] = ev["start"][imp] - randint(rng, 1, 120, len(imp))
    w.ev_end = np.where(ev_end > w.extract_end, NA, ev_end)  # blank while still running

    want = mess_amount(cfg, "disposal_before_offence", "convictions")
    pool = np.flatnonzero((w.c_off < day("2016-01-01")) & (w.c_disp > w.c_off))
    swap = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))
    w.c_off[swap], w.c_disp[swap] = w.c_disp[swap].copy(), w.c_off[swap].copy()
    w.swap_rows = swap

    want = mess_amount(cfg, "contacts_after_order_end", "contacts")
    end_c = ev_end[w.con_event]
    movable = (w.ev_end[w.con_event] != NA) & (end_c <= w.extract_end - 60)
    pool = np.flatnonzero(movable & (end_c >= ev["start"][w.con_event]))
    moved = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))
    w.con_day[moved] = end_c[moved] + randint(rng, 1, 60, len(moved))
    w.moved_rows = moved

    w.n_orph = mess_amount(cfg, "orphan_enrolments", "enrolments")
    pilot_staff = np.flatnonzero(w.at_pilot)
    w.orph_enrol = randint(rng, w.pilot_start, w.pilot_end, w.n_orph)
    w.orph_cm = pilot_staff[rng.integers(0, len(pilot_staff), w.n_orph)]
    w.quirk_counts = {
        "supervision": {"impossible_dates": len(imp)},
        "convictions": {"disposal_before_offence": len(swap)},
        "contacts": {"contacts_after_order_end": len(moved)},
        "enrolments": {"orphan_enrolments": w.n_orph},
    }


def dmy(days: np.ndarray) -> list[str]:
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


def plan_mess(world: dict, name: str, cfg: dict, seed: int) -> dict:
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
