"""The monthly message count (store/usage.py), the retention purge (engine/retention.py) and
the release of quota-parked messages (engine/quota_release.py), on the real projection
tables, with events applied exactly as the worker applies them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from integrationos.engine.quota_release import release_requests
from integrationos.engine.replay_sources import select_parked
from integrationos.engine.retention import purge_batch
from integrationos.quota import month_end_ms, quota_state
from integrationos.store.database import open_database
from integrationos.store.projector import LogRecord, Projector, applied_through
from integrationos.store.tables import dlq_entries, message_events, messages, replays
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.conftest import fresh_postgres_database

DAY_MS = 24 * 60 * 60 * 1000
FEB_10 = int(datetime(2026, 2, 10, tzinfo=UTC).timestamp() * 1000)
MARCH_1 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "postgresql":
        url = fresh_postgres_database(f"usage_{uuid.uuid4().hex[:12]}")
    else:
        url = f"sqlite:///{tmp_path / 'usage.db'}"
    engine = open_database(url)
    yield engine
    engine.dispose()


def apply(engine: Engine, *events: Event, topic: str = "t.message-events.v1") -> None:
    start = applied_through(engine, topic, 0)
    Projector(engine).apply(LogRecord(topic, 0, start + n, codec.encode(e))
                            for n, e in enumerate(events))


def tenant(engine: Engine, tenant_id: str, plan: str = "free", **overrides: int) -> None:
    apply(engine, Event(t.TENANT_CREATED, tenant_id, tenant_id,
                        {"id": tenant_id, "name": tenant_id, "plan": plan}),
          topic="t.config.v1")
    if overrides:
        change_plan(engine, tenant_id, plan, **overrides)


def change_plan(engine: Engine, tenant_id: str, plan: str, **overrides: int) -> None:
    data = {"id": tenant_id, "plan": plan, "messagesPerMonth": None, "requestsPerMinute": None,
            "connectors": None, "retentionDays": None} | overrides
    apply(engine, Event(t.TENANT_PLAN_CHANGED, tenant_id, tenant_id, data),
          topic="t.config.v1")


def received(tenant_id: str, message_id: str, at: int) -> Event:
    return Event(t.MESSAGE_RECEIVED, tenant_id, message_id, {
        "messageId": message_id, "integrationId": "int_1", "key": None,
        "payloadJson": "{}", "source": "kafka:0/1", "contentType": "application/json"},
        occurred_at_ms=at)


def parked(tenant_id: str, message_id: str, at: int, code: str = "QUOTA_EXCEEDED") -> Event:
    return Event(t.MESSAGE_PARKED, tenant_id, message_id, {
        "messageId": message_id, "integrationId": "int_1", "reason": code, "code": code,
        "message": "held"}, occurred_at_ms=at)


def replayed(tenant_id: str, message_id: str, at: int) -> Event:
    return Event(t.MESSAGE_REPLAYED, tenant_id, message_id, {
        "messageId": message_id, "integrationId": "int_1", "replayId": "rpl_1",
        "payloadJson": None}, occurred_at_ms=at)


def dead_lettered(tenant_id: str, message_id: str, at: int) -> Event:
    return Event(t.MESSAGE_DEAD_LETTERED, tenant_id, message_id, {
        "messageId": message_id, "integrationId": "int_1", "stage": "deliver",
        "code": "HTTP_400", "message": "bad", "dlqTopic": "t.dlq.v1"}, occurred_at_ms=at)


def used(engine: Engine, tenant_id: str, at: int) -> int:
    return quota_state(engine, tenant_id, at).used


def test_each_message_counts_once_in_the_month_it_was_received(engine):
    tenant(engine, "acme")
    apply(engine, received("acme", "m1", FEB_10), received("acme", "m2", FEB_10 + 1),
          received("acme", "m1", FEB_10 + 2),  # the same message again (a re-run batch)
          received("acme", "m3", MARCH_1 + 5), received("globex", "g1", FEB_10))
    assert used(engine, "acme", FEB_10) == 2
    assert used(engine, "acme", MARCH_1 + 10) == 1
    assert used(engine, "globex", FEB_10) == 1


def test_replays_and_other_parking_do_not_count(engine):
    tenant(engine, "acme")
    apply(engine, received("acme", "m1", FEB_10), dead_lettered("acme", "m1", FEB_10 + 1),
          replayed("acme", "m1", FEB_10 + 2), parked("acme", "m1", FEB_10 + 3,
                                                    "INTEGRATION_PAUSED"),
          replayed("acme", "m1", FEB_10 + 4))
    assert used(engine, "acme", FEB_10) == 1


def test_a_message_parked_over_quota_counts_only_when_it_is_released(engine):
    tenant(engine, "acme")
    apply(engine, received("acme", "m1", FEB_10), parked("acme", "m1", FEB_10 + 1))
    assert used(engine, "acme", FEB_10) == 0
    apply(engine, parked("acme", "m1", FEB_10 + 2))  # a duplicate parking takes nothing more
    assert used(engine, "acme", FEB_10) == 0
    apply(engine, replayed("acme", "m1", MARCH_1 + 1))  # released in March: March's quota
    assert (used(engine, "acme", FEB_10), used(engine, "acme", MARCH_1 + 2)) == (0, 1)
    apply(engine, parked("acme", "m1", MARCH_1 + 3))  # still over: parked again, given back
    assert used(engine, "acme", MARCH_1 + 4) == 0


def test_the_quota_follows_the_plan_and_its_overrides(engine):
    tenant(engine, "acme")
    assert quota_state(engine, "acme", FEB_10).limit == 10_000
    change_plan(engine, "acme", "pro")
    assert quota_state(engine, "acme", FEB_10).limit == 500_000
    change_plan(engine, "acme", "pro", messagesPerMonth=-1)
    assert quota_state(engine, "acme", FEB_10).limit is None
    change_plan(engine, "acme", "free", messagesPerMonth=2)
    apply(engine, received("acme", "m1", FEB_10), received("acme", "m2", FEB_10))
    state = quota_state(engine, "acme", FEB_10)
    assert (state.limit, state.used, state.allows()) == (2, 2, False)
    assert state.resets_at_ms == MARCH_1 == month_end_ms(FEB_10)


def _rows(engine: Engine, table, tenant_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(
            table.c.tenant_id == tenant_id)).scalar_one()


def test_the_purge_deletes_what_is_older_than_each_tenants_retention_in_batches(engine):
    now = FEB_10 + 60 * DAY_MS
    tenant(engine, "free-co")  # 7 days
    tenant(engine, "pro-co", "pro")  # 30 days
    tenant(engine, "custom-co", "pro", retentionDays=3)
    for tenant_id in ("free-co", "pro-co", "custom-co"):
        apply(engine, *[received(tenant_id, f"{tenant_id}-old{n}", now - 10 * DAY_MS)
                        for n in range(5)],
              received(tenant_id, f"{tenant_id}-dl", now - 10 * DAY_MS),
              dead_lettered(tenant_id, f"{tenant_id}-dl", now - 10 * DAY_MS),
              received(tenant_id, f"{tenant_id}-new", now - 2 * DAY_MS))
    _quota_parked(engine, "free-co", "parked-long-ago", now - 50 * DAY_MS)
    rounds = []
    while (deleted := purge_batch(engine, now, batch=2)) > 0:
        rounds.append(deleted)
    assert len(rounds) >= 3  # bounded: 6 expired messages per tenant, 2 per round
    # two tenants: 6 messages, their 7 events (one dead-lettered) and 1 DLQ entry each
    assert sum(rounds) == 2 * (6 + 7 + 1)
    for tenant_id, kept, events in (("free-co", 2, 3), ("pro-co", 7, 8), ("custom-co", 1, 1)):
        assert _rows(engine, messages, tenant_id) == kept
        assert _rows(engine, message_events, tenant_id) == events
    assert _rows(engine, dlq_entries, "pro-co") == 1
    assert _rows(engine, dlq_entries, "free-co") == 0
    with engine.connect() as conn:
        left = {r.id for r in conn.execute(select(messages.c.id).where(
            messages.c.tenant_id == "free-co"))}
    assert left == {"free-co-new", "parked-long-ago"}  # a parked message waits to be sent


def _quota_parked(engine: Engine, tenant_id: str, message_id: str, at: int) -> None:
    apply(engine, received(tenant_id, message_id, at), parked(tenant_id, message_id, at + 1))


def test_quota_parked_messages_are_released_once_the_quota_allows(engine):
    tenant(engine, "acme", messagesPerMonth=1)
    apply(engine, received("acme", "m0", FEB_10))
    _quota_parked(engine, "acme", "m1", FEB_10 + 10)
    _quota_parked(engine, "acme", "m2", FEB_10 + 20)
    assert release_requests(engine, FEB_10 + 30) == []  # 1 of 1 used: nothing to release
    change_plan(engine, "acme", "free", messagesPerMonth=100)
    [request] = release_requests(engine, FEB_10 + 40)
    assert request.type == t.MESSAGE_REPLAY_REQUESTED
    assert (request.tenant, request.data["kind"], request.data["integrationId"],
            request.data["messageIds"]) == ("acme", "PARKED", "int_1", ["m1", "m2"])
    assert release_requests(engine, FEB_10 + 50)[0].aggregate_id == request.aggregate_id
    apply(engine, request, topic="t.replays.v1")  # recorded: PENDING until it runs
    assert release_requests(engine, FEB_10 + 60) == []
    apply(engine, Event(t.REPLAY_COMPLETED, "acme", request.aggregate_id, {
        "replayId": request.aggregate_id, "status": "COMPLETED", "total": 0, "sent": 0,
        "skipped": 0, "error": None}), topic="t.replays.v1")
    assert release_requests(engine, FEB_10 + 70) == []  # released once this minute
    [later] = release_requests(engine, FEB_10 + 60_000)  # still parked: the next minute's
    assert later.aggregate_id != request.aggregate_id


def test_a_release_sends_only_as_many_as_the_quota_has_room_for(engine):
    tenant(engine, "acme", messagesPerMonth=1)
    apply(engine, received("acme", "m0", FEB_10))
    for n in range(1, 4):
        _quota_parked(engine, "acme", f"m{n}", FEB_10 + 10 * n)
    change_plan(engine, "acme", "free", messagesPerMonth=3)
    [request] = release_requests(engine, FEB_10 + 100)
    assert request.data["messageIds"] == ["m1", "m2"]  # the oldest two: 1 + 2 = 3


def test_resuming_an_integration_does_not_release_messages_parked_over_quota(engine):
    tenant(engine, "acme")
    apply(engine, received("acme", "p1", FEB_10),
          parked("acme", "p1", FEB_10 + 1, "INTEGRATION_PAUSED"))
    _quota_parked(engine, "acme", "q1", FEB_10 + 2)
    assert select_parked(engine, "acme", "rpl_r", "int_1").to_send == ["p1"]
    assert select_parked(engine, "acme", "rpl_q", "int_1", ["q1", "p0"]).to_send == ["q1"]


def test_a_new_month_releases_what_the_last_one_parked(engine):
    tenant(engine, "acme", messagesPerMonth=1)
    apply(engine, received("acme", "m0", FEB_10))
    _quota_parked(engine, "acme", "m1", FEB_10 + 10)
    assert release_requests(engine, FEB_10 + 20) == []
    assert len(release_requests(engine, MARCH_1 + 1)) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(replays)).scalar_one() == 0
