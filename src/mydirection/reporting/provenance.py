"""Provenance: which code and which inputs made a number.

- :func:`library_sources` is the set of library modules a rule's script runs: the
  ``mydirection`` modules it imports, followed transitively through their own imports
  (read from the source with :mod:`ast`, nothing is imported). The Snakefile declares them
  as the rule's inputs and their git blob hashes as its params (:func:`code_versions`), so
  editing a library module reruns exactly the rules that run it; the rule harness records
  the same hashes with every number.
- :func:`git_blob_hash` is what ``git hash-object`` prints for a file, so a number can be
  traced to the exact version of each module in the repository history.
- :func:`sha256_file` checksums inputs and outputs.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "mydirection"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def git_blob_hash(path) -> str:
    """The git blob hash of a file's content: sha1 of ``b"blob <len>\\0" + content``."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks (large extracts are streamed, never loaded whole).

    A directory is hashed as the sorted list of its files' relative paths and hashes.
    """
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            h.update(f"{f.relative_to(p).as_posix()}\0{sha256_file(f)}\n".encode())
        return h.hexdigest()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def _module_file(name: str) -> Path | None:
    """The source file of module ``mydirection.x.y`` (package ``__init__``), if it exists."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


#: The fields of a node that hold statements: an import is a statement, so it is found by
#: walking statement blocks only (expressions, which cannot hold one, are skipped).
_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def _statements(tree: ast.AST):
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for name in _BLOCKS:
            todo.extend(getattr(node, name, None) or ())


@cache
def _imports(path: Path) -> frozenset[str]:
    """The ``mydirection`` modules a source file imports (anywhere in it, lazily or not).

    Cached: the Snakefile asks for every script's closure while it is parsed, and most
    modules are shared between scripts (each is parsed once per process)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != PACKAGE:
                continue
            out.add(node.module)
            for a in node.names:  # `from mydirection import matching` imports a module
                if _module_file(f"{node.module}.{a.name}") is not None:
                    out.add(f"{node.module}.{a.name}")
    # importing a.b.c runs a/__init__ and a/b/__init__ too
    for name in list(out):
        parts = name.split(".")
        out.update(".".join(parts[:k]) for k in range(1, len(parts)))
    return frozenset(out)


@cache
def _closure(path: str) -> tuple[str, ...]:
    seen: set[Path] = set()
    todo = [Path(path)]
    while todo:
        f = todo.pop()
        for name in _imports(f):
            mod = _module_file(name)
            if mod is not None and mod not in seen:
                seen.add(mod)
                todo.append(mod)
    return tuple(sorted(str(p) for p in seen))


def library_sources(script, root=None) -> list[str]:
    """The library modules (source paths) that ``script`` runs, sorted.

    Paths are relative to ``root`` (default: the current directory, the workflow's working
    directory) when the package lies inside it, absolute otherwise.
    """
    root = Path(root or Path.cwd()).resolve()
    out = []
    for p in _closure(str(Path(script).resolve())):
        path = Path(p)
        try:
            out.append(path.relative_to(root).as_posix())
        except ValueError:
            out.append(path.as_posix())
    return out


def code_versions(script, root=None) -> dict[str, str]:
    """Path -> git blob hash of the script and every library module it runs."""
    root = Path(root or Path.cwd())
    paths = [Path(script).as_posix(), *library_sources(script, root)]
    return {p: git_blob_hash(root / p if not Path(p).is_absolute() else p) for p in paths}


__all__ = ["code_versions", "git_blob_hash", "library_sources", "sha256_file"]
