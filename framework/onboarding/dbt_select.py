"""The dbt models each pipeline's selection names, resolved by dbt itself (`dbt ls`).

dbt parses the project once, in a child process (as `framework run` runs dbt), and lists the
models of every selection against that one manifest: a few seconds for all pipelines together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

from framework.errors import FrameworkError
from framework.project import Project
from framework.settings.targets import Target

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest


def resolve(project: Project, target: Target, selections: dict[str, list[str]]
            ) -> dict[str, list[str]]:
    """Pipeline -> the models `dbt build --select <its selection>` would build, sorted."""
    if not selections:
        return {}
    known = from_manifest(project, target, selections)
    if known is not None:
        return known
    from framework.stages.model import dbt_environment

    work = project.state_dir / "dbt" / target.name / "plan"
    args = ["--project-dir", str(project.dbt_dir), "--profiles-dir", str(project.dbt_dir),
            "--target", target.dbt_target_name, "--target-path", str(work / "target"),
            "--log-path", str(work / "logs"), "--quiet"]
    with tempfile.TemporaryDirectory(prefix="framework-plan-") as folder:
        request, answer = Path(folder) / "request.json", Path(folder) / "answer.json"
        request.write_text(json.dumps({"args": args, "selections": selections}))
        env = {**os.environ, **dbt_environment(target)}
        process = subprocess.run([sys.executable, "-m", "framework.onboarding.dbt_select",
                                  str(request), str(answer)], env=env, capture_output=True,
                                 text=True, check=False)
        if not answer.is_file():
            lines = (process.stderr or process.stdout or "").strip().splitlines()
            raise FrameworkError(f"dbt ls failed: {lines[-1] if lines else process.returncode}")
        result: dict[str, list[str]] = json.loads(answer.read_text())
        return result


def from_manifest(project: Project, target: Target, selections: dict[str, list[str]]
                  ) -> dict[str, list[str]] | None:
    """The models of each selection read from the manifest the last `run` (or plan) left, when
    no dbt file changed since it was written: parsing the project again (seconds) would give
    the same graph. None when there is no such manifest, or a selector it cannot answer."""
    from framework.stages.model import read_manifest, selected_nodes

    work = project.state_dir / "dbt" / target.name
    candidates = [p for p in (work / "target" / "manifest.json",
                              work / "plan" / "target" / "manifest.json") if p.is_file()]
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    if newest.stat().st_mtime <= _last_change(project.dbt_dir):
        return None
    manifest = read_manifest(newest)
    if manifest is None:
        return None
    answer: dict[str, list[str]] = {}
    for pipeline, selection in selections.items():
        ids = selected_nodes(manifest, selection)
        if ids is None:
            return None
        answer[pipeline] = sorted(manifest["nodes"][i]["name"] for i in ids
                                  if i in manifest["nodes"] and
                                  manifest["nodes"][i].get("resource_type") == "model")
    return answer


def _last_change(dbt_dir: Path) -> float:
    """When any file dbt parses was last changed (or a folder's entries: a removed model)."""
    latest = 0.0
    for folder in ("models", "macros", "snapshots", "seeds", "tests", "analyses"):
        root = dbt_dir / folder
        if root.is_dir():
            for path in (root, *root.rglob("*")):
                latest = max(latest, path.stat().st_mtime)
    for name in ("dbt_project.yml", "packages.yml", "selectors.yml"):
        if (dbt_dir / name).is_file():
            latest = max(latest, (dbt_dir / name).stat().st_mtime)
    return latest


def _main(request_file: str, answer_file: str) -> int:
    from dbt.cli.main import dbtRunner

    request = json.loads(Path(request_file).read_text())
    args = request["args"]
    parsed = dbtRunner().invoke(["parse", *args])
    if not parsed.success:
        print(f"dbt parse failed: {parsed.exception}", file=sys.stderr)
        return 1
    runner = dbtRunner(manifest=cast("Manifest", parsed.result))
    answer: dict[str, list[str]] = {}
    for pipeline, selection in request["selections"].items():
        listed = runner.invoke(["ls", "--select", *selection, "--resource-type", "model",
                                "--output", "name", *args])
        if not listed.success:
            print(f"dbt ls --select {' '.join(selection)} failed: {listed.exception}",
                  file=sys.stderr)
            return 1
        answer[pipeline] = sorted(cast("list[str]", listed.result or []))
    Path(answer_file).write_text(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2]))
