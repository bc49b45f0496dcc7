"""A Python regex rewritten for RE2 (DuckDB's `regexp_matches`), when both find the same strings.

Great Expectations' regex expectations run `Series.str.contains(regex)`: Python's `re.search`
on each value, which pandas (3.x, Arrow strings) hands to pyarrow's RE2 where it judges the two
alike. Spellings the two read differently although pandas hands them over (`{,2}`, POSIX
classes `[[:alpha:]]`, the verbose flag) are left to GX, so a pattern is judged the same
whichever path counts it (`mostly` sends an expectation to GX). RE2 reads some of the same
text differently (`{,5}`, `[[:alpha:]]`, `$` before a trailing newline, Unicode `\\d \\w \\s`,
case folding), so the pattern is not passed on as written: Python's own parser reads it, and
the parsed pattern is written out again in a plain RE2 subset (characters but ASCII letters
and digits as `\\x{..}`, anchors as `\\A` and `\\z`). Anything outside that subset returns
None and stays with GX: categories, word boundaries, look-arounds, back-references, flags other
than `s`, a `$` anywhere but at the end.
"""

from __future__ import annotations

import importlib
import re
import warnings
from typing import Any

# `re`'s own parser (private, but the one `re.compile` uses, so the pattern is read as GX's
# Python reads it); Python 3.11-3.13 keep it here.
parser: Any = importlib.import_module("re._parser")
c: Any = importlib.import_module("re._constants")

# Flags whose effect is all in the parse (VERBOSE), the default for str (UNICODE) or handled
# below (DOTALL). IGNORECASE folds case differently in RE2; MULTILINE and ASCII are rare.
_HARMLESS = re.UNICODE | re.VERBOSE | re.DOTALL
_RE2_MAX_REPEAT = 1000
# Spellings pandas hands to pyarrow although RE2 reads them unlike `re`: a repeat without its
# lower bound, POSIX classes, the verbose flag. Looked for in the text, conservatively.
_READ_APART = re.compile(r"\{,|\[\[:|\(\?[a-zA-Z]*x")


class _Unsupported(Exception):
    pass


def re2_pattern(pattern: str) -> str | None:
    """The RE2 pattern that `re.search(pattern, s)` and RE2's partial match agree on for every
    string s, or None when there is no such plain rewriting."""
    if _READ_APART.search(pattern):
        return None
    try:
        with warnings.catch_warnings():  # "possible nested set": GX's own compile says it
            warnings.simplefilter("ignore")
            parsed = parser.parse(pattern, 0)
        if parsed.state.flags & ~_HARMLESS:
            return None
        rewritten = _sequence(list(parsed), bool(parsed.state.flags & re.DOTALL), at_end=True)
    except (re.error, _Unsupported, RecursionError):
        return None
    # One capturing group around it all: DuckDB's optimizer turns some patterns into LIKE and
    # gets empty groups wrong (`\A(?:)` became LIKE '', true only for ''); it leaves a group be.
    return f"({rewritten})"


def _sequence(items: list[tuple[Any, Any]], dotall: bool, at_end: bool) -> str:
    """`at_end`: nothing in the whole pattern follows this sequence, so its last `$` may
    consume the newline Python's `$` lets stand before the end (a search only asks whether
    a match exists, not where it ends)."""
    return "".join(_item(op, av, dotall, at_end and i == len(items) - 1)
                   for i, (op, av) in enumerate(items))


def _item(op: Any, av: Any, dotall: bool, at_end: bool) -> str:
    if op is c.LITERAL:
        return _char(av)
    if op is c.NOT_LITERAL:
        return f"[^{_char(av)}]"
    if op is c.ANY:
        return "(?s:.)" if dotall else r"[^\n]"
    if op is c.IN:
        return _class(av)
    if op is c.BRANCH:
        return "(?:" + "|".join(_sequence(list(alt), dotall, at_end) for alt in av[1]) + ")"
    if op is c.SUBPATTERN:
        _group, add, remove, inner = av
        if (add | remove) & ~re.DOTALL:
            raise _Unsupported
        dotall = bool(add & re.DOTALL) or (dotall and not remove & re.DOTALL)
        return "(?:" + _sequence(list(inner), dotall, at_end) + ")"
    if op in (c.MAX_REPEAT, c.MIN_REPEAT):  # greedy or lazy: the same strings match
        low, high, inner = av
        return "(?:" + _sequence(list(inner), dotall, False) + ")" + _count(low, high)
    if op is c.AT:
        if av in (c.AT_BEGINNING, c.AT_BEGINNING_STRING):  # no MULTILINE: start of string
            return r"\A"
        if av is c.AT_END_STRING:
            return r"\z"
        if av is c.AT_END and at_end:
            return r"\n?\z"
    raise _Unsupported  # categories, boundaries, look-arounds, back-references, atomic groups


def _count(low: int, high: int) -> str:
    unbounded = high == c.MAXREPEAT
    if low > _RE2_MAX_REPEAT or (not unbounded and high > _RE2_MAX_REPEAT):
        raise _Unsupported  # RE2 refuses counts above 1000
    short = {(0, True): "*", (1, True): "+"}.get((low, unbounded))
    if short:
        return short
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low},}}" if unbounded else f"{{{low},{high}}}"


def _class(members: list[tuple[Any, Any]]) -> str:
    parts = []
    negate = False
    for op, av in members:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            parts.append(_char(av))
        elif op is c.RANGE:
            parts.append(f"{_char(av[0])}-{_char(av[1])}")
        else:
            raise _Unsupported  # \d \w \s inside a class
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _char(code: int) -> str:
    if 0xD800 <= code <= 0xDFFF:  # a lone surrogate: no DuckDB string holds one
        raise _Unsupported
    return chr(code) if chr(code).isascii() and chr(code).isalnum() else f"\\x{{{code:X}}}"
