"""The SFTP connection test, against loopback servers (silent TCP and a real SSH server).

The SSH server is paramiko's own server implementation serving a temporary directory, so
host key checks, authentication and ``stat`` run over the real protocol.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from integrationos.connectors.base import HealthReport
from integrationos.connectors.sftp import SftpConnector

USER, PASSWORD = "ios", "sftp-pass-secret"


def ed25519_pem() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def load(pem: str) -> paramiko.PKey:
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem))


def public_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


HOST_KEY = load(ed25519_pem())
CLIENT_PEM = ed25519_pem()
CLIENT_KEY = load(CLIENT_PEM)


class _Auth(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        ok = (username, password) == (USER, PASSWORD)
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = username == USER and key == CLIENT_KEY
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Files(paramiko.SFTPServerInterface):
    """Serves ``root`` as ``/``; only what a ``stat`` needs."""

    root: Path

    def stat(self, path: str) -> Any:
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(self.root / path.lstrip("/")))
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    lstat = stat


class SshServer:
    def __init__(self, root: Path) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.transports: list[paramiko.Transport] = []
        _Files.root = root
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(HOST_KEY)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _Files)
            self.transports.append(transport)
            try:
                transport.start_server(server=_Auth())
            except (paramiko.SSHException, EOFError):  # the client gave up: serve the next
                transport.close()

    def close(self) -> None:
        self.listener.close()
        for transport in self.transports:
            transport.close()


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshServer]:
    (tmp_path / "inbox").mkdir()
    server = SshServer(tmp_path)
    yield server
    server.close()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health(config: dict[str, Any], credentials: dict[str, Any] | None = None,
           timeout: float = 5.0) -> HealthReport:
    connector = SftpConnector(config, credentials or {"username": USER, "password": PASSWORD})
    return asyncio.run(connector.test(timeout))


def pinned(server: SshServer, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": server.port, "hostKey": public_line(HOST_KEY), **extra}


def test_dns_failure() -> None:
    report = health({"host": "sftp.empresa.invalid"})
    assert report.status == "DOWN"
    assert report.detail == "DNS: cannot resolve sftp.empresa.invalid"


def test_refused_port(free_port: int) -> None:
    report = health({"host": "127.0.0.1", "port": free_port})
    assert report.status == "DOWN"
    assert "connection refused" in report.detail


def test_server_that_speaks_no_ssh_is_down_within_the_timeout() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    try:
        started = time.monotonic()
        report = health({"host": "127.0.0.1", "port": listener.getsockname()[1]}, timeout=1.5)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert report.status == "DOWN"
    assert elapsed < 2.5
    assert report.detail == "timeout during SSH handshake"


def test_up_with_pinned_key_and_password(ssh_server: SshServer) -> None:
    report = health(pinned(ssh_server, remotePath="/inbox"))
    assert report.status == "UP", report.detail
    assert report.detail == (f"sftp://127.0.0.1:{ssh_server.port}/inbox: directory, "
                             "reachable and authenticated")


def test_up_with_private_key(ssh_server: SshServer) -> None:
    report = health(pinned(ssh_server), {"username": USER, "privateKey": CLIENT_PEM})
    assert report.status == "UP", report.detail


def test_host_key_mismatch(ssh_server: SshServer) -> None:
    other = public_line(load(ed25519_pem()))
    report = health(pinned(ssh_server, hostKey=other))
    assert report.status == "DOWN"
    assert report.detail.startswith("host key mismatch")


def test_pinned_key_of_another_algorithm_is_a_mismatch(ssh_server: SshServer) -> None:
    rsa = public_line(paramiko.RSAKey.generate(2048))
    report = health(pinned(ssh_server, hostKey=rsa))
    assert report.status == "DOWN"
    assert report.detail == "host key mismatch: server has no ssh-rsa key"


def test_unknown_host_key_is_refused_unless_allowed(ssh_server: SshServer) -> None:
    config = {"host": "127.0.0.1", "port": ssh_server.port}
    refused = health(config)
    assert refused.status == "DOWN"
    assert refused.detail.startswith(f"unknown host key {public_line(HOST_KEY)}")
    allowed = health({**config, "allowUnknownHostKey": True})
    assert allowed.status == "UP", allowed.detail


def test_wrong_password(ssh_server: SshServer) -> None:
    report = health(pinned(ssh_server), {"username": USER, "password": "wrong"})
    assert (report.status, report.detail) == ("DOWN", "authentication failed")


def test_unknown_private_key(ssh_server: SshServer) -> None:
    report = health(pinned(ssh_server), {"username": USER, "privateKey": ed25519_pem()})
    assert (report.status, report.detail) == ("DOWN", "authentication failed")


def test_unparseable_private_key_is_not_echoed(ssh_server: SshServer) -> None:
    junk = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----"
    report = health(pinned(ssh_server), {"username": USER, "privateKey": junk})
    assert report.status == "DOWN"
    assert report.detail.startswith("privateKey:")
    assert "not-a-key" not in report.detail


def test_missing_remote_path(ssh_server: SshServer) -> None:
    report = health(pinned(ssh_server, remotePath="/x"))
    assert (report.status, report.detail) == ("DOWN", "remotePath /x not found")
