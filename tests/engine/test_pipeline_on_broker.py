"""The pipeline on the real broker with a real worker process, driven by log records only."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import messages
from integrationos.topics.catalog import DEAD_LETTER
from tests.support import RecordingTarget, configure_flow, count_messages, ingest, wait_for


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_messages_from_a_kafka_producer_are_transformed_and_delivered(worker, platform_env):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url)
        payloads = [{"nome_completo": f"Ana Costa{n}", "email": f"a{n}@ex.pt"} for n in range(200)]
        ingest(settings, [json.dumps(p).encode() for p in payloads])
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
        configure_flow(settings, target.url)
        ingest(settings, [b"\xff not json", json.dumps({"nome_completo": "A B"}).encode()])
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
