"""A small shop API on loopback for the `rest_api` tests: what a commerce platform serves.

- `GET /api/orders?page=N&per_page=K&updated_since=T`: orders changed at or after T (ISO, UTC),
  oldest change first, `{"data": [...], "page": N, "total_pages": P}`.
- `GET /api/orders/<order_id>/refunds?page=N`: the refunds of one order, paginated the same way.
- Bearer auth or the token as `?api_key=` (401 without it), a rate limit (every `rate_limit_every`-th request answers
  429 with `Retry-After: 1`), pages that fail once with 500 (`fail_once`), and pages served
  once in a platform's odd ways with status 200 (`odd_once`): `empty` (no records, the same
  `total_pages`), `errors` (an error object instead of the records), `html` (a maintenance page);
  and changes made between two page requests (`before_page`, by page or offset).
- `offset=N&limit=K` pages by offset, `{"data": [...], "total": T}` (T counts records); with
  `cursor_tokens`, `cursor=<token>` pages by keyset, `{"data": [...], "next_cursor": ...}`.
- `updated_since` and `updated_at` are compared as instants, whatever their offsets or fractions.

Tests change the shop between runs (`add_order`, `update_order`, `add_refund`) and compare the
warehouse with `orders` / `refunds`, the API's current truth.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
STATUSES = ("created", "approved", "shipped", "delivered")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def instant(value: str | int) -> datetime:
    """An ISO timestamp, or epoch seconds."""
    if isinstance(value, int) or value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    return datetime.fromisoformat(value)


@dataclass
class ShopApi:
    token: str
    per_page: int = 10
    rate_limit_every: int = 0  # 0: no rate limit
    fail_once: set[tuple[str, int]] = field(default_factory=set)  # (path, page)
    odd_once: dict[tuple[str, int], str] = field(default_factory=dict)  # (path, page) -> how
    next_links: bool = False  # a `next` URL in each page but the last, as many APIs give
    cursor_tokens: bool = False  # keyset paging: `cursor` asks for the records after a token
    # (path, page) -> a change to the shop made just before that page is served, once
    before_page: dict[tuple[str, int], Any] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, int]] = field(default_factory=list)  # (path with query, status)
    answered_at: list[float] = field(default_factory=list)  # time.monotonic() of each request
    clock: datetime = START
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the shop's data --------------------------------------------------------------------

    def tick(self) -> str:
        self.clock += timedelta(minutes=1)
        return iso(self.clock)

    def add_order(self, *, at: str | None = None, status: str = "created") -> dict[str, Any]:
        number = len(self.orders) + 1
        order = {"order_id": f"o{number:05d}", "customer_id": f"c{number % 37:03d}",
                 "order_status": status, "total": round(10 + number * 1.25, 2),
                 "purchased_at": at or self.tick(), "updated_at": at or iso(self.clock)}
        self.orders[order["order_id"]] = order
        return order

    def update_order(self, order_id: str, status: str, *, at: str | None = None) -> None:
        self.orders[order_id] = {**self.orders[order_id], "order_status": status,
                                 "updated_at": at or self.tick()}

    def add_refund(self, order_id: str, amount: float) -> dict[str, Any]:
        refunds = self.refunds.setdefault(order_id, [])
        refund = {"refund_id": f"r-{order_id}-{len(refunds) + 1}", "order_id": order_id,
                  "amount": amount, "created_at": self.tick()}
        refunds.append(refund)
        return refund

    # -- serving ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/"

    def start(self) -> ShopApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, headers = api.answer(self.path, self.headers.get("Authorization"))
                html = isinstance(body, str)
                payload = body.encode() if html else json.dumps(body).encode()
                self.send_response(status)
                kind = "text/html" if html else "application/json"
                for name, value in {"Content-Type": kind, **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, target: str, authorization: str | None
               ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            status, body, headers = self._answer(target, authorization)
            self.requests.append((target, status))
            self.answered_at.append(time.monotonic())
            return status, body, headers

    def _answer(self, target: str, authorization: str | None
                ) -> tuple[int, Any, dict[str, str]]:
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if authorization != f"Bearer {self.token}" and query.get("api_key") != self.token:
            return 401, {"error": "unauthorized"}, {}
        if self.rate_limit_every and (len(self.requests) + 1) % self.rate_limit_every == 0:
            return 429, {"error": "slow down"}, {"Retry-After": "1"}
        page = int(query.get("page", 1))
        if page < 1:
            return 400, {"error": "pages start at 1"}, {}
        if (url.path, page) in self.fail_once:
            self.fail_once.discard((url.path, page))
            return 500, {"error": "try again"}, {}
        change = self.before_page.pop((url.path, int(query.get("offset", page))), None)
        if change is not None:
            change()
        parts = url.path.strip("/").split("/")
        if parts == ["api", "orders"]:
            since = query.get("updated_since")
            def changed(order: dict[str, Any]) -> datetime:  # one without it: always served
                return instant(order["updated_at"]) if "updated_at" in order else START

            records = sorted((o for o in self.orders.values() if since is None
                              or "updated_at" not in o or changed(o) >= instant(since)),
                             key=lambda o: (changed(o), o["order_id"]))
        elif len(parts) == 4 and parts[:2] == ["api", "orders"] and parts[3] == "refunds":
            if parts[2] not in self.orders:
                return 404, {"error": "no such order"}, {}
            records = self.refunds.get(parts[2], [])
        else:
            return 404, {"error": "not found"}, {}
        per_page = int(query.get("per_page", self.per_page))
        if "offset" in query:  # offset paging: the total counts records
            start = int(query["offset"])
            chunk = records[start: start + int(query.get("limit", per_page))]
            if self.odd_once.pop((url.path, start), None) == "empty":
                chunk = []
            return 200, {"data": chunk, "total": len(records)}, {}
        if self.cursor_tokens:  # keyset paging: the token is the last record's place
            after = query.get("cursor")
            chunk = [o for o in records if after is None or
                     f"{instant(o['updated_at']).isoformat()}|{o['order_id']}" > after][:per_page]
            last = chunk[-1] if len(chunk) == per_page else None
            token = f"{instant(last['updated_at']).isoformat()}|{last['order_id']}" if last else None
            return 200, {"data": chunk, "next_cursor": token}, {}
        pages = max(1, -(-len(records) // per_page))
        chunk = records[(page - 1) * per_page: page * per_page]
        odd = self.odd_once.pop((url.path, page), None)
        if odd == "empty":
            chunk = []
        elif odd == "errors":
            return 200, {"errors": "Exceeded 2 calls per second for api client"}, {}
        elif odd == "html":
            return 200, "<html><body><h1>Down for maintenance</h1></body></html>", {}
        body: dict[str, Any] = {"data": chunk, "page": page, "total_pages": pages}
        if self.next_links and page < pages:
            body["next"] = f"{url.path}?{urlencode({**query, 'page': page + 1})}"
        return 200, body, {}

    def waits_after(self, status: int) -> list[float]:
        """Seconds between each answer with `status` and the request that followed it."""
        return [self.answered_at[i + 1] - self.answered_at[i]
                for i, (_, code) in enumerate(self.requests[:-1]) if code == status]

    def served(self, status: int) -> list[str]:
        return [path for path, code in self.requests if code == status]
