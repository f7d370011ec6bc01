"""Chaos: 20,000 messages through one integration while the worker is SIGKILLed three times
and the Kafka broker is stopped and started once. Nothing is lost, nothing is applied twice.

The integration is ingest topic -> JSONata -> HTTP target under ``RETRY_5_DLQ``. The stream
holds three kinds of trouble besides the chaos: records that are not JSON (dead-lettered at
ingest), payloads the target rejects with 422 (dead-lettered at delivery), and payloads the
target answers 503 the first time (delivered on a retry through a delay tier).

"Applied twice" is measured the way a real target sees it: the platform delivers at least
once and passes the message id as ``Idempotency-Key``; the target applies each key once and
acknowledges repeats. A payload applied under two different keys would be a real double
application; each payload carries a unique sequence number so that can be counted.

The broker restarted here is this module's own (another port, another data directory),
started and stopped with the project's launcher; the shared test broker is never touched.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer
from sqlalchemy import func, select

from integrationos.cli.devbroker import DevBroker
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import messages
from integrationos.topics.catalog import DEAD_LETTER, INGEST
from tests.support import (
    IdempotentTarget,
    WorkerProcess,
    configure_flow,
    dead_letter_rows,
    first_number,
    malformed_record,
    read_topic,
    wait_for,
)

TOTAL = 20_000
KEYS = 64  # ordering keys: records of one key are processed in order, keys concurrently
BACKLOG = 4000  # the feeder keeps at most this many records ahead of the target
EXPRESSION = '{"seq": $.seq, "name": $uppercase($.name), "verdict": $.verdict}'
# (fraction of the good payloads applied, what happens then)
SCHEDULE = ((0.12, "kill worker"), (0.35, "restart broker"), (0.58, "kill worker"),
            (0.80, "kill worker"))


def _free_port_pair() -> int:
    """A port p with p + 1 free as well: the dev broker listens on p, its controller on p+1."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture(scope="module")
def chaos_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevBroker]:
    """A broker of this module's own, which the test may stop and start at will."""
    settings = replace(Settings.from_env(), data_dir=tmp_path_factory.mktemp("chaos-broker"),
                       kafka_bootstrap=f"127.0.0.1:{_free_port_pair()}")
    broker = DevBroker.from_settings(settings)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def kafka_bootstrap(chaos_broker: DevBroker) -> str:
    """Overrides the shared broker for this module: ``platform_env`` and ``worker`` build the
    platform on the private broker instead."""
    return f"{chaos_broker.host}:{chaos_broker.port}"


@dataclass(frozen=True)
class Stream:
    """The records sent, by sequence number, and which of them are trouble of which kind."""

    values: list[bytes]
    malformed: frozenset[int]
    rejected: frozenset[int]
    flaky: frozenset[int]

    @classmethod
    def build(cls, total: int) -> Stream:
        malformed = frozenset(n for n in range(total) if n % 100 == 37)  # 1 %
        rejected = frozenset(n for n in range(total) if n % 400 == 211)  # 0.25 %
        flaky = frozenset(n for n in range(total) if n % 100 == 59)  # 1 %
        values = [malformed_record(n) if n in malformed else json.dumps({
            "seq": n, "name": f"person {n}",
            "verdict": "reject" if n in rejected else "flaky" if n in flaky else "ok",
        }).encode() for n in range(total)]
        return cls(values, malformed, rejected, flaky)

    @property
    def poison(self) -> frozenset[int]:
        return self.malformed | self.rejected

    @property
    def good(self) -> frozenset[int]:
        return frozenset(range(len(self.values))) - self.poison


def _verdict() -> Callable[[dict[str, Any]], int]:
    """What the target answers a payload it has not applied yet: 422 to the rejected ones,
    503 to the first try of a flaky one, 200 otherwise."""
    failed_once: set[int] = set()

    def verdict(body: dict[str, Any]) -> int:
        if body["verdict"] == "reject":
            return 422
        if body["verdict"] == "flaky" and body["seq"] not in failed_once:
            failed_once.add(body["seq"])
            return 503
        return 200

    return verdict


@dataclass
class Feeder:
    """An external producer feeding the ingest topic while the chaos goes on, idempotent as
    the platform asks of producers (so a broker restart does not duplicate its records),
    keeping at most ``BACKLOG`` records ahead of the target."""

    settings: Settings
    stream: Stream
    target: IdempotentTarget
    sent: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap,
                             "enable.idempotence": True, "linger.ms": 5})
        topic = INGEST.name(self.settings.topic_prefix)
        headers = [("ios-tenant", b"acme"), ("ios-integration", b"int_1")]
        poison_sent = 0
        for n, value in enumerate(self.stream.values):
            while n - len(self.target.applied) - poison_sent > BACKLOG:
                producer.poll(0.05)
            producer.produce(topic, key=f"k{n % KEYS}".encode(), value=value, headers=headers,
                             on_delivery=self._delivered)
            poison_sent += n in self.stream.poison
            producer.poll(0)
        producer.flush(180)

    def _delivered(self, err: KafkaError | None, _: Message) -> None:
        if err is None:
            self.sent += 1
        else:
            self.errors.append(str(err))


