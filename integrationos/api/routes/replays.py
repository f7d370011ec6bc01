"""Replays: sending messages through their integration again, under their original ids.

- ``POST /v1/dlq/replay``: dead-lettered messages, by id or by the listing's filter,
  optionally one of them with an edited payload;
- ``POST /v1/integrations/{id}/replay``: everything an integration received since a time
  or an ingest offset (reprocessing after a bug fix);
- ``GET /v1/dlq/replays/{id}``: how far a replay got and what became of what it sent.

Each request is one ``message.replay_requested`` event on the replays topic; the worker's
replay agent carries it out (engine/replays.py). The request answers ``202`` once the
replay is recorded, not when it is done. Every replay runs against the integration's
current version, and targets see the message's original idempotency key.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import Row, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos import tracing
from integrationos.api.commands import commit_to
from integrationos.api.context import Platform, platform, tenant
from integrationos.api.db import fetch_all, first, get_live
from integrationos.api.errors import ApiError, not_found
from integrationos.api.routes.dlq import dlq_filter, received_content_type
from integrationos.api.routing import resource
from integrationos.api.schemas import DLQ_REPLAY, STREAM_REPLAY
from integrationos.api.serializers import iso
from integrationos.api.times import epoch_ms
from integrationos.api.validation import parse_body
from integrationos.schemas.payloads import JSON_TYPES, media_type
from integrationos.store.dlq_queries import dead_lettered
from integrationos.store.tables import dlq_entries, integrations, messages, replays
from integrationos.topics import event_types as t
from integrationos.topics.catalog import REPLAYS
from integrationos.topics.envelope import Event

_REPLAY_NAMESPACE = uuid.UUID("0b6f3c1e-9f5e-4c1e-8d0b-2c4a9e7d5a11")
_OUTCOMES = {"DELIVERED": "delivered", "DEAD_LETTERED": "deadLettered", "PARKED": "parked",
             "FAILED": "failed", "DISCARDED": "discarded"}


def _replay_id(request: Request, tenant_id: str) -> str:
    """Random, or derived from the ``Idempotency-Key`` header: a client that retries the
    same request gets the same replay back instead of a second one."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return f"rpl_{uuid.uuid4().hex[:24]}"
    return f"rpl_{uuid.uuid5(_REPLAY_NAMESPACE, f'{tenant_id}/{key}').hex[:24]}"


async def _existing(p: Platform, tenant_id: str, replay_id: str) -> Row | None:
    return await first(p.engine, select(replays).where(replays.c.tenant_id == tenant_id,
                                                       replays.c.id == replay_id))


async def _request(p: Platform, tenant_id: str, replay_id: str, data: dict[str, Any]
                   ) -> Response:
    """Append the request, wait until it is recorded, answer 202 with where to follow it."""
    await commit_to(p, REPLAYS.name(p.settings.topic_prefix), Event(
        t.MESSAGE_REPLAY_REQUESTED, tenant_id, replay_id,
        {"replayId": replay_id, "requestedAt": int(time.time() * 1000), **data},
        # the worker's replay continues this request's trace (docs/observability.md)
        traceparent=tracing.current_traceparent()))
    return await _answer(p, tenant_id, replay_id, 202)


async def _answer(p: Platform, tenant_id: str, replay_id: str, status: int) -> Response:
    row = await _existing(p, tenant_id, replay_id)
    if row is None:
        raise not_found("replay", replay_id)
    outcome = await fetch_all(p.engine, select(messages.c.status, func.count().label("n"))
                              .where(messages.c.tenant_id == tenant_id,
                                     messages.c.replay_id == replay_id)
                              .group_by(messages.c.status))
    return JSONResponse(_replay(row, outcome), status_code=status,
                        headers={"Location": f"/v1/dlq/replays/{replay_id}"})


def _replay(row: Row, outcome: list[Row]) -> dict[str, Any]:
    counts = dict.fromkeys(_OUTCOMES.values(), 0)
    in_flight = 0
    for each in outcome:
        if each.status in _OUTCOMES:
            counts[_OUTCOMES[each.status]] = each.n
        else:
            in_flight += each.n
    return {
        "replayId": row.id, "kind": row.kind, "integrationId": row.integration_id,
        "status": row.status, "total": row.total, "sent": row.sent, "skipped": row.skipped,
        "outcome": {**counts, "inFlight": in_flight},
        "selection": json.loads(row.selection_json),
        "requestedAt": iso(row.created_at), "updatedAt": iso(row.updated_at),
        "completedAt": None if row.completed_at is None else iso(row.completed_at),
        "error": row.error,
    }


