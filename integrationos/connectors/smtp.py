"""SMTP: a target that sends one email per message.

Recipients, subject, bodies and attachments are JSONata templates evaluated on the
transformed payload, so one flow can mail every customer their own receipt. They are
evaluated on the event loop's thread; only the blocking ``smtplib`` conversation runs on a
worker thread. One SMTP session is kept open and reused, one message at a time (a session
is a sequence of commands), and opened again when the server has dropped it.

The ``Message-ID`` is derived from the idempotency key: a message re-sent after a retry or a
worker crash carries the same id, so receivers can drop the duplicate. SMTP's reply codes
say whether to retry: 4xx (and a lost connection) is "not now", 5xx is final.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import re
import smtplib
import socket
import ssl
import time
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr
from typing import Any, ClassVar, Literal

from integrationos.connectors.base import (
    Connector,
    ConnectorError,
    Delivery,
    HealthReport,
    OutboundMessage,
    Role,
)
from integrationos.connectors.templates import Templates

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT_MS = 10_000
EXCERPT_CHARS = 300
MAX_ATTACHMENTS = 20
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")

Status = Literal["UP", "DOWN"]


def _expression(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "description": description}


class SmtpConnector(Connector):
    type_name: ClassVar[str] = "SMTP"
    display_name: ClassVar[str] = "Email (SMTP)"
    roles: ClassVar[frozenset[Role]] = frozenset({"target"})
    config_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["host", "from", "to", "subject"],
        "anyOf": [{"required": ["text"]}, {"required": ["html"]}],
        "properties": {
            "host": {"type": "string", "minLength": 1},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535,
                     "description": "Default: 587 for starttls, 465 for tls, 25 for none."},
            "security": {"type": "string", "enum": ["starttls", "tls", "none"],
                         "default": "starttls",
                         "description": "starttls: upgrade a plain connection (submission); "
                         "tls: TLS from the first byte (smtps); none: no encryption."},
            "caCertificate": {"type": "string", "minLength": 1,
                              "description": "PEM certificate(s) to trust instead of the "
                              "system's CAs (a private CA or a self-signed server)."},
            "from": {"type": "string", "minLength": 3,
                     "description": "Sender, e.g. 'Shop <noreply@shop.example>' (not a "
                     "template)."},
            "to": _expression("JSONata: an address or an array of addresses."),
            "cc": _expression("JSONata: an address or an array of addresses."),
            "subject": _expression("JSONata, e.g. '\"Order \" & $.id'."),
            "text": _expression("JSONata: the plain-text body."),
            "html": _expression("JSONata: the HTML body."),
            "attachments": {
                "type": "array",
                "maxItems": MAX_ATTACHMENTS,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["filenameExpression", "contentExpression"],
                    "properties": {
                        "filenameExpression": _expression("JSONata: the file name."),
                        "contentExpression": _expression(
                            "JSONata: the content; undefined leaves the attachment out."),
                        "contentEncoding": {"type": "string", "enum": ["base64", "text"],
                                            "default": "base64"},
                        "contentType": {"type": "string",
                                        "pattern": "^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$",
                                        "default": "application/octet-stream"},
                    },
                },
            },
            "timeoutMs": {"type": "integer", "minimum": 100, "maximum": 60_000,
                          "default": DEFAULT_TIMEOUT_MS},
        },
    }
    credentials_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "username": {"type": "string", "minLength": 1},
            "password": {"type": "string", "writeOnly": True},
        },
        "dependentRequired": {"username": ["password"], "password": ["username"]},
    }

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        super().__init__(config, credentials)
        expressions = {name: config[name] for name in ("to", "cc", "subject", "text", "html")
                       if name in config}
        for n, attachment in enumerate(config.get("attachments", [])):
            expressions[f"attachments[{n}].filename"] = attachment["filenameExpression"]
            expressions[f"attachments[{n}].content"] = attachment["contentExpression"]
        self._templates = Templates(expressions)
        self._session: smtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    @property
    def security(self) -> str:
        return self.config.get("security", "starttls")

    @property
    def address(self) -> str:
        port = self.config.get("port", DEFAULT_PORTS[self.security])
        return f"{self.config['host']}:{port}"

    def _timeout(self) -> float:
        return int(self.config.get("timeoutMs", DEFAULT_TIMEOUT_MS)) / 1000

    async def write(self, message: OutboundMessage) -> Delivery:
        self._templates.check()
        email, recipients = self._compose(message)
        async with self._lock:
            try:
                refused = await asyncio.to_thread(self._send, email, recipients)
            except (smtplib.SMTPException, OSError) as exc:
                raise _classify(exc, self.config["host"]) from None
        detail = f"accepted for {len(recipients) - len(refused)} of {len(recipients)} recipients"
        if refused:  # the others have the email: retrying would send it to them again
            detail += "; refused: " + ", ".join(f"{a} ({c})" for a, (c, _) in refused.items())
        return Delivery(target=f"smtp://{self.address}", detail=detail)

    def _compose(self, message: OutboundMessage) -> tuple[EmailMessage, list[str]]:
        """The email and its envelope recipients, from the templates; errors are permanent."""
        payload = message.payload
        to, cc = self._addresses("to", payload), self._addresses("cc", payload)
        if not to:
            raise ConnectorError("NO_RECIPIENTS", "'to' gave no address", retryable=False)
        text, html = self._templates.text("text", payload), self._templates.text("html", payload)
        email = EmailMessage()
        try:
            email["From"] = self.config["from"]
            email["To"] = to
            if cc:
                email["Cc"] = cc
            email["Subject"] = self._templates.text("subject", payload) or ""
            email["Date"] = formatdate(usegmt=True)
            email["Message-ID"] = message_id_header(message.idempotency_key,
                                                    self.config["from"])
            email["X-IntegrationOS-Message-Id"] = message.message_id
            html_only = text is None and html is not None
            email.set_content(html if html_only else text or "",
                              subtype="html" if html_only else "plain")
            if text is not None and html is not None:
                email.add_alternative(html, subtype="html")
            for filename, content, content_type in self._attachments(payload):
                maintype, subtype = content_type.split("/")
                email.add_attachment(content, maintype=maintype, subtype=subtype,
                                     filename=filename)
        except (ValueError, TypeError, HeaderParseError) as exc:
            raise ConnectorError("INVALID_EMAIL", f"cannot build the email: {exc}",
                                 retryable=False) from None
        return email, [a.addr_spec for a in (*to, *cc)]

    def _addresses(self, name: str, payload: Any) -> list[Address]:
        value = self._templates.value(name, payload)
        items = value if isinstance(value, list) else [] if value is None else [value]
        if not all(isinstance(item, str) for item in items):
            raise ConnectorError("TEMPLATE_TYPE", f"{name} must give an address or an array "
                                 "of addresses", retryable=False)
        addresses = []
        for display, spec in getaddresses(items):
            if not _ADDRESS.fullmatch(spec):
                raise ConnectorError("INVALID_ADDRESS", f"{name}: {spec!r} is not an email "
                                     "address", retryable=False)
            addresses.append(Address(display_name=display, addr_spec=spec))
        return addresses

    def _attachments(self, payload: Any) -> list[tuple[str, bytes, str]]:
        found = []
        for n, spec in enumerate(self.config.get("attachments", [])):
            content = self._templates.text(f"attachments[{n}].content", payload)
            if content is None:
                continue
            filename = self._templates.text(f"attachments[{n}].filename", payload)
            if not filename:
                raise ConnectorError("INVALID_ATTACHMENT", f"attachments[{n}]: the filename "
                                     "is empty or undefined", retryable=False)
            if spec.get("contentEncoding", "base64") == "text":
                data = content.encode()
            else:
                try:
                    data = base64.b64decode(content, validate=True)
                except (binascii.Error, ValueError):
                    raise ConnectorError("INVALID_ATTACHMENT", f"attachments[{n}]: the "
                                         "content is not base64", retryable=False) from None
            found.append((filename, data, spec.get("contentType", "application/octet-stream")))
        return found

    def _send(self, email: EmailMessage, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        """Blocking: send on the open session, or a new one if the server has dropped it.

        Returns the refused recipients (all refused raises ``SMTPRecipientsRefused``)."""
        if self._session is not None:
            try:
                return self._session.send_message(email, to_addrs=recipients)
            except smtplib.SMTPServerDisconnected:
                self._discard()
        self._session = self._open(self._timeout())
        try:
            return self._session.send_message(email, to_addrs=recipients)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException):
            raise  # an answer to this email: the session itself is still good
        except (smtplib.SMTPException, OSError):
            self._discard()
            raise

    def _open(self, timeout: float) -> smtplib.SMTP:
        """Blocking: connect, EHLO, STARTTLS (and EHLO again), AUTH."""
        host, port = self.address.rsplit(":", 1)
        tls = (None if self.security == "none"
               else ssl.create_default_context(cadata=self.config.get("caCertificate")))
        if self.security == "tls":
            session: smtplib.SMTP = smtplib.SMTP_SSL(host, int(port), timeout=timeout,
                                                     context=tls)
        else:
            session = smtplib.SMTP(host, int(port), timeout=timeout)
        try:
            session.ehlo()
            if self.security == "starttls":
                session.starttls(context=tls)
                session.ehlo()
            if "username" in self._credentials:
                session.login(self._credentials["username"], self._credentials["password"])
        except BaseException:
            session.close()
            raise
        return session

    def _discard(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    async def test(self, timeout: float = 10.0) -> HealthReport:
        started = time.monotonic()
        if self._templates.problem is not None:
            return _report("DOWN", started, f"template {self._templates.problem}")
        try:
            detail = await asyncio.wait_for(asyncio.to_thread(self._probe, timeout),
                                            timeout + 1)
        except TimeoutError:
            return _report("DOWN", started, f"timeout after {int(timeout * 1000)}ms")
        except (smtplib.SMTPException, OSError) as exc:
            return _report("DOWN", started, _classify(exc, self.config["host"]).message)
        except Exception as exc:  # a health check reports, it never raises
            return _report("DOWN", started, f"unexpected {type(exc).__name__}: {exc}")
        return _report("UP", started, detail)

    def _probe(self, timeout: float) -> str:
        """Blocking: open a session as ``write`` would, then say goodbye."""
        session = self._open(timeout)
        with contextlib.suppress(smtplib.SMTPException, OSError):
            session.quit()
        steps = {"starttls": "STARTTLS", "tls": "TLS", "none": "no TLS"}[self.security]
        if "username" in self._credentials:
            steps += f", authenticated as {self._credentials['username']}"
        return f"SMTP {self.address}: {steps}"

    async def close(self) -> None:
        async with self._lock:
            session, self._session = self._session, None
            if session is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    await asyncio.to_thread(session.quit)


def message_id_header(idempotency_key: str, sender: str) -> str:
    """``<hash-of-the-key@sender-domain>``: the same for every send of one message."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "integrationos.invalid"
    return f"<{digest}@{domain}>"


