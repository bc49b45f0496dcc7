"""The same pipeline files against real PostgreSQL and MariaDB shops (servers on this machine)."""

from __future__ import annotations

import datetime as dt
import json
import struct
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result

from framework.demo.shop import TABLES, create_shop, simulate_activity
from framework.sources.sql.readers import ArrowStreamLoader
from tests.conftest import service_unavailable
from tests.e2e.helpers import (
    assert_landing_equals_source,
    cli,
    execute,
    run_json,
)

SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306",
}


@contextmanager
def server_database(server: str) -> Iterator[str]:
    """A fresh database on the local PostgreSQL or MariaDB server, dropped afterwards."""
    base = SERVERS[server]
    admin_url = f"{base}/postgres" if server == "postgresql" else f"{base}/"
    name = f"shop_e2e_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        service_unavailable(f"{server} at {base}: {str(exc).splitlines()[0]}")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(params=sorted(SERVERS))
def server_shop(request: pytest.FixtureRequest, project_dir: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with server_database(request.param) as url:
        monkeypatch.setenv("SHOP_DB_URL", url)
        create_shop(url, scale=0.005, seed=11)
        yield url


@pytest.mark.integration
def test_a_server_shop_lands_equal_and_merges_only_the_delta(server_shop: str, tmp_path: Path) -> None:
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    first = run_json("--all", "--no-dbt")
    assert {r["status"] for r in first.values()} == {"success"}, first
    changed = simulate_activity(server_shop, seed=5, at_boundary=1)

    second = run_json("--all", "--no-dbt")

    for table in TABLES:
        assert second[table]["rows_extracted"] == getattr(changed, table), table
    assert_landing_equals_source(server_shop, warehouse, TABLES)


@pytest.mark.integration
def test_a_wrong_password_is_one_line_naming_the_source_without_the_secret(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with server_database("mariadb") as url:
        monkeypatch.setenv("SHOP_DB_URL", url.replace("root@", "root:Wr0ng-Pa55@"))
        result = cli("run", "--pipeline", "customers", "--no-dbt")

    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "error: source 'shop' (mysql+pymysql://root:***@" in errors[0]
    assert "Access denied" in errors[0] and "Wr0ng-Pa55" not in result.output


@pytest.mark.integration
def test_a_password_in_the_urls_query_or_with_a_raw_at_never_shows(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`?password=` was printed whole (safe_url hid the user's password only) and stored in the
    run records; `user:p@ss@host` left the password's tail in the host SQLAlchemy parsed."""
    secret = "S3cr3t-P@ss"
    monkeypatch.setenv("SHOP_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:1/shop"
                                      "?password=S3cr3t-P%40ss&sslmode=disable")
    in_query = cli("run", "--pipeline", "customers", "--no-dbt", "--json")
    history = cli("history")
    monkeypatch.setenv("SHOP_DB_URL", f"postgresql+psycopg://postgres:{secret}@127.0.0.1:1/shop")
    raw_at = cli("run", "--pipeline", "customers", "--no-dbt")

    assert in_query.exit_code == 1
    assert "source 'shop' (postgresql+psycopg://postgres@127.0.0.1:1/shop?password=***&" \
        "sslmode=disable)" in in_query.output
    assert raw_at.exit_code == 1
    assert raw_at.output.strip().splitlines()[-1].endswith(
        "the URL's user or password holds an '@': percent-encode it as %40 (user:p%40ss@host)")
    state = [p for p in (project_dir.parent / "state").rglob("*") if p.is_file()]
    for text in [in_query.output, history.output, raw_at.output,
                 *(p.read_bytes().decode("latin-1") for p in state)]:
        assert "S3cr3t" not in text and "P%40ss" not in text and "ss@127" not in text


def one_table(project: Path, url: str, table: str, extra: str = "",
              cursor: str | None = None) -> None:
    """Source `lab` at `url` and a hand-written pipeline reading `table` (key `id`, read
    incrementally on `cursor` when given), then `extra` lines of its YAML."""
    incremental = f"  incremental: {{cursor: {cursor}}}\n" if cursor else ""
    (project / "sources" / "lab.yml").write_text(f"name: lab\nurl: {url}\n")
    (project / "pipelines" / f"{table}.yml").write_text(
        f"name: {table}\nsource:\n  connection: lab\n  table: {table}\n  primary_key: [id]\n"
        f"{incremental}lake:\n  path: {table}\n{extra}")


def init_and_run(project_dir: Path, url: str, table: str) -> tuple[Result, dict[str, Any]]:
    """`framework init` of `table` (source `lab` at `url`), then one run of the pipeline it
    wrote: init's result and the run's record."""
    (project_dir / "sources" / "lab.yml").write_text(f"name: lab\nurl: {url}\n")
    written = cli("init", table, "--connection", "lab")
    return written, run_json("--pipeline", table, "--no-dbt")[table]


def extract_errors(project_dir: Path, table: str, *statements: str) -> list[str]:
    """The error lines of a run of `table`, made on a fresh PostgreSQL database by
    `statements` (its pipeline: `one_table`), which must fail."""
    with server_database("postgresql") as url:
        execute(url, *statements)
        one_table(project_dir, url, table)
        result = cli("run", "--pipeline", table, "--no-dbt")
    assert result.exit_code == 1, result.output
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def server_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` on the source server: its own rendering of the values, not ours."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def landed(project: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` on the run's DuckDB warehouse."""
    import duckdb

    con = duckdb.connect(str(project.parent / "state" / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.integration
def test_mariadb_doubles_land_exact_when_the_row_by_row_reader_takes_the_table(
        project_dir: Path) -> None:
    """A BIT column sends the table to the pyarrow backend (connectorx cannot read it); there
    SQLAlchemy reflects DOUBLE as a float returned as a Decimal rounded to 10 places, which
    landed 1.5e-12 as 0 and 5e-11 as 1e-10 while the run said success."""
    doubles = [1.5e-12, 5e-11, 1.0000000000000002, 6.02214076e23, -2.2250738585072014e-308]
    with server_database("mariadb") as url:
        execute(url, "CREATE TABLE readings (id int PRIMARY KEY, d double, b bit(1))",
                *(f"INSERT INTO readings VALUES ({i}, {d!r}, b'1')" for i, d in enumerate(doubles)))
        one_table(project_dir, url, "readings")
        records = run_json("--pipeline", "readings", "--no-dbt")

    assert records["readings"]["status"] == "success", records
    assert [row[0] for row in landed(project_dir, "SELECT d FROM landing.readings ORDER BY id")] \
        == doubles


@pytest.mark.integration
def test_mariadb_decimals_and_floats_land_the_same_whichever_reader_takes_the_table(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """connectorx rounded decimals to 10 places (reconcile, reading the same way, said equal)
    and read FLOAT's float32 as 0.10000000149011612 where rows read one by one took the
    server's text, 0.1 (6 digits: 12345.67 became 12345.7): a table that changed readers
    between runs (an added column of a type connectorx lacks) landed its boundary rows again.
    A POINT sends `slow` row by row; YEAR no longer does."""
    columns = ("id int PRIMARY KEY, fine decimal(30,20), rate decimal(18,12), price "
               "decimal(12,2), f float, y year")
    values = ("(1, 1.12345678901234567891, 0.000000000001, 10.50, 0.1, 2020), "
              "(2, 0.00000000000000000001, 0.123456789012, NULL, 12345.67, 1901), "
              "(3, -9999999999.99999999999999999999, NULL, -0.01, 3.4e38, NULL)")
    with server_database("mariadb") as url:
        execute(url, f"CREATE TABLE fast ({columns})", f"INSERT INTO fast VALUES {values}",
                f"CREATE TABLE slow ({columns}, spot point)",
                "INSERT INTO slow SELECT *, POINT(1, 2) FROM fast")
        source = server_rows(url, "SELECT CAST(fine AS CHAR), CAST(rate AS CHAR), "
                                  "CAST(price AS CHAR), f, y FROM fast ORDER BY id")
        for table in ("fast", "slow"):
            one_table(project_dir, url, table)
        with monkeypatch.context() as patched:  # `fast` must stay on connectorx
            patched.setattr(ArrowStreamLoader, "_fallback", refuse_fallback)
            records = run_json("--pipeline", "fast", "--no-dbt")
        records |= run_json("--pipeline", "slow", "--no-dbt")

    assert {r["status"] for r in records.values()} == {"success"}, records
    sql = ("SELECT CAST(fine AS VARCHAR), CAST(rate AS VARCHAR), CAST(price AS VARCHAR), f, y "
           "FROM landing.{} ORDER BY id")
    fast, slow = landed(project_dir, sql.format("fast")), landed(project_dir, sql.format("slow"))
    assert fast == slow
    assert [row[:3] for row in fast] == [row[:3] for row in source]
    as_float32 = [struct.unpack("f", struct.pack("f", v))[0] for v in (0.1, 12345.67, 3.4e38)]
    assert [(row[3], row[4]) for row in fast] == list(zip(as_float32, [2020, 1901, None]))


@pytest.mark.integration
def test_dlts_own_warnings_are_json_lines_under_log_format_json(project_dir: Path) -> None:
    """dlt wrote its warnings (a column type it has no name for) as text lines of its own
    between the JSON ones, which a log shipper reading JSON lines choked on."""
    import json
    import subprocess
    import sys

    with server_database("mariadb") as url:
        execute(url, "CREATE TABLE readings (id int PRIMARY KEY, f float, y year)",
                "INSERT INTO readings VALUES (1, 0.5, 2024)")
        one_table(project_dir, url, "readings")
        ran = subprocess.run([sys.executable, "-m", "framework.cli", "--log-format", "json",
                              "run", "--pipeline", "readings", "--no-dbt"],
                             capture_output=True, text=True, timeout=600, check=False)

    assert ran.returncode == 0, ran.stderr
    records = [json.loads(line) for line in ran.stderr.splitlines() if line.strip()]
    assert any(r["logger"] == "dlt" and r["level"] == "warning" for r in records), records
    assert {r["pipeline"] for r in records if r["logger"] == "dlt"} == {"readings"}


def refuse_fallback(*_: object) -> None:
    raise AssertionError("the reader fell back to the pyarrow backend")


WIDE = ["12345678901234567.12345678901234567890", "0.10000000000000000000",
        "-0.00000000000000000001", None]


@pytest.mark.integration
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_numeric_wider_than_38_digits_lands_as_its_exact_text(server: str,
                                                                project_dir: Path) -> None:
    """numeric(40,20) went through Arrow's decimal256, which DuckDB reads as DOUBLE (and
    connectorx rounds to 10 places): 12345678901234566.097 in the warehouse, the run a success.
    Now `init` declares it a string and every reader selects its text."""
    with server_database(server) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE ledger (id int PRIMARY KEY, amount decimal(40,20))"))
            conn.execute(sa.text("INSERT INTO ledger VALUES (:id, :amount)"),
                         [{"id": i, "amount": a} for i, a in enumerate(WIDE)])
        engine.dispose()
        (project_dir / "sources" / "books.yml").write_text(f"name: books\nurl: {url}\n")
        made = cli("init", "ledger", "--connection", "books")
        assert made.exit_code == 0, made.output
        written = (project_dir / "pipelines" / "ledger.yml").read_text()
        assert "{name: amount, type: string}" in written, written
        records = run_json("--pipeline", "ledger", "--no-dbt")

    assert records["ledger"]["status"] == "success", records
    assert [row[0] for row in landed(project_dir, "SELECT amount FROM landing.ledger ORDER BY id")] \
        == WIDE


@pytest.mark.integration
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_missing_source_table_is_named_in_one_line(server: str, project_dir: Path) -> None:
    """PostgreSQL's reflection raises NoSuchTableError while handling a KeyError of its own:
    the error read `extract: KeyError: (None, 'nope')`."""
    with server_database(server) as url:
        one_table(project_dir, url, "nope")
        result = cli("run", "--pipeline", "nope", "--no-dbt")

    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1
    assert errors == ["error: nope: extract: table 'nope' does not exist in source 'lab'"]
    assert "Traceback" not in result.output


@pytest.mark.integration
def test_mariadb_unsigned_bigint_keys_past_int64_land_and_reconcile(project_dir: Path) -> None:
    """BIGINT UNSIGNED reaches 2^64 - 1: the extract failed on 2^63 (`Integer value ... not in
    range`), and reconciling deletes crashed the whole run (OverflowError) reading the keys."""
    keys = [5, 2**63, 2**64 - 1]
    with server_database("mariadb") as url:
        execute(url, "CREATE TABLE counters (id bigint unsigned PRIMARY KEY, hits bigint "
                     "unsigned)",
                *(f"INSERT INTO counters VALUES ({k}, {k})" for k in keys))
        one_table(project_dir, url, "counters", "deletes: {reconcile: remove, max_fraction: 0.5}\n")
        first = run_json("--pipeline", "counters", "--no-dbt")
        execute(url, f"DELETE FROM counters WHERE id = {2**63}")
        second = run_json("--pipeline", "counters", "--no-dbt")

    assert first["counters"]["status"] == second["counters"]["status"] == "success"
    rows = landed(project_dir, "SELECT id, hits FROM landing.counters ORDER BY id")
    assert [(int(i), int(h)) for i, h in rows] == [(5, 5), (2**64 - 1, 2**64 - 1)]


@pytest.mark.integration
@pytest.mark.parametrize(("declared", "expected"), [
    ('"decimal(38,20)"', [Decimal("1.12345678901234567890"), Decimal(2)]),
    ("string", ["1.12345678901234567890", "2"]),
])
def test_a_numeric_without_precision_is_read_as_its_columns_entry_declares(
        declared: str, expected: list[object], project_dir: Path) -> None:
    """A PostgreSQL `numeric` reads as decimal(38,9) unless `columns:` says otherwise; with more
    than 9 decimals the extract failed (`Rescaling Decimal value would cause data loss`) even
    after the declaration the note asks for."""
    with server_database("postgresql") as url:
        execute(url, "CREATE TABLE rates (id int PRIMARY KEY, r numeric)",
                "INSERT INTO rates VALUES (1, 1.12345678901234567890), (2, 2)")
        one_table(project_dir, url, "rates", "columns:\n  - {name: id, type: integer}\n"
                                             f"  - {{name: r, type: {declared}}}\n")
        records = run_json("--pipeline", "rates", "--no-dbt")

    assert records["rates"]["status"] == "success", records
    assert [row[0] for row in landed(project_dir, "SELECT r FROM landing.rates ORDER BY id")] \
        == expected


@pytest.mark.integration
@pytest.mark.parametrize("slow", [False, True], ids=["adbc", "row-by-row"])
def test_postgresql_types_without_a_lake_twin_land_as_the_servers_own_text(
        slow: bool, project_dir: Path) -> None:
    """interval, inet, cidr, money and a numeric wider than 38 digits land as PostgreSQL's own
    text on both readers. A `tsvector` column sends the table to the row-by-row reader, where
    an interval failed the run (Arrow's duration) or, alone, landed as a count of microseconds
    (money sent it there too, before it was read as text). Arrays of them land as the JSON list
    of their elements' text, as a text[] does; they failed the run (a list of durations Arrow
    cannot cast, an IPv4Address JSON cannot hold)."""
    extra = ", doc tsvector" if slow else ""
    with server_database("postgresql") as url:
        execute(url, f"CREATE TABLE odd (id int PRIMARY KEY, iv interval, ip inet, net cidr, "
                     f"wide numeric(50,20), m money, ivs interval[], ips inet[], ms money[], "
                     f"tags text[]{extra})",
                "INSERT INTO odd (id, iv, ip, net, wide, m, ivs, ips, ms, tags) VALUES "
                "(1, '1 day 2 hours 3.5 seconds', '192.168.0.1', '10.0.0.0/8', "
                "12345678901234567890123.12345678901234567890, 1234567.89, "
                "'{1 day, -00:00:01.25}', '{192.168.0.1, 10.0.0.0/8}', '{1.50, -2}', "
                "'{a, \"b c\"}'), "
                "(2, '-3 mons', '::1', '2001:db8::/32', -0.00000000000000000001, -0.5, "
                "'{}', '{::1, NULL}', '{}', '{}'), "
                "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
        expected = server_rows(url, "SELECT iv::text, ip::text, net::text, wide::text, m::text, "
                                    "to_json(ivs)::text, to_json(ips)::text, to_json(ms)::text, "
                                    "to_json(tags)::text FROM odd ORDER BY id")
        one_table(project_dir, url, "odd")
        records = run_json("--pipeline", "odd", "--no-dbt")

    assert records["odd"]["status"] == "success", records
    assert landed(project_dir, "SELECT iv, ip, net, wide, m, ivs, ips, ms, tags FROM landing.odd "
                               "ORDER BY id") == expected
    assert expected[0][0] == "1 day 02:00:03.5"
    assert expected[0][5:7] == ('["1 day","-00:00:01.25"]', '["192.168.0.1","10.0.0.0/8"]')


@pytest.mark.integration
def test_a_uuid_beside_an_array_lands_on_every_incremental_run(project_dir: Path) -> None:
    """An array sends the table to the row-by-row reader; the cursor pre-check's query ran
    before dlt turned uuid into text, SQLAlchemy kept the first result processor, and every
    incremental run with something new failed: `ArrowInvalid: Invalid UTF8 payload`."""
    with server_database("postgresql") as url:
        execute(url, "CREATE TABLE tagged (id int PRIMARY KEY, uid uuid, tags int[], "
                     "ts timestamp NOT NULL)",
                "INSERT INTO tagged SELECT g, gen_random_uuid(), ARRAY[g], "
                "timestamp '2024-01-01' + g * interval '1 hour' FROM generate_series(1, 3) g")
        one_table(project_dir, url, "tagged", cursor="ts")
        first = run_json("--pipeline", "tagged", "--no-dbt")["tagged"]
        execute(url, "INSERT INTO tagged VALUES (4, gen_random_uuid(), ARRAY[4], '2024-02-01')")
        second = run_json("--pipeline", "tagged", "--no-dbt")["tagged"]
        expected = server_rows(url, "SELECT id, uid::text, to_json(tags)::text FROM tagged "
                                    "ORDER BY id")

    assert first["status"] == "success", first["error"]
    assert second["status"] == "success", second["error"]
    assert second["rows_extracted"] == 1
    assert landed(project_dir, "SELECT id, uid, tags FROM landing.tagged ORDER BY id") == expected


@pytest.mark.integration
@pytest.mark.parametrize("slow", [False, True], ids=["adbc", "row-by-row"])
def test_postgresql_json_hstore_ranges_and_timetz_land_as_the_servers_own_text(
        slow: bool, project_dir: Path) -> None:
    """Read row by row (a text[] column sends the table there), psycopg hands JSON, hstore and
    ranges over as dicts and objects, and dlt made one struct of them: every row gained the
    others' keys as nulls. A time with time zone lost its offset on both readers."""
    extra = ", tags text[]" if slow else ""
    with server_database("postgresql") as url:
        execute(url, "CREATE EXTENSION IF NOT EXISTS hstore",
                f"CREATE TABLE docs (id int PRIMARY KEY, doc jsonb, raw json, h hstore, "
                f"r int4range, tz timetz{extra})",
                "INSERT INTO docs (id, doc, raw, h, r, tz) VALUES "
                "(1, '{\"color\": \"red\"}', '{\"b\": 1.10, \"a\": 0.10000000000000000555}', "
                "'color=>red', '[1,10)', '01:30:00+05:30'), "
                "(2, '{\"size\": 42, \"price\": 19.990}', '[1, null]', '', 'empty', '12:00:00-08'), "
                "(3, 'null', '{}', NULL, '(,5]', NULL), (4, NULL, NULL, NULL, NULL, NULL)")
        expected = server_rows(url, "SELECT doc::text, raw::text, h::text, r::text, tz::text "
                                    "FROM docs ORDER BY id")
        one_table(project_dir, url, "docs")
        records = run_json("--pipeline", "docs", "--no-dbt")

    assert records["docs"]["status"] == "success", records
    assert landed(project_dir, "SELECT doc, raw, h, r, tz FROM landing.docs ORDER BY id") == \
        expected
    assert expected[0] == ('{"color": "red"}', '{"b": 1.10, "a": 0.10000000000000000555}',
                           '"color"=>"red"', "[1,10)", "01:30:00+05:30")


@pytest.mark.integration
def test_a_postgresql_numeric_nan_fails_the_extract_naming_the_column(project_dir: Path) -> None:
    errors = extract_errors(project_dir, "nums",
                            "CREATE TABLE nums (id int PRIMARY KEY, amount numeric(10,2))",
                            "INSERT INTO nums VALUES (1, 2.5), (2, 'NaN')")

    assert ("error: nums: extract: column 'amount' holds NaN or an infinity, which no decimal in "
            "the lake can hold; map it in source.query (CASE WHEN amount IN ('NaN', 'Infinity', "
            "'-Infinity') THEN NULL ELSE amount END AS amount) (The string 'NaN' is not a valid "
            "decimal128 number)") in errors, errors


@pytest.mark.integration
@pytest.mark.parametrize(("column", "value", "expected"), [
    ("amount numeric(10,2)", "'NaN'", (
        "column 'amount' holds 'NaN': NaN or an infinity, which no decimal in the lake "
        "can hold; map it in source.query: CASE WHEN CAST(amount AS text) IN ('NaN', "
        "'Infinity', '-Infinity') THEN NULL ELSE amount END AS amount")),
    ("amount numeric", "123456789012345678901234567890.5", (
        "column 'amount': Decimal value does not fit in precision 38: a numeric holds more "
        "digits than the type it is read as (a numeric without precision reads as "
        "decimal(38,9)); declare it in columns: (decimal(p,s), or string for its exact text)")),
])
def test_a_numeric_the_row_by_row_reader_cannot_convert_is_named(
        column: str, value: str, expected: str, project_dir: Path) -> None:
    """Read row by row (a `tsvector` column beside), dlt's conversion failed with "'str'
    object cannot be interpreted as an integer" for a NaN, and an ArrowInvalid naming no
    column for 30 integer digits."""
    errors = extract_errors(project_dir, "nums",
                            f"CREATE TABLE nums (id int PRIMARY KEY, {column}, doc tsvector)",
                            f"INSERT INTO nums (id, amount) VALUES (1, 2.5), (2, {value})")

    assert f"error: nums: extract: {expected}" in errors, errors


def out_of_range(name: str) -> str:
    return (f"column '{name}' holds a date or timestamp outside years 1 to 9999 (PostgreSQL's "
            f"infinity or -infinity, as its driver reads them, or a year 0), which the lake "
            f"cannot hold; map it in source.query (CASE WHEN {name} BETWEEN '0001-01-01' AND "
            f"'9999-12-31 23:59:59.999999' THEN {name} END AS {name}, or a date of your choice)")


@pytest.mark.integration
@pytest.mark.parametrize("reader", ["adbc", "row-by-row"])
def test_postgresql_infinity_lands_as_the_first_and_last_instants(
        reader: str, project_dir: Path) -> None:
    """ADBC wrapped `infinity` around to a date 290,000 years BC, and psycopg (a `tsvector`
    column sends the table to the row-by-row reader) refused it: the run failed, and the fix
    offered was a source.query, which gives up the pre-check. An open end (`valid_to =
    'infinity'`) lands as year 9999's last instant, as psycopg's documentation maps it, so it
    still sorts after every date; a NOT NULL column stays non-null; a cursor holding infinity
    is caught once."""
    last, first = dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(1, 1, 1)
    with server_database("postgresql") as url:
        execute(url, "CREATE TABLE ends (id int PRIMARY KEY, ts timestamp(0) NOT NULL, "
                     "tz timestamptz, d date, updated_at timestamp NOT NULL"
                     f"{', doc tsvector' if reader == 'row-by-row' else ''})",
                "INSERT INTO ends (id, ts, tz, d, updated_at) VALUES "
                "(1, '2024-01-01', '2024-01-01 10:00+02', '2024-01-01', '2024-01-01'), "
                "(2, 'infinity', 'infinity', 'infinity', 'infinity'), "
                "(3, '-infinity', '-infinity', '-infinity', '2024-01-01')")
        one_table(project_dir, url, "ends", cursor="updated_at")
        runs = [run_json("--pipeline", "ends", "--no-dbt")["ends"] for _ in range(2)]
        execute(url, "INSERT INTO ends (id, ts, updated_at) VALUES (4, 'infinity', 'infinity')")
        later = run_json("--pipeline", "ends", "--no-dbt")["ends"]

    assert runs[0]["status"] == "success", runs[0]["error"]
    assert [r["rows_extracted"] for r in [*runs, later]] == [3, 0, 1]
    rows = landed(project_dir, "SELECT id, ts, tz, d, updated_at FROM landing.ends ORDER BY id")
    assert [(i, ts, tz and tz.astimezone(dt.UTC).replace(tzinfo=None), d, u)
            for i, ts, tz, d, u in rows] == [
        (1, dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 8), dt.date(2024, 1, 1),
         dt.datetime(2024, 1, 1)),
        (2, last, last, dt.date.max, last),
        (3, first, first, dt.date.min, dt.datetime(2024, 1, 1)),
        (4, last, None, None, last)]


@pytest.mark.integration
@pytest.mark.parametrize(("column", "value", "reader", "expected"), [
    ("ts timestamptz", "infinity", "query", out_of_range("ts")),
    ("d date", "infinity", "query", out_of_range("d")),
    ("ts timestamp", "10000-01-01", "adbc", out_of_range("ts")),
    ("ts timestamptz", "0044-03-15 BC", "row-by-row", (
        "column 'ts' holds '0044-03-15 00:00:00+00 BC': a year past 9999 or before year 1, "
        "which no lake date holds; map it in source.query: CASE WHEN ts BETWEEN '0001-01-01' "
        "AND '9999-12-31' THEN ts END AS ts")),
])
def test_a_postgresql_date_no_lake_holds_fails_the_extract_naming_what_to_map(
        column: str, value: str, reader: str, expected: str, project_dir: Path) -> None:
    """A year past 9999 or before year 1, or infinity in a source.query's column (the query's
    columns are not typed for the read to clamp them): ADBC wrapped them around, connectorx
    (a query's reader) to year 262143, and the run landed either as a success."""
    name = column.split()[0]
    with server_database("postgresql") as url:
        execute(url, f"CREATE TABLE ends (id int PRIMARY KEY, {column}"
                     f"{', doc tsvector' if reader == 'row-by-row' else ''})",
                f"INSERT INTO ends (id, {name}) VALUES (1, '2024-01-01'), (2, '{value}')")
        one_table(project_dir, url, "ends")
        if reader == "query":
            spec = project_dir / "pipelines" / "ends.yml"
            spec.write_text(spec.read_text().replace(
                "table: ends", f"query: SELECT id, {name} FROM ends"))
        result = cli("run", "--pipeline", "ends", "--no-dbt")

    assert result.exit_code == 1
    assert f"error: ends: extract: {expected}" in result.output.splitlines(), result.output
    assert landed(project_dir, "SELECT count(*) FROM information_schema.tables "
                               "WHERE table_name = 'ends'") == [(0,)]


@pytest.mark.integration
def test_init_on_a_table_with_an_open_end_picks_its_time_of_change(project_dir: Path) -> None:
    """init read `infinity` as year 9999, the latest value, and chose the open end as the
    cursor (closing a version moved its row below the boundary, never read); through a domain
    its read failed with psycopg's "timestamp too large" (found by a review)."""
    import yaml

    with server_database("postgresql") as url:
        execute(url, "CREATE DOMAIN ends_at AS timestamp",
                "CREATE TABLE scd (id int PRIMARY KEY, valid_from timestamp NOT NULL, "
                "valid_to ends_at NOT NULL)",
                "INSERT INTO scd VALUES (1, '2024-01-01', 'infinity'), "
                "(2, '2023-01-01', '2024-01-01')")
        init, first = init_and_run(project_dir, url, "scd")

    assert init.exit_code == 0, init.output
    spec = yaml.safe_load((project_dir / "pipelines" / "scd.yml").read_text())
    assert spec["source"]["incremental"]["cursor"] == "valid_from"
    assert first["status"] == "success", first["error"]
    assert landed(project_dir, "SELECT id, valid_to FROM landing.scd ORDER BY id") == [
        (1, dt.datetime(9999, 12, 31, 23, 59, 59, 999999)), (2, dt.datetime(2024, 1, 1))]


@pytest.mark.integration
@pytest.mark.parametrize("array", ["{2024-01-01,infinity}", "{-infinity,2024-01-01}"])
def test_infinity_in_a_postgresql_date_array_is_named(project_dir: Path, array: str) -> None:
    """psycopg said "can't parse date 'infinity}': unexpected length" (or, infinity first,
    "date too large"), naming no column."""
    errors = extract_errors(project_dir, "ends", "CREATE TABLE ends (id int PRIMARY KEY, ds date[])",
                            f"INSERT INTO ends VALUES (1, '{{2024-01-01}}'), (2, '{array}')")

    assert (f"error: ends: extract: column 'ds' holds '{array}': infinity in an array, which no "
            "lake date holds; map it in source.query: CAST(ds AS text[]) AS ds") in errors, errors


@pytest.mark.integration
@pytest.mark.parametrize(("zero", "other"), [("0000-00-00", ""), ("2024-00-15", ""),
                                             ("0000-00-00", ", spot point")])
def test_mariadb_zero_dates_land_as_null(zero: str, other: str, project_dir: Path) -> None:
    """connectorx panicked on '0000-00-00' (and a zero month or day); read row by row (a POINT
    column), Arrow's conversion failed naming no column. The fix offered was a source.query,
    which gives up the pre-check. A zero date lands as NULL, what MySQL means by it, and the
    next run finds nothing new."""
    point = ", POINT(1, 2)" if other else ""
    with server_database("mariadb") as url:
        execute(url, "SET SESSION sql_mode = ''",  # as old applications write
                "CREATE TABLE visits (id int PRIMARY KEY, d date, "
                "t datetime NOT NULL DEFAULT '0000-00-00 00:00:00', s timestamp NULL, "
                f"updated_at datetime(6) NOT NULL{other})",
                "INSERT INTO visits VALUES (1, '2024-01-01', '2024-01-01 10:00:00', "
                f"'2024-01-01 11:00:00', '2024-01-02 00:00:00'{point}), "
                f"(2, '{zero}', '0000-00-00 00:00:00', '0000-00-00 00:00:00', "
                f"'2024-01-02 00:00:00'{point})")
        one_table(project_dir, url, "visits", cursor="updated_at")
        first = run_json("--pipeline", "visits", "--no-dbt")["visits"]
        again = run_json("--pipeline", "visits", "--no-dbt")["visits"]

    assert first["status"] == "success", first["error"]
    assert landed(project_dir, "SELECT id, d, t, s FROM landing.visits ORDER BY id") == [
        (1, dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 11)),
        (2, None, None, None)]
    assert again["rows_extracted"] == 0


@pytest.mark.integration
def test_init_leaves_a_mysql_date_that_holds_zero_dates_nullable(project_dir: Path) -> None:
    """init declared a `NOT NULL DEFAULT '0000-00-00 00:00:00'` column `nullable: false`: its
    zero dates, landed as NULL, quarantined the first batch; and a cursor holding them
    `on_null: fail`, failing it."""
    for path in (project_dir / "pipelines").glob("*.yml"):
        path.unlink()
    with server_database("mariadb") as url:
        execute(url, "SET SESSION sql_mode = ''",
                "CREATE TABLE posts (id int PRIMARY KEY, "
                "post_date_gmt datetime NOT NULL DEFAULT '0000-00-00 00:00:00', "
                "updated_at datetime NOT NULL DEFAULT '0000-00-00 00:00:00')",
                "INSERT INTO posts VALUES (1, '2024-01-01 10:00:00', '2024-01-02 00:00:00'), "
                "(2, '0000-00-00 00:00:00', '2024-01-02 00:00:00'), "
                "(3, '2024-01-01 10:00:00', '0000-00-00 00:00:00')")
        written, record = init_and_run(project_dir, url, "posts")

    assert written.exit_code == 0, written.output
    spec = (project_dir / "pipelines" / "posts.yml").read_text()
    assert "{name: post_date_gmt, type: timestamp}" in spec
    assert "    on_null: include\n" in spec  # the cursor's zero date: a NULL one
    assert record["status"] == "success", record["error"]
    assert landed(project_dir, "SELECT id, post_date_gmt, updated_at FROM landing.posts "
                               "ORDER BY id") == [
        (1, dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 2)),
        (2, None, dt.datetime(2024, 1, 2)), (3, dt.datetime(2024, 1, 1, 10), None)]


def visits_with_null_cursors_included(project_dir: Path, url: str) -> None:
    """The `visits` table onboarded alone, its `updated_at` the cursor, NULLs included."""
    one_table(project_dir, url, "visits")
    spec = project_dir / "pipelines" / "visits.yml"
    spec.write_text(spec.read_text().replace(
        "  primary_key: [id]\n",
        "  primary_key: [id]\n  incremental: {cursor: updated_at, on_null: include}\n"))


@pytest.mark.integration
def test_a_zero_date_cursor_reads_as_a_null_one(project_dir: Path) -> None:
    """A cursor `NOT NULL DEFAULT '0000-00-00 00:00:00'` that an application never set: with
    `on_null: include` such rows are read on every run (as NULLs are), never left behind
    below the cursor's last value, and dlt is skipped while none of them changed."""
    with server_database("mariadb") as url:
        execute(url, "SET SESSION sql_mode = ''",
                "CREATE TABLE visits (id int PRIMARY KEY, v int, "
                "updated_at datetime NOT NULL DEFAULT '0000-00-00 00:00:00')",
                "INSERT INTO visits VALUES (1, 1, '2024-01-02 00:00:00'), "
                "(2, 1, '0000-00-00 00:00:00')")
        visits_with_null_cursors_included(project_dir, url)
        first = run_json("--pipeline", "visits", "--no-dbt")["visits"]
        execute(url, "SET SESSION sql_mode = ''",
                "INSERT INTO visits VALUES (3, 1, '0000-00-00 00:00:00')",
                "UPDATE visits SET v = 2 WHERE id = 2")
        second = run_json("--pipeline", "visits", "--no-dbt")["visits"]
        third = run_json("--pipeline", "visits", "--no-dbt")["visits"]

    assert first["status"] == second["status"] == "success", (first["error"], second["error"])
    # nothing new: the rows with no cursor (a zero date's too) are as the last read met them
    assert third["status"] == "success" and third["rows_extracted"] == 0, third
    assert landed(project_dir, "SELECT id, v, updated_at FROM landing.visits ORDER BY id") == [
        (1, 1, dt.datetime(2024, 1, 2)), (2, 2, None), (3, 1, None)]


@pytest.mark.integration
def test_a_cursor_read_as_text_is_refused_and_a_domain_reads_as_its_base_type(
        project_dir: Path) -> None:
    """A numeric wider than 38 digits is read as its text, whose order is not the number's: as a
    cursor it dropped rows ('100' < '95'). A domain over such a numeric landed as DOUBLE
    (SQLAlchemy reflects a domain's numeric without its precision)."""
    with server_database("postgresql") as url:
        execute(url, "CREATE DOMAIN amount AS numeric(50,20)", "CREATE DOMAIN price AS "
                "numeric(12,2)", "CREATE TABLE seqs (id int PRIMARY KEY, seq numeric(50,0), "
                "total amount, unit price)",
                "INSERT INTO seqs VALUES (1, 9, 123456789012345678901234567890.1234567890123, "
                "12.34), (2, 100, -0.00000000000000000001, NULL)")
        one_table(project_dir, url, "seqs")
        spec = project_dir / "pipelines" / "seqs.yml"
        cursor = "  incremental: {cursor: seq}\n"
        spec.write_text(spec.read_text().replace("  primary_key: [id]\n",
                                                 f"  primary_key: [id]\n{cursor}"))
        refused = cli("run", "--pipeline", "seqs", "--no-dbt")
        spec.write_text(spec.read_text().replace(cursor, ""))
        records = run_json("--pipeline", "seqs", "--no-dbt")

    assert refused.exit_code == 1
    assert "error: seqs: extract: pipelines/seqs.yml: source.incremental.cursor: 'seq' is read " \
           "as its text (NUMERIC(50, 0)), whose order is not the column's; name another cursor, " \
           "or cast it in source.query" in refused.output.splitlines()
    assert records["seqs"]["status"] == "success", records
    assert landed(project_dir, "SELECT total, unit FROM landing.seqs ORDER BY id") == [
        ("123456789012345678901234567890.12345678901230000000", Decimal("12.34")),
        ("-0.00000000000000000001", None)]
    assert landed(project_dir, "SELECT data_type FROM information_schema.columns WHERE "
                               "table_name = 'seqs' AND column_name = 'unit'") == [("DECIMAL(12,2)",)]


@pytest.mark.integration
def test_init_declares_a_domain_as_its_base_type_and_it_lands_so(project_dir: Path) -> None:
    """`init` declared every column typed by a domain `string`, so a domain over integer,
    numeric or timestamp landed as text; a domain over a domain over numeric(12,2) was read
    without its scale."""
    with server_database("postgresql") as url:
        execute(url, "CREATE DOMAIN price AS numeric(12,2) CHECK (VALUE >= 0)",
                "CREATE DOMAIN sale_price AS price", "CREATE DOMAIN quantity AS integer",
                "CREATE DOMAIN stamp AS timestamp", "CREATE DOMAIN email AS text",
                "CREATE TABLE lines (id int PRIMARY KEY, unit price, sale sale_price, "
                "qty quantity NOT NULL, contact email, updated_at stamp NOT NULL)",
                "INSERT INTO lines VALUES (1, 12.34, 9.99, 3, 'a@b.c', '2026-01-02 03:04:05.5'), "
                "(2, NULL, 0.01, 1, NULL, '2026-01-03 00:00:00')")
        (project_dir / "sources" / "shopdb.yml").write_text(f"name: shopdb\nurl: {url}\n")
        made = cli("init", "lines", "--connection", "shopdb")
        assert made.exit_code == 0, made.output
        written = (project_dir / "pipelines" / "lines.yml").read_text()
        records = run_json("--pipeline", "lines", "--no-dbt")

    for declared in ('{name: unit, type: "decimal(12,2)"}', '{name: sale, type: "decimal(12,2)"}',
                     "{name: qty, type: integer, nullable: false}", "{name: contact, type: string}",
                     "{name: updated_at, type: timestamp, nullable: false}"):
        assert declared in written, written
    assert "cursor: updated_at" in written, written
    assert records["lines"]["status"] == "success", records
    assert landed(project_dir, "SELECT column_name, data_type FROM information_schema.columns "
                               "WHERE table_name = 'lines' AND column_name NOT LIKE '\\_%' "
                               "ESCAPE '\\' ORDER BY ordinal_position") == [
        ("id", "INTEGER"), ("unit", "DECIMAL(12,2)"), ("sale", "DECIMAL(12,2)"),
        ("qty", "INTEGER"), ("contact", "VARCHAR"), ("updated_at", "TIMESTAMP")]
    assert landed(project_dir, "SELECT unit, sale, qty, contact, updated_at FROM landing.lines "
                               "ORDER BY id") == [
        (Decimal("12.34"), Decimal("9.99"), 3, "a@b.c", dt.datetime(2026, 1, 2, 3, 4, 5, 500000)),
        (None, Decimal("0.01"), 1, None, dt.datetime(2026, 1, 3))]


@pytest.mark.integration
def test_init_keeps_enum_labels_as_written_so_its_accepted_values_hold(
        project_dir: Path) -> None:
    """init's transform trimmed every text column that is not a key, enum labels too: a label
    with a space at either end (' low', 'high ') landed trimmed, and the accepted_values init
    declares from the enum, the labels as written, quarantined the first batch."""
    with server_database("postgresql") as url:
        execute(url, "CREATE TYPE level AS ENUM (' low', 'mid', 'high ')",
                "CREATE TABLE tickets (id int PRIMARY KEY, level level, note text, "
                "updated_at timestamp NOT NULL)",
                "INSERT INTO tickets VALUES (1, ' low', ' a ', '2026-01-02 00:00:00'), "
                "(2, 'high ', 'b', '2026-01-02 00:00:00')")
        (project_dir / "sources" / "shopdb.yml").write_text(f"name: shopdb\nurl: {url}\n")
        made = cli("init", "tickets", "--connection", "shopdb")
        assert made.exit_code == 0, made.output
        records = run_json("--pipeline", "tickets", "--no-dbt")

    assert records["tickets"]["status"] == "success", records["tickets"]["error"]
    assert landed(project_dir, "SELECT id, level, note FROM landing.tickets ORDER BY id") == [
        (1, " low", "a"), (2, "high ", "b")]


@pytest.mark.integration
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_query_reads_its_numerics_as_declared_never_as_floats(
        server: str, project_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A `source.query` hands over untyped columns: connectorx refused a numeric whose values
    differ in scale, and the row-by-row fallback read it as DOUBLE, landing
    1234567890123456789012345 as 1234567890123456896433736 (and 1e+40 as the text of a float),
    with the run a success. Now a numeric column of the query is read as its declared type:
    `string` as its exact text, `decimal(p,s)` exactly or refused."""
    wide = "numeric" if server == "postgresql" else "decimal(65,30)"
    values = ["1234567890123456789012345", "0.000000000000000000000000000001", "98765.4321"]
    with server_database(server) as url:
        execute(url, f"CREATE TABLE amounts (id int PRIMARY KEY, amt {wide}, fits {wide})",
                *(f"INSERT INTO amounts VALUES ({i}, {v}, {i}.5)" for i, v in enumerate(values)))
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            text = "text" if server == "postgresql" else "CHAR"  # the server's own rendering
            expected = [r[0] for r in conn.execute(sa.text(
                f"SELECT CAST(amt AS {text}) FROM amounts ORDER BY id"))]
        engine.dispose()
        one_table(project_dir, url, "amounts")
        spec = project_dir / "pipelines" / "amounts.yml"
        spec.write_text(spec.read_text().replace(
            "  table: amounts\n", "  query: SELECT id, amt, fits FROM amounts\n") +
            "columns:\n  - {name: id, type: integer}\n  - {name: amt, type: string}\n"
            "  - {name: fits, type: 'decimal(12,2)'}\n")
        records = run_json("--pipeline", "amounts", "--no-dbt")

    assert records["amounts"]["status"] == "success", records
    assert landed(project_dir, "SELECT amt, fits FROM landing.amounts ORDER BY id") == [
        (text, Decimal(f"{i}.50")) for i, text in enumerate(expected)]
    assert expected[0].startswith("1234567890123456789012345")
    # the query's other columns stay untyped, without dlt's warning about each on every run
    assert not [r for r in caplog.records if "unknown data type" in r.getMessage()]


@pytest.mark.integration
@pytest.mark.parametrize("declared", ["", ("columns:\n  - {name: id, type: integer}\n"
                                          "  - {name: amt, type: 'decimal(38,9)'}\n")])
def test_a_query_numeric_that_would_lose_digits_is_refused_naming_the_column(
        declared: str, project_dir: Path) -> None:
    """Undeclared (read as decimal(38,9), as a table's numeric without precision is) or
    declared too narrow: the run landed the values as DOUBLE (1.2345678901234568e+24), a
    success; the transform then cast them to the declared decimal, digits made up."""
    with server_database("postgresql") as url:
        execute(url, "CREATE TABLE mixed (id int PRIMARY KEY, amt numeric)",
                "INSERT INTO mixed VALUES (1, 1234567890123456789012345), "
                "(2, 0.12345678901234567890), (3, 98765.4321)")
        one_table(project_dir, url, "mixed", declared)
        spec = project_dir / "pipelines" / "mixed.yml"
        spec.write_text(spec.read_text().replace("  table: mixed\n",
                                                 "  query: SELECT id, amt FROM mixed\n"))
        refused = cli("run", "--pipeline", "mixed", "--no-dbt")

    assert refused.exit_code == 1
    # Read as its text (connectorx kept 10 decimal places), cast to decimal(38,9) in Arrow
    assert [line for line in refused.output.splitlines() if line.startswith("error:")] == [
        ("error: mixed: extract: column 'amt' holds a value with more decimals than "
         "decimal128(38, 9) keeps, which the lake would round; declare the decimal it holds in "
         "columns: (amt: decimal(38, <scale>)) or cast it so in source.query (Rescaling Decimal "
         "value would cause data loss)")]


@pytest.mark.integration
def test_mariadb_sets_land_as_their_text_and_an_unchanged_row_is_not_read_again(
        project_dir: Path) -> None:
    """A SET column landed as a JSON list of the driver's Python set, in an order that changed
    from process to process ('["c","a"]', then '["a","c"]'), so a row at the last cursor value
    looked changed and was loaded again on every run. (The YEAR column sends the table to the
    row-by-row reader, as connectorx cannot read it.)"""
    rows = ["a,c", "a,b,c", "", None, "b"]
    with server_database("mariadb") as url:
        execute(url, "CREATE TABLE tagged (id int PRIMARY KEY, tags SET('a','b','c'), "
                     "made year, updated_at datetime(6) NOT NULL)",
                *(f"INSERT INTO tagged VALUES ({i}, {'NULL' if t is None else repr(t)}, 2024, "
                  "'2026-01-01 00:00:00')" for i, t in enumerate(rows)))
        one_table(project_dir, url, "tagged", cursor="updated_at")
        runs = [run_json("--pipeline", "tagged", "--no-dbt")["tagged"] for _ in range(3)]

    assert [(r["status"], r["rows_extracted"], r["rows_loaded"]) for r in runs] == \
        [("success", 5, 5), ("success", 0, 0), ("success", 0, 0)], runs
    assert [r[0] for r in landed(project_dir, "SELECT tags FROM landing.tagged ORDER BY id")] == rows


@pytest.mark.integration
@pytest.mark.parametrize("slow", [False, True], ids=["connectorx", "row-by-row"])
def test_mariadb_bits_land_as_their_number_even_past_int64(slow: bool, project_dir: Path) -> None:
    """A BIT(64) with its high bit set is a number past int64: the driver's Python int failed
    the run with Python's own OverflowError."""
    with server_database("mariadb") as url:
        execute(url, f"CREATE TABLE flags (id int PRIMARY KEY, b bit(64), one bit(1)"
                     f"{', made year' if slow else ''})",
                "INSERT INTO flags (id, b, one) VALUES (1, b'101', 1), (2, b'0', 0), "
                "(3, 0x8000000000000001, 1), (4, 0xFFFFFFFFFFFFFFFF, NULL), (5, NULL, NULL)")
        expected = server_rows(url, "SELECT CAST(b + 0 AS CHAR), CAST(one + 0 AS CHAR) "
                                    "FROM flags ORDER BY id")
        one_table(project_dir, url, "flags")
        records = run_json("--pipeline", "flags", "--no-dbt")

    assert records["flags"]["status"] == "success", records
    assert landed(project_dir, "SELECT b, one FROM landing.flags ORDER BY id") == expected
    assert expected[2:4] == [("9223372036854775809", "1"), ("18446744073709551615", None)]


@pytest.mark.integration
@pytest.mark.parametrize("slow", [False, True], ids=["adbc", "row-by-row"])
def test_a_postgresql_end_of_day_time_lands_or_is_named_with_the_fix(
        slow: bool, project_dir: Path) -> None:
    """PostgreSQL's time holds '24:00:00'. ADBC lands it (DuckDB's TIME holds it too); psycopg
    cannot (no Python time does), and the row-by-row reader failed with its bare error."""
    with server_database("postgresql") as url:
        execute(url, f"CREATE TABLE shifts (id int PRIMARY KEY, t time"
                     f"{', tags text[]' if slow else ''})",
                "INSERT INTO shifts (id, t) VALUES (1, '24:00:00'), (2, '12:30:00'), (3, NULL)")
        one_table(project_dir, url, "shifts")
        result = cli("run", "--pipeline", "shifts", "--no-dbt")
        if slow:  # the fix the error names works
            spec = project_dir / "pipelines" / "shifts.yml"
            spec.write_text(spec.read_text().replace(
                "  table: shifts\n", "  query: SELECT id, t::text AS t, tags FROM shifts\n"))
            fixed = cli("run", "--pipeline", "shifts", "--no-dbt")

    if not slow:
        assert result.exit_code == 0, result.output
        assert [str(r[0]) for r in landed(
            project_dir, "SELECT t FROM landing.shifts ORDER BY id")] == \
            ["24:00:00", "12:30:00", "None"]
        return
    assert result.exit_code == 1
    assert ("error: shifts: extract: table `shifts`: a time column (t) holds '24:00:00', "
            "PostgreSQL's end of day, which rows read one by one (a column of this table needs "
            "that reader) cannot hold; select it in source.query as text (t::text AS t) or "
            "capped (LEAST(t, '23:59:59.999999') AS t) ((psycopg.DataError) can't parse time "
            "'24:00:00': hour must be in 0..23)") in result.output.splitlines(), result.output
    assert fixed.exit_code == 0, fixed.output
    assert [r[0] for r in landed(project_dir, "SELECT t FROM landing.shifts ORDER BY id")] == \
        ["24:00:00", "12:30:00", None]


@pytest.mark.integration
def test_mariadb_times_past_a_day_land_as_their_text(project_dir: Path) -> None:
    """MySQL's TIME spans -838 to 838 hours; Arrow's time of day wrapped '838:59:59' around to
    22:59:59 on both readers, the run a success."""
    times = ["838:59:59", "-838:59:59", "24:00:00", "-00:00:01", "12:30:00", None]
    with server_database("mariadb") as url:
        execute(url, "CREATE TABLE shifts (id int PRIMARY KEY, t time)",
                *(f"INSERT INTO shifts VALUES ({i}, {'NULL' if t is None else repr(t)})"
                  for i, t in enumerate(times)))
        one_table(project_dir, url, "shifts")
        records = run_json("--pipeline", "shifts", "--no-dbt")

    assert records["shifts"]["status"] == "success", records
    assert [r[0] for r in landed(project_dir, "SELECT t FROM landing.shifts ORDER BY id")] == times


@pytest.mark.integration
def test_a_query_column_no_reader_converts_is_named_with_the_cast_to_write(
        project_dir: Path) -> None:
    """A source.query's columns are untyped: connectorx panics on cidr (and the row-by-row
    reader it falls back to cannot convert an IPv4Network). The error named no fix; now it
    names the cast, and the cast works."""
    with server_database("postgresql") as url:
        execute(url, "CREATE TABLE nets (id int PRIMARY KEY, net cidr)",
                "INSERT INTO nets VALUES (1, '10.0.0.0/8')")
        one_table(project_dir, url, "nets")
        spec = project_dir / "pipelines" / "nets.yml"
        spec.write_text(spec.read_text().replace("table: nets", "query: SELECT id, net FROM nets"))
        refused = cli("run", "--pipeline", "nets", "--no-dbt")
        spec.write_text(spec.read_text().replace("SELECT id, net", "SELECT id, CAST(net AS text) "
                                                 "AS net"))
        records = run_json("--pipeline", "nets", "--no-dbt")

    assert refused.exit_code == 1
    error = next(line for line in refused.output.splitlines() if line.startswith("error:"))
    assert error.startswith("error: nets: extract: PanicException: not implemented: cidr"), error
    assert error.endswith("; cast that column to a plain type in source.query (CAST(column AS "
                          "text), say)"), error
    assert records["nets"]["status"] == "success", records
    assert landed(project_dir, "SELECT net FROM landing.nets") == [("10.0.0.0/8",)]


@pytest.mark.integration
@pytest.mark.parametrize(("server", "key", "values"), [
    ("mariadb", "time(3)", ["12:00:00.500", "838:59:59.000", "-00:00:01.250", "01:00:00.000"]),
    ("postgresql", "interval", ["1 mon", "1 day 02:00:00", "-00:00:01.25", "00:00:00"]),
    ("postgresql", "inet", ["10.1.2.3", "::1", "192.168.0.0/24", "10.0.0.1"]),
    # lands as decimal(38,9): '1' against '1.000000000' made every key look gone
    ("postgresql", "numeric", ["1", "2.5", "3", "4"]),
])
def test_keys_read_as_text_reconcile_deletes_exactly(server: str, key: str, values: list[str],
                                                     project_dir: Path) -> None:
    """Delete reconciliation read the keys raw while the extract lands them as text: a TIME(3)
    key read '12:00:00.5' against the landed '12:00:00.500', so every key looked gone (the run
    refused, or with --allow-mass-delete emptied the table); an inet key crashed it."""
    with server_database(server) as url:
        execute(url, f"CREATE TABLE slots (k {key} PRIMARY KEY, n int)",
                *(f"INSERT INTO slots VALUES ('{v}', {i})" for i, v in enumerate(values)))
        one_table(project_dir, url, "slots", "deletes: {reconcile: remove, max_fraction: 0.5}\n")
        spec = project_dir / "pipelines" / "slots.yml"
        spec.write_text(spec.read_text().replace("primary_key: [id]", "primary_key: [k]"))
        first = run_json("--pipeline", "slots", "--no-dbt")
        execute(url, "DELETE FROM slots WHERE n = 0")
        second = run_json("--pipeline", "slots", "--no-dbt")
        checked = cli("reconcile", "--pipeline", "slots")

    assert first["slots"]["status"] == second["slots"]["status"] == "success", second
    assert sorted(r[0] for r in landed(project_dir, "SELECT n FROM landing.slots")) == [1, 2, 3]
    assert second["slots"]["warnings"] == ["slots: removed 1 row(s) whose key is gone from the source"]
    assert checked.exit_code == 0, checked.output


@pytest.mark.integration
def test_a_value_the_transform_cannot_cast_quarantines_its_batch_so_release_applies(
        project_dir: Path) -> None:
    """A NaN in a double declared decimal(12,2): the transform's CAST failed, the failed batch
    was retried first on every run (a source fix never landed), and `release` refused it as
    not quarantined: the pipeline was blocked for good."""
    with server_database("postgresql") as url:
        execute(url, "CREATE TABLE pay (id int PRIMARY KEY, v double precision, "
                     "updated_at timestamp NOT NULL)",
                "INSERT INTO pay VALUES (1, 1.5, '2024-01-01'), (2, 2.5, '2024-01-01')")
        one_table(project_dir, url, "pay", "columns:\n  - {name: id, type: integer}\n"
                                           "  - {name: v, type: 'decimal(12,2)'}\n",
                  cursor="updated_at")
        first = run_json("--pipeline", "pay", "--no-dbt")["pay"]
        execute(url, "UPDATE pay SET v = 'NaN', updated_at = '2024-02-01' WHERE id = 1")
        failed = run_json("--pipeline", "pay", "--no-dbt")["pay"]
        execute(url, "UPDATE pay SET v = 3.5, updated_at = '2024-03-01' WHERE id = 1")
        released = cli("release", "--pipeline", "pay", "--load-id", str(failed["load_id"]),
                       "--reason", "NaN fixed at the source")
        after = run_json("--pipeline", "pay", "--no-dbt")["pay"]

    assert first["status"] == "success", first["error"]
    assert failed["status"] == "quarantined", failed["error"]
    assert (f"pay: transform: batch {failed['load_id']} quarantined: pipelines/pay.yml: "
            "transform.sql: Conversion Error: Could not cast value nan to DECIMAL(12,2)"
            ) in failed["error"], failed["error"]
    assert released.exit_code == 0, released.output
    assert after["status"] == "success", after["error"]
    assert landed(project_dir, "SELECT id, CAST(v AS VARCHAR) FROM landing.pay ORDER BY id") == [
        (1, "3.50"), (2, "2.50")]


# As long as names go: PostgreSQL keeps 63 characters, MariaDB 64.
LONG_NAMES = {"postgresql": "a" * 53 + "_long_name", "mariadb": "b" * 54 + "_long_name"}


@pytest.mark.integration
@pytest.mark.parametrize(("server", "slow"), [("postgresql", False), ("postgresql", True),
                                              ("mariadb", False)],
                         ids=["postgresql-adbc", "postgresql-row-by-row", "mariadb"])
def test_a_column_named_as_long_as_the_server_allows_lands_with_its_values(
        server: str, slow: bool, project_dir: Path) -> None:
    """SQLAlchemy cut the labels of its subqueries past 57 characters (`name[:57] + '_1'`): a
    58-to-63-character PostgreSQL column was read under the cut name, its declared twin landed
    all NULL, and the run said success (reconcile, reading the same way, said equal)."""
    long = LONG_NAMES[server]
    quoted = f'"{long}"' if server == "postgresql" else f"`{long}`"
    extra = ", doc tsvector" if slow else ""
    with server_database(server) as url:
        execute(url, f"CREATE TABLE longc (id int PRIMARY KEY, {quoted} varchar(20), "
                     f"ts timestamp NOT NULL{extra})",
                f"INSERT INTO longc (id, {quoted}, ts) VALUES (1, 'kept', '2024-01-01 00:00:00'),"
                f" (2, NULL, '2024-01-02 00:00:00')")
        one_table(project_dir, url, "longc", "columns:\n  - {name: id, type: integer}\n"
                  f"  - {{name: {long}, type: string}}\n  - {{name: ts, type: timestamp}}\n",
                  cursor="ts")
        first = run_json("--pipeline", "longc", "--no-dbt")["longc"]
        execute(url, f"INSERT INTO longc (id, {quoted}, ts) VALUES (3, 'later', '2024-02-01')")
        second = run_json("--pipeline", "longc", "--no-dbt")["longc"]

    assert first["status"] == "success", first["error"]
    assert second["status"] == "success", second["error"]
    assert landed(project_dir, f'SELECT id, "{long}" FROM landing.longc ORDER BY id') == \
        [(1, "kept"), (2, None), (3, "later")]
    assert [c for (c,) in landed(project_dir, "SELECT column_name FROM information_schema.columns "
                                              "WHERE table_name = 'longc'")
            if c.startswith(long[:20])] == [long]


@pytest.mark.integration
def test_a_source_column_named_like_the_frameworks_own_is_refused_before_a_row_is_read(
        project_dir: Path) -> None:
    """The source's `_LOAD_ID` (`_load_id` in the lake) would hide the framework's own: refused
    by the extract, before dlt reads (a batch holding it would wait in the lake for good), and
    once renamed in source.query the table lands."""
    with server_database("postgresql") as url:
        execute(url, 'CREATE TABLE ev (id int PRIMARY KEY, "_LOAD_ID" text, ts timestamp NOT NULL)',
                "INSERT INTO ev VALUES (1, 'AAA', '2024-01-01'), (2, 'BBB', '2024-01-02')")
        one_table(project_dir, url, "ev", cursor="ts")
        refused = run_json("--pipeline", "ev", "--no-dbt")["ev"]
        (project_dir / "pipelines" / "ev.yml").write_text(
            "name: ev\nsource:\n  connection: lab\n  query: 'SELECT id, \"_LOAD_ID\" AS "
            "source_load_id, ts FROM ev'\n  primary_key: [id]\n  incremental: {cursor: ts}\n"
            "lake:\n  path: ev\n")
        landed_now = run_json("--pipeline", "ev", "--no-dbt")["ev"]

    assert refused["status"] == "failed"
    assert refused["error"] == (
        "ev: extract: pipelines/ev.yml: source: column '_LOAD_ID' ('_load_id' in the lake) is "
        "one the framework writes on every landing row (_load_id, _loaded_at, _deleted_at); "
        "rename it in source.query or the transform (SELECT ... \"_LOAD_ID\" AS source_load_id)")
    assert refused["rows_extracted"] == 0
    assert landed_now["status"] == "success", landed_now["error"]
    assert landed(project_dir, "SELECT id, source_load_id FROM landing.ev ORDER BY id") == \
        [(1, "AAA"), (2, "BBB")]


@pytest.mark.integration
def test_a_table_named_with_a_percent_sign_reconciles_its_deletes(project_dir: Path) -> None:
    """`Sales 100%` quoted by the dialect was `"Sales 100%%"` (pyformat's escape), then doubled
    again by the text query: the extract and load passed and every run failed at reconcile with
    `relation "Sales 100%%" does not exist`; the no-change pre-check skipped itself silently."""
    with server_database("postgresql") as url:
        execute(url, 'CREATE TABLE "Sales 100%" (id int PRIMARY KEY, ts timestamp NOT NULL)',
                "INSERT INTO \"Sales 100%\" SELECT g, timestamp '2024-01-01' + g * interval '1 day' "
                "FROM generate_series(1, 4) g")
        (project_dir / "sources" / "lab.yml").write_text(f"name: lab\nurl: {url}\n")
        (project_dir / "pipelines" / "pct.yml").write_text(
            "name: pct\nsource:\n  connection: lab\n  table: Sales 100%\n  primary_key: [id]\n"
            "  incremental: {cursor: ts}\nlake:\n  path: pct\n"
            "deletes: {reconcile: remove, max_fraction: 0.5}\n")
        first = run_json("--pipeline", "pct", "--no-dbt")["pct"]
        execute(url, 'DELETE FROM "Sales 100%" WHERE id = 2')
        second = run_json("--pipeline", "pct", "--no-dbt")["pct"]

    assert first["status"] == "success", first["error"]
    assert second["status"] == "success", second["error"]
    assert landed(project_dir, "SELECT id FROM landing.pct ORDER BY id") == [(1,), (3,), (4,)]


@pytest.mark.integration
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_query_with_a_mistake_is_named_as_the_pipelines_source_query(
        server: str, project_dir: Path) -> None:
    """A typo in source.query read `extract: SyntaxError: syntax error at or near "FROM"`,
    naming neither the file nor the key (on SQLite it read as `cannot connect`)."""
    with server_database(server) as url:
        execute(url, "CREATE TABLE t (id int PRIMARY KEY, v int)")
        (project_dir / "sources" / "lab.yml").write_text(f"name: lab\nurl: {url}\n")
        for name, query in [("typo", "SELECT id, FROM t"), ("column", "SELECT id, nope FROM t")]:
            (project_dir / "pipelines" / f"{name}.yml").write_text(
                f"name: {name}\nsource:\n  connection: lab\n  query: '{query}'\n"
                f"  primary_key: [id]\nlake:\n  path: {name}\n")
        records = run_json("--pipeline", "typo", "--pipeline", "column", "--no-dbt")

    for name in ("typo", "column"):
        assert records[name]["status"] == "failed"
        assert records[name]["error"].startswith(f"{name}: extract: pipelines/{name}.yml: "
                                                 "source.query: "), records[name]["error"]


@pytest.mark.integration
def test_columns_one_in_the_lake_are_named_with_the_fix(project_dir: Path) -> None:
    """`"Name"` and `name` (or `a.b` and `a_b`) are one column in the lake: the error was cut to
    `NameNormalizationCollision: ... normalized from:`, naming no column."""
    with server_database("postgresql") as url:
        execute(url, 'CREATE TABLE dup (id int PRIMARY KEY, "Name" text, name text, "a.b" int, '
                     "a_b int)", "INSERT INTO dup VALUES (1, 'A', 'a', 1, 2)")
        one_table(project_dir, url, "dup")
        record = run_json("--pipeline", "dup", "--no-dbt")["dup"]

    assert record["status"] == "failed"
    assert record["error"] == (
        "dup: extract: columns of the source have one name in the lake (dlt's snake_case "
        "names): 'Name' and 'name' are all 'name'; 'a.b' and 'a_b' are all 'a_b'; rename all "
        "but one in source.query (SELECT ... \"Name\" AS name_2)")


@pytest.mark.integration
def test_a_source_column_named_like_the_frameworks_own_may_be_renamed_by_the_transform(
        project_dir: Path) -> None:
    """The extract refused the table though its transform renames the column; the loaders
    check what the transform outputs."""
    with server_database("postgresql") as url:
        execute(url, "CREATE TABLE ev (id int PRIMARY KEY, _loaded_at text, ts timestamp NOT NULL)",
                "INSERT INTO ev VALUES (1, 'then', '2024-01-01')")
        one_table(project_dir, url, "ev", "transform:\n  sql: SELECT id, _loaded_at AS "
                  "source_loaded_at, ts FROM batch\n", cursor="ts")
        record = run_json("--pipeline", "ev", "--no-dbt")["ev"]

    assert record["status"] == "success", record["error"]
    assert landed(project_dir, "SELECT id, source_loaded_at FROM landing.ev") == [(1, "then")]


@pytest.mark.integration
@pytest.mark.parametrize("array", [False, True], ids=["arrow", "row-by-row"])
def test_postgresql_session_settings_of_the_database_change_no_value(
        array: bool, project_dir: Path) -> None:
    """A database (or role) set to `extra_float_digits = 0` renders floats to 15 digits (6 for
    `real`), and one set to `DateStyle = 'SQL, DMY'` hands dates over as '01/06/2026', which
    psycopg refuses: both were read with the session's settings, so values were rounded, or the
    extract failed. The framework's sessions pin them, as they pin the time zone."""
    doubles = [1.0000000000000002, 6.02214076e23, 1.5e-12]
    with server_database("postgresql") as url:
        base, name = url.rsplit("/", 1)
        execute(f"{base}/postgres", *(f"ALTER DATABASE {name} SET {setting}" for setting in (
            "extra_float_digits = 0", "DateStyle = 'SQL, DMY'",
            "IntervalStyle = 'sql_standard'")))
        execute(url, "CREATE TABLE readings (id int PRIMARY KEY, d double precision, r real, "
                     f"day date{', tags int[]' if array else ''})",
                *(f"INSERT INTO readings (id, d, r, day) VALUES ({i}, {d!r}, 1.2345678, "
                  "'2026-06-01')" for i, d in enumerate(doubles)))
        one_table(project_dir, url, "readings")
        records = run_json("--pipeline", "readings", "--no-dbt")

    assert records["readings"]["status"] == "success", records["readings"]["error"]
    rows = landed(project_dir, "SELECT d, r, day FROM landing.readings ORDER BY id")
    assert [row[0] for row in rows] == doubles
    assert {(row[1], row[2]) for row in rows} == {(1.2345678, dt.date(2026, 6, 1))}


@pytest.mark.integration
def test_jsonb_and_array_columns_run_without_dlts_conversion_warnings(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A jsonb column printed one dlt warning on every run, an array three (its JSON text
    differs from the json type dlt reflected), none of them anything to act on."""
    import io
    import logging

    from framework import api, logs

    console = io.StringIO()
    monkeypatch.chdir(project_dir)
    with server_database("postgresql") as url:
        execute(url, "CREATE TABLE docs (id int PRIMARY KEY, attrs jsonb, tags text[])",
                "INSERT INTO docs VALUES (1, '{\"k\": 1}', '{a,b}'), (2, NULL, '{}')")
        one_table(project_dir, url, "docs")
        try:
            logs.configure("console", stream=console)
            [record] = api.run(["docs"], dbt=False)
            logging.getLogger("dlt").warning("another warning of dlt's")
        finally:
            logs.configure("console")

    assert record.status == "success", record.error
    assert landed(project_dir, "SELECT attrs, tags FROM landing.docs ORDER BY id") == [
        ('{"k": 1}', '["a","b"]'), (None, "[]")]
    assert [line for line in console.getvalue().splitlines() if "dlt" in line] == [
        "warning: dlt: another warning of dlt's"]


@pytest.mark.integration
def test_a_postgresql_float_array_keeps_nan_and_infinities(project_dir: Path) -> None:
    """JSON has no NaN or infinity: dlt wrote them into an array's JSON as null, so
    '{1.5,NaN,Infinity}' landed as [1.5, null, null], the run saying success. Read as the
    server's JSON instead, they are its strings."""
    with server_database("postgresql") as url:
        execute(url, "CREATE TABLE readings (id int PRIMARY KEY, xs float8[], rs real[])",
                "INSERT INTO readings VALUES (1, '{1.5,NaN,Infinity,-Infinity,NULL}', "
                "'{0.1,NaN}'), (2, NULL, '{}')")
        one_table(project_dir, url, "readings")
        records = run_json("--pipeline", "readings", "--no-dbt")

    assert records["readings"]["status"] == "success", records["readings"]["error"]
    rows = landed(project_dir, "SELECT xs, rs FROM landing.readings ORDER BY id")
    assert [tuple(None if v is None else json.loads(v) for v in row) for row in rows] == [
        ([1.5, "NaN", "Infinity", "-Infinity", None], [0.1, "NaN"]), (None, [])]


@pytest.mark.integration
@pytest.mark.parametrize("new", ["100000.5", "1.0000001"])
def test_a_float_changed_in_a_row_with_no_cursor_is_read(project_dir: Path, new: str) -> None:
    """MariaDB's text protocol prints a FLOAT with six significant digits: the pre-check read
    100000.5 as 100000.0, the digest of the value the extract had read, and skipped the
    change (found by a review)."""
    with server_database("mariadb") as url:
        execute(url, "CREATE TABLE visits (id int PRIMARY KEY, amt FLOAT, updated_at datetime "
                     "NULL)", "INSERT INTO visits VALUES (1, 1, '2024-01-02 00:00:00'), "
                     "(2, 100000, NULL)")
        visits_with_null_cursors_included(project_dir, url)
        run_json("--pipeline", "visits", "--no-dbt")
        execute(url, f"UPDATE visits SET amt = {new} WHERE id = 2")
        changed = run_json("--pipeline", "visits", "--no-dbt")["visits"]

    assert changed["rows_extracted"] == 1, changed
    assert landed(project_dir, "SELECT amt FROM landing.visits WHERE id = 2")[0][0] == \
        pytest.approx(float(new), rel=1e-7)
