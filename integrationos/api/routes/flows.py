"""``POST /v1/flows``: the quickstart's short form, ``flows.create(source="sftp", ...)``.

Each side names an existing connector by id, by name, or by type when the tenant has
exactly one connector of that type. Nothing is created implicitly: an ambiguous or missing
side is a 422 that lists the candidates, and then an integration is created as by
``POST /v1/integrations``.
"""

from __future__ import annotations

from sqlalchemy import Row
from starlette.requests import Request
from starlette.responses import Response

from integrationos.api.context import Platform, changed_by, platform, tenant
from integrationos.api.db import fetch_all, live
from integrationos.api.routes.connectors import canonical_type
from integrationos.api.routes.integrations import Problems, create_integration, find_connector
from integrationos.api.routing import resource
from integrationos.api.schemas import FLOW_CREATE
from integrationos.api.validation import parse_body
from integrationos.store.tables import connectors

_MAX_LISTED = 5
_MAX_NAME = 200


async def _pick(p: Platform, tenant_id: str, ref: str, field: str,
                problems: Problems) -> Row | None:
    """The connector ``ref`` designates, or None with the reason added to ``problems``."""
    row = await find_connector(p, tenant_id, ref)
    if row is not None:
        return row
    type_name = canonical_type(ref)
    if type_name is None:
        problems.add(field, f"no connector with id or name {ref!r}, and no connector type "
                            "of that name")
        return None
    rows = await fetch_all(p.engine, live(
        connectors, tenant_id, connectors.c.connector_type == type_name
    ).order_by(connectors.c.created_at).limit(_MAX_LISTED + 1))
    if len(rows) == 1:
        return rows[0]
    if not rows:
        problems.add(field, f"no {type_name} connector yet; create one with POST /v1/connectors")
    else:
        listed = ", ".join(f"{r.id} ({r.name!r})" for r in rows[:_MAX_LISTED])
        problems.add(field, f"several {type_name} connectors match: {listed}; "
                            "pass an id or a name")
    return None


async def create_flow(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, FLOW_CREATE)
    problems = Problems()
    source = await _pick(p, tenant_id, body["source"], "/source", problems)
    target = await _pick(p, tenant_id, body["target"], "/target", problems)
    problems.raise_any()
    assert source is not None and target is not None
    fields = {key: body[key] for key in
              ("expression", "transformationId", "environment", "errorStrategy", "backoff")
              if key in body}
    fields |= {
        "name": body.get("name", f"{source.name} → {target.name}"[:_MAX_NAME]),
        "sourceConnectorId": source.id,
        "targetConnectorId": target.id,
    }
    return await create_integration(p, tenant_id, fields, changed_by(request))


routes = [resource("/v1/flows", POST=create_flow)]
