"""The `rest_api` kind: a pipeline's `source:` block turned into dlt's declarative `rest_api`
source, of which the one resource the pipeline names is read.

What dlt does for us: pages (its paginators), the cursor parameter and the cursor state
(`dlt.sources.incremental` on the cursor field), and retries: its requests client retries 429,
5xx and dropped connections with exponential back-off, waiting what `Retry-After` says.

Exactly once at the cursor boundary: the API returns records changed *at or after* the last
value, so the records at that value are served again. dlt's incremental keeps the hashes of
the records at the last value and drops them when they come back unchanged; a record changed
at that same value is new (its whole content is hashed, not its key), and the warehouse
merges on the key, so it replaces its old row instead of adding one.

Timestamps are compared as instants, not as text: `…:05.25Z` is later than `…:05Z`, and
`01:10-05:00` later than `01:30-04:00` (`latest`); the API gets back the value it served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from framework.errors import FrameworkError, ServiceError, StageError, chain
from framework.settings.envvars import register_secret
from framework.sources.base import KeysNotSupported, Rejected
from framework.sources.rest_api.spec import ApiAuth, ApiIncremental, Endpoint, RestApiSource

if TYPE_CHECKING:
    from framework.context import RunContext

# The spec's `on_null` in dlt's words.
NULL_POLICY = {"fail": "raise", "include": "include", "exclude": "exclude"}
REJECTED_TEXT = 200  # characters of a rejected record kept with it


class RestApiAdapter:
    kind: ClassVar[str] = "rest_api"

    def __init__(self, source: RestApiSource, *, connections: Callable[[str], Any],
                 target: Any, env: Mapping[str, str], root: Path) -> None:
        self.source = source
        self._env = env  # the project's variables: `.env` over the process
        # Messages and lineage name the API by its host; `doctor` checks it once per
        # credential (a variable one pipeline on it lacks went unseen behind another's check).
        self.name = urlsplit(self._base_url(self._env)).netloc or self.source.base_url
        names = source.auth.env_names if source.auth else []
        self.check_name = f"{self.name} ({', '.join(names)})" if names else self.name

    # -- the protocol ---------------------------------------------------------------------------

    def open(self, ctx: RunContext) -> RestExtraction:
        env = self._env
        where = f"pipelines/{ctx.spec.name}.yml: "
        try:
            extraction = RestExtraction(self.source, ctx.spec.name, ctx.spec.lake.path,
                                        self._base_url(env), self._auth(env, where))
        except FrameworkError:
            raise
        except Exception as exc:  # noqa: BLE001 - dlt refusing the config: one line, this run
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StageError(ctx.spec.name, "extract", f"{where}source: dlt's rest_api "
                             f"refused the configuration: {first}") from None
        # An API states no types before it is read: `plan` works with the declared ones, and
        # each record's fields are made values of them (`RestExtraction._typed`).
        extraction.types = {c.name: c.type for c in ctx.spec.columns if c.type}
        return extraction

    def current_keys(self, ctx: RunContext, columns: list[str]) -> Any:
        raise KeysNotSupported(f"source '{self.describe()}' is an HTTP API, which offers no "
                               "cheap listing of every current key; delete reconciliation "
                               "needs a source that does (use deletes.soft_delete_column)")

    def not_set_up(self) -> str | None:
        return None

    def describe(self) -> str:
        return f"rest_api {self._base_url(self._env).rstrip('/')}/{self.source.path.lstrip('/')}"

    def check(self) -> str:
        """Ask the endpoint for its first page, with the pipeline's credentials and retries."""
        from dlt.sources.helpers.rest_client.client import RESTClient

        base_url = self._base_url(self._env)
        auth = self._auth(self._env, "")
        session = http_session(self.source, f"rest_api {base_url}")
        # A child's path needs a parent record: the parent's listing is what can be asked.
        listing: Endpoint = self.source.parent or self.source
        client = RESTClient(base_url=base_url, headers=dict(self.source.headers),
                            auth=dlt_auth(self.source.auth, auth), session=session)
        response = client.get(listing.path, params=dict(listing.params))
        return f"{base_url}: {listing.path} answered HTTP {response.status_code}"

    # -- settings from the environment ----------------------------------------------------------

    def _base_url(self, env: Mapping[str, str]) -> str:
        name = self.source.base_url_env
        return env.get(name) or self.source.base_url if name else self.source.base_url

    def _auth(self, env: Mapping[str, str], where: str) -> dict[str, str]:
        """The secrets `auth` names, registered for redaction; a missing one is an error."""
        auth = self.source.auth
        if auth is None:
            return {}
        values: dict[str, str] = {}
        for key in ("token_env", "api_key_env", "username_env", "password_env"):
            name = getattr(auth, key)
            if name is None:
                continue
            value = env.get(name)
            if not value:
                raise FrameworkError(f"{where}source.auth.{key}: the environment variable "
                                     f"{name} is not set (it holds the API's credential)")
            register_secret(value)
            values[key] = value
        return values


