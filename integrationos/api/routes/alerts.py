"""Alert rules (``/v1/alerts/rules``) and the alerts they raised (``/v1/alerts``).

A rule is configuration: its changes are ``alert.rule_*`` events on the config topic,
projected into ``alert_rules``. Each rule gets a webhook signing secret at creation, sealed
with the vault like connector credentials and shown once in the 201 answer. The worker
evaluates enabled rules (engine/alerts.py); alerts and their notifications are projected
from the alerts topic and read here. Conditions, channels and limits: docs/alerts.md.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import Row, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.commands import commit
from integrationos.api.context import Platform, changed_by, new_id, platform, tenant
from integrationos.api.db import (
    ensure_unique_name,
    fetch_all,
    first,
    get_live,
    listing,
    live,
    page,
    page_request,
)
from integrationos.api.errors import ApiError, not_found
from integrationos.api.routing import resource
from integrationos.api.schemas import (
    ALERT_CONDITION_FIELDS,
    ALERT_RULE_CREATE,
    ALERT_RULE_UPDATE,
)
from integrationos.api.serializers import iso
from integrationos.api.validation import parse_body
from integrationos.store.alert_views import alert_view
from integrationos.store.projections import sealed_from_text
from integrationos.store.tables import alert_notifications, alert_rules, alerts, connectors
from integrationos.store.tables import integrations as integrations_table
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

DEFAULT_MIN_MESSAGES = 10
DEFAULT_REPEAT_SECONDS = 3600
_CHANNEL_FIELDS = {"email": ("connectorId", "recipients"), "webhook": ("url",)}
ALERT_STATES = ("FIRING", "RESOLVED")


def _invalid(found: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "VALIDATION_FAILED", "the alert rule is invalid", found)


def _shape_problems(condition: dict[str, Any], channels: list[dict[str, Any]]
                    ) -> list[dict[str, str]]:
    """What the JSON Schema cannot say simply: which fields go with which type."""
    found = []
    required, optional = ALERT_CONDITION_FIELDS[condition["type"]]
    for name in required:
        if name not in condition:
            found.append({"field": f"/condition/{name}",
                          "message": f"is required for {condition['type']}"})
    for name in sorted(set(condition) - {"type", *required, *optional}):
        found.append({"field": f"/condition/{name}",
                      "message": f"does not apply to {condition['type']}"})
    for n, channel in enumerate(channels):
        wanted = _CHANNEL_FIELDS[channel["type"]]
        found += [{"field": f"/channels/{n}/{name}", "message": f"is required for "
                   f"{channel['type']}"} for name in wanted if name not in channel]
        found += [{"field": f"/channels/{n}/{name}", "message": f"does not apply to "
                   f"{channel['type']}"} for name in sorted(set(channel) - {"type", *wanted})]
    return found


async def _reference_problems(p: Platform, tenant_id: str, condition: dict[str, Any],
                              channels: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Named integrations and connectors must be the tenant's, and live; an email channel's
    connector must be an SMTP connector."""
    found = []
    if "integrationId" in condition and await first(p.engine, live(
            integrations_table, tenant_id,
            integrations_table.c.id == condition["integrationId"])) is None:
        found.append({"field": "/condition/integrationId", "message": "no such integration"})
    if "connectorId" in condition and await first(p.engine, live(
            connectors, tenant_id, connectors.c.id == condition["connectorId"])) is None:
        found.append({"field": "/condition/connectorId", "message": "no such connector"})
    for n, channel in enumerate(channels):
        if channel["type"] != "email":
            continue
        row = await first(p.engine, live(connectors, tenant_id,
                                         connectors.c.id == channel["connectorId"]))
        if row is None or row.connector_type != "SMTP":
            found.append({"field": f"/channels/{n}/connectorId",
                          "message": "no SMTP connector with this id"})
    return found


async def _checked(p: Platform, tenant_id: str, condition: dict[str, Any],
                   channels: list[dict[str, Any]]) -> dict[str, Any]:
    """The condition as stored (defaults filled in), or 422 listing every fault."""
    found = _shape_problems(condition, channels)
    if not found:
        found = await _reference_problems(p, tenant_id, condition, channels)
    if found:
        raise _invalid(found)
    if condition["type"] == "ERROR_RATE":
        condition = {"minMessages": DEFAULT_MIN_MESSAGES, **condition}
    return condition


def _rule(row: Row) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "severity": row.severity, "enabled": row.enabled,
            "condition": json.loads(row.condition_json),
            "channels": json.loads(row.channels_json),
            "repeatIntervalSeconds": row.repeat_interval_s, "version": row.version,
            "createdAt": iso(row.created_at), "updatedAt": iso(row.updated_at)}


def _state(rule_id: str, body: dict[str, Any], condition: dict[str, Any],
           sealed: dict[str, Any], version: int, request: Request) -> dict[str, Any]:
    return {"id": rule_id, "name": body["name"], "severity": body["severity"],
            "enabled": body["enabled"], "conditionJson": json.dumps(condition),
            "channelsJson": json.dumps(body["channels"]),
            "repeatIntervalSeconds": body["repeatIntervalSeconds"], "secret": sealed,
            "version": version, "changedBy": changed_by(request)}


