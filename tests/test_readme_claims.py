"""Every sentence of README's "How a run stays correct" names the tests that prove it.

To update: when a sentence changes, change its prefix in CLAIMS (a prefix is enough to find
it); a new sentence needs an entry, or the test fails naming it. Test ids are pytest node ids;
one without `[...]` stands for all its parametrized cases. The ids are checked against pytest's
own collection of the files they name (collection only: nothing runs).
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

E2E = "tests/e2e/test_embedded_default.py"
CLAIMS_T = "tests/e2e/test_claims.py"
CRASH = "tests/faults/test_crash_safety.py"
PRECHECK = "tests/e2e/test_cursor_precheck.py"
TRANSIENT = "tests/integration/test_transient_faults.py"

CLAIMS: dict[str, list[str]] = {
    "Each extract is one dlt load": [
        f"{E2E}::test_second_run_takes_exactly_the_changed_rows",
        f"{CLAIMS_T}::test_a_fresh_worker_resumes_from_the_cursor_state_kept_in_the_lake"],
    "Its files are `raw/<path>/<load_id>.*.parquet`": [
        f"{E2E}::test_stage_api_runs_one_stage_of_one_batch_at_a_time",
        f"{E2E}::test_a_batch_left_in_the_lake_is_finished_without_the_source"],
    "Rows written with the same cursor value as the last run's maximum are caught": [
        ("tests/faults/test_cursor_properties.py::"
        "test_any_interleaving_of_changes_between_runs_keeps_warehouse_equal_to_source"),
        ("tests/e2e/test_independent_sources.py::"
        "test_independently_written_shop_lands_equal_and_picks_up_every_change")],
    "The warehouse records every batch in `landing._framework_batches`": [
        f"{CRASH}::test_a_kill_at_each_point_then_a_clean_run_loses_and_duplicates_nothing",
        ("tests/integration/test_snowflake_loader.py::"
        "test_a_failure_inside_the_transaction_leaves_neither_rows_nor_ledger_row")],
    "Batches extracted but not loaded (a crash) are finished by the next run": [
        f"{E2E}::test_a_batch_left_in_the_lake_is_finished_without_the_source",
        (f"{CRASH}::test_a_kill_at_each_point_then_a_clean_run_loses_and_duplicates_nothing"
        "[after_lake_write]")],
    "An older version of a row never overwrites a newer one": [
        f"{CLAIMS_T}::test_an_older_batch_replayed_after_a_newer_one_never_overwrites_it",
        ("tests/unit/test_duckdb_warehouse.py::"
        "test_a_key_twice_in_a_batch_keeps_its_latest_version_on_first_load_and_on_merge"),
        ("tests/integration/test_snowflake_loader.py::"
        "test_batches_merge_on_the_key_and_the_newest_version_wins")],
    "A run first asks the source for its greatest cursor value": [
        f"{PRECHECK}::test_nothing_new_after_a_run_and_dlt_agrees",
        f"{PRECHECK}::test_a_row_past_or_changed_at_the_cursor_is_not_nothing"],
    "Anything else (a lag window, NULL cursors included": [
        f"{PRECHECK}::test_a_lag_window_or_included_null_cursors_always_run_dlt",
        f"{PRECHECK}::test_the_cursor_comparison_orders_only_what_python_and_the_database_agree_on",
        f"{CLAIMS_T}::test_a_query_source_extracts_only_rows_added_or_changed_between_runs"],
    "dbt builds once per run": [
        f"{E2E}::test_dbt_runs_only_after_new_rows_or_an_unfinished_build"],
    "A pipeline's dbt selection is marked owed before its rows reach the warehouse": [
        (f"{CRASH}::test_a_run_killed_before_or_inside_dbt_leaves_models_owed_and_the_next_run_"
        "builds_them"),
        f"{CRASH}::test_a_run_killed_during_dbt_takes_its_dbt_process_with_it",
        f"{E2E}::test_rows_loaded_without_dbt_are_modelled_by_the_next_run"],
    "Models that read a landing table no pipeline has loaded yet wait for it": [
        f"{E2E}::test_one_pipeline_on_an_empty_warehouse_builds_what_it_can_and_waits_for_the_rest"],
    "Counts are reconciled per batch": [
        f"{CLAIMS_T}::test_a_transform_that_changes_the_row_count_fails_the_run_and_loads_nothing"],
    "Every run is recorded (`framework history`)": [
        f"{CLAIMS_T}::test_a_transform_that_changes_the_row_count_fails_the_run_and_loads_nothing"],
    "Source schema changes (new, dropped or retyped columns) are named on every run": [
        ("tests/e2e/test_schema_drift.py::"
        "test_a_new_column_under_evolve_flows_to_the_warehouse_with_a_warning"),
        ("tests/e2e/test_schema_drift.py::"
        "test_a_new_column_under_freeze_stops_before_anything_is_written"),
        "tests/e2e/test_schema_drift.py::test_a_dropped_column_is_named_and_new_rows_land_without_it",
        "tests/e2e/test_schema_drift.py::test_a_widened_type_is_followed_or_refused"],
    "Transient faults (a dropped connection, a timeout, S3 5xx) are retried": [
        f"{TRANSIENT}::test_a_dropped_connection_is_retried_and_the_run_succeeds",
        f"{TRANSIENT}::test_a_connection_that_times_out_is_retried_and_the_run_succeeds",
        (f"{TRANSIENT}::test_a_connection_dropped_in_the_middle_of_a_read_is_retried_and_nothing_"
        "is_doubled"),
        f"{TRANSIENT}::test_s3_5xx_answers_are_retried_and_the_run_succeeds",
        f"{TRANSIENT}::test_a_permanent_fault_fails_fast_with_its_reason"],
    "One run at a time per pipeline and target": [
        "tests/e2e/test_cursor_and_lock.py::test_a_second_concurrent_run_of_a_pipeline_refuses"],
    "Shown by tests: a run SIGKILLed at each of": [
        f"{CRASH}::test_a_kill_at_each_point_then_a_clean_run_loses_and_duplicates_nothing",
        f"{CRASH}::test_kills_at_random_moments_never_lose_or_duplicate_rows",
        ("tests/faults/test_cursor_properties.py::"
        "test_any_interleaving_of_changes_between_runs_keeps_warehouse_equal_to_source")],
}


def readme_sentences() -> list[str]:
    """The section's sentences, one bullet's lines joined, split after a full stop."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## How a run stays correct\n(.*?)^## ", text, re.DOTALL | re.MULTILINE)
    assert section, "README.md has no section '## How a run stays correct'"
    sentences = []
    for bullet in re.split(r"^- ", section.group(1), flags=re.MULTILINE):
        flat = " ".join(bullet.split())
        sentences += [s for s in re.split(r"(?<=\.)\s+(?=[A-Z`(])", flat) if s]
    return sentences


def collected(files: set[str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-o", "addopts=", *sorted(files)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return {line.strip() for line in result.stdout.splitlines() if "::" in line}


def test_every_sentence_of_how_a_run_stays_correct_has_a_test() -> None:
    sentences = readme_sentences()
    unmapped = [s for s in sentences if not any(s.startswith(p) for p in CLAIMS)]
    stale = [p for p in CLAIMS if not any(s.startswith(p) for s in sentences)]
    assert not unmapped, "README sentences with no test in CLAIMS:\n" + "\n".join(unmapped)
    assert not stale, "CLAIMS prefixes no README sentence starts with:\n" + "\n".join(stale)


def test_every_mapped_test_id_exists() -> None:
    ids = {i for tests in CLAIMS.values() for i in tests}
    found = collected({i.split("::")[0] for i in ids})
    missing = [i for i in sorted(ids) if i not in found and
               not any(f.startswith(i + "[") for f in found)]
    assert not missing, "mapped tests that pytest does not collect:\n" + "\n".join(missing)
