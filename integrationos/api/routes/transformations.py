"""``/v1/transformations``: named, versioned JSONata expressions with an optional source
schema. Expressions are compiled when saved, so a syntax error is a 422 now rather than a
failed message later."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
from integrationos.api.errors import ApiError, not_found
from integrationos.api.routing import resource
from integrationos.api.schemas import TRANSFORMATION_CREATE, TRANSFORMATION_UPDATE
from integrationos.api.validation import parse_body
from integrationos.engine.transform import TransformError, compile_expression
from integrationos.schemas.json_schema import InvalidSchema, check_schema
from integrationos.schemas.registry import recurses_endlessly, unresolvable_refs
from integrationos.store.tables import integrations, transformation_versions, transformations
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event


def compiled(expression: str, field: str = "/expression") -> str:
    """``expression`` if it compiles; else 422 ``INVALID_EXPRESSION`` with JSONata's error."""
    try:
        compile_expression(expression)
    except TransformError as exc:
        raise ApiError(422, "INVALID_EXPRESSION", f"{field} does not compile",
                       [{"field": field, **exc.as_dict()}]) from None
    return expression


def _schema_text(schema: Any, field: str = "sourceSchema") -> str | None:
    """The JSON text stored for a source or target schema: a registry name as given
    (``name`` or ``name@version``), or a checked inline JSON Schema."""
    if isinstance(schema, dict):
        try:
            check_schema(schema)
        except InvalidSchema as exc:
            raise ApiError(422, "VALIDATION_FAILED", f"{field} is not a valid JSON Schema",
                           [{"field": f"/{field}", "message": str(exc)[:300]}]) from None
        bad = unresolvable_refs(schema)
        if bad:
            raise ApiError(422, "VALIDATION_FAILED", f"{field} has unresolvable references",
                           [{"field": f"/{field}", "message": f"cannot resolve {ref[:100]!r}"}
                            for ref in bad])
    text = None if schema is None else json.dumps(schema, ensure_ascii=False)
    if isinstance(schema, dict) and recurses_endlessly(text):
        raise ApiError(422, "VALIDATION_FAILED", f"{field} refers to itself without end",
                       [{"field": f"/{field}", "message": "a $ref cycle that never reaches "
                         "a value (e.g. {\"$ref\": \"#\"})"}])
    return text


def _state(transformation_id: str, name: str, source: str | None, target: str | None,
           expression: str, version: int) -> dict[str, Any]:
    return {"id": transformation_id, "name": name, "sourceSchema": source,
            "targetSchema": target, "expression": expression, "version": version}


async def _respond(p: Platform, tenant_id: str, transformation_id: str, status: int = 200
                   ) -> JSONResponse:
    row = await get_live(p.engine, transformations, "transformation", tenant_id,
                         transformation_id)
    return JSONResponse(serializers.transformation(row), status_code=status)


async def create_transformation(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, TRANSFORMATION_CREATE)
    expression = compiled(body["expression"])
    source = _schema_text(body.get("sourceSchema"))
    target = _schema_text(body.get("targetSchema"), "targetSchema")
    transformation_id = new_id("trf")
    async with p.write_lock(tenant_id):
        await ensure_unique_name(p.engine, transformations, "transformation", tenant_id,
                                 body["name"])
        data = _state(transformation_id, body["name"], source, target, expression, 1)
        await commit(p, Event(t.TRANSFORMATION_CREATED, tenant_id, transformation_id, data))
    return await _respond(p, tenant_id, transformation_id, 201)


async def list_transformations(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    rows, next_cursor = await page(p.engine, transformations, live(transformations, tenant_id),
                                   page_request(request))
    return JSONResponse(listing([serializers.transformation(r) for r in rows], next_cursor))


async def get_transformation(request: Request) -> Response:
    return await _respond(platform(request), tenant(request), request.path_params["id"])


async def update_transformation(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    transformation_id = request.path_params["id"]
    body = await parse_body(request, TRANSFORMATION_UPDATE)
    expression = compiled(body["expression"]) if "expression" in body else None
    async with p.write_lock(tenant_id):
        row = await get_live(p.engine, transformations, "transformation", tenant_id,
                             transformation_id)
        name = body.get("name", row.name)
        source = (_schema_text(body["sourceSchema"]) if "sourceSchema" in body
                  else row.source_schema)
        target = (_schema_text(body["targetSchema"], "targetSchema") if "targetSchema" in body
                  else row.target_schema)
        await ensure_unique_name(p.engine, transformations, "transformation", tenant_id, name,
                                 transformation_id)
        data = _state(transformation_id, name, source, target, expression or row.expression,
                      row.version + 1)
        await commit(p, Event(t.TRANSFORMATION_UPDATED, tenant_id, transformation_id, data))
    return await _respond(p, tenant_id, transformation_id)


async def delete_transformation(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    transformation_id = request.path_params["id"]
    async with p.write_lock(tenant_id):
        await get_live(p.engine, transformations, "transformation", tenant_id,
                       transformation_id)
        user = await first(p.engine, live(
            integrations, tenant_id, integrations.c.transformation_id == transformation_id))
        if user is not None:
            raise ApiError(409, "TRANSFORMATION_IN_USE",
                           f"integration {user.id} uses this transformation; delete it or "
                           "change it first", [{"integrationId": user.id}])
        await commit(p, Event(t.TRANSFORMATION_DELETED, tenant_id, transformation_id,
                              {"id": transformation_id}))
    return Response(status_code=204)


async def list_versions(request: Request) -> Response:
    p, tenant_id, transformation_id = platform(request), tenant(request), request.path_params["id"]
    await get_live(p.engine, transformations, "transformation", tenant_id, transformation_id)
    rows = await fetch_all(p.engine, select(transformation_versions).where(
        transformation_versions.c.tenant_id == tenant_id,
        transformation_versions.c.transformation_id == transformation_id,
    ).order_by(transformation_versions.c.version))
    return JSONResponse({"data": [serializers.transformation_version(r) for r in rows]})


async def get_version(request: Request) -> Response:
    p, tenant_id, transformation_id = platform(request), tenant(request), request.path_params["id"]
    wanted = request.path_params["version"]
    row = None
    if wanted.isdigit() and len(wanted) < 10:
        row = await find_version(p, tenant_id, transformation_id, int(wanted))
    if row is None:
        raise not_found("transformation version", f"{transformation_id}@{wanted[:20]}")
    return JSONResponse(serializers.transformation_version(row))


async def find_version(p: Platform, tenant_id: str, transformation_id: str,
                       version: int) -> Row | None:
    """One immutable version of a transformation (what an integration pins)."""
    return await first(p.engine, select(transformation_versions).where(
        transformation_versions.c.tenant_id == tenant_id,
        transformation_versions.c.transformation_id == transformation_id,
        transformation_versions.c.version == version,
    ))


routes = [
    resource("/v1/transformations", GET=list_transformations, POST=create_transformation),
    resource("/v1/transformations/{id}", GET=get_transformation, PATCH=update_transformation,
             DELETE=delete_transformation),
    resource("/v1/transformations/{id}/versions", GET=list_versions),
    resource("/v1/transformations/{id}/versions/{version}", GET=get_version),
]
