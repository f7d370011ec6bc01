"""Test helpers that use only real components: a worker process, recording HTTP targets,
log appends, and polling of the projections."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from sqlalchemy import func, select

from integrationos.connectors.credentials import CredentialVault
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import dlq_entries, integrations, messages
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG, INGEST
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer


def platform_environment(kafka_bootstrap: str, topic_prefix: str, data_dir: Path,
                         database_url: str) -> dict[str, str]:
    """The variables that make one isolated platform: its broker, its own topics (by prefix),
    its own data directory and database, and a master key generated in that directory."""
    return {
        "IOS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "IOS_TOPIC_PREFIX": topic_prefix,
        "IOS_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "IOS_MASTER_KEY": "",
    }


class WorkerProcess:
    """A real engine worker (`integrationos worker`) in a child process."""

    def __init__(self, env: dict[str, str], worker_id: str = "worker-1",
                 loglevel: str = "info") -> None:
        self.loglevel = loglevel
        self.env = {**os.environ, **env, "IOS_WORKER_ID": worker_id}
        self.worker_id = worker_id
        self.ready_file = Path(env["IOS_DATA_DIR"]) / f"{worker_id}.ready"
        self.log_path = Path(env["IOS_DATA_DIR"]) / f"{worker_id}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> None:
        self.ready_file.unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "integrationos.cli.main", "worker", "--loglevel", self.loglevel],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker not ready: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed or committed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class _Server(ThreadingHTTPServer):
    """The standard library's default listen backlog (5) resets connections when a worker
    delivers hundreds of messages at once; a real target would queue them."""

    request_queue_size = 256
    daemon_threads = True


class RecordingTarget:
    """A real HTTP server on loopback that records every POST it answers."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.documents: dict[str, Any] = {}  # path -> JSON answered to GET (else 404)
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (a SIGKILLed worker)
                    self.close_connection = True
                    return
                status = target.answer({
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                    "authorization": self.headers.get("Authorization"),
                    "traceparent": self.headers.get("traceparent"),
                    "body": json.loads(body),
                })
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                document = target.documents.get(self.path)
                body = b"" if document is None else json.dumps(document).encode()
                self.send_response(404 if document is None else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, request: dict[str, Any]) -> int:
        """Choose the status one POST is answered with; record the request with it."""
        with self._lock:
            status = self._status_for(request)
            self.received.append({**request, "status": status})  # what it was answered
        return status

    def _status_for(self, request: dict[str, Any]) -> int:
        """The status of a POST (called holding the lock)."""
        return self.status

    def keys(self) -> list[str]:
        with self._lock:
            return [r["idempotency_key"] for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class IdempotentTarget(RecordingTarget):
    """A target that applies each ``Idempotency-Key`` at most once, as Stripe does: a request
    repeating a key already applied is acknowledged (200) and changes nothing. This is what
    makes "delivered twice" measurable: at-least-once delivery may repeat a request, but a
    payload applied under two different keys would be a real double application.

    ``verdict`` chooses what a not-yet-applied request is answered (e.g. 503 once to force a
    retry, 422 to reject a payload); only a 2xx answer applies it.
    """

    def __init__(self, verdict: Callable[[Any], int] = lambda body: 200) -> None:
        self.applied: dict[str, Any] = {}  # Idempotency-Key -> the body applied under it
        self.replays = 0  # requests whose key was already applied: redeliveries suppressed
        self._verdict = verdict
        super().__init__()

    def _status_for(self, request: dict[str, Any]) -> int:
        key = request["idempotency_key"]
        if key in self.applied:
            self.replays += 1
            return 200
        status = self._verdict(request["body"])
        if 200 <= status < 300:
            self.applied[key] = request["body"]
        return status

    def applied_bodies(self) -> list[Any]:
        with self._lock:
            return list(self.applied.values())


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def count_messages(settings: Settings, status: str | None = None) -> int:
    engine = open_database(settings.database_url)
    try:
        query = select(func.count()).select_from(messages)
        if status is not None:
            query = query.where(messages.c.status == status)
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


MAPPING = '{"FirstName": $substringBefore($.nome_completo, " "), "Email": $.email}'


def _unmetered_tenant(producer: LogProducer, topic: str, tenant: str = "acme") -> None:
    """The tenant as an Enterprise one (no monthly message quota): the engine tests send
    more than a Free tenant's 10,000 messages (the chaos test 20,000; benchmarks more), and
    a tenant nobody created gets Free's limits. Quotas are tested on their own."""
    producer.append_sync(topic, Event(t.TENANT_CREATED, tenant, tenant, {
        "id": tenant, "name": tenant, "plan": "enterprise"}))


def configure_flow(settings: Settings, target_url: str, strategy: str = "RETRY_3_DLQ",
                   expression: str = MAPPING, backoff: dict[str, Any] | None = None) -> None:
    """Append a connector and an integration to the config log; wait until projected."""
    vault = CredentialVault.from_settings(settings)
    producer = LogProducer(settings.kafka_bootstrap)
    topic = CONFIG.name(settings.topic_prefix)
    _unmetered_tenant(producer, topic)
    producer.append_sync(topic, Event(t.CONNECTOR_CREATED, "acme", "con_1", {
        "id": "con_1", "name": "target", "connectorType": "HTTP",
        "configJson": json.dumps({"url": target_url}),
        "credentials": vault.seal({"bearerToken": "s3cr3t-token"}), "version": 1,
    }))
    producer.append_sync(topic, Event(t.INTEGRATION_CREATED, "acme", "int_1", {
        "id": "int_1", "name": "flow", "environment": "DEV", "sourceConnectorId": None,
        "targetConnectorId": "con_1", "transformationId": None, "expression": expression,
        "errorStrategy": strategy, "backoff": backoff, "version": 1,
    }))
    producer.close()
    engine = open_database(settings.database_url)

    def projected() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(integrations.c.id)).first() is not None

    wait_for(projected, 30, "the integration to be projected")
    engine.dispose()


