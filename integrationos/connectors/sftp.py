"""SFTP servers: poll a remote directory for files (source), write one file per message
(target), and a real connection test.

Source: the files in ``remotePath`` that match ``filePattern`` are read oldest first and
parsed (CSV, JSON, JSON lines, XML) into one message per row/record or one per file. The
semantics are at-least-once with stable ids: a record's position is
``<path>/<name>@<mtime>:<row>``, so a file read again after a crash gives its rows the same
message ids (and idempotency keys); the checkpoint (file, mtime, rows made durable) lets a
restart resume inside the file; and a file is archived or deleted only in ``commit``, once
all its messages are in Kafka and the checkpoint stored. A crash can repeat rows, never
skip one. A malformed row (or file) becomes a message of its own, typed
``application/x-malformed`` with the reason in ``ios-source-error``: the pipeline
dead-letters it at once with that reason, and the other rows go on.

Target: each message becomes one file in ``targetPath``, written as ``<name>.part`` and
renamed into place (OpenSSH's ``posix-rename``, which replaces), so readers never see half
a file and a re-delivery rewrites the same name.

One SSH connection per connector instance, opened on first use and again after a transport
failure; paramiko blocks, so every call runs in a worker thread, one call at a time. The
test walks the same steps (DNS, TCP, SSH handshake, host key, auth, ``stat`` of the remote
path) within one deadline; the first failing step names the DOWN reason.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import errno
import fnmatch
import io
import json
import logging
import posixpath
import re
import socket
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar
from xml.etree import ElementTree

import paramiko
import xmlschema
from xmlschema.exceptions import XMLSchemaException

from integrationos.connectors.base import (
    Connector,
    ConnectorError,
    Delivery,
    HealthReport,
    OutboundMessage,
    Role,
    SourceRecord,
)

DEFAULT_PORT = 22
DEFAULT_REMOTE_PATH = "/"
DEFAULT_POLL_INTERVAL_S = 10
DEFAULT_FILE_NAME = "{messageId}.{extension}"
CONNECT_TIMEOUT_S = 15.0
OPERATION_TIMEOUT_S = 30.0
KEEPALIVE_S = 30
MALFORMED_TYPE = b"application/x-malformed"
_EXTENSIONS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".xml": "xml"}
_PLACEHOLDER = re.compile(r"\{(messageId|integrationId|timestamp|extension)\}")
_KEY_CLASSES: tuple[type[paramiko.PKey], ...] = (
    paramiko.Ed25519Key,
    paramiko.ECDSAKey,
    paramiko.RSAKey,
)
# A known_hosts "ssh-rsa" key is negotiated under its SHA-2 signature names.
_SIGNATURES = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}
T = TypeVar("T")
Parsed = tuple[bytes, dict[str, bytes]]  # one message read from a file: value and headers

log = logging.getLogger(__name__)


class _Down(Exception):
    """A connection step failed. The message is the DOWN reason shown to the operator;
    ``code`` and ``retryable`` classify it when a transfer, not a test, fails."""

    def __init__(self, reason: str, code: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.code = code
        self.retryable = retryable

    def error(self) -> ConnectorError:
        return ConnectorError(self.code, str(self), retryable=self.retryable)


class SftpConnector(Connector):
    type_name: ClassVar[str] = "SFTP"
    display_name: ClassVar[str] = "SFTP"
    roles: ClassVar[frozenset[Role]] = frozenset({"source", "target"})
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
            "filePattern": {"type": "string", "minLength": 1, "default": "*",
                            "description": "Source: glob matched against file names."},
            "format": {
                "type": "string", "enum": ["csv", "json", "jsonl", "xml"],
                "description": "Source: how files are parsed (default: by extension, .csv "
                               ".json .jsonl/.ndjson .xml; other files are left alone).",
            },
            "csv": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "delimiter": {"type": "string", "minLength": 1, "maxLength": 1,
                                  "default": ","},
                    "encoding": {"type": "string", "minLength": 1, "default": "utf-8"},
                    "header": {"type": "boolean", "default": True,
                               "description": "First row names the columns (else each row "
                                              "is a JSON array)."},
                },
            },
            "recordsPerFile": {
                "type": "string", "enum": ["row", "file"],
                "description": "Source: one message per CSV row, JSON array element, JSON "
                               "line or child of the XML root (row), or one per file (file). "
                               "Default: row, file for XML.",
            },
            "afterRead": {"type": "string", "enum": ["archive", "delete"],
                          "default": "archive"},
            "archivePath": {"type": "string", "pattern": "^/",
                            "description": "Source: default <remotePath>/archive."},
            "pollIntervalSeconds": {"type": "number", "minimum": 1, "maximum": 86400,
                                    "default": DEFAULT_POLL_INTERVAL_S},
            "targetPath": {"type": "string", "pattern": "^/",
                           "description": "Target: directory written to (default remotePath)."},
            "fileNameTemplate": {
                "type": "string",
                "pattern": r"^([^/{}]|\{(messageId|integrationId|timestamp|extension)\})+$",
                "default": DEFAULT_FILE_NAME,
                "description": "Target: placeholders {messageId} {integrationId} {timestamp} "
                               "{extension} (json or xml).",
            },
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

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        super().__init__(config, credentials)
        self._session = _Session(self)
        self._resume: _Checkpoint | None = None
        self._reading: _Reading | None = None
        self._next_listing = 0.0
        self._skipped: set[str] = set()

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

    async def close(self) -> None:
        await self._session.close()

    # -- target ------------------------------------------------------------------------

    async def write(self, message: OutboundMessage) -> Delivery:
        directory = self.config.get("targetPath", self.remote_path)
        name = self._file_name(message)
        data = message.encoded()
        path = posixpath.join(directory, name)
        await self._session.run(f"writing {path}", lambda sftp: _put(sftp, path, data))
        return Delivery(f"sftp://{self.host}:{self.port}{path}", f"wrote {len(data)} bytes")

    def _file_name(self, message: OutboundMessage) -> str:
        values = {
            "messageId": message.message_id,
            "integrationId": message.integration_id,
            "timestamp": datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"),
            "extension": "xml" if "xml" in message.content_type else "json",
        }
        template = self.config.get("fileNameTemplate", DEFAULT_FILE_NAME)
        return _PLACEHOLDER.sub(lambda match: values[match[1]], template)

    # -- source ------------------------------------------------------------------------

    def restore(self, checkpoint: str | None) -> None:
        self._resume = _Checkpoint.parse(checkpoint) if checkpoint else None

    async def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        """The next records of the file being read, from the first one not yet committed:
        records handed out but never committed (the forward failed) come again."""
        if self._reading is not None and self._reading.complete:
            await self._finish(self._reading.file)  # the archive step failed last time
            self._reading = None
        if self._reading is None:
            self._reading = await self._next_file(timeout)
            if self._reading is None:
                return []
        reading = self._reading
        return reading.records[reading.done:reading.done + max_records]

    async def commit(self, records: list[SourceRecord]) -> None:
        reading = self._reading
        if not records or reading is None:
            return
        last = records[-1].checkpoint
        assert last is not None  # every record of this source carries one
        reading.done = max(reading.done, _Checkpoint.parse(last).row)
        if reading.complete:
            await self._finish(reading.file)
            self._reading = None
            self._next_listing = 0.0  # more files may be waiting: list again right away

    async def _next_file(self, timeout: float) -> _Reading | None:
        """The oldest matching file with records not yet durable; files whose records all
        are (the checkpoint says so, or they have none) are archived on the way."""
        wait = self._next_listing - time.monotonic()
        if wait > 0:
            await asyncio.sleep(min(wait, timeout))
            return None
        for file in await self._session.run(f"listing {self.remote_path}", self._list):
            path = posixpath.join(self.remote_path, file.name)
            data = await self._session.run(f"reading {path}", lambda sftp, p=path: _get(sftp, p))
            records = self._records(file, data)
            resume = self._resume
            done = resume.row if resume and (resume.file, resume.mtime) == (path, file.mtime) \
                else 0
            if done < len(records):
                return _Reading(file, records, done)
            await self._finish(file)
        self._next_listing = time.monotonic() + float(
            self.config.get("pollIntervalSeconds", DEFAULT_POLL_INTERVAL_S))
        return None

    def _list(self, sftp: paramiko.SFTPClient) -> list[_RemoteFile]:
        pattern = self.config.get("filePattern", "*")
        found = []
        for entry in sftp.listdir_attr(self.remote_path):
            if not (stat.S_ISREG(entry.st_mode or 0)
                    and fnmatch.fnmatchcase(entry.filename, pattern)):
                continue
            if self._format(entry.filename) is None:
                if entry.filename not in self._skipped:
                    self._skipped.add(entry.filename)
                    log.warning("sftp source %s: %s has no known extension and no format is "
                                "configured; left alone", self.host, entry.filename)
                continue
            found.append(_RemoteFile(entry.filename, int(entry.st_mtime or 0)))
        return sorted(found, key=lambda f: (f.mtime, f.name))

    def _format(self, name: str) -> str | None:
        return self.config.get("format") or _EXTENSIONS.get(posixpath.splitext(name)[1].lower())

    def _records(self, file: _RemoteFile, data: bytes) -> list[SourceRecord]:
        fmt = self._format(file.name)
        assert fmt is not None  # _list keeps only files with a format
        per_file = self.config.get("recordsPerFile", "file" if fmt == "xml" else "row") == "file"
        parsed = parse_file(data, fmt, per_file, self.config.get("csv", {}))
        path = posixpath.join(self.remote_path, file.name)
        return [
            SourceRecord(
                key=None, value=value, headers=headers,
                position=f"{path}@{file.mtime}:{row}",
                checkpoint=_Checkpoint(path, file.mtime, row).text(),
            )
            for row, (value, headers) in enumerate(parsed, 1)
        ]

    async def _finish(self, file: _RemoteFile) -> None:
        """Archive or delete a file whose records are all durable."""
        source = posixpath.join(self.remote_path, file.name)
        if self.config.get("afterRead", "archive") == "delete":
            await self._session.run(f"deleting {source}", lambda sftp: _remove(sftp, source))
        else:
            archive = self.config.get("archivePath", posixpath.join(self.remote_path, "archive"))
            await self._session.run(f"archiving {source} to {archive}",
                                    lambda sftp: _move(sftp, source, archive))
        if self._resume is not None and self._resume.file == source:
            self._resume = None


@dataclass(frozen=True)
class _RemoteFile:
    name: str
    mtime: int  # seconds, as SFTP reports it: with the path, the file's identity


@dataclass
class _Reading:
    """The file being read: all its records, and how many of them are durable."""

    file: _RemoteFile
    records: list[SourceRecord]
    done: int

    @property
    def complete(self) -> bool:
        return self.done >= len(self.records)


@dataclass(frozen=True)
class _Checkpoint:
    """The source's state: ``row`` records of the file at ``file`` with ``mtime`` are durable."""

    file: str
    mtime: int
    row: int

    def text(self) -> str:
        return json.dumps({"file": self.file, "mtime": self.mtime, "row": self.row})

    @staticmethod
    def parse(text: str) -> _Checkpoint:
        data = json.loads(text)
        return _Checkpoint(data["file"], int(data["mtime"]), int(data["row"]))


