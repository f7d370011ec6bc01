"""``/v1/schemas``: the schema registry. JSON Schema (2020-12, draft-07) and XSD definitions,
versioned; a new version is checked against the previous one (``BACKWARD``, the default:
it must accept what the previous accepted, as far as that can be checked) before it enters
the log, so a transformation that names a schema never starts refusing yesterday's
documents by surprise."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
from integrationos.api.schemas import SCHEMA_CREATE, SCHEMA_VALIDATE, SCHEMA_VERSION_CREATE
from integrationos.api.serializers import iso
from integrationos.api.validation import parse_body
from integrationos.schemas.compatibility import example_rejections, incompatibilities
from integrationos.schemas.payloads import check_document, check_payload
from integrationos.schemas.registry import (
    InvalidDefinition,
    ResolvedSchema,
    SchemaRef,
    parse_reference,
    stored_definition,
)
from integrationos.store.tables import schema_versions, schemas, transformations
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

MAX_KNOWN_EXAMPLES = 200  # the newest examples of earlier versions a new version must accept


def _definition_text(format_: str, definition: Any) -> str:
    try:
        return stored_definition(format_, definition)
    except InvalidDefinition as exc:
        raise ApiError(422, "VALIDATION_FAILED", f"the definition is not a usable {format_}",
                       [{"field": "/definition" + p["pointer"], "message": p["message"]}
                        for p in exc.problems]) from None


def _check_examples(schema: ResolvedSchema, examples: list[Any]) -> None:
    """Examples must be documents ``schema`` accepts (422 naming each fault otherwise)."""
    found = example_rejections(schema, examples)
    if found:
        raise ApiError(422, "VALIDATION_FAILED",
                       f"examples must be documents version {schema.version} accepts",
                       [{"field": f["pointer"], "message": f["message"]} for f in found])


async def _version(p: Platform, head: Row, version: int) -> Row:
    row = await first(p.engine, select(schema_versions).where(
        schema_versions.c.schema_id == head.id, schema_versions.c.tenant_id == head.tenant_id,
        schema_versions.c.version == version))
    if row is None:
        raise not_found("version of schema", f"{head.id}@{version}")
    return row


def _resolved(head: Row, version: Row) -> ResolvedSchema:
    return ResolvedSchema(head.format, head.name, version.version, version.definition)


def _definition_json(format_: str, text: str) -> Any:
    return json.loads(text) if format_ == "JSON_SCHEMA" else text


def _summary(head: Row) -> dict[str, Any]:
    return {"id": head.id, "name": head.name, "format": head.format,
            "compatibility": head.compatibility, "version": head.latest_version,
            "createdAt": iso(head.created_at), "updatedAt": iso(head.updated_at)}


def _version_added(tenant_id: str, schema_id: str, head: dict[str, str], version: int,
                   text: str, examples: list[Any]) -> Event:
    """``head`` is the schema's name, format and compatibility, carried by every version;
    the examples are kept so every later version is checked against them too."""
    return Event(t.SCHEMA_VERSION_ADDED, tenant_id, schema_id, {
        "id": schema_id, **head, "version": version, "definition": text,
        "examplesJson": json.dumps(examples, ensure_ascii=False) if examples else None})


async def _known_examples(p: Platform, head: Row) -> list[Any]:
    """Every example an earlier version was registered with (each accepted by its version
    and, under BACKWARD, by every version since)."""
    rows = await fetch_all(p.engine, select(schema_versions.c.examples_json).where(
        schema_versions.c.schema_id == head.id, schema_versions.c.tenant_id == head.tenant_id,
    ).order_by(schema_versions.c.version))
    return [example for row in rows if row.examples_json
            for example in json.loads(row.examples_json)][-MAX_KNOWN_EXAMPLES:]


async def _respond(p: Platform, tenant_id: str, schema_id: str, status: int = 200
                   ) -> JSONResponse:
    head = await get_live(p.engine, schemas, "schema", tenant_id, schema_id)
    versions = await fetch_all(p.engine, select(schema_versions).where(
        schema_versions.c.schema_id == head.id, schema_versions.c.tenant_id == tenant_id,
    ).order_by(schema_versions.c.version))
    latest = next(v for v in versions if v.version == head.latest_version)
    return JSONResponse(_summary(head) | {
        "definition": _definition_json(head.format, latest.definition),
        "versions": [{"version": v.version, "createdAt": iso(v.created_at)} for v in versions],
    }, status_code=status)


async def create_schema(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, SCHEMA_CREATE)
    text = _definition_text(body["format"], body["definition"])
    _check_examples(ResolvedSchema(body["format"], body["name"], 1, text),
                    body.get("examples", []))
    schema_id = new_id("sch")
    head = {"name": body["name"], "format": body["format"],
            "compatibility": body.get("compatibility", "BACKWARD")}
    async with p.write_lock(tenant_id):
        await ensure_unique_name(p.engine, schemas, "schema", tenant_id, body["name"])
        await commit(p, _version_added(tenant_id, schema_id, head, 1, text,
                                       body.get("examples", [])))
    return await _respond(p, tenant_id, schema_id, 201)


async def list_schemas(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    rows, next_cursor = await page(p.engine, schemas, live(schemas, tenant_id),
                                   page_request(request))
    return JSONResponse(listing([_summary(r) for r in rows], next_cursor))


async def get_schema(request: Request) -> Response:
    return await _respond(platform(request), tenant(request), request.path_params["id"])


async def add_version(request: Request) -> Response:
    """A new version; with ``BACKWARD``, 409 ``INCOMPATIBLE_SCHEMA`` listing every narrowing
    and every example (a document the previous version accepted) it would refuse."""
    p, tenant_id, schema_id = platform(request), tenant(request), request.path_params["id"]
    body = await parse_body(request, SCHEMA_VERSION_CREATE)
    examples = body.get("examples", [])
    async with p.write_lock(tenant_id):
        head = await get_live(p.engine, schemas, "schema", tenant_id, schema_id)
        text = _definition_text(head.format, body["definition"])
        previous = _resolved(head, await _version(p, head, head.latest_version))
        _check_examples(previous, examples)
        number = head.latest_version + 1
        new = ResolvedSchema(head.format, head.name, number, text)
        backward = head.compatibility == "BACKWARD"
        known = await _known_examples(p, head) if backward else []
        found = incompatibilities(previous, new, [*known, *examples]) if backward else []
        if found:
            raise ApiError(409, "INCOMPATIBLE_SCHEMA",
                           f"version {number} would refuse documents version {number - 1} "
                           "accepted (compatibility BACKWARD)", found)
        carried = {"name": head.name, "format": head.format,
                   "compatibility": head.compatibility}
        await commit(p, _version_added(tenant_id, schema_id, carried, number, text, examples))
    return await _respond(p, tenant_id, schema_id, 201)


async def get_version(request: Request) -> Response:
    p, tenant_id, schema_id = platform(request), tenant(request), request.path_params["id"]
    head = await get_live(p.engine, schemas, "schema", tenant_id, schema_id)
    raw = request.path_params["version"]
    if not raw.isdigit() or not 1 <= int(raw) <= head.latest_version:
        raise not_found("version of schema", f"{schema_id}@{raw[:20]}")
    row = await _version(p, head, int(raw))
    return JSONResponse({"schemaId": head.id, "name": head.name, "format": head.format,
                         "version": row.version,
                         "definition": _definition_json(head.format, row.definition),
                         "createdAt": iso(row.created_at)})


def _names(row: Row) -> set[str]:
    """The registered schema names a transformation refers to."""
    refs = (parse_reference(row.source_schema), parse_reference(row.target_schema))
    return {ref.name for ref in refs if isinstance(ref, SchemaRef)}


async def delete_schema(request: Request) -> Response:
    p, tenant_id, schema_id = platform(request), tenant(request), request.path_params["id"]
    async with p.write_lock(tenant_id):
        head = await get_live(p.engine, schemas, "schema", tenant_id, schema_id)
        users = [row.id for row in await fetch_all(p.engine, live(transformations, tenant_id))
                 if head.name in _names(row)]
        if users:
            raise ApiError(409, "SCHEMA_IN_USE",
                           f"transformation {users[0]} refers to schema {head.name!r}; change "
                           "it first", [{"transformationId": u} for u in users])
        await commit(p, Event(t.SCHEMA_DELETED, tenant_id, schema_id, {"id": schema_id}))
    return Response(status_code=204)


async def validate_document(request: Request) -> Response:
    """Validate against the latest version: a JSON value, a string of XML for an XSD, or,
    with ``contentType``, a CSV/fixed-width/XML/JSON text decoded as the pipeline would."""
    p, tenant_id, schema_id = platform(request), tenant(request), request.path_params["id"]
    body = await parse_body(request, SCHEMA_VALIDATE)
    head = await get_live(p.engine, schemas, "schema", tenant_id, schema_id)
    schema = _resolved(head, await _version(p, head, head.latest_version))
    document = body["document"]
    if "contentType" not in body:
        decoded, found = check_document(schema, document)
    elif not isinstance(document, str):
        raise ApiError(422, "VALIDATION_FAILED", "with contentType, document is the text",
                       [{"field": "/document", "message": "must be of type string"}])
    else:
        result = check_payload(document.encode(), body["contentType"], schema)
        decoded = result.value if result.records is None else result.records
        found = result.violations
    return JSONResponse({"valid": not found, "violations": found, "decoded": decoded})


routes = [
    resource("/v1/schemas", GET=list_schemas, POST=create_schema),
    resource("/v1/schemas/{id}", GET=get_schema, DELETE=delete_schema),
    resource("/v1/schemas/{id}/versions", POST=add_version),
    resource("/v1/schemas/{id}/versions/{version}", GET=get_version),
    resource("/v1/schemas/{id}/validate", POST=validate_document),
]
