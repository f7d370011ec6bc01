"""Failures end where the error strategy says, with the reason recorded, and the worker
keeps going. Real worker, real broker, a real HTTP target answering errors."""

from __future__ import annotations

import json

from sqlalchemy import select

from integrationos.engine.catalog import FlowCatalog
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import message_events, messages
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer
from tests.support import RecordingTarget, configure_flow, count_messages, ingest, wait_for


def _rows(settings: Settings) -> tuple[list, list]:
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        msgs = list(conn.execute(select(messages).order_by(messages.c.received_at)))
        events = list(conn.execute(select(message_events).order_by(message_events.c.occurred_at)))
    engine.dispose()
    return msgs, events


def _failed_attempts(events: list, message_id: str) -> list[dict]:
    return [json.loads(e.data_json) for e in events
            if e.message_id == message_id and e.event_type == "message.failed"]


def test_retryable_target_error_is_retried_three_times_then_dead_lettered(worker, platform_env):
    settings = Settings.from_env()
    target = RecordingTarget(status=503)
    try:
        configure_flow(settings, target.url, strategy="RETRY_3_DLQ")
        ingest(settings, [json.dumps({"nome_completo": "A B", "email": "a@b"}).encode()])
        wait_for(lambda: count_messages(settings, "DEAD_LETTERED") == 1, 60, "a dead letter")
        msgs, events = _rows(settings)
        attempts = _failed_attempts(events, msgs[0].id)
        assert [a["attempt"] for a in attempts] == [1, 2, 3]
        assert {a["errorClass"] for a in attempts} == {"RETRYABLE"}
        assert len(target.received) == 3 and len(set(target.keys())) == 1
    finally:
        target.close()


def test_permanent_target_error_is_not_retried(worker, platform_env):
    settings = Settings.from_env()
    target = RecordingTarget(status=400)
    try:
        configure_flow(settings, target.url, strategy="RETRY_3_DLQ")
        ingest(settings, [json.dumps({"nome_completo": "A B"}).encode()])
        wait_for(lambda: count_messages(settings, "DEAD_LETTERED") == 1, 60, "a dead letter")
        msgs, events = _rows(settings)
        attempts = _failed_attempts(events, msgs[0].id)
        assert [(a["attempt"], a["errorClass"]) for a in attempts] == [(1, "PERMANENT")]
        assert len(target.received) == 1
    finally:
        target.close()


def test_retry_without_dlq_parks_the_message_as_failed(worker, platform_env):
    settings = Settings.from_env()
    target = RecordingTarget(status=503)
    try:
        configure_flow(settings, target.url, strategy="RETRY_2")
        ingest(settings, [json.dumps({"nome_completo": "A B"}).encode()])
        wait_for(lambda: len(target.received) == 2 and count_messages(settings, "FAILED") == 1,
                 60, "two attempts and a failed message")
        assert count_messages(settings, "DEAD_LETTERED") == 0
    finally:
        target.close()


def test_jsonata_runtime_error_dead_letters_that_message_only(worker, platform_env):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url, expression='{"n": $number($.x)}')
        ingest(settings, [json.dumps({"x": "not a number"}).encode(),
                          json.dumps({"x": "42"}).encode()])
        wait_for(lambda: count_messages(settings, "DEAD_LETTERED") == 1
                 and count_messages(settings, "DELIVERED") == 1, 60, "one of each")
        msgs, _ = _rows(settings)
        dead = next(m for m in msgs if m.status == "DEAD_LETTERED")
        assert dead.last_error_code == "D3030"
        assert target.received[0]["body"] == {"n": 42}
        assert worker.process.poll() is None
    finally:
        target.close()


def test_runaway_expression_is_stopped_by_the_time_limit(worker, platform_env):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url,
                       expression="($f := function($x){ $f($x) + 1 }; $f(1))")
        ingest(settings, [b"{}"])
        wait_for(lambda: count_messages(settings, "DEAD_LETTERED") == 1, 60, "a dead letter")
        msgs, _ = _rows(settings)
        assert msgs[0].last_error_code in {"D1012", "D1011", "U1001"}
        assert target.received == []
    finally:
        target.close()


def test_hostile_expressions_fail_alone_while_the_worker_serves_other_messages(worker,
                                                                             platform_env):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url)  # int_1: the seed-like mapping
        log = LogProducer(settings.kafka_bootstrap)
        for integration_id, expression in (
            ("int_loop", "( $f := function($x){ $f($x) }; $f(1) )"),
            ("int_range", "[1..100000000]"),
        ):
            log.append_sync(CONFIG.name(settings.topic_prefix), Event(
                t.INTEGRATION_CREATED, "acme", integration_id, {
                    "id": integration_id, "name": integration_id, "environment": "DEV",
                    "sourceConnectorId": None, "targetConnectorId": "con_1",
                    "transformationId": None, "transformationVersion": None,
                    "expression": expression, "errorStrategy": "RETRY_3_DLQ", "version": 1}))
        log.close()
        wait_for(lambda: FlowCatalog(open_database(settings.database_url), ttl=0)
                 .lookup("acme", "int_range") is not None, 30, "the hostile integrations")
        good = [json.dumps({"nome_completo": f"G{n} H", "email": f"g{n}@x"}).encode()
                for n in range(100)]
        ingest(settings, good[:50])
        ingest(settings, [b"{}"] * 3, integration="int_loop")
        ingest(settings, [b"{}"] * 3, integration="int_range")
        ingest(settings, good[50:])
        wait_for(lambda: count_messages(settings, "DELIVERED") == 100
                 and count_messages(settings, "DEAD_LETTERED") == 6, 120,
                 "100 deliveries and 6 dead letters")
        msgs, _ = _rows(settings)
        codes = {m.integration_id: m.last_error_code for m in msgs
                 if m.status == "DEAD_LETTERED"}
        assert codes["int_loop"] in {"D1012", "D1011"}
        assert codes["int_range"] == "D2014"
        assert len(target.received) == 100
        assert worker.process.poll() is None
    finally:
        target.close()
