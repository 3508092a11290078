"""Simulation study: the whole pipeline against known truth, through the headline's own path.

Each replicate generates synthetic extracts with a planted effect, cleans them, builds the
cohort and the outcomes with the stages' own functions and the analysis plan's settings, and
runs :func:`mydirection.pipeline.headline` -- the function the headline rules, the
specification curve and the placebo run -- so the study validates the path the report's
numbers take (a test checks that a replicate on the default extracts reproduces the
headline estimate, standard error and interval exactly). Methods:

- ``headline``: the analysis plan as it is (index date at enrolment with a matched
  pseudo-enrolment date and the enrolment barriers; the design with its revisions);
- ``event_start``: the same, but indexed at the start of the order (immortal time);
- ``naive``: the unmatched difference, all participants against all comparators.

Scenarios (each a change to the simulation's generator settings): ``measured`` (the planted
effect, selection on recorded covariates only), ``hidden`` (selection also on a trait the
extracts do not record, which matching cannot fix) and ``no_effect`` (a true effect of zero
while re-offending, custody or recall before enrolment still stops an enrolment: the
immortal-time test -- ``event_start`` is biased in favour of the pilot, ``headline`` is not).

The truth of a method is the sample ATT over the participants it analyses, from the
generator's coupled potential outcomes over the same follow-up window (from enrolment for
``headline`` and ``naive``, from the start of the order for ``event_start``).

:func:`summarise` gives bias, RMSE, coverage and the rejection rate per (scenario, method)
with Monte Carlo standard errors (Morris, White & Crowther 2019, Stat Med 38:2074, table 6).
Replicates run in batch jobs; a replicate's rows depend only on its number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: One row per (replicate, scenario, method).
REPLICATE_COLUMNS = [
    "rep", "scenario", "method", "truth", "estimate", "se", "ci_low", "ci_high", "p_value",
    "n_treated", "n_comparators", "error",
]  # fmt: skip
SCENARIOS = ("measured", "hidden", "no_effect")
METHODS = ("headline", "event_start", "naive")
#: The extracts the cohort and outcomes stages read (the only ones a replicate generates
#: and cleans); the other five feed only fidelity.
CHAIN_EXTRACTS = ("people", "supervision", "assessments", "convictions", "enrolments")
#: Fixed pseudonymisation key of simulated extracts (synthetic data; not a secret).
SIMULATION_KEY = b"mydirection-simulation-study-key"


def replicate_seed(master_seed: int, rep: int) -> int:
    """Generator seed of replicate ``rep``: independent streams from one master seed
    (``numpy.random.SeedSequence([master_seed, rep])``). Every scenario shares it (common
    random numbers), so their differences are the scenario alone."""
    return int(np.random.SeedSequence([int(master_seed), int(rep)]).generate_state(1)[0])


def generator_config(base: dict, settings, scenario: str) -> dict:
    """The generator config of one scenario: the pipeline's synthetic config, the
    simulation's overrides (size, planted effect) and the scenario's change."""
    from mydirection.synthetic import merge_config

    cfg = merge_config(base or {}, dict(settings.generator))
    if scenario == "hidden":
        cfg = merge_config(
            cfg, {"hidden_confounding": {"strength": settings.hidden_confounding_strength}}
        )
    elif scenario == "no_effect":
        cfg = merge_config(cfg, {"true_effect": {"hazard_ratio": 1.0}})
    elif scenario != "measured":
        raise ValueError(f"unknown scenario {scenario!r}; use one of {SCENARIOS}")
    return cfg


@dataclass(frozen=True)
class _Cleaned:
    """One scenario's chain extracts: raw text, cleaned, and cleaned as the rules read them."""

    extracts: dict
    cleaned: dict
    read: dict


def _clean(extracts: dict, extract_end_date: str, previous: _Cleaned | None = None) -> _Cleaned:
    """The cleaned tables of the in-memory chain extracts: the clean stage's own rules on
    the generator's text tables, without the CSV round-trip and the pandera pass (tested
    once on the same data in the clean rule). Text comes back as Arrow strings, as the
    cohort and outcomes rules read the cleaned tables.

    ``previous``: another scenario of the same replicate. A table whose raw text equals
    its table there, as do the tables it is checked against, is taken from it: cleaning
    is a function of those alone, and common random numbers give the scenarios the same
    people and supervision extracts."""
    from mydirection.clean import NEEDS, clean_tables
    from mydirection.contract import EXTRACTS
    from mydirection.tables import as_read

    same = {}
    if previous is not None:
        for n in (n for n in EXTRACTS if n in CHAIN_EXTRACTS):
            if all(m in same for m in NEEDS[n]) and extracts[n].equals(previous.extracts[n]):
                same[n] = previous.cleaned[n]
    cleaned, _ = clean_tables(
        {n: extracts[n] for n in CHAIN_EXTRACTS}, extract_end_date, SIMULATION_KEY, done=same
    )
    read = {n: previous.read[n] if n in same else as_read(t) for n, t in cleaned.items()}
    return _Cleaned(extracts, cleaned, read)


