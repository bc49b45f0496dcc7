"""Storage that fails under the framework (found by a disk-faults trial): an append table and a
lake that lost or rolled back its raw batches (the run refuses, naming the fix, instead of
appending rows the warehouse holds already), a damaged raw file, a damaged or unwritable run
log, a dbt target folder that cannot be written.

The source is written with the sqlite3 module, not the project's generator: a ledger whose
rows share their `created_at` (a bulk insert), the shape that makes the boundary matter.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest

from tests.e2e.helpers import cli, run_json

LEDGER = ("name: ledger\nsource:\n  connection: shop\n  table: ledger\n  primary_key: [id]\n"
          "  incremental: {cursor: created_at}\nlake:\n  path: ledger\n"
          "warehouse:\n  write_disposition: append\n")


def _ledger(tmp_path: Path, project_dir: Path, monkeypatch: object) -> Path:
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount TEXT, created_at TEXT)")
        con.executemany("INSERT INTO ledger VALUES (?, ?, '2024-01-01 10:00:00')",
                        [(n, f"{n}.50") for n in range(1, 6)])
    monkeypatch.setenv("SHOP_DB_URL", f"sqlite:///{path}")  # type: ignore[attr-defined]
    (project_dir / "pipelines" / "ledger.yml").write_text(LEDGER)
    return path


def _add(path: Path, *rows: tuple[int, str]) -> None:
    with sqlite3.connect(path) as con:
        con.executemany("INSERT INTO ledger VALUES (?, ?, ?)", rows)


def _landed(tmp_path: Path) -> list[tuple[int, int]]:
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT id, count(*) FROM landing.ledger GROUP BY id ORDER BY id"
                           ).fetchall()
    finally:
        con.close()


def test_raw_batches_gone_from_the_lake_stop_an_append_run_before_it_doubles_rows(
        tmp_path: Path, project_dir: Path, monkeypatch: object) -> None:
    """The rows at the cursor's last value are read again and dropped when the lake holds them;
    with an older batch's raw files deleted (space freed by hand), they were appended again."""
    source = _ledger(tmp_path, project_dir, monkeypatch)
    first = _lose_the_first_batch(tmp_path, source)
    raw = tmp_path / "state" / "lake" / "raw" / "ledger"

    refused = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]
    kept = _landed(tmp_path)
    again = run_json("--pipeline", "ledger", "--no-dbt", "--full-refresh")["ledger"]

    assert refused["status"] == "failed"
    assert refused["error"].startswith(
        f"ledger: extract: the lake ({raw}/) no longer holds batch(es) {first} ")
    assert refused["error"].endswith(
        "with the rows at cursor 'created_at''s last value '2024-01-01 10:00:00', which this run "
        "reads again: an append table would get them twice. Restore the lake's files, or run "
        "with --full-refresh (the table is loaded again whole)")
    assert kept == [(n, 1) for n in range(1, 7)]
    assert again["status"] == "success", again["error"]
    assert _landed(tmp_path) == [(n, 1) for n in range(1, 8)]


def _lose_the_first_batch(tmp_path: Path, source: Path) -> str:
    """Two runs whose batches both hold rows at the boundary (a row arrives late at the same
    created_at); then the first batch's raw files go, and a new row waits. The lost batch."""
    first = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]
    _add(source, (6, "6.50", "2024-01-01 10:00:00"))  # late, at the same created_at
    assert run_json("--pipeline", "ledger", "--no-dbt")["ledger"]["rows_loaded"] == 1
    for file in (tmp_path / "state" / "lake" / "raw" / "ledger").glob(
            f"{first['load_id']}.*.parquet"):
        file.unlink()
    _add(source, (7, "7.50", "2024-01-02 10:00:00"))
    return str(first["load_id"])


def test_a_merge_run_reads_rows_whose_raw_batches_are_gone_again_and_merges_them(
        tmp_path: Path, project_dir: Path, monkeypatch: object) -> None:
    source = _ledger(tmp_path, project_dir, monkeypatch)
    spec = project_dir / "pipelines" / "ledger.yml"
    spec.write_text(spec.read_text().replace("append", "merge"))
    _lose_the_first_batch(tmp_path, source)

    record = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]

    assert record["status"] == "success", record["error"]
    assert _landed(tmp_path) == [(n, 1) for n in range(1, 8)]


