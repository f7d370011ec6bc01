"""The HTTP connector against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from integrationos.connectors.base import ConnectorError, Delivery, HealthReport, OutboundMessage
from integrationos.connectors.http import INBOUND_DETAIL, HttpConnector

TOKEN = "tok-secret-123"


@dataclass
class Reply:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.replies: dict[str, Reply] = {}
        self.answers: dict[str, Callable[[Seen], Reply]] = {}  # path -> reply made per request
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    server: Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, dict(self.headers), body, self.client_address[1])
        self.server.seen.append(seen)
        path = self.path.split("?")[0]
        answer = self.server.answers.get(path)
        reply = answer(seen) if answer else self.server.replies.get(
            f"{self.command} {path}") or self.server.replies.get(path, Reply())
        time.sleep(reply.delay)
        payload = reply.body.encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def message(n: int = 1) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"msg-{n}", idempotency_key=f"idem-{n}", tenant="acme",
        integration_id="int-1", key=None, payload={"order": n, "items": ["a", "b"]},
    )


async def write(connector: HttpConnector, *messages: OutboundMessage) -> list[Delivery]:
    try:
        return [await connector.write(m) for m in messages]
    finally:
        await connector.close()


def write_error(config: dict[str, Any], credentials: dict[str, Any] | None = None
                ) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        asyncio.run(write(HttpConnector(config, credentials or {}), message()))
    return caught.value


def health(config: dict[str, Any], timeout: float = 5.0) -> HealthReport:
    async def run() -> HealthReport:
        connector = HttpConnector(config, {})
        try:
            return await connector.test(timeout)
        finally:
            await connector.close()
    return asyncio.run(run())


def test_write_sends_json_with_identity_and_configured_headers(server: Server) -> None:
    server.replies["/hook"] = Reply(201)
    config = {"url": f"{server.url}/hook?sig=abc", "method": "PUT",
              "headers": {"X-Tenant": "acme"}}
    connector = HttpConnector(config, {"bearerToken": TOKEN})
    [delivery] = asyncio.run(write(connector, message(7)))
    assert delivery.detail == "HTTP 201"
    assert delivery.target == f"{server.url}/hook"  # no query string: it may hold secrets
    [seen] = server.seen
    assert seen.method == "PUT"
    assert json.loads(seen.body) == {"order": 7, "items": ["a", "b"]}
    assert seen.headers["Idempotency-Key"] == "idem-7"
    assert seen.headers["X-IntegrationOS-Message-Id"] == "msg-7"
    assert seen.headers["X-Tenant"] == "acme"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


def test_basic_auth_and_default_post(server: Server) -> None:
    connector = HttpConnector({"url": f"{server.url}/hook"},
                              {"username": "ios", "password": "pw"})
    asyncio.run(write(connector, message()))
    [seen] = server.seen
    assert seen.method == "POST"
    assert seen.headers["Authorization"] == "Basic " + base64.b64encode(b"ios:pw").decode()


def test_connections_are_pooled_per_connector(server: Server) -> None:
    connector = HttpConnector({"url": f"{server.url}/hook"}, {})
    deliveries = asyncio.run(write(connector, message(1), message(2), message(3)))
    assert [d.detail for d in deliveries] == ["HTTP 200"] * 3
    assert len({seen.client_port for seen in server.seen}) == 1


def test_503_is_retryable_with_retry_after_and_excerpt(server: Server) -> None:
    body = "x" * 500
    server.replies["/hook"] = Reply(503, body, {"Retry-After": "7"})
    error = write_error({"url": f"{server.url}/hook"})
    assert error.retryable
    assert error.code == "HTTP_503"
    assert "Retry-After: 7" in error.message
    assert error.retry_after == 7.0
    assert error.excerpt == body[:300]


def test_retry_after_as_an_http_date_becomes_seconds(server: Server) -> None:
    server.replies["/hook"] = Reply(429, headers={"Retry-After": formatdate(time.time() + 5,
                                                                            usegmt=True)})
    error = write_error({"url": f"{server.url}/hook"})
    assert error.retryable and error.retry_after is not None
    assert 3 < error.retry_after <= 5
    server.replies["/hook"] = Reply(500, headers={"Retry-After": "9"})
    assert write_error({"url": f"{server.url}/hook"}).retry_after is None  # 429/503 only


def test_429_is_retryable(server: Server) -> None:
    server.replies["/hook"] = Reply(429, "slow down")
    error = write_error({"url": f"{server.url}/hook"})
    assert error.retryable
    assert error.code == "HTTP_429"
    assert error.excerpt == "slow down"


def test_400_is_permanent(server: Server) -> None:
    server.replies["/hook"] = Reply(400, '{"error":"bad field"}')
    error = write_error({"url": f"{server.url}/hook"}, {"bearerToken": TOKEN})
    assert not error.retryable
    assert error.code == "HTTP_400"
    assert error.excerpt == '{"error":"bad field"}'
    assert TOKEN not in error.message


def test_refused_port_is_retryable(refused_url: str) -> None:
    error = write_error({"url": refused_url})
    assert error.retryable
    assert error.code == "CONNECTION_REFUSED"


def test_unresolvable_host_is_retryable_dns_error() -> None:
    error = write_error({"url": "http://no-such-host.invalid/hook"})
    assert error.retryable
    assert error.code == "DNS"
    assert error.message == "DNS: cannot resolve no-such-host.invalid"


def test_slow_server_times_out_retryably(server: Server) -> None:
    server.replies["/slow"] = Reply(200, delay=1.0)
    started = time.monotonic()
    error = write_error({"url": f"{server.url}/slow", "timeoutMs": 200})
    assert time.monotonic() - started < 0.9
    assert error.retryable
    assert error.message == "timeout after 200ms"


def test_write_without_url_is_permanent() -> None:
    error = write_error({})
    assert not error.retryable
    assert error.code == "NO_URL"


def test_health_up_when_server_answers(server: Server) -> None:
    report = health({"url": f"{server.url}/hook"})
    assert report.status == "UP"
    assert report.detail == "HTTP 200 OK"
    assert [s.method for s in server.seen] == ["HEAD"]


def test_health_falls_back_to_get_when_head_is_not_allowed(server: Server) -> None:
    server.replies["HEAD /hook"] = Reply(405)
    report = health({"url": f"{server.url}/hook"})
    assert report.status == "UP"
    assert [s.method for s in server.seen] == ["HEAD", "GET"]


def test_health_up_on_401_but_says_so(server: Server) -> None:
    server.replies["/hook"] = Reply(401)
    report = health({"url": f"{server.url}/hook"})
    assert report.status == "UP"
    assert report.detail.startswith("HTTP 401")


def test_health_down_on_5xx(server: Server) -> None:
    server.replies["/hook"] = Reply(502)
    report = health({"url": f"{server.url}/hook"})
    assert report.status == "DOWN"
    assert report.detail.startswith("HTTP 502")


def test_health_down_reasons(refused_url: str, server: Server) -> None:
    refused = health({"url": refused_url})
    assert (refused.status, refused.detail) == ("DOWN", "connection refused")
    dns = health({"url": "https://no-such-host.invalid/"})
    assert (dns.status, dns.detail) == ("DOWN", "DNS: cannot resolve no-such-host.invalid")
    server.replies["/slow"] = Reply(200, delay=2.0)
    started = time.monotonic()
    slow = health({"url": f"{server.url}/slow"}, timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert (slow.status, slow.detail) == ("DOWN", "timeout after 300ms")


def test_health_down_on_tls_failure(server: Server) -> None:
    report = health({"url": server.url.replace("http://", "https://")})
    assert report.status == "DOWN"
    assert report.detail.startswith("TLS: ")


def test_pure_source_is_up_without_network() -> None:
    report = health({})
    assert report == HealthReport("UP", 0, INBOUND_DETAIL)


def test_url_and_header_templates_are_evaluated_on_the_payload(server: Server) -> None:
    config = {"url": f"{server.url}/api/?ignored=1", "urlTemplate": '"orders/" & $.order',
              "headers": {"X-Static": "s"},
              "headerTemplates": {"X-Order": "$.order", "X-First-Item": "$.items[0]",
                                  "X-Absent": "$.nope"}}
    [delivery] = asyncio.run(write(HttpConnector(config, {}), message(7)))
    assert delivery.target == f"{server.url}/api/orders/7"
    [seen] = server.seen
    assert seen.path == "/api/orders/7"
    assert (seen.headers["X-Order"], seen.headers["X-First-Item"]) == ("7", "a")
    assert seen.headers["X-Static"] == "s" and "X-Absent" not in seen.headers


def test_template_failures_are_permanent(server: Server) -> None:
    base = {"url": f"{server.url}/api/"}
    escaped = write_error(base | {"urlTemplate": '"http://evil.example/steal"'},
                          {"bearerToken": TOKEN})
    assert (escaped.code, escaped.retryable) == ("URL_TEMPLATE", False)
    assert write_error(base | {"urlTemplate": "$.nope"}).code == "URL_TEMPLATE"
    failing = write_error(base | {"headerTemplates": {"X-N": '$number("x")'}})
    assert (failing.code, failing.retryable) == ("TEMPLATE_ERROR", False)
    assert failing.message.startswith("headerTemplates.X-N: D3030")
    broken = base | {"urlTemplate": '"a" &'}
    assert write_error(broken).code == "TEMPLATE_INVALID"
    assert health(broken).status == "DOWN"
    assert server.seen == []


def test_signed_requests_verify_with_the_shared_secret(server: Server) -> None:
    secret = "whsec-0123456789abcdef"
    asyncio.run(write(HttpConnector({"url": f"{server.url}/hook"}, {"signingSecret": secret}),
                      message(3)))
    [seen] = server.seen
    timestamp = seen.headers["X-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 5
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + seen.body, hashlib.sha256)
    assert seen.headers["X-Signature"] == "sha256=" + expected.hexdigest()


@dataclass
class TokenEndpoint:
    """Issues tok-1, tok-2, ...; the API at /api accepts only tokens still in ``valid``."""

    expires_in: int = 3600
    issued: list[Seen] = field(default_factory=list)
    valid: set[str] = field(default_factory=set)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def token(self, seen: Seen) -> Reply:
        self.issued.append(seen)
        token = f"tok-{next(self.counter)}"
        self.valid.add(token)
        return Reply(200, json.dumps({"access_token": token, "token_type": "Bearer",
                                      "expires_in": self.expires_in}))

    def api(self, seen: Seen) -> Reply:
        ok = seen.headers.get("Authorization", "").removeprefix("Bearer ") in self.valid
        return Reply(200 if ok else 401)


OAUTH_CLIENT = {"clientId": "ios-client", "clientSecret": "client-pw"}


def oauth_connector(server: Server, endpoint: TokenEndpoint, **oauth: Any) -> HttpConnector:
    server.answers["/token"], server.answers["/api"] = endpoint.token, endpoint.api
    config = {"url": f"{server.url}/api", "oauth2": {"tokenUrl": f"{server.url}/token", **oauth}}
    return HttpConnector(config, OAUTH_CLIENT)


def api_tokens(server: Server) -> list[str]:
    return [s.headers["Authorization"] for s in server.seen if s.path == "/api"]


def test_oauth_token_is_fetched_once_and_refreshed_once_on_401(server: Server) -> None:
    endpoint = TokenEndpoint()
    connector = oauth_connector(server, endpoint, scope="orders.write")

    async def scenario() -> list[str]:
        try:
            first = await asyncio.gather(*(connector.write(message(n)) for n in range(3)))
            endpoint.valid.clear()  # the provider revokes tok-1 before it expires
            return [d.detail for d in [*first, await connector.write(message(9))]]
        finally:
            await connector.close()

    assert asyncio.run(scenario()) == ["HTTP 200"] * 4
    assert api_tokens(server) == ["Bearer tok-1"] * 4 + ["Bearer tok-2"]
    [first, _] = endpoint.issued
    assert parse_qs(first.body.decode()) == {"grant_type": ["client_credentials"],
                                              "scope": ["orders.write"]}
    basic = base64.b64encode(b"ios-client:client-pw").decode()
    assert first.headers["Authorization"] == f"Basic {basic}"


def test_a_second_401_with_a_fresh_token_is_permanent(server: Server) -> None:
    endpoint = TokenEndpoint()
    connector = oauth_connector(server, endpoint)
    server.answers["/api"] = lambda seen: Reply(401, "token not accepted")
    with pytest.raises(ConnectorError) as caught:
        asyncio.run(write(connector, message()))
    assert (caught.value.code, caught.value.retryable) == ("HTTP_401", False)
    assert len(endpoint.issued) == 2 and len(api_tokens(server)) == 2


def test_oauth_token_is_renewed_shortly_before_it_expires(server: Server) -> None:
    endpoint = TokenEndpoint(expires_in=1)  # renewed 0.1 s early
    connector = oauth_connector(server, endpoint, clientAuthentication="body")

    async def scenario() -> None:
        try:
            await connector.write(message(1))
            await connector.write(message(2))
            await asyncio.sleep(1)
            await connector.write(message(3))
        finally:
            await connector.close()

    asyncio.run(scenario())
    assert api_tokens(server) == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    form = parse_qs(endpoint.issued[0].body.decode())
    assert (form["client_id"], form["client_secret"]) == (["ios-client"], ["client-pw"])
    assert "Authorization" not in endpoint.issued[0].headers


def test_token_endpoint_refusal_is_permanent_and_reported_by_health(server: Server) -> None:
    server.replies["/token"] = Reply(401, '{"error":"invalid_client"}')
    config = {"url": f"{server.url}/api", "oauth2": {"tokenUrl": f"{server.url}/token"}}
    error = write_error(config, OAUTH_CLIENT)
    assert (error.code, error.retryable) == ("OAUTH_HTTP_401", False)
    assert error.excerpt == '{"error":"invalid_client"}'
    report = health_with(config, OAUTH_CLIENT)
    assert report.status == "DOWN" and report.detail.startswith("token endpoint: HTTP 401")
    assert {s.path for s in server.seen} == {"/token"}
    half = write_error({"url": f"{server.url}/api"}, OAUTH_CLIENT)
    assert (half.code, half.retryable) == ("BAD_CONFIG", False)


def health_with(config: dict[str, Any], credentials: dict[str, Any]) -> HealthReport:
    async def run() -> HealthReport:
        connector = HttpConnector(config, credentials)
        try:
            return await connector.test(5.0)
        finally:
            await connector.close()
    return asyncio.run(run())