def _report(status: Status, started: float, detail: str) -> HealthReport:
    return HealthReport(status, int((time.monotonic() - started) * 1000), detail)


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text[:EXCERPT_CHARS]


def _classify(exc: BaseException, host: str) -> ConnectorError:
    """4xx and a lost or refused connection may pass later; 5xx and a missing extension
    will not."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refusals = {addr: (code, _reply(text)) for addr, (code, text) in exc.recipients.items()}
        worst = max(code for code, _ in refusals.values())
        listed = "; ".join(f"{addr}: {code} {text}" for addr, (code, text) in refusals.items())
        return ConnectorError(f"SMTP_{worst}", f"every recipient refused: {listed}"[:500],
                              retryable=worst < 500, excerpt=listed[:EXCERPT_CHARS])
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = _reply(exc.smtp_error)
        what = ("authentication failed" if isinstance(exc, smtplib.SMTPAuthenticationError)
                else "server answered")
        return ConnectorError(f"SMTP_{exc.smtp_code}", f"{what}: {exc.smtp_code} {reply}",
                              retryable=exc.smtp_code < 500, excerpt=reply)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return ConnectorError("SMTP_DISCONNECTED", f"connection lost: {exc}", retryable=True)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return ConnectorError("SMTP_UNSUPPORTED", f"server does not support it: {exc}",
                              retryable=False)
    if isinstance(exc, smtplib.SMTPException):
        return ConnectorError("SMTP_ERROR", str(exc), retryable=False)
    if isinstance(exc, TimeoutError):
        return ConnectorError("TIMEOUT", "timeout", retryable=True)
    if isinstance(exc, socket.gaierror):
        return ConnectorError("DNS", f"DNS: cannot resolve {host}", retryable=True)
    if isinstance(exc, ConnectionRefusedError):
        return ConnectorError("CONNECTION_REFUSED", "connection refused", retryable=True)
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "verify_message", None) or exc.reason or exc
        return ConnectorError("TLS", f"TLS: {reason}", retryable=True)
    return ConnectorError("TRANSPORT", f"transport error: {exc}", retryable=True)