def test_a_lake_older_than_the_warehouse_stops_an_append_run_before_it_doubles_rows(
        tmp_path: Path, project_dir: Path, monkeypatch: object) -> None:
    """A lake restored from a copy, on a worker without its state folder: dlt took the older
    cursor from the lake, and every row loaded since the copy was appended again."""
    source = _ledger(tmp_path, project_dir, monkeypatch)
    assert run_json("--pipeline", "ledger", "--no-dbt")["ledger"]["status"] == "success"
    lake = tmp_path / "state" / "lake"
    shutil.copytree(lake, tmp_path / "lake-copy")
    _add(source, *((n, f"{n}.50", "2024-01-02 10:00:00") for n in range(6, 16)))
    second = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]
    shutil.rmtree(lake)
    shutil.copytree(tmp_path / "lake-copy", lake)
    shutil.rmtree(tmp_path / "state" / "targets" / "local" / "dlt")  # no state folder: the lake's
    _add(source, (16, "16.50", "2024-01-03 10:00:00"))

    refused = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]

    assert second["status"] == "success", second["error"]
    assert refused["status"] == "failed"
    assert refused["error"] == (
        f"ledger: the warehouse loaded batch {second['load_id']}, which the lake "
        f"({lake}/raw/ledger) does not hold: the lake is older than the warehouse, and the rows "
        "loaded since would be read and appended again. Restore the lake's files, or run with "
        "--full-refresh (the table is loaded again whole); nothing was extracted")
    assert refused["rows_extracted"] == 0
    assert _landed(tmp_path) == [(n, 1) for n in range(1, 16)]


