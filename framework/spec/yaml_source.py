"""YAML parsing that remembers where every key and value was written.

Errors must name `file:line:col`, so the document is composed into nodes first and every path
(`("source", "incremental", "cursor")`) is mapped to its position (1-based).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datetime as dt

import yaml

from framework.errors import SpecError

# One constructor for scalars and keys; composing first keeps the node marks for error positions.
_CONSTRUCTOR = yaml.SafeLoader("")

Key = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """The parsed data plus the position of every key and value in the file."""

    path: str
    data: Any
    key_positions: dict[Key, tuple[int, int]] = field(default_factory=dict)
    value_positions: dict[Key, tuple[int, int]] = field(default_factory=dict)

    def position(self, key: Key, *, of_value: bool = False) -> tuple[int, int]:
        """The closest known position for `key`, walking up to its parents."""
        table = self.value_positions if of_value else self.key_positions
        for depth in range(len(key), 0, -1):
            prefix = key[:depth]
            if prefix in table:
                return table[prefix]
            if prefix in self.key_positions:
                return self.key_positions[prefix]
        return (1, 1)

    def error(self, key: Key, message: str, *, of_value: bool = False) -> SpecError:
        line, col = self.position(key, of_value=of_value)
        return SpecError(self.path, line, col, dotted(key), message)


def dotted(key: Key) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def parse_yaml(path: Path, display: str | None = None) -> YamlDocument:
    """Parse one YAML file; any syntax problem becomes one located `SpecError`."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(shown, 1, 1, "", f"cannot read file: {exc.strerror}") from None
    return parse_yaml_text(text, shown)


def parse_yaml_text(text: str, display: str) -> YamlDocument:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(display, line, col, "", f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(display, 1, 1, "", f"invalid YAML: {exc}") from None
    doc = YamlDocument(display, None)
    if node is None:
        raise SpecError(display, 1, 1, "", "the file is empty; a pipeline needs at least "
                        "'name', 'source' and 'lake'")
    doc.data = _walk(node, (), doc)
    return doc


def _walk(node: yaml.Node, key: Key, doc: YamlDocument) -> Any:
    doc.value_positions[key] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            name = _CONSTRUCTOR.construct_object(key_node)
            child = (*key, name if isinstance(name, str) else str(name))
            if name in out:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                raise SpecError(doc.path, line, col, dotted(child), "duplicate key")
            doc.key_positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[name] = _walk(value_node, child, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*key, index)
            doc.key_positions[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_walk(item, child, doc))
        return items
    value = _CONSTRUCTOR.construct_object(node, deep=True)
    # YAML turns unquoted timestamps into datetimes; specs treat them as the ISO text written.
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
