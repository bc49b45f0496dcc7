"""The dashboard in a real browser: headless Chromium opens the file from disk with networking
off, every chart is drawn with data, and a screenshot is kept for people to look at.

Needs Debian's `chromium` (skipped without it on a laptop, a failure in CI). The screenshot is
written to `.framework/test-artifacts/dashboard.png` (git-ignored) and its path printed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.report.conftest import Rendered
from tests.report.helpers import CHARTS, chromium, parse_dashboard

ARTIFACTS = ROOT / ".framework" / "test-artifacts"
PNG = b"\x89PNG\r\n\x1a\n"


def headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium without network: no background traffic, and a proxy and resolver that go
    nowhere, so a page that tried to fetch anything would show it."""
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--proxy-server=127.0.0.1:9",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.browser
def test_dashboard_renders_every_chart_in_headless_chromium(dashboard: Rendered,
                                                            tmp_path: Path) -> None:
    binary = chromium()
    url = dashboard.path.as_uri()

    dom = headless(binary, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    drawn = parse_dashboard(dom.stdout)
    source = parse_dashboard(dashboard.html)
    for chart in CHARTS:
        marks = drawn.marks.get(chart, [])
        assert len(marks) == len(source.marks[chart]) > 0, chart
        assert any(float(value) > 0 for _, value in marks), f"{chart} has no data drawn"
    assert len(drawn.products) == 10
    assert set(drawn.kpis) == {"orders", "revenue", "average_order_value", "customers",
                               "late_share", "repeat_rate"}
    assert 'data-tip="' in dom.stdout  # the tooltip script ran

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    shot = headless(binary, tmp_path / "profile-shot", f"--screenshot={screenshot}",
                    "--window-size=1400,2000", "--hide-scrollbars", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == PNG and screenshot.stat().st_size > 50_000
    print(f"dashboard screenshot: {screenshot}")
