"""The Arrow reader for PostgreSQL (framework/sources/sql/readers.py) against dlt's pyarrow backend."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from framework.sources.sql.readers import ARROW_STREAM, ArrowStreamLoader, reader_for
from tests.conftest import service_unavailable

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
COLUMNS = ("id, small, big, name, amount, ratio, score, flag, day, at, at_tz, ref, doc, state, "
           "note, code, updated_at")
TABLE = """
CREATE TYPE item_state AS ENUM ('new', 'sold');
CREATE TABLE items (
    id integer PRIMARY KEY, small smallint, big bigint, name varchar(32), amount numeric(12,2),
    ratio double precision, score real, flag boolean, day date, at timestamp, at_tz timestamptz,
    ref uuid, doc jsonb, state item_state, note text, code char(3),
    updated_at timestamp NOT NULL)
"""
FIRST = f"""
INSERT INTO items ({COLUMNS}) VALUES
 (1, 1, 9007199254740993, 'a', 1234567890.12, 0.5, 0.1, true, '2024-02-29',
  '2024-01-01 00:00:00.000001', '2024-01-01 00:00:00.000001+02',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{"k": [1, "é"]}}', 'new', 'ünï', 'ab',
  '2024-03-01 10:00:00.000001'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  '2024-03-01 10:00:00.000002'),
 (3, -32768, -1, '', -0.01, -1e300, 'Infinity', false, '1970-01-01',
  '1999-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999+00',
  '00000000-0000-0000-0000-000000000000', '[]', 'sold', '', 'xyz',
  '2024-03-01 10:00:00.000003'),
 (4, 32767, 0, 'd', 0.00, 0, '-Infinity', NULL, '2100-01-01',
  '2024-06-30 12:00:00.5', NULL, NULL, 'null', NULL, 'x', NULL, '2024-03-01 10:00:00.000009'),
 (5, 0, 1, 'e', 9999999999.99, NULL, 3.4e38, true, NULL,
  NULL, '2024-06-30 12:00:00.123456-07', NULL, '{{}}', 'new', NULL, NULL,
  '2024-03-01 10:00:00.000009')
"""
# After the first read: two rows past the cursor, and a changed row carrying exactly the last
# run's maximum cursor value (row 4 and 5 at the boundary are unchanged and must not come again).
SECOND = f"""
INSERT INTO items ({COLUMNS}) VALUES
 (6, 6, 6, 'f', 6.06, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  '2024-03-02 00:00:00.000001'),
 (7, NULL, NULL, 'g', NULL, NULL, NULL, NULL, NULL, '2024-03-02 00:00:00.5', NULL, NULL, NULL,
  NULL, NULL, NULL, '2024-03-02 00:00:00.000002');
UPDATE items SET name = 'changed at the boundary', amount = 0.01 WHERE id = 2;
UPDATE items SET updated_at = '2024-03-01 10:00:00.000009' WHERE id = 2
"""


@pytest.fixture
def database() -> Iterator[str]:
    name = f"readers_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        service_unavailable(f"PostgreSQL at {SERVER}: {str(exc).splitlines()[0]}")
    url = f"{SERVER}/{name}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in TABLE.split(";"):
            conn.execute(sa.text(statement))
        conn.execute(sa.text(FIRST))
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def extract(url: str, backend: str, root: Path) -> pa.Table:
    """One dlt load of `items` the way the framework configures it; the load's rows by id."""
    import dlt
    from dlt.sources.sql_database import sql_table

    columns = tuple(c.strip() for c in COLUMNS.split(","))
    pipeline = dlt.pipeline(pipeline_name=f"readers_{backend.replace('-', '_')}",
                            pipelines_dir=str(root / "dlt"), dataset_name="raw",
                            destination=dlt.destinations.filesystem(bucket_url=str(root / "lake")))
    resource = sql_table(
        credentials=url, table="items", backend=backend, chunk_size=2,  # several batches
        incremental=dlt.sources.incremental("updated_at", primary_key=columns))
    info = pipeline.run(resource, loader_file_format="parquet")
    loads = info.loads_ids
    folder = root / "lake" / "raw" / "items"
    files = sorted(folder.glob(f"{loads[-1]}.*.parquet")) if loads else []
    if not files:
        return pa.table({})
    return pa.concat_tables(pq.read_table(f) for f in files).sort_by("id")


