"""Optional parts: a missing extra is one line naming the command that installs it.

Airflow is the one extra the test environment leaves out (it has its own, see .ci/run), so it
is the real missing module here; tests/e2e/test_install.py checks a core-only install.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from framework.extras import MissingExtra, extra_for, missing_extra, require

AIRFLOW_LINE = ("the Airflow DAG factory needs the 'airflow' extra (module airflow.sdk is not "
                "installed): pip install 'framework[airflow]' (or, in a checkout, "
                "uv sync --extra airflow)")


@pytest.fixture
def no_airflow() -> None:
    # (an empty `airflow` namespace package ships with another dependency; its sdk does not)
    if importlib.util.find_spec("airflow.sdk") is not None:
        pytest.fail("airflow is installed in the test environment; it belongs in .venv-airflow")


def test_require_names_the_extra_and_its_install_command(no_airflow: None) -> None:
    with pytest.raises(MissingExtra) as raised:
        require("airflow.sdk", "the Airflow DAG factory")
    assert str(raised.value) == AIRFLOW_LINE
    assert raised.value.extra == "airflow"


def test_require_returns_an_installed_module() -> None:
    assert require("duckdb", "the warehouse").__name__ == "duckdb"


def test_missing_extra_finds_the_module_anywhere_in_the_chain(no_airflow: None) -> None:
    try:
        try:
            import airflow.sdk  # noqa: F401
        except ModuleNotFoundError as exc:
            raise RuntimeError("dlt could not load its config provider") from exc
    except RuntimeError as wrapped:
        found = missing_extra(wrapped, "the Airflow DAG factory")
    assert found is not None and str(found) == AIRFLOW_LINE


def test_missing_extra_leaves_other_errors_alone() -> None:
    try:
        import framework_no_such_module  # type: ignore[import-not-found]  # noqa: F401
    except ModuleNotFoundError as exc:
        assert missing_extra(exc) is None
    assert missing_extra(ValueError("x")) is None


def test_every_optional_driver_maps_to_its_extra() -> None:
    assert {m: extra_for(m) for m in ("psycopg", "pymysql", "s3fs", "snowflake.connector",
                                      "pyspark.sql", "dbt.adapters.snowflake",
                                      "dbt.adapters.duckdb", "duckdb")} == {
        "psycopg": "postgres", "pymysql": "mysql", "s3fs": "s3",
        "snowflake.connector": "snowflake", "pyspark.sql": "spark",
        "dbt.adapters.snowflake": "snowflake", "dbt.adapters.duckdb": None, "duckdb": None}


def test_a_driver_no_extra_brings_names_the_url_of_the_one_it_does() -> None:
    import sqlalchemy as sa

    # SQLAlchemy picks psycopg2 for `postgresql+psycopg2://`, MySQLdb for a bare `mysql://`;
    # the extras bring psycopg and PyMySQL, so the URL has to say so.
    for url, driver, extra, hint in (
            ("postgresql+psycopg2://u@127.0.0.1/db", "psycopg2", "postgres",
             "postgresql+psycopg://..."),
            ("mysql://u@127.0.0.1/db", "MySQLdb", "mysql", "mysql+pymysql://...")):
        if importlib.util.find_spec(driver) is not None:
            pytest.fail(f"{driver} is installed; this test needs it absent")
        with pytest.raises(ModuleNotFoundError) as raised:
            sa.create_engine(url)
        found = missing_extra(raised.value, "source 'shop'")
        assert found is not None and str(found) == (
            f"source 'shop' needs the '{extra}' extra (module {driver} is not installed): "
            f"pip install 'framework[{extra}]' (or, in a checkout, uv sync --extra {extra}), "
            f"and a {hint} URL (the extra's driver)")


def test_a_script_without_a_file_imports_great_expectations_beside_pyspark() -> None:
    """With pyspark installed, Great Expectations imports pyspark.sql.connect, which exits 0
    from a `__main__` without a file (`python -c`, a script on stdin, a pytest-xdist worker),
    taking it for a doctest run, unless Spark Connect's own dependencies are installed: the
    spark extra brings them (pyspark[connect]). Before, such a script stopped there, silently."""
    done = subprocess.run([sys.executable, "-c", "import great_expectations; print('imported')"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "imported"), done.stderr[-2000:]
