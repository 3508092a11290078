"""Tests of the synthetic-extract generator against the contract and its planted truth.

Every planted property is checked by recomputing it independently from the CSV text
(the way a downstream stage sees it), not by reading the generator's internals.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mydirection.contract import EXTRACTS, codes, extract_schema
from mydirection.synthetic import (
    MESS_KINDS,
    default_config,
    generate,
    load_config,
    resolve_config,
    write_extracts,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_treated": 40, "n_comparator_pool": 600}
SEED = 20180101
DMY = re.compile(r"^\d{2}/\d{2}/\d{4}$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    write_extracts(out, TINY, SEED)
    return out


@pytest.fixture(scope="module")
def raw(tiny_dir):
    """Each extract as raw text (no NA conversion, no whitespace stripping)."""
    return {
        name: pd.read_csv(tiny_dir / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in EXTRACTS
    }


@pytest.fixture(scope="module")
def moderate():
    return generate({"n_treated": 150, "n_comparator_pool": 3000}, 7)


def parse_dates(col: pd.Series) -> pd.Series:
    """Parse YYYY-MM-DD or DD/MM/YYYY (blank -> NaT); raise on anything else."""
    s = col.str.strip()
    iso = s.str.match(ISO.pattern)
    dmy = s.str.match(DMY.pattern)
    bad = (s != "") & ~iso & ~dmy
    assert not bad.any(), f"unparseable dates: {s[bad].head().tolist()}"
    out = pd.to_datetime(s.where(iso), format="%Y-%m-%d", errors="raise")
    out = out.fillna(pd.to_datetime(s.where(dmy), format="%d/%m/%Y", errors="raise"))
    return out


def strip_mess(raw: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What the cleaning stage does to formatting mess and duplicates (independently)."""
    out = {}
    for name, df in raw.items():
        df = df.drop_duplicates().copy()
        for col, spec in extract_schema(name)["columns"].items():
            if spec["type"] == "code":
                df[col] = df[col].str.strip().str.lower()
            elif spec["type"] == "date":
                df[col] = parse_dates(df[col])
        out[name] = df
    return out


def validate(name: str, df: pd.DataFrame) -> None:
    """Check one (mess-stripped) extract against its contract."""
    schema = extract_schema(name)
    assert list(df.columns) == list(schema["columns"]), name
    for col, spec in schema["columns"].items():
        values = df[col]
        blank = values.isna() if spec["type"] == "date" else values == ""
        if not spec.get("nullable"):
            assert not blank.any(), f"{name}.{col}: blank values in a required column"
        present = values[~blank]
        if spec["type"] == "code":
            bad = set(present) - set(spec["codes"])
            assert not bad, f"{name}.{col}: codes outside the contract {bad}"
        elif spec["type"] == "flag":
            assert set(present) <= {"true", "false", "Y", "N", "1", "0"}, f"{name}.{col}"
        elif spec["type"] in ("score", "amount", "count"):
            num = pd.to_numeric(present, errors="raise")
            if "min" in spec:
                assert (num >= spec["min"]).all(), f"{name}.{col} below min"
            if "max" in spec:
                assert (num <= spec["max"]).all(), f"{name}.{col} above max"
            if spec["type"] == "count":
                assert (num == num.round()).all(), f"{name}.{col} not whole"
        elif spec["type"] == "date":
            assert (present >= pd.Timestamp("1940-01-01")).all()
            assert (present <= pd.Timestamp("2020-06-30")).all(), f"{name}.{col} after extract end"
    if schema.get("key"):
        assert not df.duplicated(schema["key"]).any(), f"{name}: duplicate keys"


# ------------------------------------------------------------------- the contract


def test_every_extract_satisfies_its_contract_once_mess_is_stripped(raw):
    clean = strip_mess(raw)
    for name in EXTRACTS:
        validate(name, clean[name])
        assert len(clean[name]) > 0, name


def test_ids_link_across_files(raw):
    clean = strip_mess(raw)
    people = set(clean["people"].crn)
    for name in ("supervision", "assessments", "convictions", "contacts", "plans"):
        assert set(clean[name].crn) <= people, name
    staff = set(clean["staff"].case_manager_id)
    assert set(clean["supervision"].case_manager_id) <= staff
    assert set(clean["contacts"].case_manager_id) <= staff
    assert set(clean["contacts"].event_id) <= set(clean["supervision"].event_id)
    # every contact's person is the person of its event
    ev = clean["supervision"].set_index("event_id").crn
    assert (clean["contacts"].event_id.map(ev) == clean["contacts"].crn).all()


