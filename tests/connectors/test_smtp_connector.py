"""The SMTP connector against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integrationos.connectors.base import ConnectorError, Delivery, HealthReport, OutboundMessage
from integrationos.connectors.smtp import SmtpConnector
from tests.smtp_server import (
    PASSWORD,
    USERNAME,
    Received,
    SmtpServer,
    self_signed_certificate,
)

PDF = b"%PDF-1.4 fake invoice \x00\xff"
ORDER = {
    "id": "A-1", "customer": {"email": "ana@example.com", "name": "Ana"},
    "cc": ["Ops Team <ops@example.com>", "audit@example.com"], "total": 42.5,
    "invoice": base64.b64encode(PDF).decode(), "items": ["sku-1", "sku-2"],
}
TEMPLATES = {
    "from": "Shop <noreply@shop.example>",
    "to": "$.customer.email",
    "cc": "$.cc",
    "subject": '"Order " & $.id',
    "text": '"Hello " & $.customer.name',
    "html": '"<p>Total: " & $string($.total) & "</p>"',
}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def serve(security: str, certificate: tuple[str, Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(security, certificate[1], certificate[2])
    yield server
    server.stop()


@pytest.fixture
def starttls(certificate: tuple[str, Path, Path]) -> Iterator[SmtpServer]:
    yield from serve("starttls", certificate)


@pytest.fixture
def implicit_tls(certificate: tuple[str, Path, Path]) -> Iterator[SmtpServer]:
    yield from serve("tls", certificate)


def config(server: SmtpServer | None, certificate: tuple[str, Path, Path],
           **overrides: Any) -> dict[str, Any]:
    port = server.port if server else _refused_port()
    return {"host": "127.0.0.1", "port": port, "security": "starttls",
            "caCertificate": certificate[0], **TEMPLATES, **overrides}


AUTH = {"username": USERNAME, "password": PASSWORD}


def message(key: str = "idem-1", payload: Any = None) -> OutboundMessage:
    return OutboundMessage(message_id=f"msg-{key}", idempotency_key=key, tenant="acme",
                           integration_id="int-1", key=None,
                           payload=ORDER if payload is None else payload)


def send(connector: SmtpConnector, *messages: OutboundMessage) -> list[Delivery]:
    async def run() -> list[Delivery]:
        try:
            return [await connector.write(m) for m in messages]
        finally:
            await connector.close()
    return asyncio.run(run())


def send_error(connector: SmtpConnector, msg: OutboundMessage | None = None) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        send(connector, msg or message())
    return caught.value


def health(connector: SmtpConnector, timeout: float = 5.0) -> HealthReport:
    return asyncio.run(connector.test(timeout))


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_templated_email_with_attachments_over_starttls_and_auth(starttls, certificate):
    attachments = [
        {"filenameExpression": '"invoice-" & $.id & ".pdf"', "contentExpression": "$.invoice",
         "contentType": "application/pdf"},
        {"filenameExpression": '"items.csv"', "contentExpression": '$join($.items, "\n")',
         "contentEncoding": "text", "contentType": "text/csv"},
        {"filenameExpression": '"never.txt"', "contentExpression": "$.missing"},
    ]
    connector = SmtpConnector(config(starttls, certificate, attachments=attachments), AUTH)
    deliveries = send(connector, message("idem-1"), message("idem-1"), message("idem-2"))

    assert [d.detail for d in deliveries] == ["accepted for 3 of 3 recipients"] * 3
    assert deliveries[0].target == f"smtp://127.0.0.1:{starttls.port}"
    first, again, other = starttls.mailbox.messages()
    assert first.authenticated
    assert len({r.peer for r in (first, again, other)}) == 1  # one session, reused
    assert first.mail_from == "noreply@shop.example"
    assert first.recipients == ["ana@example.com", "ops@example.com", "audit@example.com"]
    email = first.message
    assert email["From"] == "Shop <noreply@shop.example>"
    assert email["To"] == "ana@example.com"
    assert email["Cc"] == "Ops Team <ops@example.com>, audit@example.com"
    assert email["Subject"] == "Order A-1"
    assert email["X-IntegrationOS-Message-Id"] == "msg-idem-1"
    assert email.get_body(("plain",)).get_content().strip() == "Hello Ana"
    assert email.get_body(("html",)).get_content().strip() == "<p>Total: 42.5</p>"
    files = {part.get_filename(): (part.get_content_type(), part.get_payload(decode=True))
             for part in email.iter_attachments()}
    assert files == {"invoice-A-1.pdf": ("application/pdf", PDF),
                     "items.csv": ("text/csv", b"sku-1\nsku-2")}
    # a re-send of one message keeps its Message-ID, so the receiver can drop it
    assert again.message["Message-ID"] == email["Message-ID"]
    assert other.message["Message-ID"] != email["Message-ID"]
    assert email["Message-ID"].endswith("@shop.example>")


def test_implicit_tls_without_auth_and_html_only(implicit_tls, certificate):
    settings = config(implicit_tls, certificate, security="tls", cc="$.none",
                      to='["a@example.com", "b@example.com"]')
    del settings["text"]
    [delivery] = send(SmtpConnector(settings, {}), message())
    assert delivery.detail == "accepted for 2 of 2 recipients"
    [received] = implicit_tls.mailbox.messages()
    assert received.recipients == ["a@example.com", "b@example.com"]
    assert not received.message.is_multipart()
    assert received.message.get_content_type() == "text/html"


def test_a_session_the_server_dropped_is_opened_again(certificate):
    first = SmtpServer("starttls", certificate[1], certificate[2])
    connector = SmtpConnector(config(first, certificate), AUTH)
    send_one = connector.write(message("idem-1"))

    async def scenario() -> list[Received]:
        await send_one
        first.stop()  # closes the connector's open session
        second = SmtpServer("starttls", certificate[1], certificate[2], port=first.port)
        try:
            await connector.write(message("idem-2"))
            return second.mailbox.messages()
        finally:
            await connector.close()
            second.stop()

    [received] = asyncio.run(scenario())
    assert received.message["X-IntegrationOS-Message-Id"] == "msg-idem-2"


def test_smtp_refusals_are_classified_by_reply_code(starttls, certificate):
    def refused(to: str, credentials: dict[str, str] = AUTH) -> ConnectorError:
        connector = SmtpConnector(config(starttls, certificate, to=to, cc="$.none"), credentials)
        return send_error(connector)

    bad = refused('"bad@example.com"')
    assert (bad.code, bad.retryable) == ("SMTP_550", False)
    assert "mailbox unavailable" in bad.excerpt
    busy = refused('"busy@example.com"')
    assert (busy.code, busy.retryable) == ("SMTP_451", True)
    auth = refused('"ana@example.com"', {"username": USERNAME, "password": "wrong"})
    assert (auth.code, auth.retryable) == ("SMTP_535", False)
    assert auth.message.startswith("authentication failed: 535")
    assert starttls.mailbox.messages() == []

    partly = SmtpConnector(config(starttls, certificate, to='["ok@example.com", '
                                  '"bad@example.com"]', cc="$.none"), AUTH)
    [delivery] = send(partly, message())
    assert delivery.detail == ("accepted for 1 of 2 recipients; "
                               "refused: bad@example.com (550)")
    assert [r.recipients for r in starttls.mailbox.messages()] == [["ok@example.com"]]


def test_template_failures_are_permanent_and_need_no_server(certificate):
    def failure(payload: Any = None, **overrides: Any) -> ConnectorError:
        error = send_error(SmtpConnector(config(None, certificate, **overrides), {}),
                           message(payload=payload))
        assert not error.retryable
        return error

    assert failure(ORDER | {"id": "x"}, subject="$number($.id)").code == "TEMPLATE_ERROR"
    assert failure({}, to="$.nobody").code == "NO_RECIPIENTS"
    assert failure({"to": "not-an-address"}, to="$.to").code == "INVALID_ADDRESS"
    assert failure({"to": {"a": 1}}, to="$.to").code == "TEMPLATE_TYPE"
    assert failure(subject='"a\nBcc: x@evil.example"').code == "INVALID_EMAIL"
    attachment = [{"filenameExpression": '"a.bin"', "contentExpression": '"***"'}]
    assert failure(attachments=attachment).code == "INVALID_ATTACHMENT"
    broken = failure(text='"unterminated" &')
    assert broken.code == "TEMPLATE_INVALID"
    assert broken.message.startswith("text: ")


def test_connection_failures_are_retryable(starttls, certificate):
    refused = send_error(SmtpConnector(config(None, certificate), AUTH))
    assert (refused.code, refused.retryable) == ("CONNECTION_REFUSED", True)
    untrusted = config(starttls, certificate)
    del untrusted["caCertificate"]
    tls = send_error(SmtpConnector(untrusted, AUTH))
    assert (tls.code, tls.retryable) == ("TLS", True)


def test_health_connects_upgrades_and_authenticates(starttls, certificate):
    up = health(SmtpConnector(config(starttls, certificate), AUTH))
    assert (up.status, up.detail) == (
        "UP", f"SMTP 127.0.0.1:{starttls.port}: STARTTLS, authenticated as {USERNAME}")
    wrong = health(SmtpConnector(config(starttls, certificate),
                                 {"username": USERNAME, "password": "nope"}))
    assert wrong.status == "DOWN" and wrong.detail.startswith("authentication failed: 535")
    refused = health(SmtpConnector(config(None, certificate), AUTH))
    assert (refused.status, refused.detail) == ("DOWN", "connection refused")
    broken = health(SmtpConnector(config(starttls, certificate, to="$.a("), AUTH))
    assert broken.status == "DOWN" and broken.detail.startswith("template to: ")
