"""YAML parsing that remembers where every key and value was written.

Errors must name `file:line:col`, so the document is composed into nodes first and every path
(`("source", "incremental", "cursor")`) is mapped to its position (1-based). Files are read and
checked by `yaml_guard` first (size, kind, encoding, aliases, depth), so nothing here can be
made to run for long; libyaml composes, and PyYAML's own parser re-reads a file libyaml
refuses, for its more precise wording of the mistake.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from framework.errors import SpecError
from framework.spec.yaml_guard import check_characters, check_structure, read_text

# One constructor for scalars; composing first keeps the node marks for error positions.
_CONSTRUCTOR = yaml.SafeLoader("")

Key = tuple[str | int, ...]

_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# PyYAML's parser words mistakes better than libyaml's, at ~10x the time: it re-reads only a
# refused file, and only one small enough to stay well under a second (16 KiB of the densest
# YAML: 0.5 s on a busy 2-core machine; the largest shipped pipeline file is 1.5 KiB).
_REREAD_CHARS = 16 * 1024
# What a scalar may become: anything else (`!!binary` bytes) is not pipeline data.
_PLAIN_TYPES = (str, int, float, bool, type(None), dt.date, dt.datetime)
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
SHORT = 80


@dataclass
class YamlDocument:
    """The parsed data plus the position of every key and value in the file."""

    path: str
    data: Any
    key_positions: dict[Key, tuple[int, int]] = field(default_factory=dict)
    value_positions: dict[Key, tuple[int, int]] = field(default_factory=dict)
    # Scalars as written (`yes`, `0123`), to explain what YAML made of them.
    texts: dict[Key, str] = field(default_factory=dict)

    def position(self, key: Key, *, of_value: bool = False) -> tuple[int, int]:
        """The closest known position for `key`, walking up to its parents."""
        table = self.value_positions if of_value else self.key_positions
        for depth in range(len(key), 0, -1):
            prefix = key[:depth]
            if prefix in table:
                return table[prefix]
            if prefix in self.key_positions:
                return self.key_positions[prefix]
        return self.value_positions.get((), (1, 1)) if of_value else (1, 1)

    def error(self, key: Key, message: str, *, of_value: bool = False) -> SpecError:
        line, col = self.position(key, of_value=of_value)
        return SpecError(self.path, line, col, one_line(dotted(key)), one_line(message))

    def problem(self, key: Key, message: str, *, at_key: bool = False) -> SpecError:
        """An error about the value at `key`: a mapping's at its key, anything else at itself."""
        return self.error(key, message,
                          of_value=not at_key and not isinstance(self.value(key), dict))

    def value(self, key: Key) -> Any:
        data = self.data
        for part in key:
            try:
                data = data[part]
            except (KeyError, IndexError, TypeError):
                return None
        return data


def one_line(text: str) -> str:
    """One problem, one line, even when a key or value quoted in it spans several."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def shorten(text: str, limit: int = SHORT) -> str:
    """A long key or value quoted in a message: its start, and how long it is."""
    return text if len(text) <= limit else f"{text[:limit - 20]}... ({len(text)} characters)"


def dotted(key: Key) -> str:
    out = ""
    for part in key:
        name = shorten(str(part))
        out += f"[{part}]" if isinstance(part, int) else (f".{name}" if out else name)
    return out


def parse_yaml(path: Path, display: str | None = None) -> YamlDocument:
    """Parse one YAML file; any syntax problem becomes one located `SpecError`."""
    shown = display or str(path)
    return parse_yaml_text(read_text(path, shown), shown)


def parse_yaml_text(text: str, display: str) -> YamlDocument:
    doc = YamlDocument(display, None)
    node = _checked_and_composed(text, display)
    if node is None:
        raise SpecError(display, 1, 1, "", "the file is empty; a pipeline needs at least "
                        "'name', 'source' and 'lake'")
    doc.data = _plain(node, doc)
    return doc


def load_yaml(path: Path, display: str) -> Any:
    """The plain data of one of a project's other YAML files (framework.yml, sources/*.yml),
    under a pipeline file's limits and with its explained errors; None when it is empty."""
    text = read_text(path, display)
    node = _checked_and_composed(text, display)
    return None if node is None else _plain(node, YamlDocument(display, None))


def _checked_and_composed(text: str, display: str) -> yaml.Node | None:
    check_characters(text, display)
    check_structure(text, display)
    try:
        return _compose(text)
    except yaml.MarkedYAMLError as exc:
        line, col, message = _explain(exc)
        raise SpecError(display, line, col, "", f"invalid YAML: {message}") from None
    except yaml.YAMLError as exc:
        raise SpecError(display, 1, 1, "", f"invalid YAML: {exc}") from None


def _plain(node: yaml.Node, doc: YamlDocument) -> Any:
    try:
        return _walk(node, (), doc)
    except yaml.MarkedYAMLError as exc:  # an unknown tag such as `!Ref`
        line, col, message = _explain(exc)
        raise SpecError(doc.path, line, col, "", f"invalid YAML: {message}") from None


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_COMPOSER)
    except yaml.YAMLError:
        if _COMPOSER is yaml.SafeLoader or len(text) > _REREAD_CHARS:
            raise
        return yaml.compose(text, Loader=yaml.SafeLoader)  # raises, in PyYAML's words


