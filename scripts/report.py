"""Rule `report`: fill reports/evaluation.qmd from the registry and render it to HTML."""

import json
import subprocess
import time
from pathlib import Path

from mydirection.reporting.exports import html_tables, write_csvs, write_xlsx
from mydirection.reporting.render import (
    ReportKeyError,
    choose_engine,
    engine_version,
    figure_filename,
    fill_template,
    provenance_document,
    render,
)
from mydirection.reporting.stamp import package_versions, source_inputs
from mydirection.runner import UserError, log, run

# What the stamp says about the data the report was built from (params.synthetic).
DATA_SOURCE = {
    True: "SYNTHETIC: generated demonstration extracts (a demonstration, not findings)",
    False: "real extracts (config raw_dir)",
}


def main(snakemake):
    started = time.time()
    registry = json.loads(Path(snakemake.input.registry).read_text())
    engine = choose_engine(snakemake.params.engine)
    synthetic = bool(snakemake.params.synthetic)
    stamp = {
        "synthetic": synthetic,
        "build": {
            "data": DATA_SOURCE[synthetic],
            "commit": snakemake.params.commit,
            "working tree": {True: "dirty (uncommitted changes)", False: "clean"}.get(
                snakemake.params.dirty, "unknown (not a git checkout)"
            ),
            "config sha256": registry.get("config_hash", ""),
            "render engine": engine_version(engine),
        },
        "packages": package_versions(),
        "inputs": source_inputs(registry),
    }
    try:
        markdown = fill_template(snakemake.input.template, registry, stamp)
    except ReportKeyError as err:
        raise UserError(str(err)) from err
    figures = {figure_filename(key, f["path"]): f["path"] for key, f in registry["figures"].items()}
    try:
        render(
            markdown,
            figures,
            [snakemake.input.css, snakemake.input.bibliography],
            snakemake.output.html,
            engine=engine,
        )
    except (subprocess.CalledProcessError, RuntimeError) as err:
        detail = getattr(err, "stderr", b"") or b""
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        raise UserError(f"{engine} could not render the report: {err} {detail[-2000:]}") from err
    html = Path(snakemake.output.html).read_text()
    tables = html_tables(html)
    write_csvs(tables, snakemake.output.tables)
    write_xlsx(tables, snakemake.output.xlsx)
    Path(snakemake.output.provenance).write_text(provenance_document(registry, stamp))
    run_log = {
        "rule": snakemake.rule,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 3),
        "engine": stamp["build"]["render engine"],
        "numbers": len(registry["numbers"]),
        "figures": len(registry["figures"]),
        "tables": len(tables),
    }
    Path(snakemake.output.run_log).write_text(json.dumps(run_log, indent=2) + "\n")
    log.info("report: rendered with %s in %.1f s", engine, run_log["seconds"])


run(main, snakemake)
