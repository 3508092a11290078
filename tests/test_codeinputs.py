"""The rules' code inputs remembered between runs (mydirection.codeinputs): the same answer
as library_sources, reused while the files it was read from are unchanged, else recomputed."""

import os

import pytest

from mydirection import codeinputs
from mydirection.reporting import provenance


@pytest.fixture
def script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scripts").mkdir()
    path = tmp_path / "scripts" / "job.py"
    path.write_text("from mydirection.settings import TestLevel\n")
    return "scripts/job.py"


def test_same_answer_then_reused_then_recomputed(script, tmp_path, monkeypatch):
    cache = tmp_path / ".snakemake" / "code_inputs.json"
    first = codeinputs.CodeInputs(cache)(script)
    assert first == provenance.library_sources(script)
    assert any(p.endswith("mydirection/settings.py") for p in first)

    def boom(*_):
        raise AssertionError("recomputed although nothing changed")

    monkeypatch.setattr(provenance, "library_sources", boom)
    assert codeinputs.CodeInputs(cache)(script) == first  # from the file, a new process
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)

    (tmp_path / script).write_text(
        "from mydirection.settings import TestLevel\nfrom mydirection import contract\n"
    )
    st = os.stat(tmp_path / script)
    os.utime(tmp_path / script, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    provenance._closure.cache_clear()  # a new process: what a new snakemake run is
    provenance._imports.cache_clear()
    again = codeinputs.CodeInputs(cache)(script)
    assert any(p.endswith("mydirection/contract.py") for p in again)
    assert again == provenance.library_sources(script)


def test_a_new_file_in_a_watched_folder_recomputes(script, tmp_path, monkeypatch):
    cache = tmp_path / "c.json"
    codeinputs.CodeInputs(cache)(script)
    calls = []
    real = provenance.library_sources
    monkeypatch.setattr(provenance, "library_sources", lambda s: calls.append(s) or real(s))
    (tmp_path / "scripts" / "other.py").write_text("")  # the script's folder changes
    codeinputs.CodeInputs(cache)(script)
    assert calls == [script]


def test_an_unwritable_cache_is_not_an_error(script, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    out = codeinputs.CodeInputs(blocked / "sub" / "c.json")(script)  # parent is a file
    assert out == provenance.library_sources(script)