async def create_rule(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, ALERT_RULE_CREATE)
    body = {"severity": "warning", "enabled": True, "channels": [],
            "repeatIntervalSeconds": DEFAULT_REPEAT_SECONDS, **body}
    secret = "whsec_" + secrets.token_urlsafe(32)
    sealed = p.vault.seal({"secret": secret})
    rule_id = new_id("rul")
    async with p.write_lock(tenant_id):
        condition = await _checked(p, tenant_id, body["condition"], body["channels"])
        await ensure_unique_name(p.engine, alert_rules, "alert rule", tenant_id, body["name"])
        await commit(p, Event(t.ALERT_RULE_CREATED, tenant_id, rule_id,
                              _state(rule_id, body, condition, sealed, 1, request)))
    row = await get_live(p.engine, alert_rules, "alert rule", tenant_id, rule_id)
    return JSONResponse(_rule(row) | {"webhookSecret": secret}, status_code=201)


async def list_rules(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    rows, next_cursor = await page(p.engine, alert_rules, live(alert_rules, tenant_id),
                                   page_request(request))
    return JSONResponse(listing([_rule(r) for r in rows], next_cursor))


async def get_rule(request: Request) -> Response:
    p = platform(request)
    row = await get_live(p.engine, alert_rules, "alert rule", tenant(request),
                         request.path_params["id"])
    return JSONResponse(_rule(row))


async def update_rule(request: Request) -> Response:
    """Given fields replace the stored ones (condition and channels whole); the secret
    stays."""
    p, tenant_id, rule_id = platform(request), tenant(request), request.path_params["id"]
    changes = await parse_body(request, ALERT_RULE_UPDATE)
    async with p.write_lock(tenant_id):
        row = await get_live(p.engine, alert_rules, "alert rule", tenant_id, rule_id)
        body = _rule(row) | changes
        condition = await _checked(p, tenant_id, body["condition"], body["channels"])
        await ensure_unique_name(p.engine, alert_rules, "alert rule", tenant_id, body["name"],
                                 rule_id)
        sealed = sealed_from_text(row.secret_sealed) or {}
        await commit(p, Event(t.ALERT_RULE_UPDATED, tenant_id, rule_id,
                              _state(rule_id, body, condition, sealed, row.version + 1,
                                     request)))
    row = await get_live(p.engine, alert_rules, "alert rule", tenant_id, rule_id)
    return JSONResponse(_rule(row))


async def delete_rule(request: Request) -> Response:
    """Its firing alert, if any, is resolved by the next evaluation."""
    p, tenant_id, rule_id = platform(request), tenant(request), request.path_params["id"]
    async with p.write_lock(tenant_id):
        await get_live(p.engine, alert_rules, "alert rule", tenant_id, rule_id)
        await commit(p, Event(t.ALERT_RULE_DELETED, tenant_id, rule_id,
                              {"id": rule_id, "changedBy": changed_by(request)}))
    return Response(status_code=204)


async def list_alerts(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    wanted = page_request(request)
    statement = select(alerts).where(alerts.c.tenant_id == tenant_id)
    state = request.query_params.get("state")
    if state is not None:
        if state.upper() not in ALERT_STATES:
            raise ApiError(400, "INVALID_QUERY", "invalid query parameter 'state'",
                           [{"field": "state", "message": "must be FIRING or RESOLVED"}])
        statement = statement.where(alerts.c.state == state.upper())
    for name, column in (("ruleId", alerts.c.rule_id),
                         ("integrationId", alerts.c.integration_id)):
        if name in request.query_params:
            statement = statement.where(column == request.query_params[name])
    rows, next_cursor = await page(p.engine, alerts, statement, wanted)
    return JSONResponse(listing([alert_view(r) for r in rows], next_cursor))


async def get_alert(request: Request) -> Response:
    p, tenant_id, alert_id = platform(request), tenant(request), request.path_params["id"]
    row = await first(p.engine, select(alerts).where(alerts.c.tenant_id == tenant_id,
                                                     alerts.c.id == alert_id))
    if row is None:
        raise not_found("alert", alert_id)
    sent = await fetch_all(p.engine, select(alert_notifications).where(
        alert_notifications.c.tenant_id == tenant_id,
        alert_notifications.c.alert_id == alert_id).order_by(
        alert_notifications.c.occurred_at, alert_notifications.c.event_id))
    return JSONResponse(alert_view(row) | {"notifications": [
        {"kind": n.kind, "channel": n.channel, "outcome": n.outcome, "attempts": n.attempts,
         "error": n.error, "at": iso(n.occurred_at)} for n in sent]})


routes = [
    resource("/v1/alerts/rules", GET=list_rules, POST=create_rule),
    resource("/v1/alerts/rules/{id}", GET=get_rule, PATCH=update_rule, DELETE=delete_rule),
    resource("/v1/alerts", GET=list_alerts),
    resource("/v1/alerts/{id}", GET=get_alert),
]
