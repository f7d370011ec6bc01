"""FAIL_FAST on the real broker: the first failure pauses the integration (with its reason),
that message and every later one is PARKED, nothing is dead-lettered, and other
integrations carry on."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import integrations, message_events, messages
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer
from tests.engine.test_retries import add_healthy_flow
from tests.support import (
    RecordingTarget,
    config_events,
    configure_flow,
    count_messages,
    ingest,
    wait_for,
)

MESSAGES = 12
KEYS = 7  # tests.support.ingest spreads records over keys k0..k6


def _integration(settings: Settings, integration_id: str):
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        row = conn.execute(select(integrations).where(
            integrations.c.id == integration_id)).one()
    engine.dispose()
    return row


def _messages_of(settings: Settings, integration_id: str) -> list:
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        rows = list(conn.execute(select(messages).where(
            messages.c.integration_id == integration_id)))
    engine.dispose()
    return rows


def _parked_events(settings: Settings) -> dict[str, dict]:
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        rows = list(conn.execute(select(message_events).where(
            message_events.c.event_type == t.MESSAGE_PARKED)))
    engine.dispose()
    return {row.message_id: json.loads(row.data_json) for row in rows}


def test_the_first_failure_pauses_the_integration_and_parks_its_messages(worker,
                                                                        platform_env):
    settings = Settings.from_env()
    rejecting, healthy = RecordingTarget(status=400), RecordingTarget()
    try:
        configure_flow(settings, rejecting.url, strategy="FAIL_FAST")  # int_1, answers 400
        add_healthy_flow(settings, healthy.url)  # int_2, RETRY_5_DLQ
        values = [json.dumps({"nome_completo": f"F{n} G", "email": f"f{n}@private.example"})
                  .encode() for n in range(MESSAGES)]
        ingest(settings, values)
        ingest(settings, values, integration="int_2")

        wait_for(lambda: sum(m.status == "PARKED" for m in _messages_of(settings, "int_1"))
                 == MESSAGES, 60, f"{MESSAGES} parked messages")
        wait_for(lambda: _integration(settings, "int_1").status == "PAUSED", 30, "the pause")
        wait_for(lambda: count_messages(settings, "DELIVERED") == MESSAGES, 60,
                 "the other integration's deliveries")

        paused = _integration(settings, "int_1")
        assert (paused.paused_reason, paused.paused_code) == ("FAIL_FAST", "HTTP_400")
        parked = _parked_events(settings)
        assert parked[paused.paused_message_id]["reason"] == "FAIL_FAST"
        failed_here = {k for k, p in parked.items() if p["reason"] == "FAIL_FAST"}
        assert {p["code"] for k, p in parked.items() if k in failed_here} == {"HTTP_400"}
        waiting = {k: p for k, p in parked.items() if k not in failed_here}
        assert {p["reason"] for p in waiting.values()} <= {"INTEGRATION_PAUSED"}
        # Only messages already in flight when the first one failed reached the target (at
        # most one per key running concurrently); every later one was parked untried.
        assert 1 <= len(rejecting.received) == len(failed_here) <= KEYS
        assert {r["status"] for r in rejecting.received} == {400}

        assert count_messages(settings, "DEAD_LETTERED") == 0
        assert count_messages(settings, "PARKED") == MESSAGES
        assert len(healthy.received) == MESSAGES
        pauses = config_events(settings, t.INTEGRATION_PAUSED)
        assert [p.data["reason"] for p in pauses] == ["FAIL_FAST"]  # one worker: one pause

        log = worker.log()
        alert = [line for line in log.splitlines() if "paused by FAIL_FAST" in line]
        assert len(alert) == 1 and "ERROR" in alert[0]
        assert "int_1" in alert[0] and "HTTP_400" in alert[0]
        assert "private.example" not in log and "s3cr3t-token" not in log
    finally:
        rejecting.close()
        healthy.close()


def test_messages_for_a_paused_integration_are_parked_whatever_its_strategy(worker,
                                                                          platform_env):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url, strategy="RETRY_3_DLQ")
        log = LogProducer(settings.kafka_bootstrap)
        log.append_sync(CONFIG.name(settings.topic_prefix), Event(
            t.INTEGRATION_PAUSED, "acme", "int_1", {"id": "int_1", "reason": "USER"}))
        log.close()
        wait_for(lambda: _integration(settings, "int_1").status == "PAUSED", 30, "the pause")
        time.sleep(1.5)  # the worker's catalog (1 s cache) sees it
        ingest(settings, [json.dumps({"nome_completo": f"P{n} Q"}).encode() for n in range(3)])
        wait_for(lambda: count_messages(settings, "PARKED") == 3, 60, "3 parked messages")
        assert {p["reason"] for p in _parked_events(settings).values()} == {
            "INTEGRATION_PAUSED"}
        assert count_messages(settings, "DEAD_LETTERED") == 0 and target.received == []
        assert _integration(settings, "int_1").paused_reason == "USER"
    finally:
        target.close()
