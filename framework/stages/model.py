"""Model: `dbt build` of the selections the loaded pipelines name, on the target's warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from framework.errors import StageError
from framework.faults import kill_once
from framework.project import Project
from framework.settings.envvars import redact
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


def build(project: Project, target: Target, selections: list[str],
          warn: Callable[[str], None] = lambda _: None) -> list[str]:
    """Run `dbt build --select ...`; return the models built. One line per failed node.

    dbt runs in its own process: dbt-duckdb keeps the warehouse file open for the life of the
    process that ran it, which would lock out the next stage (or another run) otherwise.
    Models that read a landing table no pipeline has loaded yet wait (with a warning) for the
    run that loads it, instead of failing this one.
    """
    work = project.state_dir / "dbt" / target.name
    unloaded = unloaded_sources(project, target)
    if unloaded:
        warn(f"dbt: models reading {', '.join(unloaded.values())} wait until those tables "
             "are loaded (run their pipelines)")
    args = [
        sys.executable, "-m", "dbt.cli.main", "build", "--select", *selections,
        *(["--exclude", *unloaded] if unloaded else []),
        "--project-dir", str(project.dbt_dir), "--profiles-dir", str(project.dbt_dir),
        "--target", target.dbt_target_name,
        # Tests that also read models outside the selection wait for the run that builds them.
        "--indirect-selection", "cautious",
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
        "--log-level", "none", "--log-level-file", "info", "--no-use-colors",
    ]
    results_file = work / "target" / "run_results.json"
    results_file.unlink(missing_ok=True)
    env = {**os.environ, **dbt_environment(target)}
    kill_once("dbt_build", _first_node_built(work / "logs" / "dbt.log"))
    process = subprocess.run(args, env=env, capture_output=True, text=True,
                             preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    if not results_file.is_file():
        reason = [line for line in (process.stderr or process.stdout or "").strip().splitlines()
                  if "Warning" not in line]
        raise StageError("dbt", "build", redact(reason[-1] if reason else
                                                f"dbt exited with status {process.returncode}"))
    results = json.loads(results_file.read_text())["results"]
    failed = [r for r in results if r["status"] in ("error", "fail", "runtime error")]
    if failed or process.returncode != 0:
        details = "; ".join(f"{_node(r)}: {(r.get('message') or r['status']).splitlines()[0]}"
                            for r in failed[:3])
        raise StageError("dbt", "build", redact(f"{len(failed)} node(s) failed: {details} "
                                                f"(log: {work / 'logs' / 'dbt.log'})"))
    return [_node(r) for r in results if r["unique_id"].split(".")[0] in ("model", "snapshot")]


def _first_node_built(log: Path) -> Callable[[], bool]:
    """For the `dbt_build` kill point: true once this build's log names a finished node, so the
    run dies inside the build (some models built, others not)."""
    start = log.stat().st_size if log.is_file() else 0

    def reached() -> bool:
        if not log.is_file():
            return False
        with log.open("rb") as handle:
            handle.seek(start)
            return b" OK created " in handle.read()

    return reached


def _die_with_parent() -> None:
    """In dbt's process, before it starts: die when the run that started it dies. An orphaned
    dbt would go on holding the DuckDB warehouse file and writing the target folder beside the
    next run's build."""
    import ctypes
    import signal

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the run died before the line above
        os._exit(1)


def unloaded_sources(project: Project, target: Target) -> dict[str, str]:
    """dbt selector (`source:landing.orders+`) -> warehouse table, for each table of the dbt
    project's sources that is not in the warehouse yet."""
    import yaml

    from framework.stages.load import warehouse_for

    declared: dict[str, tuple[str, str]] = {}
    for path in sorted((project.dbt_dir / "models").rglob("*.yml")):
        data = yaml.load(path.read_text(encoding="utf-8"),
                         Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        for source in data.get("sources") or []:
            for table in source.get("tables") or []:
                where = (source.get("schema") or source["name"],
                         table.get("identifier") or table["name"])
                if not any("{{" in str(part) for part in where):  # Jinja: dbt's to resolve
                    declared[f"source:{source['name']}.{table['name']}+"] = where
    if not declared:
        return {}
    warehouse = warehouse_for(target)
    try:  # closed before dbt starts: DuckDB allows one writing process per file
        return {selector: f"{schema}.{table}" for selector, (schema, table) in declared.items()
                if not warehouse.exists(schema, table)}
    finally:
        warehouse.close()


def _node(result: dict[str, object]) -> str:
    return str(result["unique_id"]).rsplit(".", 1)[-1]
