"""What the event study's leads can and cannot show in this design.

The leads (treated minus comparison in the quarters before the index date) are usually read
as a check of parallel trends. Here they are a weak one, for two reasons that this module
makes countable for the report:

- *The matching balances them by construction.* The propensity model matches on recent
  offending (``offences_last_12m``: offences in the 365 days before the index date) and on
  the whole history (``n_previous_offences``). The relative quarters wholly inside such a
  window (quarters -4 to -1 for 365 days) are balanced, in total, by the matching itself;
  a joint leads test near zero there is what the design produces whatever the trends.
  Worse, when the groups' underlying levels differ, matching on a noisy recent level
  selects comparators whose offending then regresses to their own (different) mean after
  the index date: the leads inside the window stay balanced while the lags are biased
  (Daw and Hatfield 2018, "Matching and regression to the mean in difference-in-differences
  analysis", Health Services Research 53(6)). Only the leads outside every matching window
  carry information, and they are balanced in total through ``n_previous_offences``.
- *The pre-period is dominated by the index offence.* Every eligible person has one (an
  order is imposed for it), committed in the months before the index date; the panel
  counts it in the leads. Offences proven on or after the index date (the index offence
  and those sentenced with it) are invisible to the pre-index history covariates but
  common to both groups by eligibility; :func:`lead_diagnostics` reports their share when
  the panel has ``offences_proven_before_index``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mydirection.effects.panel import QUARTER_DAYS

#: Matching covariates that count offences over a window before the index date (days).
HISTORY_WINDOWS = {"offences_last_12m": 365}


def quarter_days(k: int) -> tuple[int, int]:
    """First and last whole day (index date = day 0) of relative quarter ``k``."""
    return math.floor(k * QUARTER_DAYS) + 1, math.floor((k + 1) * QUARTER_DAYS)


def window_quarters(window_days: float, quarters_before: int) -> list[int]:
    """Relative quarters (< 0) lying wholly inside the ``window_days`` before the index
    date (days ``-window_days .. 0``)."""
    return [k for k in range(-quarters_before, 0) if quarter_days(k)[0] >= -window_days]


def lead_diagnostics(
    panel: pd.DataFrame,
    covariates=None,
    windows: dict[str, float] | None = None,
    treatment: str = "treated",
) -> pd.DataFrame:
    """One row per pre-index relative quarter: what the leads are made of.

    ``covariates``: the matching covariates (only those in ``windows`` -- default
    :data:`HISTORY_WINDOWS` -- count); None = every covariate in ``windows``.
    Columns: ``rel_quarter``, ``first_day``, ``last_day``, ``matched_window`` (the matching
    covariates whose window covers the whole quarter, comma-separated, "" if none),
    ``share_of_pre_offences`` (weighted, both groups), ``treated_mean``,
    ``comparison_mean`` (offences per person), and with ``offences_proven_before_index``
    in the panel, ``share_proven_on_or_after_index`` (offences committed in the quarter
    but proven on or after the index date: the index offence and those sentenced with it).
    ``attrs``: ``window_leads`` (quarters inside a matching window), ``outside_leads``,
    ``share_pre_in_window`` and ``share_pre_proven_on_or_after_index``.
    """
    windows = dict(HISTORY_WINDOWS if windows is None else windows)
    if covariates is not None:
        windows = {c: d for c, d in windows.items() if c in set(covariates)}
    pre = panel[panel["rel_quarter"] < 0]
    ks = sorted(pre["rel_quarter"].unique())
    w = pre["weights"].to_numpy(float)
    t = pre[treatment].to_numpy(bool)
    k = pre["rel_quarter"].to_numpy()
    y = pre["offences"].to_numpy(float)
    total = float((w * y).sum())
    proven = "offences_proven_before_index" in pre
    rows = []
    for q in ks:
        m = k == q
        first, last = quarter_days(q)
        row = {
            "rel_quarter": q,
            "first_day": first,
            "last_day": last,
            "matched_window": ",".join(c for c, d in windows.items() if first >= -d),
            "share_of_pre_offences": float((w * y)[m].sum() / total) if total else np.nan,
            "treated_mean": _mean(y, w, m & t),
            "comparison_mean": _mean(y, w, m & ~t),
        }
        if proven:
            late = y - pre["offences_proven_before_index"].to_numpy(float)
            n = (w * y)[m].sum()
            row["share_proven_on_or_after_index"] = float((w * late)[m].sum() / n) if n else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    inside = out["matched_window"] != ""
    out.attrs["window_leads"] = [int(q) for q in out.loc[inside, "rel_quarter"]]
    out.attrs["outside_leads"] = [int(q) for q in out.loc[~inside, "rel_quarter"]]
    out.attrs["share_pre_in_window"] = float(out.loc[inside, "share_of_pre_offences"].sum())
    if proven:
        late = (w * (y - pre["offences_proven_before_index"].to_numpy(float))).sum()
        out.attrs["share_pre_proven_on_or_after_index"] = float(late / total) if total else np.nan
    return out


def _mean(y, w, m) -> float:
    return float((w[m] * y[m]).sum() / w[m].sum()) if w[m].sum() > 0 else np.nan
