"""HTTP(S) endpoints: a target that sends each message as JSON, or a push-based source.

As a source the connector has no URL of its own: messages arrive through the ingest
endpoint, or through the integration's webhook, signed with the ``webhookSecret`` credential
(the scheme of ``integrationos.webhook_signatures``). As a target it keeps one pooled
``httpx.AsyncClient`` per configured connection and classifies every failure so the error
strategy can tell a busy server (retry, after its ``Retry-After``) from a rejected request
(dead-letter).

A target's path and headers may be JSONata templates on the payload. It authenticates with
basic auth, a bearer token, or an OAuth 2.0 client-credentials token (fetched once, reused
until shortly before it expires, fetched again once when the API answers 401, since a token
may be revoked early), and may also sign every request with an HMAC (``X-Timestamp`` and
``X-Signature``, the platform's one scheme: ``integrationos.webhook_signatures``).
"""

from __future__ import annotations

import asyncio
import base64
import math
import socket
import ssl
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx

from integrationos import tracing
from integrationos.connectors.base import (
    Connector,
    ConnectorError,
    Delivery,
    HealthReport,
    OutboundMessage,
    Role,
)
from integrationos.connectors.templates import Templates
from integrationos.webhook_signatures import sign

DEFAULT_METHOD = "POST"
DEFAULT_TIMEOUT_MS = 10_000
EXCERPT_CHARS = 300
INBOUND_DETAIL = ("inbound: messages arrive through POST /v1/integrations/{id}/messages "
                  "or the signed POST /v1/webhooks/{id}")
