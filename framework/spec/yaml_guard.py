"""Limits that keep a hostile pipeline file from hanging or exhausting `framework validate`.

A pull request may contain anything, and CI validates it. Before YAML builds a single object:

- the path must be a regular file (not a directory named `x.yml`, not a symlink to `/dev/zero`,
  not a named pipe that would block the read) of at most `MAX_BYTES`, read with that bound;
- the bytes must be UTF-8 (a UTF-8 BOM is dropped) without control characters, which YAML
  forbids anyway: each is named at its line and column instead of as a reader offset;
- one pass over libyaml's event stream (iterative, so nesting cannot exhaust the stack) counts
  the values the document holds once aliases are expanded, without expanding them: an anchor's
  size is known when its node ends, and an alias adds that size. An alias bomb (nine levels
  of nine aliases: 9**9 values from a few hundred bytes) is refused at the alias that crosses
  `MAX_VALUES`; an alias inside the node its anchor names (a recursive structure) is refused;
  so is nesting deeper than `MAX_DEPTH` and a second document.

Anchors and aliases themselves stay allowed (a shared list of columns is a fair use); merge
keys (`<<`) are refused later, where keys are read (`yaml_source._walk`).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import yaml

from framework.errors import SpecError

MAX_BYTES = 1024 * 1024
# The largest shipped pipeline holds ~150 values; a 500-column table with rules, ~5,000.
MAX_VALUES = 20_000
# The deepest key a pipeline file has is 6 levels down (quality.expectations[0].expect_...).
MAX_DEPTH = 20

# Characters YAML 1.1 refuses in a stream (PyYAML's Reader.NON_PRINTABLE): C0 controls except
# tab and line breaks, DEL, C1 controls except NEL, surrogates, U+FFFE and U+FFFF.
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD"
                            "\U00010000-\U0010FFFF]")
_TOO_DEEP = (f"nested more than {MAX_DEPTH} levels deep; a pipeline file needs far fewer (is it "
             "the right file?)")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISSOCK, "a socket"))


def read_text(path: Path, shown: str) -> str:
    """The file's text, or one located `SpecError` saying why it cannot be a pipeline file."""
    try:
        info = os.stat(path)  # follows a symlink: what would be read is what is judged
    except FileNotFoundError:
        if path.is_symlink():
            raise SpecError(shown, 1, 1, "", f"a symbolic link to '{os.readlink(path)}', which "
                            "does not exist") from None
        raise SpecError(shown, 1, 1, "", "no such file") from None
    except OSError as exc:
        raise SpecError(shown, 1, 1, "", f"cannot read file: {exc.strerror}") from None
    kind = next((name for test, name in _KINDS if test(info.st_mode)), None)
    if kind or not stat.S_ISREG(info.st_mode):
        via = " (through a symbolic link)" if path.is_symlink() else ""
        raise SpecError(shown, 1, 1, "", f"{kind or 'not a regular file'}{via}, not a pipeline "
                        "file; a pipeline file is a YAML text file")
    try:
        with open(path, "rb") as handle:  # bounded: a file may grow after the stat
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SpecError(shown, 1, 1, "", f"cannot read file: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        size = max(info.st_size, len(data))
        raise SpecError(shown, 1, 1, "", f"the file is {_size(size)}; a pipeline file holds at "
                        f"most {_size(MAX_BYTES)} (is it the right file?)")
    return _decode(data, shown)


def _size(count: int) -> str:
    return f"{count / 1024 / 1024:.1f} MiB" if count >= 1024 * 1024 else f"{count} bytes"


def _decode(data: bytes, shown: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(shown, 1, 1, "", "the file is UTF-16 text; save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")  # a UTF-8 BOM (Windows editors) is not content
    except UnicodeDecodeError as exc:
        line, col = _line_col(data[:exc.start].decode("utf-8", "replace"))
        raise SpecError(shown, line, col, "", f"the file is not UTF-8 text: byte "
                        f"0x{data[exc.start]:02x} here cannot be decoded; save it as UTF-8") from None
    return text


def check_characters(text: str, shown: str) -> None:
    """Characters YAML refuses, named at their line and column (not as a reader offset)."""
    bad = _NON_PRINTABLE.search(text)
    if bad:
        char = bad.group()
        name = "a NUL byte" if char == "\0" else f"a control character (U+{ord(char):04X})"
        raise SpecError(shown, *_line_col(text[:bad.start()]), "", f"{name} here; pipeline "
                        "files are plain text (write it as an escape such as \"\\t\" inside "
                        "double quotes if the value needs it)")


def _line_col(before: str) -> tuple[int, int]:
    """The 1-based line and column just after `before`."""
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def check_structure(text: str, shown: str, max_values: int = MAX_VALUES,
                    max_depth: int = MAX_DEPTH) -> None:
    """Refuse alias bombs, recursive aliases, deep nesting and second documents, in one pass
    over the events and without building anything.

    A YAML syntax error is left to the composer, which words it (see `yaml_source._explain`).
    Other YAML the validator reads (dbt's) passes limits of its own.
    """
    # Per open collection: [values so far, anchor]; anchors' sizes once their node has ended.
    stack: list[list[object]] = [[0, None]]
    sizes: dict[str, int] = {}
    documents = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _error(shown, event, "invalid YAML: a second YAML document ('---'); a "
                                 "file holds one")
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(stack) > max_depth:
                    raise _error(shown, event, _TOO_DEEP)
                stack.append([1, event.anchor])
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                count, anchor = stack.pop()
                if anchor is not None:
                    sizes[str(anchor)] = int(count)  # type: ignore[call-overload]
                _add(stack, int(count), max_values, shown, event)  # type: ignore[call-overload]
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                _add(stack, 1, max_values, shown, event)
            elif isinstance(event, yaml.AliasEvent):
                _add(stack, _alias_size(stack, sizes, shown, event), max_values, shown,
                     event, alias=event.anchor)
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem):  # libyaml's own limit, met first
            mark = exc.problem_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise SpecError(shown, line, col, "", _TOO_DEEP) from None
    except yaml.YAMLError:
        pass  # a syntax error: the composer reports it in its own words


def _alias_size(stack: list[list[object]], sizes: dict[str, int], shown: str,
                event: yaml.AliasEvent) -> int:
    name = str(event.anchor)
    if any(anchor == name for _, anchor in stack):
        raise _error(shown, event, f"alias '*{name}' is inside the node its anchor '&{name}' "
                     "names, a structure without end; write the values out")
    if name not in sizes:
        raise _error(shown, event, f"invalid YAML: alias '*{name}' is used, but no '&{name}' "
                     "anchor defines it")
    return sizes[name]


def _add(stack: list[list[object]], count: int, limit: int, shown: str, event: yaml.Event,
         alias: str | None = None) -> None:
    top = stack[-1]
    top[0] = int(top[0]) + count  # type: ignore[call-overload]
    total = sum(int(frame[0]) for frame in stack)  # type: ignore[call-overload]
    if total > limit:
        if alias is not None:
            raise _error(shown, event, f"alias '*{alias}' makes the file hold more than "
                         f"{limit} values (each alias repeats its anchor's values); "
                         "write the values out")
        raise _error(shown, event, f"the file holds more than {limit} values; a "
                     "pipeline file needs far fewer (is it the right file?)")


def _error(shown: str, event: yaml.Event, message: str) -> SpecError:
    mark = event.start_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return SpecError(shown, line, col, "", message)
