"""The source kinds the engine knows: each kind's spec model and, imported on use, its adapter.

Adding a kind adds one line to `SPECS`, one to `ADAPTERS` and its model to the union the type
checker sees as `SourceSpec`. `kind` may be left out of a pipeline file; it then means `sql`, so
files written before there were kinds stay valid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, Union

from pydantic import Discriminator, Tag

from framework.sources.files.spec import FilesSource
from framework.sources.rest_api.spec import RestApiSource
from framework.sources.sql.spec import SqlSource

if TYPE_CHECKING:
    from framework.sources.base import SourceAdapter

DEFAULT_KIND = "sql"
SPECS: dict[str, type] = {"sql": SqlSource, "files": FilesSource, "rest_api": RestApiSource}
# module:class of each kind's adapter, imported only when a pipeline of that kind is used.
ADAPTERS: dict[str, str] = {
    "sql": "framework.sources.sql.adapter:SqlAdapter",
    "files": "framework.sources.files.adapter:FilesAdapter",
    "rest_api": "framework.sources.rest_api.adapter:RestApiAdapter",
}


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", DEFAULT_KIND))
    return str(getattr(value, "kind", DEFAULT_KIND))


if TYPE_CHECKING:
    SourceSpec: TypeAlias = SqlSource | FilesSource | RestApiSource
else:  # pydantic's discriminated union over SPECS, told apart by `kind`
    SourceSpec = Annotated[
        Union[tuple(Annotated[model, Tag(kind)] for kind, model in SPECS.items())],  # noqa: UP007
        Discriminator(_kind),
    ]


def adapter_for(source: Any, *, connections: Callable[[str], Any], target: Any,
                env: Mapping[str, str] | None = None, root: Path | None = None) -> SourceAdapter:
    """The adapter of `source`'s kind, bound to it and to what a kind may need: the named
    connections (`sql`), the target (its lake's S3 settings, for `files`), the project's
    variables (`.env` over the process: `${VAR}` in a location, an API token) and the project
    folder (relative locations)."""
    module, _, name = ADAPTERS[source.kind].partition(":")
    adapter: SourceAdapter = getattr(import_module(module), name)(
        source, connections=connections, target=target,
        env=os.environ if env is None else env, root=root or Path.cwd())
    return adapter


def describe(source: Any) -> str:
    """The one line `list`, `plan` and the DAG docs show for a `source:` block; describing
    reads nothing, so no connection or target is bound."""
    def unbound(name: str) -> Any:
        raise LookupError(f"describe() must not open connection '{name}'")

    return adapter_for(source, connections=unbound, target=None).describe()