def test_caseload_shape(raw):
    clean = strip_mess(raw)
    sup = clean["supervision"]
    assert sup.start_date.min() >= pd.Timestamp("2017-07-01")
    assert sup.start_date.max() <= pd.Timestamp("2018-12-31")
    assert sup.office.nunique() >= 6
    assert (sup.office == sup.office.str.lower()).all()
    enr = clean["enrolments"][clean["enrolments"].crn.isin(clean["people"].crn)]
    assert len(enr) == TINY["n_treated"]
    assert enr.enrolment_date.dt.year.eq(2018).all()
    pilot = sup[sup.crn.isin(enr.crn) & (sup.start_date >= "2018-01-01")]
    assert set(pilot.office) <= {"hull_central", "bridlington"}
    # some comparators at the pilot offices (spill-over) and some people with two events
    others = sup[~sup.crn.isin(enr.crn)]
    assert others.office.isin(["hull_central", "bridlington"]).any()
    assert sup.crn.value_counts().max() == 2
    # ineligible cases for the cohort stage: high RoSH, pre-2018 only
    assert sup.rosh.isin(["high", "very_high"]).any()
    first_start = sup.groupby("crn").start_date.max()
    assert (first_start < "2018-01-01").any()
    dob = sup.crn.map(clean["people"].set_index("crn").date_of_birth)
    age = (sup.start_date - dob).dt.days / 365.25
    assert (age < 18).any() and (age >= 16).all()


def test_enrolment_delay_within_60_days_of_an_event_start(raw):
    clean = strip_mess(raw)
    sup = clean["supervision"]
    enr = clean["enrolments"].merge(sup[["crn", "start_date", "office"]], on="crn")
    delay = (enr.enrolment_date - enr.start_date).dt.days
    ok = (delay >= 0) & (delay <= 60)
    assert ok.groupby(enr.crn).any().all()


def test_history_before_index_and_conviction_lags(raw):
    clean = strip_mess(raw)
    conv = clean["convictions"]
    ok = conv.disposal_date >= conv.offence_date
    lag = (conv.disposal_date - conv.offence_date).dt.days[ok]
    assert lag.median() > 20
    assert (lag > 182).mean() > 0.02  # some long lags: the waiting period matters
    assert conv.offence_group.eq("breach").any()
    assert conv.disposal_type.eq("custody").any()
    sup = clean["supervision"]
    index = sup.groupby("crn").start_date.max()
    prior = conv[conv.offence_date < conv.crn.map(index)]
    assert prior.groupby("crn").size().mean() > 2  # criminal histories


# ------------------------------------------------------------------- determinism


def test_same_config_and_seed_give_the_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_extracts(a, TINY, 11)
    write_extracts(b, TINY, 11)
    for name in [*EXTRACTS, "truth", "mess"]:
        ext = "json" if name in ("truth", "mess") else "csv"
        assert (a / f"{name}.{ext}").read_bytes() == (b / f"{name}.{ext}").read_bytes(), name
    chunked = tmp_path / "chunked"
    write_extracts(chunked, TINY, 11, chunk=97)  # chunked writing gives the same bytes
    for name in EXTRACTS:
        assert (a / f"{name}.csv").read_bytes() == (chunked / f"{name}.csv").read_bytes(), name
    c = tmp_path / "c"
    write_extracts(c, TINY, 12)
    assert (a / "people.csv").read_bytes() != (c / "people.csv").read_bytes()


def test_generate_returns_what_write_extracts_writes(tiny_dir, raw):
    extracts, truth, mess, _ = generate(TINY, SEED)
    assert json.loads((tiny_dir / "mess.json").read_text()) == mess
    assert json.loads((tiny_dir / "truth.json").read_text())["sample_att"] == truth["sample_att"]
    for name in EXTRACTS:
        df = extracts[name].astype(str).replace({"<NA>": ""})
        assert len(df) == len(raw[name])
        for col in ("crn",) if "crn" in df else df.columns[:1]:
            assert df[col].tolist() == raw[name][col].tolist()


# ------------------------------------------------------------------- planted truth


