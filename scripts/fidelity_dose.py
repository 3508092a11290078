"""Rule fidelity_dose: exploratory dose-response of re-offending on implementation fidelity."""

import logging

import pandas as pd

from mydirection import fidelity as fid
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def main(snakemake):
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    settings = fid.FidelitySettings.from_config(p.fidelity)
    level = settings.ci_level
    person = pd.read_parquet(inp.index_person)
    matched = fid.read_checked(inp.matched, "matched")
    propensity = fid.read_checked(inp.propensity, "propensity")
    outcomes = fid.read_checked(inp.outcomes, "outcomes", optional=("followup_complete",))
    if "followup_complete" in outcomes.columns:
        incomplete = ~outcomes["followup_complete"].fillna(False).astype(bool)
        log.info("outcomes without complete follow-up left out: %d", int(incomplete.sum()))
        outcomes = outcomes[~incomplete]

    bands = fid.band_comparisons(person, matched, outcomes, level)
    per = float(p.fidelity.get("dose_per_points", 10))
    model = p.fidelity.get("dose_model", "lpm")
    ps_term = p.fidelity.get("dose_ps_term", "logit_ps")
    try:
        slope = fid.dose_regression(
            person, propensity, outcomes, per_points=per, ps_term=ps_term, model=model, level=level
        )
    except ValueError as err:  # e.g. too few scored treated people with outcomes
        raise UserError(
            f"{inp.index_person}, column index: the dose-response regression could not be fitted "
            f"({err}); it needs scored treated people with outcomes and propensity scores."
        ) from err
    unit = f"per {per:g} index points" if model == "lpm" else f"log-odds per {per:g} points"
    reg = pd.DataFrame(
        [
            {
                "analysis": f"within_treated_{model}",
                "group": f"index per {per:g} points",
                "n_treated": slope.n,
                "n_comparators": 0,
                "treated_rate": float("nan"),
                "comparator_rate": float("nan"),
                "estimate": slope.estimate,
                "ci_low": slope.ci_low,
                "ci_high": slope.ci_high,
                "p_value": slope.p_value,
                "n_clusters": slope.n_clusters,
            }
        ]
    )
    table = pd.concat([bands, reg], ignore_index=True)
    table.to_parquet(out.dose_response, index=False)
    log.info("dose-response: %d treated in the regression, %d clusters", slope.n, slope.n_clusters)
    fid.plot_dose_bands(bands, out.fig_dose, int(p.suppression_threshold))

    kind = "pp" if model == "lpm" else "estimate"
    nums = {
        "fidelity.dose_n": number(slope.n, "count", "treated people"),
        "fidelity.dose_slope": number(
            slope.estimate,
            kind,
            unit,
            derived_from=["fidelity.dose_n"],
            label=f"Exploratory: change in re-offending per {per:g} fidelity-index points",
        ),
        "fidelity.dose_slope_ci_low": number(
            slope.ci_low, kind, unit, derived_from=["fidelity.dose_n"]
        ),
        "fidelity.dose_slope_ci_high": number(
            slope.ci_high, kind, unit, derived_from=["fidelity.dose_n"]
        ),
        "fidelity.dose_slope_p": number(slope.p_value, "p_value"),
        "fidelity.dose_n_clusters": number(slope.n_clusters, "count", "case managers"),
    }
    for row in bands.itertuples():
        b = row.group
        n_key, c_key = f"fidelity.dose_{b}_n_treated", f"fidelity.dose_{b}_n_comparators"
        nums[n_key] = number(int(row.n_treated), "count", "treated people")
        nums[c_key] = number(int(row.n_comparators), "count", "comparators")
        src = [n_key, c_key]
        nums[f"fidelity.dose_{b}_treated_rate"] = number(
            row.treated_rate, "proportion", derived_from=[n_key]
        )
        nums[f"fidelity.dose_{b}_comparator_rate"] = number(
            row.comparator_rate, "proportion", derived_from=[c_key]
        )
        nums[f"fidelity.dose_{b}_difference"] = number(row.estimate, "pp", derived_from=src)
        nums[f"fidelity.dose_{b}_difference_ci_low"] = number(row.ci_low, "pp", derived_from=src)
        nums[f"fidelity.dose_{b}_difference_ci_high"] = number(row.ci_high, "pp", derived_from=src)
        nums[f"fidelity.dose_{b}_difference_p"] = number(row.p_value, "p_value")
    write_numbers(
        out.numbers,
        snakemake,
        nums,
        config_keys={
            "fidelity.dose_model": model,
            "fidelity.dose_per_points": per,
            "fidelity.dose_ps_term": ps_term,
            "fidelity.ci_level": level,
            "fidelity.bands.moderate": settings.band_moderate,
            "fidelity.bands.high": settings.band_high,
        },
        figures={
            "figures.fidelity_dose_response": {
                "path": out.fig_dose,
                "caption": (
                    "Exploratory (fidelity is measured after treatment starts): proven "
                    "re-offending of treated people in each fidelity band and of their own "
                    "matched comparators (same matching subclass), and the treated-minus-comparator "
                    f"difference with its {level:.0%} confidence interval."
                ),
            }
        },
    )


run(main, snakemake)