# -- blocking SFTP steps, run in a worker thread by _Session -------------------------------


def _get(sftp: paramiko.SFTPClient, path: str) -> bytes:
    with sftp.open(path, "rb") as remote:
        remote.prefetch()
        return remote.read()


def _put(sftp: paramiko.SFTPClient, path: str, data: bytes) -> None:
    part = path + ".part"
    with sftp.open(part, "wb") as remote:
        remote.set_pipelined(True)
        remote.write(data)
    sftp.posix_rename(part, path)


def _move(sftp: paramiko.SFTPClient, source: str, directory: str) -> None:
    try:
        sftp.stat(directory)
    except FileNotFoundError:
        sftp.mkdir(directory)
    try:
        sftp.posix_rename(source, posixpath.join(directory, posixpath.basename(source)))
    except FileNotFoundError:  # another worker moved it already
        return


def _remove(sftp: paramiko.SFTPClient, path: str) -> None:
    try:
        sftp.remove(path)
    except FileNotFoundError:  # another worker deleted it already
        return


class _Session:
    """The connector's one SSH connection: opened on first use, dropped after a transport
    failure and opened again by the next call. Calls take turns on its one SFTP channel,
    waiting on the event loop rather than in a worker thread."""

    def __init__(self, connector: SftpConnector) -> None:
        self._connector = connector
        self._probe: _Probe | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._turn = asyncio.Lock()

    async def run(self, what: str, work: Callable[[paramiko.SFTPClient], T]) -> T:
        async with self._turn:
            sftp = self._sftp or await self._open()
            try:
                return await asyncio.to_thread(work, sftp)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                transport = self._probe.transport if self._probe else None
                error, broken = _failure(what, exc, transport is not None
                                         and transport.is_active())
                if broken:
                    await self.close()
                raise error from None

    async def _open(self) -> paramiko.SFTPClient:
        c = self._connector
        probe = _Probe(c, c._credentials, deadline=time.monotonic() + CONNECT_TIMEOUT_S)
        try:
            sftp = await probe.open()
        except _Down as exc:
            await asyncio.to_thread(probe.close)
            raise exc.error() from None
        except BaseException:
            await asyncio.to_thread(probe.close)
            raise
        sftp.get_channel().settimeout(OPERATION_TIMEOUT_S)
        self._probe, self._sftp = probe, sftp
        return sftp

    async def close(self) -> None:
        probe, self._probe, self._sftp = self._probe, None, None
        if probe is not None:
            await asyncio.to_thread(probe.close)


