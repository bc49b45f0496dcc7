"""The `rest_api` source kind in a pipeline file: one resource of an HTTP API, read through
dlt's declarative `rest_api` source (https://dlthub.com/docs/dlt-ecosystem/verified-sources/rest_api).

Secrets are never written here: `auth` names the environment variables that hold them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from framework.spec.base import Incremental, ProblemAt, SpecModel, no_duplicates

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Header and query parameter names that carry credentials: their values belong in `auth`.
SECRET_NAME = re.compile(r"authorization|token|secret|password|api[-_]?key|apikey|cookie|signature",
                         re.IGNORECASE)
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
ParamValue = str | int | float | bool


def env_name(value: str) -> str:
    """An environment variable's name, refused without echoing it (it may be the secret)."""
    if not ENV_NAME.match(value):
        raise ValueError("expected the name of an environment variable (upper-case letters, "
                         "digits, '_', e.g. SHOP_API_TOKEN), never the secret itself")
    return value


def no_secret_names(values: Mapping[str, object], what: str) -> None:
    for name in values:
        if SECRET_NAME.search(name):
            raise ProblemAt(name, f"'{name}' carries a credential, which is never written in a "
                            f"pipeline file; remove it from {what} and set source.auth (its "
                            "value comes from an environment variable)")


class AuthType(StrEnum):
    bearer = "bearer"
    api_key = "api_key"
    http_basic = "http_basic"


class ApiKeyLocation(StrEnum):
    header = "header"
    query = "query"
    cookie = "cookie"


# The keys each auth type needs and accepts, besides `type`.
AUTH_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "bearer": ({"token_env"}, set()),
    "api_key": ({"api_key_env"}, {"name", "location"}),
    "http_basic": ({"password_env"}, {"username", "username_env"}),
}


