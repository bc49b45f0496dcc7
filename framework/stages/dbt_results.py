"""What a `dbt build` did, read from dbt's own artifacts (run_results.json, manifest.json).

Every failed or warning node in full, with a name a person reads (`relationships:
fact_orders.customer_id -> dim_customers.customer_id`, not the hashed node name), the model
and column it checks and the number of failing rows dbt counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FAILED = ("error", "fail", "runtime error")


@dataclass(frozen=True)
class NodeIssue:
    """One dbt node that did not pass: a test that failed or warned, a model that errored."""

    kind: str  # test | model | snapshot | seed
    node: str  # dbt's node name (hashed for some tests)
    name: str  # readable
    model: str | None
    column: str | None
    status: str  # fail | error | warn | skipped
    failures: int | None  # failing rows (tests)
    message: str

    def line(self) -> str:
        where = f"{self.model}.{self.column}" if self.model and self.column else self.model
        rows = f", {self.failures:,} failing row(s)" if self.failures else ""
        on = f" on {where}" if where and where not in self.name else ""
        text = f"{self.kind} {self.name}{on}: {self.status}{rows}"
        return text if self.failures else f"{text}: {self.message}"

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def read_issues(target_dir: Path) -> tuple[list[NodeIssue], list[NodeIssue], list[str]]:
    """(blocking failures, warnings, models and snapshots built) of the last build."""
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    manifest_file = target_dir / "manifest.json"
    nodes: dict[str, Any] = {}
    if manifest_file.is_file():
        nodes = json.loads(manifest_file.read_text()).get("nodes", {})
    failed, warned, built = [], [], []
    for result in results:
        uid, status = str(result["unique_id"]), str(result["status"])
        kind = uid.split(".", 1)[0]
        if status in FAILED:
            failed.append(_issue(result, nodes.get(uid, {})))
        elif status == "warn":
            warned.append(_issue(result, nodes.get(uid, {})))
        elif kind in ("model", "snapshot") and status == "success":
            built.append(uid.rsplit(".", 1)[-1])
    return failed, warned, built


def skipped_models(target_dir: Path) -> list[str]:
    """Models and snapshots the last build skipped: a blocking failure upstream of them."""
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    return [str(r["unique_id"]).rsplit(".", 1)[-1] for r in results
            if r["status"] == "skipped"
            and str(r["unique_id"]).split(".", 1)[0] in ("model", "snapshot")]


def said(lines: list[str]) -> list[str]:
    """dbt's message with its cause on the first line: 'Runtime Error in model stg_x (path)'
    says where, the next line ('Binder Error: Referenced column "discount" not found') why."""
    lines = [line.strip() for line in lines if line.strip()]
    if len(lines) > 1 and re.match(r"^(Runtime|Database|Compilation) Error in ", lines[0]):
        cause = next((line for line in lines[1:] if not line.startswith("compiled code at")),
                     None)
        if cause:
            return [f"{lines[0]}: {cause}", *lines[1:]]
    return lines


def _issue(result: dict[str, Any], node: dict[str, Any]) -> NodeIssue:
    uid = str(result["unique_id"])
    kind = uid.split(".", 1)[0]
    message = said((result.get("message") or result["status"]).strip().splitlines())
    failures = result.get("failures")
    if kind != "test":
        node_name = uid.rsplit(".", 1)[-1]
        return NodeIssue(kind, node_name, node_name, node_name, None,
                         str(result["status"]), None, message[0] if message else "")
    model = _attached(node)
    column = node.get("column_name")
    return NodeIssue("test", uid.split(".")[2], readable_test_name(node, uid), model, column,
                     str(result["status"]),
                     int(failures) if failures is not None else None,
                     message[0] if message else "")


def _attached(node: dict[str, Any]) -> str | None:
    attached = node.get("attached_node")
    if attached:
        return str(attached).rsplit(".", 1)[-1]
    refs = [n for n in (node.get("depends_on") or {}).get("nodes", []) if n.startswith("model.")]
    return refs[0].rsplit(".", 1)[-1] if len(refs) == 1 else None


def readable_test_name(node: dict[str, Any], uid: str) -> str:
    """`not_null: fact_orders.order_id`, `relationships: fact_orders.customer_id ->
    dim_customers.customer_id`, `unique_combination_of_columns: fact_payments(order_id,
    payment_sequential)`; a singular test keeps its file name."""
    meta = node.get("test_metadata") or {}
    name = meta.get("name")
    if not name:
        return str(node.get("name") or uid.split(".")[2])
    kwargs = meta.get("kwargs") or {}
    arguments = {**kwargs, **(kwargs.get("arguments") or {})}
    model = _attached(node) or "?"
    column = node.get("column_name") or arguments.get("column_name")
    if name == "relationships":
        to = str(arguments.get("to", "?"))
        parent = to.split("'")[1] if "'" in to else to
        return f"relationships: {model}.{column} -> {parent}.{arguments.get('field', '?')}"
    if "combination_of_columns" in arguments:
        return f"{name}: {model}({', '.join(arguments['combination_of_columns'])})"
    if column:
        return f"{name}: {model}.{column}"
    return f"{name}: {model}"


def selected_models(target_dir: Path, selections: list[str]) -> set[str] | None:
    """Names of the nodes a pipeline's selection builds (`stg_orders+`, `+fact_orders`,
    `name`, `tag:x`, `tag:x+`), from the manifest's graph; None when a selection uses a
    method this does not read (the caller then counts every node as the pipeline's)."""
    manifest_file = target_dir / "manifest.json"
    if not manifest_file.is_file():
        return None
    manifest = json.loads(manifest_file.read_text())
    nodes: dict[str, Any] = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    children: dict[str, list[str]] = manifest.get("child_map", {})
    parents: dict[str, list[str]] = manifest.get("parent_map", {})
    chosen: set[str] = set()
    for selection in selections:
        up, down = selection.startswith("+"), selection.endswith("+")
        core = selection.strip("+")
        if core.startswith("tag:"):
            roots = {u for u, n in nodes.items() if core[4:] in (n.get("tags") or [])}
        elif ":" in core or "*" in core or "/" in core:
            return None
        else:
            roots = {u for u, n in nodes.items() if n.get("name") == core}
        chosen |= roots
        for graph, wanted in ((children, down), (parents, up)):
            todo = list(roots) if wanted else []
            while todo:
                for following in graph.get(todo.pop(), []):
                    if following not in chosen:
                        chosen.add(following)
                        todo.append(following)
    return {u.rsplit(".", 1)[-1] for u in chosen}
