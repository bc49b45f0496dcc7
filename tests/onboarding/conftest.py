"""A table the project has never seen, in a fresh SQLite file or a PostgreSQL database, reached
through a new connection file (`sources/loyalty.yml`, URL from LOYALTY_DB_URL)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import service_unavailable

TABLE = "loyalty_accounts"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
START = dt.datetime(2024, 1, 1, 9, 30, 0, 123456)


def loyalty_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        TABLE, metadata,
        sa.Column("account_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(120), nullable=False),
        sa.Column("tier", sa.String(10)),
        sa.Column("points", sa.Integer),
        sa.Column("lifetime_points", sa.BigInteger),
        sa.Column("balance", sa.Numeric(10, 2)),
        sa.Column("score", sa.Float),
        sa.Column("active", sa.Boolean),
        sa.Column("opened_on", sa.Date),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("modified_at", sa.DateTime, nullable=False),
    )


def account(number: int, modified: dt.datetime) -> dict[str, Any]:
    return {"account_id": number, "email": f"  member{number}@example.com ",
            "tier": ("bronze", "silver", "gold", None)[number % 4],
            "points": number * 10, "lifetime_points": 10_000_000_000 + number,
            "balance": Decimal(number) / 4, "score": number / 3, "active": number % 2 == 0,
            "opened_on": dt.date(2023, 1, 1) + dt.timedelta(days=number),
            "created_at": START, "modified_at": modified}


def insert_accounts(url: str, numbers: range, modified: dt.datetime | None = None) -> None:
    engine = sa.create_engine(url)
    table = loyalty_table(sa.MetaData())
    with engine.begin() as conn:
        conn.execute(table.insert(), [account(n, modified or START + dt.timedelta(minutes=n))
                                      for n in numbers])
    engine.dispose()


def create_source(url: str, rows: int = 25) -> None:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    loyalty_table(metadata)
    metadata.create_all(engine)
    engine.dispose()
    insert_accounts(url, range(1, rows + 1))


def connect_project(project: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new connection file, its URL from the environment as the shipped one's is."""
    (project / "sources" / "loyalty.yml").write_text(
        "name: loyalty\ndescription: The loyalty programme's database.\n"
        "url: ${LOYALTY_DB_URL}\n")
    monkeypatch.setenv("LOYALTY_DB_URL", url)


@pytest.fixture
def sqlite_source(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'loyalty.db'}"
    create_source(url)
    connect_project(project_dir, url, monkeypatch)
    return url


@pytest.fixture
def postgres_source(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"loyalty_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_unavailable(f"postgresql at {POSTGRES}: {str(exc).splitlines()[0]}")
    url = f"{POSTGRES}/{name}"
    try:
        create_source(url)
        connect_project(project_dir, url, monkeypatch)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def new_source(request: pytest.FixtureRequest) -> str:
    """The never-seen table, in each kind of database."""
    return str(request.getfixturevalue(f"{request.param}_source"))
