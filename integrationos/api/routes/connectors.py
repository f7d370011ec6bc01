"""``/v1/connectors``: configured connections to external systems, and their health test.

Credentials are sealed with the vault before they enter an event, so the log and the
tables only ever hold ciphertext; responses show them masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from sqlalchemy import Row, Select, or_
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos import metrics
from integrationos.api import serializers
from integrationos.api.commands import commit
from integrationos.api.context import Platform, new_id, platform, tenant
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
from integrationos.api.errors import ApiError
from integrationos.api.routes.usage import ensure_connector_slot
from integrationos.api.routing import resource
from integrationos.api.schemas import CONNECTOR_CREATE, CONNECTOR_UPDATE
from integrationos.api.validation import parse_body
from integrationos.connectors.base import ConnectorError
from integrationos.connectors.credentials import CredentialsUnreadable
from integrationos.connectors.registry import (
    InvalidConnectorConfig,
    build,
    connector_types,
    validate_config,
)
from integrationos.store.projections import sealed_from_text
from integrationos.store.tables import connectors, integrations, lookups
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

TEST_TIMEOUT_SECONDS = 10.0
_CLOSE_TIMEOUT_SECONDS = 2.0


def canonical_type(value: str) -> str | None:
    """The registered spelling of a type name given in any case (``sftp`` -> ``SFTP``)."""
    return next((name for name in connector_types() if name == value.upper()), None)


def _checked_type(value: str) -> str:
    type_name = canonical_type(value)
    if type_name is None:
        known = ", ".join(connector_types())
        raise ApiError(422, "VALIDATION_FAILED", "the request body is invalid",
                       [{"field": "/type", "message": f"unknown connector type; known: {known}"}])
    return type_name


def _check_config(type_name: str, config: dict[str, Any], credentials: dict[str, Any]) -> None:
    found = validate_config(type_name, config, credentials)
    if found:
        raise ApiError(422, "VALIDATION_FAILED", f"invalid {type_name} connector", found)


def stored_credentials(p: Platform, row: Row) -> dict[str, Any]:
    """The connector's credentials in clear, for validating or building it."""
    try:
        return serializers.open_credentials(p.vault, row)
    except CredentialsUnreadable:
        raise ApiError(409, "CREDENTIALS_UNREADABLE",
                       "the stored credentials cannot be opened with this platform's master "
                       "key; send the credentials again") from None


def _state(connector_id: str, name: str, type_name: str, config: dict[str, Any],
           sealed: dict[str, Any] | None, version: int) -> dict[str, Any]:
    return {"id": connector_id, "name": name, "connectorType": type_name,
            "configJson": json.dumps(config, ensure_ascii=False), "credentials": sealed,
            "version": version}


def _users(tenant_id: str, connector_id: str) -> Select:
    """Live integrations that use the connector as source or target."""
    return live(integrations, tenant_id, or_(
        integrations.c.source_connector_id == connector_id,
        integrations.c.target_connector_id == connector_id,
    ))


def role_problems(type_name: str, config: dict[str, Any], role: str) -> list[dict[str, str]]:
    """What playing ``role`` requires beyond the config's own spec (e.g. a target HTTP
    connector needs a url, an SMTP connector cannot be a source). It depends on the config
    alone, never on credentials."""
    baseline = validate_config(type_name, config, {})
    return [
        violation for violation in validate_config(type_name, config, {}, role=role)
        if violation not in baseline
    ]


async def _check_roles_in_use(p: Platform, tenant_id: str, connector_id: str, type_name: str,
                              config: dict[str, Any]) -> None:
    """A change must keep the connector usable in the roles integrations give it."""
    users = await fetch_all(p.engine, _users(tenant_id, connector_id))
    roles = {"source" for u in users if u.source_connector_id == connector_id}
    roles |= {"target" for u in users if u.target_connector_id == connector_id}
    for role in sorted(roles):
        found = role_problems(type_name, config, role)
        if found:
            raise ApiError(422, "VALIDATION_FAILED",
                           f"integrations use this connector as a {role}", found)


async def _respond(p: Platform, tenant_id: str, connector_id: str, status: int = 200
                   ) -> JSONResponse:
    row = await get_live(p.engine, connectors, "connector", tenant_id, connector_id)
    return JSONResponse(serializers.connector(row, p.vault), status_code=status)


async def create_connector(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, CONNECTOR_CREATE)
    type_name = _checked_type(body["type"])
    config, credentials = body.get("config", {}), body.get("credentials")
    _check_config(type_name, config, credentials or {})
    sealed = p.vault.seal(credentials) if credentials else None
    connector_id = new_id("con")
    async with p.write_lock(tenant_id):
        await ensure_unique_name(p.engine, connectors, "connector", tenant_id, body["name"])
        await ensure_connector_slot(p, tenant_id)
        data = _state(connector_id, body["name"], type_name, config, sealed, 1)
        await commit(p, Event(t.CONNECTOR_CREATED, tenant_id, connector_id, data))
    return await _respond(p, tenant_id, connector_id, 201)


