"""dlt's pipeline state, read without importing dlt: the local copy, and whether it is current.

A scheduled run mostly finds nothing new. Learning that through dlt costs its import and its
configuration (about a second for five pipelines) before the source is even asked, and `plan`
would pay it per pipeline too. Both read dlt's files directly here: the local `state.json`
(typed values decoded as dlt decodes them) and, for `run`, the newest state dlt keeps with the
lake, so that the source's cheap "anything new?" can answer on the state dlt itself would
restore. Anything unexpected (a file dlt wrote differently, a package not yet loaded, a newer
state in the lake) means "ask dlt", never a guess.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import posixpath
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from framework.lake import RAW, Lake

STATE_FILE = "state.json"
# Package folders dlt has not finished with (extracted, normalized, being normalized).
PENDING_FOLDERS = ("normalize/extracted", "load/normalized", "load/new")
# dlt's typed-JSON markers (dlt.common.json): a private-use character before the value's text.
_PUA_START = int(os.environ.get("DLT_JSON_TYPED_PUA_START", "0xf026"), 16)
_PUA = {0: "decimal", 1: "datetime", 2: "date", 7: "time"}
_PUA_OTHERS = range(8)  # uuid, hex bytes, bytes, wei: dlt's own types, left to dlt


class _Undecodable(ValueError):
    """A typed value this module does not decode as dlt would: dlt reads the file itself."""


@dataclass(frozen=True)
class StateOnly:
    """What a source's `nothing_new` reads of a dlt pipeline: its state alone."""

    state: Any


