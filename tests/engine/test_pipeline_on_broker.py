"""The pipeline on the real broker with a real worker process, driven by log records only."""

from __future__ import annotations

import json

from confluent_kafka import Producer
from sqlalchemy import select

from integrationos.connectors.credentials import CredentialVault
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import integrations, messages
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG, DEAD_LETTER, INGEST
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer
from tests.support import RecordingTarget, count_messages, wait_for

MAPPING = '{"FirstName": $substringBefore($.nome_completo, " "), "Email": $.email}'


def _configure(settings: Settings, target_url: str, strategy: str = "RETRY_3_DLQ") -> None:
    vault = CredentialVault.from_settings(settings)
    producer = LogProducer(settings.kafka_bootstrap)
    topic = CONFIG.name(settings.topic_prefix)
    producer.append_sync(topic, Event(t.CONNECTOR_CREATED, "acme", "con_1", {
        "id": "con_1", "name": "target", "connectorType": "HTTP",
        "configJson": json.dumps({"url": target_url}),
        "credentials": vault.seal({"bearerToken": "s3cr3t-token"}), "version": 1,
    }))
    producer.append_sync(topic, Event(t.INTEGRATION_CREATED, "acme", "int_1", {
        "id": "int_1", "name": "flow", "environment": "DEV", "sourceConnectorId": None,
        "targetConnectorId": "con_1", "transformationId": None, "expression": MAPPING,
        "errorStrategy": strategy, "version": 1,
    }))
    producer.close()
    engine = open_database(settings.database_url)

    def projected() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(integrations.c.id)).first() is not None

    wait_for(projected, 30, "the integration to be projected")
    engine.dispose()


def _ingest(settings: Settings, values: list[bytes], integration: str = "int_1") -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for n, value in enumerate(values):
        producer.produce(INGEST.name(settings.topic_prefix), key=f"k{n % 7}".encode(),
                         value=value,
                         headers=[("ios-tenant", b"acme"), ("ios-integration", integration.encode())])
    producer.flush(30)


def test_messages_from_a_kafka_producer_are_transformed_and_delivered(worker, platform_env):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        _configure(settings, target.url)
        payloads = [{"nome_completo": f"Ana Costa{n}", "email": f"a{n}@ex.pt"} for n in range(200)]
        _ingest(settings, [json.dumps(p).encode() for p in payloads])
        wait_for(lambda: count_messages(settings, "DELIVERED") == 200, 60, "200 deliveries")
        bodies = sorted(r["body"]["Email"] for r in target.received)
        assert bodies == sorted(p["email"] for p in payloads)
        assert all(r["body"]["FirstName"] == "Ana" for r in target.received)
        assert len(set(target.keys())) == 200
    finally:
        target.close()


def test_a_non_json_record_is_dead_lettered_and_the_next_one_still_flows(worker, platform_env):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        _configure(settings, target.url)
        _ingest(settings, [b"\xff not json", json.dumps({"nome_completo": "A B"}).encode()])
        wait_for(lambda: count_messages(settings, "DEAD_LETTERED") == 1, 60, "a dead letter")
        wait_for(lambda: count_messages(settings, "DELIVERED") == 1, 60, "the good message")
        engine = open_database(settings.database_url)
        with engine.connect() as conn:
            row = conn.execute(select(messages).where(messages.c.status == "DEAD_LETTERED")).one()
        assert row.last_error_code == "MALFORMED_JSON"
        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                             "group.id": "dlq-check", "auto.offset.reset": "earliest"})
        consumer.subscribe([DEAD_LETTER.name(settings.topic_prefix)])
        record = wait_for(lambda: consumer.poll(1.0), 30, "the dead-letter record")
        consumer.close()
        assert record.value() == b"\xff not json"
        assert dict(record.headers())["ios-dlq-code"] == b"MALFORMED_JSON"
        assert worker.process.poll() is None
    finally:
        target.close()
