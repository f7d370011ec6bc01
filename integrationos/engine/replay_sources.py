"""What a replay sends: messages picked from the read models (dead-lettered or parked ones)
or records read back from the ingest topic (a stream replay), as records ready to go back
on the ingest topic under their original message ids.

Keeping the message id is what makes a replay safe: targets see the same idempotency key
as on every earlier attempt, so one they already applied is not applied twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import Engine, func, or_, select

from integrationos.engine.pipeline import IngestRecord
from integrationos.schemas.payloads import JSON_TYPES, media_type
from integrationos.store.dlq_queries import DEAD_LETTERED, DlqFilter, dead_lettered
from integrationos.store.tables import dlq_entries, message_events, messages
from integrationos.store.usage import QUOTA_EXCEEDED
from integrationos.topics import event_types as t

CHUNK = 500
_ROUTING_HEADERS = ("ios-attempt", "ios-retry-at", "ios-message-id", "ios-replay-id")


@dataclass(frozen=True)
class Resend:
    """One message on its way back to the ingest topic."""

    message_id: str
    integration_id: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    edited_payload_json: str | None = None


@dataclass(frozen=True)
class Selection:
    """Ids still to send, how many this replay already sent (before a crash), and how many
    it asked for but will not send (not waiting any more, or unknown)."""

    to_send: list[str]
    already_sent: int
    skipped: int


def select_dead_lettered(engine: Engine, tenant: str, replay_id: str, message_ids: list[str],
                         wanted: DlqFilter | None, requested_at_ms: int) -> Selection:
    """The DLQ entries a replay covers: the listed ids, or what the filter kept when the
    replay was requested (entries dead-lettered later are left for another replay)."""
    with engine.connect() as conn:
        if message_ids:
            rows = conn.execute(select(dlq_entries.c.id, dlq_entries.c.status,
                                       dlq_entries.c.replay_id).where(
                dlq_entries.c.tenant_id == tenant, dlq_entries.c.id.in_(message_ids))).all()
            waiting = {r.id for r in rows if r.status == DEAD_LETTERED}
            sent = sum(1 for r in rows if r.status != DEAD_LETTERED and r.replay_id == replay_id)
            return Selection([i for i in message_ids if i in waiting], sent,
                             len(message_ids) - len(waiting) - sent)
        statement = dead_lettered(tenant, wanted or DlqFilter()).where(
            dlq_entries.c.created_at <= requested_at_ms)
        ids = [r.id for r in conn.execute(statement.with_only_columns(dlq_entries.c.id)
                                          .order_by(dlq_entries.c.created_at, dlq_entries.c.id))]
        sent = conn.execute(select(func.count()).select_from(dlq_entries).where(
            dlq_entries.c.tenant_id == tenant, dlq_entries.c.replay_id == replay_id)).scalar_one()
        return Selection(ids, sent, 0)


def select_parked(engine: Engine, tenant: str, replay_id: str, integration_id: str,
                  message_ids: Sequence[str] = ()) -> Selection:
    """An integration's parked messages, oldest first. Without ``message_ids`` (a resumed
    integration): those parked for the pause or FAIL_FAST; messages parked over the monthly
    quota wait for a release that names them (engine/quota_release.py), which sends only
    as many as the quota has room for."""
    with engine.connect() as conn:
        parked = select(messages.c.id).where(
            messages.c.tenant_id == tenant, messages.c.integration_id == integration_id,
            messages.c.status == "PARKED")
        if message_ids:
            parked = parked.where(messages.c.id.in_(message_ids))
        else:
            parked = parked.where(or_(messages.c.last_error_code.is_(None),
                                      messages.c.last_error_code != QUOTA_EXCEEDED))
        ids = [r.id for r in conn.execute(
            parked.order_by(messages.c.received_at, messages.c.id))]
        sent = conn.execute(select(func.count()).select_from(messages).where(
            messages.c.tenant_id == tenant, messages.c.replay_id == replay_id)).scalar_one()
    return Selection(ids, sent, 0)


def load_resends(engine: Engine, tenant: str, replay_id: str, ids: Sequence[str],
                 edited_payload: str | None = None) -> list[Resend]:
    """The records to send for ``ids``, rebuilt from each message's ``message.received``
    event (payload, key, content type); ids without one, or without an integration, are
    left out (the caller counts them as skipped)."""
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(
            messages.c.id, messages.c.integration_id, messages.c.message_key,
            messages.c.payload_json).where(messages.c.tenant_id == tenant,
                                           messages.c.id.in_(ids)))}
        content_types = {r.message_id: json.loads(r.data_json).get("contentType")
                         for r in conn.execute(select(message_events.c.message_id,
                                                      message_events.c.data_json).where(
                             message_events.c.tenant_id == tenant,
                             message_events.c.message_id.in_(ids),
                             message_events.c.event_type == t.MESSAGE_RECEIVED))}
    resends = []
    for message_id in ids:
        row = rows.get(message_id)
        if row is None or row.integration_id is None or row.payload_json is None:
            continue
        content_type = content_types.get(message_id) or "application/json"
        payload_json = edited_payload if edited_payload is not None else row.payload_json
        resends.append(Resend(
            message_id, row.integration_id,
            None if row.message_key is None else row.message_key.encode(),
            _record_value(payload_json, content_type),
            _headers(tenant, row.integration_id, message_id, replay_id, content_type),
            edited_payload,
        ))
    return resends


def _record_value(payload_json: str, content_type: str) -> bytes:
    """The ingest record's bytes: JSON as JSON; other media types were kept as a string."""
    if media_type(content_type)[0] in JSON_TYPES:
        return payload_json.encode()
    text: Any = json.loads(payload_json)
    return str(text).encode()


