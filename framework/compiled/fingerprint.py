"""A compiled pipeline's fingerprint: sha256 over a canonical JSON of what was compiled."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint_of(canonical: dict[str, Any]) -> str:
    """Key order, whitespace and non-JSON values (dates, decimals) never change it."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
