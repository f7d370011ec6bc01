"""``/v1/integrations/{id}/test-cases``: sandbox test cases saved with an integration, the
gate a promotion to PROD must pass (``api/gate.py``).

Cases belong to the lineage (every stage of one integration), so cases written against the
DEV integration guard the promotion of its QA stage to PROD.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.commands import commit
from integrationos.api.context import new_id, platform, tenant
from integrationos.api.db import fetch_all, first, get_live, live
from integrationos.api.errors import ApiError, not_found
from integrationos.api.lineage import actor, lineage_of
from integrationos.api.routing import resource
from integrationos.api.schemas import TEST_CASE_CREATE
from integrationos.api.serializers import iso
from integrationos.api.validation import parse_body
from integrationos.store.tables import integration_test_cases as cases
from integrationos.store.tables import integrations
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

MAX_CASES = 100


def _case_json(row: Row) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "payload": json.loads(row.payload_json),
            "expected": json.loads(row.expected_json), "match": row.match,
            "createdBy": row.created_by, "createdAt": iso(row.created_at)}


async def _lineage(request: Request) -> str:
    p, tenant_id = platform(request), tenant(request)
    await get_live(p.engine, integrations, "integration", tenant_id, request.path_params["id"])
    return await lineage_of(p, tenant_id, request.path_params["id"])


async def create_case(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, TEST_CASE_CREATE)
    who = await actor(request)
    case_id = new_id("tc")
    async with p.write_lock(tenant_id):
        lineage_id = await _lineage(request)
        existing = await fetch_all(p.engine, live(cases, tenant_id,
                                                  cases.c.lineage_id == lineage_id))
        if any(row.name == body["name"] for row in existing):
            raise ApiError(409, "CONFLICT", f"a test case named {body['name']!r} already "
                           "exists for this integration", [{"field": "/name"}])
        if len(existing) >= MAX_CASES:
            raise ApiError(409, "LIMIT_REACHED", f"an integration holds at most {MAX_CASES} "
                           "test cases")
        await commit(p, Event(t.INTEGRATION_TEST_CASE_SAVED, tenant_id, lineage_id, {
            "id": lineage_id, "testCaseId": case_id, "name": body["name"],
            "payloadJson": json.dumps(body["payload"], ensure_ascii=False),
            "expectedJson": json.dumps(body["expected"], ensure_ascii=False),
            "match": body.get("match", "SUBSET"), "savedBy": who}))
    row = await first(p.engine, select(cases).where(cases.c.id == case_id))
    return JSONResponse(_case_json(row), status_code=201)


async def list_cases(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    lineage_id = await _lineage(request)
    rows = await fetch_all(p.engine, live(cases, tenant_id, cases.c.lineage_id == lineage_id)
                           .order_by(cases.c.created_at, cases.c.id))
    return JSONResponse({"data": [_case_json(row) for row in rows]})


async def delete_case(request: Request) -> Response:
    p, tenant_id, case_id = platform(request), tenant(request), request.path_params["caseId"]
    who = await actor(request)
    async with p.write_lock(tenant_id):
        lineage_id = await _lineage(request)
        found = await first(p.engine, select(func.count()).select_from(cases).where(
            cases.c.id == case_id, cases.c.tenant_id == tenant_id,
            cases.c.lineage_id == lineage_id, cases.c.deleted.is_(False)))
        if not found[0]:
            raise not_found("test case", case_id)
        await commit(p, Event(t.INTEGRATION_TEST_CASE_DELETED, tenant_id, lineage_id, {
            "id": lineage_id, "testCaseId": case_id, "deletedBy": who}))
    return Response(status_code=204)


routes = [
    resource("/v1/integrations/{id}/test-cases", GET=list_cases, POST=create_case),
    resource("/v1/integrations/{id}/test-cases/{caseId}", DELETE=delete_case),
]