class RestExtraction:
    """One run's read of the API: dlt's `rest_api` source, of which one resource is read."""

    def __init__(self, source: RestApiSource, name: str, table: str, base_url: str,
                 secrets: dict[str, str]) -> None:
        from dlt.sources.rest_api import rest_api_source

        self._rejected: list[Rejected] = []
        self.columns: dict[str, str] = {}  # an API states none before it is read
        self.types: dict[str, str] = {}
        self._name, self._cursor = name, source.incremental.cursor if source.incremental else None
        service = f"source '{name}' (rest_api {base_url})"
        config: dict[str, Any] = {
            "client": {
                "base_url": base_url,
                "headers": dict(source.headers),
                "auth": dlt_auth(source.auth, secrets),
                "session": http_session(source, service),
            },
            "resources": [_resource(name, table, source, service)],
        }
        if source.parent is not None:
            config["resources"].insert(0, {
                "name": source.parent.name,
                "selected": False,  # read for its fields, never loaded
                "endpoint": _endpoint(source.parent, source.parent.incremental, service),
            })
        resources = rest_api_source(config).resources  # type: ignore[arg-type]
        self.resource = resources[name]
        self._key = source.primary_key
        self._path = source.path
        self._seen = 0
        # dlt runs each filter over a whole page before the next: a record's place in the run,
        # taken by the first filter, for the refusals of the later ones (by the record's id)
        self._place: dict[int, int] = {}
        self._refused: set[str] = set()
        # Before dlt's incremental step (the last), which needs the key to recognise boundary
        # records; `_typed` leaves the cursor as served, for dlt to send back as it was.
        self.resource.add_filter(self._has_key, insert_at=1)
        self.resource.add_filter(self._typed, insert_at=2)
        self.resource.add_filter(ServedOnce(name, source, list(self._key)), insert_at=3)
        if source.parent is not None:  # a parent that moved skipped the children of one
            resources[source.parent.name].add_filter(ServedOnce(
                name, source.parent, list(source.placeholders)), insert_at=1)

    def nothing_new(self, pipeline: Any) -> bool:
        return False  # an API has no cheap "anything new?": reading is the look

    def count_waiting(self, last_value: Any) -> tuple[int | None, str]:
        return None, "(an HTTP API tells only by being read)"

    def explain(self, exc: Exception) -> Exception:
        """The one-line error the session raised (a status, an unreachable server), or dlt's
        innermost failure named by the pipeline."""
        causes = list(chain(exc))
        explained = next((c for c in causes if isinstance(c, FrameworkError)), None)
        if explained is not None:
            return explained
        # dlt's own error when it names the cursor's trouble, else the innermost cause
        innermost = next((c for c in causes if "InvalidCoercion" in type(c).__name__),
                         causes[-1])
        text = str(innermost).strip().splitlines()
        kind = type(innermost).__name__
        if "CursorPathMissing" in kind and self._cursor:
            return StageError(self._name, "extract", f"source.incremental.cursor: a record "
                              f"without the field '{self._cursor}' (is it a field of the API's "
                              "records? if only some lack it, set source.incremental.on_null "
                              "to include or exclude them)")
        if "InvalidCoercion" in kind and self._cursor:
            last = getattr(innermost, "cursor_value", None)
            served = (getattr(innermost, "item", None) or {})
            served = served.get(self._cursor) if isinstance(served, dict) else served
            return StageError(self._name, "extract", f"source.incremental: the API served "
                              f"'{self._cursor}' as {served!r}, which does not compare with "
                              f"the last value {last!r} (source.incremental.initial_value, or "
                              "the previous run's): give initial_value in the API's own form")
        if "exceeds 64-bit" in (text[0] if text else ""):
            return StageError(self._name, "extract", "a number in the API's records is beyond "
                              "64 bits: declare its field in columns: as type string or "
                              "decimal(38,0)")
        if "ValueNone" in kind and self._cursor:
            return StageError(self._name, "extract", f"records with a null '{self._cursor}'; "
                              "set source.incremental.on_null to include or exclude them")
        return StageError(self._name, "extract", f"{kind}: {text[0] if text else kind}")

    def rejected(self) -> list[Rejected]:
        return list(self._rejected)

    def close(self) -> None:
        pass

    def _typed(self, record: Any) -> bool:
        """Each field declared in `columns:` made a value of its type, as the files source
        reads JSON: an API that served `total` as a number, then as the text "16.0", or a
        customer id as 4, then "c4", gave dlt two types for one column, and it kept the second
        in a column of its own (`total__v_text`) that nothing reads: the values landed as
        nulls. A blank is null; a value that is none of its type is refused, kept in
        quarantine with the reason."""
        place = self._place.pop(id(record), self._seen)
        if not self.types or not isinstance(record, dict):
            return True
        from framework.sources.files.values import BadValue
        from framework.spec.columns import dlt_column_name

        typed = {}
        for field, value in record.items():
            declared = self.types.get(dlt_column_name(field))
            if declared is None or value is None or field == self._cursor:
                continue
            try:
                typed[field] = _typed_value(value, declared)
            except BadValue as exc:  # kept in quarantine as it was served
                self._refuse(record, f"field '{field}': {exc} (declared {declared})", place)
                return False
        record.update(typed)
        return True

    def _refuse(self, record: Any, reason: str, place: int | None = None) -> None:
        text, digest = _served_as(record)
        if digest in self._refused:  # served twice in one run
            return
        self._refused.add(digest)
        place = self._seen if place is None else place
        self._rejected.append(Rejected(where=f"{self._path}: record {place} of this run",
                                       reason=reason, record=text[:REJECTED_TEXT],
                                       digest=digest))

    def _has_key(self, record: Any) -> bool:
        """A record without its key cannot be merged or told apart: quarantined, not loaded.
        With its digest: the API serves a record at the cursor boundary again on every run, and
        the extract keeps it in quarantine once."""
        self._seen += 1
        missing = [k for k in self._key if not isinstance(record, dict) or record.get(k) is None]
        if not missing:
            self._place[id(record)] = self._seen
            return True
        self._refuse(record, f"no value for primary key field(s) {', '.join(missing)}")
        return False