def parses(data: bytes) -> bool:
    """Whether a state file's text is the JSON object dlt reads (the local `state.json`, or a
    lake state file's header): not cut short or overwritten."""
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def local_state(path: Path) -> dict[str, Any] | None:
    """dlt's local pipeline state (`<pipelines_dir>/<name>/state.json`) with its typed values
    decoded; None when missing or not plain JSON (dlt then reads its own file)."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return _decoded_tree(state) if isinstance(state, dict) else None
    except (OSError, ValueError):  # _Undecodable included
        return None


def has_pending_packages(pipeline_dir: Path) -> bool:
    """Whether dlt holds a package of this pipeline it has not finished loading (a killed
    run's), or one it is still normalizing: only dlt may take those further."""
    return any(_has_entries(pipeline_dir / folder) for folder in PENDING_FOLDERS)


def drop_committed_extracts(pipeline_dir: Path) -> list[str]:
    """Remove the extracted copies of packages dlt's normalize already committed; return their
    load ids.

    Normalize renames the normalized package into `load/`, then deletes the extracted one. A
    kill in between leaves both, and dlt's next normalize would commit the package again onto
    the existing folder and fail (`Directory not empty`) on every run after.
    """
    committed = {entry.name for folder in ("load/normalized", "load/loaded")
                 if (pipeline_dir / folder).is_dir()
                 for entry in os.scandir(pipeline_dir / folder)}
    extracted = pipeline_dir / "normalize" / "extracted"
    dropped = []
    if extracted.is_dir():
        for entry in os.scandir(extracted):
            if entry.name in committed:
                shutil.rmtree(entry.path)
                dropped.append(entry.name)
    return dropped


def drop_torn_schema_files(lake: Lake, name: str) -> list[str]:
    """Remove pipeline `name`'s empty schema files in the lake (`raw/_dlt_version`); return
    them.

    dlt's filesystem destination writes a load's schema file in place, not through a rename:
    a kill between its create and its write leaves it empty, and dlt, finding a file for the
    schema's hash, parses it on every later load and fails. Without it, dlt writes it again.
    """
    folder = lake.path(RAW, "_dlt_version")
    try:
        entries = lake.fs.ls(folder, detail=True)
    except FileNotFoundError:
        return []
    torn = [e["name"] for e in entries if e.get("type") == "file" and not e.get("size")
            and posixpath.basename(e["name"]).startswith(f"{name}__")]
    for path in torn:
        lake.fs.rm(path)
    return torn


def current_state(pipeline_dir: Path, lake: Lake,
                  stored_files: list[tuple[str, str]]) -> dict[str, Any] | None:
    """The local state when it is the one dlt's `sync_destination` would keep: the newest of
    the pipeline's state files in the lake (`stored_states`) is this very version. None
    otherwise (another worker ran since, no state here or there): the caller goes through dlt."""
    state = local_state(pipeline_dir / STATE_FILE)
    if state is None or not state.get("_version_hash"):
        return None
    stored = _newest_stored(lake, stored_files)
    if stored is None or stored.get("version_hash") != state["_version_hash"] \
            or stored.get("version") != state.get("_state_version"):
        return None
    return state


def pending_is_stale(pipeline_dir: Path, lake: Lake,
                     stored_files: list[tuple[str, str]]) -> bool:
    """Whether the package this machine extracted but never loaded (a killed run's) was
    overtaken: a completed load in the lake holds a state at least as new as the one the
    package was extracted from, and not that very state (another worker read the same rows
    since, and loaded them). Loaded now, its rows would land twice (appended), or bring back
    rows deleted since (merged)."""
    state = local_state(pipeline_dir / STATE_FILE)
    completed = lake.completed_loads()
    stored = _newest_stored(lake, [f for f in stored_files if f[0] in completed])
    if state is None or stored is None:
        return False
    version = state.get("_state_version")
    if not isinstance(version, int) or not isinstance(stored.get("version"), int):
        return False
    return stored["version"] > version or (
        stored["version"] == version and stored.get("version_hash") != state.get("_version_hash"))


def stored_states(lake: Lake, name: str) -> list[tuple[str, str]]:
    """(load id, path) of every state file dlt's filesystem destination keeps for pipeline
    `name`: `<name>__<load_id>__<hash>.jsonl`, split as dlt splits it (from the right, so a
    name holding `__`, or one that begins another's, is never mistaken for it)."""
    folder = lake.path(RAW, "_dlt_pipeline_state")
    try:
        paths = lake.fs.ls(folder, detail=False)
    except FileNotFoundError:
        return []
    found = []
    for path in paths:
        parts = posixpath.splitext(posixpath.basename(str(path)))[0].rsplit("__", 2)
        if len(parts) == 3 and parts[0] == name:
            found.append((parts[1], str(path)))
    return found


def lake_state(lake: Lake, name: str) -> dict[str, Any] | None:
    """The state a run of pipeline `name` without its local state restores from the lake (the
    newest stored), typed values decoded; None when there is none or it cannot be read."""
    header = _newest_stored(lake, stored_states(lake, name))
    if header is None or not isinstance(header.get("state"), str):
        return None
    from dlt.common.versioned_state import decompress_state

    try:
        state = decompress_state(header["state"])
        decoded: dict[str, Any] | None = _decoded_tree(state) if isinstance(state, dict) else None
        return decoded
    except Exception:  # noqa: BLE001 - a state dlt cannot read either: the run decides
        return None


def _newest_stored(lake: Lake, stored_files: list[tuple[str, str]]) -> dict[str, Any] | None:
    """The header of the state file dlt would restore: the greatest load id, as dlt compares
    them (as text). None when there is none, or it cannot be read (another worker removed it
    meanwhile): dlt then decides."""
    if not stored_files:
        return None
    _, chosen = max(stored_files)
    try:
        with lake.fs.open(chosen, "r") as handle:
            header = json.load(handle)
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def _has_entries(folder: Path) -> bool:
    """Whether `folder` holds a package (a folder): a file there is dlt's own atomic-save
    temporary, left by a kill before its rename, which dlt ignores."""
    try:
        return any(entry.is_dir() for entry in os.scandir(folder))
    except FileNotFoundError:
        return False


def _decoded_tree(value: Any) -> Any:
    """Every typed value of a state decoded, as dlt hands its state to the pre-check."""
    if isinstance(value, dict):
        return {k: _decoded_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded_tree(v) for v in value]
    return _decoded(value)


def _decoded(value: Any) -> Any:
    """A value as dlt stored it (`\\uf027` + ISO text for a datetime, ...)."""
    if not isinstance(value, str) or len(value) < 2:
        return value
    kind = _PUA.get(ord(value[0]) - _PUA_START)
    if kind is None and ord(value[0]) - _PUA_START in _PUA_OTHERS:
        raise _Undecodable(value)
    text = value[1:]
    try:
        if kind == "decimal":
            return Decimal(text)
        if kind == "datetime":
            return dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        if kind == "date":
            return dt.date.fromisoformat(text)
        if kind == "time":
            return dt.time.fromisoformat(text)
    except ValueError:
        return value
    return value
