"""Simulation study: the whole pipeline against known truth.

Each replicate generates synthetic extracts with a planted programme effect, then runs the
same library chain the pipeline runs (clean -> cohort -> outcomes -> matching -> ATT) in
process, and records the estimate, its standard error, 95 % CI and p-value for

- ``matched``: the default matching specification (the pipeline's headline estimate);
- ``naive``: the unmatched difference in re-offending rates, treated vs all comparators;

in two scenarios: ``measured`` (selection into the programme on measured covariates only)
and ``hidden`` (the generator's ``hidden_confounding`` switched on: selection also on
something the extracts do not record, which matching cannot fix).

:func:`summarise` turns the replicate rows into bias, RMSE, coverage of the 95 % CI and the
rejection rate per (scenario, method), with Monte Carlo standard errors (Morris, White &
Crowther 2019, Stat Med 38:2074, table 6).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = [
    "REPLICATE_COLUMNS",
    "SCENARIOS",
    "generator_config",
    "plot_simulation",
    "replicate_seed",
    "run_replicate",
    "summarise",
]

#: One row per (replicate, scenario, method) - the replicate job's output.
REPLICATE_COLUMNS = [
    "rep",
    "scenario",
    "method",
    "truth",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "n_treated",
    "n_control",
]


def summarise(reps: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Performance of each (scenario, method) over replicates.

    ``reps`` has :data:`REPLICATE_COLUMNS`; ``truth`` is the true effect the estimate
    targets in that replicate. Rows with a missing estimate (a replicate where the method
    failed, e.g. no match) are counted in ``n_failed`` and left out of the measures.

    Columns: ``n_reps``, ``n_failed``, ``truth`` (mean), ``mean_estimate``, ``bias`` (mean of
    estimate - truth), ``bias_mcse`` (``sd(estimate - truth) / sqrt(R)``), ``empirical_se``
    (SD of the estimates), ``model_se`` (root mean squared reported SE), ``rmse``
    (``sqrt(mean((estimate - truth)^2))``), ``coverage`` (share of CIs containing the truth),
    ``coverage_mcse`` (``sqrt(c (1 - c) / R)``), ``rejection_rate`` (share with
    ``p_value < alpha``).
    """
    missing = sorted(set(REPLICATE_COLUMNS) - set(reps.columns))
    if missing:
        raise ValueError(f"replicate table lacks columns {missing}")
    rows = []
    for (scenario, method), g in reps.groupby(["scenario", "method"], sort=True):
        ok = g.dropna(subset=["estimate", "se", "ci_low", "ci_high", "p_value", "truth"])
        r = len(ok)
        err = (ok["estimate"] - ok["truth"]).to_numpy(dtype=float)
        cover = ((ok["ci_low"] <= ok["truth"]) & (ok["truth"] <= ok["ci_high"])).to_numpy(
            dtype=float
        )
        reject = (ok["p_value"] < alpha).to_numpy(dtype=float)
        coverage = float(cover.mean()) if r else math.nan
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
                "model_se": float(np.sqrt(np.mean(ok["se"].to_numpy(dtype=float) ** 2)))
                if r
                else math.nan,
                "rmse": float(np.sqrt(np.mean(err**2))) if r else math.nan,
                "coverage": coverage,
                "coverage_mcse": math.sqrt(coverage * (1 - coverage) / r) if r else math.nan,
                "rejection_rate": float(reject.mean()) if r else math.nan,
            }
        )
    return pd.DataFrame(rows)


#: Scenarios of the study and the generator's hidden-confounding strength in each
#: (``hidden`` takes its strength from the simulation config).
SCENARIOS = ("measured", "hidden")

#: Fixed pseudonymisation key of simulated extracts (synthetic data; not a secret).
SIMULATION_KEY = b"mydirection-simulation-study-key"


def replicate_seed(master_seed: int, rep: int) -> int:
    """Generator seed of replicate ``rep``: independent streams from one master seed
    (``numpy.random.SeedSequence([master_seed, rep])``). Both scenarios share it (common
    random numbers), so their difference is the hidden confounding alone."""
    return int(np.random.SeedSequence([int(master_seed), int(rep)]).generate_state(1)[0])


