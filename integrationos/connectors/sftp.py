"""SFTP servers: for now only the config spec and a real connection test.

Polling a remote directory (source) and writing files (target) come in a later issue, so
``roles`` is empty: the API can store and test an SFTP connection, but an integration
cannot use it yet.

The test walks the same steps a transfer will (DNS, TCP, SSH handshake, host key, auth,
``stat`` of the remote path), each in a worker thread because paramiko blocks, and the
whole walk bounded by one deadline. The first failing step names the DOWN reason.
"""

from __future__ import annotations

import asyncio
import errno
import io
import socket
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

import paramiko

from integrationos.connectors.base import Connector, HealthReport, Role

DEFAULT_PORT = 22
DEFAULT_REMOTE_PATH = "/"
_KEY_CLASSES: tuple[type[paramiko.PKey], ...] = (
    paramiko.Ed25519Key,
    paramiko.ECDSAKey,
    paramiko.RSAKey,
)
# A known_hosts "ssh-rsa" key is negotiated under its SHA-2 signature names.
_SIGNATURES = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}
T = TypeVar("T")


class _Down(Exception):
    """A probe step failed; the message is the DOWN reason shown to the operator."""


class SftpConnector(Connector):
    type_name: ClassVar[str] = "SFTP"
    display_name: ClassVar[str] = "SFTP"
    roles: ClassVar[frozenset[Role]] = frozenset()
    config_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["host"],
        "properties": {
            "host": {"type": "string", "minLength": 1},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": DEFAULT_PORT},
            "remotePath": {"type": "string", "pattern": "^/", "default": DEFAULT_REMOTE_PATH},
            "hostKey": {
                "type": "string",
                "pattern": "^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+",
                "description": "Pinned server key as in known_hosts, e.g. 'ssh-ed25519 AAAA...'.",
            },
            "allowUnknownHostKey": {"type": "boolean", "default": False},
        },
    }
    credentials_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["username"],
        "properties": {
            "username": {"type": "string", "minLength": 1},
            "password": {"type": "string", "writeOnly": True},
            "privateKey": {"type": "string", "writeOnly": True,
                           "description": "PEM or OpenSSH private key (unencrypted)."},
        },
        "oneOf": [{"required": ["password"]}, {"required": ["privateKey"]}],
    }

    @property
    def host(self) -> str:
        return self.config["host"]

    @property
    def port(self) -> int:
        return int(self.config.get("port", DEFAULT_PORT))

    @property
    def remote_path(self) -> str:
        return self.config.get("remotePath", DEFAULT_REMOTE_PATH)

    async def test(self, timeout: float = 10.0) -> HealthReport:
        started = time.monotonic()
        probe = _Probe(self, self._credentials, deadline=started + timeout)
        status: Literal["UP", "DOWN"] = "UP"
        try:
            detail = await probe.run()
        except _Down as exc:
            status, detail = "DOWN", str(exc)
        except Exception as exc:  # a health check reports, it never raises
            status, detail = "DOWN", f"unexpected {type(exc).__name__}: {exc}"
        finally:
            await asyncio.to_thread(probe.close)
        return HealthReport(status, int((time.monotonic() - started) * 1000), detail)