def _row(method: str, e, truth: float) -> dict:
    fields = ("estimate", "se", "ci_low", "ci_high", "p_value", "n_treated", "n_comparators")
    return {"method": method, "truth": truth, **{k: getattr(e, k) for k in fields}, "error": ""}


def analyse_tables(tables: dict, config: dict, effect_of=None) -> list[dict]:
    """The methods of the module docstring on cleaned tables, with the analysis plan
    ``config``. ``effect_of(person_ids, window)`` gives the truth (the mean of y1 - y0 over
    those people for the window ``"enrolment"`` or ``"event_start"``); None gives NaN."""
    import dataclasses

    from mydirection import pipeline
    from mydirection.cohort import cohort_at_index, index_events
    from mydirection.effects.att import att, matched_sample
    from mydirection.outcomes import proven_reoffending
    from mydirection.settings import AnalysisSpec, CohortSettings, OutcomeSettings

    spec = AnalysisSpec.from_config(config)
    o = OutcomeSettings.from_config(config)
    cohort_settings = CohortSettings.from_config(config)
    rows = []
    events = None  # the designs share the index events (build_cohort's first half)
    for method, design in (
        ("headline", cohort_settings.index_date),
        ("event_start", "event_start"),
    ):
        s = dataclasses.replace(cohort_settings, index_date=design)
        try:
            if events is None:
                events = index_events(**{n: tables[n] for n in CHAIN_EXTRACTS}, settings=s)
            cohort = cohort_at_index(events, s).cohort
            out = proven_reoffending(
                cohort, tables["convictions"], o.followup_days, o.waiting_days,
                o.extract_end_date, placebo_start_days=o.placebo_start_days,
                placebo_end_days=o.placebo_end_days,
            )  # fmt: skip
            h = pipeline.headline(cohort, out, spec)
        except ValueError as err:
            rows.append({"method": method, "truth": math.nan, "error": str(err)})
            continue
        kept = h.sample.loc[h.sample["treated"].astype(bool), "person_id"]
        truth = effect_of(kept, design) if effect_of else math.nan
        rows.append(_row(method, h.rate, truth))
        if method == "headline":  # the naive comparison on the headline's own cohort
            naive = cohort.merge(out, on="person_id").assign(weights=1.0, subclass=pd.NA)
            e = att(matched_sample(naive, replace=True), "reoffended", "binary",
                    alpha=spec.alpha, se="HC0")  # fmt: skip
            treated = naive.loc[naive["treated"].astype(bool), "person_id"]
            rows.append(_row("naive", e, effect_of(treated, design) if effect_of else math.nan))
    return rows


def run_replicate(
    rep: int, scenario: str, config: dict, synthetic_base: dict, settings, previous=None
) -> tuple[pd.DataFrame, _Cleaned]:
    """One replicate of one scenario (``settings``: :class:`SimulationSettings`): its rows
    and its cleaned tables (pass them as ``previous`` to the replicate's next scenario, which
    then reuses the tables whose raw text is unchanged)."""
    from mydirection import synthetic
    from mydirection.clean import pseudonymise

    seed = replicate_seed(config["seed"], rep)
    syn = synthetic.generate(
        generator_config(synthetic_base, settings, scenario), seed, extracts=CHAIN_EXTRACTS
    )
    cleaned = _clean(syn.extracts, config["extract_end_date"], previous)
    po = syn.potential_outcomes
    ids = pseudonymise(po["crn"].astype(str), SIMULATION_KEY).to_numpy()
    effects = {
        "event_start": pd.Series(
            (po["y1"].astype(float) - po["y0"].astype(float)).to_numpy(), index=ids
        ),
        "enrolment": pd.Series(
            (po["y1_enrolment"].astype(float) - po["y0_enrolment"].astype(float)).to_numpy(),
            index=ids,
        ),
    }

    def effect_of(person_ids, window) -> float:
        return float(effects[window].reindex(pd.Index(person_ids)).mean())

    frame = pd.DataFrame(analyse_tables(cleaned.read, config, effect_of))
    frame.insert(0, "scenario", scenario)
    frame.insert(0, "rep", int(rep))
    return frame.reindex(columns=REPLICATE_COLUMNS), cleaned


