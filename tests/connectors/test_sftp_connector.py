"""The SFTP connector against a real OpenSSH server (``tests/sshd.py``), plus the failures
that need no server: DNS, refused port, a peer that never speaks SSH."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from integrationos.connectors.base import (
    ConnectorError,
    HealthReport,
    OutboundMessage,
    SourceRecord,
)
from integrationos.connectors.sftp import MALFORMED_TYPE, SftpConnector
from tests.sshd import Sshd, openssh_private, openssh_public


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def inbox(sshd: Sshd, tmp_path: Path) -> Path:
    """A directory of this test on the server (named after the test's own tmp dir)."""
    return sshd.directory(tmp_path.name)


def password(server: Sshd) -> dict[str, str]:
    return {"username": server.username, "password": server.password}


def health(config: dict[str, Any], credentials: dict[str, Any] | None = None,
           timeout: float = 5.0) -> HealthReport:
    connector = SftpConnector(config, credentials or {"username": "u", "password": "p"})
    return asyncio.run(connector.test(timeout))


def source(server: Sshd, inbox: Path, **extra: Any) -> SftpConnector:
    config = server.config(remotePath=str(inbox), pollIntervalSeconds=1, **extra)
    return SftpConnector(config, password(server))


def drop(inbox: Path, name: str, data: bytes, mtime: int = 1_700_000_000) -> Path:
    """A file as an uploader leaves it, with a known modification time."""
    path = inbox / name
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


async def drain(connector: SftpConnector) -> list[SourceRecord]:
    """Poll and commit until the source has nothing more, as the engine's runner does."""
    read: list[SourceRecord] = []
    while batch := await connector.poll(500, 0.1):
        read += batch
        await connector.commit(batch)
    await connector.close()
    return read


def values(records: list[SourceRecord]) -> list[Any]:
    return [json.loads(r.value) for r in records]


# -- connection test ---------------------------------------------------------------------


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


def test_up_with_pinned_key_and_password(sshd: Sshd, inbox: Path) -> None:
    report = health(sshd.config(remotePath=str(inbox)), password(sshd))
    assert report.status == "UP", report.detail
    assert report.detail == (f"sftp://127.0.0.1:{sshd.port}{inbox}: directory, "
                             "reachable and authenticated")


def test_up_with_private_key(sshd: Sshd) -> None:
    report = health(sshd.config(), {"username": sshd.username, "privateKey": sshd.client_key})
    assert report.status == "UP", report.detail


def test_host_key_mismatch(sshd: Sshd) -> None:
    other = openssh_public(Ed25519PrivateKey.generate())
    report = health(sshd.config(hostKey=other), password(sshd))
    assert report.status == "DOWN"
    assert report.detail.startswith("host key mismatch: server presents ssh-ed25519 SHA256:")


def test_pinned_key_of_another_algorithm_is_a_mismatch(sshd: Sshd) -> None:
    rsa = paramiko.RSAKey.generate(2048)
    report = health(sshd.config(hostKey=f"ssh-rsa {rsa.get_base64()}"), password(sshd))
    assert (report.status, report.detail) == ("DOWN", "host key mismatch: server has no "
                                               "ssh-rsa key")


def test_unknown_host_key_is_refused_unless_allowed(sshd: Sshd) -> None:
    config = {"host": "127.0.0.1", "port": sshd.port}
    refused = health(config, password(sshd))
    assert refused.status == "DOWN"
    assert refused.detail.startswith(f"unknown host key {sshd.host_key}")
    allowed = health({**config, "allowUnknownHostKey": True}, password(sshd))
    assert allowed.status == "UP", allowed.detail


def test_wrong_password(sshd: Sshd) -> None:
    report = health(sshd.config(), {"username": sshd.username, "password": "wrong"})
    assert (report.status, report.detail) == ("DOWN", "authentication failed")


def test_unknown_private_key(sshd: Sshd) -> None:
    stranger = openssh_private(Ed25519PrivateKey.generate())
    report = health(sshd.config(), {"username": sshd.username, "privateKey": stranger})
    assert (report.status, report.detail) == ("DOWN", "authentication failed")


def test_unparseable_private_key_is_not_echoed(sshd: Sshd) -> None:
    junk = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----"
    report = health(sshd.config(), {"username": sshd.username, "privateKey": junk})
    assert report.status == "DOWN"
    assert report.detail.startswith("privateKey:")
    assert "not-a-key" not in report.detail


def test_missing_remote_path(sshd: Sshd) -> None:
    report = health(sshd.config(remotePath="/no/such/dir"), password(sshd))
    assert (report.status, report.detail) == ("DOWN", "remotePath /no/such/dir not found")


# -- source ------------------------------------------------------------------------------


def test_csv_with_header_delimiter_and_latin1(sshd: Sshd, inbox: Path) -> None:
    drop(inbox, "clientes.csv", "nome;cidade\nJosé;Lisboa\n\nZoë;\"Porto; Norte\"\n"
         .encode("latin-1"))
    connector = source(sshd, inbox, csv={"delimiter": ";", "encoding": "latin-1"})
    records = asyncio.run(drain(connector))
    assert values(records) == [{"nome": "José", "cidade": "Lisboa"},
                               {"nome": "Zoë", "cidade": "Porto; Norte"}]
    assert [r.position for r in records] == [f"{inbox}/clientes.csv@1700000000:{n}"
                                             for n in (1, 2)]
    assert {r.key for r in records} == {None}  # no order among rows: spread over partitions
    assert not (inbox / "clientes.csv").exists()
    assert (inbox / "archive" / "clientes.csv").exists()


def test_json_array_json_lines_and_xml_files(sshd: Sshd, inbox: Path) -> None:
    drop(inbox, "a.json", b'[{"id": 1}, {"id": 2}]', mtime=1_700_000_001)
    drop(inbox, "b.jsonl", b'{"id": 3}\n\n{"id": 4\n{"id": 5}\n', mtime=1_700_000_002)
    order = b'<?xml version="1.0"?><order id="6"><qty>2</qty></order>'
    drop(inbox, "c.xml", order, mtime=1_700_000_003)
    records = asyncio.run(drain(source(sshd, inbox)))

    assert [r.value for r in records[:2]] == [b'{"id":1}', b'{"id":2}']
    assert [r.value for r in records[2:5]] == [b'{"id":3}', b'{"id": 4', b'{"id":5}']
    bad = records[3]
    assert bad.headers["ios-content-type"] == MALFORMED_TYPE
    assert bad.headers["ios-source-error"].decode().startswith("line 3: not JSON")
    assert bad.position == f"{inbox}/b.jsonl@1700000002:2"
    assert (records[5].value, records[5].headers) == (
        order, {"ios-content-type": b"application/xml"})
    assert len(records) == 6
    assert sorted(p.name for p in (inbox / "archive").iterdir()) == ["a.json", "b.jsonl", "c.xml"]


def test_records_per_file_and_malformed_csv_rows(sshd: Sshd, inbox: Path) -> None:
    drop(inbox, "rows.csv", b'id,name\n1,a\n2,b,extra\n3,"c"x\n4,d\n', mtime=1_700_000_001)
    drop(inbox, "whole.csv", b"id,name\n1,a\n2,b\n", mtime=1_700_000_002)
    drop(inbox, "orders.xml", b"<orders><o n='1'/>\n<o n='2'/></orders>", mtime=1_700_000_003)
    rows = asyncio.run(drain(source(sshd, inbox, filePattern="rows.*")))
    assert [json.loads(r.value) for r in rows if not r.headers] == [
        {"id": "1", "name": "a"}, {"id": "4", "name": "d"}]
    assert [(r.value, r.headers["ios-source-error"]) for r in rows if r.headers] == [
        (b"2,b,extra", b"line 3: 3 fields, the header has 2"),
        (b'3,"c"x', b"line 4: malformed CSV: ',' expected after '\"'"),
    ]
    assert [r.position.rsplit(":", 1)[1] for r in rows] == ["1", "2", "3", "4"]

    whole = asyncio.run(drain(source(sshd, inbox, recordsPerFile="file", format="csv",
                                     filePattern="whole.csv")))
    assert values(whole) == [[{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]]

    orders = asyncio.run(drain(source(sshd, inbox, recordsPerFile="row")))
    assert [r.value for r in orders] == [b'<o n="1" />', b'<o n="2" />']


def test_files_are_archived_only_after_commit(sshd: Sshd, inbox: Path) -> None:
    drop(inbox, "orders.jsonl", b'{"n": 1}\n{"n": 2}\n{"n": 3}\n')
    connector = source(sshd, inbox, archivePath=str(inbox / "done"))

    async def scenario() -> None:
        first = await connector.poll(2, 0.1)
        assert values(first) == [{"n": 1}, {"n": 2}]
        # Not committed (the forward failed): the same records come again.
        assert await connector.poll(2, 0.1) == first
        await connector.commit(first)
        assert (inbox / "orders.jsonl").exists()
        rest = await connector.poll(2, 0.1)
        assert values(rest) == [{"n": 3}]
        assert (inbox / "orders.jsonl").exists()
        await connector.commit(rest)
        assert not (inbox / "orders.jsonl").exists()
        assert (inbox / "done" / "orders.jsonl").read_bytes().startswith(b'{"n": 1}')
        await connector.close()

    asyncio.run(scenario())


def test_delete_mode(sshd: Sshd, inbox: Path) -> None:
    drop(inbox, "x.json", b'{"n": 1}')
    records = asyncio.run(drain(source(sshd, inbox, afterRead="delete")))
    assert values(records) == [{"n": 1}]
    assert list(inbox.iterdir()) == []


def test_restore_resumes_after_the_checkpoint_with_the_same_positions(
    sshd: Sshd, inbox: Path
) -> None:
    drop(inbox, "big.jsonl", b"".join(b'{"n": %d}\n' % n for n in range(1, 8)))

    async def crash_after_three() -> SourceRecord:
        connector = source(sshd, inbox)
        committed = await connector.poll(3, 0.1)
        await connector.commit(committed)
        await connector.poll(3, 0.1)  # read, forwarded maybe, never committed: the crash
        await connector.close()
        return committed[-1]

    last = asyncio.run(crash_after_three())
    assert (inbox / "big.jsonl").exists()

    async def first_three_again() -> list[str]:
        reread = source(sshd, inbox)  # no checkpoint: everything again, same positions
        positions = [r.position for r in await reread.poll(3, 0.1)]
        await reread.close()
        return positions

    assert asyncio.run(first_three_again()) == [f"{inbox}/big.jsonl@1700000000:{n}"
                                                for n in (1, 2, 3)]
    resumed = source(sshd, inbox)
    resumed.restore(last.checkpoint)
    rest = asyncio.run(drain(resumed))
    assert values(rest) == [{"n": n} for n in range(4, 8)]
    assert rest[0].position == f"{inbox}/big.jsonl@1700000000:4"
    assert (inbox / "archive" / "big.jsonl").exists()


def test_a_file_whose_records_are_all_durable_is_archived_on_restart(
    sshd: Sshd, inbox: Path
) -> None:
    drop(inbox, "done.json", b'[{"n": 1}, {"n": 2}]')
    checkpoint = json.dumps({"file": f"{inbox}/done.json", "mtime": 1_700_000_000, "row": 2})
    connector = source(sshd, inbox)
    connector.restore(checkpoint)
    assert asyncio.run(drain(connector)) == []
    assert (inbox / "archive" / "done.json").exists()


def test_a_file_replaced_under_the_same_name_is_read_again(sshd: Sshd, inbox: Path) -> None:
    drop(inbox, "daily.json", b'[{"n": 1}]', mtime=1_700_000_500)
    checkpoint = json.dumps({"file": f"{inbox}/daily.json", "mtime": 1_700_000_000, "row": 1})
    connector = source(sshd, inbox)
    connector.restore(checkpoint)
    assert values(asyncio.run(drain(connector))) == [{"n": 1}]


# -- target ------------------------------------------------------------------------------


def outbound(n: int, **extra: Any) -> OutboundMessage:
    return OutboundMessage(message_id=f"msg_{n}", idempotency_key=f"msg_{n}", tenant="acme",
                           integration_id="int_1", key=None, payload={"n": n, "t": "olá"},
                           **extra)


def test_target_writes_each_message_atomically(sshd: Sshd, inbox: Path) -> None:
    connector = SftpConnector(sshd.config(targetPath=str(inbox)), password(sshd))
    xml = outbound(2, content_type="application/xml", body=b"<n>2</n>")

    async def scenario() -> list[str]:
        details = [(await connector.write(m)).detail for m in (outbound(1), xml, outbound(1))]
        await connector.close()
        return details

    # The re-delivery of msg_1 replaces its file; no .part file is left behind.
    assert asyncio.run(scenario()) == ["wrote 18 bytes", "wrote 8 bytes", "wrote 18 bytes"]
    assert sorted(p.name for p in inbox.iterdir()) == ["msg_1.json", "msg_2.xml"]
    assert json.loads((inbox / "msg_1.json").read_text()) == {"n": 1, "t": "olá"}
    assert (inbox / "msg_2.xml").read_bytes() == b"<n>2</n>"


def test_target_file_name_template(sshd: Sshd, inbox: Path) -> None:
    config = sshd.config(targetPath=str(inbox), fileNameTemplate="{integrationId}-{timestamp}.out")
    asyncio.run(SftpConnector(config, password(sshd)).write(outbound(1)))
    [written] = list(inbox.iterdir())
    assert written.name.startswith("int_1-") and written.name.endswith("Z.out")


def test_target_errors_are_classified(sshd: Sshd, inbox: Path, free_port: int) -> None:
    def error(config: dict[str, Any], credentials: dict[str, str]) -> tuple[str, bool]:
        with pytest.raises(ConnectorError) as caught:
            asyncio.run(SftpConnector(config, credentials).write(outbound(1)))
        return caught.value.code, caught.value.retryable

    locked = sshd.root / f"{inbox.name}-locked"
    locked.mkdir(mode=0o755)  # root's: the test user cannot write in it
    assert error(sshd.config(targetPath=str(locked)), password(sshd)) == (
        "PERMISSION_DENIED", False)
    assert error(sshd.config(targetPath=f"{inbox}/missing"), password(sshd)) == (
        "NOT_FOUND", False)
    wrong = {"username": sshd.username, "password": "wrong"}
    assert error(sshd.config(targetPath=str(inbox)), wrong) == ("AUTH_FAILED", False)
    assert error({"host": "127.0.0.1", "port": free_port}, password(sshd)) == (
        "CONNECTION_REFUSED", True)


def test_target_reconnects_after_the_connection_drops(sshd: Sshd, inbox: Path) -> None:
    connector = SftpConnector(sshd.config(targetPath=str(inbox)), password(sshd))

    async def scenario() -> None:
        await connector.write(outbound(1))
        sshd.drop_connections()
        await asyncio.sleep(0.2)
        with pytest.raises(ConnectorError) as lost:
            await connector.write(outbound(2))
        assert (lost.value.code, lost.value.retryable) == ("CONNECTION_LOST", True)
        await connector.write(outbound(3))
        await connector.close()

    asyncio.run(scenario())
    assert sorted(p.name for p in inbox.iterdir()) == ["msg_1.json", "msg_3.json"]
