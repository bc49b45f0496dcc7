"""A quarantined batch blocks its pipeline until it is replayed after a fix, or released.

dlt's cursor has already moved past a quarantined batch, so loading later batches would leave a
silent gap: its rows would never arrive. The warehouse ledger holds the truth (status
`quarantined`); the run log keeps a local copy so that `list` and `history` show the blocked
state without a warehouse connection. A release is recorded with who released it and why.
"""

from __future__ import annotations

import getpass
import os
import socket
from datetime import UTC, datetime

from framework.errors import FrameworkError


class PipelineBlocked(FrameworkError):
    """The pipeline has a quarantined batch: nothing newer may reach the warehouse."""


def blocked_message(pipeline: str, held: dict[str, str]) -> str:
    """One line: which batch blocks the pipeline, why, and the two ways out."""
    load_id, reason = next(iter(held.items()))
    more = f" (+{len(held) - 1} more quarantined batch(es))" if len(held) > 1 else ""
    why = f": {reason}" if reason else ""
    return (f"{pipeline}: blocked by quarantined batch {load_id}{why}{more}; nothing newer "
            f"loads until it is fixed and replayed (framework replay --pipeline {pipeline} "
            f"--load-id {load_id}) or released (framework release --pipeline {pipeline} "
            f"--load-id {load_id} --reason TEXT)")


def release_note(reason: str) -> str:
    """Who released a batch, from where, when and why (kept in the ledger and the run log)."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"released by {_user()}@{socket.gethostname()} at {when}: {reason}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid {os.getuid()}"
