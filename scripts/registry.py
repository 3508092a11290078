"""Rule `registry`: merge results/numbers/*.json into results/registry.json (with provenance)."""

from mydirection.reporting.provenance import code_versions, sha256_file
from mydirection.reporting.registry import RegistryError, build_registry, dumps, load_numbers
from mydirection.runner import UserError, log, run
from mydirection.settings import ReportSettings, TestLevel, schema


def main(job):
    report = job.settings(ReportSettings)
    level = job.settings(TestLevel)
    own = {
        "script": "scripts/registry.py",
        "code": code_versions("scripts/registry.py"),
        "inputs": {job.input.schema: sha256_file(job.input.schema)},
        "config": {**report.config_keys(), **level.config_keys()},
    }
    try:
        registry = build_registry(
            load_numbers(job.input.numbers),
            threshold=report.suppression_threshold,
            alpha=level.alpha,
            config=job.config,
            schema=schema(),
            own=own,
            producers=getattr(job.params, "producers", None),
        )
    except RegistryError as err:
        raise UserError(str(err)) from err
    with open(job.output.registry, "w") as fh:
        fh.write(dumps(registry))
    if registry["unlabelled"]:
        log.warning(
            "registry: %d numbers have no label of their own and are labelled from their "
            "key (label them in their stage): %s",
            len(registry["unlabelled"]),
            ", ".join(registry["unlabelled"][:20]),
        )
    n_supp = sum(e["suppressed"] for e in registry["numbers"].values())
    log.info(
        "registry: %d numbers (%d suppressed), %d figures from %d numbers files",
        len(registry["numbers"]),
        n_supp,
        len(registry["figures"]),
        len(job.input.numbers),
    )


run(main, snakemake)
