"""An integration whose source is a directory on a real OpenSSH server: the worker reads the
files into the pipeline, archives each once its rows are durable, and a worker killed with
SIGKILL in the middle of a file loses no row (at-least-once, duplicates keep their ids)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from integrationos.connectors.credentials import CredentialVault
from integrationos.settings import Settings
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG, DEAD_LETTER, SOURCE_CHECKPOINTS, TopicSpec
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer
from tests.sshd import Sshd
from tests.support import RecordingTarget, configure_flow, count_messages, wait_for


def read_from_sftp(settings: Settings, server: Sshd, inbox: Path, target_url: str) -> None:
    """The HTTP target of ``configure_flow``, fed by an SFTP source polling ``inbox``."""
    configure_flow(settings, target_url)
    vault = CredentialVault.from_settings(settings)
    log = LogProducer(settings.kafka_bootstrap)
    config = server.config(remotePath=str(inbox), pollIntervalSeconds=1)
    log.append_sync(CONFIG.name(settings.topic_prefix), Event(
        t.CONNECTOR_CREATED, "acme", "con_sftp", {
            "id": "con_sftp", "name": "partner files", "connectorType": "SFTP",
            "configJson": json.dumps(config), "version": 1,
            "credentials": vault.seal({"username": server.username,
                                       "password": server.password})}))
    log.append_sync(CONFIG.name(settings.topic_prefix), Event(
        t.INTEGRATION_CREATED, "acme", "int_sftp", {
            "id": "int_sftp", "name": "from sftp", "environment": "DEV",
            "sourceConnectorId": "con_sftp", "targetConnectorId": "con_1",
            "transformationId": None, "expression": '{"Email": $.email}',
            "errorStrategy": "RETRY_3_DLQ", "version": 1}))
    log.close()


def csv_file(first: int, count: int) -> bytes:
    return ("id,email\n" + "".join(f"{n},c{n}@ex.pt\n" for n in range(first, first + count))
            ).encode()


def test_three_csv_files_are_delivered_and_archived(worker, platform_env, sshd: Sshd,
                                                    tmp_path: Path) -> None:
    settings = Settings.from_env()
    inbox = sshd.directory(tmp_path.name)
    target = RecordingTarget()
    try:
        read_from_sftp(settings, sshd, inbox, target.url)
        for n in range(3):
            (inbox / f"part-{n}.csv").write_bytes(csv_file(n * 100, 100))
        wait_for(lambda: count_messages(settings, "DELIVERED") == 300, 90, "300 deliveries")
        assert sorted(r["body"]["Email"] for r in target.received) == sorted(
            f"c{n}@ex.pt" for n in range(300))
        assert len(set(target.keys())) == 300
        wait_for(lambda: [p.name for p in inbox.iterdir()] == ["archive"], 10, "archiving")
        assert sorted(p.name for p in (inbox / "archive").iterdir()) == [
            "part-0.csv", "part-1.csv", "part-2.csv"]
    finally:
        target.close()


def reader(settings: Settings, spec: TopicSpec) -> Consumer:
    """A consumer of all of a platform topic from its start, reading at once (no group
    to join)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "test",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    topic = spec.name(settings.topic_prefix)
    consumer.assign([TopicPartition(topic, n, OFFSET_BEGINNING) for n in range(spec.partitions)])
    return consumer


def next_record(consumer: Consumer, timeout: float) -> Message | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = consumer.poll(0.05)
        if record is not None and not record.error():
            return record
    return None


def stored_row(record: Message) -> int:
    """How many rows of the file a ``source.checkpointed`` record says are durable."""
    return json.loads(codec.decode(record.value()).data["checkpoint"])["row"]


def test_sigkill_in_the_middle_of_a_file_loses_no_row(worker, platform_env, sshd: Sshd,
                                                      tmp_path: Path, capsys) -> None:
    total = 3000
    settings = Settings.from_env()
    inbox = sshd.directory(tmp_path.name)
    target = RecordingTarget()
    try:
        read_from_sftp(settings, sshd, inbox, target.url)
        checkpoints = reader(settings, SOURCE_CHECKPOINTS)
        rows = csv_file(0, total).replace(b"1500,c1500@ex.pt\n", b"1500,c1500@ex.pt,extra\n")
        (inbox / "big.csv").write_bytes(rows)
        first = next_record(checkpoints, 60)
        assert first is not None, "the source stored no checkpoint"
        worker.kill()  # at its first checkpoint, while it reads on
        stored = [stored_row(first)]
        while (record := next_record(checkpoints, 1.0)) is not None:
            stored.append(stored_row(record))
        checkpoints.close()
        assert max(stored) < total, "the kill came too late to test anything"
        assert (inbox / "big.csv").exists()
        delivered_before_restart = len(target.received)
        worker.start()
        wait_for(lambda: count_messages(settings, "DELIVERED") == total - 1
                 and count_messages(settings, "DEAD_LETTERED") == 1, 300, "every row")

        emails = {r["body"]["Email"] for r in target.received}
        assert emails == {f"c{n}@ex.pt" for n in range(total) if n != 1500}
        bodies_by_key: dict[str, set[str]] = {}
        for r in target.received:
            bodies_by_key.setdefault(r["idempotency_key"], set()).add(r["body"]["Email"])
        assert len(bodies_by_key) == total - 1
        assert all(len(bodies) == 1 for bodies in bodies_by_key.values())  # same row, same key
        duplicates = len(target.received) - (total - 1)

        dead_letters = reader(settings, DEAD_LETTER)
        dead = next_record(dead_letters, 30)
        dead_letters.close()
        assert dead is not None
        value, headers = dead.value(), dict(dead.headers())
        assert value == b"1500,c1500@ex.pt,extra"
        assert headers["ios-source-error"] == b"line 1502: 3 fields, the header has 2"
        assert headers["ios-dlq-code"] == b"SOURCE_RECORD_MALFORMED"
        wait_for(lambda: [p.name for p in inbox.iterdir()] == ["archive"], 10, "archiving")
        assert [p.name for p in (inbox / "archive").iterdir()] == ["big.csv"]
        with capsys.disabled():
            print(f"\n[sftp crash test] killed with {max(stored)} of {total} rows "
                  f"checkpointed, {delivered_before_restart} deliveries "
                  f"before the restart; {len(target.received)} deliveries, {duplicates} "
                  "duplicates (each with its row's idempotency key)")
    finally:
        target.close()
