"""Rule fidelity: item scores, fidelity index per person and case manager, decay over 2018."""

import logging

from mydirection import fidelity as fid
from mydirection.numbers import number, write_numbers
from mydirection.runner import UserError, run

log = logging.getLogger("mydirection")


def main(snakemake):
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    settings = fid.FidelitySettings.from_config(p.fidelity)
    threshold = int(p.suppression_threshold)

    tables = {
        name: fid.read_checked(inp[name], name)
        for name in ("enrolments", "plans", "enabling_fund", "activities", "staff", "cohort")
    }
    enrolments, cohort = tables["enrolments"], tables["cohort"]
    treated = cohort[cohort["treated"].astype(bool)]
    scored = enrolments[enrolments["person_id"].isin(treated["person_id"])]
    log.info(
        "enrolments: %d; in the treated cohort: %d; treated without an enrolment record: %d",
        len(enrolments),
        len(scored),
        int((~treated["person_id"].isin(enrolments["person_id"])).sum()),
    )
    if scored.empty:
        raise UserError(
            f"{inp.enrolments}, column person_id: 0 rows match a treated person in "
            f"{inp.cohort}; check that both come from the same cleaning run."
        )
    tables["contacts"] = fid.read_checked(inp.contacts, "contacts", person_ids=scored["person_id"])
    tables["supervision"] = fid.read_checked(inp.supervision, "supervision")

    event_end = treated.set_index("person_id")["event_end"]
    periods = fid.enrolment_periods(scored, p.extract_end_date, event_end)
    items = fid.score_items(
        periods,
        tables["plans"],
        tables["contacts"],
        tables["enabling_fund"],
        tables["activities"],
        settings,
    )
    person = fid.person_index(items, periods, settings)
    cm = fid.case_manager_index(
        person, enrolments, tables["staff"], settings, tables["supervision"]
    )
    coverage = fid.item_coverage(items, settings.weights)
    monthly = fid.monthly_index(person, settings.ci_level)
    slope = fid.monthly_slope(person, settings.ci_level, p.fidelity.get("monthly_se", "cluster"))

    items.to_parquet(out.item_scores, index=False)
    person.to_parquet(out.index_person, index=False)
    cm.to_parquet(out.index_case_manager, index=False)
    coverage.to_parquet(out.item_coverage, index=False)
    monthly.to_parquet(out.monthly, index=False)
    log.info("people scored: %d of %d", int(person["index"].notna().sum()), len(person))
    for row in coverage.itertuples():
        log.info("item %s: scorable for %d of %d", row.item, row.n_scorable, row.n_people)

    fid.plot_distribution(person, settings, out.fig_distribution)
    fid.plot_items(coverage, out.fig_items)
    fid.plot_monthly(monthly, slope, out.fig_monthly, threshold)
    fid.plot_case_managers(cm, person, settings.ci_level, out.fig_case_managers, threshold)

    write_numbers(
        out.numbers,
        snakemake,
        fidelity_numbers(person, cm, coverage, slope, settings),
        config_keys=config_keys(p.fidelity),
        figures=figure_captions(out, settings, threshold),
    )


