"""Rosenbaum bounds checked by exact enumeration; E-values against the published examples."""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mydirection import sensitivity as sens

# ------------------------------------------------------------------ brute-force reference


def brute_force_bounds(sets: list[list[int]], t_obs: int, gamma: float) -> tuple[float, float]:
    """Min and max over all binary unobserved confounders u of P(T >= t_obs) at sensitivity gamma.

    ``sets``: per matched set, the outcomes y of its members (any order). Under the
    sensitivity model, the treated person in a set is member j with probability
    gamma^u_j / sum_i gamma^u_i, independently across sets; T is the sum of the treated
    members' y. Enumerates every u in {0,1}^N and every assignment of the treated member.
    """
    sizes = [len(s) for s in sets]
    flat_n = sum(sizes)
    lo, hi = 1.0, 0.0
    for u_flat in itertools.product((0, 1), repeat=flat_n):
        u, i = [], 0
        for n in sizes:
            u.append(u_flat[i : i + n])
            i += n
        prob = 0.0
        for choice in itertools.product(*[range(n) for n in sizes]):
            t = sum(sets[s][j] for s, j in enumerate(choice))
            if t < t_obs:
                continue
            pr = 1.0
            for s, j in enumerate(choice):
                w = [gamma ** u[s][i] for i in range(sizes[s])]
                pr *= w[j] / sum(w)
            prob += pr
        lo, hi = min(lo, prob), max(hi, prob)
    return lo, hi


def sets_frame(sets: list[list[int]], treated_pos: list[int]) -> pd.DataFrame:
    """The matched_sets() layout from hand-made sets (member outcomes, treated position)."""
    rows = []
    for i, (s, t) in enumerate(zip(sets, treated_pos, strict=True)):
        rows.append(
            {
                "set_id": i,
                "treated_y": s[t],
                "n_controls": len(s) - 1,
                "controls_y": sum(s) - s[t],
            }
        )
    return pd.DataFrame(rows)


HAND_MADE = [
    # 1:1 pairs: 4 discordant in favour of treatment, 1 against, 1 concordant
    ([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1], [1, 1]], [0, 0, 0, 0, 0, 0]),
    # 2:1 sets
    ([[1, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 0]], [0, 0, 0, 0]),
    # variable ratio (1:1, 2:1, 3:1), treated in different positions
    ([[0, 1], [1, 0, 0], [0, 1, 1, 0]], [1, 0, 2]),
]


@pytest.mark.parametrize("sets,pos", HAND_MADE)
@pytest.mark.parametrize("gamma", [1.0, 1.5, 2.0, 3.0])
def test_bounds_equal_exact_enumeration(sets, pos, gamma):
    frame = sets_frame(sets, pos)
    t_obs = int(frame["treated_y"].sum())
    lo, hi = brute_force_bounds(sets, t_obs, gamma)
    assert sens.rosenbaum_upper_p(frame, gamma) == pytest.approx(hi, abs=1e-12)
    table = sens.rosenbaum_table(frame, [gamma], alpha=0.025)
    assert table["p_lower"].iloc[0] == pytest.approx(lo, abs=1e-12)


def test_pairs_are_mcnemar_binomial():
    # 1:1 pairs: D = 30 discordant, T = 21 where only the comparator re-offended
    frame = pd.DataFrame(
        {
            "set_id": range(50),
            "treated_y": [1] * 21 + [0] * 9 + [1] * 8 + [0] * 12,
            "n_controls": 1,
            "controls_y": [0] * 21 + [1] * 9 + [1] * 8 + [0] * 12,
        }
    )
    for g in (1.0, 1.3, 2.0):
        ref = stats.binom.sf(21 - 1, 30, g / (1 + g))
        assert sens.rosenbaum_upper_p(frame, g) == pytest.approx(ref, abs=1e-12)
    # at Gamma = 1 this is the exact one-sided McNemar p-value
    assert sens.rosenbaum_upper_p(frame, 1.0) == pytest.approx(
        stats.binomtest(21, 30, 0.5, alternative="greater").pvalue, abs=1e-12
    )
    for alpha in (0.05, 0.025):
        g = sens.gamma_crossing(frame, alpha=alpha)
        assert g > 1
        assert stats.binom.sf(20, 30, g / (1 + g)) == pytest.approx(alpha, abs=1e-8)