def _headers(tenant: str, integration_id: str, message_id: str, replay_id: str,
             content_type: str) -> list[tuple[str, bytes]]:
    return [("ios-tenant", tenant.encode()), ("ios-integration", integration_id.encode()),
            ("ios-message-id", message_id.encode()), ("ios-content-type", content_type.encode()),
            ("ios-source", b"replay"), ("ios-replay-id", replay_id.encode())]


@dataclass(frozen=True)
class StreamStart:
    """Where a stream replay starts: a time (epoch ms) or an offset per ingest partition."""

    time_ms: int | None = None
    offsets: dict[int, int] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StreamStart:
        if "offsets" in data:
            return cls(offsets={int(p): int(o) for p, o in data["offsets"].items()})
        return cls(time_ms=int(data["time"]))


def read_stream(bootstrap: str, topic: str, tenant: str, integration_id: str, replay_id: str,
                start: StreamStart, until_ms: int | None) -> Iterator[list[Resend]]:
    """The integration's first passes on ``topic`` from ``start`` to the end the topic had
    when the replay began (or ``until_ms``), in chunks, each message once.

    Retry releases and earlier replays are the same messages again, so they are skipped;
    ids the producer did not set are derived from the record's position, as the pipeline
    derived them, so the target sees the same idempotency key.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ios-replay-{replay_id}",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        ends = _assign_range(consumer, topic, start)
        seen: set[str] = set()
        chunk: list[Resend] = []
        while ends:
            for msg in consumer.consume(CHUNK, timeout=1.0):
                if msg.error():
                    raise RuntimeError(str(msg.error()))
                tp = (msg.topic(), msg.partition())
                if tp not in ends or msg.offset() >= ends[tp]:
                    continue
                past_until = until_ms is not None and msg.timestamp()[1] > until_ms
                if past_until or msg.offset() + 1 >= ends[tp]:
                    del ends[tp]
                if past_until:
                    continue
                resend = _stream_resend(msg, tenant, integration_id, replay_id, seen)
                if resend is not None:
                    chunk.append(resend)
                if len(chunk) >= CHUNK:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk
    finally:
        consumer.close()


def _assign_range(consumer: Consumer, topic: str, start: StreamStart
                  ) -> dict[tuple[str, int], int]:
    """Assign every partition with records after ``start``; return each one's end offset."""
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    if start.offsets is not None:
        starts = [TopicPartition(topic, p, start.offsets.get(p, 0)) for p in partitions]
    else:
        starts = consumer.offsets_for_times(
            [TopicPartition(topic, p, start.time_ms or 0) for p in partitions], timeout=30)
    ends: dict[tuple[str, int], int] = {}
    assignment = []
    for tp in starts:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 30)
        first = max(tp.offset, low) if tp.offset >= 0 else high
        if first < high:
            ends[(topic, tp.partition)] = high
            assignment.append(TopicPartition(topic, tp.partition, first))
    consumer.assign(assignment)
    return ends


def _stream_resend(msg: Any, tenant: str, integration_id: str, replay_id: str,
                   seen: set[str]) -> Resend | None:
    headers = {k: v or b"" for k, v in (msg.headers() or [])}
    if (headers.get("ios-tenant") != tenant.encode()
            or headers.get("ios-integration") != integration_id.encode()
            or "ios-attempt" in headers or "ios-replay-id" in headers):
        return None
    record = IngestRecord(msg.topic(), msg.partition(), msg.offset(), msg.key(),
                          msg.value() or b"", headers)
    message_id = record.message_id
    if message_id in seen:
        return None
    seen.add(message_id)
    kept = [(k, v) for k, v in headers.items() if k not in _ROUTING_HEADERS]
    return Resend(message_id, integration_id, msg.key(), record.value,
                  [*kept, ("ios-message-id", message_id.encode()),
                   ("ios-replay-id", replay_id.encode())])
