"""`${VAR}` and `${VAR:-default}` in project files, and the secrets they bring in.

Values come from the process environment, then an optional `.env` beside `framework.yml`.
Every value that lands in a secret field is registered so logs and errors can redact it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError

_SECRETS: set[str] = set()


class MissingVariable(FrameworkError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"environment variable {name} is not set")


def load_env(root: Path) -> dict[str, str]:
    """The process environment over `.env` (the environment wins, as with dbt and docker)."""
    values: dict[str, str] = {}
    dotenv = root / ".env"
    if dotenv.is_file():
        from dotenv import dotenv_values

        values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    values.update(os.environ)
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand `${NAME}` and `${NAME:-default}`; defaults may nest further `${...}`."""
    out, i = [], 0
    while i < len(text):
        start = text.find("${", i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        depth, j = 1, start + 2
        while j < len(text) and depth:
            if text.startswith("${", j):
                depth, j = depth + 1, j + 2
                continue
            depth -= text[j] == "}"
            j += 1
        if depth:
            raise FrameworkError("a '${' is never closed with '}'")
        body = text[start + 2 : j - 1]
        name, _, default = body.partition(":-")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise FrameworkError("a '${...}' reference does not name a variable (letters, digits, '_')")
        if env.get(name):
            out.append(env[name])
        elif ":-" in body:
            out.append(interpolate(default, env))
        else:
            raise MissingVariable(name)
        i = j
    return "".join(out)


def interpolate_tree(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [interpolate_tree(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate_tree(v, env) for k, v in value.items()}
    return value


def seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment variable `name`, or one line naming it."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise FrameworkError(f"environment variable {name}={text!r}: expected a number of "
                             f"seconds (default {default:g})")
    return value


def register_secret(value: str | None) -> None:
    if value and len(value) >= 3:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """Replace every registered secret (longest first) with `***`."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
