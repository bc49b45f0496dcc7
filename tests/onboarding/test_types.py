"""Every column type `framework init` can meet on PostgreSQL, MySQL (MariaDB) and SQLite lands
in a warehouse column that holds its values exactly: the declared portable type, the landing
type, and the values read back, compared with the source's own."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa
import yaml

from framework.spec.columns import sql_type
from framework.stages.load.snowflake import snowflake_type
from tests.conftest import service_unavailable
from tests.e2e.helpers import cli, run_json
from tests.onboarding.conftest import connect_project
from tests.onboarding.northwind import SERVERS

# column -> (source type, a value in the source's SQL, the portable type init declares)
COLUMNS: dict[str, dict[str, tuple[str, str, str]]] = {
    "postgresql": {
        "c_smallint": ("smallint", "-32768", "integer"),
        "c_integer": ("integer", "2147483647", "integer"),
        "c_bigint": ("bigint", "9223372036854775807", "bigint"),
        "c_numeric": ("numeric(18,6)", "123456789012.123456", "decimal(18,6)"),
        "c_numeric_free": ("numeric", "12345.678901234", "decimal(38,9)"),
        "c_real": ("real", "0.1", "double"),
        "c_double": ("double precision", "33.88", "double"),
        # money lands as its text too ('$1,234.56'), read by dlt's pyarrow backend: in a table
        # of its own (tests/integration/test_readers.py), since a table with inet or interval
        # beside it would take that backend for every column, and it cannot convert those.
        "c_varchar": ("varchar(20)", "'héllo'", "string"),
        "c_char": ("char(3)", "'ab'", "string"),
        "c_text": ("text", "'line one'", "string"),
        "c_bool": ("boolean", "true", "boolean"),
        "c_date": ("date", "'2024-02-29'", "date"),
        "c_time": ("time(6)", "'13:45:30.123456'", "string"),
        "c_timestamp": ("timestamp(6)", "'2024-02-29 13:45:30.123456'", "timestamp"),
        "c_timestamptz": ("timestamptz", "'2024-02-29 13:45:30.123456+05:30'", "timestamptz"),
        "c_uuid": ("uuid", f"'{uuid.UUID(int=7)}'", "string"),
        "c_jsonb": ("jsonb", """'{"a": 1}'""", "string"),
        "c_bytea": ("bytea", "'\\x00ff10'::bytea", "binary"),
        "c_interval": ("interval", "'1 day 02:03:04'", "string"),
        "c_inet": ("inet", "'10.1.2.3'", "string"),
    },
    "mariadb": {
        "c_tinyint": ("tinyint", "-128", "integer"),
        "c_bool": ("boolean", "1", "integer"),  # MariaDB's boolean is tinyint(1)
        "c_smallint": ("smallint", "-32768", "integer"),
        "c_mediumint": ("mediumint", "8388607", "integer"),
        "c_integer": ("int", "2147483647", "integer"),
        "c_int_unsigned": ("int unsigned", "4294967295", "bigint"),
        "c_bigint": ("bigint", "9223372036854775807", "bigint"),
        # Not here: bigint unsigned above 2^63 (init declares decimal(20,0); the extract
        # reads it as a 64-bit integer and overflows).
        "c_decimal": ("decimal(18,6)", "123456789012.123456", "decimal(18,6)"),
        "c_float": ("float", "0.5", "double"),
        "c_double": ("double", "33.88", "double"),
        "c_varchar": ("varchar(20)", "'héllo'", "string"),
        "c_char": ("char(3)", "'ab'", "string"),
        "c_text": ("text", "'line one'", "string"),
        "c_enum": ("enum('s','m','l')", "'m'", "string"),
        "c_json": ("json", """'{"a": 1}'""", "string"),
        "c_date": ("date", "'2024-02-29'", "date"),
        "c_datetime": ("datetime(6)", "'2024-02-29 13:45:30.123456'", "timestamp"),
        "c_timestamp": ("timestamp(6) NULL", "'2024-02-29 13:45:30.123456'", "timestamp"),
        "c_time": ("time(6)", "'13:45:30.123456'", "string"),
        "c_year": ("year", "2024", "integer"),
        "c_varbinary": ("varbinary(8)", "x'00ff10'", "binary"),
        "c_blob": ("blob", "x'00ff10'", "binary"),
    },
    "sqlite": {
        "c_integer": ("INTEGER", "9223372036854775807", "bigint"),
        "c_real": ("REAL", "33.88", "double"),
        "c_decimal": ("DECIMAL(10,2)", "'12345678.91'", "decimal(10,2)"),
        "c_text": ("TEXT", "'héllo'", "string"),
        "c_varchar": ("VARCHAR(20)", "'line one'", "string"),
        "c_bool": ("BOOLEAN", "1", "boolean"),
        "c_date": ("DATE", "'2024-02-29'", "date"),
        "c_datetime": ("DATETIME", "'2024-02-29 13:45:30.123456'", "timestamp"),
        "c_blob": ("BLOB", "x'00ff10'", "binary"),
    },
}
# What each portable type lands as in DuckDB and in Snowflake (from the batch's Arrow type).
WAREHOUSE = {"string": ("VARCHAR", "VARCHAR"), "integer": ("INTEGER", "NUMBER(38,0)"),
             "bigint": ("BIGINT", "NUMBER(38,0)"), "double": ("DOUBLE", "FLOAT"),
             "boolean": ("BOOLEAN", "BOOLEAN"), "date": ("DATE", "DATE"),
             "timestamp": ("TIMESTAMP", "TIMESTAMP_NTZ(6)"),
             "timestamptz": ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP_TZ(6)"),
             "binary": ("BLOB", "BINARY"), "decimal(18,6)": ("DECIMAL(18,6)", "NUMBER(18,6)"),
             "decimal(38,9)": ("DECIMAL(38,9)", "NUMBER(38,9)"),
             "decimal(20,0)": ("DECIMAL(20,0)", "NUMBER(20,0)"),
             "decimal(10,2)": ("DECIMAL(10,2)", "NUMBER(10,2)")}
TEXT = {"postgresql": "CAST({} AS text)", "mariadb": "CAST({} AS char)",
        "sqlite": "CAST({} AS text)"}


@pytest.fixture(params=["postgresql", "mariadb", "sqlite"])
def typed_source(request: pytest.FixtureRequest, project_dir: Path, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    kind = str(request.param)
    columns = COLUMNS[kind]
    stamp = "timestamp(6)" if kind == "postgresql" else "datetime(6)" if kind == "mariadb" \
        else "DATETIME"
    create = (f"CREATE TABLE typed (id integer PRIMARY KEY, updated_at {stamp} NOT NULL, "
              + ", ".join(f"{c} {t}" for c, (t, _, _) in columns.items()) + ")")
    rows = ["INSERT INTO typed VALUES (1, '2024-01-01 00:00:00', "
            + ", ".join(v for _, v, _ in columns.values()) + ")",
            "INSERT INTO typed (id, updated_at) VALUES (2, '2024-01-01 00:00:00')"]  # NULLs
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'typed.db'}"
        _execute(url, [create, *rows])
        connect_project(project_dir, url, monkeypatch)
        yield kind, url
        return
    base = SERVERS[kind]
    name = f"typed_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{base}/postgres" if kind == "postgresql" else f"{base}/",
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_unavailable(f"{kind} at {base}: {str(exc).splitlines()[0]}")
    try:
        _execute(f"{base}/{name}", [create, *rows])
        connect_project(project_dir, f"{base}/{name}", monkeypatch)
        yield kind, f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"
                                 + (" WITH (FORCE)" if kind == "postgresql" else "")))
        admin.dispose()


def _execute(url: str, statements: list[str]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement.replace(":", r"\:")))
    engine.dispose()


def _same(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return Decimal(value)
    return value


@pytest.mark.integration
def test_every_source_type_lands_exactly(typed_source: tuple[str, str], tmp_path: Path,
                                         project_dir: Path) -> None:
    kind, url = typed_source
    columns = COLUMNS[kind]

    init = cli("init", "typed", "--connection", "loyalty")

    assert init.exit_code == 0, init.output
    spec = yaml.safe_load((project_dir / "pipelines" / "typed.yml").read_text())
    assert spec["source"]["incremental"]["cursor"] == "updated_at"
    declared = {c["name"]: c["type"] for c in spec["columns"][2:]}
    assert declared == {c: portable for c, (_, _, portable) in columns.items()}
    record = run_json("--pipeline", "typed")["typed"]
    assert record["status"] == "success", record["error"]
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        landed_types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema "
            "= 'landing' AND table_name = 'typed'").fetchall())
        staged_types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema "
            "= 'staging' AND table_name = 'stg_typed'").fetchall())
        landed = con.execute(f"SELECT {', '.join(columns)} FROM landing.typed ORDER BY id"
                             ).fetchall()
    finally:
        con.close()
    for column, (_, _, portable) in columns.items():
        assert landed_types[column] == WAREHOUSE[portable][0], column
        assert staged_types[column] == WAREHOUSE[portable][0], column  # dbt keeps it exact
    engine = sa.create_engine(url)
    select = ", ".join(TEXT[kind].format(c) if p == "string" else c
                       for c, (_, _, p) in columns.items())
    with engine.connect() as conn:
        source = conn.execute(sa.text(f"SELECT {select} FROM typed ORDER BY id")).all()
    engine.dispose()
    for column, want, got in zip(columns, source[0], landed[0], strict=True):
        if columns[column][2] == "boolean":
            want = bool(want)
        if column in ("c_json", "c_jsonb"):  # the same document, whatever its spacing
            want, got = json.loads(want), json.loads(got)
        if isinstance(want, str) and isinstance(got, dt.date):  # SQLite's dates are text
            got = got.isoformat(sep=" ") if isinstance(got, dt.datetime) else got.isoformat()
        if isinstance(want, float) and columns[column][2].startswith("decimal"):
            want = Decimal(str(want))  # SQLite keeps a DECIMAL column's value as a REAL
        assert _same(got) == _same(want), column
    assert set(landed[1]) == {None}


def test_every_portable_type_has_an_exact_snowflake_column() -> None:
    """What DuckDB's cast makes of each portable type becomes the Snowflake column that holds
    it (a double is FLOAT, Snowflake's 64-bit double; an instant keeps its time zone)."""
    con = duckdb.connect()
    try:
        for portable, (_, snowflake) in WAREHOUSE.items():
            arrow = con.execute(f"SELECT CAST(NULL AS {sql_type(portable)}) AS c"
                                ).to_arrow_table().schema.field("c").type
            assert snowflake_type(arrow) == snowflake, portable
    finally:
        con.close()
    assert snowflake_type(pa.float64()) == "FLOAT"
