"""The specification curve: the analysis re-run under every combination of defensible
choices (Simonsohn, Simmons & Nelson 2020), sorted by estimate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


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