class ServedOnce:
    """A dlt filter: each key of a listing once per run. The same record served again (a page
    repeated, or shifted by a record added before it) is dropped. A changed one means the
    listing moved while it was read: paged by number or offset, a record updated between two
    page requests moves to its end, and the record shifted past a page boundary by it is never
    served, lost for good once the cursor passes it; the run stops before anything lands and
    the next one reads again. A cursor token (keyset paging) skips nothing: both versions are
    kept, and the load keeps the latest."""

    def __init__(self, pipeline: str, listing: Endpoint, key: list[str]) -> None:
        self.pipeline, self.path, self.key = pipeline, listing.path, key
        self.keyset = listing.serves_versions
        self.served: dict[str, str] = {}  # key -> digest of its record, this run

    def __call__(self, record: Any) -> bool:
        if not isinstance(record, dict) or not self.key:
            return True
        _, digest = _served_as(record)
        # 1 and "1" are one key, as the warehouse's text key holds them
        key = json.dumps([str(_field(record, k)) for k in self.key])
        served = self.served.get(key)
        if served is None:
            self.served[key] = digest
            return True
        if served == digest:
            return False
        if self.keyset:
            return True
        raise StageError(self.pipeline, "extract", (
            f"GET {self.path} served {', '.join(self.key)} {key[1:-1]} twice in this run, "
            "changed in between: the listing moved while it was read, so records may have "
            "been skipped; nothing was loaded, and the next run reads it again (a listing "
            "paged by a cursor token, or sorted by a field that never changes, does not move)"))


def _served_as(record: Any) -> tuple[str, str]:
    """A record's JSON text, keys sorted, and its digest: the record as served, to tell it
    from another."""
    text = json.dumps(record, default=str, sort_keys=True)
    return text, hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _field(record: Any, dotted: str) -> Any:
    """A record's field by name, dotted for a nested one (`customer.id`); None if missing."""
    value = _at_path(record, dotted)
    return None if value is _MISSING else value


