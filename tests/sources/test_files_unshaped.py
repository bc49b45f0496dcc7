"""Files written by other programs, through `framework run`: an export's own header spelling, a
field longer than the csv module allows, numbers a database would not hold, nested JSON.

Each case failed or landed wrong values before: a header `Order_ID` matched no declared column
(every value reached the lake as text and the transform failed on a date format), a 200 KiB
field failed the whole run, 3000000000 in an `integer` column failed every later run at the
transform, and nested JSON numbers landed as quoted strings.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.e2e.helpers import duckdb_landing_rows, run_json


def _pipeline(project: Path, name: str, glob: str, columns: str, csv: str = "") -> None:
    for path in (project / "pipelines").glob("*.yml"):
        path.unlink()
    (project / "pipelines" / f"{name}.yml").write_text(
        f"name: {name}\nsource:\n  kind: files\n  location: data\n  glob: {glob}\n{csv}"
        f"  primary_key: [order_id]\nlake:\n  path: {name}\ncolumns:\n{columns}")
    (project / "data").mkdir(exist_ok=True)


def _touch(path: Path) -> None:
    """A later modification time, the content as it was (a copy, a checkout)."""
    os.utime(path, (path.stat().st_atime + 60, path.stat().st_mtime + 60))


def _read_day_first_dates(project: Path) -> Path:
    """The declaration fixed: the exports' dates are day first."""
    spec = project / "pipelines" / "exports.yml"
    spec.write_text(spec.read_text().replace(
        "  primary_key:", '  csv: {date_formats: ["%d/%m/%Y"]}\n  primary_key:'))
    return spec


