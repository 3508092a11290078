"""Rule `registry`: merge results/numbers/*.json into results/registry.json (with provenance)."""

from pathlib import Path

import yaml

from mydirection.registry import (
    RegistryError,
    build_registry,
    dumps,
    git_blob_hash,
    load_numbers,
    sha256_file,
)
from mydirection.runner import UserError, log, run


def main(snakemake):
    numbers = [p for p in snakemake.input.numbers]
    schema = yaml.safe_load(Path(snakemake.input.schema).read_text())
    own = {
        "rule": snakemake.rule,
        "script": {"path": "scripts/registry.py", "blob": git_blob_hash(__file__)},
        "inputs": {snakemake.input.schema: sha256_file(snakemake.input.schema)},
    }
    try:
        registry = build_registry(
            load_numbers(numbers),
            threshold=snakemake.params.threshold,
            config=snakemake.params.config,
            schema=schema,
            own=own,
        )
    except RegistryError as err:
        raise UserError(str(err)) from err
    Path(snakemake.output.registry).write_text(dumps(registry))
    n_supp = sum(e["suppressed"] for e in registry["numbers"].values())
    log.info(
        "registry: %d numbers (%d suppressed), %d figures from %d numbers files",
        len(registry["numbers"]),
        n_supp,
        len(registry["figures"]),
        len(numbers),
    )


run(main, snakemake)