def ingest(settings: Settings, values: list[bytes], integration: str = "int_1",
           tenant: str = "acme", keys: int = 7,
           extra_headers: list[tuple[str, bytes]] | None = None) -> None:
    """Publish raw records to the ingest topic the way an external producer would, spread
    round-robin over ``keys`` ordering keys (the pipeline runs different keys concurrently)."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    headers = [("ios-tenant", tenant.encode()), ("ios-integration", integration.encode()),
               *(extra_headers or [])]
    for n, value in enumerate(values):
        producer.produce(INGEST.name(settings.topic_prefix), key=f"k{n % keys}".encode(),
                         value=value, headers=headers)
        producer.poll(0)
    producer.flush(30)


def config_events(settings: Settings, type_: str) -> list[Event]:
    """Every event of ``type_`` on the config topic so far, in log order."""
    topic = CONFIG.name(settings.topic_prefix)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": f"check-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        found, position, deadline = [], 0, time.monotonic() + 30
        while position < end:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to offset {end}")
            record = consumer.poll(1.0)
            if record is None or record.error():
                continue
            position = record.offset() + 1
            event = codec.decode(record.value())
            if event.type == type_:
                found.append(event)
        return found
    finally:
        consumer.close()


_MALFORMED: tuple[Callable[[int], bytes], ...] = (
    lambda n: f'{{"seq": {n}, "name": '.encode(),  # cut short
    lambda n: f'{{"seq": {n}}} and then some'.encode(),  # trailing garbage
    lambda n: f"{{'seq': {n}}}".encode(),  # a Python dict, not JSON
    lambda n: b"\xc3\x28 seq " + str(n).encode(),  # not even UTF-8
)


def malformed_record(n: int) -> bytes:
    """A record value that is not JSON, in one of several ways, still carrying the number
    ``n`` as its first digits so it can be told apart from the others in the DLQ."""
    return _MALFORMED[n % len(_MALFORMED)](n)


def first_number(value: bytes) -> int:
    """The first run of digits in a record value: the sequence number the tests put there."""
    digits = re.search(rb"\d+", value)
    assert digits is not None, f"no sequence number in {value[:80]!r}"
    return int(digits.group())


def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> list[Message]:
    """Every committed record of ``topic`` so far: each partition read until the consumer
    reports its end (which, unlike counting offsets, also holds behind transaction markers)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Message] = []
        reading = set(partitions)
        deadline = time.monotonic() + timeout
        while reading:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout}s")
            record = consumer.poll(1.0)
            if record is None:
                continue
            error = record.error()
            if error is None:
                records.append(record)
            elif error.code() == KafkaError._PARTITION_EOF:
                reading.discard(record.partition())
        return records
    finally:
        consumer.close()


def dead_letter_rows(settings: Settings) -> dict[str, Any]:
    """The ``dlq_entries`` projection, by message id."""
    engine = open_database(settings.database_url)
    try:
        with engine.connect() as conn:
            return {row.id: row for row in conn.execute(select(dlq_entries))}
    finally:
        engine.dispose()


def configure_kafka_to_kafka(settings: Settings, source_topic: str, target_topic: str,
                             expression: str, exactly_once: bool = True) -> None:
    """A Kafka source, a Kafka target (both on the platform's broker) and an integration
    between them, appended to the config log; waits until the integration is projected."""
    producer = LogProducer(settings.kafka_bootstrap)
    topic = CONFIG.name(settings.topic_prefix)
    _unmetered_tenant(producer, topic)
    producer.append_sync(topic, Event(t.CONNECTOR_CREATED, "acme", "con_src", {
        "id": "con_src", "name": "source", "connectorType": "KAFKA",
        "configJson": json.dumps({"topic": source_topic}), "credentials": None, "version": 1}))
    producer.append_sync(topic, Event(t.CONNECTOR_CREATED, "acme", "con_out", {
        "id": "con_out", "name": "target", "connectorType": "KAFKA",
        "configJson": json.dumps({"topic": target_topic, "exactlyOnce": exactly_once}),
        "credentials": None, "version": 1}))
    producer.append_sync(topic, Event(t.INTEGRATION_CREATED, "acme", "int_k2k", {
        "id": "int_k2k", "name": "kafka to kafka", "environment": "DEV",
        "sourceConnectorId": "con_src", "targetConnectorId": "con_out",
        "transformationId": None, "transformationVersion": None, "expression": expression,
        "errorStrategy": "RETRY_3_DLQ", "version": 1}))
    producer.close()
    engine = open_database(settings.database_url)

    def projected() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(integrations.c.id)).first() is not None

    wait_for(projected, 30, "the integration to be projected")
    engine.dispose()


class TopicReader:
    """Reads a topic from its start as a downstream consumer would, in its own group, with
    the isolation level given (``read_committed`` is what exactly-once promises to)."""

    def __init__(self, bootstrap: str, topic: str, isolation: str = "read_committed") -> None:
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "enable.partition.eof": False,
        })
        self._consumer.subscribe([topic])
        self.records: list[Message] = []

    def poll(self) -> int:
        """Take what has arrived; return how many records were read so far."""
        self.records += [m for m in self._consumer.consume(1000, 0.5) if not m.error()]
        return len(self.records)

    def close(self) -> None:
        self._consumer.close()