def batch_reps(replicates: int, n_batches: int, batch: int) -> list[int]:
    """The replicates of one batch (round-robin)."""
    return [r for r in range(replicates) if r % n_batches == batch]


def run_batch(reps, config: dict, synthetic_base: dict, settings) -> pd.DataFrame:
    """Every scenario of the replicates ``reps``, one process; rows sorted. Quasi-separation
    warnings of the replicates' propensity models are counted in one log line, not printed
    once per fit."""
    import logging
    import warnings

    from mydirection.matching.propensity import QuasiSeparation

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QuasiSeparation)
        frames = []
        for r in reps:
            previous = None
            for s in SCENARIOS:
                frame, previous = run_replicate(r, s, config, synthetic_base, settings, previous)
                frames.append(frame)
    for w in caught:
        if not issubclass(w.category, QuasiSeparation):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    n_quasi = sum(issubclass(w.category, QuasiSeparation) for w in caught)
    if n_quasi:
        logging.getLogger("mydirection").info(
            "simulation: %d propensity fits over %d replicates had fitted probabilities of 0 "
            "or 1 (quasi-separation; scores left at the limit, as in R's glm)",
            n_quasi,
            len(reps) * len(SCENARIOS),
        )
    out = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=REPLICATE_COLUMNS)
    )
    return sort_rows(out)


def sort_rows(reps: pd.DataFrame) -> pd.DataFrame:
    out = reps.sort_values(["scenario", "method", "rep"], kind="stable").reset_index(drop=True)
    out["error"] = out["error"].fillna("").astype(str)
    return out.astype({"rep": "int64", "n_treated": "float64", "n_comparators": "float64"})


