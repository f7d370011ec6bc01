"""The worker's catalog: an integration's own backoff reaches its error strategy, and a
FAIL_FAST pause the worker appended holds in that worker before the projection shows it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from integrationos.engine.catalog import FlowCatalog
from integrationos.engine.error_strategy import DEFAULT_BACKOFF, Backoff
from integrationos.store.database import open_database
from integrationos.store.projector import LogRecord, Projector, applied_through
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

INTEGRATION = {"id": "int_1", "name": "flow", "environment": "DEV", "sourceConnectorId": None,
               "targetConnectorId": None, "transformationId": None, "expression": "$",
               "errorStrategy": "FAIL_FAST", "version": 1}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield engine
    engine.dispose()


def _apply(engine: Engine, *events: Event) -> None:
    start = applied_through(engine, "cfg", 0)
    Projector(engine).apply(LogRecord("cfg", 0, start + n, codec.encode(e))
                            for n, e in enumerate(events))


def test_the_integrations_backoff_reaches_its_strategy(engine):
    own = {"initialDelayMs": 4000, "maxDelayMs": 60_000, "multiplier": 2.5}
    _apply(engine, Event(t.INTEGRATION_CREATED, "acme", "int_1", INTEGRATION),
           Event(t.INTEGRATION_CREATED, "acme", "int_2",
                 INTEGRATION | {"id": "int_2", "name": "own", "backoff": own}))
    catalog = FlowCatalog(engine, ttl=0)
    assert catalog.lookup("acme", "int_1").strategy.backoff == DEFAULT_BACKOFF
    assert catalog.lookup("acme", "int_2").strategy.backoff == Backoff(4000, 60_000, 2.5)


def test_a_pause_appended_here_holds_until_the_projection_shows_it(engine):
    _apply(engine, Event(t.INTEGRATION_CREATED, "acme", "int_1", INTEGRATION))
    catalog = FlowCatalog(engine, ttl=60)
    assert catalog.lookup("acme", "int_1").status == "ACTIVE"

    pause = Event(t.INTEGRATION_PAUSED, "acme", "int_1", {
        "id": "int_1", "reason": "FAIL_FAST", "messageId": "msg_1", "code": "HTTP_400",
        "message": "HTTP 400"}, occurred_at_ms=int(time.time() * 1000) + 1)
    assert catalog.pause_locally("acme", "int_1", pause.occurred_at_ms) is True
    assert catalog.pause_locally("acme", "int_1", pause.occurred_at_ms) is False  # once
    assert catalog.cached("acme", "int_1")[1].status == "PAUSED"  # the cached view, at once

    rereading = FlowCatalog(engine, ttl=0)
    rereading.pause_locally("acme", "int_1", pause.occurred_at_ms)
    assert rereading.lookup("acme", "int_1").status == "PAUSED"  # not projected yet
    _apply(engine, pause)
    assert rereading.lookup("acme", "int_1").status == "PAUSED"  # now from the projection
    _apply(engine, Event(t.INTEGRATION_RESUMED, "acme", "int_1", {"id": "int_1"},
                         occurred_at_ms=pause.occurred_at_ms + 1))
    assert rereading.lookup("acme", "int_1").status == "ACTIVE"  # the override is gone
    assert rereading.pause_locally("acme", "int_1", pause.occurred_at_ms + 2) is True