class _Probe:
    """One connection attempt, step by step; ``close`` unblocks any step still running."""

    def __init__(
        self, connector: SftpConnector, credentials: dict[str, Any], deadline: float
    ) -> None:
        self.c = connector
        self.credentials = credentials
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.transport: paramiko.Transport | None = None

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    async def step(self, name: str, work: Callable[[], T]) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(work), self.remaining())
        except TimeoutError:
            raise _Down(f"timeout during {name}") from None

    async def run(self) -> str:
        address = await self.step("DNS lookup", self.resolve)
        await self.step("TCP connect", lambda: self.connect(address))
        key = await self.step("SSH handshake", self.handshake)
        self.check_host_key(key)
        await self.step("authentication", self.authenticate)
        return await self.step("stat of remotePath", self.stat)

    def resolve(self) -> tuple[Any, ...]:
        try:
            infos = socket.getaddrinfo(self.c.host, self.c.port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise _Down(f"DNS: cannot resolve {self.c.host}") from None
        family, _, _, _, address = infos[0]
        return family, address

    def connect(self, resolved: tuple[Any, ...]) -> None:
        family, address = resolved
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(self.remaining())
        try:
            self.sock.connect(address)
        except ConnectionRefusedError:
            raise _Down(f"connection refused by {self.c.host}:{self.c.port}") from None
        except TimeoutError:  # an OSError too, but step() reports it as a timeout
            raise
        except OSError as exc:
            raise _Down(f"cannot connect to {self.c.host}:{self.c.port}: {exc.strerror}") from None

    def handshake(self) -> paramiko.PKey:
        assert self.sock is not None
        self.transport = paramiko.Transport(self.sock)
        # paramiko's own limits sit just past our deadline, so the reason is always ours.
        self.transport.banner_timeout = self.transport.handshake_timeout = self.remaining() + 1
        if pinned := self.c.config.get("hostKey"):
            # Negotiate the pinned key's algorithm, or the server may offer another one.
            key_type = pinned.split()[0]
            self.transport.get_security_options().key_types = _SIGNATURES.get(
                key_type, (key_type,)
            )
        try:
            self.transport.start_client(timeout=self.remaining() + 1)
        except paramiko.IncompatiblePeer as exc:
            if pinned:
                raise _Down(f"host key mismatch: server has no {pinned.split()[0]} key") from None
            raise _Down(f"SSH handshake failed: {exc}") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise _Down(f"SSH handshake failed: {exc or type(exc).__name__}") from None
        return self.transport.get_remote_server_key()

    def check_host_key(self, key: paramiko.PKey) -> None:
        presented = f"{key.get_name()} {key.get_base64()}"
        pinned = self.c.config.get("hostKey")
        if pinned:
            if " ".join(pinned.split()[:2]) != presented:
                raise _Down(f"host key mismatch: server presents {key.get_name()} "
                            f"{key.fingerprint}")
        elif not self.c.config.get("allowUnknownHostKey", False):
            raise _Down(f"unknown host key {presented}: pin it in hostKey "
                        "or set allowUnknownHostKey")

    def authenticate(self) -> None:
        assert self.transport is not None
        credentials = self.credentials
        self.transport.auth_timeout = self.remaining() + 1
        try:
            if "privateKey" in credentials:
                self.transport.auth_publickey(credentials["username"],
                                              _load_key(credentials["privateKey"]))
            else:
                self.transport.auth_password(credentials["username"], credentials["password"])
        except paramiko.BadAuthenticationType as exc:
            raise _Down(f"authentication failed: server allows only "
                        f"{', '.join(exc.allowed_types)}") from None
        except paramiko.AuthenticationException:
            raise _Down("authentication failed") from None
        except paramiko.SSHException as exc:
            raise _Down(f"SSH error during authentication: {exc}") from None

    def stat(self) -> str:
        assert self.transport is not None
        path = self.c.remote_path
        try:
            sftp = paramiko.SFTPClient.from_transport(self.transport)
            assert sftp is not None
            sftp.get_channel().settimeout(self.remaining() + 1)
            attributes = sftp.stat(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise _Down(f"remotePath {path} not found") from None
            if exc.errno == errno.EACCES:
                raise _Down(f"permission denied on remotePath {path}") from None
            raise _Down(f"SFTP error on remotePath {path}: {exc}") from None
        except paramiko.SSHException as exc:
            raise _Down(f"SFTP subsystem unavailable: {exc}") from None
        kind = "directory" if _is_dir(attributes.st_mode) else "file"
        return f"sftp://{self.c.host}:{self.c.port}{path}: {kind}, reachable and authenticated"

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.sock is not None:
            self.sock.close()


def _load_key(text: str) -> paramiko.PKey:
    """Parse a private key of any supported type; errors never quote the key."""
    for key_class in _KEY_CLASSES:
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise _Down("privateKey: not an unencrypted Ed25519, ECDSA or RSA private key")


def _is_dir(mode: int | None) -> bool:
    return mode is not None and (mode & 0o170000) == 0o040000
