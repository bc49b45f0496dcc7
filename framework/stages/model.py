"""Model: `dbt build` of the selections the loaded pipelines name, on the target's warehouse."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from framework.errors import StageError
from framework.faults import kill_once
from framework.settings.envvars import redact
from framework.settings.targets import Target
from framework.stages.dbt_results import NodeIssue, read_issues, skipped_models


class Project(Protocol):
    """What a build needs of the project: the dbt project's folder and the run state folder
    (`framework.project.Project` is one; the stage never imports it)."""

    @property
    def dbt_dir(self) -> Path: ...

    @property
    def state_dir(self) -> Path: ...


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


@dataclass
class Orphans:
    """Rows of one relationship whose parent row is missing (marts.mart_orphans)."""

    relationship: str
    child_rows_name: str
    parent_name: str
    measure: str
    orphan_rows: int
    total_rows: int
    orphan_share: float | None

    def line(self) -> str:
        share = "" if self.orphan_share is None else \
            f" ({self.orphan_share:.1%} of {self.measure})"
        return (f"orphans: {self.orphan_rows:,} {self.child_rows_name}{share} have no "
                f"{self.parent_name} row")


@dataclass
class DbtBuild:
    """One `dbt build` of a run: shared by every pipeline whose models it built."""

    selections: list[str]
    status: str = "success"  # success | failed
    seconds: float = 0.0
    built: list[str] = field(default_factory=list)
    failures: list[NodeIssue] = field(default_factory=list)  # blocking: the build failed
    warnings: list[NodeIssue] = field(default_factory=list)  # warn-severity tests
    skipped: list[str] = field(default_factory=list)  # not built: a failure upstream
    orphans: list[Orphans] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # landing tables not loaded yet
    error: str | None = None
    target_dir: Path | None = None

    def summary(self) -> dict[str, Any]:
        return {"status": self.status, "seconds": round(self.seconds, 3),
                "selections": self.selections, "models_built": len(self.built),
                "failures": [f.summary() for f in self.failures],
                "warnings": [w.summary() for w in self.warnings], "skipped": self.skipped,
                "orphans": [asdict(o) | {"line": o.line()} for o in self.orphans],
                "waiting": self.waiting, "error": self.error}


def build(project: Project, target: Target, selections: list[str],
          warn: Callable[[str], None] = lambda _: None) -> list[str]:
    """Run `dbt build --select ...`; return the models built, or raise with every blocking
    failure named (see `run_build`)."""
    result = run_build(project, target, selections, warn)
    if result.status != "success":
        raise StageError("dbt", "build", result.error or "dbt build failed")
    return result.built


def run_build(project: Project, target: Target, selections: list[str],
              warn: Callable[[str], None] = lambda _: None, full_refresh: bool = False
              ) -> DbtBuild:
    """Run `dbt build --select ...` (and the seeds); say what it built, what failed and what
    warned, in full, and the orphans mart_orphans counts. `full_refresh` rebuilds the
    incremental models whole (`framework run --full-refresh`).

    dbt runs in its own process: dbt-duckdb keeps the warehouse file open for the life of the
    process that ran it, which would lock out the next stage (or another run) otherwise.
    Models that read a landing table no pipeline has loaded yet wait (with a warning) for the
    run that loads it, instead of failing this one.
    """
    if target.warehouse.type == "snowflake":
        from framework.extras import require

        require("dbt.adapters.snowflake", "dbt on the Snowflake warehouse")
    started = time.perf_counter()
    result = DbtBuild(list(selections))
    work = project.state_dir / "dbt" / target.name
    result.target_dir = work / "target"
    unloaded = unloaded_sources(project, target)
    args = [
        # Seeds (reference tables such as the category translation) are built with any
        # selection: the models read them, and they cost nothing.
        sys.executable, "-m", "dbt.cli.main", "build", "--select", *selections,
        "resource_type:seed",
        *(["--exclude", *unloaded] if unloaded else []),
        "--project-dir", str(project.dbt_dir), "--profiles-dir", str(project.dbt_dir),
        "--target", target.dbt_target_name,
        # Tests that also read models outside the selection wait for the run that builds them.
        "--indirect-selection", "cautious",
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
        "--log-level", "none", "--log-level-file", "info", "--no-use-colors",
        *(["--full-refresh"] if full_refresh else []),
    ]
    results_file = work / "target" / "run_results.json"
    try:
        results_file.unlink(missing_ok=True)
    except OSError as exc:  # dbt could not write its results there either: said, models owed
        raise StageError("dbt", "build", f"dbt's target folder {results_file.parent} cannot be "
                         f"written ({exc.strerror}): make it writable, or free space in the "
                         "state folder") from None
    env = {**os.environ, **dbt_environment(target)}
    log = work / "logs" / "dbt.log"
    log_start = log.stat().st_size if log.is_file() else 0
    kill_once("dbt_build", _first_node_built(log))
    process = subprocess.run(args, check=False, env=env, capture_output=True, text=True,
                             preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    waiting = waiting_tables(work / "target" / "manifest.json", selections, unloaded)
    if waiting:
        result.waiting = sorted(waiting)
        warn(f"dbt: models reading {', '.join(waiting)} wait until those tables are loaded "
             "(run their pipelines)")
    try:
        if not results_file.is_file():
            reason = [line for line in (process.stderr or process.stdout or "").strip()
                      .splitlines() if "Warning" not in line]
            result.status = "failed"
            result.error = redact(reason[-1] if reason else _logged_error(log, log_start) or
                                  f"dbt exited with status {process.returncode}")
            return result
        result.failures, result.warnings, result.built = read_issues(work / "target")
        result.skipped = skipped_models(work / "target")
        if result.failures or process.returncode != 0:
            result.status = "failed"
            listed = "; ".join(f.line() for f in result.failures) or \
                f"dbt exited with status {process.returncode}"
            if _OUTDATED.search(listed):
                listed += ("; an incremental model's table was built by an older version of "
                           "its SQL: rebuild it once with `dbt build --full-refresh --select "
                           "<model>`, or `framework run --full-refresh` (which re-extracts "
                           "every source too)")
            result.error = redact(f"{len(result.failures)} blocking failure(s): {listed} "
                                  f"(log: {work / 'logs' / 'dbt.log'})")
        result.orphans = read_orphans(target)
        return result
    finally:
        result.seconds = time.perf_counter() - started


# dbt's words for an incremental model whose table an older version of its SQL built (a
# column added since: `on_schema_change: fail`, or a filter on a column the table lacks).
_OUTDATED = re.compile(r"schemas on this incremental model are out of sync"
                       r"|Referenced column \"(built_at|loaded_at)\" not found"  # DuckDB
                       r"|invalid identifier '(built_at|loaded_at)'", re.IGNORECASE)  # Snowflake


def _logged_error(log: Path, start: int) -> str | None:
    """What this build's log says stopped dbt before any node ran (a compile error: a model
    naming a source nobody declared, two tests of one name): dbt prints nothing at
    `--log-level none`, so the run said only 'dbt exited with status 2'."""
    from framework.stages.dbt_results import said

    try:
        with log.open(encoding="utf-8", errors="replace") as handle:
            handle.seek(start)
            lines = handle.read().splitlines()
    except OSError:
        return None
    for index in range(len(lines) - 1, -1, -1):
        if "[error]" in lines[index]:
            block = [lines[index].split("]:", 1)[-1].strip()]
            for line in lines[index + 1:]:
                if re.match(r"^\d\d:\d\d:\d\d", line):
                    break
                block.append(line)
            text = " ".join(said([b for b in block if b.strip() and
                                  b.strip() != "Encountered an error:"])[:2])
            return f"dbt: {text} (log: {log})" if text else None
    return None


ORPHANS_SQL = ("SELECT relationship, child_rows_name, parent_name, measure, orphan_rows, "
               "total_rows, orphan_share FROM marts.mart_orphans ORDER BY relationship_order")


def read_orphans(target: Target) -> list[Orphans]:
    """The relationships with orphans, from marts.mart_orphans (none while it is not built)."""
    from framework.stages.load import warehouse_for

    warehouse = warehouse_for(target)
    try:
        if not warehouse.exists("marts", "mart_orphans"):
            return []
        rows = warehouse.query(ORPHANS_SQL)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - the counts inform; they never fail a run
        return []
    finally:
        warehouse.close()
    return [Orphans(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]),
                    None if r[6] is None else float(r[6])) for r in rows if int(r[4])]


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
    from framework.spec.checks import read_dbt_yaml
    from framework.stages.load import warehouse_for

    declared: dict[str, tuple[str, str]] = {}
    for path in sorted((project.dbt_dir / "models").rglob("*.yml")):
        data = read_dbt_yaml(path)  # guarded: validate skips a refused file, so must this
        if not isinstance(data, dict):
            continue
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


def waiting_tables(manifest_file: Path, selections: list[str],
                   unloaded: dict[str, str]) -> list[str]:
    """The unloaded tables that models of this run's selection read: models of pipelines
    outside the selection (the demo's, beside a user's source) are not this run's concern.
    Selectors this reading does not follow (paths, globs, set operators) count every table."""
    if not unloaded:
        return []
    manifest = read_manifest(manifest_file)
    selected = selected_nodes(manifest, selections) if manifest else None
    if manifest is None or selected is None:
        return list(unloaded.values())
    waiting = []
    for selector, table in unloaded.items():
        ids = {i for i, s in manifest["sources"].items()
               if f"source:{s.get('source_name')}.{s.get('name')}+" == selector}
        if _walk(ids, manifest["child_map"]) & selected:
            waiting.append(table)
    return waiting


def read_manifest(path: Path) -> dict[str, Any] | None:
    """dbt's manifest.json (nodes, sources and the graph), or None if missing or unreadable."""
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
        for key in ("nodes", "sources", "child_map", "parent_map"):
            manifest[key]  # a manifest without these is no use
    except (OSError, ValueError, KeyError):
        return None
    return manifest


def selected_nodes(manifest: dict[str, Any], selections: list[str]) -> set[str] | None:
    """Node ids `--select <selections>` names, for the selector forms pipelines use (`name`,
    `name+`, `+name`, `tag:x`, with graph operators); None for any other form (dbt's to say)."""
    nodes = manifest["nodes"]
    selected: set[str] = set()
    for selector in selections:
        text = selector.strip()
        base = text.strip("+")
        if not base or any(ch in base for ch in "*,:@ ") and not (
                base.startswith("tag:") and not any(ch in base[4:] for ch in "*,:@ ")):
            return None
        if base.startswith("tag:"):
            ids = {i for i, n in nodes.items() if base[4:] in (n.get("tags") or [])}
        else:
            ids = {i for i, n in nodes.items() if n.get("name") == base}
        selected |= ids
        if text.endswith("+"):
            selected |= _walk(ids, manifest["child_map"])
        if text.startswith("+"):
            selected |= _walk(ids, manifest["parent_map"])
    return selected


def _walk(start: set[str], graph: dict[str, list[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for found in graph.get(todo.pop(), []):
            if found not in seen:
                seen.add(found)
                todo.append(found)
    return seen