def _killed_after_the_lake_write(project_dir: Path) -> None:
    """`run --pipeline ledger` killed once its batch is in the lake, before any transform."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "FRAMEWORK_KILL_AT": "after_lake_write"}
    done = subprocess.run([sys.executable, "-m", "framework.cli", "run", "--pipeline", "ledger",
                           "--no-dbt"], env=env, check=False, capture_output=True)
    assert done.returncode == -9, done.stderr


@pytest.mark.parametrize("incremental", [True, False], ids=["append-cursor", "merge-whole"])
def test_a_damaged_raw_file_is_named_with_the_way_out_not_quarantined_as_bad_data(
        tmp_path: Path, project_dir: Path, monkeypatch: object, incremental: bool) -> None:
    """A pending batch whose raw file was overwritten in the middle was quarantined as bad
    data; `release` then skipped it and its rows were lost for good (the cursor was past them).
    One cut short failed every run with an 'unexpected' ArrowInvalid naming no file. With a
    cursor the extract meets the file first (the rows at the boundary are compared with it);
    a table read whole meets it in the transform."""
    source = _ledger(tmp_path, project_dir, monkeypatch)
    if not incremental:
        (project_dir / "pipelines" / "ledger.yml").write_text(
            LEDGER.replace("  incremental: {cursor: created_at}\n", "").replace("append", "merge"))
    with sqlite3.connect(source) as con:  # enough rows for a file with real pages to damage
        con.executemany("INSERT INTO ledger VALUES (?, ?, '2024-01-02 10:00:00')",
                        [(n, f"{n}.{n % 97:02d} {'x' * (n % 50)}") for n in range(6, 20_000)])
    _killed_after_the_lake_write(project_dir)
    raw = tmp_path / "state" / "lake" / "raw" / "ledger"
    [file] = raw.glob("*.parquet")
    load_id = ".".join(file.name.split(".")[:2])
    data = bytearray(file.read_bytes())
    data[len(data) // 4: len(data) // 2] = bytes(len(data) // 2 - len(data) // 4)
    file.write_bytes(bytes(data))

    overwritten = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]
    footer = bytearray(data)
    footer[-300:-8] = bytes(292)  # the footer's metadata, its length and magic kept
    file.write_bytes(bytes(footer))
    footer_gone = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]
    file.write_bytes(bytes(data[: len(data) // 2]))
    cut_short = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]
    for part in raw.glob(f"{load_id}.*"):
        part.rename(tmp_path / part.name)
    again = run_json("--pipeline", "ledger", "--no-dbt", "--full-refresh")["ledger"]

    way_out = (f"the lake's copy is damaged. Move the batch's files aside ({raw}/{load_id}.*) "
               "and run with --full-refresh, which reads the source whole")
    stage = "extract" if incremental else "transform"
    for failed in (overwritten, footer_gone, cut_short):
        assert failed["status"] == "failed" and failed["rows_quarantined"] == 0, failed
        assert failed["error"].startswith(f"ledger: {stage}: batch {load_id}: a raw file of it "
                                          "cannot be read ("), failed["error"]
        assert failed["error"].endswith(way_out)
    assert again["status"] == "success", again["error"]
    assert _landed(tmp_path) == [(n, 1) for n in range(1, 20_000)]


def test_a_damaged_or_unopenable_run_log_costs_a_warning_not_the_run(
        tmp_path: Path, project_dir: Path, monkeypatch: object,
        caplog: pytest.LogCaptureFixture) -> None:
    """The run log is a cache of the warehouse's records. Damaged, it failed every command
    ('database disk image is malformed', no path); unwritable (a full or read-only state
    folder), its first write aborted the whole `run`, hid the stage's own outcome and left the
    other pipelines unrun. The damage here shows only once a table is read, not at open."""
    _ledger(tmp_path, project_dir, monkeypatch)
    assert run_json("--pipeline", "ledger", "--no-dbt")["ledger"]["status"] == "success"
    log = tmp_path / "state" / "runs.sqlite"
    data = log.read_bytes()  # every page but the first zeroed: it opens, then reads fail
    log.write_bytes(data[:4096] + bytes(len(data) - 4096))
    for extra in ("runs.sqlite-wal", "runs.sqlite-shm"):
        (tmp_path / "state" / extra).unlink(missing_ok=True)

    after_damage = cli("run", "--pipeline", "ledger", "--no-dbt")
    history = cli("history")
    aside = list((tmp_path / "state").glob("runs.sqlite.damaged-*"))

    assert after_damage.exit_code == 0, after_damage.output
    assert f"run log {log} was damaged (" in caplog.text
    assert len(aside) == 1 and "ledger" in history.output

    for path in (tmp_path / "state").glob("runs.sqlite*"):
        path.unlink()
    log.mkdir()  # SQLite cannot open it: as a log it cannot write
    _add(_source(tmp_path), (6, "6.50", "2024-01-02 10:00:00"))
    unwritable = cli("run", "--pipeline", "ledger", "--no-dbt")

    assert unwritable.exit_code == 0, unwritable.output
    assert caplog.text.count(f"run records not kept in {log} (") == 1
    assert _landed(tmp_path) == [(n, 1) for n in range(1, 7)]


def _source(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


def test_a_dbt_target_folder_that_cannot_be_written_leaves_the_models_owed(
        tmp_path: Path, project_dir: Path) -> None:
    """dbt's results file could not be removed (a read-only or full state folder): the run
    ended in a bare `PermissionError` after its loads, with no results table and no word of
    dbt in the records. Now the build fails as a build does, naming the folder, and the next
    run builds the models it left owed."""
    from framework.demo.shop import create_shop

    create_shop(f"sqlite:///{tmp_path / 'state' / 'shop.db'}", scale=0.002, seed=5)
    results = tmp_path / "state" / "dbt" / "local" / "target" / "run_results.json"
    results.mkdir(parents=True)  # not a file: it cannot be removed as one

    first = run_json("--pipeline", "customers")["customers"]
    results.rmdir()
    second = run_json("--pipeline", "customers")["customers"]

    assert (first["stages_status"], first["models_status"]) == ("loaded", "failed")
    assert first["rows_loaded"] > 0
    assert first["error"] == (f"dbt: build: dbt's target folder {results.parent} cannot be "
                              "written (Is a directory): make it writable, or free space in the "
                              "state folder")
    assert second["dbt"]["status"] == "success", second["dbt"]  # the owed models built now


@pytest.mark.parametrize("disposition", ["append", "merge"])
def test_a_damaged_cursor_state_in_the_lake_is_set_aside_or_refused_for_append(
        tmp_path: Path, project_dir: Path, monkeypatch: object, disposition: str) -> None:
    """dlt's newest state file in the lake cut short (a full lake) failed every run with a bare
    JSONDecodeError; deleting it by hand made dlt restore the state before, and an append
    table got the last batch's rows twice."""
    source = _ledger(tmp_path, project_dir, monkeypatch)
    if disposition == "merge":
        spec = project_dir / "pipelines" / "ledger.yml"
        spec.write_text(spec.read_text().replace("append", "merge"))
    assert run_json("--pipeline", "ledger", "--no-dbt")["ledger"]["status"] == "success"
    _add(source, (6, "6.50", "2024-01-02 10:00:00"), (7, "7.50", "2024-01-02 10:00:00"))
    assert run_json("--pipeline", "ledger", "--no-dbt")["ledger"]["rows_loaded"] == 2
    states = sorted((tmp_path / "state" / "lake" / "raw" / "_dlt_pipeline_state").glob(
        "ledger__*.jsonl"))
    newest = states[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    shutil.rmtree(tmp_path / "state" / "targets" / "local" / "dlt")  # a worker without it

    after = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]

    if disposition == "append":
        assert after["status"] == "failed"
        assert after["error"] == (
            f"ledger: extract: dlt's cursor state in the lake ({newest}) is damaged, and the one "
            "before it would read rows again that an append table holds already: run with "
            "--full-refresh (the table is loaded again whole)")
        assert _landed(tmp_path) == [(n, 1) for n in range(1, 8)]
        after = run_json("--pipeline", "ledger", "--no-dbt", "--full-refresh")["ledger"]
    else:
        assert any(w.startswith(f"ledger: removed dlt's damaged cursor state {newest}")
                   for w in after["warnings"]), after["warnings"]
    assert after["status"] == "success", after["error"]
    assert _landed(tmp_path) == [(n, 1) for n in range(1, 8)]


