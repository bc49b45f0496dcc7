"""dlt's state read from its files (framework/stages/dlt_state.py): the local copy decoded as
dlt decodes it, and judged current only when the lake's newest state is that very version."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dlt.common.json as dlt_json
import pytest

from framework.lake import Lake
from framework.settings.targets import LakeTarget
from framework.stages import dlt_state

STATE_FOLDER = "raw/_dlt_pipeline_state"


def write_state(pipeline_dir: Path, **values: object) -> dict[str, object]:
    state = {"_state_version": 2, "_version_hash": "h2", "pipeline_name": "orders", **values}
    pipeline_dir.mkdir(parents=True, exist_ok=True)
    (pipeline_dir / dlt_state.STATE_FILE).write_text(dlt_json.typed_dumps(state))
    return state


def store(lake_root: Path, name: str, load_id: str, version: int, version_hash: str) -> Path:
    folder = lake_root / STATE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}__{load_id}__{version_hash.encode().hex()}.jsonl"
    path.write_text(json.dumps({"version": version, "version_hash": version_hash,
                                "pipeline_name": name, "state": "..."}))
    return path


def current_here(pipeline_dir: Path, lake: Lake) -> dict[str, object] | None:
    return dlt_state.current_state(pipeline_dir, lake, dlt_state.stored_states(lake, "orders"))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(LakeTarget(url=str(tmp_path / "lake")))


def test_typed_values_decode_as_dlt_decodes_them(tmp_path: Path) -> None:
    values = {"at": datetime(2018, 1, 2, 3, 4, 5, 678901), "aware": datetime(2018, 1, 2, tzinfo=UTC),
              "day": date(2018, 1, 2), "amount": Decimal("12.30"), "n": 5, "text": "x"}
    write_state(tmp_path / "orders", sources={"s": values})

    decoded = dlt_state.local_state(tmp_path / "orders" / dlt_state.STATE_FILE)

    assert decoded is not None
    assert decoded["sources"]["s"] == dlt_json.typed_loads(dlt_json.typed_dumps(values)) == values


def test_a_value_of_dlts_own_types_leaves_the_file_to_dlt(tmp_path: Path) -> None:
    write_state(tmp_path / "orders", sources={"s": {"raw": b"\x00\x01"}})

    assert dlt_state.local_state(tmp_path / "orders" / dlt_state.STATE_FILE) is None


def test_the_state_is_current_only_when_the_lakes_newest_is_this_version(
        tmp_path: Path, lake: Lake) -> None:
    pipeline_dir = tmp_path / "dlt" / "orders"
    write_state(pipeline_dir)
    root = tmp_path / "lake"
    store(root, "orders", "1700000000.1", 1, "h1")
    assert current_here(pipeline_dir, lake) is None  # the lake is older

    newest = store(root, "orders", "1700000001.2", 2, "h2")
    store(root, "orders_", "1700000009.9", 7, "other")  # another pipeline's, newer
    store(root, "orders__eu", "1700000009.8", 8, "other")
    current = current_here(pipeline_dir, lake)
    assert current is not None and current["_version_hash"] == "h2"

    store(root, "orders", "1700000002.3", 3, "h3")  # another worker ran since
    assert current_here(pipeline_dir, lake) is None

    newest.unlink()
    (root / STATE_FOLDER / f"orders__1700000002.3__{b'h3'.hex()}.jsonl").write_text("{half")
    assert current_here(pipeline_dir, lake) is None  # unreadable: dlt


def test_each_pipeline_sees_only_its_own_state_files(tmp_path: Path, lake: Lake) -> None:
    root = tmp_path / "lake"
    for name in ("orders", "orders_", "orders__eu", "orders_archive"):
        store(root, name, "1700000000.1", 1, f"h-{name}")

    for name in ("orders", "orders_", "orders__eu", "orders_archive"):
        found = dlt_state.stored_states(lake, name)
        assert [Path(path).name.rsplit("__", 2)[0] for _, path in found] == [name]
    assert dlt_state.stored_states(lake, "order") == []


def test_a_package_dlt_has_not_finished_is_pending(tmp_path: Path) -> None:
    pipeline_dir = tmp_path / "orders"
    (pipeline_dir / "load" / "normalized").mkdir(parents=True)
    assert not dlt_state.has_pending_packages(pipeline_dir)
    # dlt's atomic-save temporary, left by a kill before its rename: dlt ignores it, and so
    # must the look without dlt (it sent every later run through dlt)
    (pipeline_dir / "load" / "normalized" / "a3f9c2d1e0b48765").write_text("{}")
    assert not dlt_state.has_pending_packages(pipeline_dir)
    (pipeline_dir / "load" / "normalized" / "1700000000.1").mkdir()
    assert dlt_state.has_pending_packages(pipeline_dir)


def test_the_lake_dataset_is_made_as_dlts_own_first_load_makes_it(tmp_path: Path) -> None:
    """The extract writes dlt's `raw/init` before a load (dlt's own would fail on a `raw/`
    folder already there): byte for byte what dlt writes on a new lake, so that a dlt upgrade
    changing it fails here."""
    from types import SimpleNamespace

    import dlt

    from framework.stages.extract import _dlt_dataset

    theirs = tmp_path / "dlt-lake"
    pipeline = dlt.pipeline(pipeline_name="init_probe", pipelines_dir=str(tmp_path / "dlt"),
                            destination=dlt.destinations.filesystem(bucket_url=str(theirs)),
                            dataset_name="raw")
    pipeline.run([{"a": 1}], table_name="probe", loader_file_format="jsonl")
    ours = Lake(LakeTarget(url=str(tmp_path / "lake")))

    _dlt_dataset(SimpleNamespace(lake=ours))  # type: ignore[arg-type]

    assert (tmp_path / "lake" / "raw" / "init").read_bytes() == \
        (theirs / "raw" / "init").read_bytes()