def _statuses(settings: Settings) -> Counter[str]:
    engine = open_database(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(messages.c.status, func.count()).group_by(
                messages.c.status)).all()
        return Counter({status: count for status, count in rows})
    finally:
        engine.dispose()


def _settled(settings: Settings) -> int:
    """Messages in a final state: delivered or dead-lettered."""
    statuses = _statuses(settings)
    return statuses["DELIVERED"] + statuses["DEAD_LETTERED"]


def _ids_with_status(settings: Settings, status: str) -> set[str]:
    engine = open_database(settings.database_url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(messages.c.id).where(
                messages.c.status == status)).scalars())
    finally:
        engine.dispose()


def _unleash(feeder: Feeder, worker: WorkerProcess, broker: DevBroker,
             started: float) -> list[str]:
    """Run the schedule; return what happened when (seconds since the first record)."""
    moments = []
    applied, good = feeder.target.applied, len(feeder.stream.good)
    for fraction, action in SCHEDULE:
        wait_for(lambda f=fraction: len(applied) >= f * good, 300,
                 f"{fraction:.0%} of the payloads applied")
        at = (f"{action} at {time.monotonic() - started:.1f}s ({feeder.sent} sent, "
              f"{len(applied)} applied)")
        if action == "kill worker":
            worker.kill()
            worker.start()
        else:
            assert broker.stop().startswith("stopped")
            assert broker.start().startswith("started")
        moments.append(f"{at}, back at {time.monotonic() - started:.1f}s")
    return moments


def test_nothing_is_lost_or_applied_twice_through_worker_kills_and_a_broker_restart(
        chaos_broker: DevBroker, worker: WorkerProcess, platform_env: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env()
    stream = Stream.build(TOTAL)
    target = IdempotentTarget(verdict=_verdict())
    try:
        configure_flow(settings, target.url, strategy="RETRY_5_DLQ", expression=EXPRESSION)
        feeder = Feeder(settings, stream, target)
        feeding = threading.Thread(target=feeder.run, daemon=True)
        started = time.monotonic()
        feeding.start()
        moments = _unleash(feeder, worker, chaos_broker, started)
        feeding.join(300)
        assert not feeding.is_alive() and feeder.errors == [] and feeder.sent == TOTAL
        wait_for(lambda: _settled(settings) >= TOTAL, 300,
                 "every message delivered or dead-lettered")
        elapsed = time.monotonic() - started

        statuses = _statuses(settings)
        assert statuses["DELIVERED"] + statuses["DEAD_LETTERED"] == feeder.sent
        assert sum(statuses.values()) == feeder.sent  # no message left in between
        _assert_each_good_payload_applied_once(stream, target, settings)
        _assert_dead_letters_are_exactly_the_poison(stream, settings)
        assert worker.process is not None and worker.process.poll() is None
        with capsys.disabled():
            _report(stream, target, settings, moments, elapsed)
    finally:
        target.close()


def _assert_each_good_payload_applied_once(stream: Stream, target: IdempotentTarget,
                                           settings: Settings) -> None:
    keys_per_payload = Counter(body["seq"] for body in target.applied_bodies())
    applied_twice = sorted(seq for seq, keys in keys_per_payload.items() if keys > 1)
    assert applied_twice == [], f"payloads applied under two keys: {applied_twice[:20]}"
    assert set(keys_per_payload) == stream.good  # every good one applied, no poison one
    assert _ids_with_status(settings, "DELIVERED") == set(target.applied)


def _assert_dead_letters_are_exactly_the_poison(stream: Stream, settings: Settings) -> None:
    entries = dead_letter_rows(settings)
    records = read_topic(settings.kafka_bootstrap, DEAD_LETTER.name(settings.topic_prefix))
    by_id: dict[str, Message] = {}
    for record in records:  # a re-processed record may be dead-lettered again: same id
        by_id[dict(record.headers())["ios-message-id"].decode()] = record
    assert set(by_id) == set(entries) == _ids_with_status(settings, "DEAD_LETTERED")
    seqs = {message_id: first_number(record.value()) for message_id, record in by_id.items()}
    assert sorted(seqs.values()) == sorted(stream.poison)
    for message_id, row in entries.items():
        expected = "MALFORMED_JSON" if seqs[message_id] in stream.malformed else "HTTP_422"
        headers = dict(by_id[message_id].headers())
        assert (row.code, headers["ios-dlq-code"].decode()) == (expected, expected)
        assert row.message and headers["ios-dlq-message"]


def _report(stream: Stream, target: IdempotentTarget, settings: Settings, moments: list[str],
            elapsed: float) -> None:
    statuses = _statuses(settings)
    print(f"\n[chaos] sent {len(stream.values)}, delivered {statuses['DELIVERED']}, "
          f"dead-lettered {statuses['DEAD_LETTERED']} ({len(stream.malformed)} not JSON, "
          f"{len(stream.rejected)} rejected by the target), {len(stream.flaky)} delivered "
          f"after a 503; target saw {len(target.received)} requests, "
          f"{target.replays} repeats of an applied key suppressed; all settled in "
          f"{elapsed:.0f}s")
    for moment in moments:
        print(f"[chaos] {moment}")