def test_a_damaged_local_dlt_state_is_set_aside_and_the_lakes_taken(
        tmp_path: Path, project_dir: Path, monkeypatch: object) -> None:
    """This machine's dlt state.json cut short failed every run ('JSONDecodeError ...
    (unexpected)'), naming no file."""
    source = _ledger(tmp_path, project_dir, monkeypatch)
    assert run_json("--pipeline", "ledger", "--no-dbt")["ledger"]["status"] == "success"
    local = tmp_path / "state" / "targets" / "local" / "dlt" / "ledger" / "state.json"
    local.write_bytes(local.read_bytes()[:10])
    _add(source, (6, "6.50", "2024-01-02 10:00:00"))

    after = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]

    assert after["status"] == "success", after["error"]
    assert any(w.startswith(f"ledger: dlt's state on this machine ({local}) was damaged")
               for w in after["warnings"]), after["warnings"]
    assert _landed(tmp_path) == [(n, 1) for n in range(1, 7)]


def test_a_write_the_disk_refuses_names_where_and_the_next_run_lands_everything(
        tmp_path: Path, project_dir: Path, monkeypatch: object) -> None:
    """'OSError: [Errno 28] No space left on device' named no path (dlt writes to the lake and
    to its own folder). Here the process may write no file past 64 KB (RLIMIT_FSIZE: EFBIG,
    as a full disk gives ENOSPC); then it may, and the next run lands every row once."""
    import json
    import os
    import resource
    import signal
    import subprocess
    import sys

    source = _ledger(tmp_path, project_dir, monkeypatch)
    with sqlite3.connect(source) as con:
        con.executemany("INSERT INTO ledger VALUES (?, ?, '2024-01-02 10:00:00')",
                        [(n, f"{n}.{'y' * (n % 90)}") for n in range(6, 30_000)])

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (65_536, 65_536))

    done = subprocess.run([sys.executable, "-m", "framework.cli", "run", "--pipeline", "ledger",
                           "--no-dbt", "--json"], env=dict(os.environ), preexec_fn=small_files,
                          check=False, capture_output=True, text=True)
    [refused] = json.loads(done.stdout[done.stdout.index("["):])
    after = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]

    state = tmp_path / "state"
    assert done.returncode == 1 and refused["status"] == "failed"
    assert refused["error"] == (
        f"ledger: extract: File too large writing the lake ({state / 'lake'}) or dlt's folder "
        f"({state / 'targets' / 'local' / 'dlt'}): free space there or make it writable, then "
        "run again")
    assert after["status"] == "success", after["error"]
    assert _landed(tmp_path) == [(n, 1) for n in range(1, 30_000)]