def same_rows(got: pa.Table, expected: pa.Table) -> bool:
    """Equal tables; JSON compared as JSON: the pyarrow backend re-serialises it compactly (and
    a JSON `null` as SQL NULL), the reader keeps the database's own text."""
    def parsed(table: pa.Table) -> list[object]:
        return [None if v is None else json.loads(v) for v in table.column("doc").to_pylist()]

    return (got.schema == expected.schema and parsed(got) == parsed(expected)
            and got.drop_columns(["doc"]).equals(expected.drop_columns(["doc"])))


@pytest.fixture
def no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader must read these types itself, not hand them to the pyarrow backend."""
    def refuse(*_: object) -> None:
        raise AssertionError("the reader fell back to the pyarrow backend")

    monkeypatch.setattr(ArrowStreamLoader, "_fallback", refuse)


@pytest.mark.integration
def test_the_reader_gives_what_the_pyarrow_backend_gives(database: str, tmp_path: Path,
                                                        no_fallback: None) -> None:
    backend = reader_for("postgresql")
    assert backend == ARROW_STREAM

    expected = extract(database, "pyarrow", tmp_path / "pyarrow")
    got = extract(database, backend, tmp_path / "reader")

    assert got.num_rows == 5
    assert got.schema == expected.schema
    assert got.schema.field("amount").type == pa.decimal128(12, 2)
    assert got.schema.field("at").type == pa.timestamp("us")
    assert same_rows(got, expected), (got.to_pylist(), expected.to_pylist())
    rows = {r["id"]: r for r in got.to_pylist()}
    assert rows[1]["at"].microsecond == 1 and rows[3]["at"].microsecond == 999_999
    assert str(rows[1]["amount"]) == "1234567890.12" and str(rows[4]["amount"]) == "0.00"
    assert rows[1]["big"] == 9007199254740993
    assert all(v is None for k, v in rows[2].items() if k not in ("id", "updated_at"))
    assert (rows[1]["ref"], rows[1]["state"], rows[1]["code"]) == (
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "new", "ab ")
    assert (rows[1]["score"], rows[4]["score"]) == (0.1, float("-inf"))  # real, as psycopg reads it


@pytest.mark.integration
def test_a_second_read_gets_only_the_new_rows(database: str, tmp_path: Path,
                                              no_fallback: None) -> None:
    backend = reader_for("postgresql")
    extract(database, "pyarrow", tmp_path / "pyarrow")
    extract(database, backend, tmp_path / "reader")
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        for statement in SECOND.split(";"):
            conn.execute(sa.text(statement))
    engine.dispose()

    expected = extract(database, "pyarrow", tmp_path / "pyarrow")
    got = extract(database, backend, tmp_path / "reader")

    assert got.column("id").to_pylist() == [2, 6, 7]
    assert same_rows(got, expected), (got.to_pylist(), expected.to_pylist())
    assert extract(database, backend, tmp_path / "reader").num_rows == 0


@pytest.mark.integration
@pytest.mark.parametrize("column", ["cost money", "spot point"])  # known type / unknown type
def test_a_column_connectorx_cannot_read_falls_back_to_the_pyarrow_backend(
        database: str, tmp_path: Path, column: str) -> None:
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE items ADD COLUMN {column}"))
        conn.execute(sa.text(f"UPDATE items SET {column.split()[0]} = "
                             + ("12.34" if "money" in column else "'(1,2)'")))
    engine.dispose()

    expected = extract(database, "pyarrow", tmp_path / "pyarrow")
    got = extract(database, reader_for("postgresql"), tmp_path / "reader")

    assert got.num_rows == 5
    # jsonb as PostgreSQL writes it, as the Arrow readers read it; dlt's own backend makes one
    # struct of every row's keys (tests/integration/test_server_sources.py)
    assert got.drop_columns(["doc"]).equals(expected.drop_columns(["doc"]))
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        written = conn.execute(sa.text("SELECT doc::text FROM items ORDER BY id")).scalars().all()
    engine.dispose()
    assert got.sort_by("id").column("doc").to_pylist() == written
