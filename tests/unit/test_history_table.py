"""`framework history` shows an error's first line whole: the way out a message names comes at
its end (a quarantine's `framework replay ...`), and 200 characters cut it off."""

from __future__ import annotations

from rich.console import Console

from framework.tables import history_table


def shown(error: str, width: int) -> str:
    run = {"started_at": "2026-12-04T10:00:00+0000", "pipeline": "orders", "target": "local",
           "status": "failed", "rows_extracted": 0, "rows_loaded": 0, "seconds": {"load": 1.0},
           "fingerprint": "0123456789abcdef", "error": error}
    console = Console(width=width, record=True)
    console.print(history_table([run], width))
    return " ".join(console.export_text().split())


def test_history_shows_an_errors_first_line_whole() -> None:
    error = ("orders: validate: batch 1.2 quarantined: " + "a long reason " * 20 +
             "(framework replay --pipeline orders --load-id 1.2)\nsecond line")

    for width in (80, 160):
        text = shown(error, width)
        assert "(framework replay --pipeline orders --load-id 1.2)" in text, text
        assert "second line" not in text


def test_a_page_long_error_is_bounded_and_says_how_long_it_is() -> None:
    text = shown("orders: load: " + "word " * 400, 160)

    assert text.endswith("... (2013 characters)"), text[-200:]  # the line, stripped
    assert text.count("word") < 210
