"""The pipeline parks a source's messages while the tenant is over its monthly quota, and
only those: HTTP messages (checked by the API), retries and replays (counted when first
received, or released only as far as the quota has room) go on.

The pipeline runs with a recording producer and a paused integration, so a message that
passes the quota is parked for the pause instead, which tells the two apart without a
target or a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine

from integrationos.engine.pipeline import IngestRecord, Pipeline
from integrationos.quota import MessageQuota
from integrationos.store.database import open_database
from integrationos.store.projector import LogRecord, Projector
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event


class RecordingProducer:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def append(self, _topic: str, event: Event) -> asyncio.Future[tuple[int, int]]:
        self.events.append(event)
        done: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        done.set_result((0, len(self.events)))
        return done


class PausedCatalog:
    def cached(self, tenant: str, integration_id: str) -> tuple[bool, Any]:
        return True, SimpleNamespace(id=integration_id, tenant=tenant, status="PAUSED")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'quota.db'}")
    Projector(engine).apply(LogRecord("c", 0, n, codec.encode(e)) for n, e in enumerate([
        Event(t.TENANT_CREATED, "acme", "acme", {"id": "acme", "name": "Acme", "plan": "free"}),
        Event(t.TENANT_PLAN_CHANGED, "acme", "acme", {
            "id": "acme", "plan": "free", "messagesPerMonth": 2, "requestsPerMinute": None,
            "connectors": None, "retentionDays": None}),
    ]))
    yield engine
    engine.dispose()


def record(offset: int, source: str = "kafka:0/1", **extra: str) -> IngestRecord:
    headers = {"ios-tenant": b"acme", "ios-integration": b"int_1",
               "ios-message-id": f"msg_{offset}".encode(), "ios-source": source.encode(),
               **{k: v.encode() for k, v in extra.items()}}
    # a key per record: the pipeline runs them concurrently, as it does different keys
    return IngestRecord("ios.ingest.v1", 0, offset, f"k{offset}".encode(), b"{}", headers)


def parked_codes(engine: Engine, records: list[IngestRecord]) -> dict[str, str]:
    producer = RecordingProducer()
    pipeline = Pipeline(producer, PausedCatalog(), None, None, "ios",  # type: ignore[arg-type]
                        MessageQuota(engine))
    asyncio.run(pipeline.process_batch(records))
    return {e.data["messageId"]: e.data["code"] for e in producer.events
            if e.type == t.MESSAGE_PARKED}


def test_source_messages_past_the_quota_are_parked_not_dropped(engine):
    codes = parked_codes(engine, [record(n) for n in range(6)])
    assert len(codes) == 6
    assert sorted(codes.values()) == ["INTEGRATION_PAUSED"] * 2 + ["QUOTA_EXCEEDED"] * 4


def test_http_messages_retries_and_replays_are_not_checked(engine):
    codes = parked_codes(engine, [
        record(0), record(1),  # the quota's two messages
        record(2, source="http"),
        record(3, **{"ios-attempt": "2"}),
        record(4, source="replay", **{"ios-replay-id": "rpl_1"}),
        record(5),
    ])
    assert codes["msg_2"] == codes["msg_3"] == codes["msg_4"] == "INTEGRATION_PAUSED"
    assert sorted(codes[f"msg_{n}"] for n in (0, 1, 5)) == [
        "INTEGRATION_PAUSED", "INTEGRATION_PAUSED", "QUOTA_EXCEEDED"]


def test_concurrent_messages_share_one_read_of_the_count(engine, monkeypatch):
    """A batch's messages find the view stale together: one database read serves them all,
    and the quota (2) still holds across them."""
    import integrationos.quota as quota

    reads: list[str] = []

    def counted(engine_: Engine, tenant: str, now_ms: int | None = None) -> quota.QuotaState:
        reads.append(tenant)
        return quota_state(engine_, tenant, now_ms)

    quota_state = quota.quota_state
    monkeypatch.setattr(quota, "quota_state", counted)
    message_quota = MessageQuota(engine)

    async def admit_many() -> list[Any]:
        return await asyncio.gather(*(message_quota.admit("acme") for _ in range(50)))

    outcomes = asyncio.run(admit_many())
    assert reads == ["acme"]
    assert sum(outcome is None for outcome in outcomes) == 2
    assert {outcome.limit for outcome in outcomes if outcome is not None} == {2}