def _damage_a_page_header(file: Path) -> None:
    """Overwrite the header of the file's first data page: DuckDB then fails with
    'TProtocolException: Invalid data', naming no file."""
    import pyarrow.parquet as pq

    column = pq.ParquetFile(file).metadata.row_group(0).column(1)
    offset = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(file.read_bytes())
    data[offset: offset + 16] = bytes(16)
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("incremental", [True, False], ids=["append-cursor", "merge-whole"])
def test_a_damaged_page_duckdb_names_no_file_for_is_told_as_a_damaged_file(
        tmp_path: Path, project_dir: Path, monkeypatch: object, incremental: bool) -> None:
    """A page header overwritten: DuckDB's error names no file, so the extract (reading the
    boundary's rows) failed as an unexpected error and the transform as a mistake in its SQL.
    The batch's files are read again to find the damaged one, and the way out is named."""
    source = _ledger(tmp_path, project_dir, monkeypatch)
    if not incremental:
        (project_dir / "pipelines" / "ledger.yml").write_text(
            LEDGER.replace("  incremental: {cursor: created_at}\n", "").replace("append", "merge"))
    _add(source, *[(n, f"{n}.50", "2024-01-02 10:00:00") for n in range(6, 2_000)])
    _killed_after_the_lake_write(project_dir)
    raw = tmp_path / "state" / "lake" / "raw" / "ledger"
    [file] = raw.glob("*.parquet")
    load_id = ".".join(file.name.split(".")[:2])
    _damage_a_page_header(file)

    failed = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]

    stage = "extract" if incremental else "transform"
    assert failed["status"] == "failed" and failed["rows_quarantined"] == 0, failed
    assert failed["error"].startswith(f"ledger: {stage}: batch {load_id}: a raw file of it "
                                      "cannot be read ("), failed["error"]
    assert "the lake's copy is damaged" in failed["error"]


def test_a_value_reading_corrupted_is_the_batchs_data_not_a_damaged_file(
        tmp_path: Path, project_dir: Path, monkeypatch: object) -> None:
    """A cast failing on the text 'Corrupted' was taken for a damaged raw file (the reader's
    words were matched anywhere in the message): the batch is quarantined, as bad data is."""
    source = _ledger(tmp_path, project_dir, monkeypatch)
    spec = project_dir / "pipelines" / "ledger.yml"
    spec.write_text(spec.read_text() + "transform:\n  sql: SELECT id, CAST(amount AS DECIMAL(10, "
                                       "2)) AS amount, created_at FROM batch\n")
    _add(source, (6, "Corrupted", "2024-01-01 10:00:00"))

    record = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]

    assert record["status"] == "quarantined", record
    assert "damaged" not in record["error"] and "Corrupted" in record["error"]


def test_raw_files_pruned_while_the_cursor_state_is_kept_are_named_missing_not_behind(
        tmp_path: Path, project_dir: Path, monkeypatch: object) -> None:
    """Raw files removed by hand (or a lifecycle rule on raw/<path>/), the lake's cursor state
    kept: the lake is not older than the warehouse; what stops the append run is the missing
    copies of the boundary's rows, named."""
    source = _ledger(tmp_path, project_dir, monkeypatch)
    assert run_json("--pipeline", "ledger", "--no-dbt")["ledger"]["status"] == "success"
    for file in (tmp_path / "state" / "lake" / "raw" / "ledger").glob("*.parquet"):
        file.unlink()
    _add(source, (6, "6.50", "2024-01-02 10:00:00"))

    after = run_json("--pipeline", "ledger", "--no-dbt")["ledger"]

    # the boundary's rows are read again with no lake copy to tell them by: refused, not the
    # "lake is older" stop
    assert after["status"] == "failed"
    assert "no longer holds batch(es)" in after["error"], after["error"]
    assert _landed(tmp_path) == [(n, 1) for n in range(1, 6)]