def _typed_value(value: Any, declared: str) -> Any:
    """A JSON value as a value of the declared portable type, or BadValue."""
    from framework.sources.files.values import BadValue, converter
    from framework.spec.columns import base_type, decimal_parts

    base = base_type(declared)
    if base == "string":  # nested objects and lists stay JSON, as dlt writes them
        return value if isinstance(value, (str, dict, list)) else json.dumps(value)
    if isinstance(value, (dict, list)) or isinstance(value, bool) != (base == "boolean") \
            and not isinstance(value, str):
        raise BadValue(f"{json.dumps(value)[:40]} is not a value of {declared}")
    if base == "boolean" and not isinstance(value, str):
        return value
    if base == "double" and not isinstance(value, str):
        return float(value)
    if base == "decimal" and isinstance(value, float):  # JSON's money: to its scale, as a cast
        value = f"{value:.{decimal_parts(declared)[1]}f}"
    elif isinstance(value, float) and value.is_integer():  # 3.0 where an integer is declared
        value = int(value)
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        return None
    try:
        return converter(declared, [], [])(text)
    except BadValue as exc:  # the files source's hint on other spellings is not an API's
        raise BadValue(str(exc).split(" (ISO 8601;")[0]) from None


def _resource(name: str, table: str, source: RestApiSource, service: str) -> dict[str, Any]:
    endpoint = _endpoint(source, source.incremental, service)
    if source.parent is not None:
        # dlt names the parent field as `{resources.<parent>.<field>}`.
        parent = source.parent.name
        for field in source.placeholders:
            endpoint["path"] = endpoint["path"].replace(
                f"{{{field}}}", f"{{resources.{parent}.{field}}}")
    resource: dict[str, Any] = {
        "name": name,
        "table_name": table,
        "primary_key": list(source.primary_key),
        # Raw keeps every record as served; merging is the warehouse's.
        "write_disposition": "append",
        # One table per pipeline: nested objects and lists stay JSON in their column.
        "max_table_nesting": 0,
        "endpoint": endpoint,
    }
    if source.include_from_parent:
        resource["include_from_parent"] = list(source.include_from_parent)
    return resource


def _endpoint(endpoint: Endpoint, incremental: ApiIncremental | None,
              service: str) -> dict[str, Any]:
    out: dict[str, Any] = {"path": endpoint.path, "params": dict(endpoint.params)}
    if endpoint.data_selector is not None:
        out["data_selector"] = endpoint.data_selector
    if endpoint.paginator is not None:
        out["paginator"] = endpoint.paginator.dlt_config()
    else:
        out["paginator"] = sure_detection(endpoint.path, service)
    out["response_actions"] = [_records_at(endpoint, service)]
    if incremental is not None:
        out["incremental"] = {
            "start_param": incremental.param,
            "cursor_path": incremental.cursor,
            "initial_value": incremental.initial_value,
            # `>=` the last value, with the boundary records told apart by their content.
            "range_start": "closed",
            "primary_key": whole_record,
            "on_cursor_value_missing": NULL_POLICY[str(incremental.on_null)],
        }
        if incremental.lag_seconds:
            # dlt steps back `lag` only from its own `max`; the window re-reads what text
            # order would have missed
            out["incremental"]["lag"] = incremental.lag_seconds
        else:
            out["incremental"]["last_value_func"] = latest
    return out


def sure_detection(path: str, service: str) -> Any:
    """For a listing without `paginator:`: dlt's detection from the first response, taken
    only when it is sure (a `next` link, in the body or the headers). dlt otherwise guessed:
    a page-number listing read from the wrong base page, an offset listing as one page, and
    the run succeeded with the pages it missed lost. A guess stops the run naming the fix."""
    from dlt.sources.helpers.rest_client.detector import PaginatorFactory
    from dlt.sources.helpers.rest_client.paginators import BasePaginator, SinglePagePaginator

    class SureDetection(BasePaginator):
        def __init__(self) -> None:
            super().__init__()
            self.found: BasePaginator | None = None

        def init_request(self, request: Any) -> None:
            pass

        def update_state(self, response: Any, data: list[Any] | None = None) -> None:
            if self.found is None:
                found, score = PaginatorFactory().create_paginator(response)
                if (score or 0) < 1.0 and _one_page(response, data):
                    found, score = SinglePagePaginator(), 1.0
                paged = isinstance(data, list)  # a single object is one page, surely
                if found is None or (score or 0) < 1.0 and ((score or 0) > 0.0 or paged):
                    raise ServiceError(service, f"GET {path}: source.paginator is not set, and "
                                       "dlt could only guess how the API pages ("
                                       f"{type(found).__name__ if found else 'no guess'}); a "
                                       "wrong guess reads some pages and skips the rest: set "
                                       "it (page_number, offset, cursor, json_link, "
                                       "header_link, or single_page for a one-page listing)")
                self.found = found
            self.found.update_state(response, data)
            self._has_next_page = self.found.has_next_page

        def update_request(self, request: Any) -> None:
            if self.found is not None:
                self.found.update_request(request)

        def __str__(self) -> str:
            return f"detected {self.found}"

    return SureDetection()


