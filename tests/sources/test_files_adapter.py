"""The `files` kind read straight through dlt into a local lake: typed rows, quarantined
records with file, line and reason, and incremental by file (new, unchanged, changed, gone)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from framework.errors import FrameworkError
from framework.sources.base import KeysNotSupported, Rejected
from tests.conftest import copy_project
from tests.sources.files_helpers import context, extract_once, files_spec, raw_batch

COLUMNS = [{"name": "order_id", "type": "string", "nullable": False},
           {"name": "order_purchase_timestamp", "type": "timestamp"},
           {"name": "price", "type": "decimal(12,2)"}]
DIRTY = {"location": "data", "glob": "orders_*.csv", "primary_key": ["order_id"],
         "csv": {"delimiter": ";", "encoding": "latin-1",
                 "timestamp_formats": ["%m/%d/%Y %H:%M"]}}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "project")
    (root / "data").mkdir()
    return root


def write_dirty(path: Path, extra: list[list[object]] = ()) -> None:  # type: ignore[assignment]
    """A CSV as another program writes it: Python's csv module quoting text, `;`, CRLF,
    latin-1, US timestamps, a blank line, a short row, an unparsable date, an empty row."""
    with open(path, "w", encoding="latin-1", newline="") as handle:
        out = csv.writer(handle, delimiter=";", quoting=csv.QUOTE_NONNUMERIC,
                         lineterminator="\r\n")
        out.writerow(["order_id", "customer_city", "order_purchase_timestamp", "price"])
        out.writerow(["a1", "São Paulo; centro", "9/19/2017 9:45", 10.5])  # line 2
        handle.write("\r\n")  # line 3: blank
        out.writerow(["a2", "Rio"])  # line 4: a missing field
        out.writerow(["a3", "Recife", "19.09.2017", 3])  # line 5: not a timestamp
        out.writerow(["a4", 'Say "hi"\nthere', "2017-10-02 10:56:33", "4.25"])  # lines 6-7
        handle.write(";;;\r\n")  # line 8: every field empty
        for row in extra:
            out.writerow(row)


def test_files_dirty_csv_loads_good_rows_and_quarantines_the_rest(root: Path) -> None:
    write_dirty(root / "data" / "orders_2024-01.csv")
    ctx = context(root, files_spec("orders_csv", DIRTY, COLUMNS))
    load_id, extraction = extract_once(ctx)
    assert load_id is not None
    rows = sorted(raw_batch(ctx, load_id).to_pylist(), key=lambda r: r["order_id"])
    assert [(r["order_id"], r["customer_city"], r["price"]) for r in rows] == [
        ("a1", "São Paulo; centro", Decimal("10.50")), ("a4", 'Say "hi"\nthere', Decimal("4.25"))]
    stamps = [r["order_purchase_timestamp"].replace(tzinfo=None) for r in rows]
    assert stamps == [dt.datetime(2017, 9, 19, 9, 45), dt.datetime(2017, 10, 2, 10, 56, 33)]
    assert extraction.rejected() == [
        Rejected("orders_2024-01.csv:3", "blank line", ""),
        Rejected("orders_2024-01.csv:4", "2 field(s), the header has 4", "a2;Rio"),
        Rejected("orders_2024-01.csv:5", "column order_purchase_timestamp: '19.09.2017' is not "
                 "a timestamp (ISO or '%m/%d/%Y %H:%M')", "a3;Recife;19.09.2017;3", by_value=True),
        Rejected("orders_2024-01.csv:8", "every field is empty", ";;;"),
    ]
    assert extraction.columns == {"order_id": "string", "customer_city": "string",
                                  "order_purchase_timestamp": "timestamp",
                                  "price": "decimal(12,2)"}


def test_files_incremental_by_file(root: Path) -> None:
    """Unchanged: nothing read. New file: only it. Changed file: read again whole, with every
    newer file (so their rows of a key it shares stay on top). Gone: reported once, naming
    it."""
    data = root / "data"
    write_dirty(data / "orders_2024-01.csv")
    ctx = context(root, files_spec("orders_csv", DIRTY, COLUMNS))
    assert extract_once(ctx)[0] is not None

    load_id, extraction = extract_once(ctx)
    assert load_id is None and extraction.rejected() == []

    write_dirty(data / "orders_2024-02.csv")
    with open(data / "orders_2024-02.csv", "w", encoding="latin-1", newline="") as handle:
        handle.write("order_id;customer_city;order_purchase_timestamp;price\r\nb1;X;;1\r\n")
    load_id, _ = extract_once(ctx)
    assert load_id is not None
    assert raw_batch(ctx, load_id).column("order_id").to_pylist() == ["b1"]

    time.sleep(0.01)
    write_dirty(data / "orders_2024-01.csv", extra=[["a5", "Natal", "2018-01-01 00:00:00", 7]])
    load_id, extraction = extract_once(ctx)
    assert load_id is not None
    assert sorted(raw_batch(ctx, load_id).column("order_id").to_pylist()) == ["a1", "a4", "a5",
                                                                            "b1"]
    assert len(extraction.rejected()) == 4

    (data / "orders_2024-02.csv").unlink()
    ctx.warnings.clear()
    assert extract_once(ctx)[0] is None
    assert ctx.warnings == [("orders_csv: file orders_2024-02.csv was read before and is gone "
                             "from data; its rows stay loaded")]
    ctx.warnings.clear()
    load_id, extraction = extract_once(ctx)  # reported once, then forgotten
    assert load_id is None and ctx.warnings == []
    assert extraction.nothing_new(_pipeline(ctx))


def test_files_state_survives_a_lost_state_folder(root: Path) -> None:
    """The files read are kept with the lake: a worker without the local folder reads none again."""
    import shutil

    write_dirty(root / "data" / "orders_2024-01.csv")
    ctx = context(root, files_spec("orders_csv", DIRTY, COLUMNS))
    assert extract_once(ctx)[0] is not None
    shutil.rmtree(ctx.state_dir / "dlt")
    assert extract_once(ctx)[0] is None


def test_files_jsonl_and_parquet(root: Path) -> None:
    data = root / "data"
    lines = [json.dumps({"order_id": "j1", "order_purchase_timestamp": "2017-10-02 10:56:33",
                         "price": 1.5}), "", "[1, 2]", "{broken",
             json.dumps({"order_id": "j2", "price": "x"})]
    (data / "orders.jsonl").write_text("\n".join(lines) + "\n")
    ctx = context(root, files_spec("orders_json", {"location": "data", "glob": "*.jsonl",
                                                   "primary_key": ["order_id"]}, COLUMNS))
    load_id, extraction = extract_once(ctx)
    assert raw_batch(ctx, load_id).column("order_id").to_pylist() == ["j1"]
    assert [(r.where, r.reason.split(":")[0]) for r in extraction.rejected()] == [
        ("orders.jsonl:2", "blank line"), ("orders.jsonl:3", "not a JSON object with fields"),
        ("orders.jsonl:4", "not JSON"), ("orders.jsonl:5", "column price")]
    # the field named, as a CSV field's is
    assert extraction.rejected()[-1].reason == "column price: 'x' is not a number"

    pq.write_table(pa.table({"order_id": ["p1", "p2"], "price": [1.25, 2.0]}),
                   data / "orders.parquet")
    ctx = context(root, files_spec("orders_pq", {"location": "data", "glob": "*.parquet",
                                                 "primary_key": ["order_id"]}, COLUMNS))
    load_id, _ = extract_once(ctx)
    table = raw_batch(ctx, load_id)
    assert table.column("price").to_pylist() == [Decimal("1.25"), Decimal("2.00")]


@pytest.mark.parametrize("width", [pa.float64(), pa.float32()])
def test_a_parquet_float_the_declared_scale_cannot_hold_is_refused_not_rounded(
        root: Path, width: pa.DataType) -> None:
    """Arrow rounds a float cast to a decimal silently: 5.125 landed as 5.12, in the lake and
    the warehouse, where a CSV field (or a JSON one) with a third place is refused. A float's
    own binary noise is no loss: 6.1 and float32's 0.3 land as 6.10 and 0.30."""
    data = root / "data"
    pq.write_table(pa.table({"order_id": ["p1", "p2"], "price": pa.array([6.1, 0.3], width)}),
                   data / "orders_1.parquet")
    spec = files_spec("orders_pq", {"location": "data", "glob": "*.parquet",
                                    "primary_key": ["order_id"]}, COLUMNS)
    ctx = context(root, spec)
    load_id, _ = extract_once(ctx)
    assert raw_batch(ctx, load_id).column("price").to_pylist() == [Decimal("6.10"),
                                                                  Decimal("0.30")]
    pq.write_table(pa.table({"order_id": ["p3", "p4"], "price": pa.array([5.125, 1.5], width)}),
                   data / "orders_2.parquet")

    load_id, extraction = extract_once(context(root, spec))

    assert raw_batch(ctx, load_id).column("order_id").to_pylist() == ["p4"]
    assert [(r.where, r.reason) for r in extraction.rejected()] == [
        ("orders_2.parquet row 1", "column price: '5.125' has more than 2 decimal place(s)")]