def fidelity_numbers(person, cm, coverage, slope, settings):
    idx = person["index"].dropna()
    n_scored = len(idx)
    mean, lo, hi, _ = fid.mean_ci(idx, settings.ci_level)
    nums = {
        "fidelity.n_enrolled": number(len(person), "count", "people"),
        "fidelity.n_scored": number(n_scored, "count", "people"),
        "fidelity.mean_index": number(
            mean, "index", derived_from=["fidelity.n_scored"], label="Mean fidelity index (0-100)"
        ),
        "fidelity.mean_index_ci_low": number(lo, "index", derived_from=["fidelity.n_scored"]),
        "fidelity.mean_index_ci_high": number(hi, "index", derived_from=["fidelity.n_scored"]),
        "fidelity.median_days_enrolled": number(
            float(person["days_enrolled"].median()), "days", derived_from=["fidelity.n_enrolled"]
        ),
        "fidelity.monthly_slope": number(
            slope.estimate,
            "estimate",
            "index points per month",
            label="Change in the fidelity index per month of enrolment",
        ),
        "fidelity.monthly_slope_ci_low": number(slope.ci_low, "estimate", "index points per month"),
        "fidelity.monthly_slope_ci_high": number(
            slope.ci_high, "estimate", "index points per month"
        ),
        "fidelity.monthly_slope_p": number(slope.p_value, "p_value"),
        "fidelity.n_case_managers": number(len(cm), "count", "case managers"),
    }
    for b in fid.BANDS:
        n_b = int((person["band"] == b).sum())
        nums[f"fidelity.n_{b}"] = number(n_b, "count", "people")
        nums[f"fidelity.share_{b}"] = number(
            n_b / n_scored if n_scored else None,
            "proportion",
            derived_from=[f"fidelity.n_{b}", "fidelity.n_scored"],
        )
    for name in sorted(settings.alternative_weights):
        nums[f"fidelity.mean_index_{name}"] = number(
            float(person[f"index_{name}"].mean()), "index", derived_from=["fidelity.n_scored"]
        )
    known = cm["trained_before_first_enrolment"].dropna()
    n_tr = int(known.sum())
    nums["fidelity.n_case_managers_in_staff"] = number(len(known), "count", "case managers")
    nums["fidelity.n_trained_before_first_enrolment"] = number(n_tr, "count", "case managers")
    nums["fidelity.share_trained_before_first_enrolment"] = number(
        n_tr / len(known) if len(known) else None,
        "proportion",
        derived_from=[
            "fidelity.n_trained_before_first_enrolment",
            "fidelity.n_case_managers_in_staff",
        ],
    )
    nums["fidelity.mean_als_attended"] = number(
        float(cm["als_attended"].astype(float).mean()), "mean", "Action Learning Sets"
    )
    nums["fidelity.median_caseload"] = number(
        float(cm["caseload"].median()), "mean", "people enrolled per case manager"
    )
    nums["fidelity.median_supervision_caseload"] = number(
        float(cm["supervision_caseload"].astype(float).median()),
        "mean",
        "supervision events open during the pilot per case manager",
    )
    # Moderator beside the index: mean index by whether the case manager was trained first.
    trained_cm = person["case_manager_id"].map(
        cm.set_index("case_manager_id")["trained_before_first_enrolment"]
    )
    for flag, name in ((True, "trained"), (False, "untrained")):
        sel = person.loc[(trained_cm == flag).fillna(False).to_numpy(), "index"].dropna()
        nums[f"fidelity.n_scored_{name}_cm"] = number(len(sel), "count", "people")
        nums[f"fidelity.mean_index_{name}_cm"] = number(
            float(sel.mean()) if len(sel) else None,
            "index",
            derived_from=[f"fidelity.n_scored_{name}_cm"],
        )
    for row in coverage.itertuples():
        nums[f"fidelity.n_scorable_{row.item}"] = number(int(row.n_scorable), "count", "people")
        nums[f"fidelity.adherence_{row.item}"] = number(
            row.mean_score,
            "proportion",
            derived_from=[f"fidelity.n_scorable_{row.item}"],
            label=row.label,
        )
    return nums


def config_keys(section, prefix="fidelity."):
    """Dotted keys of every leaf setting used (as the registry flattens the config)."""
    keys = {}
    for k, v in sorted(section.items()):
        if isinstance(v, dict) and v:
            keys.update(config_keys(v, f"{prefix}{k}."))
        elif not isinstance(v, dict):
            keys[f"{prefix}{k}"] = v
    return keys


def figure_captions(out, settings, threshold):
    return {
        "figures.fidelity_distribution": {
            "path": out.fig_distribution,
            "caption": (
                "Distribution of the fidelity index (0-100) over enrolled people with enough "
                f"scorable items; dashed lines mark the bands (low < {settings.band_moderate:g}, "
                f"high >= {settings.band_high:g})."
            ),
        },
        "figures.fidelity_items": {
            "path": out.fig_items,
            "caption": (
                "Adherence item by item: mean item score among people for whom the item could "
                "be scored (n beside each item), coloured by Carroll et al. adherence domain."
            ),
        },
        "figures.fidelity_monthly": {
            "path": out.fig_monthly,
            "caption": (
                "Mean fidelity index by month of enrolment with "
                f"{settings.ci_level:.0%} confidence intervals and the fitted linear trend; "
                "the lower panel shows the number enrolled each month. Months with fewer than "
                f"{threshold} people scored show no mean (disclosure control)."
            ),
        },
        "figures.fidelity_case_managers": {
            "path": out.fig_case_managers,
            "caption": (
                "Funnel plot: each case manager's mean fidelity index against the number of "
                "their cases scored, with control limits around the overall mean "
                f"({settings.ci_level:.0%} dashed, 99.8% dotted); colour shows training before "
                f"their first enrolment. Case managers with fewer than {threshold} scored cases "
                "are not shown."
            ),
        },
    }


run(main, snakemake)