def _failure(what: str, exc: BaseException, connected: bool) -> tuple[ConnectorError, bool]:
    """The error for a failed SFTP call, and whether the connection is unusable after it."""
    if isinstance(exc, TimeoutError):
        return ConnectorError("TIMEOUT", f"timeout during {what}", retryable=True), True
    if not connected or isinstance(exc, EOFError | ConnectionError | paramiko.SSHException):
        return ConnectorError("CONNECTION_LOST", f"connection lost during {what}",
                              retryable=True), True
    if isinstance(exc, FileNotFoundError):
        return ConnectorError("NOT_FOUND", f"{what}: no such file or directory",
                              retryable=False), False
    if isinstance(exc, PermissionError):
        return ConnectorError("PERMISSION_DENIED", f"{what}: permission denied",
                              retryable=False), False
    return ConnectorError("SFTP_FAILURE", f"{what}: {exc}", retryable=True), False


# -- parsing files into messages ----------------------------------------------------------


def parse_file(data: bytes, fmt: str, per_file: bool, csv_options: dict[str, Any]
               ) -> list[Parsed]:
    """The messages of one file, in order; a malformed row or file becomes a malformed
    message in its place, so numbering (and the ids derived from it) never shifts."""
    if fmt == "xml":
        return [(data, {"ios-content-type": b"application/xml"})] if per_file else _xml(data)
    if fmt == "json":
        return _json(data, per_file)
    rows = _csv(data, csv_options) if fmt == "csv" else _json_lines(data)
    if not per_file:
        return rows
    bad = next((h for _, h in rows if h.get("ios-content-type") == MALFORMED_TYPE), None)
    if bad is not None:
        return [_malformed(data, bad["ios-source-error"].decode())]
    return [(b"[" + b",".join(value for value, _ in rows) + b"]", {})]


