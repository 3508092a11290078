"""Small helpers shared by the test modules."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Names(list):
    """A stand-in for Snakemake's named lists (``snakemake.input`` and friends): index by
    position or by name, or read a name as an attribute."""

    def __init__(self, named: dict):
        super().__init__(named.values())
        self._named = named

    def __getattr__(self, name):
        try:
            return self.__dict__["_named"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, item):
        return self._named[item] if isinstance(item, str) else super().__getitem__(item)


def copy_project(dest: Path) -> Path:
    """A fresh copy of the project (no venv, git, results, data or caches) at ``dest``."""
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "results", "data", ".snakemake", "__pycache__", ".pytest_cache",
        ".hypothesis", ".ruff_cache", "*.egg-info",
    )  # fmt: skip
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest
