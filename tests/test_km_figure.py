"""Tests of mydirection.effects.km_figure: the published Kaplan-Meier curve reveals no count
of people below the suppression threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mydirection.effects.km_figure import NOT_SHOWN, km_for_publication
from mydirection.effects.survival import kaplan_meier, plot_km

TICKS = [0, 91, 182, 273, 365]
K = 5


def _people(df, a, b):
    """Events and censorings in [a, b) and people at risk at b, counted from the rows."""
    inside = (df["t"] >= a) & (df["t"] < b)
    return (
        int((inside & (df["e"] == 1)).sum()),
        int((inside & (df["e"] == 0)).sum()),
        int((df["t"] >= b).sum()),
    )


def _small(x, k=K):
    return 0 < x < k


def _attack(curve, at_risk, n_total, k=K):
    """What a reader can compute from the published tables (unweighted curves): the
    people who left between two released points (difference of numbers at risk) and
    the re-offences implied by each drop of the curve. Returns the small ones found."""
    found = []
    for _, d in curve.groupby("group", dropna=False):
        r = d["at_risk"].to_numpy()
        s = d["survival"].to_numpy()
        found += [x for x in -np.diff(r) if _small(x, k)]
        found += [x for x in r if _small(x, k)]
        # a drop from S_a to S_b with n_a at risk: about n_a (1 - S_b / S_a) re-offences
        with np.errstate(divide="ignore", invalid="ignore"):
            implied = np.round(r[:-1] * (1 - s[1:] / s[:-1]))
        found += [x for x in implied if _small(x, k)]
    for label in at_risk["label"]:
        if label not in ("0", f"<{k}", NOT_SHOWN):
            n = int(label.replace(",", ""))
            found += [n] if _small(n, k) else []
    return found


def _raw_tables(km):
    """The unsafe publication: every step and every number at risk of the KM table."""
    curve = km[["group", "time", "survival", "n_at_risk"]].rename(columns={"n_at_risk": "at_risk"})
    return curve, pd.DataFrame({"label": []})


def test_seven_people_reveal_nothing_below_the_threshold():
    # 7 people: re-offences on days 10, 40, 70, 100, 200, 300; one reaches day 365
    df = pd.DataFrame({"t": [10, 40, 70, 100, 200, 300, 365], "e": [1, 1, 1, 1, 1, 1, 0]})
    km = kaplan_meier(df, "t", "e")
    curve, at_risk = km_for_publication(km, threshold=K, ticks=TICKS)
    # the raw table would reveal single re-offences (the test can fail)
    assert _attack(*_raw_tables(km), 7)
    assert _attack(curve, at_risk, 7) == []
    # no drop is published: any interval with re-offences would leave fewer than 5 at risk
    assert (curve["survival"] == 1.0).all()
    assert list(at_risk["label"]) == ["7", "<5", "<5", "<5", "<5"]
    # other small counts per interval (1, 3 or 6 re-offences by day 91, ...) give exactly
    # the same publication: they cannot be recovered from it
    for moved in (
        [10, 50, 60, 150, 250, 310],
        [10, 12, 14, 16, 18, 20],
        [13, 20, 30, 100, 101, 102],
    ):
        other = kaplan_meier(df.assign(t=[*moved, 365]), "t", "e")
        c2, r2 = km_for_publication(other, threshold=K, ticks=TICKS)
        pd.testing.assert_frame_equal(c2, curve)
        pd.testing.assert_frame_equal(r2, at_risk)


def test_seven_people_who_all_reoffend_show_one_drop_of_seven():
    df = pd.DataFrame({"t": [10, 40, 70, 100, 200, 300, 340], "e": [1] * 7})
    curve, at_risk = km_for_publication(kaplan_meier(df, "t", "e"), threshold=K, ticks=TICKS)
    assert curve["survival"].iloc[-1] == 0.0 and curve["at_risk"].iloc[-1] == 0
    assert set(curve["survival"]) == {0.0, 1.0}  # the drop is all seven at once
    assert _attack(curve, at_risk, 7) == []


def test_too_few_reoffences_in_the_tail_merge_back_instead_of_cutting_the_curve():
    # 100 people: 5 re-offend on each of days 10, 50, 100, 150, 200, 250, 3 on day 320,
    # 67 reach day 365. The 3 late re-offences cannot be an interval of their own: they
    # are merged with the day-250 ones, so the curve still reaches day 365 (at 67/100).
    days = [d for d in (10, 50, 100, 150, 200, 250) for _ in range(5)] + [320] * 3
    df = pd.DataFrame({"t": days + [365] * 67, "e": [1] * 33 + [0] * 67})
    curve, at_risk = km_for_publication(kaplan_meier(df, "t", "e"), threshold=K, ticks=TICKS)
    assert curve["time"].iloc[-1] == 365 and curve["survival"].iloc[-1] == pytest.approx(0.67)
    assert list(at_risk["label"]) == ["100", "90", "80", NOT_SHOWN, "67"]
    assert 245 <= curve["time"].iloc[-2] <= 250  # the last interval holds days 250 and 320
    _check_against_rows(df, curve, at_risk, K)


def _check_against_rows(df, curve, at_risk, k):
    """The rule, checked from the raw rows (not from the KM table)."""
    bounds = curve["time"].tolist()
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        events, censored, left = _people(df, a, b)
        assert not _small(events, k) and not _small(censored, k) and not _small(left, k)
        assert _people(df, -1, a)[2] >= k  # at least k at risk at the start
    released = set(bounds)
    for t, label in zip(at_risk["time"], at_risk["label"], strict=True):
        n = _people(df, -1, t)[2]
        if t in released:
            assert label == f"{n:,}" and not _small(n, k)
        else:
            assert label == ("0" if n == 0 else f"<{k}" if n < k else NOT_SHOWN)
    if len(df) < k:
        assert curve.empty


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(1, 365), st.booleans(), st.sampled_from([0.5, 1.0, 2.0])),
        min_size=1,
        max_size=60,
    ),
    k=st.sampled_from([3, 5, 10]),
    step=st.sampled_from([1.0, 7.0, 30.0]),
)
def test_every_released_interval_holds_zero_or_at_least_k_people(rows, k, step):
    df = pd.DataFrame(rows, columns=["t", "e", "w"]).assign(e=lambda d: d["e"].astype(int))
    km = kaplan_meier(df, "t", "e", weights="w")
    curve, at_risk = km_for_publication(km, threshold=k, ticks=TICKS, step=step)
    _check_against_rows(df, curve, at_risk, k)
    assert _attack(curve, at_risk, len(df), k) == [] or not (df["w"] == 1).all()


def test_released_points_are_the_weighted_km_just_before_each_boundary():
    rng = np.random.default_rng(3)
    n = 400
    g = rng.integers(0, 2, n).astype(bool)
    t = rng.exponential(np.where(g, 900, 700))
    e = t <= 365
    df = pd.DataFrame(
        {"t": np.where(e, np.ceil(t), 365), "e": e.astype(int), "g": g,
         "w": np.where(g, 1.0, rng.choice([0.5, 1.0, 2.0], n))}
    )  # fmt: skip
    km = kaplan_meier(df, "t", "e", group="g", weights="w")
    curve, at_risk = km_for_publication(km, threshold=K, ticks=TICKS)
    for (label, d), (_, raw) in zip(curve.groupby("group"), df.groupby("g"), strict=True):
        k = km[km["group"] == label]
        for row in d.itertuples():
            before = k[k["time"] < row.time]
            s = before["survival"].iloc[-1] if len(before) else 1.0
            assert row.survival == pytest.approx(s)
            assert row.at_risk == int((raw["t"] >= row.time).sum())  # people, unweighted
        _check_against_rows(raw, d, at_risk[at_risk["group"] == label], K)
    # with these numbers every tick is released and the curve reaches day 365
    assert (at_risk["label"] != NOT_SHOWN).all()
    assert curve.groupby("group")["time"].max().tolist() == [365.0, 365.0]


def test_needs_the_people_counts_and_a_positive_threshold():
    km = kaplan_meier(pd.DataFrame({"t": [1, 2], "e": [1, 0]}), "t", "e")
    with pytest.raises(ValueError, match="n_events"):
        km_for_publication(km.drop(columns=["n_events"]))
    with pytest.raises(ValueError, match="threshold"):
        km_for_publication(km, threshold=0)


def test_plot_km_draws_the_published_curve(tmp_path):
    df = pd.DataFrame({"t": [10, 40, 70, 100, 200, 300, 365] * 2, "e": [1, 1, 1, 1, 1, 1, 0] * 2})
    df["g"] = [False] * 7 + [True] * 7
    path = tmp_path / "km.png"
    plot_km(kaplan_meier(df, "t", "e", group="g"), path, "t", ticks=TICKS)
    assert path.stat().st_size > 0
