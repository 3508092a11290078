"""The summary's computed numbers and sentences (``registry.*``), from registry values."""

from __future__ import annotations

from mydirection.reporting.disclosure import is_number as _is_number
from mydirection.reporting.numbers import Number


def number(value, kind, unit="", *, derived_from=(), decimals=None, label=""):
    return Number(
        value, kind, label, unit=unit, derived_from=tuple(derived_from), decimals=decimals
    ).as_dict()


def derive_summary(entries: dict[str, dict], alpha: float) -> dict[str, dict]:
    """The summary's computed numbers and sentences (``registry.*``), from registry values.

    Needs ``reoffending.rate_treated``/``rate_comparison`` (the "for 100 typical people"
    reading), ``reoffending.rate_difference_ci_low/_ci_high/_p`` (the verdict), and
    ``power.mde_rate_pp`` (the power caveat); entries are made when those keys are present
    (value ``None``, shown ``n/a``, when a source value is missing or not finite).
    Every entry lists the keys it was computed from, so suppression propagates.
    """
    v = {k: e.get("value") for k, e in entries.items()}
    out: dict[str, dict] = {}
    rt, rc = "reoffending.rate_treated", "reoffending.rate_comparison"
    ok = _is_number(v.get(rt)) and _is_number(v.get(rc))
    if ok or (rt in entries and rc in entries):
        out["registry.typical_n"] = number(
            100, "estimate", "people", decimals=0, label="Typical people in the reading"
        )
        out["registry.typical_treated"] = number(
            100 * v[rt] if ok else None,
            "estimate",
            "people per 100",
            decimals=0,
            derived_from=[rt],
            label="Of 100 typical participants, re-offended",
        )
        out["registry.typical_comparison"] = number(
            100 * v[rc] if ok else None,
            "estimate",
            "people per 100",
            decimals=0,
            derived_from=[rc],
            label="Of 100 similar non-participants, re-offended",
        )
        diff = round(100 * v[rt]) - round(100 * v[rc]) if ok else None
        word = (
            None
            if diff is None
            else (
                "fewer participants than comparators re-offend"
                if diff < 0
                else "more participants than comparators re-offend"
                if diff > 0
                else "as many participants as comparators re-offend"
            )
        )
        out["registry.typical_direction"] = number(
            word, "text", derived_from=[rt, rc], label="Direction of the difference"
        )
    lo, hi, p = (
        "reoffending.rate_difference_ci_low",
        "reoffending.rate_difference_ci_high",
        "reoffending.rate_difference_p",
    )
    if not all(_is_number(v.get(k)) for k in (lo, hi)) and lo in entries and hi in entries:
        out["registry.verdict"] = number(
            None,
            "text",
            derived_from=[lo, hi],
            label="Statistical verdict on the re-offending rate",
        )
    elif lo in entries and hi in entries:
        significant = v[lo] > 0 or v[hi] < 0
        if _is_number(v.get(p)):
            significant = significant and v[p] < alpha
        if not significant:
            verdict = "not statistically significant"
        elif v[hi] < 0:
            verdict = "a statistically significant reduction"
        else:
            verdict = "a statistically significant increase"
        out["registry.verdict"] = number(
            verdict,
            "text",
            derived_from=[k for k in (lo, hi, p) if k in entries],
            label="Statistical verdict on the re-offending rate",
        )
    d, mde = "reoffending.rate_difference", "power.mde_rate_pp"
    if d in entries and mde in entries and not (_is_number(v.get(d)) and _is_number(v.get(mde))):
        out["registry.power_caveat"] = number(
            None,
            "text",
            derived_from=[d, mde],
            label="Observed difference against the detectable difference",
        )
    elif d in entries and mde in entries:
        mde_prop = v[mde] / 100 if entries[mde].get("kind") != "pp" else v[mde]
        within = abs(v[d]) < mde_prop
        out["registry.power_caveat"] = number(
            "smaller than" if within else "at least as large as",
            "text",
            derived_from=[d, mde],
            label="Observed difference against the detectable difference",
        )
    return out
