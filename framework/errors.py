"""Errors the CLI turns into one red line: what went wrong, where, and how to fix it."""

from __future__ import annotations

from collections.abc import Iterator


class FrameworkError(Exception):
    """A problem the user can fix; printed as one line, never as a traceback."""


class SpecError(FrameworkError):
    """A problem in a pipeline file, located as `path:line:col: key.path: message`."""

    def __init__(self, path: str, line: int, col: int, key: str, message: str) -> None:
        self.path, self.line, self.col, self.key, self.message = path, line, col, key, message
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class SpecErrors(FrameworkError):
    """Every problem found in one or more pipeline files, one line each."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.render() for e in errors))


class StageError(FrameworkError):
    """A stage failed for a reason the user can act on; names the pipeline and the stage."""

    def __init__(self, pipeline: str, stage: str, message: str) -> None:
        self.pipeline, self.stage = pipeline, stage
        super().__init__(f"{pipeline}: {stage}: {message}")


class ServiceError(FrameworkError):
    """A service (source database, lake, warehouse, dbt) could not be reached or refused us."""

    def __init__(self, service: str, message: str) -> None:
        self.service = service
        super().__init__(f"{service}: {message}")


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it, outermost first: libraries (dlt above all) wrap the error
    that says most. As a traceback shows it: `raise ... from None` ends the chain (the error
    raised explains the one it replaced), and a cycle is followed once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ if current.__cause__ is not None or \
            current.__suppress_context__ else current.__context__
