"""Lazy package namespaces (PEP 562): a package's names resolve on first access.

A package ``__init__`` that re-exports its submodules' names would import every submodule
(and their numpy, pandas and scipy) as soon as any one of them is reached: the Snakefile
reading a settings class while it is parsed, or a script that needs one function. With
:func:`attach` the package imports nothing until a name is used. The package keeps its
real ``from ... import ...`` lines under ``if TYPE_CHECKING:`` (for readers, type checkers
and :func:`mydirection.reporting.provenance.library_sources`, which reads them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping


def attach(
    package: str, where: Mapping[str, str], submodules: Iterable[str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` of ``package``: a name of ``where`` (name -> the
    submodule it lives in) is imported from its submodule on first access, and a name of
    ``submodules`` is that submodule."""
    where = dict(where)
    submodules = frozenset(submodules)

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
            setattr(importlib.import_module(package), name, value)
            return value
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *where, *submodules})

    return __getattr__, __dir__


__all__ = ["attach"]
