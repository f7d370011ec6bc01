"""Non-blocking retries: a target down for a while loses nothing under RETRY_5_DLQ, and
messages of other flows keep moving while the retries wait in the delay tiers; with the
integration's own backoff, a longer outage than the defaults could span."""

from __future__ import annotations

import json
import threading
import time

from sqlalchemy import select

from integrationos.engine.catalog import FlowCatalog
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import messages
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer
from tests.support import RecordingTarget, configure_flow, ingest, wait_for

OUTAGE_S = 6


def _by_integration(settings: Settings, integration_id: str, status: str) -> int:
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(messages.c.id).where(
            messages.c.integration_id == integration_id, messages.c.status == status)).all()
    engine.dispose()
    return len(rows)


def add_healthy_flow(settings: Settings, target_url: str) -> None:
    """int_2 -> con_2, beside the flow configure_flow made; waits until the worker sees it."""
    log = LogProducer(settings.kafka_bootstrap)
    topic = CONFIG.name(settings.topic_prefix)
    log.append_sync(topic, Event(t.CONNECTOR_CREATED, "acme", "con_2", {
        "id": "con_2", "name": "healthy", "connectorType": "HTTP",
        "configJson": json.dumps({"url": target_url}), "credentials": None,
        "version": 1}))
    log.append_sync(topic, Event(t.INTEGRATION_CREATED, "acme", "int_2", {
        "id": "int_2", "name": "other", "environment": "DEV", "sourceConnectorId": None,
        "targetConnectorId": "con_2", "transformationId": None,
        "transformationVersion": None, "expression": None,
        "errorStrategy": "RETRY_5_DLQ", "version": 1}))
    log.close()
    wait_for(lambda: FlowCatalog(open_database(settings.database_url), ttl=0)
             .lookup("acme", "int_2") is not None, 30, "the healthy integration")
    time.sleep(1.5)  # the worker's catalog (1 s cache) sees int_2


def test_an_outage_spanned_by_retries_loses_nothing_and_blocks_no_one(worker, platform_env):
    settings = Settings.from_env()
    down, healthy = RecordingTarget(status=503), RecordingTarget()
    try:
        configure_flow(settings, down.url, strategy="RETRY_5_DLQ")  # int_1 -> con_1 (down)
        add_healthy_flow(settings, healthy.url)

        recover = threading.Timer(OUTAGE_S, lambda: setattr(down, "status", 200))
        started = time.monotonic()
        recover.start()
        values = [json.dumps({"nome_completo": f"R{n} S", "email": f"r{n}@x"}).encode()
                  for n in range(20)]
        ingest(settings, values)  # int_1: every first attempt hits the outage
        ingest(settings, values, integration="int_2")  # the same keys, another flow
        wait_for(lambda: _by_integration(settings, "int_2", "DELIVERED") == 20, 30,
                 "the other flow's 20 deliveries")
        others_done = time.monotonic() - started
        assert others_done < OUTAGE_S, "the healthy flow waited for the outage"

        wait_for(lambda: _by_integration(settings, "int_1", "DELIVERED") == 20, 60,
                 "every message of the flow whose target was down")
        assert _by_integration(settings, "int_1", "DEAD_LETTERED") == 0
        delivered_keys = {r["idempotency_key"] for r in down.received if r["body"]}
        assert len(delivered_keys) == 20
        assert len(down.received) > 20  # the failed attempts reached the target too
    finally:
        down.close()
        healthy.close()


LONG_OUTAGE_S = 30
SPANNING_BACKOFF = {"initialDelayMs": 4000, "maxDelayMs": 60_000, "multiplier": 2}
"""Attempts at about 0, 4, 12, 28 and 60 s (±20 %): the default backoff (1+2+4+8 s) would
dead-letter every message of a 30 s outage under RETRY_5_DLQ; this one spans it."""


def test_a_backoff_of_its_own_spans_a_thirty_second_outage(worker, platform_env):
    settings = Settings.from_env()
    down, healthy = RecordingTarget(status=503), RecordingTarget()
    recovered = threading.Event()
    recovered_at: list[float] = []

    def recover() -> None:
        down.status = 200
        recovered_at.append(time.monotonic())
        recovered.set()

    try:
        configure_flow(settings, down.url, strategy="RETRY_5_DLQ", backoff=SPANNING_BACKOFF)
        add_healthy_flow(settings, healthy.url)
        threading.Timer(LONG_OUTAGE_S, recover).start()
        values = [json.dumps({"nome_completo": f"L{n} M", "email": f"l{n}@x"}).encode()
                  for n in range(20)]
        ingest(settings, values)  # int_1: the target is down for the next 30 s
        ingest(settings, values, integration="int_2")
        wait_for(lambda: _by_integration(settings, "int_2", "DELIVERED") == 20, 60,
                 "the healthy flow's 20 deliveries")
        healthy_done = time.monotonic()

        wait_for(lambda: _by_integration(settings, "int_1", "DELIVERED") == 20, 150,
                 "every message of the flow whose target was down")
        assert recovered.is_set() and healthy_done < recovered_at[0], \
            "the healthy flow waited for the other flow's outage"
        assert _by_integration(settings, "int_1", "DEAD_LETTERED") == 0
        assert _by_integration(settings, "int_1", "FAILED") == 0
        answered: dict[str, list[int]] = {}
        for request in down.received:
            answered.setdefault(request["idempotency_key"], []).append(request["status"])
        assert len(answered) == 20
        assert all(statuses.count(200) == 1 for statuses in answered.values())  # once each
        assert all(statuses[-1] == 200 for statuses in answered.values())
        # Each message was retried through the outage (at least its first three attempts
        # fall inside it whatever the jitter), and none gave up.
        assert min(statuses.count(503) for statuses in answered.values()) >= 3
        all_done = time.monotonic()
        print(f"\n[30 s outage] healthy flow done {recovered_at[0] - healthy_done:.1f} s "
              f"before recovery; all 20 delivered {all_done - recovered_at[0]:.1f} s after "
              f"it; 503s per message {sorted({s.count(503) for s in answered.values()})}; "
              f"requests {len(down.received)}")
    finally:
        down.close()
        healthy.close()