def _malformed(raw: bytes, reason: str) -> Parsed:
    return raw, {"ios-content-type": MALFORMED_TYPE, "ios-source-error": reason[:500].encode()}


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _json(data: bytes, per_file: bool) -> list[Parsed]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return [_malformed(data, f"not JSON: {str(exc)[:200]}")]
    if per_file or not isinstance(document, list):
        return [(_dump(document), {})]
    return [(_dump(item), {}) for item in document]


def _json_lines(data: bytes) -> list[Parsed]:
    parsed = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            parsed.append((_dump(json.loads(line)), {}))
        except (ValueError, RecursionError) as exc:
            parsed.append(_malformed(line.strip(), f"line {number}: not JSON: {str(exc)[:200]}"))
    return parsed


def _xml(data: bytes) -> list[Parsed]:
    """One XML document per child element of the root (parsed defused: no DTD, no entity)."""
    try:
        root = xmlschema.XMLResource(io.BytesIO(data), allow="none", defuse="always").root
    except (XMLSchemaException, RecursionError) as exc:
        return [_malformed(data, f"not well-formed XML: {str(exc)[:200]}")]
    documents = []
    for child in root:
        child.tail = None  # the whitespace after the element belongs to its parent
        documents.append((ElementTree.tostring(child, encoding="utf-8"),
                          {"ios-content-type": b"application/xml"}))
    return documents


def _csv(data: bytes, options: dict[str, Any]) -> list[Parsed]:
    encoding = options.get("encoding", "utf-8")
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise ConnectorError("BAD_CONFIG", f"csv.encoding: unknown encoding {encoding!r}",
                             retryable=False) from None
    try:
        text = data.decode("utf-8-sig" if codec == "utf-8" else codec)  # drop a BOM
    except UnicodeDecodeError as exc:
        return [_malformed(data, f"not valid {encoding} at byte {exc.start}")]
    lines: list[str] = []

    def feed() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            lines.append(line)
            yield line

    reader = csv.reader(feed(), delimiter=options.get("delimiter", ","), strict=True)
    header: list[str] | None = None if options.get("header", True) else []
    parsed: list[Parsed] = []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return parsed
        except csv.Error as exc:
            fields, problem = [], f"line {start}: malformed CSV: {exc}"
        else:
            problem = None
        raw = "".join(lines).rstrip("\r\n")
        lines.clear()
        if problem is None and not fields:
            continue  # a blank line
        if problem is None and header is None:
            header = fields
            continue
        if problem is None and header and len(fields) != len(header):
            problem = f"line {start}: {len(fields)} fields, the header has {len(header)}"
        if problem is not None:
            parsed.append(_malformed(raw.encode(), problem))
        else:
            parsed.append((_dump(dict(zip(header, fields, strict=True)) if header else fields),
                           {}))