def test_a_bad_parquet_value_refuses_its_row_not_the_file(root: Path) -> None:
    """One value its declared type refuses failed the whole file, where a CSV or JSON-lines
    file refuses only that record: the file's other rows land, the row is quarantined with
    its row number, value and column. A column whose type cannot become the declared one at
    all still fails the file, naming it."""
    data = root / "data"
    pq.write_table(pa.table({"order_id": ["p1", "p2", "p3"],
                             "price": ["1.50", "abc", "2"]}),
                   data / "orders_1.parquet", row_group_size=2)
    spec = files_spec("orders_pq", {"location": "data", "glob": "*.parquet",
                                    "primary_key": ["order_id"]}, COLUMNS)
    ctx = context(root, spec)

    load_id, extraction = extract_once(ctx)

    table = raw_batch(ctx, load_id)
    assert dict(zip(table.column("order_id").to_pylist(), table.column("price").to_pylist())
                ) == {"p1": Decimal("1.50"), "p3": Decimal("2.00")}
    [refused] = extraction.rejected()
    assert refused.where == "orders_1.parquet row 2"
    assert refused.reason.startswith("column price: 'abc' cannot be read as decimal(12,2) (")
    assert '"order_id": "p2"' in refused.record and refused.by_value

    pq.write_table(pa.table({"order_id": ["p9"], "price": [[1, 2]]}), data / "orders_2.parquet")
    with pytest.raises(FrameworkError, match=r"orders_2.parquet: column price \(list<element: "
                                             r"int64>\) cannot be read as decimal\(12,2\): "):
        extract_once(context(root, spec))


