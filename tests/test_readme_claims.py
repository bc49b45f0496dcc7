"""Every sentence of README's "How a run stays correct" names the tests that prove it.

To update: when a sentence changes, change its prefix in CLAIMS (a prefix is enough to find
it); a new sentence needs an entry, or the test fails naming it. Test ids are pytest node ids;
one without `[...]` stands for all its parametrized cases. The ids are checked against pytest's
own collection of the files they name (collection only: nothing runs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import ROOT

E2E = "tests/e2e/test_embedded_default.py"
CLAIMS_T = "tests/e2e/test_claims.py"
CRASH = "tests/faults/test_crash_safety.py"
PRECHECK = "tests/e2e/test_cursor_precheck.py"
TRANSIENT = "tests/integration/test_transient_faults.py"
EXACT = "tests/e2e/test_incremental_exact.py"
SERVERS = "tests/integration/test_incremental_servers.py"
CONFORM = "tests/conformance/test_warehouse_conformance.py"
THREADS = "tests/e2e/test_threads.py"
PARTITIONS = "tests/integration/test_partitions.py"
NOOP = "tests/integration/test_noop_versions.py"
NULL_ROWS = "tests/e2e/test_null_cursor_rows.py"
ZONES = "tests/integration/test_source_time_zones.py"
DRIFT = "tests/e2e/test_schema_drift.py"
TWO_WORKERS = ("tests/faults/test_two_workers.py::test_two_workers_one_killed_mid_load_leave_the_"
               "warehouse_equal_to_the_source")
PROPERTY = ("tests/faults/test_cursor_properties.py::"
            "test_any_interleaving_of_changes_between_runs_keeps_warehouse_equal_to_source")
DELETES_PROPERTY = ("tests/e2e/test_change_properties.py::"
                    "test_deletes_and_rows_coming_back_keep_the_warehouse_equal_to_the_source")

STORAGE = "tests/faults/test_storage_faults.py"
UNFINISHED = "tests/e2e/test_unfinished_full_refresh.py"

CLAIMS: dict[str, list[str]] = {
    "Each extract is one dlt load": [
        f"{E2E}::test_second_run_takes_exactly_the_changed_rows",
        f"{CLAIMS_T}::test_a_fresh_worker_resumes_from_the_cursor_state_kept_in_the_lake"],
    "Its files are `raw/<path>/<load_id>.*.parquet`": [
        f"{E2E}::test_stage_api_runs_one_stage_of_one_batch_at_a_time",
        f"{E2E}::test_a_batch_left_in_the_lake_is_finished_without_the_source"],
    "Cursor comparisons are exact whatever the source's spelling of a value": [
        f"{EXACT}::test_rows_at_the_boundary_in_another_spelling_are_caught_once",
        f"{EXACT}::test_date_integer_and_text_cursors_catch_the_boundary", PROPERTY],
    "SQLite keeps timestamps as text in the writer's format": [
        f"{EXACT}::test_rows_at_the_boundary_in_another_spelling_are_caught_once", PROPERTY,
        ("tests/e2e/test_independent_sources.py::"
         "test_independently_written_shop_lands_equal_and_picks_up_every_change")],
    "PostgreSQL and MySQL compare their own temporal types": [
        f"{SERVERS}::test_server_cursor_types_catch_the_boundary_once",
        f"{ZONES}::test_a_query_over_timestamptz_in_a_zone_west_of_utc_skips_no_row",
        f"{ZONES}::test_the_repeated_autumn_hour_of_a_session_zone_appends_no_row_twice",
        f"{ZONES}::test_mariadb_timestamps_land_as_utc_whatever_the_sessions_zone"],
    "A MySQL server in another zone is read row by row": [
        f"{ZONES}::test_mariadb_server_west_of_utc_lands_utc_timestamps_and_skips_no_row"],
    "A SQLite `source.query` hands its columns over untyped": [
        f"{DRIFT}::test_a_sqlite_cursor_the_source_now_hands_over_as_text_is_one_line"],
    "Rows at the last run's maximum cursor value are read again on every run": [
        f"{EXACT}::test_rows_sharing_one_cursor_value_keep_the_state_small_and_changes_caught",
        f"{EXACT}::test_every_backend_catches_boundary_rows_once", PROPERTY],
    "Once reconcile has deleted (or marked) rows, the lake no longer says": [
        f"{EXACT}::test_a_row_deleted_then_inserted_again_at_the_boundary_comes_back",
        (f"{SERVERS}::test_a_row_deleted_then_inserted_again_at_the_boundary_comes_back_on_"
         "postgresql"), DELETES_PROPERTY],
    "Only a row released from quarantine, which no loaded batch held, stays out": [
        f"{EXACT}::test_a_released_row_stays_out_after_another_rows_reconciled_delete",
        f"{EXACT}::test_a_loaded_row_copied_into_a_released_batch_comes_back_after_its_delete"],
    "A batch held back then and replayed since loads without the deleted keys": [
        f"{EXACT}::test_a_batch_replayed_after_a_delete_does_not_keep_the_deleted_row_out",
        f"{EXACT}::test_a_replay_that_fails_again_leaves_its_rows_kept_out"],
    "The state this needs is the boundary value": [
        f"{EXACT}::test_rows_sharing_one_cursor_value_keep_the_state_small_and_changes_caught"],
    "A large table may declare `source.partitions": [
        f"{PARTITIONS}::test_the_first_read_is_split_and_later_runs_read_the_cursor_once"],
    "A full read (the first run, `--full-refresh`, a pipeline without a cursor) is then split": [
        f"{PARTITIONS}::test_the_first_read_is_split_and_later_runs_read_the_cursor_once",
        f"{PARTITIONS}::test_a_pipeline_without_a_cursor_splits_every_run"],
    "Every part reads in one exported snapshot": [
        f"{PARTITIONS}::test_every_part_reads_in_one_snapshot_while_the_source_is_written",
        f"{PARTITIONS}::test_mysql_reads_in_one_pass_as_its_connections_share_no_snapshot"],
    "A part that fails, or a process killed mid-read, lands nothing": [
        f"{PARTITIONS}::test_a_part_that_fails_lands_nothing_and_the_next_run_lands_every_row_once",
        (f"{PARTITIONS}::test_a_process_killed_mid_read_lands_nothing_and_the_next_run_lands_"
         "every_row_once")],
    "Incremental runs stay one cursor read": [
        f"{PARTITIONS}::test_the_first_read_is_split_and_later_runs_read_the_cursor_once"],
    "`lag` is a look-back window in the cursor's unit": [
        f"{EXACT}::test_lag_on_a_date_cursor_is_days",
        f"{EXACT}::test_lag_on_an_integer_cursor_is_cursor_units",
        f"{EXACT}::test_a_duration_lag_on_an_integer_cursor_is_one_line",
        f"{NOOP}::test_a_look_back_window_on_a_decimal_cursor_is_one_line"],
    "The price: a run with something new reads the window again": [
        f"{EXACT}::test_lag_on_a_date_cursor_is_days",
        f"{PRECHECK}::test_a_look_back_window_runs_dlt_only_when_a_row_in_it_changed",
        f"{NOOP}::test_a_look_back_window_skips_dlt_only_while_its_rows_are_unchanged"],
    "A row released from quarantine stays out of those re-reads": [
        f"{EXACT}::test_a_released_row_in_a_look_back_window_stays_out_until_it_changes"],
    "Without one, a row whose transaction commits after a run has read past": [
        f"{SERVERS}::test_a_transaction_committing_after_a_run_read_past_it_needs_lag",
        ("tests/onboarding/test_init.py::"
         "test_init_onboards_a_new_table_that_runs_to_the_warehouse_and_dbt")],
    "`on_null: include` (what `framework init` writes for an `updated_at`": [
        f"{NULL_ROWS}::test_a_run_sends_on_only_the_rows_with_no_cursor_that_changed",
        (f"{NULL_ROWS}::test_any_changes_to_rows_with_no_cursor_keep_the_warehouse_equal_to_"
         "the_source")],
    "So one new order no longer merges every never-updated row again": [
        f"{NULL_ROWS}::test_a_run_sends_on_only_the_rows_with_no_cursor_that_changed"],
    "Such a row went, with the batch that first carried it, where every change goes": [
        f"{NULL_ROWS}::test_a_released_row_with_no_cursor_stays_out_until_it_changes",
        f"{NULL_ROWS}::test_a_quarantined_row_with_no_cursor_lands_by_its_replay"],
    "The ledger is set aside, and every such row sent on once": [
        f"{NULL_ROWS}::test_a_lost_ledger_sends_every_row_with_no_cursor_once",
        f"{NULL_ROWS}::test_a_row_with_no_cursor_deleted_then_inserted_again_comes_back",
        f"{NULL_ROWS}::test_a_row_deleted_while_a_run_reads_then_inserted_again_comes_back"],
    "Re-read rows are merged on the key, so validation refuses `lag`": [
        ("tests/unit/test_incremental_spec.py::"
         "test_a_cursor_setting_that_would_duplicate_or_mean_nothing_is_one_line")],
    "The warehouse records every batch in `landing._framework_batches`": [
        f"{CRASH}::test_a_kill_at_each_point_then_a_clean_run_loses_and_duplicates_nothing",
        ("tests/integration/test_snowflake_loader.py::"
        "test_a_failure_inside_the_transaction_leaves_neither_rows_nor_ledger_row")],
    "Batches extracted but not loaded (a crash) are finished by the next run": [
        f"{E2E}::test_a_batch_left_in_the_lake_is_finished_without_the_source",
        (f"{CRASH}::test_a_kill_at_each_point_then_a_clean_run_loses_and_duplicates_nothing"
        "[after_lake_write]")],
    "A `--full-refresh` that does not finish in its run": [
        f"{UNFINISHED}::test_a_full_refresh_refused_for_an_empty_source_is_finished_by_the_next_run",
        (f"{UNFINISHED}::test_a_full_refresh_killed_after_its_read_landed_is_loaded_whole_by_the_"
         "next_run"),
        f"{UNFINISHED}::test_replaying_a_quarantined_full_refresh_batch_replaces_the_table"],
    "A replay of an append batch replaces its own rows": [
        f"{CONFORM}::test_a_replayed_append_batch_replaces_its_own_rows",
        f"{CONFORM}::test_replaying_an_older_batch_never_overwrites_newer_rows",
        f"{CONFORM}::test_an_older_batch_replayed_after_a_full_refresh_changes_nothing",
        f"{CLAIMS_T}::test_an_older_batch_replayed_after_a_newer_one_never_overwrites_it"],
    "A key the framework deleted (by reconcile, a soft delete or a source found empty)": [
        f"{CONFORM}::test_a_key_reconcile_deleted_stays_deleted_when_an_older_batch_is_replayed",
        f"{CONFORM}::test_a_batch_read_before_a_delete_and_loaded_after_it_keeps_the_key_deleted",
        f"{CONFORM}::test_a_key_a_batch_soft_deleted_stays_deleted_when_an_older_batch_is_replayed",
        f"{CONFORM}::test_a_first_load_remembers_the_keys_it_soft_deleted",
        f"{CONFORM}::test_a_batch_read_before_the_source_was_found_empty_stays_out",
        ("tests/e2e/test_deletes_and_reconcile.py::"
         "test_replaying_the_first_batch_after_reconcile_deletes_keeps_the_keys_deleted")],
    "`tests/conformance/` proves each rule": [
        f"{CONFORM}::test_loading_a_batch_already_loaded_is_a_no_op",
        f"{CONFORM}::test_a_load_retried_after_its_commit_lands_the_batch_once"],
    "A batch that fails an `error` expectation is quarantined and blocks its pipeline": [
        ("tests/e2e/test_change_properties.py::test_batches_held_back_then_replayed_or_"
         "released_and_replayed_leave_the_source_landed"),
        ("tests/e2e/test_quarantine.py::"
         "test_a_quarantined_batch_blocks_its_pipeline_until_replayed_or_released"),
        f"{CONFORM}::test_a_quarantined_batch_blocks_until_replayed_or_released",
        ("tests/integration/test_server_sources.py::"
         "test_a_value_the_transform_cannot_cast_quarantines_its_batch_so_release_applies")],
    "A run first reads the source's rows at or past the stored boundary": [
        f"{PRECHECK}::test_nothing_new_after_a_run_and_dlt_agrees",
        f"{PRECHECK}::test_a_row_past_or_changed_at_the_cursor_is_not_nothing",
        f"{EXACT}::test_the_precheck_compares_boundary_rows_by_digest_or_with_the_lake"],
    "The question is asked on dlt's state read from its files": [
        f"{PRECHECK}::test_a_run_with_nothing_new_reads_dlts_state_from_its_files"],
    "On a PostgreSQL (14+) table one aggregate decides first": [
        f"{NOOP}::test_a_no_op_run_on_rows_sharing_the_cursor_does_not_run_dlt",
        f"{NOOP}::test_every_ordered_cursor_type_skips_and_catches",
        f"{NOOP}::test_a_change_that_writes_no_row_version_is_still_read",
        f"{NOOP}::test_a_worker_without_the_state_folder_skips_dlt_and_still_sees_a_change"],
    "Every insert or update writes a new version": [
        f"{NOOP}::test_a_change_at_the_boundary_is_read_exactly_once",
        f"{NOOP}::test_a_change_between_the_fingerprint_and_the_read_is_never_missed",
        f"{NOOP}::test_a_change_during_the_read_is_caught_by_the_next_run",
        f"{NOOP}::test_vacuum_full_moves_the_versions_and_costs_one_read"],
    "MySQL, MariaDB and SQLite show no row versions": [
        f"{PRECHECK}::test_a_row_past_or_changed_at_the_cursor_is_not_nothing",
        f"{SERVERS}::test_server_cursor_types_catch_the_boundary_once"],
    "With a lag window the same aggregate covers every row of the window": [
        f"{NOOP}::test_a_look_back_window_skips_dlt_only_while_its_rows_are_unchanged",
        f"{NOOP}::test_a_changed_look_back_window_reads_again_once"],
    "With `on_null: include` it covers the rows with no cursor too": [
        f"{NOOP}::test_rows_with_no_cursor_skip_dlt_only_while_unchanged"],
    "Elsewhere (and when the aggregate differs) each row of the window, and each": [
        f"{PRECHECK}::test_a_look_back_window_runs_dlt_only_when_a_row_in_it_changed",
        f"{PRECHECK}::test_included_null_cursors_run_dlt_only_when_one_changed",
        f"{SERVERS}::test_a_look_back_window_on_mariadb_skips_dlt_until_a_row_in_it_changes",
        "tests/integration/test_server_sources.py::test_a_zero_date_cursor_reads_as_a_null_one"],
    "Anything else (more such rows off PostgreSQL, a query source": [
        f"{PRECHECK}::test_a_look_back_window_of_more_rows_than_its_digests_runs_dlt",
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
    "A decimal widened past its type in `columns:`": [
        ("tests/e2e/test_schema_drift.py::"
         "test_a_decimal_widened_past_its_declared_type_stops_every_run_until_declared"),
        f"{DRIFT}::test_a_declared_decimal_whose_source_turned_to_floats_stops_the_run",
        f"{DRIFT}::test_a_declared_column_renamed_at_the_source_stops_until_mapped"],
    "A retyped column never rounds the rows already loaded": [
        f"{DRIFT}::test_a_retyped_decimal_never_rounds_the_rows_already_loaded",
        f"{DRIFT}::test_text_turned_to_numbers_keeps_a_text_column_whose_rows_are_not_numbers",
        f"{DRIFT}::test_discard_stops_a_batch_the_tables_types_would_round",
        ("tests/integration/test_snowflake_loader.py::"
         "test_discard_stops_a_batch_the_kept_type_would_round_and_loads_one_it_holds")],
    "A column the source adds makes the rows at the cursor boundary new again for a merge": [
        f"{DRIFT}::test_a_column_added_with_a_default_loads_no_boundary_row_twice",
        f"{NOOP}::test_a_change_that_writes_no_row_version_is_still_read"],
    "An append table's boundary rows are told apart by the lake's copies of them": [
        f"{STORAGE}::test_raw_batches_gone_from_the_lake_stop_an_append_run_before_it_doubles_rows",
        (f"{STORAGE}::test_a_lake_older_than_the_warehouse_stops_an_append_run_before_it_doubles_"
        "rows"),
        (f"{STORAGE}::test_raw_files_pruned_while_the_cursor_state_is_kept_are_named_missing_"
         "not_behind")],
    "A merge pipeline reads such rows again and merges them": [
        f"{STORAGE}::test_a_merge_run_reads_rows_whose_raw_batches_are_gone_again_and_merges_them",
        f"{STORAGE}::test_a_damaged_cursor_state_in_the_lake_is_set_aside_or_refused_for_append"],
    "A raw file that cannot be read (cut short, overwritten) is named with the way out": [
        f"{STORAGE}::test_a_damaged_raw_file_is_named_with_the_way_out_not_quarantined_as_bad_data",
        f"{STORAGE}::test_a_value_reading_corrupted_is_the_batchs_data_not_a_damaged_file",
        f"{STORAGE}::test_a_damaged_page_duckdb_names_no_file_for_is_told_as_a_damaged_file"],
    "A cursor state cut short is set aside when it is this machine's": [
        f"{STORAGE}::test_a_damaged_local_dlt_state_is_set_aside_and_the_lakes_taken",
        f"{STORAGE}::test_a_damaged_cursor_state_in_the_lake_is_set_aside_or_refused_for_append"],
    "Source schema changes (new, dropped or retyped columns) are named by the run that meets": [
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
        "tests/e2e/test_cursor_and_lock.py::test_a_second_concurrent_run_of_a_pipeline_refuses",
        f"{CONFORM}::test_a_lease_is_held_by_one_worker_and_refused_to_another",
        f"{CONFORM}::test_an_expired_lease_is_taken_over_with_a_warning_naming_the_old_holder",
        f"{CONFORM}::test_a_run_whose_lease_was_taken_over_stops_before_loading", TWO_WORKERS],
    "Run records and owed dbt models are kept in the warehouse too": [
        f"{CONFORM}::test_run_records_and_owed_models_are_shared", TWO_WORKERS,
        ("tests/e2e/test_shared_runs.py::test_records_of_a_run_whose_warehouse_was_dead_reach_"
         "it_with_the_next_run")],
    "Before anything runs, each pipeline is compiled for the target": [
        "tests/unit/test_compile.py::test_compile_holds_what_a_run_needs",
        "tests/unit/test_compile.py::test_fingerprint_changes_with_the_pipeline_and_only_its_own",
        "tests/unit/test_compile.py::test_secrets_stay_out_of_the_compiled_pipeline",
        "tests/e2e/test_compiled_runs.py::test_a_demo_run_records_the_fingerprint_with_each_batch"],
    "`plan`, `run`, the Python API and the Airflow DAGs all run that object": [
        "tests/e2e/test_compiled_runs.py::test_plan_and_run_use_the_same_compiled_object",
        "tests/unit/test_stage_boundaries.py::test_no_stage_imports_the_project_or_the_spec_loader"],
    "`run --threads N` runs up to N pipelines at once in one process": [
        f"{THREADS}::test_run_all_with_four_threads_lands_every_table_and_builds_the_marts_once",
        (f"{THREADS}::test_a_failing_upstream_skips_its_dependents_with_the_reason_and_the_rest_"
         "succeeds"),
        f"{THREADS}::test_a_skipped_pipeline_skips_its_own_dependents_and_json_says_why"],
    "Each thread has its own warehouse connection": [
        f"{THREADS}::test_run_all_with_four_threads_lands_every_table_and_builds_the_marts_once"],
    "Pipelines may run in parallel processes (as Airflow runs them)": [
        ("tests/e2e/test_parallel_runs.py::test_pipelines_run_at_once_in_separate_processes_all_"
         "land_and_all_their_models_build"),
        "tests/unit/test_owed_models.py::test_marks_from_several_processes_at_once_are_all_kept",
        "tests/unit/test_locks.py::test_a_second_process_waits_for_the_lock_then_takes_it"],
    "Soak (`benchmarks/soak.py`, not in CI), last result": [
        # A benchmark, not a test: the CI-sized version of the same claim is the kill tests.
        f"{CRASH}::test_kills_at_random_moments_never_lose_or_duplicate_rows",
        f"{EXACT}::test_a_worker_without_the_state_folder_resumes_from_the_lake",
        f"{EXACT}::test_two_workers_with_their_own_state_take_turns_on_one_lake"],
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
         "-o", "addopts=", *sorted(files)], cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTEST_ADDOPTS": ""})  # a caller's -v would change the listing
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
