"""The HTTP connector against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers), body,
                                     self.client_address[1]))
        path = self.path.split("?")[0]
        reply = self.server.replies.get(f"{self.command} {path}") or \
            self.server.replies.get(path, Reply())
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
    assert error.excerpt == body[:300]


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