def test_files_missing_folder_and_keys_are_one_line(root: Path) -> None:
    ctx = context(root, files_spec("orders_csv", {**DIRTY, "location": "nowhere"}, COLUMNS))
    assert ctx.source.not_set_up() == "no folder nowhere (source.location)"
    with pytest.raises(KeysNotSupported, match="remove deletes.reconcile"):
        ctx.source.current_keys(ctx, ["order_id"])
    assert ctx.source.describe() == "files nowhere/orders_*.csv"


def test_files_wrong_encoding_is_one_line(root: Path) -> None:
    (root / "data" / "orders_1.csv").write_bytes("order_id\nS\xe3o\n".encode("latin-1"))
    ctx = context(root, files_spec("orders_csv", {"location": "data", "glob": "orders_*.csv",
                                                  "primary_key": ["order_id"]}, COLUMNS[:1]))
    with pytest.raises(FrameworkError, match=r"^files source data: orders_1.csv: not valid "
                                             r"utf-8 text \(.*\); set csv.encoding"):
        extract_once(ctx)


def test_files_spec_infers_format_and_refuses_append() -> None:
    spec = files_spec("x", {"location": "d", "glob": "x_*.CSV", "primary_key": ["id"]},
                      [{"name": "id", "type": "string"}])
    assert spec.source.file_format == "csv" and spec.source.incremental is None
    with pytest.raises(ValidationError, match="cannot tell the file format from 'x_\\*'"):
        files_spec("x", {"location": "d", "glob": "x_*", "primary_key": ["id"]}, [])
    with pytest.raises(ValidationError, match="reads a changed file again whole, and 'append'"):
        files_spec("x", {"location": "d", "glob": "x.csv", "primary_key": ["id"]},
                   [{"name": "id", "type": "string"}],
                   warehouse={"write_disposition": "append"})
    with pytest.raises(ValidationError, match="unknown encoding 'latin-9x'"):
        files_spec("x", {"location": "d", "glob": "x.csv", "primary_key": ["id"],
                         "csv": {"encoding": "latin-9x"}}, [])


