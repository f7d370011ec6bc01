"""Messages: ingest into an integration (``POST /v1/integrations/{id}/messages``) and
follow one through the pipeline (``GET /v1/messages/{id}``).

Ingest answers 202 once the broker has the record (acks=all), not once it is processed:
the record's lifecycle shows up in the message's events as the worker handles it. Until
the worker has projected its first event, ``GET /v1/messages/{id}`` answers 404.
"""

from __future__ import annotations

import json

from sqlalchemy import Row, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api import serializers
from integrationos.api.commands import acked
from integrationos.api.context import new_id, platform, tenant
from integrationos.api.db import fetch_all, first, get_live
from integrationos.api.errors import ApiError, not_found
from integrationos.api.routing import resource
from integrationos.api.validation import read_json
from integrationos.store.tables import integrations, message_events, messages
from integrationos.topics import event_types as t

MAX_KEY_LENGTH = 400


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
    if integration.status == "PAUSED":
        raise ApiError(409, "INTEGRATION_PAUSED",
                       f"integration {integration_id} is paused; resume it to send messages")
    payload = await read_json(request, p.settings.max_payload_bytes)
    message_id = new_id("msg")
    key = _ordering_key(request, message_id)
    value = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = [("ios-tenant", tenant_id.encode()), ("ios-integration", integration_id.encode()),
               ("ios-message-id", message_id.encode()), ("ios-source", b"http")]
    await acked(p, p.producer.produce(p.ingest_topic, key.encode(), value, headers))
    return JSONResponse({"messageId": message_id, "status": "ACCEPTED"}, status_code=202)


async def get_message(request: Request) -> Response:
    p, tenant_id, message_id = platform(request), tenant(request), request.path_params["id"]
    row = await first(p.engine, select(messages).where(
        messages.c.tenant_id == tenant_id, messages.c.id == message_id))
    if row is None:
        raise not_found("message", message_id)
    events = await fetch_all(p.engine, select(message_events).where(
        message_events.c.tenant_id == tenant_id, message_events.c.message_id == message_id))
    return JSONResponse(serializers.message(row, sorted(events, key=_lifecycle_order)))


routes = [
    resource("/v1/integrations/{id}/messages", POST=ingest_message),
    resource("/v1/messages/{id}", GET=get_message),
]