def test_gamma_crossing_edges():
    not_sig = pd.DataFrame(
        {"set_id": [0, 1], "treated_y": [1, 0], "n_controls": [1, 1], "controls_y": [0, 1]}
    )
    # no crossing when not significant without hidden bias (today's code said 1.0, which the
    # report read as "significant until Gamma = 1")
    assert math.isnan(sens.gamma_crossing(not_sig, alpha=0.025))
    none_informative = pd.DataFrame(
        {"set_id": [0], "treated_y": [1], "n_controls": [1], "controls_y": [1]}
    )
    assert math.isnan(sens.rosenbaum_upper_p(none_informative, 1.0))
    assert math.isnan(sens.gamma_crossing(none_informative, alpha=0.025))
    with pytest.raises(TypeError):
        sens.gamma_crossing(not_sig)  # the level has no default
    with pytest.raises(ValueError):
        sens.rosenbaum_table(not_sig, [1.0], alpha=1.5)


def _mcnemar_frame(t: int, discordant: int) -> pd.DataFrame:
    """1:1 pairs: ``t`` discordant pairs in favour of the programme out of ``discordant``."""
    return pd.DataFrame(
        {
            "set_id": range(discordant),
            "treated_y": [1] * t + [0] * (discordant - t),
            "n_controls": 1,
            "controls_y": [0] * t + [1] * (discordant - t),
        }
    )


def test_bounds_at_the_headline_level():
    """A two-sided 5 % headline is matched by the one-sided 2.5 % bound. With 40 of 64
    discordant pairs the one-sided McNemar p is 0.030 (two-sided 0.060): significant at the
    one-sided 5 % level today's code used, not at the 2.5 % that matches the headline."""
    frame = _mcnemar_frame(40, 64)
    p1 = stats.binomtest(40, 64, 0.5, alternative="greater").pvalue
    assert 0.025 < p1 < 0.05
    assert 0.05 < 2 * p1 < 0.1  # the two-sided headline is not significant either
    old = sens.rosenbaum_summary(frame, alpha=0.05)
    assert old.significant and old.gamma_crossing > 1  # what the report wrongly said
    new = sens.rosenbaum_summary(frame, alpha=0.025)
    assert new.p_no_hidden_bias == pytest.approx(p1, abs=1e-12)
    assert not new.significant and new.gamma_crossing is None
    assert new.status == "not_significant"
    assert "not significant at the one-sided 2.5 % level" in new.text
    assert "until Gamma" not in new.text


def test_bounds_summary_statuses():
    strong = _mcnemar_frame(40, 50)
    s = sens.rosenbaum_summary(strong, alpha=0.025, gamma_max=20.0)
    assert s.significant and s.status == "sensitive"
    assert stats.binom.sf(39, 50, s.gamma_crossing / (1 + s.gamma_crossing)) == pytest.approx(
        0.025, abs=1e-8
    )
    assert f"until Gamma = {s.gamma_crossing:.2f}" in s.text
    assert s.as_dict()["status"] == "sensitive"
    # the headline itself not significant: nothing to explain away, no crossing computed
    h = sens.rosenbaum_summary(strong, alpha=0.025, headline_significant=False)
    assert h.status == "headline_not_significant" and h.gamma_crossing is None
    assert not h.significant and h.p_no_hidden_bias < 0.025
    # significant beyond the search bound
    huge = _mcnemar_frame(60, 60)
    i = sens.rosenbaum_summary(huge, alpha=0.025, gamma_max=3.0)
    assert i.status == "insensitive" and math.isinf(i.gamma_crossing)
    # nothing informative
    none = pd.DataFrame({"set_id": [0], "treated_y": [1], "n_controls": [1], "controls_y": [1]})
    assert sens.rosenbaum_summary(none, alpha=0.025).status == "no_informative_sets"


@st.composite
def random_sets(draw):
    n_sets = draw(st.integers(min_value=1, max_value=30))
    rows = []
    for i in range(n_sets):
        k = draw(st.integers(min_value=1, max_value=4))
        rows.append(
            {
                "set_id": i,
                "treated_y": draw(st.integers(0, 1)),
                "n_controls": k,
                "controls_y": draw(st.integers(0, k)),
            }
        )
    return pd.DataFrame(rows)


