# Rules of the report stage: the results registry and the rendered report.
# Included last: every stage has appended its numbers files to NUMBERS and its figures to
# FIGURES by now. `registry` is a checkpoint so that `report` can declare as inputs every
# figure the registry lists (read from registry.json once it exists).
from mydirection.reporting.stamp import git_state, registry_figure_paths

# The report's reproducibility stamp: re-rendered when the commit or dirty flag changes.
GIT_COMMIT, GIT_DIRTY = git_state()
# Which rule makes which files (output patterns by rule): the provenance appendix links an
# input to the rule that made it even when that rule reports no numbers (batch rules).
OUTPUT_PATTERNS = {
    r.name: sorted(str(o) for o in r.output) for r in workflow.rules if r.output
}


checkpoint registry:
    input:
        numbers=NUMBERS,
        figures=FIGURES,
        schema="workflow/schemas/config.schema.yaml",
        code=code("scripts/registry.py"),
    output:
        registry="results/registry.json",
    log:
        "results/logs/registry.log",
    benchmark:
        "results/benchmarks/registry.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        config=config,
        producers=OUTPUT_PATTERNS,
    script:
        "../../scripts/registry.py"


rule report:
    input:
        registry="results/registry.json",
        figures=lambda wildcards: registry_figure_paths(
            checkpoints.registry.get().output.registry, FIGURES
        ),
        template="reports/evaluation.qmd",
        css="reports/style.css",
        bibliography="reports/references.bib",
        code=code("scripts/report.py"),
    output:
        html="results/report/evaluation.html",
        run_log="results/report/run_log.json",
        provenance="results/report/provenance.json",
        tables=directory("results/report/tables"),
        xlsx="results/report/tables.xlsx",
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        engine=config["report"]["engine"],
        synthetic=SYNTHETIC,
        commit=GIT_COMMIT,
        dirty=GIT_DIRTY,
    script:
        "../../scripts/report.py"


ALL_TARGETS.append(rules.registry.output.registry)
ALL_TARGETS.append(rules.report.output.html)
