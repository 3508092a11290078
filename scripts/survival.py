"""Rule survival: Kaplan-Meier curves and the Cox hazard ratio for time to first proven
re-offence on the matched sample (cluster-robust by matched set)."""

import logging
from pathlib import Path

import pandas as pd

from mydirection.effects import merge_outcomes
from mydirection.effects.survival import cox, kaplan_meier, plot_km
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def main(snakemake):
    p = snakemake.params
    matched = pd.read_parquet(snakemake.input.matched)
    outcomes = pd.read_parquet(snakemake.input.outcomes)
    data = merge_outcomes(matched, outcomes, snakemake.input.matched, snakemake.input.outcomes)
    data = data[data["days_to_first"].notna() & (data["weights"] > 0)].copy()
    data["treatment"] = data["treated"].astype(bool).astype(float)
    clustered = not p.replace and data["subclass"].notna().all()
    data["cluster"] = data["subclass"] if clustered else range(len(data))

    km = kaplan_meier(data, "days_to_first", "event", group="treated", weights="weights")
    try:
        table = cox(
            data, "days_to_first", "event", ["treatment"], ties=p.ties, weights="weights",
            cluster="cluster",
        )  # fmt: skip
    except ValueError as err:
        raise UserError(
            f"{snakemake.input.outcomes}, column event: {err} among the matched people; "
            "the survival analysis needs re-offences"
        ) from err
    for path in snakemake.output:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    km.to_parquet(snakemake.output.km, index=False)
    cox_out = table.reset_index()
    cox_out["se_type"] = table.attrs["se_type"]
    cox_out["n"] = table.attrs["n"]
    cox_out["events"] = table.attrs["events"]
    cox_out.to_parquet(snakemake.output.cox, index=False)
    plot_km(
        km,
        snakemake.output.figure,
        "Time to first proven re-offence (matched sample)",
        labels={False: "Comparison", True: "My Direction"},
        ticks=p.km_at_risk_days,
    )

    t = data["treated"].astype(bool)
    n_re_t = int(data.loc[t, "event"].sum())
    n_re_c = int(data.loc[~t, "event"].sum())
    ok = n_re_t >= p.min_reoffenders
    hr = table.loc["treatment"]
    log.info("Cox: %d rows, %d events, SE %s", table.attrs["n"], table.attrs["events"],
             table.attrs["se_type"])  # fmt: skip
    counts = ["survival.n_reoffenders_treated", "survival.n_reoffenders_comparison"]
    caveat = (
        ""
        if ok
        else f"fewer than {p.min_reoffenders} re-offenders in the treated group: the hazard "
        "ratio is shown with this caveat, not as a headline (Justice Data Lab practice)"
    )
    S = "survival."
    nums = {
        S + "n_reoffenders_treated": number(n_re_t, "count", "people"),
        S + "n_reoffenders_comparison": number(n_re_c, "count", "people"),
        S + "hazard_ratio": number(float(hr["hr"]), "ratio", derived_from=counts),
        S + "hazard_ratio_ci_low": number(float(hr["hr_ci_low"]), "ratio", derived_from=counts),
        S + "hazard_ratio_ci_high": number(float(hr["hr_ci_high"]), "ratio", derived_from=counts),
        S + "hazard_ratio_p": number(float(hr["p"]), "p_value", derived_from=counts),
        S + "headline_ok": number("yes" if ok else "no", "text"),
        S + "caveat": number(caveat, "text"),
        S + "se_type": number(table.attrs["se_type"], "text"),
    }
    write_numbers(
        snakemake.output.numbers,
        snakemake,
        nums,
        config_keys={
            "effects.min_reoffenders_for_survival": p.min_reoffenders,
            "effects.cox_ties": p.ties,
            "matching.replace": bool(p.replace),
        },
        figures={
            "figures.km": {
                "path": snakemake.output.figure,
                "caption": "Kaplan-Meier estimates of the proportion without a proven "
                "re-offence, treated and matched comparison group (weighted by the matching "
                "weights), with 95% log-log confidence bands and numbers at risk.",
            }
        },
    )


run(main, snakemake)