@settings(max_examples=60, deadline=None)
@given(random_sets(), st.floats(min_value=1.0, max_value=5.0))
def test_upper_p_monotone_and_above_lower(frame, gamma):
    p1 = sens.rosenbaum_upper_p(frame, 1.0)
    if math.isnan(p1):
        return
    pg = sens.rosenbaum_upper_p(frame, gamma)
    assert pg >= p1 - 1e-12
    assert sens.rosenbaum_upper_p(frame, gamma * 1.5) >= pg - 1e-12
    table = sens.rosenbaum_table(frame, [gamma], alpha=0.025)
    assert table["p_lower"].iloc[0] <= table["p_upper"].iloc[0] + 1e-12


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=0.99), min_size=1, max_size=12))
def test_poisson_binomial_against_enumeration(p):
    p = np.array(p)
    pmf = sens.poisson_binomial_pmf(p)
    ref = np.zeros(len(p) + 1)
    for bits in itertools.product((0, 1), repeat=len(p)):
        b = np.array(bits)
        ref[b.sum()] += np.prod(np.where(b == 1, p, 1 - p))
    np.testing.assert_allclose(pmf, ref, atol=1e-12)


def test_normal_approximation_close_for_many_sets():
    rng = np.random.default_rng(1)
    n = 400
    k = rng.integers(1, 4, n)
    frame = pd.DataFrame(
        {
            "set_id": range(n),
            "treated_y": rng.binomial(1, 0.62, n),
            "n_controls": k,
            "controls_y": rng.binomial(k, 0.5),
        }
    )
    for g in (1.0, 1.2, 1.5):
        exact = sens.rosenbaum_upper_p(frame, g, "exact")
        approx = sens.rosenbaum_upper_p(frame, g, "normal")
        assert approx == pytest.approx(exact, abs=0.02)
    ge = sens.gamma_crossing(frame, 0.025, method="exact")
    gn = sens.gamma_crossing(frame, 0.025, method="normal")
    assert gn == pytest.approx(ge, rel=0.05)


def test_matched_sets_from_pairs():
    pairs = pd.DataFrame(
        {
            "treated_id": ["t1", "t1", "t2", "t2", "t3"],
            "comparator_id": ["c1", "c2", "c3", "c1", "c4"],
            "round": [1, 2, 1, 2, 1],
        }
    )
    outcomes = pd.DataFrame(
        {
            "person_id": ["t1", "t2", "t3", "c1", "c2", "c3", "c4"],
            "reoffended": [0, 1, 0, 1, 1, 0, 0],
        }
    )
    s = sens.matched_sets(pairs, outcomes)  # y = not re-offended
    assert s["treated_y"].tolist() == [1, 0, 1]
    assert s["n_controls"].tolist() == [2, 2, 1]
    assert s["controls_y"].tolist() == [0, 1, 1]
    g = sens.matched_sets(pairs, outcomes, alternative="greater")
    assert g["treated_y"].tolist() == [0, 1, 0]
    assert g["controls_y"].tolist() == [2, 1, 0]


# ------------------------------------------------------------------------------- E-values


def test_evalue_published_example():
    # VanderWeele & Ding (2017): RR 3.9 (95 % CI 1.8 to 8.7) -> E-values 7.2 and 3.0
    assert sens.evalue(3.9) == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    # (the paper prints 7.2: 3.9 + sqrt(11.31) = 7.26)
    assert sens.evalue(3.9) == pytest.approx(7.26, abs=0.01)
    assert sens.evalue_ci(1.8, 8.7) == pytest.approx(3.0, abs=0.01)


def test_evalue_protective_and_null():
    # protective RR 0.8: E = 1/0.8 + sqrt(1/0.8 * (1/0.8 - 1)) = 1.25 + sqrt(0.3125)
    assert sens.evalue(0.8) == pytest.approx(1.25 + math.sqrt(0.3125))
    assert sens.evalue(1.0) == 1.0
    assert sens.evalue_ci(0.6, 0.9) == pytest.approx(sens.evalue(0.9))
    assert sens.evalue_ci(0.7, 1.1) == 1.0


@given(st.floats(min_value=1.0, max_value=50.0))
def test_evalue_solves_bounding_factor(rr):
    # E-value is the x with x^2 / (2x - 1) = RR (the joint bounding factor at equal strengths)
    e = sens.evalue(rr)
    assert e**2 / (2 * e - 1) == pytest.approx(rr, rel=1e-9)
    assert sens.evalue(1 / rr) == pytest.approx(e, rel=1e-9)


