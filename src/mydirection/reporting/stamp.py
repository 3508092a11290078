"""The report's build stamp: what it was built from (the commit, the package versions, the
checksums of the inputs no rule made) and the figure files it embeds. Light: the report
rules read it while the Snakefile is parsed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path


def source_inputs(registry: Mapping) -> dict[str, str]:
    """Checksums of the inputs no rule made (extracts, config schema), from the registry."""
    out = {}
    for r in registry.get("rules", {}).values():
        for path, info in r.get("inputs", {}).items():
            sha = info.get("sha256")
            if info.get("made_by") is None and isinstance(sha, str):
                out[path] = sha
    return dict(sorted(out.items()))


def package_versions(
    names: Iterable[str] = (
        "python",
        "snakemake",
        "pandas",
        "numpy",
        "scipy",
        "statsmodels",
        "matplotlib",
        "pyarrow",
        "jinja2",
        "pypandoc-binary",
        "mydirection",
    ),
) -> dict[str, str]:
    import platform
    from importlib import metadata

    out = {}
    for name in names:
        if name == "python":
            out[name] = platform.python_version()
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state(cwd=".") -> tuple[str, bool | None]:
    """(commit, dirty) of the working tree; ("unknown", None) outside a git repository."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", None


def registry_figure_paths(registry_path, declared: Iterable[str] = ()) -> list[str]:
    """Every figure file the registry lists, plus ``declared`` (the FIGURES list)."""
    figures = json.loads(Path(registry_path).read_text()).get("figures", {})
    return sorted({f["path"] for f in figures.values()} | set(declared))
