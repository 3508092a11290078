"""The project's own files describe one environment and one layout."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_pyproject_and_environment_list_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_side = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda_side |= {_name(r) for r in dep["pip"] if not r.startswith("-e")}
        else:
            conda_side.add(_name(dep))
    conda_side -= {"python", "pip", "quarto"}
    assert pip_side == conda_side
    assert "quarto" in {_name(d) for d in env["dependencies"] if isinstance(d, str)}


def test_every_stage_has_rule_file_and_every_rule_file_is_included():
    snakefile = (ROOT / "Snakefile").read_text()
    included = set(re.findall(r'include: "workflow/rules/(\w+)\.smk"', snakefile))
    on_disk = {p.stem for p in (ROOT / "workflow/rules").glob("*.smk")}
    assert included == on_disk


def test_ci_runs_the_readme_test_command():
    readme_top = "\n".join((ROOT / "README.md").read_text().splitlines()[:25])
    assert "make report" in readme_top and "make test" in readme_top
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_gitignore_keeps_data_and_results_out():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in ("results/", "data/", ".venv/", ".snakemake/"):
        assert entry in ignored


def test_code_is_linted_and_formatted():
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    checks = [
        [bin_dir / "ruff", "check", "src", "scripts", "tests", "benchmarks"],
        [bin_dir / "ruff", "format", "--check", "src", "scripts", "tests", "benchmarks"],
        [bin_dir / "snakefmt", "--check", "Snakefile", "workflow/rules"],
    ]
    for cmd in checks:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, f"{' '.join(map(str, cmd[:2]))}:\n{out.stdout}{out.stderr}"


def test_library_modules_and_scripts_stay_small():
    """One purpose per module (no library module over 600 lines) and thin rule scripts
    (under 600 lines together): the statistics live in the library, not in scripts/."""
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / "src" / "mydirection").rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, f"split these modules: {long}"
    scripts = sum(len(p.read_text().splitlines()) for p in (ROOT / "scripts").glob("*.py"))
    assert scripts < 600, f"scripts/ holds {scripts} lines: move the work into library stages"
