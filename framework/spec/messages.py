"""Wording shared by spec errors: suggestions, values as YAML, patterns in plain words.

Messages are printed through rich, so a list is written with quoted items (`["order_id"]`):
a bare `[order_id]` would be taken for markup and vanish.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable
from typing import Any

from framework.spec.base import DURATION_PATTERN
from framework.spec.model import LAKE_PATH_PATTERN, NAME_PATTERN
from framework.spec.yaml_source import shorten

_PLAIN = re.compile(r"^[A-Za-z_][\w./+-]*$")
_RESERVED = ("true", "false", "yes", "no", "on", "off", "null", "y", "n", "~")
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}
_UNITS = {"us": "us", "ms": "ms", "s": "s", "sec": "s", "secs": "s", "second": "s",
          "seconds": "s", "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
          "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "d": "d", "day": "d",
          "days": "d"}


def closest(word: str, choices: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    match = closest(word, choices)
    return f" (did you mean '{match}'?)" if match else ""


def flow(value: Any) -> str:
    """`value` as one line of YAML: plain words bare, list items always quoted."""
    if isinstance(value, str):
        text = shorten(value)
        if not text.isprintable():  # a newline or tab: escaped, so the error stays one line
            return json.dumps(text)
        plain = _PLAIN.match(text) and text.lower() not in _RESERVED
        return text if plain else "'" + text.replace("'", "''") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v) if isinstance(v, str) else flow(v)
                               for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and not math.isfinite(value):  # as YAML writes it
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return json.dumps(value)


def quoted(value: Any) -> str:
    """A value inside a sentence: text in quotes, anything else as YAML."""
    if isinstance(value, str):
        value = shorten(value)
        return f"'{value}'" if value.isprintable() else json.dumps(value)
    return flow(value)


def type_name(json_type: str) -> str:
    return _TYPE_NAMES.get(json_type, "a value")


def describe(value: Any, written: str | None = None) -> str:
    """What YAML made of a value, shown as the user wrote it."""
    shown = written if written is not None else flow(value)
    if value is None:
        return "nothing" if not written or written == "" else f"null ({shown})"
    if isinstance(value, bool):
        return f"a boolean ({shown})"
    if isinstance(value, (int, float)):
        return f"a number ({shown})"
    if isinstance(value, str):
        return f"a string ({quoted(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def pattern_problem(pattern: str, value: Any) -> str:
    """Why `value` does not match one of the model's patterns, in words, with a suggestion."""
    if pattern in (NAME_PATTERN, LAKE_PATH_PATTERN):
        fixed = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]+", "_", str(value).lower())).strip("_")
        hint = f" (e.g. {fixed})" if fixed and re.match(pattern, fixed) and \
            len(fixed) <= 60 else ""
        single = " (single, not at the end)" if pattern == LAKE_PATH_PATTERN else ""
        return (f"{quoted(value)} is not a valid name: use lower-case letters, digits and "
                f"'_'{single}, starting with a letter{hint}")
    if pattern == DURATION_PATTERN:
        match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$", str(value))
        unit = _UNITS.get(match.group(2).lower()) if match else None
        hint = f" (did you mean '{match.group(1)}{unit}'?)" if match and unit else ""
        if re.match(r"^\d+(\.\d+)?$", str(value)):
            hint = f" (did you mean {value}, without quotes, or '{value}s'?)"
        return (f"{quoted(value)} is not a duration: write a number of seconds or a number and a "
                f"unit (us, ms, s, m, h, d) such as '10m'{hint}")
    return f"{quoted(value)} does not match the pattern {pattern}"