async def list_connectors(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    wanted = page_request(request)
    statement = live(connectors, tenant_id)
    if "type" in request.query_params:
        type_name = canonical_type(request.query_params["type"]) or request.query_params["type"]
        statement = statement.where(connectors.c.connector_type == type_name)
    rows, next_cursor = await page(p.engine, connectors, statement, wanted)
    return JSONResponse(listing([serializers.connector(r, p.vault) for r in rows], next_cursor))


async def get_connector(request: Request) -> Response:
    return await _respond(platform(request), tenant(request), request.path_params["id"])


async def update_connector(request: Request) -> Response:
    p, tenant_id, connector_id = platform(request), tenant(request), request.path_params["id"]
    body = await parse_body(request, CONNECTOR_UPDATE)
    async with p.write_lock(tenant_id):
        row = await get_live(p.engine, connectors, "connector", tenant_id, connector_id)
        name = body.get("name", row.name)
        config = body.get("config", json.loads(row.config_json))
        if "credentials" in body:
            credentials = body["credentials"]
            sealed = p.vault.seal(credentials) if credentials else None
        else:
            credentials = stored_credentials(p, row)
            sealed = sealed_from_text(row.credentials_sealed)
        _check_config(row.connector_type, config, credentials or {})
        await _check_roles_in_use(p, tenant_id, connector_id, row.connector_type, config)
        await ensure_unique_name(p.engine, connectors, "connector", tenant_id, name, connector_id)
        data = _state(connector_id, name, row.connector_type, config, sealed, row.version + 1)
        await commit(p, Event(t.CONNECTOR_UPDATED, tenant_id, connector_id, data))
    return await _respond(p, tenant_id, connector_id)


async def _lookup_using(p: Platform, tenant_id: str, connector_id: str) -> Row | None:
    """A live HTTP or DB lookup table whose config names the connector."""
    tables = await fetch_all(p.engine, live(lookups, tenant_id))
    return next((row for row in tables
                 if json.loads(row.config_json).get("connectorId") == connector_id), None)


async def delete_connector(request: Request) -> Response:
    p, tenant_id, connector_id = platform(request), tenant(request), request.path_params["id"]
    async with p.write_lock(tenant_id):
        await get_live(p.engine, connectors, "connector", tenant_id, connector_id)
        user = await first(p.engine, _users(tenant_id, connector_id))
        if user is not None:
            raise ApiError(409, "CONNECTOR_IN_USE",
                           f"integration {user.id} uses this connector; delete it or change it "
                           "first", [{"integrationId": user.id}])
        table = await _lookup_using(p, tenant_id, connector_id)
        if table is not None:
            raise ApiError(409, "CONNECTOR_IN_USE",
                           f"lookup table {table.name!r} reads through this connector; delete "
                           "it or change it first", [{"lookupId": table.id}])
        await commit(p, Event(t.CONNECTOR_DELETED, tenant_id, connector_id, {"id": connector_id}))
    return Response(status_code=204)


async def test_connector(request: Request) -> Response:
    """Really connect with the stored config and credentials; always 200 with UP or DOWN."""
    p, tenant_id = platform(request), tenant(request)
    row = await get_live(p.engine, connectors, "connector", tenant_id, request.path_params["id"])
    try:
        connector = build(row.connector_type, json.loads(row.config_json),
                          stored_credentials(p, row))
    except (InvalidConnectorConfig, ApiError) as exc:
        return JSONResponse({"status": "DOWN", "latencyMs": 0, "detail": str(exc)})
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        # The connector bounds itself; the outer bound holds even if one does not.
        report = await asyncio.wait_for(connector.test(TEST_TIMEOUT_SECONDS - 0.5),
                                        TEST_TIMEOUT_SECONDS)
        result = {"status": report.status, "latencyMs": report.latency_ms,
                  "detail": report.detail}
    except TimeoutError:
        result = _down(loop.time() - started, f"no answer within {TEST_TIMEOUT_SECONDS:g} s")
    except ConnectorError as exc:
        result = _down(loop.time() - started, exc.message)
    except Exception as exc:  # a health check reports; the class name leaks nothing
        result = _down(loop.time() - started, f"test failed ({type(exc).__name__})")
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connector.close(), _CLOSE_TIMEOUT_SECONDS)
    metrics.CONNECTOR_UP.labels(tenant_id, row.id, row.connector_type).set(
        1 if result["status"] == "UP" else 0)
    return JSONResponse(result)


def _down(seconds: float, detail: str) -> dict[str, Any]:
    return {"status": "DOWN", "latencyMs": int(seconds * 1000), "detail": detail}


routes = [
    resource("/v1/connectors", GET=list_connectors, POST=create_connector),
    resource("/v1/connectors/{id}", GET=get_connector, PATCH=update_connector,
             DELETE=delete_connector),
    resource("/v1/connectors/{id}/test", POST=test_connector),
]
