"""The dbt selections owed a build, in a marker file safe under parallel runs.

Several pipelines may run at once in separate processes (Airflow does): each marks its dbt
selection owed before and after its rows reach the warehouse, and whichever run builds next
builds every owed selection. Every change is a read-modify-write under an `flock`, and each mark
carries a fresh token: a build settles only the marks it saw before it started, so a selection
marked again meanwhile (new rows its build may have missed) stays owed for the next build.
"""

from __future__ import annotations

import fcntl
import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from framework.errors import FrameworkError

Owed = dict[str, str]  # dbt selection -> token of its latest mark


class OwedModels:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def owe(self, selections: Iterable[str]) -> Owed:
        """Mark `selections` owed a build (again: a fresh token even if already owed); the
        marks made, for the warehouse's copy (framework/stages/load/state.py)."""
        marks = {s: uuid.uuid4().hex for s in selections}
        with self._locked() as owed:
            owed.update(marks)
        return marks

    def snapshot(self) -> Owed:
        """The selections owed now, to build; settle them with `settle` after the build."""
        with self._locked() as owed:
            return dict(owed)

    def settle(self, built: Owed) -> None:
        """Forget the marks a build covered; marks made since it started stay."""
        with self._locked() as owed:
            for selection, token in built.items():
                if owed.get(selection) == token:
                    del owed[selection]

    @contextmanager
    def _locked(self) -> Iterator[Owed]:
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        with open(self.marker.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # blocking: held for a file read and write only
            owed = self._read()
            before = dict(owed)
            yield owed
            if owed != before:
                self._write(owed)

    def _read(self) -> Owed:
        if not self.marker.is_file():
            return {}
        try:
            data = json.loads(self.marker.read_text() or "{}")
        except ValueError as exc:  # edited by hand, or a disk that lost it: say which file
            raise FrameworkError(f"{self.marker}: not a dbt owed marker ({exc}); fix it, or "
                                 "delete it and build the dbt models by hand") from None
        if isinstance(data, list):  # the marker of earlier versions: a list of selections
            return {str(s): "" for s in data}
        if not isinstance(data, dict):
            raise FrameworkError(f"{self.marker}: not a dbt owed marker (a JSON object of "
                                 "selections); fix it, or delete it and build the dbt models by hand")
        return {str(k): str(v) for k, v in data.items()}

    def _write(self, owed: Owed) -> None:
        if not owed:
            self.marker.unlink(missing_ok=True)
            return
        _write_whole(self.marker, json.dumps(owed))


def _write_whole(path: Path, text: str) -> None:
    """Replace `path` with `text`, whole or not at all, whenever the process dies."""
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    partial.replace(path)


class ChangedSeeds:
    """dbt seeds edited since the last build that succeeded, as selections owed a build
    (`<seed>+`): a seed is data the models read, but no pipeline loads it, so an edit (a
    category named otherwise) reached the marts only when some load happened to select them.
    Kept per target in the state folder. A state folder without the record (a new project,
    a new worker) takes the seeds as built: its first loads build what reads them anyway, and
    edits from then on are seen."""

    def __init__(self, seeds: Path, record: Path) -> None:
        self.seeds, self.record = seeds, record
        self.seen: dict[str, str] = {}  # the digests `owed` compared: a build takes these

    def owed(self) -> list[str]:
        """The selections of the seeds edited since the last build (none on a first look,
        which records the seeds as they are)."""
        built, self.seen = self._read(), self._current()
        if built is None:
            self.remember()
            return []
        return [f"{name}+" for name, digest in self.seen.items() if built.get(name) != digest]

    def remember(self) -> None:
        """After a build that succeeded: the seeds as `owed` saw them before it (an edit made
        during the build stays owed)."""
        self.record.parent.mkdir(parents=True, exist_ok=True)
        _write_whole(self.record, json.dumps(self.seen, sort_keys=True))

    def _current(self) -> dict[str, str]:
        import hashlib

        files = sorted(self.seeds.rglob("*.csv")) if self.seeds.is_dir() else []
        return {f.stem: hashlib.blake2b(f.read_bytes(), digest_size=16).hexdigest()
                for f in files}

    def _read(self) -> dict[str, str] | None:
        try:
            data = json.loads(self.record.read_text())
        except OSError:  # none yet
            return None
        except ValueError:  # unreadable: build the seeds' models once
            return {}
        return data if isinstance(data, dict) else {}
