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
import pyarrow as pa
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
    merge_config,
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
def tiny_truth(tiny_dir):
    return json.loads((tiny_dir / "truth.json").read_text())


@pytest.fixture(scope="module")
def moderate():
    return generate({"n_treated": 150, "n_comparator_pool": 3000}, 7)


@pytest.fixture(scope="module")
def default_run():
    """The embedded default: config/synthetic.yaml at the project's master seed, in memory
    (the same text as the CSV files: test_generate_returns_what_write_extracts_writes)."""
    return generate(load_config(ROOT / "config/synthetic.yaml"), SEED)


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


def test_caseload_shape(raw, tiny_truth):
    clean = strip_mess(raw)
    sup = clean["supervision"]
    assert sup.start_date.min() >= pd.Timestamp("2017-07-01")
    assert sup.start_date.max() <= pd.Timestamp("2018-12-31")
    assert sup.office.nunique() >= 6
    assert (sup.office == sup.office.str.lower()).all()
    enr = clean["enrolments"][clean["enrolments"].crn.isin(clean["people"].crn)]
    assert len(enr) == TINY["n_treated"]
    # enrolled in 2018, but for the planted late enrolments (incomplete follow-up)
    late = enr.enrolment_date > "2018-12-31"
    assert late.sum() == tiny_truth["treated_attrition"]["incomplete_followup"] > 0
    assert enr.enrolment_date.between("2018-01-01", "2019-03-01").all()
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
    """In memory, every extract is exactly the text of its CSV file, as the cleaning stage
    reads it (string columns, blanks empty, rows numbered from 1)."""
    from mydirection.validate import read_extract

    extracts, truth, mess, _ = generate(TINY, SEED)
    assert json.loads((tiny_dir / "mess.json").read_text()) == mess
    written = json.loads((tiny_dir / "truth.json").read_text())
    assert written["sample_att_event_start"] == truth["sample_att_event_start"]
    assert written["treated_attrition"] == truth["treated_attrition"]
    assert list(extracts) == list(EXTRACTS)
    for name in EXTRACTS:
        df = extracts[name]
        assert (df.dtypes == pd.ArrowDtype(pa.string())).all(), name
        assert df.to_numpy().tolist() == raw[name].to_numpy().tolist(), name
        pd.testing.assert_frame_equal(df, read_extract(tiny_dir / f"{name}.csv", name).data)


def test_generate_can_leave_extracts_out_without_changing_the_others():
    full = generate(TINY, SEED)
    chain = ("people", "supervision", "assessments", "convictions", "enrolments")
    some = generate(TINY, SEED, extracts=chain)
    assert list(some.extracts) == list(chain)
    for name in chain:
        pd.testing.assert_frame_equal(some.extracts[name], full.extracts[name])
    assert some.mess == full.mess and some.truth == full.truth
    with pytest.raises(ValueError, match="unknown extract"):
        generate(TINY, SEED, extracts=["peeple"])


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


END = pd.Timestamp("2020-06-30")  # extract_end_date (default)
WINDOW = ("2018-01-01", "2018-12-31")  # pilot year (default)
POTENTIAL = {"event_start": ("y0", "y1"), "enrolment": ("y0_enrolment", "y1_enrolment")}
CHAIN = ("people", "supervision", "assessments", "convictions", "enrolments")


def as_text(extracts: dict[str, pd.DataFrame], names=EXTRACTS) -> dict[str, pd.DataFrame]:
    """In-memory extracts as plain text frames (as read from the CSV with dtype=str)."""
    return {n: extracts[n].reset_index(drop=True).astype(str) for n in names}


