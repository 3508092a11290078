"""Sensitivity to unobserved confounding: Rosenbaum bounds and E-values.

Rosenbaum bounds (Rosenbaum, *Observational Studies*, 2nd ed., 2002, ch. 4)
--------------------------------------------------------------------------
Within a matched set, two people with the same observed covariates may still differ in
their odds of receiving the programme by up to a factor ``Gamma`` because of something
unobserved. For each ``Gamma`` we bound the one-sided p-value of the test of no effect.

Binary outcome, matched sets with one treated person and ``k_s`` comparators (1:1 pairs
have ``k_s = 1``). Let ``y`` be the outcome *in the direction of the alternative* (for a
programme hoped to reduce re-offending, ``y = 1`` means *not* re-offending; see
``alternative``). In set ``s`` with ``m_s`` people having ``y = 1`` among ``k_s + 1``, the
statistic ``T_s`` is the treated person's ``y``, and ``T = sum_s T_s``. The upper bound on the
p-value is attained when the unobserved confounder is ``u = y`` (the people with ``y = 1``
have the higher odds of treatment); then the treated person is one of the ``y = 1`` people
with probability::

    p_s+ = Gamma m_s / (Gamma m_s + k_s + 1 - m_s)

and ``T`` is a sum of independent Bernoulli(``p_s+``) (Rosenbaum 2002, sections 4.3-4.4).
Sets with ``m_s`` of 0 or ``k_s + 1`` are uninformative (``T_s`` is fixed) and drop out.
For 1:1 pairs only the discordant pairs remain, ``p_s+ = Gamma / (1 + Gamma)``, and the bound
is the McNemar form ``P(Binomial(D, Gamma / (1 + Gamma)) >= T)``.

:func:`rosenbaum_upper_p` computes the exact tail of this Poisson-binomial (by convolution)
or its normal approximation ``(T - sum p) / sqrt(sum p (1 - p))``; :func:`gamma_crossing`
finds the ``Gamma`` at which the upper bound first reaches ``alpha``.

Matching *with replacement* makes sets share comparators, so the sets are not independent;
the bound then is an approximation (the same one MatchIt/rbounds users make).

E-values (VanderWeele & Ding, Ann Intern Med 2017;167:268-274)
---------------------------------------------------------------
The minimum strength of association (risk-ratio scale) an unmeasured confounder would need
with both treatment and outcome to explain away an observed risk ratio ``RR``::

    E = RR + sqrt(RR (RR - 1))           for RR >= 1 (use 1 / RR when RR < 1)

and for the confidence limit nearer the null (1 when the interval contains 1). Odds and
hazard ratios are first converted to approximate risk ratios: unchanged for a rare outcome
(< 15 %); for a common outcome ``RR ~ sqrt(OR)`` and
``RR ~ (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))`` (VanderWeele 2017/2020).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = [
    "default_spec",
    "estimate_spec",
    "fit_spec",
    "matching_options",
    "evalue",
    "evalue_ci",
    "evalue_table",
    "gamma_crossing",
    "matched_sets",
    "placebo_assignments",
    "plot_spec_curve",
    "placebo_distribution",
    "placebo_size",
    "poisson_binomial_pmf",
    "poisson_binomial_sf",
    "rosenbaum_table",
    "rosenbaum_upper_p",
    "sort_curve",
    "spec_grid",
    "spec_name",
    "to_risk_ratio",
]


# ----------------------------------------------------------------------------- matched sets


def matched_sets(
    pairs: pd.DataFrame,
    outcomes: pd.DataFrame,
    outcome: str = "reoffended",
    *,
    alternative: str = "less",
) -> pd.DataFrame:
    """One row per matched set (one treated person and their comparators).

    ``pairs`` is ``pairs.parquet`` (``treated_id``, ``control_id``); ``outcomes`` has
    ``person_id`` and the binary ``outcome``. ``alternative="less"`` (the programme reduces
    the outcome) codes ``y = 1 - outcome`` so that large ``T`` is evidence for the programme;
    ``"greater"`` keeps ``y = outcome``.

    Returns ``set_id`` (the treated person's position in a stable sort), ``treated_y``,
    ``n_controls`` (``k_s``), ``controls_y`` (comparators with ``y = 1``). Person ids are not
    carried over.
    """
    if alternative not in ("less", "greater"):
        raise ValueError("alternative must be 'less' or 'greater'")
    y = outcomes.set_index("person_id")[outcome].astype(float)
    if alternative == "less":
        y = 1.0 - y
    p = pairs[["treated_id", "control_id"]].copy()
    p["yc"] = p["control_id"].map(y)
    p["yt"] = p["treated_id"].map(y)
    p = p.dropna(subset=["yc", "yt"])
    g = p.groupby("treated_id", sort=True)
    out = pd.DataFrame(
        {
            "treated_y": g["yt"].first().astype(int),
            "n_controls": g["yc"].size().astype(int),
            "controls_y": g["yc"].sum().astype(int),
        }
    ).reset_index(drop=True)
    out.insert(0, "set_id", np.arange(len(out)))
    return out


def _set_probs(sets: pd.DataFrame, gamma: float) -> tuple[np.ndarray, int]:
    """Worst-case P(T_s = 1) per informative set, and the observed T."""
    k = sets["n_controls"].to_numpy(dtype=float)
    m = sets["controls_y"].to_numpy(dtype=float) + sets["treated_y"].to_numpy(dtype=float)
    informative = (m > 0) & (m < k + 1)
    k, m = k[informative], m[informative]
    p = gamma * m / (gamma * m + (k + 1 - m))
    t = int(sets["treated_y"].to_numpy()[informative].sum())
    return p, t


# ------------------------------------------------------------------------ distribution


def poisson_binomial_pmf(p) -> np.ndarray:
    """PMF of a sum of independent Bernoulli(p_i) (exact, by convolution)."""
    pmf = np.array([1.0])
    for pi in np.asarray(p, dtype=float):
        pmf = np.append(pmf * (1 - pi), 0.0) + np.insert(pmf * pi, 0, 0.0)
    return pmf


def poisson_binomial_sf(t: int, p) -> float:
    """``P(sum Bernoulli(p_i) >= t)``."""
    pmf = poisson_binomial_pmf(p)
    if t <= 0:
        return 1.0
    if t >= len(pmf):
        return 0.0
    return float(min(1.0, pmf[t:].sum()))


def rosenbaum_upper_p(sets: pd.DataFrame, gamma: float, method: str = "exact") -> float:
    """Upper bound on the one-sided p-value at sensitivity ``gamma`` (>= 1).

    ``sets`` as from :func:`matched_sets`. ``method="exact"`` sums the Poisson-binomial
    tail (for 1:1 pairs, the binomial tail of McNemar's test); ``"normal"`` uses the normal
    approximation without continuity correction (Rosenbaum 2002, eq. 4.x for sum statistics).
    """
    if gamma < 1:
        raise ValueError(f"gamma must be >= 1, got {gamma}")
    p, t = _set_probs(sets, gamma)
    if len(p) == 0:
        return math.nan
    if method == "exact":
        return poisson_binomial_sf(t, p)
    if method == "normal":
        mu, var = float(p.sum()), float((p * (1 - p)).sum())
        return float(stats.norm.sf((t - mu) / math.sqrt(var)))
    raise ValueError("method must be 'exact' or 'normal'")


def gamma_crossing(
    sets: pd.DataFrame, alpha: float = 0.05, method: str = "exact", gamma_max: float = 100.0
) -> float:
    """Smallest ``Gamma >= 1`` at which the upper-bound p-value reaches ``alpha``.

    1.0 when the result is not significant even with no hidden bias (or there are no
    informative sets); ``inf`` when the bound stays below ``alpha`` up to ``gamma_max``.
    """
    p1 = rosenbaum_upper_p(sets, 1.0, method)
    if math.isnan(p1) or p1 >= alpha:
        return 1.0
    if rosenbaum_upper_p(sets, gamma_max, method) < alpha:
        return math.inf

    def f(lg: float) -> float:
        return rosenbaum_upper_p(sets, math.exp(lg), method) - alpha

    return float(math.exp(optimize.brentq(f, 0.0, math.log(gamma_max), xtol=1e-10)))


def rosenbaum_table(sets: pd.DataFrame, gammas, alpha: float = 0.05) -> pd.DataFrame:
    """Bounds over a grid of ``Gamma``: exact and normal upper p, lower p (exact), and the
    summary counts (informative sets, observed and expected T)."""
    rows = []
    for g in gammas:
        p_up, t = _set_probs(sets, float(g))
        p_lo, _ = _set_probs(sets, 1.0 / float(g)) if g >= 1 else (p_up, t)
        up = rosenbaum_upper_p(sets, float(g), "exact")
        rows.append(
            {
                "gamma": float(g),
                "informative_sets": len(p_up),
                "t_observed": t,
                "t_expected_upper": float(p_up.sum()),
                "p_upper": up,
                "p_upper_normal": rosenbaum_upper_p(sets, float(g), "normal"),
                "p_lower": poisson_binomial_sf(t, p_lo),
                "significant": bool(up < alpha),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- E-values


def to_risk_ratio(estimate: float, measure: str = "rr", rare: bool = True) -> float:
    """Approximate risk ratio from a risk, odds or hazard ratio (VanderWeele & Ding 2017).

    ``measure`` is ``"rr"``, ``"or"`` or ``"hr"``; ``rare`` means the outcome is rare (< 15 %)
    at the end of follow-up. Common outcome: ``sqrt(OR)``; for HR
    ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``.
    """
    x = float(estimate)
    if x <= 0:
        raise ValueError(f"ratio must be positive, got {x}")
    if measure == "rr" or rare:
        if measure not in ("rr", "or", "hr"):
            raise ValueError(f"unknown measure {measure!r}")
        return x
    if measure == "or":
        return math.sqrt(x)
    if measure == "hr":
        return (1 - 0.5 ** math.sqrt(x)) / (1 - 0.5 ** math.sqrt(1 / x))
    raise ValueError(f"unknown measure {measure!r}")


def evalue(rr: float) -> float:
    """E-value of a risk ratio: ``RR + sqrt(RR (RR - 1))`` on the side away from 1."""
    rr = float(rr)
    if rr <= 0 or not math.isfinite(rr):
        raise ValueError(f"risk ratio must be positive and finite, got {rr}")
    if rr < 1:
        rr = 1 / rr
    return rr + math.sqrt(rr * (rr - 1))


def evalue_ci(lower: float, upper: float) -> float:
    """E-value of the confidence limit nearer the null; 1 when the interval contains 1."""
    if lower > upper:
        raise ValueError("lower limit above upper limit")
    if lower <= 1 <= upper:
        return 1.0
    return evalue(lower if lower > 1 else upper)


def evalue_table(
    estimate: float, lower: float, upper: float, measure: str = "rr", rare: bool = True
) -> dict:
    """E-values of a point estimate and its CI after conversion to the risk-ratio scale."""
    rr, lo, hi = (to_risk_ratio(v, measure, rare) for v in (estimate, lower, upper))
    return {
        "rr": rr,
        "rr_lower": lo,
        "rr_upper": hi,
        "evalue_estimate": evalue(rr),
        "evalue_ci": evalue_ci(lo, hi),
    }


# ---------------------------------------------------------------------- specification curve


def _caliper_name(c) -> str:
    return "none" if c is None else f"{float(c):g}"


def spec_name(spec: dict) -> str:
    """Short, file-name-safe name of one specification, e.g.
    ``logit_ps-cal0.2-r1-norep-exnone-fu365`` or ``ipw-fu182``."""
    fu = f"fu{int(spec['followup_days'])}"
    if spec["method"] == "ipw":
        return f"ipw-{fu}"
    rep = "rep" if spec["replace"] else "norep"
    return (
        f"{spec['distance']}-cal{_caliper_name(spec['caliper'])}-r{int(spec['ratio'])}-"
        f"{rep}-ex{spec['exact_name']}-{fu}"
    )


def spec_grid(grid: dict) -> dict[str, dict]:
    """Every specification of the curve, by name, in a stable order.

    ``grid`` (the ``sensitivity.spec_curve`` config): lists ``distance``, ``caliper``
    (``None`` = no caliper), ``ratio``, ``replace``, ``followup_days``, a mapping ``exact``
    from a short name to the list of exact-matching columns, and ``ipw`` (bool: add inverse
    probability weighting, once per follow-up window). The matching specifications are the
    full cross product of the lists.
    """
    specs: dict[str, dict] = {}
    exact = grid.get("exact") or {"none": []}
    for fu in grid["followup_days"]:
        for dist in grid["distance"]:
            for cal in grid["caliper"]:
                for ratio in grid["ratio"]:
                    for rep in grid["replace"]:
                        for ex_name, ex_cols in exact.items():
                            s = {
                                "method": "nearest",
                                "distance": dist,
                                "caliper": None if cal is None else float(cal),
                                "ratio": int(ratio),
                                "replace": bool(rep),
                                "exact_name": ex_name,
                                "exact": list(ex_cols),
                                "followup_days": int(fu),
                            }
                            specs[spec_name(s)] = s
        if grid.get("ipw", True):
            s = {
                "method": "ipw",
                "distance": "ps",
                "caliper": None,
                "ratio": None,
                "replace": False,
                "exact_name": "none",
                "exact": [],
                "followup_days": int(fu),
            }
            specs[spec_name(s)] = s
    return specs


# ----------------------------------------------------------------------------------- placebo


def placebo_size(n_treated: int, n_comparators: int, ratio: int = 1) -> int:
    """How many comparators get the placebo 'treatment': as many as there are treated
    people, but no more than a ``1 / (1 + ratio)`` share of the pool, so each can still find
    ``ratio`` placebo comparators."""
    return int(max(0, min(n_treated, n_comparators // (1 + max(int(ratio), 1)))))


def placebo_assignments(n_pool: int, n_placebo: int, repetitions: int, seed: int):
    """Yield ``repetitions`` boolean masks of length ``n_pool`` with ``n_placebo`` True each,
    drawn without replacement by ``numpy.random.default_rng(seed)`` (one generator, in order)."""
    rng = np.random.default_rng(seed)
    for _ in range(repetitions):
        mask = np.zeros(n_pool, dtype=bool)
        mask[rng.choice(n_pool, size=n_placebo, replace=False)] = True
        yield mask


def placebo_distribution(
    comparators: pd.DataFrame, n_placebo: int, repetitions: int, seed: int, estimate
) -> pd.DataFrame:
    """Effects of a placebo treatment randomly assigned among comparators.

    ``comparators``: comparator rows (covariates and outcomes), in a stable order.
    ``estimate(data)`` receives a copy with ``treated`` replaced by the placebo assignment
    and returns an object with ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value``
    (an :class:`mydirection.effects.Effect`), e.g. the default matching then ``att``.
    The true effect of the placebo is zero by construction. A repetition that cannot be
    estimated (the estimate is NaN) keeps its reason in ``error`` when ``estimate`` gives one.
    """
    rows = []
    pool = comparators.reset_index(drop=True)
    for rep, mask in enumerate(placebo_assignments(len(pool), n_placebo, repetitions, seed)):
        data = pool.copy()
        data["treated"] = mask
        e = estimate(data)
        rows.append(
            {
                "rep": rep,
                "estimate": e.estimate,
                "se": e.se,
                "ci_low": e.ci_low,
                "ci_high": e.ci_high,
                "p_value": e.p_value,
                "error": getattr(e, "error", ""),
            }
        )
    return pd.DataFrame(rows)


def fit_spec(
    data: pd.DataFrame,
    spec: dict,
    covariates,
    *,
    categorical=None,
    order: str = "largest",
    seed: int = 0,
    discard: str = "none",
):
    """Match (or weight, for IPW) ``data`` as ``spec`` says; returns the
    :class:`mydirection.matching.MatchResult`."""
    from mydirection import matching

    if spec["method"] == "ipw":
        return matching.ipw(data, "treated", covariates, categorical=categorical)
    return matching.match(
        data,
        "treated",
        covariates,
        distance=spec["distance"],
        ratio=spec["ratio"],
        replace=spec["replace"],
        caliper=spec["caliper"],
        order=order,
        exact=spec["exact"],
        seed=seed,
        categorical=categorical,
        discard=discard,
    )


def estimate_spec(
    data: pd.DataFrame,
    spec: dict,
    covariates,
    outcome: str = "reoffended",
    *,
    categorical=None,
    order: str = "largest",
    seed: int = 0,
    discard: str = "none",
    smd_threshold: float = 0.1,
    var_ratio_bounds=(0.5, 2.0),
) -> dict:
    """Run one specification: match (or weight) ``data`` and estimate the ATT on ``outcome``.

    ``data``: one row per cohort member with ``treated``, the covariates and the outcome.
    ``spec``: one entry of :func:`spec_grid`. Returns one row: the choices, the estimate
    with its 95 % CI, the group sizes and the balance verdict. A specification that cannot be
    estimated (e.g. nobody matched inside a narrow caliper) gets NaN estimates and its
    reason in ``error``.
    """
    from mydirection import effects

    row = {
        "spec": spec_name(spec),
        "method": spec["method"],
        "distance": spec["distance"] if spec["method"] != "ipw" else "ipw",
        "caliper": _caliper_name(spec["caliper"]),
        "ratio": spec["ratio"] if spec["ratio"] is not None else 0,
        "replace": bool(spec["replace"]),
        "exact": spec["exact_name"],
        "followup_days": int(spec["followup_days"]),
    }
    nan = {
        k: math.nan
        for k in (
            "estimate",
            "se",
            "ci_low",
            "ci_high",
            "p_value",
            "mean_treated",
            "mean_control",
            "max_abs_smd_after",
        )
    }
    try:
        m = fit_spec(
            data, spec, covariates, categorical=categorical, order=order, seed=seed, discard=discard
        )
        verdict = m.verdict(smd_threshold, tuple(var_ratio_bounds))
        e = effects.att(m, outcome, "binary")
    except ValueError as err:
        return {
            **row,
            **nan,
            "n_treated": 0,
            "n_control": 0,
            "balance_ok": False,
            "error": str(err),
        }
    return {
        **row,
        "estimate": e.estimate,
        "se": e.se,
        "ci_low": e.ci_low,
        "ci_high": e.ci_high,
        "p_value": e.p_value,
        "mean_treated": e.mean_treated,
        "mean_control": e.mean_control,
        "n_treated": e.n_treated,
        "n_control": e.n_control,
        "max_abs_smd_after": verdict.max_abs_smd_after,
        "balance_ok": bool(verdict.ok),
        "error": "",
    }


def matching_options(matching: dict) -> dict:
    """The ``estimate_spec`` keyword arguments that come from the ``matching`` config
    (covariates, categorical covariates, matching order and seed, balance thresholds)."""
    opts = {
        "covariates": list(matching["covariates"]),
        "categorical": list(matching.get("categorical") or []) or None,
        "order": matching.get("order", "largest"),
        "seed": int(matching.get("seed", 0) or 0),
        "discard": matching.get("discard", "none"),
    }
    if "smd_threshold" in matching:
        opts["smd_threshold"] = float(matching["smd_threshold"])
    if "var_ratio_bounds" in matching:
        opts["var_ratio_bounds"] = tuple(matching["var_ratio_bounds"])
    return opts


def default_spec(matching: dict, followup_days: int, exact_names: dict | None = None) -> dict:
    """The pipeline's headline specification (the ``matching`` config) as a grid entry.

    ``exact_names``: the grid's name -> columns mapping, so the default's exact set gets the
    grid's name when it is there (else the columns joined by ``_``)."""
    exact = list(matching.get("exact") or [])
    name = next((n for n, cols in (exact_names or {}).items() if list(cols) == exact), None)
    spec = {
        "method": "nearest",
        "distance": matching.get("distance", "logit_ps"),
        "caliper": None if matching.get("caliper") is None else float(matching["caliper"]),
        "ratio": int(matching.get("ratio", 1)),
        "replace": bool(matching.get("replace", False)),
        "exact_name": name or ("_".join(exact) if exact else "none"),
        "exact": exact,
        "followup_days": int(followup_days),
    }
    return spec


def _choice_rows(curve: pd.DataFrame) -> list[tuple[str, str, object]]:
    """Rows of the specification-curve choice panel: (label, column, value) per option."""
    rows: list[tuple[str, str, object]] = []
    for col, label in (
        ("distance", "distance"),
        ("caliper", "caliper"),
        ("ratio", "ratio"),
        ("replace", "replacement"),
        ("exact", "exact"),
        ("followup_days", "follow-up"),
    ):
        values = sorted(set(curve[col].tolist()), key=str)
        if col == "distance":
            order = ["ps", "logit_ps", "mahalanobis", "ipw"]
            values = sorted(values, key=lambda v: (order.index(v) if v in order else 9, v))
        for v in values:
            if col == "ratio" and v == 0:
                continue  # IPW has no ratio
            text = {True: "with", False: "without"}.get(v, v) if col == "replace" else v
            rows.append((f"{label}: {text}", col, v))
    return rows


def sort_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Specifications sorted by estimate (stable; ties and NaNs by name), with ``rank``."""
    out = curve.drop(columns="rank", errors="ignore")
    out = out.sort_values("spec", kind="stable").sort_values(
        "estimate", kind="stable", na_position="last"
    )
    out = out.reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def plot_spec_curve(curve: pd.DataFrame, path, title: str = "") -> None:
    """Specification-curve figure: sorted estimates with 95 % CIs above (in percentage
    points; filled when balance was achieved), the choices of each specification below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = sort_curve(curve)
    rows = _choice_rows(c)
    x = c["rank"].to_numpy()
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        sharex=True,
        figsize=(max(8, 0.06 * len(c) + 6), 4 + 0.22 * len(rows)),
        gridspec_kw={"height_ratios": [2.2, 0.22 * len(rows)]},
    )
    est, lo, hi = (100 * c[k].to_numpy(dtype=float) for k in ("estimate", "ci_low", "ci_high"))
    ok = c["balance_ok"].to_numpy(dtype=bool)
    sig = (c["ci_high"] < 0) | (c["ci_low"] > 0)
    colour = np.where(sig, "#b2182b", "#4d4d4d")
    top.vlines(x, lo, hi, colors=colour, linewidth=0.8, alpha=0.7)
    top.scatter(x[ok], est[ok], c=colour[ok], s=14, zorder=3, label="balance achieved")
    top.scatter(
        x[~ok],
        est[~ok],
        facecolors="white",
        edgecolors=colour[~ok],
        s=14,
        zorder=3,
        label="balance not achieved",
    )
    if "is_default" in c and c["is_default"].any():
        d = c.loc[c["is_default"], "rank"].to_numpy()
        top.scatter(
            d,
            est[d - 1],
            marker="D",
            s=40,
            facecolors="none",
            edgecolors="#2166ac",
            zorder=4,
            label="headline specification",
        )
    top.axhline(0, color="black", linewidth=0.6, linestyle="--")
    top.set_ylabel("Difference in re-offending rate\n(percentage points, 95% CI)")
    top.set_title(title or f"Specification curve: {len(c)} analysis specifications")
    top.legend(loc="upper left", fontsize=7, frameon=False)
    for i, (_, col, v) in enumerate(rows):
        used = (c[col] == v).to_numpy()
        bottom.scatter(x[used], np.full(used.sum(), i), s=6, color="#333333", marker="s")
    bottom.set_yticks(range(len(rows)))
    bottom.set_yticklabels([r[0] for r in rows], fontsize=7)
    bottom.set_ylim(len(rows) - 0.5, -0.5)
    bottom.set_xlabel("Specification (sorted by estimate)")
    bottom.set_xlim(0, len(c) + 1)
    fig.tight_layout()
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)
