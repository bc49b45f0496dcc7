"""Every pipeline file of the framework project as an Airflow DAG (`framework_<pipeline>`).

Put this file (or a link to it) in Airflow's dags/ folder; Airflow must run in an environment
with the framework installed (`uv sync --extra airflow`). The project is FRAMEWORK_PROJECT_DIR,
else the folder two levels above this file (the repository's airflow/dags/). See docs/airflow.md.
"""

from __future__ import annotations

from pathlib import Path

from framework.orchestration.airflow import build_dags

_here = Path(__file__).resolve()
for _dag in build_dags(_here.parents[2] if len(_here.parents) > 2 else _here.parent):
    globals()[_dag.dag_id] = _dag