def test_selection_on_covariates_treated_are_lower_risk(moderate):
    extracts, truth, _, po = moderate
    ass = extracts["assessments"]
    ogrs = pd.to_numeric(ass.ogrs3_1yr).astype(float)
    treated = set(po.crn[po.treated])
    eligible_pool = set(po.crn[po.eligible & ~po.treated])
    by_person = ogrs.groupby(ass.crn.astype(str)).first()
    t = by_person[by_person.index.isin(treated)].mean()
    c = by_person[by_person.index.isin(eligible_pool)].mean()
    assert t < c - 3, (t, c)
    # fewer previous offences too
    conv = extracts["convictions"]
    n_conv = conv.crn.astype(str).value_counts()
    assert n_conv.reindex(list(treated)).mean() < n_conv.reindex(list(eligible_pool)).mean()


def test_ogrs3_is_consistent_with_history_and_age(moderate):
    extracts = moderate.extracts
    ass = extracts["assessments"].astype(str)
    ass = ass[ass.assessment_date.str.match(ISO.pattern)]
    one, two = ass.ogrs3_1yr.astype(float), ass.ogrs3_2yr.astype(float)
    assert (two > one).all()
    assert one.between(0, 100).all() and 25 < one.mean() < 50
    conv = extracts["convictions"].astype(str)
    conv = conv[conv.disposal_date.str.match(ISO.pattern)]
    # sanctions proven by the assessment date, counted independently per assessment
    by_person = conv.groupby("crn").disposal_date.apply(lambda d: np.sort(d.to_numpy()))
    n_prior = [
        int(np.searchsorted(by_person.get(c, np.array([], dtype=object)), d, side="right"))
        for c, d in zip(ass.crn, ass.assessment_date, strict=True)
    ]
    people = extracts["people"].astype(str).drop_duplicates().set_index("crn")
    dob = pd.to_datetime(ass.crn.map(people.date_of_birth), format="%Y-%m-%d", errors="coerce")
    age = (pd.to_datetime(ass.assessment_date) - dob).dt.days / 365.25
    frame = pd.DataFrame({"ogrs": one, "n": np.log1p(n_prior), "age": age}).dropna()
    assert frame.corr().loc["ogrs", "n"] > 0.3
    # older people with the same history score lower (the age term of OGRS3)
    fit = np.linalg.lstsq(
        np.column_stack([np.ones(len(frame)), frame.n, frame.age]), frame.ogrs, rcond=None
    )[0]
    assert fit[2] < 0


def test_sample_att_equals_mean_difference_of_potential_outcomes(moderate):
    _, truth, _, po = moderate
    t = po[po.treated]
    assert len(t) == truth["n_treated"] == 150
    assert truth["sample_att"] == pytest.approx((t.y1 - t.y0).mean(), abs=1e-12)
    assert truth["treated_mean_y1"] == pytest.approx(t.y1.mean(), abs=1e-12)
    assert truth["treated_mean_y0"] == pytest.approx(t.y0.mean(), abs=1e-12)
    # coupled randomness with HR < 1: treatment never turns a non-offender into an offender
    assert ((t.y1 == 1) & (t.y0 == 0)).sum() == 0


def proven_reoffending(clean: dict[str, pd.DataFrame]) -> pd.Series:
    """The outcomes stage's definition, recomputed from the cleaned text (by crn)."""
    sup = clean["supervision"]
    sup = sup[sup.end_date.isna() | (sup.end_date >= sup.start_date)]
    dob = clean["people"].set_index("crn").date_of_birth
    age = (sup.start_date - sup.crn.map(dob)).dt.days / 365.25
    eligible = (
        sup.start_date.between("2018-01-01", "2018-12-31")
        & sup.rosh.isin(["low", "medium"])
        & (age >= 18)
    )
    index = sup[eligible].groupby("crn").start_date.min()
    conv = clean["convictions"]
    conv = conv[(conv.offence_group != "breach") & conv.crn.isin(index.index)]
    days_off = (conv.offence_date - conv.crn.map(index)).dt.days
    days_disp = (conv.disposal_date - conv.crn.map(index)).dt.days
    proven = (days_off > 0) & (days_off <= 365) & (days_disp <= 547)
    y = proven.groupby(conv.crn).any().reindex(index.index, fill_value=False)
    return y.astype(int)


