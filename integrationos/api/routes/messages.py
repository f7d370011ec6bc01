"""Messages: ingest into an integration (``POST /v1/integrations/{id}/messages``) and
follow one through the pipeline (``GET /v1/messages/{id}``, and its lineage with timings and
trace id, ``GET /v1/messages/{id}/trace``).

Ingest answers 202 once the broker has the record (acks=all), not once it is processed:
the record's lifecycle shows up in the message's events as the worker handles it. Until
the worker has projected its first event, ``GET /v1/messages/{id}`` answers 404.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy import Row, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos import tracing
from integrationos.api import serializers
from integrationos.api.commands import acked
from integrationos.api.context import new_id, platform, tenant
from integrationos.api.db import fetch_all, first, get_live
from integrationos.api.errors import ApiError, not_found
from integrationos.api.message_trace import lineage
from integrationos.api.routes.usage import ensure_quota
from integrationos.api.routing import resource
from integrationos.api.validation import parse_json, read_body
from integrationos.engine.catalog import FlowCatalog
from integrationos.schemas.payloads import (
    CSV_TYPE,
    FIXED_WIDTH_TYPE,
    XML_TYPES,
    check_payload,
    media_type,
)
from integrationos.store.tables import integrations, message_events, messages
from integrationos.topics import event_types as t

MAX_KEY_LENGTH = 400
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl")


def _ordering_key(request: Request, default: str) -> str:
    """``X-Message-Key`` (messages with one key are processed in order), or the message id."""
    raw = request.headers.get("x-message-key")
    if raw is None:
        return default
    try:
        key = raw.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        key = ""
    if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise ApiError(422, "VALIDATION_FAILED", "invalid X-Message-Key header", [{
            "field": "X-Message-Key",
            "message": f"must be 1 to {MAX_KEY_LENGTH} characters of UTF-8 text",
        }])
    return key


_STAGE_RANK = {t.MESSAGE_RECEIVED: 0, t.MESSAGE_TRANSFORMED: 1, t.MESSAGE_FAILED: 2,
               t.MESSAGE_DELIVERED: 3, t.MESSAGE_DEAD_LETTERED: 3}


def _lifecycle_order(event: Row) -> tuple[int, int, int]:
    """By time; events of one millisecond in lifecycle order (failures by attempt)."""
    attempt = json.loads(event.data_json).get("attempt", 0)
    return event.occurred_at, _STAGE_RANK.get(event.event_type, 4), attempt


async def ingest_message(request: Request) -> Response:
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    integration = await get_live(p.engine, integrations, "integration", tenant_id,
                                 integration_id)
    check_accepting(integration)
    body = await read_body(request, p.settings.max_payload_bytes)
    return await ingest_body(request, integration_id, body)


def check_accepting(integration: Row) -> None:
    if integration.status == "PAUSED":
        raise ApiError(409, "INTEGRATION_PAUSED",
                       f"integration {integration.id} is paused; resume it to send messages")


async def ingest_body(request: Request, integration_id: str, body: bytes) -> Response:
    """Put ``body`` in the ingest topic: one message, or one per CSV/fixed-width record.
    The caller has authenticated the tenant and checked the integration (shared with the
    signed webhook endpoint)."""
    content_type = request.headers.get("content-type", "application/json")
    kind, _ = media_type(content_type)
    if kind in (CSV_TYPE, FIXED_WIDTH_TYPE):
        return await _ingest_records(request, integration_id, body, content_type)
    if kind in NDJSON_TYPES:
        return await _accept_records(request, integration_id, _ndjson_records(body))
    await ensure_quota(platform(request), tenant(request))
    message_id = new_id("msg")
    key = _ordering_key(request, message_id)
    if kind in XML_TYPES:  # decoded (and validated) by the worker against the XSD
        value, value_type = body, content_type
    else:  # JSON, whatever the client called it (curl -d says form-urlencoded)
        payload = parse_json(body)
        value = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        value_type = "application/json"
    await acked(platform(request),
                _produce(request, integration_id, message_id, key, value, value_type))
    return JSONResponse({"messageId": message_id, "status": "ACCEPTED"}, status_code=202)


async def _ingest_records(request: Request, integration_id: str, body: bytes,
                          content_type: str) -> Response:
    """A CSV or fixed-width payload: decoded here with the flow's source schema (typed
    fields), one message per record. Any bad record refuses the whole payload (422 listing
    every problem by row and column), so a file never half arrives."""
    p, tenant_id = platform(request), tenant(request)
    view = await run_in_threadpool(FlowCatalog(p.engine, ttl=0).lookup, tenant_id,
                                   integration_id)
    if view is None:
        raise not_found("integration", integration_id)
    decoded = await run_in_threadpool(check_payload, body, content_type, view.flow.source)
    if decoded.violations:
        raise ApiError(422, "VALIDATION_FAILED", "the records do not decode against the "
                       "integration's source schema", decoded.violations[:1000])
    return await _accept_records(request, integration_id, decoded.records or [])


def _ndjson_records(body: bytes) -> list[Any]:
    """NDJSON (one JSON document per line, blank lines ignored): how a client streams many
    messages in one request. Any bad line refuses the whole body (422 naming every bad
    line), as for CSV, so a chunk never half arrives."""
    records: list[Any] = []
    problems: list[dict[str, str]] = []
    for number, line in enumerate(body.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(parse_json(line))
        except ApiError as exc:
            problems.append({"field": f"/line/{number}", "message": exc.message})
    if problems:
        raise ApiError(422, "VALIDATION_FAILED", "some NDJSON lines are not JSON documents",
                       problems[:1000])
    if not records:
        raise ApiError(400, "MALFORMED_JSON", "the NDJSON body has no JSON line")
    return records


async def _accept_records(request: Request, integration_id: str,
                          records: list[Any]) -> Response:
    """One message per record, all in the log before the 202: ``{messageIds, count}``."""
    p, tenant_id = platform(request), tenant(request)
    await ensure_quota(p, tenant_id, len(records))
    message_ids = [new_id("msg") for _ in records]
    deliveries = [
        _produce(request, integration_id, message_id, _ordering_key(request, message_id),
                 json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode(),
                 "application/json")
        for message_id, record in zip(message_ids, records, strict=True)
    ]
    await acked(p, asyncio.gather(*deliveries))
    return JSONResponse({"messageIds": message_ids, "count": len(message_ids),
                         "status": "ACCEPTED"}, status_code=202)


def _produce(request: Request, integration_id: str, message_id: str, key: str,
             value: bytes, content_type: str) -> asyncio.Future[tuple[int, int]]:
    p, tenant_id = platform(request), tenant(request)
    headers = [("ios-tenant", tenant_id.encode()), ("ios-integration", integration_id.encode()),
               ("ios-message-id", message_id.encode()), ("ios-source", b"http"),
               ("ios-content-type", content_type.encode())]
    # The record carries this span's context: the worker's pass continues the trace.
    with tracing.span("ingest.produce", kind=SpanKind.PRODUCER, attributes={
            "ios.tenant": tenant_id, "ios.integration": integration_id,
            "ios.message.id": message_id, "messaging.system": "kafka",
            "messaging.destination.name": p.ingest_topic}):
        return p.producer.produce(p.ingest_topic, key.encode(), value,
                                  tracing.inject(headers))


async def _message_with_history(request: Request) -> tuple[Row, list[Row]]:
    """The path's message and its events in lifecycle order, or 404: what both the message
    view and its lineage are built from."""
    p, tenant_id, message_id = platform(request), tenant(request), request.path_params["id"]
    row = await first(p.engine, select(messages).where(
        messages.c.tenant_id == tenant_id, messages.c.id == message_id))
    if row is None:
        raise not_found("message", message_id)
    events = await fetch_all(p.engine, select(message_events).where(
        message_events.c.tenant_id == tenant_id, message_events.c.message_id == message_id))
    return row, sorted(events, key=_lifecycle_order)


async def get_message(request: Request) -> Response:
    return JSONResponse(serializers.message(*await _message_with_history(request)))


async def get_message_trace(request: Request) -> Response:
    """The message's lineage: its events in order with the time between them and its trace."""
    return JSONResponse(lineage(*await _message_with_history(request)))


routes = [
    resource("/v1/integrations/{id}/messages", POST=ingest_message),
    resource("/v1/messages/{id}", GET=get_message),
    resource("/v1/messages/{id}/trace", GET=get_message_trace),
]