def eligible_events(clean: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Events started in the pilot year, RoSH low or medium, person 18 or over at the start."""
    sup = clean["supervision"]
    sup = sup[sup.end_date.isna() | (sup.end_date >= sup.start_date)]
    dob = clean["people"].set_index("crn").date_of_birth
    age = (sup.start_date - sup.crn.map(dob)).dt.days / 365.25
    return sup[sup.start_date.between(*WINDOW) & sup.rosh.isin(["low", "medium"]) & (age >= 18)]


def enrolment_events(clean: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each enrolled person in the people extract and the event they were enrolled during
    (the latest event that started on or before the enrolment date), with age at its start."""
    enr = clean["enrolments"][["crn", "enrolment_date"]]
    m = enr.merge(clean["supervision"], on="crn")
    m = m[m.start_date <= m.enrolment_date].sort_values(["crn", "start_date"])
    m = m.groupby("crn").tail(1).reset_index(drop=True)
    dob = m.crn.map(clean["people"].set_index("crn").date_of_birth)
    return m.assign(age_at_start=(m.start_date - dob).dt.days / 365.25)


def analysed_treated(clean: dict[str, pd.DataFrame], design: str) -> pd.Series:
    """Index dates of the treated the cohort stage analyses, by crn: enrolled during an
    eligible event, index date (event start or enrolment) + 547 days by the extract end."""
    m = clean["enrolments"][["crn", "enrolment_date"]].merge(eligible_events(clean), on="crn")
    during = (m.start_date <= m.enrolment_date) & (
        m.end_date.isna() | (m.enrolment_date <= m.end_date)
    )
    m = m[during].sort_values(["crn", "start_date"]).groupby("crn").head(1)
    index = m.set_index("crn")["start_date" if design == "event_start" else "enrolment_date"]
    return index[index + pd.Timedelta(days=547) <= END]


def proven_reoffending(clean: dict[str, pd.DataFrame], index: pd.Series | None = None):
    """The outcomes stage's definition, recomputed from the cleaned text (by crn). Index
    dates by crn; default: the start of the person's first eligible event."""
    if index is None:
        index = eligible_events(clean).groupby("crn").start_date.min()
    conv = clean["convictions"]
    conv = conv[(conv.offence_group != "breach") & conv.crn.isin(index.index)]
    days_off = (conv.offence_date - conv.crn.map(index)).dt.days
    days_disp = (conv.disposal_date - conv.crn.map(index)).dt.days
    proven = (days_off > 0) & (days_off <= 365) & (days_disp <= 547)
    y = proven.groupby(conv.crn).any().reindex(index.index, fill_value=False)
    return y.astype(int)


def test_sample_att_equals_mean_difference_of_potential_outcomes(moderate):
    """Both sample ATTs are over the treated the cohort stage analyses under that index
    date (recounted from the extracts), from the coupled potential outcomes."""
    extracts, truth, _, po = moderate
    assert int(po.treated.sum()) == truth["n_treated"] == 150
    clean = strip_mess(as_text(extracts, CHAIN))
    po = po.set_index("crn")
    for design, (y0, y1) in POTENTIAL.items():
        t = po.loc[analysed_treated(clean, design).index]
        out = truth["potential_outcomes"][design]
        assert t.treated.all() and len(t) == out["n_treated"] > 120
        diff = t[y1].astype(int) - t[y0].astype(int)
        assert truth[f"sample_att_{design}"] == out["sample_att"]
        assert out["sample_att"] == pytest.approx(diff.mean(), abs=1e-12)
        assert out["treated_mean_y1"] == pytest.approx(t[y1].mean(), abs=1e-12)
        assert out["treated_mean_y0"] == pytest.approx(t[y0].mean(), abs=1e-12)
        # coupled randomness with HR < 1: treatment never turns a non-offender into one
        assert ((t[y1] == 1) & (t[y0] == 0)).sum() == 0
    # the late enrolments have complete follow-up only from the start of their order
    n = {d: truth["potential_outcomes"][d]["n_treated"] for d in POTENTIAL}
    assert n["event_start"] - n["enrolment"] == truth["treated_attrition"]["incomplete_followup"]
    assert po.y0_enrolment[~po.treated].isna().all()


def test_realised_convictions_reproduce_the_potential_outcomes(raw):
    """Y observed in the CSVs = Y(1) for the treated and Y(0) for everyone else, from the
    start of the index event; from the enrolment date, Y(1) of the treated."""
    _, truth, _, po = generate(TINY, SEED)
    clean = strip_mess(raw)
    y = proven_reoffending(clean)
    po = po.set_index("crn")
    assert set(y.index) == set(po.index[po.eligible])  # eligibility as planted
    realised = np.where(po.treated, po.y1, po.y0)[po.eligible]
    assert (y.reindex(po.index[po.eligible]).to_numpy() == realised).all()
    index = analysed_treated(clean, "enrolment")
    y = proven_reoffending(clean, index)
    assert len(y) == truth["potential_outcomes"]["enrolment"]["n_treated"] > 0
    assert (y.to_numpy() == po.y1_enrolment.reindex(y.index).to_numpy()).all()
    assert 0 < y.sum() < len(y)  # the comparison can fail both ways


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
    clean = strip_mess(raw)
    for design, (y0, y1) in POTENTIAL.items():
        t = po.set_index("crn").loc[analysed_treated(clean, design).index]
        att = truth[f"sample_att_{design}"]
        assert att == pytest.approx((t[y1].astype(int) - t[y0].astype(int)).mean(), abs=1e-12)
    t = po[po.treated]
    for y0, y1 in POTENTIAL.values():
        if hr < 1:
            assert (t[y1] <= t[y0]).all()
        elif hr > 1:
            assert (t[y1] >= t[y0]).all()
    y = proven_reoffending(clean)
    po = po[po.eligible].set_index("crn")
    assert (y.reindex(po.index).to_numpy() == np.where(po.treated, po.y1, po.y0)).all()


def test_no_effect_means_identical_potential_outcomes():
    _, truth, _, po = generate({**TINY, "true_effect": {"hazard_ratio": 1.0}}, 3)
    assert (po.y0 == po.y1).all()
    t = po[po.treated]
    assert (t.y0_enrolment == t.y1_enrolment).all()
    assert truth["sample_att_event_start"] == truth["sample_att_enrolment"] == 0.0


def test_effect_size_moves_the_att_in_the_right_direction():
    strong = generate({**TINY, "true_effect": {"hazard_ratio": 0.3}}, 5).truth
    harmful = generate({**TINY, "true_effect": {"hazard_ratio": 2.0}}, 5).truth
    for design in POTENTIAL:
        assert strong[f"sample_att_{design}"] < -0.05
        assert harmful[f"sample_att_{design}"] > 0.05


def test_the_effect_starts_at_enrolment():
    """Offences up to the enrolment date do not depend on the effect; later ones do; the
    records of people never enrolled do not depend on it at all."""
    base = {"n_treated": 150, "n_comparator_pool": 3000}
    runs = [
        generate({**base, "true_effect": {"hazard_ratio": hr}}, 13, extracts=CHAIN)
        for hr in (1.0, 0.3)
    ]
    po = [r.potential_outcomes for r in runs]
    assert (po[0].treated == po[1].treated).all()  # selection happens before the effect
    assert (po[0].y0 == po[1].y0)[~po[0].treated].all()
    before, after, others = [], [], []
    for r in runs:
        clean = strip_mess(as_text(r.extracts, CHAIN))
        conv = clean["convictions"].merge(clean["enrolments"][["crn", "enrolment_date"]])
        key = conv.drop(columns="enrolment_date").astype(str).agg("|".join, axis=1)
        early = conv.offence_date <= conv.enrolment_date
        before.append(sorted(key[early]))
        after.append(int((~early & (conv.offence_group != "breach")).sum()))
        rest = clean["convictions"][~clean["convictions"].crn.isin(conv.crn)]
        others.append(sorted(rest.astype(str).agg("|".join, axis=1)))
    assert before[0] == before[1] and len(before[0]) > 150
    assert after[1] < 0.7 * after[0]
    assert others[0] == others[1] and len(others[0]) > 10_000


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
    for design in POTENTIAL:
        y0 = [r["potential_outcomes"][design]["treated_mean_y0"] for r in (on, off)]
        assert y0[0] < y0[1]


# ------------------------------------------------- enrolment prevention (immortal time)

OFF = {"enrolment_prevention": {"reoffence": False, "custody": False, "recall": False}}


def events_before(clean: dict[str, pd.DataFrame], frame: pd.DataFrame, until: str):
    """For each row of ``frame`` (crn, start_date, end_date, ``until``): whether, on or after
    start_date and before ``until``, the person committed a non-breach offence that was
    proven (it is in the convictions), had a custodial disposal, or their event ended."""
    f = frame[["crn", "start_date", "end_date", until]].reset_index(drop=True)
    m = f.reset_index().merge(clean["convictions"], on="crn")
    inside = lambda col: (m[col] >= m.start_date) & (m[col] < m[until])  # noqa: E731
    out = pd.DataFrame(index=f.index)
    for name, hit in (
        ("reoffence", (m.offence_group != "breach") & inside("offence_date")),
        ("custody", (m.disposal_type == "custody") & inside("disposal_date")),
    ):
        out[name] = hit.groupby(m["index"]).any().reindex(f.index, fill_value=False)
    out["ended"] = (f.end_date.notna() & (f.end_date < f[until])).to_numpy()
    return out


def comparators_with_treated_delays(clean: dict[str, pd.DataFrame], seed: int):
    """Eligible never-enrolled people at their first eligible event, each given an
    enrolment delay drawn (with replacement) from the treated people's delays."""
    elig = eligible_events(clean)
    treated = enrolment_events(clean)
    treated = treated[treated.crn.isin(analysed_treated(clean, "event_start").index)]
    delays = np.sort((treated.enrolment_date - treated.start_date).dt.days.to_numpy())
    comp = elig[~elig.crn.isin(clean["enrolments"].crn)]
    comp = comp.sort_values(["crn", "start_date"]).groupby("crn").head(1)
    drawn = np.random.default_rng(seed).choice(delays, len(comp))
    return comp.assign(pseudo=comp.start_date + pd.to_timedelta(drawn, unit="D")), delays


def test_no_one_is_enrolled_after_a_preventing_event_in_the_default_data(default_run):
    """In the embedded default, no enrolled person re-offended (proven), was sentenced to
    custody or had their licence end between the start of their order and enrolment."""
    clean = strip_mess(as_text(default_run.extracts, CHAIN))
    enrolled = enrolment_events(clean)
    assert len(enrolled) == default_run.truth["n_treated"] == 150
    found = events_before(clean, enrolled, "enrolment_date")
    assert not found.to_numpy().any(), enrolled[found.any(axis=1)]


def test_prevented_people_stay_in_the_comparator_pool(default_run):
    _, truth, _, po = default_run
    prevented = po[po.prevented]
    assert len(prevented) == truth["enrolment_prevention"]["n_prevented"] > 0
    assert not prevented.treated.any() and po.treated.sum() == truth["n_treated"] == 150
    clean = strip_mess(as_text(default_run.extracts, CHAIN))
    assert prevented.crn.isin(clean["people"].crn).all()
    assert not prevented.crn.isin(clean["enrolments"].crn).any()
    # each of them has, in the extracts, an event that prevented the planned enrolment
    sup = clean["supervision"].merge(prevented[["crn", "index_date", "planned_enrolment_date"]])
    sup = sup[sup.start_date == sup.index_date]
    assert len(sup) == len(prevented)
    assert events_before(clean, sup, "planned_enrolment_date").any(axis=1).all()


def test_comparators_reoffend_inside_a_treated_like_delay(default_run):
    """The immortal time of the event_start design, measured on the embedded default:
    comparators do re-offend (proven) inside an enrolment delay drawn from the treated
    delays, the treated by construction never do (previous test)."""
    clean = strip_mess(as_text(default_run.extracts, CHAIN))
    comp, delays = comparators_with_treated_delays(clean, SEED)
    assert len(comp) == default_run.truth["n_eligible_comparators"] > 4000
    assert 25 < delays.mean() < 35  # uniform 0-60 days
    share = events_before(clean, comp, "pseudo")["reoffence"].mean()
    assert share > 0.03, share  # 0.047 on this data (seed 20180101)


def test_switching_prevention_off_enrols_people_after_such_events():
    cfg = merge_config(load_config(ROOT / "config/synthetic.yaml"), OFF)
    syn = generate(cfg, SEED, extracts=CHAIN)
    assert syn.truth["enrolment_prevention"]["n_prevented"] == 0
    assert not syn.potential_outcomes.prevented.any()
    assert syn.potential_outcomes.treated.sum() == 150
    clean = strip_mess(as_text(syn.extracts, CHAIN))
    found = events_before(clean, enrolment_events(clean), "enrolment_date")
    assert found["reoffence"].sum() >= 1


@pytest.mark.parametrize("kind", ["reoffence", "custody", "recall"])
def test_each_prevention_mechanism_has_its_own_switch(kind):
    """With one mechanism off, enrolled people have that event and none of the others.
    Long delays, breaches and recalls are made frequent here so that every kind occurs."""
    cfg = {
        "n_treated": 150,
        "n_comparator_pool": 3000,
        "max_enrolment_delay_days": 120,
        "recall": {"per_year": 4.0},
        "reoffending": {"breaches_per_year": 12.0},
        "enrolment_prevention": {kind: False},
    }
    syn = generate(cfg, 3, extracts=CHAIN)
    clean = strip_mess(as_text(syn.extracts, CHAIN))
    enrolled = enrolment_events(clean)
    found = events_before(clean, enrolled, "enrolment_date")
    column = {"reoffence": "reoffence", "custody": "custody", "recall": "ended"}[kind]
    assert found[column].sum() >= 2
    others = [c for c in found if c != column]
    if kind == "reoffence":  # a custodial disposal of such a re-offence still prevents
        others = ["custody", "ended"]
    assert not found[others].to_numpy().any()
    # the licences ended before enrolment are the recalled ones
    if kind == "recall":
        assert (enrolled.sentence_type[found.ended] == "licence").all()
    assert syn.truth["enrolment_prevention"]["prevented_by"][kind] == 0


# ------------------------------------------------------------------- treated attrition


def attrition_in_extracts(clean: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Enrolled people the evaluation cannot use, recounted from the cleaned text."""
    enrolled = enrolment_events(clean)
    kinds = {
        "order_before_window": enrolled.start_date < WINDOW[0],
        "rosh_high": enrolled.rosh.isin(["high", "very_high"]),
        "under_18": enrolled.age_at_start < 18,
        "incomplete_followup": enrolled.enrolment_date + pd.Timedelta(days=547) > END,
    }
    reasons = pd.concat(kinds, axis=1)
    assert (reasons.sum(axis=1) <= 1).all()  # one reason each
    counts = {k: int(v.sum()) for k, v in kinds.items()}
    known = set(clean["people"].crn)
    counts["not_found_in_case_management"] = int((~clean["enrolments"].crn.isin(known)).sum())
    return counts


def test_treated_attrition_is_planted_as_configured(default_run):
    truth = default_run.truth
    planted = {k: v for k, v in truth["treated_attrition"].items() if k != "description"}
    clean = strip_mess(as_text(default_run.extracts, CHAIN))
    assert attrition_in_extracts(clean) == planted
    cfg = load_config(ROOT / "config/synthetic.yaml")
    assert planted == {
        **cfg["treated_attrition"],
        "not_found_in_case_management": cfg["mess"]["orphan_enrolments"],
    }
    assert all(v > 0 for v in planted.values())
    po = default_run.potential_outcomes
    assert po.attrition[po.treated].value_counts().to_dict() == cfg["treated_attrition"]
    assert po.attrition[~po.treated].isna().all()


def test_treated_attrition_amounts_are_configurable():
    none = dict.fromkeys(("order_before_window", "rosh_high", "under_18"), 0)
    cfg = {**TINY, "treated_attrition": {**none, "incomplete_followup": 4}}
    syn = generate({**cfg, "mess": {"orphan_enrolments": 0}}, 8, extracts=CHAIN)
    clean = strip_mess(as_text(syn.extracts, CHAIN))
    counts = attrition_in_extracts(clean)
    assert counts == {**none, "incomplete_followup": 4, "not_found_in_case_management": 0}
    with pytest.raises(ValueError, match="treated_attrition"):
        generate({**TINY, "treated_attrition": {"rosh_high": 40}}, 1)


def test_the_cohort_stage_excludes_the_planted_attrition_at_its_steps(tmp_path):
    """The agreement with the cleaning and cohort stages on the embedded default: each kind
    of planted attrition is lost at the step whose rule it breaks, and only there."""
    from mydirection.clean import clean_extracts, load_key
    from mydirection.cohort import build_cohort
    from mydirection.settings import CohortSettings

    truth, _ = write_extracts(tmp_path, load_config(ROOT / "config/synthetic.yaml"), SEED)
    tables, log = clean_extracts(
        {n: tmp_path / f"{n}.csv" for n in EXTRACTS}, "2020-06-30", load_key({}, synthetic=True)
    )
    planted = truth["treated_attrition"]
    orphans = log[(log.file == "enrolments") & (log.rule == "person_not_in_people")]
    assert orphans.rows.sum() == planted["not_found_in_case_management"]
    step_of = {  # the cohort's attrition rule -> the attrition lost there
        "recruitment_window": planted["order_before_window"],
        "crc_managed": planted["rosh_high"],
        "adult": planted["under_18"],
    }
    for design in POTENTIAL:
        settings = CohortSettings.default(index_date=design)
        att = build_cohort(**{n: tables[n] for n in CHAIN}, settings=settings).attrition
        att = att[att.group == "treated"]
        assert att.n_remaining.iloc[0] == truth["n_treated"]
        expected = {
            **step_of,
            "followup": planted["incomplete_followup"] if design == "enrolment" else 0,
        }
        if design == "enrolment":  # no participant has an enrolment barrier (none enrolled)
            expected["enrollable_at_index"] = 0
        lost = {}
        for rule in expected:
            rows = att[att.rule == rule]
            assert len(rows) == 1, rule
            lost[rule] = int(rows.n_lost.iloc[0])
        assert lost == expected
        assert att.n_lost.sum() == sum(expected.values())
        assert att.n_remaining.iloc[-1] == truth["potential_outcomes"][design]["n_treated"]


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
                values = extracts[name][col].astype(str).str.strip().str.lower()
                assert set(values[values != ""]) <= set(codes(name, col))


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
