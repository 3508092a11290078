"""Rule synthetic: generate the ten raw extracts, truth.json and mess.json."""

from pathlib import Path

from mydirection.runner import UserError, log, run
from mydirection.synthetic import resolve_config, write_extracts


def main(snakemake):
    out_dir = Path(snakemake.output.truth).parent
    try:
        cfg = resolve_config(snakemake.params.generator)
        truth, mess = write_extracts(out_dir, cfg, snakemake.params.seed)
    except ValueError as err:
        if not str(err).startswith("synthetic config"):
            raise
        raise UserError(f"{snakemake.input.config}: {err}") from None
    log.info(
        "generated %d people (%d treated, %d comparator pool) into %s",
        truth["n_people"],
        truth["n_treated"],
        truth["n_comparator_pool"],
        out_dir,
    )
    prevention = truth["enrolment_prevention"]
    log.info(
        "planted enrolment prevention: %d people passed over for enrolment (%s)",
        prevention["n_prevented"],
        ", ".join(f"{k}={v}" for k, v in prevention["prevented_by"].items()),
    )
    attrition = {k: v for k, v in truth["treated_attrition"].items() if k != "description"}
    log.info("planted treated attrition: %s", ", ".join(f"{k}={v}" for k, v in attrition.items()))
    for name, kinds in mess.items():
        planted = ", ".join(f"{k}={v}" for k, v in kinds.items() if v)
        log.info("planted mess in %s: %s", name, planted or "none")


run(main, snakemake)
