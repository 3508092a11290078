"""Identifiers, row order and rendering of the extracts; :func:`generate`, :func:`write_extracts`.

The extracts are rendered to CSV text with Arrow, chunk by chunk, so the national scale
(1,000 treated, 1,000,000 comparator pool, about 1.4 GB of CSV) takes about a minute and
1 GB of memory (``benchmarks/bench_synthetic.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mydirection.contract import EXTRACTS, codes, extract_schema
from mydirection.synthetic.common import NA, World, stream_rng
from mydirection.synthetic.config import resolve_config
from mydirection.synthetic.mess import dmy, plan_mess
from mydirection.synthetic.truth import planted_truth, potential_outcomes_frame
from mydirection.synthetic.world import build


class Synthetic(NamedTuple):
    """What :func:`generate` returns.

    ``extracts``: the raw extracts by name, each the text its CSV file holds, mess
    included (:func:`text_frame`: string columns, blanks empty, rows numbered from 1);
    ``truth``: the planted truth (as in truth.json); ``mess``: planted mess counts (as in
    mess.json); ``potential_outcomes``: one row per person with the potential outcomes
    of both index dates (:func:`~mydirection.synthetic.truth.potential_outcomes_frame`;
    for tests and the simulation study only; never written under ``results/``).
    """

    extracts: dict[str, pd.DataFrame]
    truth: dict
    mess: dict
    potential_outcomes: pd.DataFrame


def assemble(cfg: dict, seed: int) -> dict:
    """The world (:func:`~mydirection.synthetic.world.build`) as extract tables, truth, mess."""
    w = build(cfg, seed)
    tables = extract_tables(w, stream_rng(seed, "ids"))
    return {
        "tables": tables,
        "quirk_counts": w.quirk_counts,
        "truth": planted_truth(w, cfg, seed),
        "po": potential_outcomes_frame(w),
    }


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


def extract_tables(w: World, rng) -> dict:
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


def _replace(arr: pa.Array, rows: np.ndarray, chosen: np.ndarray, text_of) -> pa.Array:
    """Replace the values of ``arr`` (holding ``rows``, ascending) at the rows in ``chosen``."""
    if not len(rows) or not len(chosen):
        return arr
    pos = np.searchsorted(rows, chosen)
    pos = pos[(pos < len(rows)) & (rows[np.minimum(pos, len(rows) - 1)] == chosen)]
    if not len(pos):
        return arr
    hit = np.zeros(len(rows), bool)
    hit[pos] = True
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
            arr = _replace(arr, rows, dated, lambda r, d=v[1]: dmy(d[r : r + 1])[0])
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
    plan = plan_mess(world, name, cfg, seed)
    rows = np.arange(len(spec["quirk"]))
    table = _render_rows(spec, plan, rows)
    if len(plan["duplicates"]):
        table = pa.concat_tables([table, _render_rows(spec, plan, plan["duplicates"])])
    return table, plan["counts"]


def _write(world: dict, name: str, cfg: dict, seed: int, path: Path, chunk: int) -> dict:
    """Write one extract to CSV in chunks of rows (bounded memory); return its mess counts."""
    spec = world["tables"][name]
    plan = plan_mess(world, name, cfg, seed)
    n = len(spec["quirk"])
    schema = _render_rows(spec, plan, np.arange(min(n, 1))).schema
    with pacsv.CSVWriter(path, schema) as writer:
        for start in range(0, n, chunk):
            writer.write_table(_render_rows(spec, plan, np.arange(start, min(n, start + chunk))))
        if len(plan["duplicates"]):
            writer.write_table(_render_rows(spec, plan, plan["duplicates"]))
    return plan["counts"]


def text_frame(table: pa.Table) -> pd.DataFrame:
    """A rendered extract as the text of its CSV file, as the cleaning stage reads it.

    Every column is an Arrow-backed string (numbers formatted as the CSV writer formats
    them), blanks are empty strings, and the index numbers the data rows from 1 (the
    frame equals ``mydirection.validate.read_extract(<the written file>).data``).
    """
    columns = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if not pa.types.is_string(col.type):
            col = pc.cast(col, pa.string())
        columns[name] = pc.fill_null(col, "")
    frame = pa.table(columns).to_pandas(types_mapper=pd.ArrowDtype)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


def generate(cfg: dict | None, seed: int, *, extracts: Iterable[str] | None = None) -> Synthetic:
    """Generate the raw extracts in memory, the planted truth and the mess counts.

    ``cfg`` is a (partial) generator config (defaults from the generator schema);
    ``seed`` the master seed; ``extracts`` the names of the extracts to render (default
    all ten; the others are not rendered, which saves time, and the ones rendered do not
    change). Returns :class:`Synthetic` (unpacks as ``extracts, truth, mess,
    potential_outcomes``): each extract is the text its CSV file holds (:func:`text_frame`);
    ``mess`` counts the mess of all ten. No file is written.
    """
    cfg = resolve_config(cfg)
    wanted = EXTRACTS if extracts is None else tuple(extracts)
    unknown = sorted(set(wanted) - set(EXTRACTS))
    if unknown:
        raise ValueError(f"unknown extract(s) {unknown}; known: {', '.join(EXTRACTS)}")
    world = assemble(cfg, seed)
    frames, mess = {}, {}
    for name in EXTRACTS:
        if name in wanted:
            table, mess[name] = _render(world, name, cfg, seed)
            frames[name] = text_frame(table)
        else:
            mess[name] = plan_mess(world, name, cfg, seed)["counts"]
    return Synthetic(frames, world["truth"], mess, world["po"])


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
    world = assemble(cfg, seed)
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