class ApiAuth(SpecModel):
    """How requests authenticate; every secret comes from an environment variable."""

    type: AuthType = Field(
        description="`bearer` (an `Authorization: Bearer` token), `api_key` (a key in a header, "
        "query parameter or cookie) or `http_basic` (user name and password).",
        examples=["bearer"],
    )
    token_env: str | None = Field(
        default=None,
        description="`bearer`: environment variable holding the token.",
        examples=["SHOP_API_TOKEN"],
    )
    api_key_env: str | None = Field(
        default=None,
        description="`api_key`: environment variable holding the key.",
        examples=["SHOP_API_KEY"],
    )
    name: str | None = Field(
        default=None,
        description="`api_key`: header, query parameter or cookie name (dlt's default: "
        "`Authorization`).",
        examples=["X-API-Key"],
    )
    location: ApiKeyLocation | None = Field(
        default=None,
        description="`api_key`: where the key goes: `header` (the default), `query` or "
        "`cookie`.",
        examples=["header"],
    )
    username: str | None = Field(
        default=None,
        description="`http_basic`: user name, when it is not a secret (else `username_env`).",
        examples=["reporting"],
    )
    username_env: str | None = Field(
        default=None,
        description="`http_basic`: environment variable holding the user name.",
        examples=["SHOP_API_USER"],
    )
    password_env: str | None = Field(
        default=None,
        description="`http_basic`: environment variable holding the password.",
        examples=["SHOP_API_PASSWORD"],
    )

    @field_validator("token_env", "api_key_env", "username_env", "password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return None if value is None else env_name(value)

    @model_validator(mode="after")
    def _keys_of_type(self) -> ApiAuth:
        needed, optional = AUTH_KEYS[str(self.type)]
        given = {k for k in self.model_fields_set if k != "type"}
        for key in sorted(needed - given):
            raise ProblemAt(key, f"auth type '{self.type}' needs '{key}' (the environment "
                            "variable holding the secret)")
        for key in sorted(given - needed - optional):
            raise ProblemAt(key, f"'{key}' does not apply to auth type '{self.type}'; remove it")
        if self.username is not None and self.username_env is not None:
            raise ProblemAt("username_env", "give 'username' or 'username_env', not both")
        return self

    @property
    def env_names(self) -> list[str]:
        """The environment variables this auth reads, in the order they are named."""
        names = (self.token_env, self.api_key_env, self.username_env, self.password_env)
        return [n for n in names if n]


KEYSET_PAGINATORS = ("cursor", "header_cursor")  # a token for the records after the last


class PaginatorType(StrEnum):
    auto = "auto"
    single_page = "single_page"
    page_number = "page_number"
    offset = "offset"
    cursor = "cursor"
    header_link = "header_link"
    header_cursor = "header_cursor"
    json_link = "json_link"


# dlt's options of each paginator type (dlt.sources.rest_api.typing), by the same names.
PAGINATOR_KEYS: dict[str, set[str]] = {
    "auto": set(),
    "single_page": set(),
    "page_number": {"base_page", "page", "page_param", "total_path", "maximum_page",
                    "stop_after_empty_page", "has_more_path"},
    "offset": {"limit", "offset", "offset_param", "limit_param", "total_path", "maximum_offset",
               "stop_after_empty_page", "has_more_path"},
    "cursor": {"cursor_path", "cursor_param", "stop_after_empty_page", "has_more_path"},
    "header_link": {"links_next_key"},
    "header_cursor": {"cursor_key", "cursor_param"},
    "json_link": {"next_url_path"},
}


class Paginator(SpecModel):
    """How the API splits a listing into pages, in dlt's words (its paginator types)."""

    type: PaginatorType = Field(
        description="dlt's paginator: `page_number`, `offset`, `cursor` (a cursor in the body), "
        "`header_link` (RFC 8288 `Link: <...>; rel=next`), `header_cursor`, `json_link` (the "
        "next URL in the body), `single_page`, or `auto` (dlt guesses from the first response).",
        examples=["page_number"],
    )
    base_page: int | None = Field(default=None, description="`page_number`: number of the "
                                  "first page (0 or 1).", examples=[1])
    page: int | None = Field(default=None, description="`page_number`: page to start from.",
                             examples=[1])
    page_param: str | None = Field(default=None, description="`page_number`: query parameter "
                                   "carrying the page number.", examples=["page"])
    total_path: str | None = Field(default=None, description="`page_number`, `offset`: JSON "
                                   "path of the total (pages or records) in the response.",
                                   examples=["total_pages"])
    maximum_page: int | None = Field(default=None, description="`page_number`: stop after this "
                                     "page (an API that reports no total).", examples=[1000])
    limit: int | None = Field(default=None, description="`offset`: records per page.",
                              examples=[100])
    offset: int | None = Field(default=None, description="`offset`: offset to start from.",
                               examples=[0])
    offset_param: str | None = Field(default=None, description="`offset`: query parameter "
                                     "carrying the offset.", examples=["offset"])
    limit_param: str | None = Field(default=None, description="`offset`: query parameter "
                                    "carrying the page size.", examples=["limit"])
    maximum_offset: int | None = Field(default=None, description="`offset`: stop at this offset.",
                                       examples=[100000])
    cursor_path: str | None = Field(default=None, description="`cursor`: JSON path of the next "
                                    "page's cursor in the response.", examples=["next_cursor"])
    cursor_param: str | None = Field(default=None, description="`cursor`, `header_cursor`: "
                                     "query parameter carrying the cursor.", examples=["cursor"])
    cursor_key: str | None = Field(default=None, description="`header_cursor`: response header "
                                   "holding the next cursor.", examples=["X-Next-Cursor"])
    links_next_key: str | None = Field(default=None, description="`header_link`: relation name "
                                       "of the next page in the `Link` header.",
                                       examples=["next"])
    next_url_path: str | None = Field(default=None, description="`json_link`: JSON path of the "
                                      "next page's URL in the response.", examples=["links.next"])
    stop_after_empty_page: bool | None = Field(default=None, description="Stop at the first "
                                               "empty page.", examples=[True])
    has_more_path: str | None = Field(default=None, description="JSON path of a boolean that "
                                      "says whether more pages follow.", examples=["has_more"])

    @model_validator(mode="after")
    def _keys_of_type(self) -> Paginator:
        allowed = PAGINATOR_KEYS[str(self.type)]
        for key in sorted(self.model_fields_set - allowed - {"type"}):
            raise ProblemAt(key, f"'{key}' is not an option of paginator '{self.type}'" + (
                f" (its options: {', '.join(sorted(allowed))})" if allowed else ""))
        return self

    def dlt_config(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True)


class ApiIncremental(Incremental):
    """A cursor field of the records, whose last value the next run sends to the API."""

    param: str = Field(
        description="Query parameter that receives the last run's highest cursor value (the "
        "API returns records changed at or after it).",
        examples=["updated_since"],
    )


class Endpoint(SpecModel):
    """One listing of the API: its path, query parameters, where the records are, its pages."""

    path: str = Field(
        description="Endpoint path under `base_url`. In a child resource, `{field}` is replaced "
        "by that field of each parent record.",
        examples=["orders", "orders/{order_id}/refunds"],
    )
    params: dict[str, ParamValue] = Field(
        default_factory=dict,
        description="Fixed query parameters (never a credential: see `auth`).",
        examples=[{"status": "any", "per_page": 100}],
    )
    data_selector: str | None = Field(
        default=None,
        description="JSON path of the record list in a response; omit to let dlt find it.",
        examples=["data"],
    )
    paginator: Paginator | None = Field(
        default=None,
        description="How pages follow each other; omitted, dlt detects it from the first "
        "response and the run stops unless it is sure (a `next` link); `auto` takes its guess.",
        examples=[{"type": "page_number", "page_param": "page", "total_path": "total_pages"}],
    )

    @property
    def serves_versions(self) -> bool:
        """Paged by a cursor token (keyset), a record updated while the listing is read is
        served again at its end, and both versions land in one batch: the load keeps the
        latest (by cursor), so the key is not checked for uniqueness in the batch."""
        return self.paginator is not None and str(self.paginator.type) in KEYSET_PAGINATORS

    @field_validator("params")
    @classmethod
    def _no_secret_params(cls, value: dict[str, ParamValue]) -> dict[str, ParamValue]:
        no_secret_names(value, "params")
        return value


class ParentEndpoint(Endpoint):
    """The listing whose records the child path's `{field}` placeholders are taken from."""

    name: str = Field(
        default="parent",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Name of the parent resource: `include_from_parent` fields arrive as "
        "`_<name>_<field>`.",
        examples=["orders"],
    )
    incremental: ApiIncremental | None = Field(
        default=None,
        description="Read only parent records changed since the last run (their children are "
        "then the only ones read).",
        examples=[{"cursor": "updated_at", "param": "updated_since"}],
    )


class Retry(SpecModel):
    """Retries of HTTP 429, 5xx and dropped connections (dlt's requests client)."""

    max_attempts: Annotated[int, Field(ge=1)] = Field(
        default=5, description="Attempts per request before the run fails.", examples=[5])
    backoff_factor: Annotated[float, Field(ge=0)] = Field(
        default=1.0, description="Exponential back-off multiplier in seconds (1, 2, 4, ...); a "
        "`Retry-After` header from the API takes precedence.", examples=[1])
    max_delay: Annotated[float, Field(ge=0)] = Field(
        default=300.0, description="Longest back-off between two attempts, in seconds.",
        examples=[60])
    timeout: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="Seconds to wait for a response.", examples=[30])