def _one_page(response: Any, data: Any) -> bool:
    """A first page that surely is the whole listing, however it pages: no records (nothing to
    skip), or a stated page count of one (`total_pages: 1`, as a small child listing says)."""
    if isinstance(data, list) and not data:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    pages = body.get("total_pages", body.get("pages")) if isinstance(body, dict) else None
    return isinstance(pages, int) and not isinstance(pages, bool) and pages <= 1


def whole_record(record: Any) -> list[str]:
    """dlt's boundary de-duplication key: every field, so that a record changed at the last
    cursor value is read, and only one served again unchanged is dropped (by the key alone,
    an update within the same second was dropped for good)."""
    return sorted(record)


def latest(values: Any) -> Any:
    """dlt's `last_value_func`: the latest of the cursor values, timestamps compared as
    instants (ISO 8601 text with any offset, fraction or none, naive as UTC). As text,
    `…:05.25Z` sorted before `…:05Z` and the record was skipped for good. Values of which none
    is a timestamp compare as they are; some timestamps and some not is an error (text order
    would drop records silently), which dlt reports as values it cannot compare."""
    values = list(values)
    instants = [_instant_or_none(value) for value in values]
    if all(i is None for i in instants):
        return max(values)
    if any(i is None for i in instants):
        raise TypeError(f"cursor values that are not all timestamps: {values!r}")
    return values[instants.index(max(instants))]  # type: ignore[type-var]


def _instant_or_none(value: Any) -> dt.datetime | None:
    try:
        return _instant(value)
    except (TypeError, ValueError):
        return None


def _instant(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.UTC)
    raise TypeError(type(value).__name__)


def _records_at(endpoint: Endpoint, service: str) -> Callable[..., Any]:
    """A response check before dlt reads a page. dlt took a page that is not JSON for a bare
    parse error; and a page without the records' field (`{"errors": "Exceeded 2 calls per
    second"}` with status 200), an empty page before the total the listing states, or a total
    that fell between two pages (a record deleted, or gone from a filter, meanwhile: the
    record shifted onto the page already read is never served), for nothing amiss: the run
    succeeded and the next one started after the records it never read, lost for good. Each
    fails the run naming the service; the next run reads the pages again."""
    selector = endpoint.data_selector
    paginator = endpoint.paginator
    totals: dict[str, Any] = {}  # listing (its path and query, paging aside) -> its total

    def check(response: Any, *_: Any, **__: Any) -> Any:
        if response.status_code != 200:
            return response
        url = urlsplit(response.request.url) if response.request else urlsplit("")
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            start = " ".join(response.text[:80].split())
            raise ServiceError(service, f"GET {url.path} answered HTTP 200 with a body that is "
                               f"not JSON ({kind}: {start!r})") from None
        records = _at_path(body, selector) if selector else None
        if selector and records is _MISSING:
            start = " ".join(json.dumps(body, default=str)[:120].split())
            raise ServiceError(service, f"GET {url.path} answered HTTP 200 without the "
                               f"records' field '{selector}' (source.data_selector): {start}")
        if paginator is None or str(paginator.type) not in ("page_number", "offset"):
            return response
        total_path = paginator.total_path or "total"
        total = _at_path(body, total_path)
        if not isinstance(total, int) or isinstance(total, bool):
            return response
        at, asked, listing = _position(paginator, url.query)
        first = totals.setdefault(f"{url.path}?{listing}", total)
        if total < first:  # a growing listing adds at its end: nothing shifts back
            raise ServiceError(service, f"GET {url.path}: {total_path} went from {first} to "
                               f"{total} while the listing was read, shifting records past a "
                               "page already read; the run stops so that none is skipped")
        pages = paginator.type == "page_number"
        if records == [] and at is not None and at < (total - 1 if pages else total):
            where = f"page {asked}" if pages else f"offset {asked}"
            raise ServiceError(service, f"GET {url.path} answered {where} with no records, "
                               f"before the last ({total_path}: {total}): the listing changed "
                               "while it was read, or the API failed")
        return response

    return check


