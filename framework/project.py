"""The project on disk: `framework.yml`, `pipelines/`, `sources/`, `quality/`, `dbt_ecommerce/`.

Everything a command needs is reached from here, loaded once and validated before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.errors import FrameworkError, SpecError, SpecErrors
from framework.settings.connections import Connection
from framework.settings.envvars import MissingVariable, interpolate_tree, load_env
from framework.settings.targets import Target, build_target
from framework.spec.loader import load_spec_document
from framework.spec.model import Expectation, PipelineSpec

NOT_NULL = "expect_column_values_to_not_be_null"

if TYPE_CHECKING:
    from framework.spec.yaml_source import YamlDocument

PROJECT_FILE = "framework.yml"
DEFAULT_TARGET = "local"


@dataclass
class Project:
    root: Path
    env: Mapping[str, str] = field(default_factory=dict)
    _suites: dict[str, YamlDocument] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def discover(cls, start: Path | None = None) -> Project:
        """The nearest folder holding `framework.yml`, from `FRAMEWORK_PROJECT_DIR` or upward."""
        here = Path(start or os.environ.get("FRAMEWORK_PROJECT_DIR") or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / PROJECT_FILE).is_file():
                return cls(folder, load_env(folder))
        raise FrameworkError(f"no {PROJECT_FILE} found in {here} or its parents; run the command "
                             "inside the project or set FRAMEWORK_PROJECT_DIR")

    # -- project file -------------------------------------------------------------------------

    @cached_property
    def config(self) -> dict[str, Any]:
        path = self.root / PROJECT_FILE
        data = _guarded_yaml(path, PROJECT_FILE)
        if not isinstance(data, dict) or not isinstance(data.get("targets"), dict):
            raise FrameworkError(f"{PROJECT_FILE}: expected a mapping with 'targets'")
        return data

    @cached_property
    def state_dir(self) -> Path:
        """Run state (dlt pipelines, locks, run records, the demo shop, local lake/warehouse)."""
        configured = self.env.get("FRAMEWORK_STATE_DIR") or ".framework"
        path = Path(configured)
        path = path if path.is_absolute() else self.root / path
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise FrameworkError(f"state folder {path} (FRAMEWORK_STATE_DIR): {existing} is a "
                                 "file, not a folder")
        return path

    @property
    def variables(self) -> dict[str, str]:
        return {**self.env, "FRAMEWORK_STATE_DIR": str(self.state_dir),
                "FRAMEWORK_PROJECT_DIR": str(self.root)}

    def target_name(self, name: str | None = None) -> str:
        return name or self.env.get("FRAMEWORK_TARGET") or DEFAULT_TARGET

    def known_target(self, name: str | None = None) -> str:
        """The target's name, refused when framework.yml defines no such target."""
        chosen = self.target_name(name)
        targets = self.config["targets"]
        if chosen not in targets:
            raise FrameworkError(f"{PROJECT_FILE}: unknown target '{chosen}' "
                                 f"(defined: {', '.join(targets)})")
        return chosen

    def target(self, name: str | None = None) -> Target:
        chosen = self.known_target(name)
        targets = self.config["targets"]
        if not isinstance(targets[chosen], dict):
            raise FrameworkError(f"{PROJECT_FILE}: targets.{chosen}: expected a mapping "
                                 "(lake:, warehouse:)")
        try:
            raw = interpolate_tree(targets[chosen], self.variables)
        except MissingVariable as exc:
            raise FrameworkError(f"{PROJECT_FILE}: target '{chosen}' needs the environment "
                                 f"variable {exc.name} (see .env.example)") from None
        try:
            return build_target(chosen, self._absolute_paths(raw))
        except ValueError as exc:
            raise FrameworkError(f"{PROJECT_FILE}: targets.{chosen}: {_first_line(exc)}") from None

    def _absolute_paths(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Relative local paths in a target are relative to the project, not the cwd."""
        lake = dict(raw.get("lake") or {})
        if lake.get("url") and "://" not in lake["url"]:
            lake["url"] = str(self._resolve(lake["url"]))
        warehouse = dict(raw.get("warehouse") or {})
        if warehouse.get("path"):
            warehouse["path"] = str(self._resolve(warehouse["path"]))
        return {**raw, "lake": lake, "warehouse": warehouse}

    def _resolve(self, path: str) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.root / candidate

    # -- sources ------------------------------------------------------------------------------

    def connection(self, name: str) -> Connection:
        path = self.root / "sources" / f"{name}.yml"
        if not path.is_file():
            raise FrameworkError(f"unknown connection '{name}': no sources/{name}.yml")
        try:
            raw = _guarded_yaml(path, f"sources/{name}.yml")
            return Connection.model_validate(interpolate_tree(raw, self.variables))
        except MissingVariable as exc:
            raise FrameworkError(f"sources/{name}.yml: needs the environment variable "
                                 f"{exc.name}") from None
        except ValueError as exc:
            raise FrameworkError(f"sources/{name}.yml: {_first_line(exc)}") from None

    def connection_names(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "sources").glob("*.yml"))

    # -- pipelines ----------------------------------------------------------------------------

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    def pipeline_paths(self) -> list[Path]:
        return sorted(self.pipelines_dir.glob("*.yml"))

    def display(self, path: Path) -> str:
        try:  # the file's own name, even when it is a symlink to something elsewhere
            return str((path.parent.resolve() / path.name).relative_to(self.root))
        except ValueError:
            return str(path)

    def load_pipelines(self, names: list[str] | None = None) -> dict[str, PipelineSpec]:
        """All (or the named) pipelines, validated together; every error is collected."""
        paths = self.pipeline_paths()
        known = {p.stem for p in paths}
        for name in names or []:
            if name not in known:
                raise FrameworkError(f"unknown pipeline '{name}' (no pipelines/{name}.yml)")
        if names:  # only the named files: one broken pipeline must not stop the others
            paths = [p for p in paths if p.stem in names]
        specs = self.load_pipeline_files(paths, known)
        if names:
            return {name: specs[name] for name in names}
        return specs

    def load_pipeline_files(self, paths: list[Path], known: set[str]) -> dict[str, PipelineSpec]:
        """The pipeline files at `paths`, validated as one set whose `depends_on` may name
        `known`; every error is collected."""
        from framework.spec.checks import check_pipeline

        specs: dict[str, PipelineSpec] = {}
        errors: list[SpecError] = []
        for path in paths:
            try:
                spec, doc = load_spec_document(path, self.display(path))
            except SpecErrors as exc:
                errors.extend(exc.errors)
                continue
            except SpecError as exc:
                errors.append(exc)
                continue
            errors.extend(check_pipeline(self, doc, spec, known))
            specs[spec.name] = spec
        if not errors:
            from framework.spec.checks import shared_lake_paths, shared_landing_tables

            errors.extend(_cycle_errors(self, specs))
            errors.extend(shared_lake_paths(self, specs))
            errors.extend(shared_landing_tables(self, specs))
        if errors:
            raise SpecErrors(errors)
        return specs

    def not_set_up(self, specs: dict[str, PipelineSpec]) -> dict[str, tuple[str, list[str]]]:
        """Connections of `specs` whose database was never set up (the demo shop before
        `framework demo`): connection -> (why, its pipelines). Asking creates nothing."""
        from framework.sources.registry import adapter_for

        found: dict[str, tuple[str, list[str]]] = {}
        reasons: dict[str, str | None] = {}
        for name, spec in specs.items():
            # no target here: whether a source exists at all does not depend on it
            source = adapter_for(spec.source, connections=self.connection, target=None,
                                 env=self.variables, root=self.root)
            if source.name not in reasons:
                try:
                    reasons[source.name] = source.not_set_up()
                except FrameworkError:  # a missing variable, say: each pipeline's run says so
                    reasons[source.name] = None
            reason = reasons[source.name]
            if reason:
                found.setdefault(source.name, (reason, []))[1].append(name)
        return found

    def ready(self, specs: dict[str, PipelineSpec],
              say: Callable[[str], None]) -> dict[str, PipelineSpec]:
        """`specs` without the pipelines of connections never set up; one line each said."""
        skipped = self.not_set_up(specs)
        for connection, (reason, names) in skipped.items():
            say(f"skipped {len(names)} pipeline(s) of connection '{connection}' "
                f"({', '.join(names)}): not set up, {reason}")
        gone = {n for _, names in skipped.values() for n in names}
        return {n: s for n, s in specs.items() if n not in gone}

    def pipeline(self, name: str) -> PipelineSpec:
        return self.load_pipelines([name])[name]

    def transform_sql(self, spec: PipelineSpec) -> str | None:
        if spec.transform.sql_file:
            return self.sql_file_text(spec.transform.sql_file)
        return spec.transform.sql

    def sql_file_text(self, sql_file: str) -> str:
        """A transform's SQL file (relative to pipelines/), or why it cannot be one: not UTF-8,
        or empty (it would have run as SELECT * FROM batch, silently)."""
        shown = f"pipelines/{sql_file}"
        try:
            text = (self.pipelines_dir / sql_file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise FrameworkError(f"{shown} is not UTF-8 text") from None
        if not text.strip():
            raise FrameworkError(f"{shown} is empty; write the transform's SELECT, or drop "
                                 "transform.sql_file to load the batch as it is")
        return text

    def expectations(self, spec: PipelineSpec) -> list[Expectation]:
        """The expectations `columns` implies, then the suite file's, then the inline ones.

        A written expectation equal to an implied one (same name and arguments) replaces it, so
        a suite can still give it another severity; not a key's not-null check, though
        (`_keys_never_null`).
        """
        from framework.spec.columns import expectations as implied

        suite: list[Expectation] = []
        if spec.quality.suite:
            data = self.suite_document(spec.quality.suite).data
            suite = [Expectation.model_validate(e)
                     for e in (data if isinstance(data, dict) else {}).get("expectations", [])]
        written = suite + list(spec.quality.expectations)
        seen = {_identity(e) for e in written}
        return _keys_never_null(spec, [e for e in implied(spec) if _identity(e) not in seen]
                                + written)

    def suite_document(self, suite: str) -> YamlDocument:
        """`quality/<suite>.yml`, read once under a pipeline file's limits (its lines kept for
        errors): validation checks it, compile takes its expectations from the same parse."""
        path = self.root / "quality" / f"{suite}.yml"
        stat = path.stat()
        key = f"{suite}:{stat.st_mtime_ns}:{stat.st_size}"  # an edited file is read again
        if key not in self._suites:
            from framework.spec.yaml_source import parse_yaml

            self._suites[key] = parse_yaml(path, self.display(path))
        return self._suites[key]

    @property
    def dbt_dir(self) -> Path:
        return self.root / "dbt_ecommerce"


def _keys_never_null(spec: PipelineSpec, expectations: list[Expectation]) -> list[Expectation]:
    """A NULL primary key fails its batch whatever the severity, with or without `columns:`:
    loaded under 'warn', a merge never matched the row, so each replay added another copy, and
    reconcile counted it missing and extra for good. (DuckDB counts it, no GX import.)"""
    from framework.spec.model import lake_name

    keys = [lake_name(k) for k in spec.source.primary_key]
    checked, out = set(), []
    for expectation in expectations:
        column = expectation.kwargs.get("column")
        if expectation.name == NOT_NULL and column in keys:
            if set(expectation.kwargs) == {"column"}:  # not `mostly`: every row's key
                checked.add(column)
            expectation = Expectation.model_validate({**expectation.root, "severity": "error"})
        out.append(expectation)
    return [Expectation.model_validate({NOT_NULL: {"column": k}, "severity": "error"})
            for k in keys if k not in checked] + out


def _identity(expectation: Expectation) -> str:
    import json

    return json.dumps([expectation.name, expectation.kwargs], sort_keys=True, default=str)


def _first_line(exc: BaseException) -> str:
    """One line: a validation error's keys and reasons (pydantic's first line names only the
    model), else the error's first line."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            listed = [f"{'.'.join(str(part) for part in e['loc']) or '(top)'}: "
                      f"{str(e['msg']).removeprefix('Value error, ')}" for e in errors()]
        except Exception:  # noqa: BLE001 - not pydantic's
            listed = []
        if listed:
            return "; ".join(listed[:3]) + (f" (+{len(listed) - 3} more)" if len(listed) > 3
                                            else "")
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _guarded_yaml(path: Path, shown: str) -> Any:
    """A project YAML file (framework.yml, sources/*.yml) under a pipeline file's limits (an
    alias bomb in a pull request would otherwise hang every command that walks the file), its
    mistakes explained as a pipeline file's are."""
    from framework.spec.yaml_source import load_yaml

    try:
        return load_yaml(path, shown) or {}
    except SpecError as exc:
        raise FrameworkError(exc.render()) from None


def _cycle_errors(project: Project, specs: dict[str, PipelineSpec]) -> list[SpecError]:
    """A `depends_on` cycle, reported at the first pipeline file on it."""
    from graphlib import CycleError, TopologicalSorter

    from framework.spec.yaml_source import parse_yaml

    try:
        TopologicalSorter({n: list(s.depends_on) for n, s in specs.items()}).prepare()
    except CycleError as exc:
        cycle = list(reversed(exc.args[1]))  # now each pipeline depends on the next
        first = cycle[0]
        path = project.pipelines_dir / f"{first}.yml"
        doc = parse_yaml(path, project.display(path))
        index = list(specs[first].depends_on).index(cycle[1])
        return [doc.error(("depends_on", index), "depends_on forms a cycle: "
                          + " -> ".join(cycle), of_value=True)]
    return []

