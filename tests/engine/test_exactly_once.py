"""Kafka -> Kafka integrations run exactly-once: a read_committed reader of the target
topic sees each source record's output once, even across SIGKILLed workers."""

from __future__ import annotations

import json
import os
from collections import Counter

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import func, select

from integrationos.engine.bindings import SourceBinding, runs_exactly_once
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.rebuild import rebuild
from integrationos.store.tables import message_events, messages
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.catalog import DEAD_LETTER, MESSAGE_EVENTS
from integrationos.topics.envelope import Event
from tests.support import TopicReader, configure_kafka_to_kafka, count_messages, wait_for

TOTAL = 5000
BAD = {n for n in range(TOTAL) if n % 250 == 7}  # 20 records that are not JSON
GOOD = TOTAL - len(BAD)
EXPRESSION = '{"seq": $.seq, "Email": $.email, "blob": $.blob}'


def _create_topics(settings: Settings, *specs: tuple[str, int, dict[str, str]]) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [NewTopic(name, num_partitions=n, replication_factor=1, config=config)
              for name, n, config in specs]
    for future in admin.create_topics(topics).values():
        future.result(30)


def _produce(settings: Settings, topic: str, numbers: range) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for n in numbers:
        value = (f'{{"seq": {n}, broken'.encode() if n in BAD
                 else json.dumps({"seq": n, "email": f"e{n}@ex"}).encode())
        producer.produce(topic, key=f"k{n % 40}".encode(), value=value)
        producer.poll(0)
    producer.flush(30)


def _events_per_message_and_type(settings: Settings) -> Counter[int]:
    """How many projected events there are of each (message, event type): all 1 if events
    of aborted transactions were never projected and no step ran twice."""
    engine = open_database(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(message_events).group_by(
                message_events.c.message_id, message_events.c.event_type))
            return Counter(int(r[0]) for r in rows)
    finally:
        engine.dispose()


def test_two_sigkills_mid_stream_leave_every_output_exactly_once(worker, platform_env,
                                                                  capsys):
    settings = Settings.from_env()
    source, target = f"{settings.topic_prefix}.orders", f"{settings.topic_prefix}.orders-out"
    _create_topics(settings, (source, 3, {}), (target, 3, {}))
    outputs = TopicReader(settings.kafka_bootstrap, target)
    uncommitted = TopicReader(settings.kafka_bootstrap, target, "read_uncommitted")
    dead = TopicReader(settings.kafka_bootstrap, DEAD_LETTER.name(settings.topic_prefix))
    try:
        # The stream arrives in three parts, the next only after a kill, so each kill
        # lands while the worker still has records to process.
        _produce(settings, source, range(0, 2000))
        configure_kafka_to_kafka(settings, source, target, EXPRESSION)
        kills = []
        for threshold, rest in ((800, range(2000, 3500)), (2600, range(3500, TOTAL))):
            wait_for(lambda n=threshold: outputs.poll() >= n, 180, f"{threshold} outputs")
            worker.kill()
            kills.append(outputs.poll())
            _produce(settings, source, rest)
            worker.start()
        wait_for(lambda: outputs.poll() >= GOOD, 300, "every output")
        wait_for(lambda: dead.poll() >= len(BAD), 60, "every dead letter")
        wait_for(lambda: count_messages(settings, "DELIVERED") == GOOD, 120, "projections")
        wait_for(lambda: count_messages(settings, "DEAD_LETTERED") == len(BAD), 60,
                 "dead letters projected")
        for _ in range(6):  # anything late (a duplicate) would show up meanwhile
            outputs.poll()
            dead.poll()
        uncommitted_seen = wait_for(lambda: uncommitted.poll() >= GOOD and uncommitted.poll(),
                                    60, "the uncommitted view")

        seqs = Counter(json.loads(m.value())["seq"] for m in outputs.records)
        assert set(seqs) == set(range(TOTAL)) - BAD
        assert all(count == 1 for count in seqs.values()), seqs.most_common(3)
        assert len(outputs.records) == GOOD
        assert all(dict(m.headers())["ios-message-id"] for m in outputs.records)

        dead_seqs = Counter(m.value().decode() for m in dead.records)
        assert sorted(dead_seqs) == sorted(f'{{"seq": {n}, broken' for n in BAD)
        assert all(count == 1 for count in dead_seqs.values())
        assert {dict(m.headers())["ios-dlq-code"] for m in dead.records} == {b"MALFORMED_JSON"}

        assert count_messages(settings) == TOTAL
        # received, transformed, delivered for each good record; dead_lettered for a bad one
        assert _events_per_message_and_type(settings) == Counter({1: 3 * GOOD + len(BAD)})
        with capsys.disabled():
            print(f"\n[exactly-once kill] killed after {kills[0]} and {kills[1]} committed "
                  f"outputs; read_committed saw {len(outputs.records)} outputs for {GOOD} "
                  f"records; read_uncommitted saw {uncommitted_seen} (records of aborted "
                  f"transactions: {uncommitted_seen - GOOD})")
    finally:
        for reader in (outputs, uncommitted, dead):
            reader.close()


