"""Noise-free person x quarter panels with a known effect, shared by the panel tests.

Offending = person level + calendar-quarter effect + a common event-time profile (a peak
around the index offence that decays) + a constant effect after the index date for the
treated. Index dates are spread evenly over the stated windows, so every panel is exact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mydirection.effects.panel import offence_panel

EMPTY = pd.DataFrame({"person_id": [], "offence_date": pd.to_datetime([]), "offence_group": []})


def spread(start, end, n):
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    return list(s + pd.to_timedelta(np.linspace(0, (e - s).days, n).round(), unit="D"))


def by_quarter(counts, year=2018):
    """Index dates spread over each quarter of ``year``: ``counts[q]`` people in quarter q."""
    out = []
    for q, c in zip(pd.period_range(f"{year}Q1", f"{year}Q4", freq="Q"), counts, strict=True):
        out += spread(q.start_time, q.end_time.normalize(), c)
    return out


def people(treated_dates, comparator_dates):
    dates = list(treated_dates) + list(comparator_dates)
    n, n_t = len(dates), len(treated_dates)
    return pd.DataFrame(
        {
            "person_id": [f"p{i:04d}" for i in range(n)],
            "treated": np.arange(n) < n_t,
            "index_date": pd.DatetimeIndex(dates),
            "weights": 1.0,
            "subclass": np.r_[np.arange(n_t), np.arange(n - n_t) % n_t],
        }
    )


# Treated indexed in the second half of 2018, comparators in the first half.
STAGGERED = people(spread("2018-07-01", "2018-12-31", 120), spread("2018-01-01", "2018-06-30", 120))
# The pilot's index dates: treated 35, 41, 50, 24 per quarter of 2018; comparators even.
PILOT_LIKE = people(by_quarter([35, 41, 50, 24]), by_quarter([38, 37, 36, 39]))


def profile(k):
    """Common event-time profile: a peak around the index offence (quarter -2), then decay."""
    return 0.1 + 0.5 * np.exp(-np.abs(k + 2) / 1.5)


def noise_free(people, effect=-0.1, cohort_effect=None):
    """Exact panel: offences = person + calendar + event time + effect x treated x post.

    ``cohort_effect``: {index quarter: effect} replaces the constant ``effect`` per
    enrolment cohort of the treated.
    """
    p = offence_panel(people, EMPTY)
    cal = pd.PeriodIndex(p["calendar_quarter"], freq="Q").asi8
    cal = cal - cal.min()
    k = p["rel_quarter"].to_numpy()
    i = pd.factorize(p["person_id"])[0]
    treated_post = p["treated"].to_numpy() * (k >= 0)
    if cohort_effect is not None:
        cohort = p["person_id"].map(p.loc[k == 0].set_index("person_id")["calendar_quarter"])
        effect = cohort.map(cohort_effect).fillna(0.0).to_numpy()
    p["offences"] = (
        0.2 + 0.1 * (i % 7) + 0.03 * cal + 0.05 * np.sin(cal) + profile(k) + effect * treated_post
    )
    return p


def dummies(codes):
    codes = pd.factorize(codes, sort=True)[0]
    return np.eye(codes.max() + 1)[codes]


def all_dummies_ols(panel, treated_terms):
    """Independent reference: least squares on every person, calendar-quarter and
    relative-quarter dummy plus the treated terms (minimum-norm solution of the
    rank-deficient system; the treated terms are estimable, so unique)."""
    X = np.column_stack(
        [np.column_stack(list(treated_terms.values()))]
        + [dummies(panel[c]) for c in ("person_id", "calendar_quarter", "rel_quarter")]
    )
    w = np.sqrt(panel["weights"].to_numpy(float))
    b = np.linalg.lstsq(X * w[:, None], panel["offences"].to_numpy(float) * w, rcond=None)[0]
    return dict(zip(treated_terms, b[: len(treated_terms)], strict=True))


# Index dates in the middle of their quarter: every relative quarter starts in the index
# quarter + k, so event time = calendar time - index quarter exactly (age-period-cohort).
MID_QUARTER = people(
    [pd.Timestamp(f"2018-{m:02d}-15") for m in (2, 5, 8, 11) for _ in range(10)],
    [pd.Timestamp(f"2018-{m:02d}-14") for m in (2, 5, 8, 11) for _ in range(12)],
)