def _pipeline(ctx):  # type: ignore[no-untyped-def]
    import dlt

    from framework.stages.extract import _destination

    pipeline = dlt.pipeline(pipeline_name=ctx.spec.name, pipelines_dir=str(ctx.state_dir / "dlt"),
                            destination=_destination(ctx), dataset_name="raw")
    pipeline.sync_destination()
    return pipeline





def test_files_plan_names_the_files_a_run_would_read(root: Path) -> None:
    """`plan` asks count_waiting with this machine's state, without a lake round trip."""
    write_dirty(root / "data" / "orders_2024-01.csv")
    ctx = context(root, files_spec("orders_csv", DIRTY, COLUMNS))
    assert ctx.source.open(ctx).count_waiting(None) == (
        None, "in 1 new or changed file(s): orders_2024-01.csv")
    extract_once(ctx)
    assert ctx.source.open(ctx).count_waiting(None) == (
        0, "(no new or changed file since the last run)")
    write_dirty(root / "data" / "orders_2024-02.csv")
    assert ctx.source.open(ctx).count_waiting(None) == (
        None, "in 1 new or changed file(s): orders_2024-02.csv")


def test_a_thousands_separator_that_is_the_decimal_mark_is_refused() -> None:
    with pytest.raises(ValidationError, match="'.' is the decimal mark too"):
        files_spec("x", {"location": "d", "glob": "x.csv", "primary_key": ["id"],
                         "csv": {"thousands": "."}}, [{"name": "id", "type": "string"}])


@pytest.mark.parametrize(("text", "decimal", "thousands", "read"), [
    ("1.234,56", ",", ".", Decimal("1234.56")), ("-7,1", ",", ".", Decimal("-7.10")),
    ("+1.000", ",", ".", Decimal("1000.00")), ("1,234.56", ".", ",", Decimal("1234.56")),
    ("1.2e5", ",", ".", "'.' does not group its digits by three"),
    ("1,5e3", ".", ",", "',' does not group its digits by three"),
    ("12.34", ",", ".", "'.' does not group its digits by three"),
    ("1.5", ",", None, "the decimal mark is ','"), ("1.234,", ",", ".", "the decimal mark"),
    ("1,234.56", ",", ".", "the decimal mark is ','"),
])
def test_a_localized_number_is_read_exactly_or_refused(text: str, decimal: str,
                                                        thousands: str | None,
                                                        read: Decimal | str) -> None:
    """Exponents (`1.2e5` grouped by '.': 1,200,000) and marks out of place were read as
    other numbers (found by a review); each is refused, naming the field as written."""
    from framework.sources.files.values import BadValue, converter, localized

    convert = localized(converter("decimal(12,2)", [], []), decimal, thousands)
    if isinstance(read, Decimal):
        assert convert(text) == read
    else:
        with pytest.raises(BadValue, match=re.escape(f"{text!r} is not a number ({read}")):
            convert(text)


def test_parquet_values_past_the_declared_range_are_refused_by_row_saying_why(
        root: Path) -> None:
    """An int64 past a declared `integer` (the warehouses' 32 bits) went through to fail the
    whole batch at the transform; a float's NaN, or one with too many digits, was refused as
    having too many decimal places (found by a review)."""
    pq.write_table(pa.table({"order_id": ["p1", "p2", "p3", "p4"],
                             "qty": pa.array([1, 3_000_000_000, 2, 3], pa.int64()),
                             "price": [1.5, 2.0, float("nan"), 1e20]}),
                   root / "data" / "orders_1.parquet")
    ctx = context(root, files_spec("orders_pq", {"location": "data", "glob": "*.parquet",
                                                 "primary_key": ["order_id"]},
                                   [COLUMNS[0], {"name": "qty", "type": "integer"},
                                    COLUMNS[2]]))

    load_id, extraction = extract_once(ctx)

    assert raw_batch(ctx, load_id).column("order_id").to_pylist() == ["p1"]
    reasons = {r.where: r.reason for r in extraction.rejected()}
    assert reasons.keys() == {"orders_1.parquet row 2", "orders_1.parquet row 3",
                              "orders_1.parquet row 4"}
    assert reasons["orders_1.parquet row 2"].startswith("column qty: 3000000000 cannot be "
                                                        "read as integer (")
    assert reasons["orders_1.parquet row 3"] == "column price: 'nan' is not a finite number"
    assert reasons["orders_1.parquet row 4"] == ("column price: '1e+20' has more than 12 "
                                                 "digit(s)")
