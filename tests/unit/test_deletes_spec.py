"""The `deletes` keys: `max_fraction` limits reconcile deletes, with exact one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.spec.model import DEFAULT_MAX_DELETE_FRACTION, PipelineSpec
from tests.unit.test_spec_errors import problems, project  # noqa: F401 - a fixture

BASE = ("name: orders\nsource:\n  connection: shop\n  table: orders\n  primary_key: [order_id]\n"
        "lake:\n  path: orders\n")


def spec(deletes: dict[str, object]) -> PipelineSpec:
    return PipelineSpec.model_validate({
        "name": "orders", "source": {"connection": "shop", "table": "orders",
                                     "primary_key": ["order_id"]},
        "lake": {"path": "orders"}, "deletes": deletes})


def test_max_fraction_defaults_to_a_tenth() -> None:
    assert DEFAULT_MAX_DELETE_FRACTION == 0.1
    assert spec({"reconcile": "remove"}).deletes.max_fraction == 0.1  # type: ignore[union-attr]
    assert spec({"reconcile": "mark", "max_fraction": 1}).deletes.max_fraction == 1.0  # type: ignore[union-attr]


@pytest.mark.parametrize(("deletes", "expected"), [
    ("  reconcile: remove\n  max_fraction: 1.5\n",
     "pipelines/orders.yml:10:17: deletes.max_fraction: 1.5 is greater than the maximum of 1"),
    ("  soft_delete_column: deleted_at\n  max_fraction: 0.5\n",
     ("pipelines/orders.yml:8:1: deletes: 'max_fraction' limits 'reconcile' deletes; a "
      "soft_delete_column deletes only the rows the source marks")),
])
def test_a_wrong_max_fraction_is_one_exact_line(project: Path, deletes: str,  # noqa: F811
                                                expected: str) -> None:
    assert problems(project, BASE + "deletes:\n" + deletes) == [expected]


def test_reconcile_on_a_kind_that_cannot_list_its_keys_is_refused(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A kind whose spec model says `reads_keys = False` (an API without a full listing)."""
    from framework.sources.sql.spec import SqlSource

    monkeypatch.setattr(SqlSource, "reads_keys", False)
    assert problems(project, BASE + "deletes:\n  reconcile: remove\n") == [(
        "pipelines/orders.yml:9:14: deletes.reconcile: source kind 'sql' cannot list every "
        "current key, so deletes cannot be reconciled; use deletes.soft_delete_column, or "
        "remove deletes")]
    assert problems(project, BASE + "deletes:\n  soft_delete_column: deleted_at\n") == []


@pytest.mark.parametrize("disposition", ["append", "replace"])
def test_a_soft_delete_column_on_a_table_that_is_not_merged_is_refused(
        project: Path, disposition: str) -> None:  # noqa: F811
    """Only a merge removes a row the source marks deleted: on an append or replace table the
    column did nothing, and the marked rows stayed in the warehouse."""
    assert problems(project, BASE + f"warehouse:\n  write_disposition: {disposition}\n"
                    "deletes:\n  soft_delete_column: deleted_at\n") == [(
        "pipelines/orders.yml:11:23: deletes.soft_delete_column: a soft delete removes a row "
        f"from a merged table only ('{disposition}' loads the rows the source marks as any "
        "other); set warehouse.write_disposition: merge, or filter them out in source.query")]
