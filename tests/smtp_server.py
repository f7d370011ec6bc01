"""A real SMTP server on loopback (aiosmtpd) that records what it receives.

Recipients whose address starts with ``bad`` are refused with 550 and ``busy`` with 451, so
tests can reach both kinds of refusal; TLS uses a self-signed certificate made here.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USERNAME, PASSWORD = "mailer", "s3cr3t-pw"


def self_signed_certificate(directory: Path) -> tuple[str, Path, Path]:
    """A certificate for 127.0.0.1: its PEM (for clients to trust) and the files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_text(pem)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return pem, cert_file, key_file


@dataclass(frozen=True)
class Received:
    mail_from: str
    recipients: list[str]
    message: EmailMessage
    authenticated: bool
    peer: Any  # the client's (host, port): one per SMTP session


class Mailbox:
    """The aiosmtpd handler: accepts mail, refuses ``bad*`` (550) and ``busy*`` (451)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("bad"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("busy"):
            return "451 4.2.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed,
                                          bool(session.authenticated), session.peer))
        return "250 2.0.0 queued"

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USERNAME.encode()
          and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535


class SmtpServer:
    """``security`` as the connector names it: starttls (with AUTH required), tls, none."""

    def __init__(self, security: str, cert_file: Path, key_file: Path,
                 port: int | None = None) -> None:
        self.mailbox = Mailbox()
        self.port = port or _free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        options: dict[str, Any] = {}
        if security == "starttls":
            options = {"tls_context": context, "require_starttls": True,
                       "authenticator": _authenticate, "auth_require_tls": True}
        elif security == "tls":
            options = {"ssl_context": context}
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port,
                                      **options)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
