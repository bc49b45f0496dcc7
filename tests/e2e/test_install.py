"""The package as a user gets it: the wheel, installed with the core dependencies alone into a
fresh environment outside this repository, starts a project of its own and runs the demo there.

Also the CI check of the core install: no extra (drivers, S3, Snowflake, Spark) is installed,
the demo still runs, and a source that needs an extra says which, in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from tests.conftest import ROOT, service_unavailable

EXTRAS_MODULES = ("psycopg", "pymysql", "connectorx", "adbc_driver_postgresql", "s3fs",
                  "boto3", "snowflake.connector", "pyspark", "dbt.adapters.snowflake")


def sh(*args: str | Path, cwd: Path, env: dict[str, str],
       ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=1200, check=False)
    if ok:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """(the environment's bin folder, a clean environment, the wheel)"""
    uv = shutil.which("uv")
    if uv is None:
        service_unavailable("uv is not on PATH")
    work = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FRAMEWORK_", "UV_PROJECT", "VIRTUAL_ENV", "UV_PYTHON",
                                "SHOP_DB_URL", "LAKE_URL", "DUCKDB_PATH", "PYTHONPATH"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    dist = work / "dist"
    sh(uv, "build", "--wheel", "--out-dir", dist, cwd=ROOT, env=env)
    [wheel] = dist.glob("framework-*.whl")
    requirements = work / "core.txt"  # the core dependencies at the lock's versions
    sh(uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
       "--output-file", requirements, cwd=ROOT, env=env)
    venv = work / "venv"
    sh(uv, "venv", venv, "--python", sys.executable, cwd=work, env=env)
    sh(uv, "pip", "install", "--python", venv / "bin" / "python", "-r", requirements, wheel,
       cwd=work, env=env)
    return venv / "bin", env, wheel


def test_the_wheel_carries_the_package_and_templates_only(
        installed: tuple[Path, dict[str, str], Path]) -> None:
    names = zipfile.ZipFile(installed[2]).namelist()
    outside = [n for n in names if not n.startswith(("framework/", "framework-0"))]
    assert outside == []
    assert not [n for n in names if n.endswith((".db", ".duckdb", ".parquet", ".sqlite"))
                or "/.framework/" in n or "/target/" in n]
    # the shop example is package data of `framework new`, not a project in site-packages
    assert "framework/templates/shop/pipelines/orders.yml" in names
    assert "framework/templates/project/dot-github/workflows/pipelines.yml" in names


def test_core_install_starts_a_project_and_runs_the_demo(
        installed: tuple[Path, dict[str, str], Path], tmp_path: Path) -> None:
    bin_dir, env, _ = installed
    probe = tmp_path / "probe.py"
    probe.write_text("import importlib.util, sys\n"
                     f"for m in {EXTRAS_MODULES!r}:\n"
                     "    try:\n        found = importlib.util.find_spec(m)\n"
                     "    except ModuleNotFoundError:\n        found = None\n"
                     "    print(m, found is not None)\n")
    found = sh(bin_dir / "python", probe, cwd=tmp_path, env=env).stdout
    assert "True" not in found, found  # the core install has no extra

    framework = bin_dir / "framework"
    sh(framework, "new", "analytics", "--example", "shop", cwd=tmp_path, env=env)
    project = tmp_path / "analytics"
    for part in ("framework.yml", ".env.example", "pipeline.schema.json", "sources/shop.yml",
                 "pipelines/orders.yml", "quality/orders.yml", "dbt_ecommerce/profiles.yml",
                 ".github/workflows/pipelines.yml", ".pre-commit-config.yaml"):
        assert (project / part).is_file(), part
    demo = sh(framework, "demo", cwd=project, env=env)
    assert "top category" in demo.stdout

    shop = sa.create_engine(f"sqlite:///{project / '.framework' / 'shop.db'}")
    with shop.connect() as conn:
        orders = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
    shop.dispose()
    con = duckdb.connect(str(project / ".framework" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM landing.orders").fetchone() == (orders,)
        assert con.execute("SELECT count(*) FROM marts.fact_orders").fetchone() == (orders,)
    finally:
        con.close()

    # A PostgreSQL source needs the `postgres` extra: one line says how to add it.
    env_pg = {**env, "SHOP_DB_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"}
    missing = sh(framework, "run", "--pipeline", "orders", "--no-dbt", cwd=project, env=env_pg,
                 ok=False)
    assert missing.returncode == 1
    assert ("needs the 'postgres' extra (module psycopg is not installed): "
            "pip install 'framework[postgres]'") in missing.stdout + missing.stderr
    assert "Traceback" not in missing.stdout + missing.stderr
