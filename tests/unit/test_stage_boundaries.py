"""Stages receive a compiled pipeline: none imports the project or the spec loader, and the
extract stage reaches the source only through its adapter (`ctx.source`, framework/sources)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

FORBIDDEN = ("framework.project", "framework.spec.loader")


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (function-level imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_stage_imports_the_project_or_the_spec_loader() -> None:
    stages = ROOT / "framework" / "stages"
    offenders = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in stages.rglob("*.py") for module in imported(path)
        if any(module == name or module.startswith(name + ".") for name in FORBIDDEN))

    assert offenders == []
    assert len(list(stages.rglob("*.py"))) > 5  # the walk did find the stages


def test_extract_reaches_the_source_through_its_adapter() -> None:
    extract = ROOT / "framework" / "stages" / "extract.py"
    text = extract.read_text(encoding="utf-8")
    assert "ctx.source.open(ctx)" in text
    assert "ctx.project" not in text and "sqlalchemy" not in text
    assert not [n for n in imported(extract) if n.startswith(
        ("framework.settings.connections", "framework.sources.sql"))]