def test_realised_convictions_reproduce_the_potential_outcomes(raw):
    """Y observed in the CSVs = Y(1) for the treated and Y(0) for everyone else."""
    _, truth, _, po = generate(TINY, SEED)
    y = proven_reoffending(strip_mess(raw))
    po = po[po.eligible].set_index("crn")
    assert set(y.index) == set(po.index)  # eligibility as planted
    realised = np.where(po.treated, po.y1, po.y0)
    assert (y.reindex(po.index).to_numpy() == realised).all()


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    hr=st.sampled_from([0.5, 0.9, 1.0, 1.5]),
    by_fidelity=st.booleans(),
    strength=st.sampled_from([0.0, 1.0]),
)
def test_invariants_hold_for_any_seed_and_effect(tmp_path_factory, seed, hr, by_fidelity, strength):
    """Mess counts and realised outcomes agree with mess.json and the potential outcomes."""
    cfg = {
        "n_treated": 20,
        "n_comparator_pool": 300,
        "true_effect": {"hazard_ratio": hr, "depends_on_fidelity": by_fidelity},
        "hidden_confounding": {"strength": strength},
    }
    out = tmp_path_factory.mktemp("h")
    truth, mess = write_extracts(out, cfg, seed)
    raw = {n: pd.read_csv(out / f"{n}.csv", dtype=str, keep_default_na=False) for n in EXTRACTS}
    assert count_mess(raw) == mess
    po = generate(cfg, seed).potential_outcomes
    t = po[po.treated]
    assert truth["sample_att"] == pytest.approx((t.y1 - t.y0).mean(), abs=1e-12)
    if hr < 1:
        assert (t.y1 <= t.y0).all()
    elif hr > 1:
        assert (t.y1 >= t.y0).all()
    y = proven_reoffending(strip_mess(raw))
    po = po[po.eligible].set_index("crn")
    assert (y.reindex(po.index).to_numpy() == np.where(po.treated, po.y1, po.y0)).all()


def test_no_effect_means_identical_potential_outcomes():
    _, truth, _, po = generate({**TINY, "true_effect": {"hazard_ratio": 1.0}}, 3)
    assert (po.y0 == po.y1).all()
    assert truth["sample_att"] == 0.0


def test_effect_size_moves_the_att_in_the_right_direction():
    strong = generate({**TINY, "true_effect": {"hazard_ratio": 0.3}}, 5).truth
    harmful = generate({**TINY, "true_effect": {"hazard_ratio": 2.0}}, 5).truth
    assert strong["sample_att"] < -0.05
    assert harmful["sample_att"] > 0.05


def test_fidelity_dependent_effect_helps_high_fidelity_people_more():
    cfg = {"n_treated": 150, "n_comparator_pool": 3000}
    cfg["true_effect"] = {"hazard_ratio": 0.5, "depends_on_fidelity": True}
    _, truth, _, po = generate(cfg, 9)
    t = po[po.treated]
    expected = np.exp(np.log(0.5) * t.fidelity / t.fidelity.mean())
    assert np.allclose(t.hazard_ratio, expected)
    assert truth["true_effect"]["depends_on_fidelity"] is True


def test_planted_fidelity_decays_over_2018(moderate):
    extracts, truth, _, po = moderate
    fid = truth["fidelity"]
    assert fid["slope_per_month"] < -0.01
    months = [m for m, v in fid["by_enrolment_month"].items() if v["n"] >= 5]
    early = np.mean([fid["by_enrolment_month"][m]["mean_fidelity"] for m in months[:4]])
    late = np.mean([fid["by_enrolment_month"][m]["mean_fidelity"] for m in months[-4:]])
    assert early > late + 0.1
    # the records show it: plans made within 28 days are commoner early in the year
    enr = extracts["enrolments"][["crn", "enrolment_date"]].astype(str)
    plans = extracts["plans"][["crn", "created_date"]].astype(str)
    m = enr.merge(plans, on="crn", how="left")
    m = m[m.enrolment_date.str.match(ISO.pattern)]
    start = pd.to_datetime(m.enrolment_date)
    created = pd.to_datetime(m.created_date.where(m.created_date.str.match(ISO.pattern)))
    within = ((created - start).dt.days <= 28).astype(float)
    assert within[start.dt.month <= 6].mean() > within[start.dt.month > 6].mean()


def test_higher_fidelity_gives_more_complete_records(moderate):
    extracts, _, _, po = moderate
    f = po.set_index("crn").fidelity
    act = extracts["activities"].crn.astype(str).value_counts()
    t = po[po.treated].set_index("crn")
    n_act = act.reindex(t.index, fill_value=0)
    assert np.corrcoef(f.reindex(t.index), n_act)[0, 1] > 0.3


