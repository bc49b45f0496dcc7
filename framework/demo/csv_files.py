"""The demo shop as the Olist data set publishes it: one CSV file per table, by Olist's names.

A header row, timestamps as Olist writes them (`2017-10-02 10:56:33`, with the fraction only
when the shop's value has one), an empty field for NULL. The shop's `updated_at` stays the
last column, as a shop export carries it, so the CSV pipelines land the SQL pipelines' rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from framework.demo.shop import TABLES, metadata

OLIST_FILES = {
    "customers": "olist_customers_dataset.csv",
    "products": "olist_products_dataset.csv",
    "orders": "olist_orders_dataset.csv",
    "order_items": "olist_order_items_dataset.csv",
    "payments": "olist_order_payments_dataset.csv",
}
TRANSLATION = "product_category_name_translation.csv"


def write_csv_shop(url: str, folder: Path, translation: Path | None = None) -> dict[str, int]:
    """Write every shop table to `folder` as Olist's CSV files; rows written per file."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = metadata().tables
    written: dict[str, int] = {}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for name in TABLES:
                table = tables[name]
                keys = [c.name for c in table.primary_key]
                rows = conn.execute(sa.select(table).order_by(*keys)).all()
                with open(folder / OLIST_FILES[name], "w", encoding="utf-8", newline="") as out:
                    writer = csv.writer(out, lineterminator="\n")
                    writer.writerow([c.name for c in table.columns])
                    writer.writerows([_text(v) for v in row] for row in rows)
                written[OLIST_FILES[name]] = len(rows)
    finally:
        engine.dispose()
    if translation is not None and translation.is_file():
        shutil.copy(translation, folder / TRANSLATION)
        with open(folder / TRANSLATION, encoding="utf-8") as handle:
            written[TRANSLATION] = sum(1 for _ in handle) - 1
    return written


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond
                               else "seconds")
    return str(value)


def csv_location(project: Any) -> Path:
    """Where `framework demo --source csv` writes the files: the folder the example pipelines
    read (OLIST_CSV_LOCATION, else the state folder's olist_csv/)."""
    from framework.errors import FrameworkError

    configured = project.variables.get("OLIST_CSV_LOCATION")
    if configured and "://" in configured:
        raise FrameworkError(f"OLIST_CSV_LOCATION={configured}: the demo writes its CSV files "
                             "to a local folder; unset it or give a folder")
    path = Path(configured) if configured else project.state_dir / "olist_csv"
    return path if path.is_absolute() else project.root / path


def olist_csv_specs(project: Any) -> dict[str, Any]:
    """The pipelines of pipelines/examples/olist_csv/, validated as one set (their
    `depends_on` name each other), as `run` validates pipelines/."""
    paths = sorted((project.pipelines_dir / "examples" / "olist_csv").glob("*.yml"))
    return dict(project.load_pipeline_files(paths, {p.stem for p in paths}))
