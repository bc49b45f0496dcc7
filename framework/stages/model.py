"""Model: `dbt build` of the selections the loaded pipelines name, on the target's warehouse."""

from __future__ import annotations

import os
from pathlib import Path

from framework.errors import StageError
from framework.project import Project
from framework.settings.targets import Target


def dbt_environment(target: Target) -> dict[str, str]:
    """Variables `dbt_ecommerce/profiles.yml` reads, from the resolved target."""
    wh = target.warehouse
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    if wh.type == "duckdb" and wh.path:
        env["DUCKDB_PATH"] = wh.path
    values = {
        "SNOWFLAKE_ACCOUNT": wh.account, "SNOWFLAKE_USER": wh.user, "SNOWFLAKE_ROLE": wh.role,
        "SNOWFLAKE_WAREHOUSE": wh.warehouse, "SNOWFLAKE_DATABASE": wh.database,
        "SNOWFLAKE_HOST": wh.host, "SNOWFLAKE_PORT": str(wh.port) if wh.port else None,
        "SNOWFLAKE_PROTOCOL": wh.protocol, "SNOWFLAKE_PRIVATE_KEY_PATH": wh.private_key_path,
        "SNOWFLAKE_PASSWORD": wh.password.get_secret_value() if wh.password else None,
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": wh.private_key_passphrase.get_secret_value()
        if wh.private_key_passphrase else None,
    }
    if wh.type == "snowflake":
        env.update({k: v for k, v in values.items() if v})
    return env


def build(project: Project, target: Target, selections: list[str]) -> list[str]:
    """Run `dbt build --select ...`; return the models built. One line per failed node."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_environment(target))
    work = project.state_dir / "dbt" / target.name
    args = [
        "build", "--select", *selections,
        "--project-dir", str(project.dbt_dir), "--profiles-dir", str(project.dbt_dir),
        "--target", target.dbt_target_name,
        # Tests that also read models outside the selection wait for the run that builds them.
        "--indirect-selection", "cautious",
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
        "--log-level", "none", "--log-level-file", "info", "--no-use-colors",
    ]
    result = dbtRunner().invoke(args)
    if result.exception is not None:
        message = str(result.exception).strip().splitlines()
        raise StageError("dbt", "build", message[0] if message else repr(result.exception))
    nodes = list(result.result or [])
    failed = [n for n in nodes if str(getattr(n, "status", "")) in ("error", "fail")]
    if failed or not result.success:
        details = "; ".join(f"{n.node.name}: {(n.message or '').splitlines()[0] if n.message else n.status}"
                            for n in failed[:3])
        log = Path(work / "logs" / "dbt.log")
        raise StageError("dbt", "build", f"{len(failed)} node(s) failed: {details} (log: {log})")
    return [n.node.name for n in nodes if n.node.resource_type in ("model", "snapshot")]
