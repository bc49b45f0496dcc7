"""Optional parts of the install: which extra brings which module, and the one line that says so.

The core install reads SQL sources (SQLite built in) and files into a local lake and the DuckDB
warehouse. Every other part is an extra (pyproject.toml); an import of one goes through
`require`, and a module found missing anywhere else (a SQLAlchemy driver, dlt's s3fs) is named
by `missing_extra`, so a user sees the command that installs it instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from framework.errors import FrameworkError, chain

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
# Drivers SQLAlchemy picks for some URLs that the extras do not bring: installing the extra is
# not enough, the URL must name the extra's driver.
URL_FOR_DRIVER: dict[str, str] = {"psycopg2": "postgresql+psycopg://...",
                                  "MySQLdb": "mysql+pymysql://..."}


class MissingExtra(FrameworkError):
    """An optional part is not installed; the message is one line with the install command."""

    def __init__(self, extra: str, needed_by: str, module: str) -> None:
        self.extra, self.module = extra, module
        url = URL_FOR_DRIVER.get(module.split(".")[0])
        super().__init__(f"{needed_by} needs the '{extra}' extra (module {module} is not "
                         f"installed): {install_command(extra)}"
                         + (f", and a {url} URL (the extra's driver)" if url else ""))


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
    for cause in chain(exc):
        if isinstance(cause, MissingExtra):
            return cause
        if isinstance(cause, ModuleNotFoundError) and cause.name:
            extra = extra_for(cause.name)
            if extra is not None:
                return MissingExtra(extra, needed_by, cause.name)
    return None
