"""What a source kind implements: the protocol the engine talks to, and its small vocabulary.

The extract stage, `plan`, `doctor`, `init` and delete reconciliation reach a source only
through these methods, so a new kind (files, an HTTP API, ...) plugs in without touching them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from framework.errors import FrameworkError

if TYPE_CHECKING:
    from framework.context import RunContext


class KeysNotSupported(FrameworkError):
    """The kind cannot list every current key (an API without a full listing, say): delete
    reconciliation is refused for it when the pipeline file is validated."""


@dataclass(frozen=True)
class Rejected:
    """A source record that never became a row: quarantined with where it was and why."""

    where: str  # file and line, page and index: enough to find the record again
    reason: str
    record: str = ""  # the raw text, cut short
    # The whole record's digest, when the source may serve it again (an API at its cursor
    # boundary): a record already in quarantine with this digest is not kept twice.
    digest: str | None = None
    # A value its declared type refused (not a blank line or a broken record): another
    # declaration may take it, so the file is read again when the declaration changes.
    by_value: bool = False


class Extraction(Protocol):
    """One run's read of a source, opened by `SourceAdapter.open`."""

    # The dlt resource that yields this run's rows; its table name is the lake path.
    resource: Any
    # Columns delivered and their types as the source states them (schema-drift checks).
    columns: dict[str, str]
    # The same columns in the framework's portable types (framework/spec/columns.py: string,
    # bigint, timestamp, decimal(p,s) ...): `plan` dry-runs the transform over them.
    types: dict[str, str]

    def nothing_new(self, pipeline: Any) -> bool:
        """True only when running the resource would yield no row (a cheap look; when in
        doubt, False). `pipeline` is the dlt pipeline with its state restored."""
        ...

    def count_waiting(self, last_value: Any) -> tuple[int | None, str]:
        """`plan`, when `nothing_new` said no: how many rows a run would read (None when the
        kind cannot tell cheaply) and what they are (`at or after the cursor`, `2 new files`).
        `last_value` is the stored cursor value, or None."""
        ...

    def explain(self, exc: Exception) -> Exception:
        """dlt's failure while running the resource, as one FrameworkError line naming the
        source or the spec key."""
        ...

    def rejected(self) -> list[Rejected]:
        """Records the read refused (malformed, blank), after the resource has run."""
        ...

    def close(self) -> None:
        ...


class SourceAdapter(Protocol):
    """One source kind, bound to one pipeline's `source:` block."""

    kind: ClassVar[str]
    # The short name messages give the source (`source 'shop': ...`): the connection's name,
    # a folder, an API's host. Pipelines that share it share the answer of `not_set_up`.
    name: str

    def open(self, ctx: RunContext) -> Extraction:
        """Describe and prepare this run's read; errors are one-line FrameworkErrors naming
        the source (a dead server, a missing file, a wrong credential)."""
        ...

    def current_keys(self, ctx: RunContext, columns: list[str]) -> Any:
        """Every current key (and cursor) as an Arrow table, for delete reconciliation; raise
        KeysNotSupported when the kind cannot."""
        ...

    def not_set_up(self) -> str | None:
        """Why the source cannot be read at all yet (the demo shop before `framework demo`),
        or None."""
        ...

    def describe(self) -> str:
        """One line naming what is read, secrets hidden: `shop.orders`, `files s3://b/*.csv`."""
        ...

    def check(self) -> str:
        """`doctor`: reach the source and say what was found, or raise a FrameworkError."""
        ...
