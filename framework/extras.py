"""Optional parts of the install: which extra brings which module, and the one line that says so.

The core install reads SQL sources (SQLite built in) and files into a local lake and the DuckDB
warehouse. Every other part is an extra (pyproject.toml); an import of one goes through
`require`, and a module found missing anywhere else (a SQLAlchemy driver, dlt's s3fs) is named
by `missing_extra`, so a user sees the command that installs it instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from framework.errors import FrameworkError

DISTRIBUTION = "framework"

# Top-level module -> the extra that installs it.
EXTRA_OF_MODULE: dict[str, str] = {
    "psycopg": "postgres", "psycopg2": "postgres", "psycopg_binary": "postgres",
    "adbc_driver_postgresql": "postgres", "adbc_driver_manager": "postgres",
    "pymysql": "mysql", "MySQLdb": "mysql", "connectorx": "mysql",
    "s3fs": "s3", "boto3": "s3", "botocore": "s3", "aiobotocore": "s3",
    "snowflake": "snowflake",
    "pyspark": "spark", "py4j": "spark",
    "airflow": "airflow",
}
# Modules inside a namespace shared with the core install (dbt.adapters.duckdb is core).
EXTRA_OF_PREFIX: dict[str, str] = {"dbt.adapters.snowflake": "snowflake"}


class MissingExtra(FrameworkError):
    """An optional part is not installed; the message is one line with the install command."""

    def __init__(self, extra: str, needed_by: str, module: str) -> None:
        self.extra, self.module = extra, module
        super().__init__(f"{needed_by} needs the '{extra}' extra (module {module} is not "
                         f"installed): {install_command(extra)}")


def install_command(extra: str) -> str:
    return (f"pip install '{DISTRIBUTION}[{extra}]' (or, in a checkout, "
            f"uv sync --extra {extra})")


def extra_for(module: str) -> str | None:
    for prefix, extra in EXTRA_OF_PREFIX.items():
        if module == prefix or module.startswith(prefix + "."):
            return extra
    return EXTRA_OF_MODULE.get(module.split(".")[0])


def require(module: str, needed_by: str) -> ModuleType:
    """Import `module`, or raise MissingExtra naming the extra that installs it.

    Args:
        module: the dotted module name.
        needed_by: what needs it, for the message ("the Snowflake warehouse").
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        extra = extra_for(missing) or extra_for(module)
        if extra is None:
            raise
        raise MissingExtra(extra, needed_by, missing) from None


def missing_extra(exc: BaseException, needed_by: str = "this command") -> MissingExtra | None:
    """The MissingExtra behind an exception (anywhere in its chain), if a module of an extra
    is what was missing; None otherwise."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MissingExtra):
            return current
        if isinstance(current, ModuleNotFoundError) and current.name:
            extra = extra_for(current.name)
            if extra is not None:
                return MissingExtra(extra, needed_by, current.name)
        current = current.__cause__ or current.__context__
    return None
