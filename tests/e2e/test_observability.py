"""Watching a run the standard way: JSON log lines and OpenLineage events (file transport).

One real run of the orders pipeline on the embedded default, as a process with
`--log-format json` and OpenLineage's own environment variables; then a run whose source is
unreachable, for the FAIL event and the error line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from framework.demo.shop import create_shop


def framework(project: Path, events: Path, *args: str,
              **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "FRAMEWORK_PROJECT_DIR": str(project),
               "OPENLINEAGE__TRANSPORT__TYPE": "file",
               "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(events),
               "OPENLINEAGE__TRANSPORT__APPEND": "true", **env}
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], env=environ,
                          capture_output=True, text=True, timeout=600, check=False)


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_json_log_and_lineage_events_of_a_run(project_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shop = f"sqlite:///{state / 'shop.db'}"
    create_shop(shop, scale=0.003, seed=5)
    events = tmp_path / "lineage.jsonl"

    ran = framework(project_dir, events, "--log-format", "json", "run", "--pipeline", "orders",
                    "--no-dbt", SHOP_DB_URL=shop)
    failed = framework(project_dir, events, "run", "--pipeline", "payments", "--no-dbt",
                       SHOP_DB_URL="postgresql+psycopg://postgres@127.0.0.1:1/shop",
                       FRAMEWORK_LOG_FORMAT="json")

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == ""  # no table: the log is the output
    records = json_lines(ran.stderr)
    assert {r["pipeline"] for r in records if r["logger"] == "framework"} == {"orders"}
    assert all(r["target"] == "local" for r in records if r["pipeline"])
    stages = {r["stage"] for r in records if r["stage"]}
    assert {"extract", "transform", "validate", "load"} <= stages
    done = [r for r in records if r["message"] == "pipeline orders success"]
    assert len(done) == 1 and done[0]["rows_loaded"] > 0 and done[0]["load_id"]
    load = [r for r in records if r["stage"] == "load" and r["message"].startswith("load finished")]
    assert load and load[0]["load_id"] == done[0]["load_id"] and load[0]["seconds"] >= 0

    assert failed.returncode == 1
    errors = [r for r in json_lines(failed.stderr) if r["level"] == "error"]
    assert any(r["pipeline"] == "payments" and "cannot connect" in (r.get("error") or "")
               for r in errors)

    lineage = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["eventType"], e["job"]["name"]) for e in lineage] == [
        ("START", "orders"), ("COMPLETE", "orders"), ("START", "payments"), ("FAIL", "payments")]
    start, complete, _, fail = lineage
    assert start["run"]["runId"] == complete["run"]["runId"] != fail["run"]["runId"]
    assert complete["job"]["namespace"] == "framework"
    [source] = complete["inputs"]
    assert source["namespace"] == f"sqlite://{state / 'shop.db'}" and source["name"] == "orders"
    assert source["inputFacets"]["inputStatistics"]["rowCount"] == done[0]["rows_extracted"]
    outputs = {o["name"]: o for o in complete["outputs"]}
    lake = str((state / "lake").resolve())
    assert set(outputs) == {f"{lake}/raw/orders", f"{lake}/processed/orders",
                            "warehouse.landing.orders"}
    landing = outputs["warehouse.landing.orders"]
    assert landing["namespace"] == f"duckdb://{state / 'warehouse.duckdb'}"
    assert landing["outputFacets"]["outputStatistics"]["rowCount"] == done[0]["rows_loaded"]
    columns = [f["name"] for f in landing["facets"]["schema"]["fields"]]
    assert "order_id" in columns and "updated_at" in columns
    assert "cannot connect" in fail["run"]["facets"]["errorMessage"]["message"]


@pytest.mark.parametrize("variable", ["OPENLINEAGE_DISABLED"])
def test_lineage_is_off_unless_configured(variable: str, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    from framework import lineage

    for name in list(os.environ):
        if name.startswith("OPENLINEAGE"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not lineage.enabled()
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "console")
    assert lineage.enabled()
    monkeypatch.setenv(variable, "true")
    assert not lineage.enabled()


def test_a_run_sends_no_usage_events(project_dir: Path, tmp_path: Path) -> None:
    """dlt's anonymous telemetry is on by default; a run of ours must not send it (pointed at a
    loopback endpoint here, which counts what arrives)."""
    import http.server
    import threading

    received: list[str] = []

    class Endpoint(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        shop = f"sqlite:///{tmp_path / 'shop.db'}"
        create_shop(shop, scale=0.003, seed=5)
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/track"
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("DO_NOT_TRACK", "RUNTIME__DLTHUB_TELEMETRY")}
        ran = subprocess.run(
            [sys.executable, "-m", "framework.cli", "run", "--pipeline", "orders", "--no-dbt"],
            env={**environ, "FRAMEWORK_PROJECT_DIR": str(project_dir), "SHOP_DB_URL": shop,
                 "RUNTIME__DLTHUB_TELEMETRY_ENDPOINT": endpoint},
            capture_output=True, text=True, timeout=600, check=False)
    finally:
        server.shutdown()
    assert ran.returncode == 0, ran.stderr
    assert received == []