def test_hidden_confounding_selects_on_the_hidden_trait():
    """With strength > 0 the treated's untreated outcome is lower than with strength 0."""
    base = {"n_treated": 150, "n_comparator_pool": 3000}
    off = generate(base, 21).truth
    on = generate({**base, "hidden_confounding": {"strength": 1.5}}, 21).truth
    assert on["hidden_confounding"]["strength"] == 1.5
    assert on["treated_mean_y0"] < off["treated_mean_y0"]


# ------------------------------------------------------------------- planted mess


def count_mess(raw: dict[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    """Count every kind of planted mess directly in the raw text."""
    out = {name: dict.fromkeys(MESS_KINDS, 0) for name in EXTRACTS}
    for name, df in raw.items():
        cols = extract_schema(name)["columns"]
        out[name]["duplicate_rows"] = int(df.duplicated().sum())
        orig = df.drop_duplicates()
        date_cols = [c for c, s in cols.items() if s["type"] == "date"]
        code_cols = [c for c, s in cols.items() if s["type"] == "code"]
        if date_cols:
            dmy = orig[date_cols].apply(lambda c: c.str.match(DMY.pattern))
            iso = orig[date_cols].apply(lambda c: c.str.match(ISO.pattern))
            assert not (dmy.any(axis=1) & iso.any(axis=1)).any(), f"{name}: half-converted row"
            out[name]["mixed_date_formats"] = int(dmy.any(axis=1).sum())
        if code_cols:
            messy = orig[code_cols].apply(lambda c: c != c.str.strip().str.lower())
            blank_or_messy = messy | (orig[code_cols] == "")
            assert blank_or_messy[messy.any(axis=1)].all(axis=None), f"{name}: partly messy row"
            out[name]["code_whitespace_case"] = int(messy.any(axis=1).sum())
    clean = strip_mess(raw)
    sup = clean["supervision"]
    out["supervision"]["impossible_dates"] = int((sup.end_date < sup.start_date).sum())
    conv = clean["convictions"]
    swapped = conv.disposal_date < conv.offence_date
    out["convictions"]["disposal_before_offence"] = int(swapped.sum())
    assert (conv.offence_date[swapped] < "2016-01-01").all() or (
        conv.disposal_date[swapped] < "2016-01-01"
    ).all()
    con = clean["contacts"]
    end = con.event_id.map(sup.set_index("event_id").end_date)
    out["contacts"]["contacts_after_order_end"] = int((con.contact_date > end).sum())
    enr = clean["enrolments"]
    others = set()
    for name in EXTRACTS:
        if name not in ("enrolments",) and "crn" in clean[name]:
            others |= set(clean[name].crn)
    out["enrolments"]["orphan_enrolments"] = int((~enr.crn.isin(others)).sum())
    return out


def test_mess_json_counts_equal_the_mess_in_the_files(tiny_dir, raw):
    mess = json.loads((tiny_dir / "mess.json").read_text())
    assert set(mess) == set(EXTRACTS)
    for name in EXTRACTS:
        assert set(mess[name]) == set(MESS_KINDS)
    assert count_mess(raw) == mess


def test_mess_counts_match_the_config_when_rows_allow(tiny_dir):
    mess = json.loads((tiny_dir / "mess.json").read_text())
    cfg = default_config()
    assert mess["supervision"]["impossible_dates"] == cfg["mess"]["impossible_dates"]
    assert mess["convictions"]["disposal_before_offence"] == cfg["mess"]["disposal_before_offence"]
    assert mess["contacts"]["contacts_after_order_end"] == cfg["mess"]["contacts_after_order_end"]
    assert mess["enrolments"]["orphan_enrolments"] == cfg["mess"]["orphan_enrolments"]
    for kind in ("duplicate_rows", "mixed_date_formats"):
        for name in ("people", "supervision", "convictions", "contacts"):
            assert mess[name][kind] == cfg["mess"][kind][name]


def test_mess_amounts_are_configurable_and_zero_means_clean(tmp_path):
    zero = dict.fromkeys(MESS_KINDS, 0)
    write_extracts(tmp_path, {**TINY, "mess": zero}, 4)
    mess = json.loads((tmp_path / "mess.json").read_text())
    assert all(v == 0 for kinds in mess.values() for v in kinds.values())
    raw = {
        n: pd.read_csv(tmp_path / f"{n}.csv", dtype=str, keep_default_na=False) for n in EXTRACTS
    }
    assert count_mess(raw) == mess


def test_impossible_dates_only_on_non_index_events(raw):
    clean = strip_mess(raw)
    sup = clean["supervision"]
    bad = sup[sup.end_date < sup.start_date]
    assert len(bad) > 0
    assert (bad.start_date < "2018-01-01").all()  # not eligible, so never an index event
    assert bad.crn.isin(sup[sup.start_date >= "2018-01-01"].crn).all()
    assert not clean["contacts"].event_id.isin(bad.event_id).any()


# ------------------------------------------------------------------- config


def test_config_files_validate_and_national_scale_is_set():
    pilot = load_config(ROOT / "config/synthetic.yaml")
    assert pilot["n_treated"] == 150 and pilot["n_comparator_pool"] == 5000
    assert pilot["pilot_offices"] == ["hull_central", "bridlington"]
    national = load_config(ROOT / "config/synthetic_national.yaml")
    assert national["n_treated"] == 1000 and national["n_comparator_pool"] == 1_000_000
    overlay = yaml.safe_load((ROOT / "config/national.yaml").read_text())
    assert overlay["synthetic"] == "config/synthetic_national.yaml"


def test_schema_documents_every_setting_with_a_default():
    schema = yaml.safe_load((ROOT / "workflow/schemas/synthetic.schema.yaml").read_text())

    def walk(props, where):
        for key, spec in props.items():
            assert "description" in spec, f"{where}{key}: no description"
            assert "default" in spec, f"{where}{key}: no default"
            if "properties" in spec:
                walk(spec["properties"], f"{where}{key}.")

    walk(schema["properties"], "")
    assert resolve_config({}) == default_config()


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"n_treated": 0}, "n_treated"),
        ({"pilot_offices": ["nowhere"]}, "pilot_offices"),
        ({"true_effect": {"hazard_ratio": -1}}, "true_effect.hazard_ratio"),
        ({"mess": {"duplicate_rows": {"peeple": 3}}}, "mess.duplicate_rows"),
        ({"n_treated": 500, "n_comparator_pool": 600}, "n_treated"),
    ],
)
def test_bad_config_gives_one_clear_message(bad, where):
    with pytest.raises(ValueError, match=where.split(".")[0]):
        generate(bad, 1)


