"""The fidelity index: per person, its bands, item coverage, and per case manager.

Rules, in order:

1. **Composite index** (per person): the weighted mean of the scorable items
   (:mod:`mydirection.fidelity.items`) with a positive weight (``weights``), times 100. A
   person with fewer than ``min_scorable_items`` such items has no index (``NaN``, band
   ``<NA>``). Each named set of ``alternative_weights`` gives an alternative index,
   reported beside the main one as a sensitivity check (:func:`alternative_indices`).
2. **Bands**: ``low`` below ``bands.moderate`` (50), ``moderate`` below ``bands.high``
   (80), ``high`` from 80; the index is rounded to 9 decimals before banding so that 80
   computed as 79.99999999999999 is high.
3. **Item coverage**: per item, how many people could be scored and, among them, the mean
   item score (the adherence share) and the number with a full score.
4. **Case managers** (practitioner level; moderators beside the index, never in it): the
   mean index of their scored cases with a t interval at the analysis plan's confidence
   level ``1 - analysis.alpha`` (cut to 0-100), its band, their caseload, whether they were
   trained before their first enrolment and the Action Learning Sets they attended.

Duration (days enrolled) is a moderator and is never part of the index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mydirection import normal
from mydirection.fidelity.items import ITEM_LABELS, ITEMS

if TYPE_CHECKING:
    from mydirection.fidelity.settings import FidelitySettings

BANDS = ("low", "moderate", "high")


def composite_index(
    wide: pd.DataFrame, weights: dict[str, float], min_scorable_items: int
) -> tuple[pd.Series, pd.Series]:
    """Weighted mean of scorable items x 100, and the number of scorable weighted items.

    ``wide`` has one column per item (0-1 or NaN). Items with weight 0 or absent from
    ``weights`` are ignored. Fewer than ``min_scorable_items`` scorable weighted items:
    NaN.
    """
    items = [i for i in wide.columns if weights.get(i, 0) > 0]
    if not items:
        raise ValueError("no item has a positive weight")
    x = wide[items].to_numpy(dtype=float)
    w = np.array([float(weights[i]) for i in items])
    ok = ~np.isnan(x)
    n = ok.sum(axis=1)
    wsum = (ok * w).sum(axis=1)
    num = (np.where(ok, x, 0.0) * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        idx = 100.0 * num / wsum
    idx[n < min_scorable_items] = np.nan
    return pd.Series(idx, index=wide.index), pd.Series(n, index=wide.index)


def band(index, moderate: float, high: float) -> pd.Series:
    """Fidelity band of each index value: low (<moderate), moderate (<high), high; NaN: <NA>."""
    x = pd.Series(index, dtype=float).round(9)
    out = pd.Series(pd.NA, index=x.index, dtype="string")
    out[x < moderate] = "low"
    out[(x >= moderate) & (x < high)] = "moderate"
    out[x >= high] = "high"
    return out


def _wide(items: pd.DataFrame) -> pd.DataFrame:
    return items.pivot(index="person_id", columns="item", values="score")[list(ITEMS)]


def person_index(
    items: pd.DataFrame, periods: pd.DataFrame, settings: FidelitySettings
) -> pd.DataFrame:
    """Index per person with band, duration moderator and wide item scores (``item_<item>``)."""
    wide = _wide(items)
    idx, n = composite_index(wide, settings.weights, settings.min_scorable_items)
    per = periods.set_index("person_id")
    out = per[
        ["case_manager_id", "enrolment_date", "enrolment_end", "still_enrolled", "days_enrolled"]
    ].copy()
    out["enrolment_month"] = out["enrolment_date"].dt.to_period("M").dt.to_timestamp()
    out["n_scorable"] = n.reindex(out.index).astype(int)
    out["index"] = idx.reindex(out.index)
    out["band"] = band(out["index"], settings.band_moderate, settings.band_high).array
    for item in ITEMS:
        out[f"item_{item}"] = wide[item].reindex(out.index)
    return out.reset_index()


def alternative_indices(items: pd.DataFrame, settings: FidelitySettings) -> pd.DataFrame:
    """The index under each set of ``alternative_weights``, long: ``person_id``,
    ``weights`` (the set's name), ``index`` (same minimum of scorable items)."""
    wide = _wide(items)
    parts = []
    for name, w in sorted(settings.alternative_weights.items()):
        alt, _ = composite_index(wide, w, settings.min_scorable_items)
        parts.append(
            pd.DataFrame({"person_id": wide.index, "weights": name, "index": alt.to_numpy()})
        )
    if not parts:
        return pd.DataFrame(
            {
                "person_id": pd.Series([], dtype=object),
                "weights": pd.Series([], dtype=object),
                "index": pd.Series([], dtype=float),
            }
        )
    return pd.concat(parts, ignore_index=True)


def item_coverage(items: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """How often each item could be scored, and adherence among those scored.

    ``mean_score`` is the mean item score (the adherence share) over scorable people;
    ``n_met`` counts full scores.
    """
    g = items.groupby("item", sort=False)
    out = pd.DataFrame(
        {
            "domain": g["domain"].first(),
            "n_people": g.size(),
            "n_scorable": g["scorable"].sum().astype(int),
            "mean_score": g["score"].mean(),
            "n_met": g["score"].apply(lambda v: int((v == 1).sum())),
        }
    ).reindex(list(ITEMS))
    out["n_not_scorable"] = out["n_people"] - out["n_scorable"]
    out["share_scorable"] = out["n_scorable"] / out["n_people"]
    out["weight"] = [float(weights.get(i, 0)) for i in out.index]
    out["label"] = [ITEM_LABELS[i] for i in out.index]
    out.index.name = "item"
    cols = ["domain", "label", "weight", "n_people", "n_scorable", "n_not_scorable"]
    return out[cols + ["share_scorable", "mean_score", "n_met"]].reset_index()


def mean_ci(
    values, alpha: float, lower: float = 0.0, upper: float = 100.0
) -> tuple[float, float, float, int]:
    """Mean with a t-based confidence interval at confidence ``1 - alpha`` (the analysis
    plan's level), cut to the index range [lower, upper]. NaN bounds for fewer than 2 values.
    """
    v = np.asarray(pd.Series(values, dtype=float).dropna())
    n = len(v)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    m = float(v.mean())
    if n < 2:
        return m, np.nan, np.nan, n
    half = normal.t_ppf(1 - alpha / 2, n - 1) * v.std(ddof=1) / np.sqrt(n)
    return m, max(m - half, lower), min(m + half, upper), n


def case_manager_index(
    person: pd.DataFrame,
    enrolments: pd.DataFrame,
    staff: pd.DataFrame,
    settings: FidelitySettings,
    supervision: pd.DataFrame | None = None,
    *,
    alpha: float,
) -> pd.DataFrame:
    """Per case manager: mean index of their scored cases with a t interval at confidence
    ``1 - alpha`` (the analysis plan's level), band and moderators.

    ``caseload`` counts every enrolment the case manager made (``enrolments``), scored or
    not. ``supervision_caseload`` (when ``supervision`` is given) counts the supervision
    events allocated to them that were open at some time during the pilot period (first to
    last enrolment date of anyone). ``trained_before_first_enrolment`` is True when
    ``trained_date`` is on or before their first enrolment, False when later or never
    trained, missing (<NA>) when the case manager is absent from the staff extract.
    """
    rows = []
    first = enrolments.groupby("case_manager_id")["enrolment_date"].min()
    caseload = enrolments.groupby("case_manager_id").size()
    sup_load = None
    if supervision is not None:
        start, end = enrolments["enrolment_date"].min(), enrolments["enrolment_date"].max()
        open_ = (supervision["start_date"] <= end) & (
            supervision["end_date"].isna() | (supervision["end_date"] >= start)
        )
        sup_load = supervision.loc[open_].groupby("case_manager_id").size()
    st = staff.drop_duplicates("case_manager_id").set_index("case_manager_id")
    for cm in sorted(first.index):
        vals = person.loc[person["case_manager_id"] == cm, "index"]
        m, lo, hi, n = mean_ci(vals, alpha)
        known = cm in st.index
        trained = st["trained_date"].get(cm) if known else pd.NaT
        rows.append(
            {
                "case_manager_id": cm,
                "office": st["office"].get(cm) if known else None,
                "grade": st["grade"].get(cm) if known else None,
                "caseload": int(caseload[cm]),
                "supervision_caseload": (pd.NA if sup_load is None else int(sup_load.get(cm, 0))),
                "n_scored": n,
                "mean_index": m,
                "ci_low": lo,
                "ci_high": hi,
                "first_enrolment_date": first[cm],
                "trained_date": trained,
                "trained_before_first_enrolment": (
                    pd.NA if not known else bool(pd.notna(trained) and trained <= first[cm])
                ),
                "als_attended": (st["action_learning_sets_attended"].get(cm) if known else pd.NA),
            }
        )
    out = pd.DataFrame(rows)
    out["band"] = band(out["mean_index"], settings.band_moderate, settings.band_high).array
    out["trained_before_first_enrolment"] = out["trained_before_first_enrolment"].astype("boolean")
    out["als_attended"] = out["als_attended"].astype("Int64")
    out["supervision_caseload"] = out["supervision_caseload"].astype("Int64")
    out["trained_date"] = pd.to_datetime(out["trained_date"])
    return out
