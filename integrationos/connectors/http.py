"""HTTP(S) endpoints: a target that sends each message as JSON, or a push-based source.

As a source the connector has no URL of its own: messages arrive through the ingest
endpoint. As a target it keeps one pooled ``httpx.AsyncClient`` per configured connection
and classifies every failure so the error strategy can tell a busy server (retry) from a
rejected request (dead-letter).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx

from integrationos.connectors.base import (
    Connector,
    ConnectorError,
    Delivery,
    HealthReport,
    OutboundMessage,
    Role,
)

DEFAULT_METHOD = "POST"
DEFAULT_TIMEOUT_MS = 10_000
EXCERPT_CHARS = 300
INBOUND_DETAIL = "inbound: messages arrive through POST /v1/integrations/{id}/messages"

Status = Literal["UP", "DOWN"]


class HttpConnector(Connector):
    type_name: ClassVar[str] = "HTTP"
    display_name: ClassVar[str] = "HTTP / Webhook"
    roles: ClassVar[frozenset[Role]] = frozenset({"source", "target"})
    required_for_role: ClassVar[dict[Role, tuple[str, ...]]] = {"target": ("url",)}
    config_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url": {
                "type": "string",
                "format": "uri",
                "pattern": "^https?://[^\\s/?#]+",
                "title": "URL",
                "description": "Where a target sends messages; leave empty for a source.",
            },
            "method": {
                "type": "string",
                "enum": ["POST", "PUT", "PATCH"],
                "default": DEFAULT_METHOD,
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Extra request headers (not secret: use credentials for auth).",
            },
            "timeoutMs": {
                "type": "integer",
                "minimum": 100,
                "maximum": 60_000,
                "default": DEFAULT_TIMEOUT_MS,
            },
        },
    }
    credentials_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "username": {"type": "string", "minLength": 1},
            "password": {"type": "string", "writeOnly": True},
            "bearerToken": {"type": "string", "minLength": 1, "writeOnly": True},
        },
        "dependentRequired": {"username": ["password"], "password": ["username"]},
        "not": {"required": ["username", "bearerToken"]},
    }

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        super().__init__(config, credentials)
        self._client: httpx.AsyncClient | None = None

    @property
    def url(self) -> str | None:
        return self.config.get("url") or None

    def _timeout_ms(self) -> int:
        return int(self.config.get("timeoutMs", DEFAULT_TIMEOUT_MS))

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_ms() / 1000)
        return self._client

    def _headers(self) -> dict[str, str]:
        headers = dict(self.config.get("headers", {}))
        if token := self._credentials.get("bearerToken"):
            headers["Authorization"] = f"Bearer {token}"
        elif "username" in self._credentials:
            pair = f"{self._credentials['username']}:{self._credentials.get('password', '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return headers

    async def write(self, message: OutboundMessage) -> Delivery:
        if self.url is None:
            raise ConnectorError(
                "NO_URL", "this HTTP connection has no url, so it cannot be a target",
                retryable=False,
            )
        method = self.config.get("method", DEFAULT_METHOD)
        headers = {
            **self._headers(),
            "Idempotency-Key": message.idempotency_key,
            "X-IntegrationOS-Message-Id": message.message_id,
            "Content-Type": message.content_type,
        }
        try:
            response = await self._http().request(
                method, self.url, content=message.encoded(), headers=headers
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _transport_error(exc, self.url, self._timeout_ms()) from None
        if response.is_success:
            return Delivery(target=_public_url(self.url), detail=f"HTTP {response.status_code}")
        raise _status_error(response)

    async def test(self, timeout: float = 10.0) -> HealthReport:
        started = time.monotonic()
        if self.url is None:
            return HealthReport("UP", 0, INBOUND_DETAIL)
        try:
            async with asyncio.timeout(timeout):
                response = await self._probe(timeout)
        except (TimeoutError, httpx.TimeoutException):
            return _report("DOWN", started, f"timeout after {int(timeout * 1000)}ms")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = _transport_error(exc, self.url, int(timeout * 1000))
            return _report("DOWN", started, error.message)
        except Exception as exc:  # a health check reports, it never raises
            return _report("DOWN", started, f"unexpected {type(exc).__name__}: {exc}")
        status: Status = "UP" if response.status_code < 500 else "DOWN"
        return _report(status, started, _status_line(response))

    async def _probe(self, timeout: float) -> httpx.Response:
        """HEAD first (no body to download); servers that refuse HEAD get a GET."""
        client, headers = self._http(), self._headers()
        response = await client.head(self.url, headers=headers, timeout=timeout)
        if response.status_code == 405:
            async with client.stream("GET", self.url, headers=headers,
                                     timeout=timeout) as response:
                return response
        return response

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _report(status: Status, started: float, detail: str) -> HealthReport:
    return HealthReport(status, int((time.monotonic() - started) * 1000), detail)


def _status_line(response: httpx.Response) -> str:
    return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()


def _status_error(response: httpx.Response) -> ConnectorError:
    """429, 408 and 5xx mean "not now" (retry); any other refusal will not change by itself."""
    status = response.status_code
    message = _status_line(response)
    retryable = status >= 500 or status in (408, 429)
    if retry_after := response.headers.get("Retry-After"):
        message += f" (Retry-After: {retry_after})"
    if 300 <= status < 400:
        message += f" redirect to {response.headers.get('Location', '?')}: configure the final URL"
    return ConnectorError(
        f"HTTP_{status}", message, retryable=retryable, excerpt=response.text[:EXCERPT_CHARS]
    )


def _transport_error(exc: Exception, url: str, timeout_ms: int) -> ConnectorError:
    """Name the failure as an operator would search for it: DNS, refused, TLS, timeout."""
    host = urlsplit(url).hostname or url
    if isinstance(exc, httpx.TimeoutException):
        return ConnectorError("TIMEOUT", f"timeout after {timeout_ms}ms", retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConnectorError("BAD_URL", f"unusable url: {exc}", retryable=False)
    causes = _causes(exc)
    if any(isinstance(c, socket.gaierror) for c in causes):
        return ConnectorError("DNS", f"DNS: cannot resolve {host}", retryable=True)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return ConnectorError("CONNECTION_REFUSED", "connection refused", retryable=True)
    if tls := next((c for c in causes if isinstance(c, ssl.SSLError)), None):
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or tls
        return ConnectorError("TLS", f"TLS: {reason}", retryable=True)
    detail = next((str(c) for c in causes if str(c)), type(exc).__name__)
    return ConnectorError("TRANSPORT", f"transport error: {detail}", retryable=True)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _public_url(url: str) -> str:
    """The URL without userinfo or query string, which may hold secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