def test_codes_come_from_the_contract():
    extracts = generate(TINY, 2).extracts
    for name in EXTRACTS:
        for col, spec in extract_schema(name)["columns"].items():
            if spec["type"] == "code":
                values = extracts[name][col].dropna().astype(str).str.strip().str.lower()
                assert set(values) <= set(codes(name, col))


def test_data_contract_page_is_rendered_from_the_schemas():
    from mydirection.contract_doc import DOC_PATH, render

    page = render()
    assert DOC_PATH.read_text(encoding="utf-8") == page, (
        "docs/data-contract.md is out of date: run python -m mydirection.contract_doc"
    )
    for name in EXTRACTS:
        assert f"## `{name}.csv`" in page
        for col, spec in extract_schema(name)["columns"].items():
            assert f"`{col}`" in page
            for code in spec.get("codes", []):
                assert f"`{code}`" in page


def test_merge_config_merges_nested_settings_but_replaces_shares_and_mess_kinds():
    from mydirection.synthetic import merge_config

    base = default_config()
    out = merge_config(
        base,
        {
            "true_effect": {"hazard_ratio": 0.5},
            "offices": {"a": 0.5, "b": 0.5},
            "mess": {"duplicate_rows": {"people": 1}},
        },
    )
    assert out["true_effect"] == {"hazard_ratio": 0.5, "depends_on_fidelity": False}
    assert out["offices"] == {"a": 0.5, "b": 0.5}
    assert out["mess"]["duplicate_rows"] == {"people": 1}
    assert out["mess"]["orphan_enrolments"] == base["mess"]["orphan_enrolments"]
    assert base["true_effect"]["hazard_ratio"] == 0.9  # base untouched


def test_identical_conviction_rows_are_found_exactly():
    """The guard that keeps original convictions free of exact duplicates (brute force)."""
    from mydirection.synthetic import identical_rows

    rng = np.random.default_rng(0)
    key, key2 = rng.integers(0, 20, 300), rng.integers(0, 3, 300)
    seen, expected = set(), []
    for pair in zip(key.tolist(), key2.tolist(), strict=True):
        expected.append(pair in seen)
        seen.add(pair)
    assert identical_rows(key, key2).tolist() == expected
