"""``POST /v1/sandbox/execute``: run an integration's validate and transform steps on a
payload, exactly as the pipeline would (same ``run_flow``), without delivering anything."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.context import platform, tenant
from integrationos.api.db import first, get_live
from integrationos.api.errors import ApiError
from integrationos.api.routing import resource
from integrationos.api.schemas import SANDBOX_EXECUTE
from integrationos.api.validation import parse_body
from integrationos.engine.flow import FlowDefinition, FlowResult, run_flow
from integrationos.store.tables import integrations, transformations


def _result(result: FlowResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "durationMs": result.duration_ms,
        "outputPayload": result.output,
        "errors": result.errors,
        "steps": [
            {"name": s.name, "status": s.status, "durationMs": s.duration_ms, "errors": s.errors}
            for s in result.steps
        ],
    }


async def execute(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, SANDBOX_EXECUTE)
    integration = await get_live(p.engine, integrations, "integration", tenant_id,
                                 body["integrationId"])
    definition = FlowDefinition(integration.expression)
    if integration.transformation_id is not None:
        # Deleting a transformation in use is refused, so a deleted row is still the one
        # the pipeline would run; read it regardless of the flag.
        row = await first(p.engine, transformations.select().where(
            transformations.c.tenant_id == tenant_id,
            transformations.c.id == integration.transformation_id))
        if row is None:
            raise ApiError(409, "TRANSFORMATION_MISSING",
                           f"the integration's transformation {integration.transformation_id} "
                           "does not exist")
        definition = FlowDefinition(row.expression, row.source_schema)
    return JSONResponse(_result(run_flow(definition, body["payload"])))


routes = [resource("/v1/sandbox/execute", POST=execute)]