def generator_config(base: dict, overrides: dict, scenario: str, hidden_strength: float) -> dict:
    """The generator config of one replicate: the pipeline's synthetic config, the
    simulation's overrides (size, planted effect) and the scenario's hidden confounding."""
    from mydirection.synthetic import merge_config

    cfg = merge_config(base or {}, overrides or {})
    strength = float(hidden_strength) if scenario == "hidden" else 0.0
    return merge_config(cfg, {"hidden_confounding": {"strength": strength}})


#: The extracts the cohort and outcomes stages read; the other five feed only fidelity.
CHAIN_EXTRACTS = ("people", "supervision", "assessments", "convictions", "enrolments")


def _write_csvs(extracts: dict, out_dir) -> dict:
    """Write the extracts as the generator's CSVs; extracts outside :data:`CHAIN_EXTRACTS`
    are cut to their first row (cleaning them in full would only cost time: they feed the
    fidelity stage, which the simulation does not run; the cleaning stage refuses an
    extract without data rows)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    paths = {}
    for name, df in extracts.items():
        path = f"{out_dir}/{name}.csv"
        rows = df if name in CHAIN_EXTRACTS else df.iloc[:1]
        pacsv.write_csv(pa.Table.from_pandas(rows, preserve_index=False), path)
        paths[name] = path
    return paths


def _effect_row(e, truth: float, method: str) -> dict:
    return {
        "method": method,
        "truth": truth,
        "estimate": e.estimate,
        "se": e.se,
        "ci_low": e.ci_low,
        "ci_high": e.ci_high,
        "p_value": e.p_value,
        "n_treated": e.n_treated,
        "n_control": e.n_control,
    }


def run_replicate(
    rep: int,
    scenario: str,
    *,
    generator: dict,
    seed: int,
    cohort: dict,
    outcomes: dict,
    matching: dict,
    extract_end_date: str,
) -> pd.DataFrame:
    """One replicate, in process: generate -> clean -> cohort -> outcomes -> match -> ATT.

    ``generator``: the full generator config of this replicate (:func:`generator_config`);
    ``seed``: its seed (:func:`replicate_seed`); ``cohort``, ``outcomes``, ``matching``: the
    pipeline's config sections. Returns rows (:data:`REPLICATE_COLUMNS`) for

    - ``matched``: the headline specification (``matching`` config); the truth is the
      sample ATT of the treated people kept in the matched sample, from the generator's
      coupled potential outcomes (mean of ``y1 - y0``);
    - ``naive``: the unweighted difference, all treated vs all comparators in the cohort;
      the truth is the sample ATT over all treated in the cohort.
    """
    import tempfile

    from mydirection import effects, synthetic
    from mydirection import sensitivity as sens
    from mydirection.clean import clean_extracts, pseudonymise
    from mydirection.cohort import build_cohort
    from mydirection.outcomes import proven_reoffending
    from mydirection.settings import CohortSettings

    syn = synthetic.generate(generator, seed)
    with tempfile.TemporaryDirectory(prefix="mydirection-sim-") as tmp:
        paths = _write_csvs(syn.extracts, tmp)
        tables, _ = clean_extracts(paths, extract_end_date, SIMULATION_KEY)
    from mydirection.settings import with_defaults

    settings = CohortSettings.from_config(
        with_defaults(
            {
                "cohort": cohort,
                "outcomes": outcomes,
                "extract_end_date": extract_end_date,
                "seed": seed,
            }
        )
    )
    coh = build_cohort(**{n: tables[n] for n in CHAIN_EXTRACTS}, settings=settings).cohort
    out = proven_reoffending(
        coh,
        tables["convictions"],
        outcomes["followup_days"],
        outcomes["waiting_days"],
        extract_end_date,
    )
    data = coh.merge(out[["person_id", "reoffended"]], on="person_id", how="inner")

    po = syn.potential_outcomes
    effect_i = pd.Series(
        (po["y1"].astype(float) - po["y0"].astype(float)).to_numpy(),
        index=pseudonymise(po["crn"].astype(str), SIMULATION_KEY).to_numpy(),
    )

    def truth(person_ids) -> float:
        return float(effect_i.reindex(person_ids).mean())

    spec = sens.default_spec(matching, outcomes["followup_days"])
    opts = sens.matching_options(matching)
    rows = []
    try:
        m = sens.fit_spec(
            data,
            spec,
            opts["covariates"],
            categorical=opts["categorical"],
            order=opts["order"],
            seed=opts["seed"],
            discard=opts["discard"],
        )
        e = effects.att(m, "reoffended", "binary")
        kept = m.data.loc[m.data["treated"].astype(bool) & (m.data["weights"] > 0), "person_id"]
        rows.append(_effect_row(e, truth(kept), "matched"))
    except ValueError:
        rows.append({"method": "matched", "truth": math.nan})
    naive = data.assign(weights=1.0, subclass=pd.NA)
    e = effects.att(effects.matched_sample(naive, replace=True), "reoffended", "binary")
    rows.append(_effect_row(e, truth(data.loc[data["treated"].astype(bool), "person_id"]), "naive"))
    frame = pd.DataFrame(rows)
    frame.insert(0, "scenario", scenario)
    frame.insert(0, "rep", int(rep))
    return frame.reindex(columns=REPLICATE_COLUMNS)


def plot_simulation(
    reps: pd.DataFrame, summary: pd.DataFrame, path, coverage_bounds=(0.93, 0.97)
) -> None:
    """Two panels: the error (estimate - truth, percentage points) of every replicate by
    scenario and method, and the coverage of the 95 % CI with Monte Carlo 95 % intervals
    against the target band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [(s, m) for s in SCENARIOS for m in ("matched", "naive")]
    order = [
        k for k in order if ((summary["scenario"] == k[0]) & (summary["method"] == k[1])).any()
    ]
    labels = [
        f"{m}\n({'hidden confounding' if s == 'hidden' else 'measured only'})" for s, m in order
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    errs = []
    for s, m in order:
        g = reps[(reps["scenario"] == s) & (reps["method"] == m)].dropna(subset=["estimate"])
        errs.append(100 * (g["estimate"] - g["truth"]).to_numpy(dtype=float))
    y = np.arange(len(order))
    left.boxplot(
        errs,
        positions=y,
        orientation="horizontal",
        widths=0.5,
        showfliers=True,
        flierprops={"markersize": 2},
    )
    left.axvline(0, color="black", linestyle="--", linewidth=0.8)
    left.set_yticks(y)
    left.set_yticklabels(labels, fontsize=8)
    left.set_xlabel("Estimate minus truth (percentage points)")
    left.set_title("Error of each replicate")
    srt = summary.set_index(["scenario", "method"])
    cov = np.array([srt.loc[k, "coverage"] for k in order], dtype=float)
    mcse = np.array([srt.loc[k, "coverage_mcse"] for k in order], dtype=float)
    lo, hi = coverage_bounds
    right.axvspan(lo, hi, color="#d9f0d3", label=f"target {lo:.2f}-{hi:.2f}")
    right.errorbar(cov, y, xerr=1.96 * np.nan_to_num(mcse), fmt="o", color="#2166ac", capsize=3)
    right.axvline(0.95, color="black", linestyle=":", linewidth=0.8)
    right.set_yticks(y)
    right.set_yticklabels([])
    right.set_xlim(0, 1.02)
    right.set_xlabel("Coverage of the 95% CI")
    right.set_title("Coverage (Monte Carlo 95% interval)")
    right.legend(loc="lower left", fontsize=8, frameon=False)
    for ax in (left, right):
        ax.set_ylim(len(order) - 0.5, -0.5)
    n = int(summary["n_reps"].max()) if len(summary) else 0
    fig.suptitle(f"Simulation study: {n} replicates per scenario", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)
