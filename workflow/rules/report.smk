# Rules of the report stage: the results registry and the rendered report.
# Included last: every stage has appended its numbers files to NUMBERS and its figures to
# FIGURES by now.
import json
import subprocess


def git_state():
    """(commit, dirty) of the working tree at DAG time; ("unknown", None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", None


GIT_COMMIT, GIT_DIRTY = git_state()


def registry_figures(wildcards):
    """Every figure the registry lists (read once the registry checkpoint has run)."""
    registry = checkpoints.registry.get().output.registry
    with open(registry) as fh:
        figures = json.load(fh)["figures"]
    return sorted({f["path"] for f in figures.values()} | set(FIGURES))


checkpoint registry:
    input:
        numbers=NUMBERS,
        figures=FIGURES,
        schema="workflow/schemas/config.schema.yaml",
    output:
        registry="results/registry.json",
    log:
        "results/logs/registry.log",
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        threshold=config["report"]["suppression_threshold"],
        config=config,
    script:
        "../../scripts/registry.py"


rule report:
    input:
        registry="results/registry.json",
        figures=registry_figures,
        template="reports/evaluation.qmd",
        css="reports/style.css",
        bibliography="reports/references.bib",
    output:
        html="results/report/evaluation.html",
        run_log="results/report/run_log.json",
    log:
        "results/logs/report.log",
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        engine=config["report"]["engine"],
        commit=GIT_COMMIT,
        dirty=GIT_DIRTY,
    script:
        "../../scripts/report.py"


ALL_TARGETS.append("results/registry.json")
ALL_TARGETS.append("results/report/evaluation.html")
