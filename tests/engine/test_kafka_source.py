"""An integration whose source is a Kafka topic: the worker consumes it into the pipeline."""

from __future__ import annotations

import json

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from integrationos.settings import Settings
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer
from tests.support import RecordingTarget, configure_flow, count_messages, wait_for


def read_topic_into_target(settings: Settings, source_topic: str) -> None:
    """A KAFKA source connector on ``source_topic`` and an integration from it to con_1."""
    log = LogProducer(settings.kafka_bootstrap)
    log.append_sync(CONFIG.name(settings.topic_prefix), Event(
        t.CONNECTOR_CREATED, "acme", "con_src", {
            "id": "con_src", "name": "orders", "connectorType": "KAFKA",
            "configJson": json.dumps({"topic": source_topic}), "credentials": None,
            "version": 1}))
    log.append_sync(CONFIG.name(settings.topic_prefix), Event(
        t.INTEGRATION_CREATED, "acme", "int_src", {
            "id": "int_src", "name": "from kafka", "environment": "DEV",
            "sourceConnectorId": "con_src", "targetConnectorId": "con_1",
            "transformationId": None, "transformationVersion": None,
            "expression": '{"Email": $.email}', "errorStrategy": "RETRY_3_DLQ",
            "version": 1}))
    log.close()


def test_records_on_a_source_topic_flow_to_the_target(worker, platform_env):
    settings = Settings.from_env()
    source_topic = f"{settings.topic_prefix}.crm-changes"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics(
        [NewTopic(source_topic, num_partitions=2, replication_factor=1)])[source_topic].result(30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for n in range(150):  # published before the integration exists: read from the start
        producer.produce(source_topic, key=f"c{n % 5}".encode(),
                         value=json.dumps({"nome_completo": f"S{n} Z", "email": f"s{n}@ex"}))
    producer.flush(30)

    target = RecordingTarget()
    try:
        configure_flow(settings, target.url)
        read_topic_into_target(settings, source_topic)
        for n in range(150, 300):  # and while it runs
            producer.produce(source_topic, key=f"c{n % 5}".encode(),
                             value=json.dumps({"nome_completo": f"S{n} Z", "email": f"s{n}@ex"}))
        producer.flush(30)
        wait_for(lambda: count_messages(settings, "DELIVERED") == 300, 90, "300 deliveries")
        assert sorted(r["body"]["Email"] for r in target.received) == sorted(
            f"s{n}@ex" for n in range(300))
        assert len(set(target.keys())) == 300
    finally:
        target.close()


def test_a_worker_killed_while_consuming_a_source_topic_loses_nothing(worker, platform_env,
                                                                      capsys):
    settings = Settings.from_env()
    source_topic = f"{settings.topic_prefix}.orders-in"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics(
        [NewTopic(source_topic, num_partitions=3, replication_factor=1)])[source_topic].result(30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for n in range(3000):
        producer.produce(source_topic, key=f"o{n % 50}".encode(),
                         value=json.dumps({"nome_completo": f"K{n} Z", "email": f"k{n}@ex"}))
        producer.poll(0)
    producer.flush(30)
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url)
        read_topic_into_target(settings, source_topic)
        wait_for(lambda: len(target.received) >= 300, 120, "the first deliveries")
        worker.kill()
        before = len(target.received)
        assert before < 3000, "the kill came too late to test anything"
        worker.start()
        wait_for(lambda: count_messages(settings, "DELIVERED") == 3000, 240, "every record")
        emails = [r["body"]["Email"] for r in target.received]
        assert set(emails) == {f"k{n}@ex" for n in range(3000)}
        by_key: dict[str, set[str]] = {}
        for r in target.received:
            by_key.setdefault(r["idempotency_key"], set()).add(r["body"]["Email"])
        assert len(by_key) == 3000 and all(len(v) == 1 for v in by_key.values())
        with capsys.disabled():
            print(f"\n[kafka source kill] killed after {before} deliveries; "
                  f"{len(emails)} deliveries for 3000 records, "
                  f"{len(emails) - 3000} duplicates (same idempotency keys)")
    finally:
        target.close()