# -- connecting -----------------------------------------------------------------------------


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
            raise _Down(f"timeout during {name}", "TIMEOUT", retryable=True) from None

    async def run(self) -> str:
        """The connection test: every step, up to a ``stat`` of remotePath."""
        await self.authenticated()
        sftp = await self.step("opening SFTP", self.open_sftp)
        return await self.step("stat of remotePath", lambda: self.stat(sftp))

    async def open(self) -> paramiko.SFTPClient:
        await self.authenticated()
        return await self.step("opening SFTP", self.open_sftp)

    async def authenticated(self) -> None:
        address = await self.step("DNS lookup", self.resolve)
        await self.step("TCP connect", lambda: self.connect(address))
        key = await self.step("SSH handshake", self.handshake)
        self.check_host_key(key)
        await self.step("authentication", self.authenticate)

    def resolve(self) -> tuple[Any, ...]:
        try:
            infos = socket.getaddrinfo(self.c.host, self.c.port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise _Down(f"DNS: cannot resolve {self.c.host}", "DNS", retryable=True) from None
        family, _, _, _, address = infos[0]
        return family, address

    def connect(self, resolved: tuple[Any, ...]) -> None:
        family, address = resolved
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(self.remaining())
        try:
            self.sock.connect(address)
        except ConnectionRefusedError:
            raise _Down(f"connection refused by {self.c.host}:{self.c.port}",
                        "CONNECTION_REFUSED", retryable=True) from None
        except TimeoutError:  # an OSError too, but step() reports it as a timeout
            raise
        except OSError as exc:
            raise _Down(f"cannot connect to {self.c.host}:{self.c.port}: {exc.strerror}",
                        "UNREACHABLE", retryable=True) from None

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
                raise _Down(f"host key mismatch: server has no {pinned.split()[0]} key",
                            "HOST_KEY") from None
            raise _Down(f"SSH handshake failed: {exc}", "SSH_HANDSHAKE") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise _Down(f"SSH handshake failed: {exc or type(exc).__name__}", "SSH_HANDSHAKE",
                        retryable=True) from None
        self.transport.set_keepalive(KEEPALIVE_S)
        return self.transport.get_remote_server_key()

    def check_host_key(self, key: paramiko.PKey) -> None:
        presented = f"{key.get_name()} {key.get_base64()}"
        pinned = self.c.config.get("hostKey")
        if pinned:
            if " ".join(pinned.split()[:2]) != presented:
                raise _Down(f"host key mismatch: server presents {key.get_name()} "
                            f"{key.fingerprint}", "HOST_KEY")
        elif not self.c.config.get("allowUnknownHostKey", False):
            raise _Down(f"unknown host key {presented}: pin it in hostKey "
                        "or set allowUnknownHostKey", "HOST_KEY")

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
                        f"{', '.join(exc.allowed_types)}", "AUTH_FAILED") from None
        except paramiko.AuthenticationException:
            raise _Down("authentication failed", "AUTH_FAILED") from None
        except paramiko.SSHException as exc:
            raise _Down(f"SSH error during authentication: {exc}", "AUTH_FAILED",
                        retryable=True) from None

    def open_sftp(self) -> paramiko.SFTPClient:
        assert self.transport is not None
        try:
            sftp = paramiko.SFTPClient.from_transport(self.transport)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise _Down(f"SFTP subsystem unavailable: {exc}", "SFTP_UNAVAILABLE") from None
        assert sftp is not None
        sftp.get_channel().settimeout(self.remaining() + 1)
        return sftp

    def stat(self, sftp: paramiko.SFTPClient) -> str:
        path = self.c.remote_path
        try:
            attributes = sftp.stat(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise _Down(f"remotePath {path} not found", "NOT_FOUND") from None
            if exc.errno == errno.EACCES:
                raise _Down(f"permission denied on remotePath {path}",
                            "PERMISSION_DENIED") from None
            raise _Down(f"SFTP error on remotePath {path}: {exc}", "SFTP_FAILURE") from None
        kind = "directory" if stat.S_ISDIR(attributes.st_mode or 0) else "file"
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
    raise _Down("privateKey: not an unencrypted Ed25519, ECDSA or RSA private key",
                "BAD_CREDENTIALS")
