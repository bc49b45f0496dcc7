"""Reading a rendered dashboard back: KPI tiles, chart marks and product rows, by data attribute."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser

from tests.conftest import service_unavailable

CHARTS = ("revenue_by_month", "orders_by_month", "revenue_by_category", "revenue_by_state",
          "payment_mix", "installments", "late_share_by_month", "delivery_lateness", "cohorts")


@dataclass
class Dashboard:
    kpis: dict[str, str] = field(default_factory=dict)
    marks: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # chart -> (label, value)
    products: list[tuple[str, str]] = field(default_factory=list)  # (rank, revenue)
    references: list[str] = field(default_factory=list)  # src/href attributes: must stay empty


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.dashboard = Dashboard()
        self.chart: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.dashboard.references += [a[k] for k in ("src", "href") if k in a]
        if "data-kpi" in a:
            self.dashboard.kpis[a["data-kpi"]] = a["data-value"]
        if tag == "figure" and "data-chart" in a:
            self.chart = a["data-chart"]
            self.dashboard.marks.setdefault(self.chart, [])
        if "mark" in a.get("class", "").split() and self.chart:
            self.dashboard.marks[self.chart].append((a["data-label"], a["data-value"]))
        if tag == "tr" and "data-rank" in a:
            self.dashboard.products.append((a["data-rank"], a["data-value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self.chart = None


def parse_dashboard(html: str) -> Dashboard:
    reader = _Reader()
    reader.feed(html)
    return reader.dashboard


def chromium() -> str:
    """Debian's headless Chromium; skipped on a laptop without it, a failure in CI."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        service_unavailable("headless Chromium is not installed (apt-get install chromium)")
    return str(path)
