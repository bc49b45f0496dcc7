"""A Python regex rewritten for RE2 finds, in DuckDB, exactly the strings `re.search` finds."""

from __future__ import annotations

import random
import re
import warnings

import duckdb
import pytest

from framework.stages.regex_re2 import re2_pattern

VALUES = ["", "a", "ab", "a\n", "ab\n", "\n", "a\n\n", "a\nb", "aa", "é", "e\u0301", "ß", "👍🏽",
          "a{,2}", "[:a]", "x.y", "٣", "A", "\x0b", " "]
# Read differently by RE2 when passed on as written, or by Python's parser in a way easy to get
# wrong: `$` before a final newline, `\Z`, scoped and global `s`.
TRICKY = ["^[0-9]{5}$", "a$", "a$|b$", "^(a|b$)", r"a\Z", r"\Aa",
          "a.b", "(?s)a.b", "(?s:a.)", "(?s)(?-s:a.)b", "[^a]", "é+", "x.y", "^$", "",
          "a*?", "(?:ab)+", "[é-ü]", r"\.", "a{2}", "\\\\Z",
          # DuckDB's own rewriting of a regex into LIKE got these wrong (`^a()` as LIKE 'a')
          "^()", "()$", r"()\Z", "^a()", "()a"]
# No plain RE2 rewriting: Unicode categories, boundaries, look-arounds, back-references,
# case folding, MULTILINE, `$` with something after it, counts above RE2's 1000; and what
# pandas hands to RE2 although RE2 reads it unlike `re` (GX then counts otherwise): `{,n}`, a
# POSIX-looking class, the verbose flag.
REFUSED = ["a{,2}", "^a{,2}$", "[[:a]]", "(?x) a b", r"^\d{5}$", r"\w", r"[\s]", r"\bA", "(?<=a)b", "a(?!b)", r"(a)\1", "(?i)a", "(?m)^a",
           "a$b", "(a$)*", "a{1001}", "(?>a)", "a*+", r"(?(1)a|b)", "(?a)a"]


def found_by_duckdb(pattern: str) -> list[bool]:
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t AS SELECT unnest(?) AS v, generate_subscripts(?, 1) AS i",
                    [VALUES, VALUES])
        return con.execute("SELECT list(regexp_matches(v, ?) ORDER BY i) FROM t",
                           [pattern]).fetchone()[0]  # type: ignore[index]


def found_by_python(pattern: str) -> list[bool]:
    return [re.search(pattern, v) is not None for v in VALUES]


@pytest.mark.parametrize("pattern", TRICKY)
def test_a_rewritten_pattern_finds_what_python_finds(pattern: str) -> None:
    rewritten = re2_pattern(pattern)

    assert rewritten is not None
    assert found_by_duckdb(rewritten) == found_by_python(pattern)


@pytest.mark.parametrize("pattern", REFUSED)
def test_a_pattern_re2_may_read_otherwise_is_not_rewritten(pattern: str) -> None:
    assert re2_pattern(pattern) is None


def test_random_patterns_find_what_python_finds() -> None:
    """Patterns strung from pieces at random (a fixed seed): every one rewritten agrees."""
    pieces = ["a", "b", "é", "\n", ".", "[ab]", "[^a]", "[a-c]", "^", "$", r"\A", r"\Z",
              "(?s:.)", "(?:a|b)", "(a|)", "ß", "👍", r"\n", " ", "{,2}", "{2}", "*", "+", "?",
              "*?", "|", "(", ")", r"\d", r"\.", "[[:a]]", "-", "]"]
    rnd = random.Random(18)
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible nested set"
        for _ in range(600):
            pattern = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 5)))
            try:
                re.compile(pattern)
            except re.error:
                continue
            if (rewritten := re2_pattern(pattern)) is not None:
                assert found_by_duckdb(rewritten) == found_by_python(pattern), pattern
                compared += 1
    assert compared > 250
