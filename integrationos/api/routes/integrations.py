"""``/v1/integrations``: a source, a target and a transformation, run by the engine for
each message; plus pause/resume and per-status message counts.

Connector references accept an id or a name of the tenant's connector (the seed's
``targetConnectorId: "salesforce-prod"``) and are stored as ids, checked against the role
the connector will play.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api import serializers
from integrationos.api.commands import commit
from integrationos.api.context import Platform, changed_by, new_id, platform, tenant
from integrationos.api.db import fetch_all, first, get_live, listing, live, page, page_request
from integrationos.api.errors import ApiError
from integrationos.api.routes.connectors import role_problems
from integrationos.api.routes.replays import release_parked
from integrationos.api.routes.transformations import compiled, find_version
from integrationos.api.routing import resource
from integrationos.api.schemas import INTEGRATION_CREATE, INTEGRATION_UPDATE
from integrationos.api.validation import parse_body
from integrationos.engine.error_strategy import DEFAULT_BACKOFF
from integrationos.store.tables import connectors, integrations, messages, transformations
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

DEFAULT_ERROR_STRATEGY = "RETRY_3_DLQ"
_ROLE_OF_FIELD = {"/sourceConnectorId": "source", "/targetConnectorId": "target"}


class Problems:
    """Collects every invalid reference of a request, to answer them all in one 422."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []

    def add(self, field: str, message: str) -> None:
        self.details.append({"field": field, "message": message})

    def raise_any(self) -> None:
        if self.details:
            raise ApiError(422, "VALIDATION_FAILED", "the request references are invalid",
                           self.details)


async def find_connector(p: Platform, tenant_id: str, ref: str) -> Row | None:
    """The tenant's live connector whose id, or else whose name, is ``ref``."""
    by_id = await first(p.engine, live(connectors, tenant_id, connectors.c.id == ref))
    return by_id or await first(p.engine, live(connectors, tenant_id, connectors.c.name == ref))


def check_role(row: Row, field: str, problems: Problems) -> None:
    """Can this connector play the role of ``field`` (source or target) as configured?"""
    role = _ROLE_OF_FIELD[field]
    for violation in role_problems(row.connector_type, json.loads(row.config_json), role):
        where = "" if violation["field"] == "/role" else f"{violation['field']}: "
        problems.add(field, f"connector {row.name!r} ({row.connector_type}) cannot be the "
                            f"{role}: {where}{violation['message']}")


async def _resolve_connector(p: Platform, tenant_id: str, ref: str | None, field: str,
                             problems: Problems) -> str | None:
    if ref is None:
        return None
    row = await find_connector(p, tenant_id, ref)
    if row is None:
        problems.add(field, f"no connector with id or name {ref!r}")
        return None
    check_role(row, field, problems)
    return row.id


async def _pin_transformation(p: Platform, tenant_id: str, transformation_id: str | None,
                             version: int | None, problems: Problems) -> int | None:
    """The transformation version the integration will run: the one asked for, or the
    current one. Pinned, so a later edit of the transformation changes nothing until the
    integration is updated to the new version."""
    if transformation_id is None:
        if version is not None:
            problems.add("/transformationVersion", "needs a transformationId")
        return None
    row = await first(p.engine, live(
        transformations, tenant_id, transformations.c.id == transformation_id))
    if row is None:
        problems.add("/transformationId", f"no transformation with id {transformation_id!r}")
        return None
    if version is None:
        return row.version
    if await find_version(p, tenant_id, transformation_id, version) is None:
        problems.add("/transformationVersion",
                     f"transformation {transformation_id} has no version {version}")
    return version


async def _ensure_unique_name(p: Platform, tenant_id: str, name: str, environment: str,
                              own_id: str = "") -> None:
    clash = await first(p.engine, live(
        integrations, tenant_id, integrations.c.name == name,
        integrations.c.environment == environment, integrations.c.id != own_id))
    if clash is not None:
        raise ApiError(409, "CONFLICT",
                       f"an integration named {name!r} already exists in {environment}",
                       [{"field": "/name", "id": clash.id}])


