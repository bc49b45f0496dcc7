"""The dbt "owed" marker under parallel runs: no selection is ever lost."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from framework.owed import OwedModels


def test_a_build_settles_only_the_marks_it_saw(tmp_path: Path) -> None:
    owed = OwedModels(tmp_path / "dbt_pending.json")
    owed.owe(["stg_orders+"])
    owed.owe(["stg_customers+"])
    snapshot = owed.snapshot()  # a build starts with these two
    owed.owe(["stg_orders+"])  # another pipeline loads new orders while it builds
    owed.owe(["stg_products+"])  # and another, new products

    owed.settle(snapshot)

    assert set(owed.snapshot()) == {"stg_orders+", "stg_products+"}
    owed.settle(owed.snapshot())
    assert owed.snapshot() == {} and not (tmp_path / "dbt_pending.json").exists()


def test_the_list_marker_of_earlier_versions_is_read_and_settled(tmp_path: Path) -> None:
    marker = tmp_path / "dbt_pending.json"
    marker.write_text(json.dumps(["stg_products+"]))
    owed = OwedModels(marker)

    snapshot = owed.snapshot()
    owed.settle(snapshot)

    assert list(snapshot) == ["stg_products+"] and not marker.exists()


def _owe_many(marker: str, pipeline: int, times: int) -> None:
    owed = OwedModels(Path(marker))
    for i in range(times):
        owed.owe([f"p{pipeline}_{i}+"])


def test_marks_from_several_processes_at_once_are_all_kept(tmp_path: Path) -> None:
    marker = tmp_path / "dbt_pending.json"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_owe_many, args=(str(marker), p, 40)) for p in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert set(OwedModels(marker).snapshot()) == {f"p{p}_{i}+" for p in range(4) for i in range(40)}


def test_a_damaged_marker_is_one_line_naming_the_file_and_is_kept(tmp_path: Path) -> None:
    import pytest

    from framework.errors import FrameworkError

    marker = tmp_path / "dbt_pending.json"
    marker.write_text('{"stg_orders+": "ab')  # cut short

    with pytest.raises(FrameworkError, match=rf"^{marker}: not a dbt owed marker \(.*\); fix it, "
                       "or delete it and build the dbt models by hand$"):
        OwedModels(marker).owe(["stg_customers+"])

    assert marker.read_text() == '{"stg_orders+": "ab'  # nothing owed is overwritten
