"""Files `framework init --all` writes, and how a later `init --all` knows they were edited.

Each generated file ends with a stamp line holding a digest of the text above it
(`-- framework-init: 3f2a...` in SQL, `# framework-init: ...` in YAML). Re-running init
rewrites a file only while its text still matches its stamp; an edited file (or one init never
wrote) is left alone and named, with the reason. So generated models are ordinary files a user
edits, and init can still follow the source's schema in the ones nobody touched.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

_STAMP = re.compile(r"^(#|--) framework-init: ([0-9a-f]{16})\b.*\n?\Z", re.MULTILINE)
NOTE = "(init rewrites this file only while it is unedited)"


@dataclass(frozen=True)
class Written:
    path: Path
    action: str  # "wrote", "updated", "unchanged" or "skipped"
    reason: str = ""
    previous: str | None = None  # the text an update replaced, to take it back


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def stamped(path: Path, body: str) -> str:
    """`body` with its stamp line appended (a SQL or a YAML comment, by the file's suffix)."""
    comment = "--" if path.suffix == ".sql" else "#"
    body = body if body.endswith("\n") else body + "\n"
    return f"{body}{comment} framework-init: {_digest(body)} {NOTE}\n"


def unedited(text: str) -> bool | None:
    """True if `text` still matches its stamp, False if edited since, None if it has none."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return None
    match = _STAMP.match(lines[-1])
    if match is None:
        return None
    return _digest("".join(lines[:-1])) == match[2]


def write(path: Path, body: str) -> Written:
    """Write the stamped `body` unless the file holds text a person wrote or edited."""
    text = stamped(path, body)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
        return Written(path, "wrote")
    current = path.read_text(encoding="utf-8")
    if current == text:
        return Written(path, "unchanged")
    state = unedited(current)
    if state is None:
        return Written(path, "skipped", "not written by framework init")
    if not state:
        return Written(path, "skipped", "edited since framework init wrote it")
    path.write_text(text, encoding="utf-8")
    return Written(path, "updated", previous=current)


def take_back(done: list[Written]) -> None:
    """Undo `write`s: new files go, updated ones get their previous text back."""
    for item in reversed(done):
        if item.action == "wrote":
            item.path.unlink(missing_ok=True)
        elif item.action == "updated" and item.previous is not None:
            item.path.write_text(item.previous, encoding="utf-8")
