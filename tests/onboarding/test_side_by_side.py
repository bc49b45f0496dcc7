"""The demo and a user's sources side by side: commands over every pipeline skip, in one line,
those whose connection was never set up, and nothing creates an empty demo database; dbt warns
only about tables the run's own selection reads; generated files know when they were edited."""

from __future__ import annotations

import json
from pathlib import Path

from framework.onboarding import stamps
from framework.stages.model import waiting_tables
from tests.e2e.helpers import cli

SKIPPED = ("skipped 5 pipeline(s) of connection 'shop' (customers, order_items, orders, "
           "payments, products): not set up, no database file {} (framework demo creates it)")


def test_commands_over_every_pipeline_skip_a_demo_never_created(project_dir: Path,
                                                                tmp_path: Path) -> None:
    shop = tmp_path / "state" / "shop.db"
    skipped = SKIPPED.format(shop)

    reconciled = cli("reconcile", "--all")
    ran = cli("run", "--all", "--no-dbt")
    named = cli("reconcile", "--pipeline", "orders")
    run_one = cli("run", "--pipeline", "orders", "--no-dbt", "--json")

    assert reconciled.exit_code == 0 and reconciled.stderr.strip() == skipped
    assert ran.exit_code == 0 and ran.stderr.strip() == skipped
    assert named.exit_code == 1
    assert named.stderr.strip() == (f"error: source 'shop': not set up: no database file "
                                    f"{shop} (framework demo creates it)")
    assert run_one.exit_code == 1
    [record] = json.loads(run_one.stdout[run_one.stdout.index("["):])
    assert record["error"] == (f"source 'shop': not set up, no database file {shop} "
                               "(framework demo creates it)")
    assert not shop.exists()  # asking never connects, so never creates the file


def test_doctor_says_a_source_is_not_set_up_and_leaves_it_so(project_dir: Path,
                                                             tmp_path: Path) -> None:
    shop = tmp_path / "state" / "shop.db"

    result = cli("doctor")

    assert f"skip source shop: not set up: no database file {shop} (framework demo creates " \
        "it)" in result.stdout
    assert not shop.exists()


def _manifest(path: Path) -> Path:
    """orders -> stg_orders -> fact_orders <- stg_customers <- customers; the demo's
    items -> stg_items -> mart_items."""
    nodes = {f"model.p.{n}": {"name": n, "resource_type": "model", "tags": tags}
             for n, tags in (("stg_orders", ["orders"]), ("stg_customers", []),
                             ("fact_orders", []), ("stg_items", ["demo"]),
                             ("mart_items", []))}
    sources = {f"source.p.landing.{n}": {"source_name": "landing", "name": n}
               for n in ("orders", "customers", "items")}
    children = {"source.p.landing.orders": ["model.p.stg_orders"],
                "source.p.landing.customers": ["model.p.stg_customers"],
                "source.p.landing.items": ["model.p.stg_items"],
                "model.p.stg_orders": ["model.p.fact_orders"],
                "model.p.stg_customers": ["model.p.fact_orders"],
                "model.p.stg_items": ["model.p.mart_items"]}
    parents: dict[str, list[str]] = {}
    for parent, kids in children.items():
        for kid in kids:
            parents.setdefault(kid, []).append(parent)
    path.write_text(json.dumps({"nodes": nodes, "sources": sources, "child_map": children,
                                "parent_map": parents}))
    return path


def test_dbt_waits_are_named_only_for_the_selection(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "manifest.json")
    unloaded = {"source:landing.customers+": "landing.customers",
                "source:landing.items+": "landing.items"}

    assert waiting_tables(manifest, ["stg_orders+"], unloaded) == ["landing.customers"]
    assert waiting_tables(manifest, ["tag:orders+"], unloaded) == ["landing.customers"]
    assert waiting_tables(manifest, ["stg_orders"], unloaded) == []
    assert waiting_tables(manifest, ["tag:demo+", "stg_orders+"], unloaded) == \
        ["landing.customers", "landing.items"]
    # Selectors this reading does not follow, or no manifest: every table is named.
    assert waiting_tables(manifest, ["path:models/x"], unloaded) == list(unloaded.values())
    assert waiting_tables(tmp_path / "none.json", ["stg_orders+"], unloaded) == \
        list(unloaded.values())


def test_a_generated_file_is_rewritten_only_while_unedited(tmp_path: Path) -> None:
    model = tmp_path / "models" / "dim_x.sql"

    assert stamps.write(model, "select 1 as a\n").action == "wrote"
    assert stamps.write(model, "select 1 as a\n").action == "unchanged"
    assert stamps.write(model, "select 2 as a\n").action == "updated"
    assert model.read_text().startswith("select 2 as a\n-- framework-init: ")
    model.write_text(model.read_text().replace("select 2", "select 3"))
    kept = stamps.write(model, "select 4 as a\n")
    assert (kept.action, kept.reason) == ("skipped", "edited since framework init wrote it")
    assert model.read_text().startswith("select 3 as a\n")
    mine = tmp_path / "models" / "mine.yml"
    mine.write_text("version: 2\n")
    assert stamps.write(mine, "version: 2\nmodels: []\n").reason == \
        "not written by framework init"
    assert mine.read_text() == "version: 2\n"