def test_conversions():
    assert sens.to_risk_ratio(2.0, "or", rare=True) == 2.0
    assert sens.to_risk_ratio(4.0, "or", rare=False) == pytest.approx(2.0)
    # common-outcome HR conversion; HR 1 -> 1, and HR < 1 maps below 1 symmetrically
    hr = 0.7
    rr = (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))
    assert sens.to_risk_ratio(hr, "hr", rare=False) == pytest.approx(rr)
    assert sens.to_risk_ratio(1.0, "hr", rare=False) == pytest.approx(1.0)
    assert sens.to_risk_ratio(1 / hr, "hr", rare=False) == pytest.approx(1 / rr)
    # the conversion is attenuating: |log RR| < |log HR|
    assert abs(math.log(rr)) < abs(math.log(hr))
    t = sens.evalue_table(0.7, 0.55, 0.9, measure="hr", rare=False)
    assert t["evalue_estimate"] == pytest.approx(sens.evalue(rr))
    assert t["evalue_ci"] == pytest.approx(sens.evalue(sens.to_risk_ratio(0.9, "hr", False)))


# ------------------------------------------------------------------- specification grid


GRID = {
    "distance": ["ps", "logit_ps", "mahalanobis"],
    "caliper": [None, 0.1, 0.2],
    "ratio": [1, 3],
    "replace": [False, True],
    "exact": {"none": [], "sentence": ["sentence_type"]},
    "ipw": True,
    "followup_days": [182, 365],
}


def _headline(**changes):
    from mydirection.settings import AnalysisSpec

    return AnalysisSpec.default(**{"revisions": (), **changes})


def test_spec_grid_is_full_cross_product_with_unique_names():
    headline = _headline()
    specs = sens.grid_choices(GRID, headline)
    assert len(specs) == 3 * 3 * 2 * 2 * 2 * 2 + 2  # the headline is one of them
    assert len(set(specs)) == len(specs)
    assert all(name == sens.spec_name(s, GRID["exact"]) for name, s in specs.items())
    assert "logit_ps-cal0.2-r1-norep-exsentence-fu365" in specs
    assert specs["ps-calnone-r3-rep-exsentence-fu182"]["exact"] == ("sentence_type",)
    assert specs["ipw-fu365"]["method"] == "ipw"
    # names are safe as file names and wildcards
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_.") for n in specs)
    assert list(sens.grid_choices(GRID, headline)) == list(specs) == sorted(specs)
    assert len(sens.grid_choices({**GRID, "ipw": False}, headline)) == len(specs) - 2
    # a headline outside the grid is added to it
    odd = _headline(caliper=0.05)
    assert len(sens.grid_choices(GRID, odd)) == len(specs) + 1


# ----------------------------------------------------------------------------------- placebo


def test_placebo_size_and_assignments():
    assert sens.placebo_size(300, 2000, ratio=1) == 300
    assert sens.placebo_size(300, 500, ratio=1) == 250
    assert sens.placebo_size(300, 500, ratio=3) == 125
    masks = list(sens.placebo_assignments(50, 10, 3, seed=4))
    assert all(m.sum() == 10 for m in masks)
    again = list(sens.placebo_assignments(50, 10, 3, seed=4))
    assert all((a == b).all() for a, b in zip(masks, again, strict=True))
    assert not (masks[0] == masks[1]).all()


def test_placebo_distribution_centres_on_zero():
    """With a random placebo among comparators and an unadjusted difference in proportions,
    the estimates centre on the true value 0 and about alpha of them are significant."""
    rng = np.random.default_rng(0)
    n = 600
    pool = pd.DataFrame({"reoffended": rng.binomial(1, 0.4, n), "treated": False})

    class E:
        def __init__(self, d):
            y1 = d.loc[d["treated"], "reoffended"]
            y0 = d.loc[~d["treated"], "reoffended"]
            self.estimate = y1.mean() - y0.mean()
            self.se = math.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0))
            self.ci_low = self.estimate - 1.96 * self.se
            self.ci_high = self.estimate + 1.96 * self.se
            self.p_value = 2 * stats.norm.sf(abs(self.estimate) / self.se)

    dist = sens.placebo_distribution(pool, 150, 400, seed=1, estimate=E)
    assert len(dist) == 400
    # mean within 4 Monte Carlo SEs of zero
    assert abs(dist["estimate"].mean()) < 4 * dist["estimate"].std() / math.sqrt(400)
    assert 0.01 < (dist["p_value"] < 0.05).mean() < 0.10


