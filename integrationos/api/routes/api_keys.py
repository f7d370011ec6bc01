"""``/v1/api-keys``: an admin issues, lists and revokes the tenant's API keys.

A new key is returned once, in the 201 answer; afterwards only its id, name, display prefix
and permissions are shown, never the key or its hash. Revocation is an event; each API
process stops accepting the key within its one-second cache.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.commands import commit
from integrationos.api.context import platform, tenant
from integrationos.api.db import fetch_all, first
from integrationos.api.errors import ApiError, not_found
from integrationos.api.issuance import ENVIRONMENT_ORDER, issue, revocation
from integrationos.api.routing import resource
from integrationos.api.schemas import API_KEY_CREATE
from integrationos.api.serializers import iso
from integrationos.api.validation import parse_body
from integrationos.store.tables import api_key_usage, api_keys

MAX_KEYS = 100  # per tenant, revoked ones included: bounds the unpaged listing


def _split(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def _described(row: Row) -> dict[str, Any]:
    return {"id": row.key_id, "name": row.name, "prefix": row.prefix,
            "roles": _split(row.roles), "environments": _split(row.environments),
            "live": row.live, "createdAt": iso(row.created_at)}


async def create_key(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, API_KEY_CREATE)
    issued = issue(tenant_id, body["name"], body["roles"],
                   body.get("environments", ENVIRONMENT_ORDER), body.get("live", True))
    async with p.write_lock(tenant_id):
        count = (await first(p.engine, select(func.count()).select_from(api_keys)
                             .where(api_keys.c.tenant_id == tenant_id)))[0]
        if count >= MAX_KEYS:
            raise ApiError(409, "LIMIT_REACHED", f"the tenant already has {MAX_KEYS} keys "
                           "(revoked ones count), the most a tenant holds")
        await commit(p, issued.event)
    row = await first(p.engine, select(api_keys).where(api_keys.c.key_id == issued.key_id))
    return JSONResponse(_described(row) | {"key": issued.key}, status_code=201)


async def list_keys(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    rows = await fetch_all(p.engine, select(api_keys, api_key_usage.c.last_used_at)
                           .outerjoin(api_key_usage, api_key_usage.c.key_id == api_keys.c.key_id)
                           .where(api_keys.c.tenant_id == tenant_id)
                           .order_by(api_keys.c.created_at, api_keys.c.key_id))
    return JSONResponse({"data": [
        _described(row) | {"revoked": row.revoked, "lastUsedAt":
                           None if row.last_used_at is None else iso(row.last_used_at)}
        for row in rows]})


async def revoke_key(request: Request) -> Response:
    """Idempotent: revoking a revoked key is a 204 too; another tenant's key is a 404."""
    p, tenant_id, key_id = platform(request), tenant(request), request.path_params["id"]
    row = await first(p.engine, select(api_keys.c.revoked).where(
        api_keys.c.tenant_id == tenant_id, api_keys.c.key_id == key_id))
    if row is None:
        raise not_found("API key", key_id)
    if not row.revoked:
        await commit(p, revocation(tenant_id, key_id))
    return Response(status_code=204)


routes = [
    resource("/v1/api-keys", GET=list_keys, POST=create_key),
    resource("/v1/api-keys/{id}", DELETE=revoke_key),
]
