"""`framework new DIR [--example shop]`: a project of one's own.

Every project gets `framework.yml` (targets local and prod), `.env.example`, `sources/`,
`pipelines/`, `quality/`, a dbt project with its profiles, `pipeline.schema.json`, the PR
workflow and the pre-commit config. `--example shop` adds the shop's pipelines, suites and dbt
models, so `framework demo` runs there as it does here.

The shop files are this repository's own project files: in the wheel they are package data
under framework/templates/shop/ (mapped at build time, see pyproject.toml); from a checkout
they are read where they are. Either way there is one copy to maintain.
"""

from __future__ import annotations

import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from framework.errors import FrameworkError

TEMPLATES = Path(__file__).parent / "templates"
EXAMPLES = ("shop",)
SKIPPED = {"target", "logs", "dbt_packages", "__pycache__", ".framework"}
# The dbt project of a project without the example: profiles, schema naming, the grant hook.
# What init's models and tests call: the star schema keys its dates with date_key, a composite
# key is tested with unique_combination_of_columns, a `columns:` range with accepted_range.
DBT_SKELETON = ("dbt_project.yml", "profiles.yml", "macros/generate_schema_name.sql",
                "macros/grant_reporter_read.sql", "macros/date_key.sql",
                "macros/test_unique_combination_of_columns.sql", "macros/test_accepted_range.sql",
                "macros/test_relationships_as_compared.sql")


def shop_root() -> Path:
    packaged = TEMPLATES / "shop"
    if (packaged / "framework.yml").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "framework.yml").is_file() and (checkout / "pipelines").is_dir():
        return checkout
    raise FrameworkError("this installation carries no project templates; reinstall the "
                         "framework package")


def new_project(dest: Path, example: str | None = None) -> list[str]:
    """Write a project into `dest` (new or empty); return the files written, relative."""
    if example is not None and example not in EXAMPLES:
        raise FrameworkError(f"unknown example '{example}' (examples: {', '.join(EXAMPLES)})")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FrameworkError(f"{dest}: exists and is not empty; `framework new` writes only "
                             "into a new or empty folder")
    shop = shop_root()
    dest.mkdir(parents=True, exist_ok=True)
    _copy_tree(TEMPLATES / "project", dest, skip={"sources"} if example else set())
    shutil.copy(shop / "framework.yml", dest / "framework.yml")
    env_example = (shop / ".env.example").read_text()
    if example is None:  # the skeleton's connection (sources/main.yml) reads SOURCE_DB_URL
        env_example = env_example.replace("SHOP_DB_URL", "SOURCE_DB_URL")
    (dest / ".env.example").write_text(env_example)
    if example == "shop":
        for part in ("sources", "pipelines", "quality", "dbt_ecommerce"):
            _copy_tree(shop / part, dest / part)
    else:
        for name in DBT_SKELETON:
            (dest / "dbt_ecommerce" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(shop / "dbt_ecommerce" / name, dest / "dbt_ecommerce" / name)
        for folder in ("pipelines/sql", "quality", "dbt_ecommerce/models"):
            (dest / folder).mkdir(parents=True, exist_ok=True)
            (dest / folder / ".gitkeep").touch()
    from framework.spec.schema import SCHEMA_FILE, render_schema

    (dest / SCHEMA_FILE).write_text(render_schema())
    workflow = dest / ".github" / "workflows" / "pipelines.yml"
    workflow.write_text(workflow.read_text().replace("{{version}}", _version()))
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


def _copy_tree(source: Path, dest: Path, skip: set[str] | None = None) -> None:
    """Copy a template folder: `dot-x` names become `.x`; build and run leftovers stay out."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if SKIPPED & set(relative.parts) or relative.parts[0] in (skip or set()):
            continue
        if path.suffix in (".pyc", ".py") and path.parent == source:
            continue  # the templates package's own module
        target = dest.joinpath(*(p.replace("dot-", ".", 1) if p.startswith("dot-") else p
                                 for p in relative.parts))
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)


def _version() -> str:
    try:
        return version("framework")
    except PackageNotFoundError:
        return "0.1.0"
