"""The dead-letter queue: what failed for good and why (``GET /v1/dlq``, ``/v1/dlq/{id}``),
and giving messages up (``POST /v1/dlq/discard``).

Entries come from the ``dlq_entries`` projection of ``message.dead_lettered`` events. A
discard is a ``message.discarded`` event on the message-events topic (keyed by the message
id, so it follows the message's other events); the message and its history stay.
Replaying an entry is not offered yet.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.commands import commit_to
from integrationos.api.context import Platform, platform, tenant
from integrationos.api.db import fetch_all, first, listing, page, page_request
from integrationos.api.errors import ApiError, not_found
from integrationos.api.routing import resource
from integrationos.api.schemas import DLQ_DISCARD
from integrationos.api.serializers import iso
from integrationos.api.times import epoch_ms
from integrationos.api.validation import parse_body
from integrationos.store.dlq_queries import DEAD_LETTERED, DlqFilter, dead_lettered
from integrationos.store.tables import dlq_entries, message_events
from integrationos.topics import event_types as t
from integrationos.topics.catalog import MESSAGE_EVENTS
from integrationos.topics.envelope import Event


def _epoch_ms(query: Mapping[str, Any], field: str, field_prefix: str) -> int | None:
    raw = query.get(field)
    return None if raw is None else epoch_ms(raw, field_prefix + field, bool(field_prefix))


def _entry(row: Row) -> dict[str, Any]:
    return {"messageId": row.id, "integrationId": row.integration_id, "code": row.code,
            "message": row.message, "stage": row.stage, "deadLetteredAt": iso(row.created_at),
            "attempts": row.attempts}


def dlq_filter(query: Mapping[str, Any], field_prefix: str = "") -> DlqFilter:
    """The listing's filters from ``query``: the query string, or a replay's ``filter``
    object (then ``field_prefix`` is its JSON pointer, for error details)."""
    return DlqFilter(query.get("integrationId"), query.get("code"), query.get("q"),
                     _epoch_ms(query, "from", field_prefix), _epoch_ms(query, "to", field_prefix))


async def list_dlq(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    wanted = page_request(request)
    statement = dead_lettered(tenant_id, dlq_filter(request.query_params))
    rows, next_cursor = await page(p.engine, dlq_entries, statement, wanted)
    return JSONResponse(listing([_entry(r) for r in rows], next_cursor))


def _detail(entry: Row, events: Sequence[Row]) -> dict[str, Any]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in sorted(events, key=lambda e: e.occurred_at):
        by_type.setdefault(event.event_type, []).append(
            json.loads(event.data_json) | {"occurredAt": iso(event.occurred_at)})
    received = by_type.get(t.MESSAGE_RECEIVED, [None])[0]
    transformed = by_type.get(t.MESSAGE_TRANSFORMED, [None])[-1]
    failures = sorted(by_type.get(t.MESSAGE_FAILED, []), key=lambda f: f["attempt"])
    discarded = None
    if entry.status == "DISCARDED":
        discarded = {"reason": entry.discard_reason or "", "discardedAt": iso(entry.discarded_at)}
    return {
        "messageId": entry.id,
        "integrationId": entry.integration_id,
        "status": entry.status,
        "contentType": None if received is None else received["contentType"],
        "payload": None if received is None else json.loads(received["payloadJson"]),
        "output": None if transformed is None else json.loads(transformed["outputJson"]),
        "attempts": [{key: f[key] for key in ("attempt", "stage", "errorClass", "code",
                                              "message", "occurredAt")} for f in failures],
        "deadLetter": {"stage": entry.stage, "code": entry.code, "message": entry.message,
                       "dlqTopic": entry.dlq_topic, "deadLetteredAt": iso(entry.created_at)},
        "discarded": discarded,
        "traceparent": entry.traceparent,
    }


async def received_content_type(p: Platform, tenant_id: str, message_id: str) -> str:
    """The media type the message arrived as (JSON unless its receipt says otherwise)."""
    row = await first(p.engine, select(message_events.c.data_json).where(
        message_events.c.tenant_id == tenant_id, message_events.c.message_id == message_id,
        message_events.c.event_type == t.MESSAGE_RECEIVED))
    return "application/json" if row is None else (
        json.loads(row.data_json).get("contentType") or "application/json")


async def get_dlq_entry(request: Request) -> Response:
    p, tenant_id, message_id = platform(request), tenant(request), request.path_params["id"]
    entry = await first(p.engine, select(dlq_entries).where(
        dlq_entries.c.tenant_id == tenant_id, dlq_entries.c.id == message_id))
    if entry is None:
        raise not_found("dead-lettered message", message_id)
    events = await fetch_all(p.engine, select(message_events).where(
        message_events.c.tenant_id == tenant_id, message_events.c.message_id == message_id))
    return JSONResponse(_detail(entry, events))


async def discard(request: Request) -> Response:
    """All or nothing: an id that is not in the tenant's DLQ refuses the whole request (422),
    so a typo never half-applies. Already discarded ids are accepted and left as they are."""
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, DLQ_DISCARD)
    ids: list[str] = body["messageIds"]
    rows = {row.id: row for row in await fetch_all(p.engine, select(dlq_entries).where(
        dlq_entries.c.tenant_id == tenant_id, dlq_entries.c.id.in_(ids)))}
    missing = [{"field": f"messageIds/{n}", "message": f"no dead-lettered message {id_!r}"}
               for n, id_ in enumerate(ids) if id_ not in rows]
    if missing:
        raise ApiError(422, "VALIDATION_FAILED", "some messages are not in the dead-letter "
                       "queue", missing)
    topic = MESSAGE_EVENTS.name(p.settings.topic_prefix)
    await asyncio.gather(*(
        commit_to(p, topic, Event(t.MESSAGE_DISCARDED, tenant_id, row.id, {
            "messageId": row.id, "integrationId": row.integration_id,
            "reason": body["reason"],
        }, correlation_id=row.id, traceparent=row.traceparent))
        for row in rows.values() if row.status == DEAD_LETTERED
    ))
    return JSONResponse({"discarded": ids})


routes = [
    resource("/v1/dlq", GET=list_dlq),
    resource("/v1/dlq/discard", POST=discard),
    resource("/v1/dlq/{id}", GET=get_dlq_entry),
]
