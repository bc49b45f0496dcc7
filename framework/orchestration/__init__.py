"""Orchestration: the Airflow DAG factory (`framework.orchestration.airflow`), the tolerant spec
loading it parses with (`specs`) and the failure webhook (`alerts`).

Only `airflow.py` imports Airflow; the other modules are plain Python, so the core install (which
must not have Airflow) can import and test them.
"""
