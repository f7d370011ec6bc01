"""Lifecycle events applied in runs leave exactly the rows that applying them one at a time
leaves, on SQLite and PostgreSQL, including the awkward cases of a real log: duplicates
inside a batch and across batches, a late duplicate of an early event after delivery,
a failure before delivery, events interleaved with other message events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from integrationos.store.database import open_database
from integrationos.store.projections import apply_event
from integrationos.store.projector import LogRecord, Projector
from integrationos.store.tables import dlq_entries, message_events, messages, usage_counters
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.conftest import fresh_postgres_database

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _event(type_: str, message_id: str, data: dict[str, Any], at: int,
           tenant: str = "acme") -> Event:
    return Event(type_, tenant, message_id,
                 {"messageId": message_id, "integrationId": "int_1", **data},
                 occurred_at_ms=at)


def _received(message_id: str, at: int, tenant: str = "acme") -> Event:
    return _event(t.MESSAGE_RECEIVED, message_id, {
        "key": f"k-{message_id}", "payloadJson": '{"n": 1}', "source": "http",
        "contentType": "application/json"}, at, tenant)


def _transformed(message_id: str, at: int) -> Event:
    return _event(t.MESSAGE_TRANSFORMED, message_id, {"outputJson": '{"N": 1}',
                                                      "durationUs": 5}, at)


def _delivered(message_id: str, at: int, attempt: int = 1) -> Event:
    return _event(t.MESSAGE_DELIVERED, message_id, {
        "attempt": attempt, "target": "kafka:out", "detail": "ok"}, at)


def _failed(message_id: str, at: int, attempt: int) -> Event:
    return _event(t.MESSAGE_FAILED, message_id, {
        "attempt": attempt, "stage": "deliver", "errorClass": "RetryableError",
        "code": "HTTP_503", "message": "busy"}, at)


def _dead_lettered(message_id: str, at: int) -> Event:
    return _event(t.MESSAGE_DEAD_LETTERED, message_id, {
        "stage": "deliver", "code": "HTTP_422", "message": "refused",
        "dlqTopic": "p.dlq"}, at)


def _log() -> list[Event]:
    """A log with every case the runs must get right."""
    a_received = _received("m_a", T0)
    b_received = _received("m_b", T0 + 1)
    log = [
        a_received, b_received,
        _transformed("m_a", T0 + 2), _transformed("m_b", T0 + 3),
        a_received,  # redelivered in the same batch: once only
        _delivered("m_a", T0 + 4),
        _failed("m_b", T0 + 5, attempt=1),
        _failed("m_b", T0 + 6, attempt=2),
        _dead_lettered("m_b", T0 + 7),  # another handler between two runs
        _received("m_c", T0 + 8),
        _transformed("m_a", T0 + 9),  # a late duplicate after delivery: output only
        _received("m_d", T0 + 10, tenant="globex"),
        _failed("m_d", T0 + 11, attempt=1),
        _delivered("m_d", T0 + 12, attempt=2),
        _delivered("m_e", T0 + 13),  # delivered with no received seen (trimmed log)
        b_received,  # a redelivery after it was dead-lettered: counted once, not regressed
        _received("m_f", 1_769_904_000_000),  # 2026-02-01: another month's quota
        _received("m_g", T0 + 14),
        _delivered("m_g", T0 + 15),
        _transformed("m_g", T0 + 16),  # late, in the same run as its delivery
    ]
    return log


def _records(events: list[Event]) -> list[LogRecord]:
    return [LogRecord("p.message-events", 0, offset, codec.encode(event))
            for offset, event in enumerate(events)]


def _tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            "messages": [tuple(row) for row in conn.execute(
                select(messages).order_by(messages.c.id))],
            "message_events": [tuple(row) for row in conn.execute(
                select(message_events).order_by(message_events.c.event_id))],
            "usage": [tuple(row) for row in conn.execute(
                select(usage_counters).order_by(usage_counters.c.tenant_id,
                                                usage_counters.c.month))],
            "dlq": [tuple(row) for row in conn.execute(select(dlq_entries))],
        }


def _one_at_a_time(engine: Engine, events: list[Event]) -> None:
    for event in events:
        with engine.begin() as conn:
            apply_event(conn, event)


@pytest.fixture(params=["sqlite", "postgresql"])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Engine]]:
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'runs.db'}", f"sqlite:///{tmp_path / 'single.db'}"]
    else:
        tag = uuid.uuid4().hex[:10]
        urls = [fresh_postgres_database(f"runs_{tag}_{n}")
                for n in (1, 2)]
    engines = [open_database(url) for url in urls]
    yield engines
    for engine in engines:
        engine.dispose()


@pytest.mark.parametrize("batch_size", [1000, 3])
def test_runs_leave_the_rows_one_at_a_time_leaves(two_databases: list[Engine],
                                                  batch_size: int):
    runs, single = two_databases
    events = _log()
    records = _records(events)
    projector = Projector(runs)
    for start in range(0, len(records), batch_size):
        projector.apply(records[start:start + batch_size])
    _one_at_a_time(single, events)

    assert _tables(runs) == _tables(single)
    with runs.connect() as conn:
        status = dict(conn.execute(select(messages.c.id, messages.c.status)).all())
        attempts = dict(conn.execute(select(messages.c.id, messages.c.attempts)).all())
        usage = conn.execute(select(usage_counters.c.tenant_id, usage_counters.c.month,
                                    usage_counters.c.messages)
                             .order_by(usage_counters.c.tenant_id, usage_counters.c.month)).all()
        history = conn.execute(select(message_events.c.event_type)
                               .where(message_events.c.message_id == "m_a")).scalars().all()
    assert status == {"m_a": "DELIVERED", "m_b": "DEAD_LETTERED", "m_c": "RECEIVED",
                      "m_d": "DELIVERED", "m_e": "DELIVERED", "m_f": "RECEIVED",
                      "m_g": "DELIVERED"}
    assert attempts["m_b"] == 2 and attempts["m_d"] == 2 and attempts["m_e"] == 1
    assert [tuple(row) for row in usage] == [("acme", "2026-01", 4), ("acme", "2026-02", 1),
                                             ("globex", "2026-01", 1)]
    # received, transformed, delivered, transformed again: the duplicate received is not
    assert sorted(history) == sorted([t.MESSAGE_RECEIVED, t.MESSAGE_TRANSFORMED,
                                      t.MESSAGE_DELIVERED, t.MESSAGE_TRANSFORMED])


def test_a_run_applied_again_changes_nothing(tmp_path: Path):
    """Replayed records (a rebalance before the offsets were stored elsewhere) are skipped
    by event id, not only by offset: a second projector over other offsets adds nothing."""
    engine = open_database(f"sqlite:///{tmp_path / 'again.db'}")
    events = _log()
    Projector(engine).apply(_records(events))
    before = _tables(engine)
    again = [LogRecord("p.message-events", 1, offset, record.value)
             for offset, record in enumerate(_records(events))]
    Projector(engine).apply(again)
    assert _tables(engine) == before
    engine.dispose()
