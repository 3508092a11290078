"""Lazy package namespaces (mydirection.lazy): every exported name resolves to the object
its submodule defines, and importing a package imports none of its heavy submodules."""

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["mydirection.sensitivity", "mydirection.fidelity"])
def test_every_name_resolves_to_its_submodule_object(package):
    pkg = importlib.import_module(package)
    for name in pkg.__all__:
        value = getattr(pkg, name)
        where = pkg._WHERE.get(name)
        if where is not None:
            assert value is getattr(importlib.import_module(f"{package}.{where}"), name)
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError):
        pkg.no_such_name  # noqa: B018


def test_importing_the_packages_imports_nothing_heavy():
    code = (
        "import sys; import mydirection.sensitivity, mydirection.fidelity; "
        "print(sorted(m for m in ('numpy', 'pandas', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_evalue_is_the_function_even_after_its_submodule_is_imported():
    import mydirection.sensitivity as sens
    import mydirection.sensitivity.evalue  # noqa: F401

    assert callable(sens.evalue) and sens.evalue(2.0) == pytest.approx(3.414213562373095)
