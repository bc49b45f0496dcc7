"""Parse a DAG folder the way Airflow's DAG processor does; print what it found as one JSON line.

Run by the Airflow environment's Python (`.venv-airflow/bin/python inspect_dags.py DAGS_FOLDER`),
never imported by the main test suite (which has no Airflow).
"""

from __future__ import annotations

import json
import sys
from typing import Any

MARKER = "DAGS_JSON: "


def describe(dag: Any) -> dict[str, Any]:
    timetable = dag.timetable
    condition = getattr(timetable, "asset_condition", None)
    inner = getattr(timetable, "timetable", None)
    return {
        "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
        "owners": sorted({t.owner for t in dag.tasks}),
        "retries": sorted({t.retries for t in dag.tasks}),
        "tags": sorted(dag.tags),
        "timetable": type(timetable).__name__,
        "cron": getattr(inner or timetable, "expression", None),
        "upstream_assets": sorted(a.name for a in getattr(condition, "objects", [condition])
                                  if hasattr(a, "name")) if condition is not None else [],
        "outlets": {t.task_id: [o.name for o in t.outlets] for t in dag.tasks if t.outlets},
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
    }


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    result = {"import_errors": {str(k): v for k, v in bag.import_errors.items()},
              "dags": {dag_id: describe(dag) for dag_id, dag in sorted(bag.dags.items())}}
    print(MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