def planted(n=1500, effect=-0.10, seed=3):
    """Confounded data with a known effect on the risk of the outcome among the treated:
    a cohort (covariates) and its outcomes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    sex = rng.choice(["female", "male"], n)
    t = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 0.8 * x)))
    p0 = np.clip(0.35 + 0.12 * x, 0.02, 0.98)
    y = (rng.random(n) < np.where(t, p0 + effect, p0)).astype(int)
    ids = [f"p{i:05d}" for i in range(n)]
    cohort = pd.DataFrame({"person_id": ids, "treated": t, "x": x, "sex": sex})
    outcomes = pd.DataFrame(
        {
            "person_id": ids,
            "reoffended": y,
            "n_reoffences": y,
            "days_to_first": np.where(y, 100, 365),
            "event": y,
            "followup_complete": True,
        }  # fmt: skip
    )
    return cohort, outcomes


@pytest.mark.parametrize(
    "name",
    [
        "logit_ps-cal0.2-r1-norep-exnone-fu365",
        "mahalanobis-calnone-r3-rep-exsex-fu365",
        "ipw-fu365",
    ],
)
def test_a_specification_recovers_a_planted_effect(name):
    grid = {**GRID, "exact": {"none": [], "sex": ["sex"]}, "followup_days": [365]}
    headline = _headline(covariates=("x", "sex"), categorical=("sex",), exact=())
    choice = sens.grid_choices(grid, headline)[name]
    cohort, outcomes = planted()
    row = sens.run_spec(cohort, outcomes, headline, choice, name)
    assert row["spec"] == name and row["error"] == ""
    assert row["ci_low"] < -0.10 < row["ci_high"]
    # the naive difference is biased by confounding (x raises both treatment and outcome)
    y, t = outcomes["reoffended"], cohort["treated"]
    naive = y[t].mean() - y[~t].mean()
    assert abs(row["estimate"] + 0.10) < abs(naive + 0.10)


def test_a_specification_that_cannot_be_estimated_is_a_row():
    cohort, outcomes = planted(n=60)
    cohort["treated"] = False
    headline = _headline(covariates=("x",), categorical=(), exact=())
    choice = sens.grid_choices(GRID, headline)["ps-cal0.1-r1-norep-exnone-fu365"]
    row = sens.run_spec(cohort, outcomes, headline, choice, "x")
    assert math.isnan(row["estimate"]) and row["error"]


# ------------------------------------------------------------------------------- dry run

ROOT = Path(__file__).resolve().parents[1]


def dry_run(*args: str) -> str:
    """``snakemake -n`` in the repository; returns stdout (the job plan)."""
    snakemake = Path(sys.executable).parent / "snakemake"
    proc = subprocess.run(
        [str(snakemake), "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    return proc.stdout + proc.stderr


def test_dry_run_batches_the_curve(tmp_path):
    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump({"sensitivity": {"spec_curve_batches": 3}}))
    out = dry_run("results/sensitivity/spec_curve.parquet", "--configfile", str(cfg))
    assert re.search(r"^spec_batch\s+3$", out, re.M)
    assert re.search(r"^spec_curve\s+1$", out, re.M)
    assert sorted(re.findall(r"wildcards: batch=(\d+)", out)) == ["0", "1", "2"]


def test_batches_partition_the_specifications():
    names = [f"s{i}" for i in range(10)]
    batch = sens.spec_curve.batch_of(names, 3)
    assert sorted(batch) == names and set(batch.values()) == {0, 1, 2}
    assert [n for n in names if batch[n] == 0] == ["s0", "s3", "s6", "s9"]


def test_batches_do_not_change_the_curve():
    """Batched specifications and one job per specification (the old layout: batches =
    number of specifications) give the same gathered curve, byte for byte (the table the
    spec_curve rule writes: batches concatenated in batch order, then sorted)."""
    import io

    grid = {
        "distance": ["logit_ps", "mahalanobis"],
        "caliper": [None, 0.05],
        "ratio": [1, 2],
        "replace": [False, True],
        "exact": {"none": [], "sex": ["sex"]},
        "ipw": True,
        "followup_days": [365],
    }
    headline = _headline(covariates=("x", "sex"), categorical=("sex",), exact=())
    choices = sens.grid_choices(grid, headline)
    cohort, outcomes = planted(n=400)
    windows = {365: outcomes}

    def gathered(n_batches: int) -> bytes:
        batch = sens.spec_curve.batch_of(choices, n_batches)
        parts = [
            sens.spec_curve.run_batch(
                cohort, windows, headline, {k: c for k, c in choices.items() if batch[k] == b}
            )
            for b in range(n_batches)
        ]
        buf = io.BytesIO()
        sens.sort_curve(pd.concat(parts, ignore_index=True)).to_parquet(buf, index=False)
        return buf.getvalue()

    one_each = gathered(len(choices))
    assert gathered(3) == one_each
    assert gathered(1) == one_each


def test_the_grid_is_light():
    """The Snakefile counts the specifications while it is parsed: the grid module (and
    the settings the rule files read) import no numpy, pandas or scipy (a fast dry run)."""
    code = (
        "import sys; import mydirection.sensitivity.grid, mydirection.settings, "
        "mydirection.fidelity.settings, mydirection.config, mydirection.preflight; "
        "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'jsonschema') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sort_curve_and_figure(tmp_path):
    curve = pd.DataFrame(
        {
            "spec": ["b", "a", "c", "d"],
            "estimate": [0.02, -0.01, np.nan, -0.01],
            "ci_low": [-0.03, -0.05, np.nan, -0.02],
            "ci_high": [0.07, 0.03, np.nan, -0.001],
            "balance_ok": [True, False, False, True],
            "is_headline": [False, True, False, False],
            "distance": ["ps", "logit_ps", "mahalanobis", "ipw"],
            "caliper": ["none", "0.2", "0.2", "none"],
            "ratio": [1, 3, 1, 0],
            "replace": [False, True, False, False],
            "exact": ["none", "none", "sentence", "none"],
            "followup_days": [365, 365, 182, 365],
        }
    )
    s = sens.sort_curve(curve)
    # ties (-0.01) broken by name, NaN last, rank 1..n; sorting twice is the same
    assert s["spec"].tolist() == ["a", "d", "b", "c"]
    assert s["rank"].tolist() == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(sens.sort_curve(s), s)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    sens.plot_spec_curve(s, a, 0.95)
    sens.plot_spec_curve(curve, b, 0.95)
    assert a.read_bytes() == b.read_bytes()


def test_curve_numbers_summarise_the_estimable_specifications():
    """The curve's summary numbers against the four rows counted by hand: one row cannot be
    estimated; of the three others, two balance, two are negative and one interval excludes
    zero; the headline ranks first."""
    from mydirection.sensitivity.spec_curve import curve_numbers

    curve = pd.DataFrame(
        {
            "spec": ["a", "d", "b", "c"],
            "estimate": [-0.01, -0.03, 0.02, np.nan],
            "ci_low": [-0.05, -0.06, -0.03, np.nan],
            "ci_high": [0.03, -0.001, 0.07, np.nan],
            "balance_ok": [False, True, True, False],
            "is_headline": [True, False, False, False],
            "rank": [1, 2, 3, 4],
        }
    )
    n = {k: v.value for k, v in curve_numbers(curve).items()}
    assert all(k.startswith("spec_curve.") for k in n)
    assert (n["spec_curve.n"], n["spec_curve.n_estimable"]) == (4, 3)
    assert n["spec_curve.median_estimate"] == pytest.approx(-0.01)
    assert (n["spec_curve.min_estimate"], n["spec_curve.max_estimate"]) == (-0.03, 0.02)
    assert n["spec_curve.median_estimate_balanced"] == pytest.approx((-0.03 + 0.02) / 2)
    assert n["spec_curve.share_balanced"] == pytest.approx(2 / 3)
    assert n["spec_curve.share_negative"] == pytest.approx(2 / 3)
    assert n["spec_curve.share_significant"] == pytest.approx(1 / 3)
    assert n["spec_curve.headline_rank"] == 1
