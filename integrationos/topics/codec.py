"""Avro encoding of events with fastavro.

Wire format: one format byte (``ENVELOPE_FORMAT_V1``), then the schemaless Avro envelope,
whose ``data`` field holds the event data encoded with its type's versioned schema.
Decoding upgrades old data versions to the current one through Avro schema resolution.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from functools import cache
from typing import Any

import fastavro

from integrationos.topics.envelope import Event
from integrationos.topics.schemas import (
    CURRENT_VERSION,
    ENVELOPE_FORMAT_V1,
    ENVELOPE_V1,
    EVENT_DATA_SCHEMAS,
)

_ENVELOPE = fastavro.parse_schema(ENVELOPE_V1)
_FORMAT_BYTE = bytes([ENVELOPE_FORMAT_V1])


class UndecodableEvent(ValueError):
    """A record on an event topic that is not a valid envelope of a known type."""


@cache
def _data_schema(type_: str, version: int) -> Any:
    try:
        return fastavro.parse_schema(EVENT_DATA_SCHEMAS[(type_, version)])
    except KeyError:
        raise UndecodableEvent(f"no schema for {type_} v{version}") from None


def _write(schema: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def encode(event: Event) -> bytes:
    data = _write(_data_schema(event.type, event.schema_version), event.data)
    envelope = {
        "eventId": event.event_id,
        "type": event.type,
        "schemaVersion": event.schema_version,
        "tenant": event.tenant,
        "aggregateId": event.aggregate_id,
        "occurredAt": event.occurred_at_ms,
        "causationId": event.causation_id,
        "correlationId": event.correlation_id,
        "traceparent": event.traceparent,
        "data": data,
    }
    return _FORMAT_BYTE + _write(_ENVELOPE, envelope)


def decode(raw: bytes) -> Event:
    if not raw or raw[0] != ENVELOPE_FORMAT_V1:
        raise UndecodableEvent("not an IntegrationOS envelope (bad format byte)")
    try:
        env = fastavro.schemaless_reader(io.BytesIO(raw[1:]), _ENVELOPE, _ENVELOPE)
        type_, version = env["type"], env["schemaVersion"]
        current = CURRENT_VERSION.get(type_)
        if current is None:
            raise UndecodableEvent(f"unknown event type {type_!r}")
        data = fastavro.schemaless_reader(
            io.BytesIO(env["data"]), _data_schema(type_, version), _data_schema(type_, current)
        )
    except UndecodableEvent:
        raise
    except Exception as exc:  # fastavro raises several types on truncated input
        raise UndecodableEvent(f"corrupt envelope: {exc}") from exc
    occurred = env["occurredAt"]
    if isinstance(occurred, datetime):
        occurred = int(occurred.replace(tzinfo=occurred.tzinfo or UTC).timestamp() * 1000)
    return Event(
        type=type_,
        tenant=env["tenant"],
        aggregate_id=env["aggregateId"],
        data=data,
        event_id=env["eventId"],
        schema_version=current,
        occurred_at_ms=occurred,
        causation_id=env["causationId"],
        correlation_id=env["correlationId"],
        traceparent=env["traceparent"],
    )


def headers_for(event: Event) -> list[tuple[str, bytes]]:
    """Kafka headers that let consumers filter without decoding the value."""
    headers = [("ios-type", event.type.encode()), ("ios-tenant", event.tenant.encode())]
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    return headers
