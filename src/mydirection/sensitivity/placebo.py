"""Placebo treatment: the matched design run among comparators only, with treatment
assigned at random (the true effect is zero by construction)."""

from __future__ import annotations

import numpy as np
import pandas as pd


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


# ------------------------------------------------------------------------- the stage
def _row(e) -> dict:
    return {k: getattr(e, k) for k in ("estimate", "se", "ci_low", "ci_high", "p_value")}


def analyse_placebo(cohort, outcomes, sample, pairs, headline_spec, settings, propensity=None):
    """The two placebo tests, through the headline's own path.

    1. Placebo outcome: the headline estimator on the analysis sample with
       ``placebo_reoffended`` (offending in a window before the index date, index
       conviction excluded) as the outcome; the programme cannot have changed it.
    2. Placebo treatment: among comparators only, ``treated`` assigned at random to as many
       as there were participants (at most a 1/(1 + ratio) share), ``repetitions`` times
       from the master seed, each run through :func:`mydirection.pipeline.headline` with
       the chosen design; the estimates should centre on zero.
    """
    import dataclasses

    from mydirection import pipeline
    from mydirection.effects.att import att
    from mydirection.matching import Preparations

    m = pipeline.sample_object(sample, headline_spec, pairs)
    pre = att(
        m,
        "placebo_reoffended",
        "binary",
        alpha=headline_spec.alpha,
        se=pipeline.se_type(headline_spec),
    )
    spec = dataclasses.replace(headline_spec, revisions=())
    pool = cohort[~cohort["treated"].astype(bool)].sort_values("person_id", kind="stable")
    pool = pool.reset_index(drop=True)
    n_placebo = placebo_size(int(cohort["treated"].sum()), len(pool), spec.ratio)
    shared = Preparations()  # the same people each repetition: covariates expanded once

    def estimate(data):
        try:
            return pipeline.headline(data, outcomes, spec, preparations=shared).rate
        except ValueError as err:
            out = type(
                "Failed",
                (),
                dict.fromkeys(("estimate", "se", "ci_low", "ci_high", "p_value"), np.nan),
            )()
            out.error = str(err)
            return out

    dist = placebo_distribution(pool, n_placebo, settings.repetitions, settings.seed, estimate)
    return PlaceboResult(
        outcome=pre, distribution=dist, n_placebo=n_placebo, alpha=headline_spec.alpha
    )


class PlaceboResult:
    """The placebo outcome's effect and the placebo-treatment distribution."""

    def __init__(self, outcome, distribution: pd.DataFrame, n_placebo: int, alpha: float):
        self.outcome, self.distribution, self.n_placebo, self.alpha = (
            outcome, distribution, n_placebo, alpha,
        )  # fmt: skip

    def outcome_table(self) -> pd.DataFrame:
        e = self.outcome
        return pd.DataFrame(
            [
                {
                    "outcome": "placebo_reoffended",
                    **_row(e),
                    "mean_treated": e.mean_treated,
                    "mean_comparator": e.mean_comparator,
                }
            ]  # fmt: skip
        )

    def numbers(self):
        import math

        from mydirection.reporting.numbers import Numbers

        n = Numbers()
        S = "placebo."
        e = self.outcome
        src = ["reoffending.n_treated", "reoffending.n_comparison"]
        for key, value, label in (
            ("outcome_treated", e.mean_treated, "Placebo outcome (offending before the index date), participants"),
            ("outcome_comparison", e.mean_comparator, "Placebo outcome, comparison group (weighted)"),
        ):  # fmt: skip
            n.add(S + key, value, "proportion", label, derived_from=src)
        n.add(
            S + "outcome_difference",
            e.estimate,
            "pp",
            "Difference in the placebo outcome",
            derived_from=src,
        )
        n.add(
            S + "outcome_ci_low",
            e.ci_low,
            "pp",
            "Placebo outcome: interval, lower limit",
            derived_from=src,
        )
        n.add(
            S + "outcome_ci_high",
            e.ci_high,
            "pp",
            "Placebo outcome: interval, upper limit",
            derived_from=src,
        )
        n.add(S + "outcome_p", e.p_value, "p_value", "Placebo outcome: p-value", derived_from=src)
        d = self.distribution
        ok = d.dropna(subset=["estimate"])
        r = len(ok)
        mean = float(ok["estimate"].mean()) if r else math.nan
        sd = float(ok["estimate"].std(ddof=1)) if r > 1 else math.nan
        n.count(
            S + "n_treated",
            self.n_placebo,
            "Comparators given the placebo treatment",
            unit="comparators",
        )
        n.add(S + "repetitions", r, "count", "Placebo repetitions estimated", unit="repetitions")
        n.add(S + "failed", len(d) - r, "count",
              "Placebo repetitions that could not be estimated", unit="repetitions")  # fmt: skip
        n.add(S + "mean_estimate", mean, "pp", "Mean placebo effect over repetitions")
        n.add(S + "mean_mcse", sd / math.sqrt(r) if r > 1 else None, "pp",
              "Monte Carlo standard error of the mean placebo effect", signed=False)  # fmt: skip
        n.add(S + "sd", sd, "pp", "Standard deviation of the placebo effects", signed=False)
        n.add(S + "rejection_rate", float((ok["p_value"] < self.alpha).mean()) if r else None,
              "proportion", "Share of placebo repetitions significant at the plan's level")  # fmt: skip
        covers = (ok["ci_low"] <= 0) & (ok["ci_high"] >= 0)
        n.add(S + "share_ci_covers_zero", float(covers.mean()) if r else None, "proportion",
              "Share of placebo intervals containing zero")  # fmt: skip
        return n

    def plot(self, path) -> None:
        from mydirection.reporting.figures import COLOURS, figure

        est = 100 * self.distribution["estimate"].dropna().to_numpy()
        with figure(path, figsize=(6.5, 3.8)) as (_, ax):
            ax.hist(
                est, bins=min(30, max(5, len(est) // 4)), color=COLOURS["light"], edgecolor="white"
            )
            ax.axvline(0, color="black", linestyle="--", linewidth=0.8, label="no effect")
            if len(est):
                ax.axvline(
                    float(est.mean()), color=COLOURS["highlight"], linewidth=1.2, label="mean"
                )
            ax.set_xlabel("Placebo 'effect' on the re-offending rate (percentage points)")
            ax.set_ylabel("Repetitions")
            ax.set_title("Placebo treatment among comparators")
            ax.legend(fontsize=8)
