"""Named source connections from `sources/<name>.yml`; URLs come from the environment."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from framework.settings.envvars import register_secret


class Backend(StrEnum):
    auto = "auto"
    pyarrow = "pyarrow"
    connectorx = "connectorx"
    sqlalchemy = "sqlalchemy"


class Connection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    name: str = Field(description="Connection name used by pipeline files.")
    description: str = ""
    url: str = Field(description="SQLAlchemy URL, usually `${SOME_ENV_VAR:-default}`.")
    backend: Backend = Field(
        default=Backend.auto,
        description="How rows are read: `auto` picks the fastest Arrow reader for the database.",
    )

    @field_validator("url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        # An unparsable URL or an unknown dialect surfaced as SQLAlchemy's ArgumentError or
        # NoSuchModuleError at the first connection. The URL itself is not echoed: it may
        # hold a password.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ValueError("not a database URL (dialect+driver://user:password@host:port/"
                             "database, or sqlite:///path/to/file.db)") from None
        try:
            parsed.get_dialect()
        except NoSuchModuleError:
            raise ValueError(f"unknown database '{parsed.drivername}' (SQLAlchemy has no "
                             "dialect of that name installed)") from None
        if "@" in (parsed.host or ""):  # user:p@ss@host: the host would hold the password's end
            raise ValueError("the URL's user or password holds an '@': percent-encode it as "
                             "%40 (user:p%40ss@host)")
        return url

    def model_post_init(self, context: object, /) -> None:
        for secret in self.secrets:
            register_secret(secret)

    @property
    def secrets(self) -> list[str]:
        """The URL's password and its secret query values (`?password=`, `sslpassword`, a
        key's passphrase), as given and as decoded."""
        from urllib.parse import quote

        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.url)
        except Exception:  # noqa: BLE001 - an unparsable URL is reported when it is used
            return []
        values = [url.password or ""]
        for key, value in url.query.items():
            if _SECRET_QUERY_KEY.search(key):
                values += [value] if isinstance(value, str) else list(value)
        return [v for value in values if value for v in {value, quote(value, safe="")}]

    @property
    def safe_url(self) -> str:
        """The URL with its password and secret query values hidden, for messages."""
        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.url)
            hidden = {k: "***" for k in url.query if _SECRET_QUERY_KEY.search(k)}
            return url.update_query_dict(hidden).render_as_string(hide_password=True) \
                .replace("%2A%2A%2A", "***")
        except Exception:  # noqa: BLE001 - a message must not fail on the URL it names
            return "<unparsable URL>"

    def not_set_up(self) -> str | None:
        """Why the connection's database has never been set up (a SQLite file not created yet,
        such as the demo shop before `framework demo`), or None. Connecting would create an
        empty file, so callers ask first."""
        from pathlib import Path

        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.url)
        except Exception:  # noqa: BLE001 - an unparsable URL is reported when it is used
            return None
        database = url.database or ""
        if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or \
                database.startswith("file:") or Path(database).is_file():
            return None
        hint = " (framework demo creates it)" if self.name == "shop" else ""
        return f"no database file {database}{hint}"

    @property
    def dialect(self) -> str:
        return self.url.split(":", 1)[0].split("+", 1)[0]

    def engine(self) -> Any:
        """A SQLAlchemy engine for this source whose every session is in UTC (see utc_sessions)."""
        import sqlalchemy as sa

        # Labels as long as the server's names: SQLAlchemy cuts a subquery's labels past the
        # limit less 6 (`name[:57] + '_1'` on PostgreSQL's 63), and a column named that long
        # was read under the cut name (its declared twin landed all NULL).
        longer = {"max_identifier_length": LONGEST_LABEL, "label_length": LONGEST_LABEL} \
            if self.dialect in ("postgresql", "mysql", "mariadb") else {}
        return utc_sessions(sa.create_engine(self.url, **longer))


# Query parameters of a database URL that carry a secret (libpq's password, sslpassword;
# a key's passphrase; a token).
_SECRET_QUERY_KEY = re.compile(r"pass|secret|token|credential|private|key$", re.IGNORECASE)

# PostgreSQL names hold 63 characters, MySQL's 64; 6 more for SQLAlchemy's margin, and room.
LONGEST_LABEL = 134

# Every source session's settings, whatever the server, database or role sets: UTC (below);
# on PostgreSQL also floats in full (`extra_float_digits = 0` renders 15 digits, `real` 6) and
# dates and intervals in the spellings psycopg parses (`DateStyle = 'SQL, DMY'` otherwise).
SESSION_SETTINGS = {
    "postgresql": ("SET TIME ZONE 'UTC'", "SET extra_float_digits = 3",
                   "SET DateStyle = 'ISO, MDY'", "SET IntervalStyle = 'postgres'"),
    "mysql": ("SET time_zone = '+00:00'",), "mariadb": ("SET time_zone = '+00:00'",)}


def utc_sessions(engine: Any) -> Any:
    """`engine` with its sessions set as SESSION_SETTINGS says, in UTC first: the framework's
    naive timestamps are UTC, and a server (or database, or role) set to another zone would
    read a bound like '2026-06-01 10:00' in its own zone (rows between skipped for good), hand
    zoned values over as wall-clock times of that zone (a repeated autumn hour compares wrong),
    and a MySQL server convert TIMESTAMP values to it."""
    import sqlalchemy as sa

    statements = SESSION_SETTINGS.get(engine.dialect.name)
    if statements is not None:
        def in_utc(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                for statement in statements:
                    cursor.execute(statement)
            finally:
                cursor.close()
            dbapi_connection.commit()  # a SET in a transaction that rolls back is undone

        sa.event.listen(engine, "connect", in_utc)
    return engine