def backoff_data(given: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``backoff`` of a request as the event carries it: omitted fields take the
    defaults; null stays null (the platform defaults, which may change with the platform).
    422 when maxDelayMs is shorter than initialDelayMs (the schema checked the rest)."""
    if given is None:
        return None
    data = {
        "initialDelayMs": int(given.get("initialDelayMs", DEFAULT_BACKOFF.initial_ms)),
        "maxDelayMs": int(given.get("maxDelayMs", DEFAULT_BACKOFF.max_ms)),
        "multiplier": float(given.get("multiplier", DEFAULT_BACKOFF.multiplier)),
    }
    if data["maxDelayMs"] < data["initialDelayMs"]:
        raise ApiError(422, "VALIDATION_FAILED", "the request body is invalid", [
            {"field": "/backoff/maxDelayMs",
             "message": f"must be at least initialDelayMs ({data['initialDelayMs']})"}])
    return data


def _one_mapping(transformation_id: Any, expression: Any) -> None:
    if transformation_id is not None and expression is not None:
        raise ApiError(422, "VALIDATION_FAILED", "give transformationId or expression, not both",
                       [{"field": "/expression",
                         "message": "cannot be combined with transformationId"}])


async def _respond(p: Platform, tenant_id: str, integration_id: str, status: int = 200
                   ) -> JSONResponse:
    row = await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
    return JSONResponse(serializers.integration(row), status_code=status)


async def create_integration(p: Platform, tenant_id: str, fields: dict[str, Any],
                             author: str | None) -> JSONResponse:
    """Shared by ``POST /v1/integrations`` and ``POST /v1/flows``: check, append, answer 201."""
    transformation_id, expression = fields.get("transformationId"), fields.get("expression")
    _one_mapping(transformation_id, expression)
    backoff = backoff_data(fields.get("backoff"))
    if expression is not None:
        compiled(expression)
    environment = fields.get("environment", "DEV")
    integration_id = new_id("int")
    async with p.write_lock(tenant_id):
        problems = Problems()
        source = await _resolve_connector(p, tenant_id, fields.get("sourceConnectorId"),
                                          "/sourceConnectorId", problems)
        target = await _resolve_connector(p, tenant_id, fields.get("targetConnectorId"),
                                          "/targetConnectorId", problems)
        pinned = await _pin_transformation(p, tenant_id, transformation_id,
                                           fields.get("transformationVersion"), problems)
        problems.raise_any()
        await _ensure_unique_name(p, tenant_id, fields["name"], environment)
        data = {
            "id": integration_id, "name": fields["name"], "environment": environment,
            "sourceConnectorId": source, "targetConnectorId": target,
            "transformationId": transformation_id, "transformationVersion": pinned,
            "expression": expression,
            "errorStrategy": fields.get("errorStrategy", DEFAULT_ERROR_STRATEGY),
            "backoff": backoff, "version": 1, "changedBy": author,
        }
        await commit(p, Event(t.INTEGRATION_CREATED, tenant_id, integration_id, data))
    return await _respond(p, tenant_id, integration_id, 201)


async def post_integration(request: Request) -> Response:
    body = await parse_body(request, INTEGRATION_CREATE)
    return await create_integration(platform(request), tenant(request), body,
                                    changed_by(request))


async def list_integrations(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    wanted = page_request(request)
    statement = live(integrations, tenant_id)
    if "environment" in request.query_params:
        statement = statement.where(
            integrations.c.environment == request.query_params["environment"].upper())
    rows, next_cursor = await page(p.engine, integrations, statement, wanted)
    return JSONResponse(listing([serializers.integration(r) for r in rows], next_cursor))


async def get_integration(request: Request) -> Response:
    return await _respond(platform(request), tenant(request), request.path_params["id"])


async def update_integration(request: Request) -> Response:
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    body = await parse_body(request, INTEGRATION_UPDATE)
    _one_mapping(body.get("transformationId"), body.get("expression"))
    if body.get("expression") is not None:
        compiled(body["expression"])
    backoff = backoff_data(body.get("backoff"))
    async with p.write_lock(tenant_id):
        row = await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
        problems = Problems()
        state = {
            "sourceConnectorId": row.source_connector_id,
            "targetConnectorId": row.target_connector_id,
            "transformationId": row.transformation_id,
            "transformationVersion": row.transformation_version, "expression": row.expression,
        }
        for key in ("sourceConnectorId", "targetConnectorId"):
            if key in body:
                state[key] = await _resolve_connector(p, tenant_id, body[key], f"/{key}",
                                                      problems)
        if "transformationId" in body or "transformationVersion" in body:
            state["transformationId"] = body.get("transformationId", row.transformation_id)
            state["transformationVersion"] = await _pin_transformation(
                p, tenant_id, state["transformationId"], body.get("transformationVersion"),
                problems)
            if state["transformationId"] is not None:
                state["expression"] = None
        if "expression" in body:
            state["expression"] = body["expression"]
            if body["expression"] is not None:
                state["transformationId"] = state["transformationVersion"] = None
        problems.raise_any()
        name = body.get("name", row.name)
        await _ensure_unique_name(p, tenant_id, name, row.environment, integration_id)
        data = {"id": integration_id, "name": name, "environment": row.environment, **state,
                "errorStrategy": body.get("errorStrategy", row.error_strategy),
                "backoff": backoff if "backoff" in body else serializers.backoff(row),
                "version": row.version + 1, "changedBy": changed_by(request)}
        await commit(p, Event(t.INTEGRATION_UPDATED, tenant_id, integration_id, data))
    return await _respond(p, tenant_id, integration_id)


async def delete_integration(request: Request) -> Response:
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    async with p.write_lock(tenant_id):
        await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
        await commit(p, Event(t.INTEGRATION_DELETED, tenant_id, integration_id,
                              {"id": integration_id, "changedBy": changed_by(request)}))
    return Response(status_code=204)


async def _set_run_state(request: Request, event_type: str, wanted: str,
                         data: dict[str, Any]) -> Response:
    """Pause or resume; already in the wanted state is a no-op answered 200."""
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    async with p.write_lock(tenant_id):
        row = await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
        if row.status != wanted:
            await commit(p, Event(event_type, tenant_id, integration_id, {
                "id": integration_id, "changedBy": changed_by(request), **data}))
    return await _respond(p, tenant_id, integration_id)


async def pause_integration(request: Request) -> Response:
    """A user's pause (reason USER); the worker's FAIL_FAST pause is the same event."""
    return await _set_run_state(request, t.INTEGRATION_PAUSED, "PAUSED", {"reason": "USER"})


async def resume_integration(request: Request) -> Response:
    """Resume, then release what was parked while paused (a replay, oldest first)."""
    response = await _set_run_state(request, t.INTEGRATION_RESUMED, "ACTIVE", {})
    await release_parked(platform(request), tenant(request), request.path_params["id"])
    return response


_COUNTED = {"RECEIVED": "received", "TRANSFORMED": "transformed", "DELIVERED": "delivered",
            "FAILED": "failed", "DEAD_LETTERED": "deadLettered", "DISCARDED": "discarded",
            "PARKED": "parked"}


async def integration_status(request: Request) -> Response:
    """How many of the integration's messages are in each status right now, and why the
    integration is paused if it is."""
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    integration = await get_live(p.engine, integrations, "integration", tenant_id,
                                 integration_id)
    rows = await fetch_all(p.engine, select(messages.c.status, func.count().label("n")).where(
        messages.c.tenant_id == tenant_id, messages.c.integration_id == integration_id,
    ).group_by(messages.c.status))
    counts = dict.fromkeys(_COUNTED.values(), 0)
    for row in rows:
        if row.status in _COUNTED:
            counts[_COUNTED[row.status]] = row.n
    total = sum(row.n for row in rows)
    return JSONResponse({"integrationId": integration_id, **counts, "total": total,
                         "status": integration.status,
                         "pausedReason": serializers.paused_reason(integration)})


routes = [
    resource("/v1/integrations", GET=list_integrations, POST=post_integration),
    resource("/v1/integrations/{id}", GET=get_integration, PATCH=update_integration,
             DELETE=delete_integration),
    resource("/v1/integrations/{id}/pause", POST=pause_integration),
    resource("/v1/integrations/{id}/resume", POST=resume_integration),
    resource("/v1/integrations/{id}/status", GET=integration_status),
]