async def replay_dlq(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, DLQ_REPLAY)
    replay_id = _replay_id(request, tenant_id)
    if await _existing(p, tenant_id, replay_id) is not None:
        return await _answer(p, tenant_id, replay_id, 200)
    if ("messageIds" in body) == ("filter" in body):
        raise ApiError(422, "VALIDATION_FAILED", "give messageIds or filter, not both", [
            {"field": "/messageIds", "message": "exactly one of messageIds and filter"}])
    data: dict[str, Any] = {"kind": "DLQ"}
    if "filter" in body:
        if "payload" in body:
            raise ApiError(422, "VALIDATION_FAILED", "an edited payload replays one message",
                           [{"field": "/payload", "message": "needs exactly one messageId"}])
        wanted = dlq_filter(body["filter"], "/filter/")
        data |= {"filterJson": json.dumps(wanted.to_json()),
                 "integrationId": wanted.integration_id}
        if not await fetch_all(p.engine, dead_lettered(tenant_id, wanted).limit(1)):
            raise ApiError(422, "NOTHING_TO_REPLAY", "no dead-lettered message matches the "
                           "filter", [{"field": "/filter", "message": "matches nothing"}])
    else:
        data |= await _listed(p, tenant_id, body)
    return await _request(p, tenant_id, replay_id, data)


async def _listed(p: Platform, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Every id must be in the tenant's DLQ (all or nothing, as for discard); an edited
    payload must suit the message's content type (JSON, or the text of XML, CSV ...)."""
    ids: list[str] = body["messageIds"]
    rows = {r.id: r for r in await fetch_all(p.engine, select(
        dlq_entries.c.id, dlq_entries.c.integration_id).where(
        dlq_entries.c.tenant_id == tenant_id, dlq_entries.c.id.in_(ids)))}
    missing = [{"field": f"/messageIds/{n}", "message": f"no dead-lettered message {i!r}"}
               for n, i in enumerate(ids) if i not in rows]
    if missing:
        raise ApiError(422, "VALIDATION_FAILED", "some messages are not in the dead-letter "
                       "queue", missing)
    data: dict[str, Any] = {"messageIds": ids}
    if "payload" in body:
        if len(ids) != 1:
            raise ApiError(422, "VALIDATION_FAILED", "an edited payload replays one message",
                           [{"field": "/payload", "message": "needs exactly one messageId"}])
        content_type = await received_content_type(p, tenant_id, ids[0])
        is_json = media_type(content_type)[0] in JSON_TYPES
        if not is_json and not isinstance(body["payload"], str):
            raise ApiError(422, "VALIDATION_FAILED", "the payload must be a string", [
                {"field": "/payload", "message": f"the message is {content_type}: give its "
                                                 "text as a string"}])
        data |= {"payloadJson": json.dumps(body["payload"], ensure_ascii=False),
                 "integrationId": rows[ids[0]].integration_id}
    return data


async def replay_integration(request: Request) -> Response:
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
    body = await parse_body(request, STREAM_REPLAY)
    replay_id = _replay_id(request, tenant_id)
    if await _existing(p, tenant_id, replay_id) is not None:
        return await _answer(p, tenant_id, replay_id, 200)
    start = body["from"]
    window = {"from": {"offsets": start["offsets"]} if isinstance(start, dict)
              else {"time": epoch_ms(start, "/from", in_body=True)},
              "to": epoch_ms(body["to"], "/to", in_body=True) if "to" in body else None}
    return await _request(p, tenant_id, replay_id, {
        "kind": "STREAM", "integrationId": integration_id, "fromJson": json.dumps(window)})


async def release_parked(p: Platform, tenant_id: str, integration_id: str) -> None:
    """After a resume: send the integration's parked messages, oldest first (if any)."""
    parked = await fetch_all(p.engine, select(messages.c.id).where(
        messages.c.tenant_id == tenant_id, messages.c.integration_id == integration_id,
        messages.c.status == "PARKED").limit(1))
    if parked:
        replay_id = f"rpl_{uuid.uuid4().hex[:24]}"
        await commit_to(p, REPLAYS.name(p.settings.topic_prefix), Event(
            t.MESSAGE_REPLAY_REQUESTED, tenant_id, replay_id,
            {"replayId": replay_id, "kind": "PARKED", "integrationId": integration_id,
             "requestedAt": int(time.time() * 1000)}))


async def get_replay(request: Request) -> Response:
    return await _answer(platform(request), tenant(request), request.path_params["id"], 200)


routes = [
    resource("/v1/dlq/replay", POST=replay_dlq),
    resource("/v1/dlq/replays/{id}", GET=get_replay),
    resource("/v1/integrations/{id}/replay", POST=replay_integration),
]
