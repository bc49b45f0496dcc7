"""The plain progress lines a run prints off a terminal (CI logs, a pipe)."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from framework.progress import Progress


def test_a_long_error_is_cut_at_a_word_with_an_ellipsis() -> None:
    """The line cut the error at 160 characters, mid-word: `...changed in between ...; n)`."""
    out = io.StringIO()
    progress = Progress(Console(file=out, force_terminal=False, width=300), ["api_orders"])
    error = ("api_orders: extract: GET orders served id \"1014\" twice in this run, changed in "
             "between (a record updated while the listing was paged): a record may have moved "
             "to a page already read; nothing was loaded\nsecond line")
    progress.stage("api_orders", "extract")

    progress.done(SimpleNamespace(pipeline="api_orders", status="failed", error=error,
                                  rows_loaded=0))

    last = out.getvalue().splitlines()[-1]
    assert last.startswith("api_orders: failed in ")
    assert last.endswith("(api_orders: extract: GET orders served id \"1014\" twice in this "
                         "run, changed in between (a record updated while the listing was "
                         "paged): a record may have moved…)"), last