class RestApiSource(Endpoint):
    """Records of one resource of an HTTP API, through dlt's `rest_api` source."""

    kind: Literal["rest_api"] = Field(
        description="Source kind: `rest_api` reads one resource of an HTTP API.",
        examples=["rest_api"],
    )
    # An API offers no cheap listing of every current key: no delete reconciliation.
    reads_keys: ClassVar[bool] = False

    base_url: str = Field(
        pattern=r"^https?://",
        description="Root URL of the API; endpoint paths are relative to it.",
        examples=["https://api.shop.example/v1/"],
    )
    base_url_env: str | None = Field(
        default=None,
        description="Environment variable that, when set, replaces `base_url` (a staging or "
        "test server).",
        examples=["SHOP_API_URL"],
    )
    auth: ApiAuth | None = Field(
        default=None,
        description="How requests authenticate; secrets only as environment variable names.",
        examples=[{"type": "bearer", "token_env": "SHOP_API_TOKEN"}],
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers (never a credential: see `auth`).",
        examples=[{"Accept": "application/json"}],
    )
    primary_key: list[str] = Field(
        min_length=1,
        description="Field(s) that identify a record; the warehouse merges on them, and records "
        "served again at the cursor boundary are recognised by them.",
        examples=[["order_id"]],
        json_schema_extra={"uniqueItems": True},
    )
    incremental: ApiIncremental | None = Field(
        default=None,
        description="Cursor field of the records and the query parameter that receives its last "
        "value; omit to read the whole listing on every run.",
        examples=[{"cursor": "updated_at", "param": "updated_since",
                   "initial_value": "2016-01-01T00:00:00Z"}],
    )
    parent: ParentEndpoint | None = Field(
        default=None,
        description="The listing this resource's `path` placeholders come from (refunds of "
        "each order: `path: orders/{order_id}/refunds`, `parent: {path: orders}`).",
        examples=[{"path": "orders", "data_selector": "data"}],
    )
    include_from_parent: list[str] = Field(
        default_factory=list,
        description="Parent fields added to each record, as `_<parent name>_<field>`.",
        examples=[["order_id"]],
        json_schema_extra={"uniqueItems": True},
    )
    retry: Retry = Field(
        default_factory=Retry,
        description="Retries of rate limits (429), server errors (5xx) and dropped connections.",
        examples=[{"max_attempts": 5, "backoff_factor": 1}],
    )

    @field_validator("base_url_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return None if value is None else env_name(value)

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, value: dict[str, str]) -> dict[str, str]:
        no_secret_names(value, "headers")
        return value

    @field_validator("primary_key", "include_from_parent")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return no_duplicates(value)

    @model_validator(mode="after")
    def _parent_fits(self) -> RestApiSource:
        fields = self.placeholders
        for field in fields:
            if not FIELD_NAME.match(field):
                raise ProblemAt("path", f"'{{{field}}}' does not name a field of the parent "
                                "records (letters, digits, '_', dotted for nested fields)")
        if fields and self.parent is None:
            raise ProblemAt("path", f"'{{{fields[0]}}}' needs a parent listing to take it from; "
                            "add parent: {path: ...}")
        if self.parent is not None and not fields:
            raise ProblemAt("parent", "the path names no parent field ({field}); remove parent "
                            "or use a placeholder in path")
        if self.include_from_parent and self.parent is None:
            raise ProblemAt("include_from_parent", "there is no parent; remove it")
        return self

    @property
    def placeholders(self) -> list[str]:
        return PLACEHOLDER.findall(self.path)

