"""The tables between stages: one spec per table, one reader, a generated docs page."""

from __future__ import annotations

import pandas as pd
import pytest

from mydirection import tables
from mydirection.errors import UserError


def test_docs_stages_page_is_generated_from_the_specs():
    assert tables.DOC_PATH.read_text() == tables.render_doc(), (
        "docs/stages.md is stale: run `python -m mydirection.tables`"
    )


def test_every_spec_names_its_rule_and_describes_every_column():
    for name, spec in tables.specs().items():
        assert spec["written_by"] and spec["one_row_per"] and spec["path"], name
        for col, c in spec["columns"].items():
            assert c["kind"] in tables.KINDS and c["description"], f"{name}.{col}"


def _pairs():
    return pd.DataFrame(
        {"treated_id": ["a"], "comparator_id": ["b"], "round": [1], "subclass": [1]}
    )


def test_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "pairs.parquet"
    tables.write(_pairs(), path, "pairs")
    assert tables.read(path, "pairs").equals(_pairs())
    _pairs().drop(columns="subclass").to_parquet(path)
    with pytest.raises(
        UserError,
        match=r"pairs.parquet \(table pairs, written by rule matching\)"
        r": column subclass: missing \(1 rows\); rerun that rule",
    ):
        tables.read(path, "pairs")
    _pairs().assign(round=["x"]).to_parquet(path)
    with pytest.raises(UserError, match="column round: object values, the spec says int"):
        tables.read(path, "pairs")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(UserError, match="not a readable Parquet file"):
        tables.read(tmp_path / "bad.parquet", "pairs")


def test_as_read_is_the_parquet_round_trip_of_a_cleaned_table(tmp_path):
    """The simulation's in-memory tables are the clean rule's Parquet files as the cohort
    and outcomes rules read them (text as Arrow strings, dates, missing values)."""
    from mydirection import simulation as sim
    from mydirection import synthetic

    syn = synthetic.generate({"n_treated": 20, "n_comparator_pool": 80}, 3,
                             extracts=sim.CHAIN_EXTRACTS)  # fmt: skip
    cleaned = sim._clean(syn.extracts, "2020-12-31").read
    for name, table in cleaned.items():
        path = tmp_path / f"{name}.parquet"
        tables.write(table, path, f"clean.{name}")
        pd.testing.assert_frame_equal(table, tables.read(path, f"clean.{name}", arrow_strings=True))
    assert isinstance(cleaned["convictions"]["person_id"].dtype, pd.ArrowDtype)


def test_writing_an_undeclared_column_is_refused(tmp_path):
    with pytest.raises(ValueError, match="column extra is not declared"):
        tables.write(_pairs().assign(extra=1), tmp_path / "p.parquet", "pairs")


def test_missing_values_where_the_spec_forbids_them(tmp_path):
    with pytest.raises(UserError, match="1 of 1 rows missing"):
        tables.write(_pairs().assign(treated_id=[None]), tmp_path / "p.parquet", "pairs")
