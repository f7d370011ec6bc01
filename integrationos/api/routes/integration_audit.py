"""``GET /v1/integrations/{id}/versions[/{version}]`` and ``/history``: every immutable
version of an integration, and its audit log built from the events, oldest first.

Both stay readable after the integration is deleted: an audit log outlives what it audits.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.context import platform, tenant
from integrationos.api.db import fetch_all, first, listing, page_request
from integrationos.api.errors import ApiError, not_found
from integrationos.api.lineage import after, definition, find_integration_version, seq_cursor
from integrationos.api.routing import resource
from integrationos.api.serializers import iso
from integrationos.store.tables import integration_history, integration_versions, integrations


async def _known(request: Request) -> str:
    """The integration id of the path, deleted or not; 404 if the tenant never had it."""
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    row = await first(p.engine, select(integrations.c.id).where(
        integrations.c.id == integration_id, integrations.c.tenant_id == tenant_id))
    if row is None:
        raise not_found("integration", integration_id)
    return integration_id


def version_json(row: Row) -> dict[str, Any]:
    promoted_from = None
    if row.promoted_from_id is not None:
        promoted_from = {"integrationId": row.promoted_from_id,
                         "version": row.promoted_from_version}
    return {"integrationId": row.integration_id, "version": row.version, "name": row.name,
            "environment": row.environment, **definition(row), "origin": row.origin,
            "promotedFrom": promoted_from, "restoredVersion": row.restored_version,
            "createdBy": row.created_by, "createdAt": iso(row.created_at)}


async def list_versions(request: Request) -> Response:
    integration_id, wanted = await _known(request), page_request(request)
    rows = await fetch_all(platform(request).engine, select(integration_versions).where(
        integration_versions.c.integration_id == integration_id,
        integration_versions.c.tenant_id == tenant(request),
        integration_versions.c.version > after(wanted),
    ).order_by(integration_versions.c.version).limit(wanted.limit + 1))
    more = len(rows) > wanted.limit
    rows = rows[:wanted.limit]
    return JSONResponse(listing([version_json(r) for r in rows],
                                seq_cursor(rows[-1].version) if more else None))


async def get_version(request: Request) -> Response:
    integration_id, given = await _known(request), request.path_params["version"]
    if not given.isdigit() or not 1 <= int(given) <= 2_147_483_647:
        raise ApiError(404, "NOT_FOUND", f"no version {given[:20]!r} of integration "
                       f"{integration_id}")
    row = await find_integration_version(platform(request), tenant(request), integration_id,
                                         int(given))
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"no version {given} of integration {integration_id}")
    return JSONResponse(version_json(row))


async def history(request: Request) -> Response:
    integration_id, wanted = await _known(request), page_request(request)
    rows = await fetch_all(platform(request).engine, select(integration_history).where(
        integration_history.c.integration_id == integration_id,
        integration_history.c.tenant_id == tenant(request),
        integration_history.c.seq > after(wanted),
    ).order_by(integration_history.c.seq).limit(wanted.limit + 1))
    more = len(rows) > wanted.limit
    rows = rows[:wanted.limit]
    return JSONResponse(listing([
        {"eventId": r.event_id, "type": r.event_type, "occurredAt": iso(r.occurred_at),
         "by": r.actor, "version": r.version, "details": json.loads(r.details_json)}
        for r in rows], seq_cursor(rows[-1].seq) if more else None))


routes = [
    resource("/v1/integrations/{id}/versions", GET=list_versions),
    resource("/v1/integrations/{id}/versions/{version}", GET=get_version),
    resource("/v1/integrations/{id}/history", GET=history),
]
