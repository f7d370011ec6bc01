"""``POST /v1/sandbox/execute``: run an integration's validate and transform steps on a
payload, exactly as the pipeline would (same ``run_flow``), without delivering anything."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.context import Platform, platform, tenant
from integrationos.api.errors import not_found
from integrationos.api.routing import resource
from integrationos.api.schemas import SANDBOX_EXECUTE
from integrationos.api.validation import parse_body
from integrationos.engine.catalog import FlowCatalog
from integrationos.engine.flow import FlowDefinition, FlowResult, run_flow
from integrationos.engine.functions import EvaluationContext


def sandbox_result(result: FlowResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "durationMs": result.duration_ms,
        "outputPayload": result.output,
        "errors": result.errors,
        "steps": [
            {"name": s.name, "status": s.status, "durationMs": s.duration_ms, "errors": s.errors,
             **({"detail": s.detail} if s.detail else {})}
            for s in result.steps
        ],
    }


async def run_payload(p: Platform, tenant_id: str, flow: FlowDefinition, environment: str,
                      payload: Any) -> FlowResult:
    """Run ``flow`` on ``payload`` with ``environment``'s variables and the tenant's lookups,
    as the pipeline would; never delivers. Shared by the sandbox and the promotion gate."""
    context = EvaluationContext(
        tenant=tenant_id, environment=environment,
        variables=await run_in_threadpool(p.lookups.variables, tenant_id, environment),
        lookup=p.lookups.resolver(tenant_id),
    )
    raw = None
    if flow.source is not None and flow.source.format == "XSD" and isinstance(payload, str):
        payload, raw = None, payload.encode()  # an XML document, as the XSD expects
    return await run_in_threadpool(run_flow, flow, payload, context, raw=raw,
                                   content_type="application/xml" if raw else None)


async def execute(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, SANDBOX_EXECUTE)
    # The worker's own catalog, uncached: the sandbox runs exactly the flow (pinned
    # transformation version and schema) that the pipeline would run for this integration.
    view = await run_in_threadpool(FlowCatalog(p.engine, ttl=0).lookup, tenant_id,
                                   body["integrationId"])
    if view is None:
        raise not_found("integration", body["integrationId"])
    result = await run_payload(p, tenant_id, view.flow, view.environment, body["payload"])
    return JSONResponse(sandbox_result(result))


routes = [resource("/v1/sandbox/execute", POST=execute)]