REFRESH_MARGIN_S = 30.0  # fetch a new OAuth token this long before the old one expires
_URL_PATTERN = "^https?://[^\\s/?#]+"
_OAUTH_HALF = "OAuth needs both config oauth2.tokenUrl and credentials clientId/clientSecret"

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
                "pattern": _URL_PATTERN,
                "title": "URL",
                "description": "Where a target sends messages; leave empty for a source.",
            },
            "method": {
                "type": "string",
                "enum": ["POST", "PUT", "PATCH"],
                "default": DEFAULT_METHOD,
            },
            "urlTemplate": {
                "type": "string",
                "minLength": 1,
                "description": "JSONata giving a URL resolved against url (RFC 3986), e.g. "
                "'\"customers/\" & $.id'; it must stay on url's scheme, host and port.",
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Extra request headers (not secret: use credentials for auth).",
            },
            "headerTemplates": {
                "type": "object",
                "additionalProperties": {"type": "string", "minLength": 1},
                "description": "Header name -> JSONata on the payload; a header whose "
                "expression is undefined is left out.",
            },
            "oauth2": {
                "type": "object",
                "additionalProperties": False,
                "required": ["tokenUrl"],
                "description": "OAuth 2.0 client credentials: clientId and clientSecret go "
                "in the credentials.",
                "properties": {
                    "tokenUrl": {"type": "string", "format": "uri", "pattern": _URL_PATTERN},
                    "scope": {"type": "string", "minLength": 1},
                    "clientAuthentication": {
                        "type": "string",
                        "enum": ["basic", "body"],
                        "default": "basic",
                        "description": "Send the client id and secret as basic auth or as "
                        "form fields to the token endpoint.",
                    },
                },
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
            "clientId": {"type": "string", "minLength": 1},
            "clientSecret": {"type": "string", "writeOnly": True},
            "signingSecret": {"type": "string", "minLength": 16, "writeOnly": True,
                              "description": "Target: sign every request (X-Signature)."},
            "webhookSecret": {"type": "string", "minLength": 16, "writeOnly": True,
                              "description": "Source: accept webhooks signed with it."},
        },
        "dependentRequired": {"username": ["password"], "password": ["username"],
                              "clientId": ["clientSecret"], "clientSecret": ["clientId"]},
        "allOf": [{"not": {"required": pair}} for pair in (
            ["username", "bearerToken"], ["username", "clientId"], ["bearerToken", "clientId"])],
    }

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        super().__init__(config, credentials)
        self._client: httpx.AsyncClient | None = None
        expressions = {f"headerTemplates.{name}": expression
                       for name, expression in config.get("headerTemplates", {}).items()}
        if "urlTemplate" in config:
            expressions["urlTemplate"] = config["urlTemplate"]
        self._templates = Templates(expressions)
        self._oauth = (_ClientCredentials(config["oauth2"], credentials["clientId"],
                                          credentials["clientSecret"])
                       if "oauth2" in config and "clientId" in credentials else None)

    @property
    def url(self) -> str | None:
        return self.config.get("url") or None

    def _timeout_ms(self) -> int:
        return int(self.config.get("timeoutMs", DEFAULT_TIMEOUT_MS))

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_ms() / 1000)
        return self._client

    def _oauth_half_configured(self) -> bool:
        return ("oauth2" in self.config) != ("clientId" in self._credentials)

    async def _authorization(self) -> tuple[dict[str, str], str | None]:
        """The Authorization header, and the OAuth token in it (to forget it on a 401)."""
        if self._oauth is not None:
            token = await self._oauth.token(self._http(), self._timeout_ms())
            return {"Authorization": f"Bearer {token}"}, token
        if token := self._credentials.get("bearerToken"):
            return {"Authorization": f"Bearer {token}"}, None
        if "username" in self._credentials:
            pair = f"{self._credentials['username']}:{self._credentials.get('password', '')}"
            return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}, None
        return {}, None

    def _signed(self, body: bytes) -> dict[str, str]:
        secret = self._credentials.get("signingSecret")
        return sign(secret, body) if secret else {}

    async def write(self, message: OutboundMessage) -> Delivery:
        if self.url is None:
            raise ConnectorError(
                "NO_URL", "this HTTP connection has no url, so it cannot be a target",
                retryable=False,
            )
        self._templates.check()
        if self._oauth_half_configured():
            raise ConnectorError("BAD_CONFIG", _OAUTH_HALF, retryable=False)
        url = self._target_url(self.url, message.payload)
        headers = {
            **self.config.get("headers", {}),
            **self._templated_headers(message.payload),
            "Idempotency-Key": message.idempotency_key,
            **tracing.http_headers(),  # the target can continue the message's trace
            "X-IntegrationOS-Message-Id": message.message_id,
            "Content-Type": message.content_type,
        }
        body = message.encoded()
        response, token = await self._send(url, body, headers)
        if response.status_code == 401 and token is not None and self._oauth is not None:
            self._oauth.forget(token)
            response, _ = await self._send(url, body, headers)
        if response.is_success:
            return Delivery(target=_public_url(url), detail=f"HTTP {response.status_code}")
        raise _status_error(response)

    async def _send(self, url: str, body: bytes,
                    headers: dict[str, str]) -> tuple[httpx.Response, str | None]:
        method = self.config.get("method", DEFAULT_METHOD)
        authorization, token = await self._authorization()
        try:
            response = await self._http().request(
                method, url, content=body, headers={**headers, **authorization,
                                                    **self._signed(body)})
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _transport_error(exc, url, self._timeout_ms()) from None
        return response, token

    def _target_url(self, url: str, payload: Any) -> str:
        """``url``, or ``urlTemplate``'s value resolved against it on the same origin (the
        credentials are meant for that server only)."""
        if "urlTemplate" not in self.config:
            return url
        relative = self._templates.text("urlTemplate", payload)
        if not relative:
            raise ConnectorError("URL_TEMPLATE", "urlTemplate gave no value", retryable=False)
        base = httpx.URL(url)
        try:
            resolved = base.join(relative)
        except httpx.InvalidURL as exc:
            raise ConnectorError("URL_TEMPLATE", f"urlTemplate gave an unusable URL: {exc}",
                                 retryable=False) from None
        if (resolved.scheme, resolved.host, resolved.port) != (base.scheme, base.host,
                                                               base.port):
            raise ConnectorError("URL_TEMPLATE", f"urlTemplate left {_public_url(url)}: "
                                 f"{_public_url(str(resolved))}", retryable=False)
        return str(resolved)

    def _templated_headers(self, payload: Any) -> dict[str, str]:
        headers = {}
        for name in self.config.get("headerTemplates", {}):
            value = self._templates.text(f"headerTemplates.{name}", payload)
            if value is None:
                continue
            if any(c in value for c in "\r\n\0"):
                raise ConnectorError("TEMPLATE_TYPE", f"headerTemplates.{name} gave a line "
                                     "break or NUL, which a header cannot hold", retryable=False)
            headers[name] = value
        return headers

    async def test(self, timeout: float = 10.0) -> HealthReport:
        started = time.monotonic()
        if self.url is None:
            return HealthReport("UP", 0, INBOUND_DETAIL)
        if self._templates.problem is not None:
            return _report("DOWN", started, f"template {self._templates.problem}")
        if self._oauth_half_configured():
            return _report("DOWN", started, _OAUTH_HALF)
        try:
            async with asyncio.timeout(timeout):
                response = await self._probe(timeout)
        except (TimeoutError, httpx.TimeoutException):
            return _report("DOWN", started, f"timeout after {int(timeout * 1000)}ms")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = _transport_error(exc, self.url, int(timeout * 1000))
            return _report("DOWN", started, error.message)
        except ConnectorError as exc:  # the OAuth token endpoint refused or failed
            return _report("DOWN", started, exc.message)
        except Exception as exc:  # a health check reports, it never raises
            return _report("DOWN", started, f"unexpected {type(exc).__name__}: {exc}")
        status: Status = "UP" if response.status_code < 500 else "DOWN"
        return _report(status, started, _status_line(response))

    async def _probe(self, timeout: float) -> httpx.Response:
        """HEAD first (no body to download); servers that refuse HEAD get a GET."""
        authorization, _ = await self._authorization()
        client = self._http()
        headers = {**self.config.get("headers", {}), **authorization, **self._signed(b"")}
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