_MISSING = object()


def _at_path(body: Any, path: str) -> Any:
    """The value at a dotted JSON path (`data`, `result.items`), or `_MISSING`; a path with
    wildcards or indexes is dlt's to follow (None)."""
    if any(c in path for c in "[]*$"):
        return None
    for key in path.split("."):
        if not isinstance(body, dict) or key not in body:
            return _MISSING
        body = body[key]
    return body


def _position(paginator: Any, query: str) -> tuple[int | None, str, str]:
    """Where a request of a page_number or offset listing is, counted as its total counts
    (pages from 0, dlt's base page aside; records), the value asked for, and the rest of the
    query (which listing it is)."""
    from urllib.parse import parse_qsl, urlencode

    asked = dict(parse_qsl(query))
    if paginator.type == "page_number":
        param, base = paginator.page_param or "page", paginator.base_page or 0
    else:
        param, base = paginator.offset_param or "offset", 0
    listing = urlencode(sorted((k, v) for k, v in asked.items() if k != param))
    value = asked.get(param, "")
    try:
        return int(value) - base, value, listing
    except ValueError:
        return None, value, listing


def dlt_auth(auth: ApiAuth | None, secrets: dict[str, str]) -> Any:
    """dlt's auth object for the spec's `auth`, with the secrets read from the environment."""
    if auth is None:
        return None
    from dlt.sources.helpers.rest_client.auth import APIKeyAuth, BearerTokenAuth, HttpBasicAuth

    if auth.type == "bearer":
        return BearerTokenAuth(token=secrets["token_env"])
    if auth.type == "api_key":
        return APIKeyAuth(name=auth.name or "Authorization", api_key=secrets["api_key_env"],
                          location=str(auth.location or "header"))  # type: ignore[arg-type]
    username = auth.username or secrets.get("username_env", "")
    return HttpBasicAuth(username=username, password=secrets["password_env"])


def http_session(source: RestApiSource, service: str) -> Any:
    """dlt's requests session with the spec's retries, whose failures after the last attempt
    are one-line errors naming the service (and the credential's variable on a 401)."""
    import requests
    from dlt.sources.helpers.requests.retry import Client

    retry = source.retry
    session = Client(
        request_timeout=retry.timeout,
        raise_for_status=False,  # dlt's RESTClient checks statuses itself; we do before it
        request_max_attempts=retry.max_attempts,
        request_backoff_factor=retry.backoff_factor,
        request_max_retry_delay=retry.max_delay,
        respect_retry_after_header=True,
    ).session
    send: Callable[..., Any] = session.send
    names = source.auth.env_names if source.auth else []

    def explained(request: Any, **kwargs: Any) -> Any:
        path = urlsplit(request.url).path  # no query string: it may hold an API key
        try:
            response = send(request, **kwargs)
        except requests.HTTPError as exc:  # dlt's response hook raises on an error status
            if exc.response is None:
                raise ServiceError(service, f"{request.method} {path}: {_reason(exc)}") from None
            response = exc.response
        except requests.RequestException as exc:
            raise ServiceError(service, f"cannot reach {request.method} {path} after "
                               f"{retry.max_attempts} attempt(s): {_reason(exc)}") from None
        if response.status_code in (401, 403):
            fix = f"check the credential in {', '.join(names)}" if names else \
                "the API wants credentials: set source.auth"
            raise ServiceError(service, f"HTTP {response.status_code} {response.reason} on "
                               f"{request.method} {path}: {fix}")
        if response.status_code >= 400:
            again = f" after {retry.max_attempts} attempt(s)" if response.status_code == 429 or \
                response.status_code >= 500 else ""
            raise ServiceError(service, f"HTTP {response.status_code} {response.reason} on "
                               f"{request.method} {path}{again}")
        return response

    session.send = explained  # type: ignore[method-assign]
    return session


def _reason(exc: Exception) -> str:
    text = str(exc)
    for words, reason in (("refused", "connection refused"), ("timed out", "no answer in time"),
                          ("Name or service not known", "unknown host"),
                          ("nodename nor servname", "unknown host")):
        if words in text:
            return reason
    return type(exc).__name__