def _explain(exc: yaml.MarkedYAMLError) -> tuple[int, int, str]:
    """PyYAML's parser vocabulary turned into what happened and how to fix it."""
    problem, context = exc.problem or "", exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    at = exc.context_mark or mark

    def pos(m: Any) -> tuple[int, int]:
        return (m.line + 1, m.column + 1) if m else (1, 1)

    def where(m: Any) -> str:
        return "the end of the file" if problem.endswith("'<stream end>'") or \
            "end of stream" in problem else f"line {m.line + 1}, column {m.column + 1}"

    if "'\\t'" in problem or "tab character" in problem:
        return (*pos(mark), ("a tab character; YAML indents and separates with spaces only "
                "(replace the tab with spaces)"))
    if context.startswith(("while parsing a flow sequence", "while parsing a flow mapping")):
        opener, closer = ("[", "]") if "sequence" in context else ("{", "}")
        return (*pos(at), (f"the '{opener}' here is never closed (expected ',' or '{closer}' "
                f"at {where(mark)}); add the missing '{closer}'"))
    if context == "while scanning a quoted scalar":
        quote = exc.context_mark.buffer[exc.context_mark.pointer] if exc.context_mark and \
            exc.context_mark.buffer else '"'
        return (*pos(at), f"the {quote} here is never closed; add the closing {quote}")
    if problem.startswith("mapping values are not allowed"):
        return (*pos(mark), ("unexpected ':'; quote a value that contains ': ' "
                "(description: \"a: b\") or fix the indentation of this line"))
    if problem == "could not find expected ':'":
        return (*pos(at), "this line is not a 'key: value' pair; add ': ' after the key")
    if context == "while parsing a block mapping" and "'<block mapping start>'" in problem:
        return (*pos(mark), ("this line is indented differently from the keys above it; "
                "align keys of the same mapping"))
    if context == "while parsing a block mapping" and "'-'" in problem:
        return (*pos(mark), ("a list item ('- ') where a 'key: value' is expected; indent the "
                "list under its key"))
    if problem.startswith("found undefined alias"):
        name = problem.split("'")[1] if "'" in problem else "?"
        return (*pos(mark), f"alias '*{name}' is used, but no '&{name}' anchor defines it")
    if problem.startswith("could not determine a constructor for the tag"):
        tag = problem.split("'")[1] if "'" in problem else "?"
        return (*pos(mark), (f"unknown tag '{tag}'; the framework's files are plain YAML, "
                "without tags"))
    if context == "expected a single document in the stream":
        return (*pos(mark), "a second YAML document ('---'); a file holds one")
    if problem.startswith("found character") and "cannot start any token" in problem:
        char = problem.split("'")[1] if "'" in problem else "?"
        return (*pos(mark), f"a plain value cannot start with '{char}'; quote the value")
    detail = f"{problem} ({context})" if context and problem else problem or context
    return (*pos(mark), detail or "invalid YAML")


def _walk(node: yaml.Node, key: Key, doc: YamlDocument,
          key_at: tuple[int, int] | None = None) -> Any:
    at = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.ScalarNode) and node.value == "" and not node.style and key_at:
        at = key_at  # `key:` with nothing after it: the key is where the value is missing
    doc.value_positions[key] = at
    if isinstance(node, yaml.CollectionNode) and node.tag not in _COLLECTION_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")  # `!!set`, `!!python/object:...`
        raise SpecError(doc.path, *at, dotted(key), f"unknown tag '{shorten(tag)}'; the "
                        "framework's files are plain YAML, without tags")
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            here = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError(doc.path, *here, dotted(key), "a key must be a plain word, "
                                "not a list or mapping")
            name = key_node.value  # as written: `on`, `yes` and `1` stay text
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError(doc.path, *here, dotted((*key, "<<")), "merge keys ('<<') are not "
                                "supported in pipeline files; write the keys out")
            child = (*key, name)
            if name in out:
                first = doc.key_positions[child]
                raise SpecError(doc.path, *here, dotted(child), f"duplicate key '{name}' "
                                f"(first written at line {first[0]}); keep one of them")
            doc.key_positions[child] = here
            out[name] = _walk(value_node, child, doc, here)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*key, index)
            doc.key_positions[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_walk(item, child, doc))
        return items
    doc.texts[key] = node.value
    try:
        value = _CONSTRUCTOR.construct_object(node, deep=True)
    except ValueError as exc:
        if node.tag.endswith((":int", ":float")):  # Python reads at most 4300 digits
            raise SpecError(doc.path, *at, dotted(key), f"'{shorten(node.value)}' is too long "
                            "a number to read; quote it if it is meant as text") from None
        # `2016-13-01` looks like a date but is not one
        raise SpecError(doc.path, *at, dotted(key), f"'{node.value}' is not a valid date or "
                        f"time ({exc}); quote it if it is meant as text") from None
    if not isinstance(value, _PLAIN_TYPES):
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise SpecError(doc.path, *at, dotted(key), f"the tag '{tag}' makes "
                        f"{type(value).__name__} data; pipeline files hold text, numbers and "
                        "true/false only (remove the tag)")
    # YAML turns unquoted timestamps into datetimes; specs treat them as the ISO text written.
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
