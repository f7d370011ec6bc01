"""What the sync and async clients share: configuration, the description of one API call,
building its HTTP request and turning the answer into a result or an exception.

A resource method builds a ``Call`` (method, path, body, how to parse the answer, whether
it may be retried); the client only executes it, with ``httpx.Client`` or
``httpx.AsyncClient``. That keeps the resources written once for both clients.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Optional, TypeVar, Union

import httpx

from integration_platform._errors import IntegrationPlatformError, error_from_response
from integration_platform._retry import RetryPolicy
from integration_platform._version import __version__

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 30.0
API_KEY_ENV = "INTEGRATION_PLATFORM_API_KEY"
TENANT_ENV = "INTEGRATION_PLATFORM_TENANT_ID"
BASE_URL_ENV = "INTEGRATION_PLATFORM_BASE_URL"
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class _NotGiven:
    """Marks an argument the caller left out, where ``None`` means JSON ``null``."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


def body(**fields: Any) -> dict[str, Any]:
    """A request body from snake_case keyword arguments: camelCase keys, unset ones left
    out (``from_`` is sent as ``from``)."""
    return {_camel(k): v for k, v in fields.items() if v is not NOT_GIVEN}


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call, before it is sent."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Optional[dict[str, Any]] = None
    json: Any = NOT_GIVEN
    content: Optional[bytes] = None
    headers: dict[str, str] = field(default_factory=dict)
    side_effect_free: bool = False
    """A POST that changes nothing (a test, a sandbox run, a preview): safe to retry."""

    @property
    def retryable(self) -> bool:
        """Repeating it cannot do its effect twice."""
        return (self.method in _IDEMPOTENT_METHODS or self.side_effect_free
                or "Idempotency-Key" in self.headers)


@dataclass(frozen=True)
class Config:
    """A client's settings, resolved once from arguments and environment."""

    api_key: str
    tenant_id: str
    base_url: str
    timeout: Union[float, httpx.Timeout]
    retry: RetryPolicy

    @classmethod
    def resolve(cls, api_key: Optional[str], tenant_id: Optional[str],
                base_url: Optional[str], timeout: Union[float, httpx.Timeout, None],
                max_retries: int) -> Config:
        key = api_key or os.environ.get(API_KEY_ENV)
        tenant = tenant_id or os.environ.get(TENANT_ENV)
        if not key:
            raise IntegrationPlatformError(
                f"no API key: pass api_key= or set {API_KEY_ENV}")
        if not tenant:
            raise IntegrationPlatformError(
                f"no tenant: pass tenant_id= or set {TENANT_ENV}")
        url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        if url.endswith("/v1"):  # the curl quickstart's API=.../v1 works too
            url = url[: -len("/v1")]
        return cls(key, tenant, url, DEFAULT_TIMEOUT if timeout is None else timeout,
                   RetryPolicy(max_retries=max_retries))

    def default_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key, "X-Tenant-Id": self.tenant_id,
                "Accept": "application/json",
                "User-Agent": f"integration-platform-python/{__version__}"}

    def __repr__(self) -> str:  # never show the key
        return f"Config(tenant_id={self.tenant_id!r}, base_url={self.base_url!r})"


def new_request_id() -> str:
    """Sent as ``X-Request-Id``, the same on every retry of one call, so the server's log
    groups them; the platform answers with it."""
    return f"req_{uuid.uuid4().hex[:24]}"


def new_idempotency_key() -> str:
    return f"sdk_{uuid.uuid4().hex}"


def request_arguments(config: Config, call: Call[Any], request_id: str) -> dict[str, Any]:
    """Keyword arguments of ``httpx.Client.request`` for ``call``."""
    arguments: dict[str, Any] = {
        "method": call.method, "url": config.base_url + call.path,
        "headers": {**config.default_headers(), **call.headers, "X-Request-Id": request_id},
        "timeout": config.timeout,
    }
    if call.params:
        arguments["params"] = {k: v for k, v in call.params.items() if v is not None}
    if call.json is not NOT_GIVEN:
        arguments["json"] = call.json
    elif call.content is not None:
        arguments["content"] = call.content
    return arguments


def finish(call: Call[T], response: httpx.Response, request_id: str) -> T:
    """The parsed result of a successful answer, or the exception of an error one."""
    if response.is_error:
        raise error_from_response(response, request_id)
    return call.parse(response)