def test_a_record_the_target_refuses_is_dead_lettered_and_the_rest_flow(worker,
                                                                        platform_env):
    """The broker refuses one output (larger than the target topic allows): that aborts
    the transaction; the re-run dead-letters that message and commits the others."""
    settings = Settings.from_env()
    source, target = f"{settings.topic_prefix}.in", f"{settings.topic_prefix}.out"
    _create_topics(settings, (source, 1, {}),
                   (target, 2, {"max.message.bytes": str(100_000)}))
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for n in range(30):
        record = {"seq": n, "email": f"e{n}@ex"}
        if n == 12:
            record["blob"] = os.urandom(60_000).hex()  # 120 kB, barely compressible
        producer.produce(source, key=f"k{n % 3}".encode(), value=json.dumps(record).encode())
    producer.flush(30)
    outputs = TopicReader(settings.kafka_bootstrap, target)
    dead = TopicReader(settings.kafka_bootstrap, DEAD_LETTER.name(settings.topic_prefix))
    try:
        configure_kafka_to_kafka(settings, source, target, EXPRESSION)
        wait_for(lambda: dead.poll() >= 1, 120, "the dead letter")
        wait_for(lambda: outputs.poll() >= 29, 60, "the other outputs")
        wait_for(lambda: count_messages(settings, "DELIVERED") == 29, 60, "projections")
        for _ in range(4):
            outputs.poll()
            dead.poll()
        assert sorted(json.loads(m.value())["seq"] for m in outputs.records) == [
            n for n in range(30) if n != 12]
        assert len(dead.records) == 1
        headers = dict(dead.records[0].headers())
        assert headers["ios-dlq-code"] == b"KAFKA_MSG_SIZE_TOO_LARGE"
        assert json.loads(dead.records[0].value())["seq"] == 12
        assert count_messages(settings, "DEAD_LETTERED") == 1
    finally:
        outputs.close()
        dead.close()


def test_projections_skip_events_of_aborted_transactions(worker, platform_env, tmp_path):
    settings = Settings.from_env()
    topic = MESSAGE_EVENTS.name(settings.topic_prefix)

    def received(message_id: str) -> Event:
        return Event(t.MESSAGE_RECEIVED, "acme", message_id, {
            "messageId": message_id, "integrationId": "int_x", "key": None,
            "payloadJson": "{}", "contentType": "application/json", "source": "test"})

    def produce(producer: Producer, event: Event) -> None:
        producer.produce(topic, key=event.aggregate_id.encode(), value=codec.encode(event),
                         headers=codec.headers_for(event), partition=0)

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap,
                         "transactional.id": f"{settings.topic_prefix}-abort-test"})
    producer.init_transactions(30)
    producer.begin_transaction()
    produce(producer, received("msg_aborted"))
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()  # after the aborted one, same partition; ends in a marker
    produce(producer, received("msg_committed"))
    producer.commit_transaction(30)

    def projected_ids(url: str) -> set[str]:
        engine = open_database(url)
        try:
            with engine.connect() as conn:
                return {r.id for r in conn.execute(select(messages.c.id))}
        finally:
            engine.dispose()

    wait_for(lambda: "msg_committed" in projected_ids(settings.database_url), 60,
             "the committed event")
    assert projected_ids(settings.database_url) == {"msg_committed"}
    # and a rebuild from the log reads as the live projection did (and finds the end)
    rebuilt = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    engine = open_database(rebuilt)
    try:
        assert rebuild(engine, settings.kafka_bootstrap, [topic]) == 1
    finally:
        engine.dispose()
    assert projected_ids(rebuilt) == {"msg_committed"}


def _binding(source: dict[str, object], target_type: str | None,
             target: dict[str, object] | None) -> SourceBinding:
    return SourceBinding("int_1", "acme", "con_src", "KAFKA", json.dumps(source), None,
                         (1, 1, 1), target_type, json.dumps(target) if target else None)


def test_the_rule_for_when_exactly_once_applies():
    platform = "127.0.0.1:19092"
    assert runs_exactly_once(_binding({"topic": "a"}, "KAFKA", {"topic": "b"}), platform)
    assert runs_exactly_once(_binding({"topic": "a", "bootstrapServers": platform}, "KAFKA",
                                      {"topic": "b", "bootstrapServers": platform}), platform)
    # a target (or source) on another cluster cannot join the platform's transaction
    assert not runs_exactly_once(_binding({"topic": "a"}, "KAFKA",
                                          {"topic": "b", "bootstrapServers": "other:9092"}),
                                 platform)
    assert not runs_exactly_once(_binding({"topic": "a", "bootstrapServers": "other:9092"},
                                          "KAFKA", {"topic": "b"}), platform)
    assert not runs_exactly_once(_binding({"topic": "a"}, "KAFKA",
                                          {"topic": "b", "exactlyOnce": False}), platform)
    assert not runs_exactly_once(_binding({"topic": "a"}, "KAFKA",
                                          {"topic": "b", "acks": "1"}), platform)
    assert not runs_exactly_once(_binding({"topic": "a"}, "HTTP", {"url": "http://x"}),
                                 platform)
    assert not runs_exactly_once(_binding({"topic": "a"}, None, None), platform)