def summarise(reps: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Performance of each (scenario, method) over replicates (Morris et al. 2019).

    Rows with a missing estimate (the method failed) are counted in ``n_failed`` and left
    out. Columns: ``n_reps``, ``n_failed``, ``truth`` (mean), ``mean_estimate``, ``bias``,
    ``bias_mcse`` (``sd(estimate - truth) / sqrt(R)``), ``empirical_se``, ``model_se``,
    ``rmse``, ``coverage`` (share of intervals containing the truth), ``coverage_mcse``
    (``sqrt(c (1 - c) / R)``), ``rejection_rate`` (share with ``p_value < alpha``).
    """
    missing = sorted(set(REPLICATE_COLUMNS) - set(reps.columns))
    if missing:
        raise ValueError(f"replicate table lacks columns {missing}")
    rows = []
    for (scenario, method), g in reps.groupby(["scenario", "method"], sort=True):
        ok = g.dropna(subset=["estimate", "se", "ci_low", "ci_high", "p_value", "truth"])
        r = len(ok)
        err = (ok["estimate"] - ok["truth"]).to_numpy(dtype=float)
        cover = ((ok["ci_low"] <= ok["truth"]) & (ok["truth"] <= ok["ci_high"])).to_numpy(float)
        coverage = float(cover.mean()) if r else math.nan
        se = ok["se"].to_numpy(dtype=float)
        rows.append(
            {
                "scenario": scenario,
                "method": method,
                "n_reps": r,
                "n_failed": len(g) - r,
                "truth": float(ok["truth"].mean()) if r else math.nan,
                "mean_estimate": float(ok["estimate"].mean()) if r else math.nan,
                "bias": float(err.mean()) if r else math.nan,
                "bias_mcse": float(err.std(ddof=1) / math.sqrt(r)) if r > 1 else math.nan,
                "empirical_se": float(ok["estimate"].std(ddof=1)) if r > 1 else math.nan,
                "model_se": float(np.sqrt(np.mean(se**2))) if r else math.nan,
                "rmse": float(np.sqrt(np.mean(err**2))) if r else math.nan,
                "coverage": coverage,
                "coverage_mcse": math.sqrt(coverage * (1 - coverage) / r) if r else math.nan,
                "rejection_rate": float((ok["p_value"] < alpha).mean()) if r else math.nan,
            }
        )
    return pd.DataFrame(rows)


TEXT = {
    "headline": "the analysis plan's design",
    "event_start": "indexed at the start of the order",
    "naive": "naive unmatched comparison",
    "measured": "selection on recorded covariates",
    "hidden": "with hidden confounding",
    "no_effect": "no true effect, enrolment stopped by early re-offending",
}


def simulation_numbers(summary: pd.DataFrame, settings):
    """``simulation.<scenario>.<method>.*`` and whether the headline meets the bar."""
    from mydirection.reporting.numbers import Numbers

    n = Numbers()
    lo, hi = settings.coverage_bounds
    for r in summary.itertuples():
        k = f"simulation.{r.scenario}.{r.method}."
        t = f"{TEXT[r.method]}, {TEXT[r.scenario]}"
        n.add(k + "replicates", r.n_reps, "count", f"Replicates estimated: {t}", unit="replicates")
        n.add(
            k + "failed", r.n_failed, "count", f"Replicates not estimable: {t}", unit="replicates"
        )
        n.add(k + "true_effect", r.truth, "pp", f"Mean true effect (sample ATT): {t}")
        n.add(k + "bias", r.bias, "pp", f"Bias: {t}")
        n.add(k + "bias_mcse", r.bias_mcse, "pp", f"Monte Carlo SE of the bias: {t}", signed=False)
        n.add(k + "rmse", r.rmse, "pp", f"Root mean squared error: {t}", signed=False)
        n.add(k + "coverage", r.coverage, "proportion", f"Coverage of the intervals: {t}")
        n.add(
            k + "coverage_mcse",
            r.coverage_mcse,
            "proportion",
            f"Monte Carlo SE of the coverage: {t}",
        )
        n.add(
            k + "rejection_rate",
            r.rejection_rate,
            "proportion",
            f"Share significant at the plan's level: {t}",
        )
        unbiased = abs(r.bias) <= 2 * r.bias_mcse if np.isfinite(r.bias_mcse) else False
        n.add(k + "bias_within_two_mcse", "yes" if unbiased else "no", "text",
              f"Bias within two Monte Carlo SEs of zero: {t}")  # fmt: skip
        if r.method == "headline":
            within = lo <= r.coverage <= hi
            n.add(k + "coverage_within_bounds", "within" if within else "outside", "text",
                  f"Coverage against the plan's bar: {t}")  # fmt: skip
    return n


def plot_simulation(reps: pd.DataFrame, summary: pd.DataFrame, path, settings) -> None:
    """Errors of every replicate by scenario and method (left), coverage with Monte Carlo
    intervals against the plan's bar (right)."""
    from scipy.special import ndtri

    from mydirection.reporting.figures import COLOURS, figure

    order = [(s, m) for s in SCENARIOS for m in METHODS
             if ((summary["scenario"] == s) & (summary["method"] == m)).any()]  # fmt: skip
    labels = [f"{TEXT[m]}\n({TEXT[s]})" for s, m in order]
    level = 1 - settings.alpha
    z = float(ndtri(1 - settings.alpha / 2))
    with figure(path, 1, 2, figsize=(11, 0.6 * len(order) + 2.2),
                gridspec_kw={"width_ratios": [3, 2]}) as (fig, (left, right)):  # fmt: skip
        errs = []
        for s, m in order:
            g = reps[(reps["scenario"] == s) & (reps["method"] == m)].dropna(subset=["estimate"])
            errs.append(100 * (g["estimate"] - g["truth"]).to_numpy(dtype=float))
        y = np.arange(len(order))
        left.boxplot(errs, positions=y, orientation="horizontal", widths=0.5,
                     flierprops={"markersize": 2})  # fmt: skip
        left.axvline(0, color="black", linestyle="--", linewidth=0.8)
        left.set_yticks(y, labels, fontsize=8)
        left.set_xlabel("Estimate minus truth (percentage points)")
        left.set_title("Error of each replicate")
        srt = summary.set_index(["scenario", "method"])
        cov = np.array([srt.loc[k, "coverage"] for k in order], dtype=float)
        mcse = np.array([srt.loc[k, "coverage_mcse"] for k in order], dtype=float)
        lo, hi = settings.coverage_bounds
        right.axvspan(lo, hi, color=COLOURS["good"], alpha=0.2, label="the plan's bar")
        right.errorbar(
            cov, y, xerr=z * np.nan_to_num(mcse), fmt="o", color=COLOURS["treated"], capsize=3
        )
        right.axvline(level, color="black", linestyle=":", linewidth=0.8)
        right.set_yticks(y, [])
        right.set_xlim(0, 1.02)
        right.set_xlabel("Coverage of the intervals")
        right.set_title("Coverage (Monte Carlo interval)")
        right.legend(loc="lower left", fontsize=8)
        for ax in (left, right):
            ax.set_ylim(len(order) - 0.5, -0.5)
        fig.suptitle("Simulation study against known truth")


__all__ = [
    "CHAIN_EXTRACTS",
    "METHODS",
    "REPLICATE_COLUMNS",
    "SCENARIOS",
    "analyse_tables",
    "batch_reps",
    "generator_config",
    "plot_simulation",
    "replicate_seed",
    "run_batch",
    "run_replicate",
    "simulation_numbers",
    "sort_rows",
    "summarise",
]