def _shipped_later(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Pipeline `exports`: exports_1.csv (orders 1 and 2 created) read, then exports_2.csv
    (order 1 shipped) written, not read yet. Returns the data folder."""
    _pipeline(project, "exports", "exports_*.csv",
              "  - {name: order_id, type: string, nullable: false, unique: true}\n"
              "  - {name: status, type: string}\n")
    data = project / "data"
    (data / "exports_1.csv").write_text("order_id,status\n1,created\n2,created\n")
    monkeypatch.chdir(project)
    assert run_json("--all", "--no-dbt")["exports"]["status"] == "success"
    (data / "exports_2.csv").write_text("order_id,status\n1,shipped\n")
    return data


def _statuses(tmp_path: Path) -> dict[str, object]:
    return {k: r["status"] for k, r in _landed(tmp_path, "exports").items()}


def _landed(tmp_path: Path, table: str) -> dict[str, dict[str, object]]:
    rows = duckdb_landing_rows(tmp_path / "state" / "warehouse.duckdb", table)
    return {str(r["order_id"]): r for r in rows}


def test_an_exports_header_spelling_is_matched_to_the_declared_columns(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Excel-style CSV (cp1252, `;`, CRLF) with a capitalised header and day-first dates; one
    field of 200 KiB; an id past 32 bits refused alone, with its reason."""
    _pipeline(project_dir, "exports", "exports_*.csv",
              "  - {name: order_id, type: integer, nullable: false, unique: true}\n"
              "  - {name: kunde, type: string}\n"
              "  - {name: betrag, type: 'decimal(10,2)'}\n"
              "  - {name: datum, type: date}\n",
              '  csv: {delimiter: ";", encoding: cp1252, date_formats: ["%d/%m/%Y"]}\n')
    long_text = "x" * 200_000
    (project_dir / "data" / "exports_1.csv").write_bytes(
        ("Order_ID;Kunde;Betrag;Datum\r\n"
         "1;Café “Zoë”;€5,00;05/01/2024\r\n"
         "2;" + long_text + ";12.50;31/12/2024\r\n"
         "3000000000;big;1;01/01/2024\r\n"
         "1_000;underscored;1;01/01/2024\r\n").replace("€5,00", "5.00").encode("cp1252"))
    monkeypatch.chdir(project_dir)

    record = run_json("--all", "--no-dbt")["exports"]

    assert record["status"] == "success", record["error"]
    assert (record["rows_loaded"], record["rows_quarantined"]) == (2, 2)
    rows = _landed(tmp_path, "exports")
    assert rows["1"]["kunde"] == "Café “Zoë”"
    assert str(rows["1"]["datum"]) == "2024-01-05" and str(rows["2"]["datum"]) == "2024-12-31"
    assert rows["2"]["kunde"] == long_text
    rejected_dir = tmp_path / "state" / "lake" / "quarantine" / "exports" / "_rejected"
    kept = pq.read_table(next(rejected_dir.glob("*.parquet"))).to_pylist()
    assert [(r["where"], r["reason"]) for r in kept] == [
        ("exports_1.csv:4", ("column Order_ID: '3000000000' is outside the range of integer "
                             "(-2147483648 to 2147483647); declare the column bigint or "
                             "decimal(p,0)")),
        ("exports_1.csv:5", "column Order_ID: '1_000' is not an integer")]


def test_nested_json_keeps_its_numbers_and_letters(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pipeline(project_dir, "events", "events_*.jsonl",
              "  - {name: order_id, type: string, nullable: false, unique: true}\n"
              "  - {name: note, type: string}\n")
    (project_dir / "data" / "events_1.jsonl").write_text(
        json.dumps({"order_id": "o1", "user": {"name": "Zoë", "score": 1.5},
                    "items": [1, 2.25, True, None], "flag": True, "big": 12345678901234567890.5,
                    "note": False})
        + "\n", encoding="utf-8")
    monkeypatch.chdir(project_dir)

    record = run_json("--all", "--no-dbt")["events"]

    assert record["status"] == "success", record["error"]
    row = _landed(tmp_path, "events")["o1"]
    assert json.loads(str(row["user"])) == {"name": "Zoë", "score": 1.5}
    assert "Zoë" in str(row["user"])  # not \u00eb
    assert json.loads(str(row["items"])) == [1, 2.25, True, None]
    assert (row["flag"], row["note"]) == ("true", "false")  # undeclared; declared string
    assert Decimal(str(row["big"])) == Decimal("12345678901234567890.5") or \
        Decimal(str(row["big"])) == Decimal(repr(12345678901234567890.5))  # as the file wrote it


def test_a_touched_export_is_not_read_again_over_newer_rows(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A later export changes order 1; the older export is then touched (a copy, a checkout):
    read again whole, its old row went back over the newer one. A real change to it is still
    read."""
    data = _shipped_later(project_dir, monkeypatch)
    assert run_json("--all", "--no-dbt")["exports"]["rows_loaded"] == 1

    older = data / "exports_1.csv"
    _touch(older)
    touched = run_json("--all", "--no-dbt")["exports"]
    assert touched["status"] in ("success", "nothing new"), touched["error"]
    assert _statuses(tmp_path) == {"1": "shipped", "2": "created"}

    older.write_text("order_id,status\n1,created\n2,canceled\n")  # same size, new content
    assert run_json("--all", "--no-dbt")["exports"]["status"] == "success"
    assert _statuses(tmp_path) == {"1": "shipped", "2": "canceled"}


def test_an_older_export_rewritten_keeps_newer_files_rows(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An older export rewritten (re-exported with a correction) was read again alone and
    merged whole: its row of order 1 went back over the newer export's (found by a trial).
    It is read with every newer file, as when they were first read together."""
    data = _shipped_later(project_dir, monkeypatch)
    (data / "exports_3.csv").write_text("order_id,status\n4,created\n")
    assert run_json("--all", "--no-dbt")["exports"]["rows_loaded"] == 2

    (data / "exports_1.csv").write_text("order_id,status\n1,created\n2,paid\n3,created\n")
    rewritten = run_json("--all", "--no-dbt")["exports"]
    quiet = run_json("--all", "--no-dbt")["exports"]

    assert rewritten["status"] == "success", rewritten["error"]
    assert "exports: 1 row(s) of older files not loaded: a newer file of this run holds the " \
        "same key" in rewritten["warnings"]
    assert quiet["rows_extracted"] == 0
    assert _statuses(tmp_path) == {"1": "shipped", "2": "paid", "3": "created", "4": "created"}


def test_a_touched_older_export_read_beside_a_new_one_keeps_newer_files_rows(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read in one run with a new file, a touched older export was read whole, its row of
    order 1 over the newer export's (found by a review). Only the new file is read."""
    data = _shipped_later(project_dir, monkeypatch)
    assert run_json("--all", "--no-dbt")["exports"]["status"] == "success"

    _touch(data / "exports_1.csv")
    (data / "exports_3.csv").write_text("order_id,status\n4,created\n")
    touched = run_json("--all", "--no-dbt")["exports"]
    _touch(data / "exports_1.csv")
    (data / "exports_0.csv").write_text("order_id,status\n5,created\n")  # sorts first
    before = run_json("--all", "--no-dbt")["exports"]

    assert touched["rows_extracted"] == before["rows_extracted"] == 1  # the new file alone
    assert _statuses(tmp_path) == {"1": "shipped", "2": "created", "4": "created",
                                   "5": "created"}


def test_parquet_from_pandas_onboards_and_lands_its_types(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nanosecond timestamps with a zone and unsigned integers, as pandas and pyarrow write
    them: `init` declared them `string` (the lake then held two spellings of one instant), and
    a nanosecond the declared microseconds cannot hold failed the whole run, naming no file."""
    import datetime as dt

    import pyarrow as pa

    for path in (project_dir / "pipelines").glob("*.yml"):
        path.unlink()
    (project_dir / "data").mkdir()
    at = pa.array([1704445200000001234, 1707127200000000000], pa.timestamp("ns", tz="Europe/Paris"))
    pq.write_table(pa.table({"order_id": ["o1", "o2"], "at": at,
                             "n": pa.array([1, 4_000_000_000], pa.uint32()),
                             "s": pa.array([1, 2], pa.uint16())}),
                   project_dir / "data" / "events_1.parquet")
    monkeypatch.chdir(project_dir)
    from tests.e2e.helpers import cli

    assert cli("init", "--files", "data/events_*.parquet").exit_code == 0
    written = (project_dir / "pipelines" / "events.yml").read_text()
    for declared in ("{name: at, type: timestamptz", "{name: n, type: bigint",
                     "{name: s, type: integer"):
        assert declared in written, written

    record = run_json("--pipeline", "events", "--no-dbt")["events"]

    assert record["status"] == "success", record["error"]
    rows = _landed(tmp_path, "events")
    assert rows["o1"]["at"] == dt.datetime(2024, 1, 5, 9, 0, 0, 1, tzinfo=dt.UTC)
    assert (rows["o2"]["n"], rows["o2"]["s"]) == (4_000_000_000, 2)


def test_exports_read_in_one_run_keep_each_keys_newest_row(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Daily exports of changed orders, onboarded at once (a new warehouse, a fresh state): the
    key twice in one batch quarantined the whole batch and blocked the pipeline, though the
    same files read one run at a time loaded."""
    _pipeline(project_dir, "exports", "exports_*.csv",
              "  - {name: order_id, type: string, nullable: false, unique: true}\n"
              "  - {name: status, type: string}\n")
    data = project_dir / "data"
    (data / "exports_2024-01-01.csv").write_text("order_id,status\n1,created\n2,created\n")
    (data / "exports_2024-01-02.csv").write_text("order_id,status\n1,shipped\n3,created\n")
    (data / "exports_2024-01-03.csv").write_text("order_id,status\n1,delivered\n2,canceled\n")
    monkeypatch.chdir(project_dir)

    record = run_json("--all", "--no-dbt")["exports"]

    assert record["status"] == "success", record["error"]
    assert (record["rows_loaded"], record["rows_quarantined"]) == (3, 0)
    assert {k: r["status"] for k, r in _landed(tmp_path, "exports").items()} == \
        {"1": "delivered", "2": "canceled", "3": "created"}
    assert "exports: 3 row(s) of older files not loaded: a newer file of this run holds the same key" \
        in record["warnings"]


def test_refused_records_come_in_once_the_declaration_is_fixed(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file was recorded as read with some of its records refused: fixing the declaration (a
    date format here) never brought them in short of a full refresh."""
    _pipeline(project_dir, "exports", "exports_*.csv",
              "  - {name: order_id, type: string, nullable: false, unique: true}\n"
              "  - {name: sold_on, type: date}\n")
    (project_dir / "data" / "exports_1.csv").write_text(
        "order_id,sold_on\n1,2024-01-05\n2,05/01/2024\n")
    monkeypatch.chdir(project_dir)
    first = run_json("--all", "--no-dbt")["exports"]
    assert (first["rows_loaded"], first["rows_quarantined"]) == (1, 1)
    assert run_json("--all", "--no-dbt")["exports"]["rows_extracted"] == 0  # nothing changed

    _read_day_first_dates(project_dir)
    fixed = run_json("--all", "--no-dbt")["exports"]

    assert (fixed["rows_loaded"], fixed["rows_quarantined"]) == (2, 0), fixed
    assert {k: str(r["sold_on"]) for k, r in _landed(tmp_path, "exports").items()} == \
        {"1": "2024-01-05", "2": "2024-01-05"}
    assert run_json("--all", "--no-dbt")["exports"]["rows_extracted"] == 0


def test_a_file_read_again_for_its_refused_records_does_not_undo_newer_files(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pipeline(project_dir, "exports", "exports_*.csv",
              "  - {name: order_id, type: string, nullable: false, unique: true}\n"
              "  - {name: status, type: string}\n  - {name: sold_on, type: date}\n")
    data = project_dir / "data"
    (data / "exports_1.csv").write_text("order_id,status,sold_on\n1,created,2024-01-05\n"
                                        "2,created,06/01/2024\n")
    monkeypatch.chdir(project_dir)
    assert run_json("--all", "--no-dbt")["exports"]["rows_quarantined"] == 1
    (data / "exports_2.csv").write_text("order_id,status,sold_on\n1,shipped,2024-01-05\n")
    assert run_json("--all", "--no-dbt")["exports"]["rows_loaded"] == 1

    _read_day_first_dates(project_dir)
    assert run_json("--all", "--no-dbt")["exports"]["status"] == "success"

    assert _statuses(tmp_path) == {"1": "shipped", "2": "created"}


def test_touched_files_with_refused_records_stay_behind_newer_files(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A touched file with refused records was read again alone, its rows over a newer file's;
    and in a run reading files again for a fixed declaration, a touched newer file was skipped
    by its hash, so the older file's row won again. A blank line (which no declaration
    changes) does not send its file back through a run."""
    _pipeline(project_dir, "exports", "exports_*.csv",
              "  - {name: order_id, type: string, nullable: false, unique: true}\n"
              "  - {name: status, type: string}\n  - {name: sold_on, type: date}\n")
    data = project_dir / "data"
    older, newer = data / "exports_1.csv", data / "exports_2.csv"
    older.write_text("order_id,status,sold_on\n1,created,2024-01-05\n2,created,06/01/2024\n")
    newer.write_text("order_id,status,sold_on\n1,shipped,2024-01-05\n\n")
    monkeypatch.chdir(project_dir)
    assert run_json("--all", "--no-dbt")["exports"]["rows_loaded"] == 1  # read together

    _touch(older)
    assert run_json("--all", "--no-dbt")["exports"]["rows_extracted"] == 0
    assert _landed(tmp_path, "exports")["1"]["status"] == "shipped"

    _touch(newer)
    spec = _read_day_first_dates(project_dir)
    assert run_json("--all", "--no-dbt")["exports"]["status"] == "success"
    assert _statuses(tmp_path) == {"1": "shipped", "2": "created"}

    spec.write_text(spec.read_text().replace('date_formats: ["%d/%m/%Y"]',
                                             'date_formats: ["%d/%m/%Y"], null_markers: ["", "-"]'))
    assert run_json("--all", "--no-dbt")["exports"]["rows_extracted"] == 0


def test_init_declares_an_exports_capitalised_columns_by_their_lake_names(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An Excel export's `Export_ID;Kunde;Betrag` header: init wrote `{name: Kunde, ...}`,
    which its own validation then refused for every column, and found no key in `Export_ID`
    (found by a trial)."""
    from tests.e2e.helpers import cli

    for path in (project_dir / "pipelines").glob("*.yml"):
        path.unlink()
    (project_dir / "data").mkdir()
    (project_dir / "data" / "export_1.csv").write_bytes(
        "\ufeffExport_ID;Kunde;Betrag\n1;Müller;12.50\n2;Schmidt;3.00\n".encode())
    monkeypatch.chdir(project_dir)

    written = cli("init", "--files", "data/export_*.csv")

    assert written.exit_code == 0, written.output
    assert "to fix" not in written.output, written.output
    text = (project_dir / "pipelines" / "export.yml").read_text()
    assert "{name: kunde, type: string" in text and "{name: betrag, type: " in text, text
    assert cli("validate").exit_code == 0
    record = run_json("--pipeline", "export", "--no-dbt")["export"]
    assert record["status"] == "success", record["error"]
    rows = duckdb_landing_rows(tmp_path / "state" / "warehouse.duckdb", "export")
    assert "primary_key: [Export_ID]" in text, text
    assert sorted((r["export_id"], r["kunde"]) for r in rows) == [(1, "Müller"), (2, "Schmidt")]


def test_a_pandas_export_with_its_index_column_onboards_and_runs(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`DataFrame.to_csv` writes its index under an empty header field: init declared it
    `column0` (DuckDB's name), and the run then refused the file's header (found by a trial)."""
    import pandas as pd

    from tests.e2e.helpers import cli

    for path in (project_dir / "pipelines").glob("*.yml"):
        path.unlink()
    (project_dir / "data").mkdir()
    pd.DataFrame({"order_id": ["o1", "o2"], "amount": [1.5, 2.25]}).to_csv(
        project_dir / "data" / "orders_1.csv")
    monkeypatch.chdir(project_dir)

    assert cli("init", "--files", "data/orders_*.csv").exit_code == 0
    assert "{name: column0, type: " in (project_dir / "pipelines" / "orders.yml").read_text()
    record = run_json("--pipeline", "orders", "--no-dbt")["orders"]

    assert record["status"] == "success", record["error"]
    rows = _landed(tmp_path, "orders")
    assert {k: (r["column0"], r["amount"]) for k, r in rows.items()} == {
        "o1": (0, 1.5), "o2": (1, 2.25)}


def test_numbers_with_a_decimal_comma_and_thousands_dots_land_exactly(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A European export writes 1.234,56: there was no way to read it, so every such value was
    refused (or a column declared string). With `decimal: ","` and `thousands: "."` it lands
    exactly; a field written the other way (1,234.56) or grouped wrongly is refused, never
    read as another number."""
    import csv

    _pipeline(project_dir, "exports", "exports_*.csv",
              "  - {name: order_id, type: string, nullable: false, unique: true}\n"
              "  - {name: price, type: 'decimal(12,2)'}\n  - {name: units, type: integer}\n"
              "  - {name: weight, type: double}\n",
              csv='  csv: {delimiter: ";", decimal: ",", thousands: "."}\n')
    with open(project_dir / "data" / "exports_1.csv", "w", newline="",
              encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerows([["order_id", "price", "units", "weight"],
                          ["1", "1.234,56", "1.200", "0,5"], ["2", "-7,1", "3", "12"],
                          ["3", "1,234.56", "1", "1"], ["4", "12.34", "1", "1"],
                          ["5", "9,999", "1", "1"]])
    monkeypatch.chdir(project_dir)

    record = run_json("--all", "--no-dbt")["exports"]

    assert record["status"] == "success", record["error"]
    assert (record["rows_loaded"], record["rows_quarantined"]) == (2, 3)
    landed = _landed(tmp_path, "exports")
    assert {k: (r["price"], r["units"], r["weight"]) for k, r in landed.items()} == {
        "1": (Decimal("1234.56"), 1200, 0.5), "2": (Decimal("-7.10"), 3, 12.0)}
    rejected = tmp_path / "state" / "lake" / "quarantine" / "exports" / "_rejected"
    reasons = sorted(r["reason"] for r in pq.read_table(next(rejected.glob("*.parquet"))
                                                         ).to_pylist())
    assert reasons == [
        "column price: '1,234.56' is not a number (the decimal mark is ',')",
        "column price: '12.34' is not a number ('.' does not group its digits by three)",
        "column price: '9,999' has more than 2 decimal place(s)"]


def test_init_reads_a_pandas_export_with_a_decimal_comma(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`to_csv(sep=";", decimal=",")`, as European tools write: DuckDB's sniffer reads 1234,56
    as text, so init declared the amounts `string`. It now declares a decimal and
    `csv.decimal`, and the run lands the amounts exactly."""
    import pandas as pd

    from tests.e2e.helpers import cli

    for path in (project_dir / "pipelines").glob("*.yml"):
        path.unlink()
    (project_dir / "data").mkdir()
    pd.DataFrame({"order_id": ["o1", "o2", "o3"], "amount": [1234.56, -7.1, 0.5],
                  "note": ["a, b", "c", "d"]}).to_csv(
        project_dir / "data" / "orders_1.csv", sep=";", decimal=",", index=False)
    monkeypatch.chdir(project_dir)

    assert cli("init", "--files", "data/orders_*.csv").exit_code == 0
    written = (project_dir / "pipelines" / "orders.yml").read_text()
    record = run_json("--pipeline", "orders", "--no-dbt")["orders"]

    assert '    decimal: ","\n' in written and '{name: amount, type: "decimal(18,2)"}' in written
    assert "{name: note, type: string}" in written
    assert record["status"] == "success", record["error"]
    assert {k: r["amount"] for k, r in _landed(tmp_path, "orders").items()} == {
        "o1": Decimal("1234.56"), "o2": Decimal("-7.10"), "o3": Decimal("0.50")}


def test_init_sets_no_decimal_comma_beside_a_column_with_decimal_points(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The marks hold for the whole file: set for `amount` (1.234,56), they turned `weight`
    (2.500, which DuckDB read as 2.5) into 2500 (found by a review). Beside such a column
    init leaves both as DuckDB read them."""
    from tests.e2e.helpers import cli

    for path in (project_dir / "pipelines").glob("*.yml"):
        path.unlink()
    (project_dir / "data").mkdir()
    (project_dir / "data" / "mixed_1.csv").write_text(
        "mixed_id;amount;weight\n1;1.234,56;2.500\n2;7,10;1.250\n")
    monkeypatch.chdir(project_dir)

    assert cli("init", "--files", "data/mixed_*.csv").exit_code == 0
    written = (project_dir / "pipelines" / "mixed.yml").read_text()

    assert "decimal:" not in written and "thousands:" not in written
    assert "{name: amount, type: string}" in written
    assert "{name: weight, type: double}" in written


def test_init_finds_the_key_of_exports_that_repeat_updated_keys_and_the_run_keeps_one_row(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a trial on pandas exports: one written on Windows (CRLF) beside one with LF
    failed init's sample ('Error when sniffing file'); `Bestell_ID` of `bestellungen_*.csv`
    was no key by name, nor unique, since the later export repeats the order it updates. The
    key spelled as the file spells it then matched no column in the run's newest-row
    filter, and the batch holding both versions was quarantined as not unique."""
    import pandas as pd

    from tests.e2e.helpers import cli

    for path in (project_dir / "pipelines").glob("*.yml"):
        path.unlink()
    data = project_dir / "data"
    data.mkdir()
    pd.DataFrame({"Bestell_ID": ["B1", "B2"], "Status": ["offen", "bezahlt"]}).to_csv(
        data / "bestellungen_2024-01.csv", sep=";", index=False, lineterminator="\r\n")
    pd.DataFrame({"Bestell_ID": ["B1", "B3"], "Status": ["versendet", "offen"]}).to_csv(
        data / "bestellungen_2024-02.csv", sep=";", index=False)
    monkeypatch.chdir(project_dir)

    written = cli("init", "--files", "data/bestellungen_*.csv")
    record = run_json("--pipeline", "bestellungen", "--no-dbt")["bestellungen"]

    assert written.exit_code == 0, written.output
    assert "  primary_key: [Bestell_ID]\n" in \
        (project_dir / "pipelines" / "bestellungen.yml").read_text()
    assert record["status"] == "success", record["error"]
    rows = duckdb_landing_rows(tmp_path / "state" / "warehouse.duckdb", "bestellungen")
    assert {r["bestell_id"]: r["status"] for r in rows} == {
        "B1": "versendet", "B2": "bezahlt", "B3": "offen"}