class _ClientCredentials:
    """An OAuth 2.0 client-credentials token (RFC 6749 section 4.4) shared by every request.

    Fetched under a lock, so concurrent writes wait for one fetch rather than each asking
    the token endpoint; ``forget`` drops it only if it is still the current one, so a burst
    of 401s for one revoked token leads to a single new fetch.
    """

    def __init__(self, settings: dict[str, Any], client_id: str, client_secret: str) -> None:
        self._url: str = settings["tokenUrl"]
        self._scope: str | None = settings.get("scope")
        self._in_body = settings.get("clientAuthentication", "basic") == "body"
        self._client = (client_id, client_secret)
        self._token: str | None = None
        self._renew_at = math.inf
        self._lock = asyncio.Lock()

    async def token(self, http: httpx.AsyncClient, timeout_ms: int) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._token, self._renew_at = await self._fetch(http, timeout_ms)
            return self._token

    def forget(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def _fetch(self, http: httpx.AsyncClient, timeout_ms: int) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        auth = None
        if self._in_body:
            form |= {"client_id": self._client[0], "client_secret": self._client[1]}
        else:
            auth = httpx.BasicAuth(*self._client)
        try:
            response = await http.post(self._url, data=form, auth=auth,
                                       headers={"Accept": "application/json"})
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = _transport_error(exc, self._url, timeout_ms)
            raise ConnectorError(f"OAUTH_{error.code}", f"token endpoint: {error.message}",
                                 retryable=error.retryable) from None
        if not response.is_success:
            error = _status_error(response)
            raise ConnectorError(f"OAUTH_{error.code}", f"token endpoint: {error.message}",
                                 retryable=error.retryable, excerpt=error.excerpt,
                                 retry_after=error.retry_after)
        try:
            answer = response.json()
            token, lifetime = answer["access_token"], float(answer.get("expires_in") or math.inf)
        except (ValueError, KeyError, TypeError, AttributeError):
            token, lifetime = None, 0.0
        if not isinstance(token, str) or not token or lifetime <= 0:
            raise ConnectorError("OAUTH_BAD_RESPONSE", "token endpoint: no usable "
                                 "access_token/expires_in in its answer", retryable=False)
        return token, time.monotonic() + lifetime - min(REFRESH_MARGIN_S, lifetime / 10)


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
        f"HTTP_{status}", message, retryable=retryable, excerpt=response.text[:EXCERPT_CHARS],
        retry_after=_retry_after(retry_after) if status in (429, 503) else None,
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, from delay-seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: the error strategy's own backoff applies
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


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
