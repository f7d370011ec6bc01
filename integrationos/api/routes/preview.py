"""``POST /v1/transformations/preview``: evaluate an expression being edited, on every
keystroke. Nothing is saved and nothing is appended to the log; errors (a syntax error
included) come back in the 200 answer with their JSONata code and position, because an
expression being typed is expected to be wrong most of the time."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.context import Platform, platform, tenant
from integrationos.api.routing import resource
from integrationos.api.schemas import TRANSFORMATION_PREVIEW
from integrationos.api.validation import parse_body
from integrationos.engine.flow import FlowDefinition, FlowResult, StepResult, run_flow
from integrationos.engine.functions import EvaluationContext
from integrationos.schemas.registry import ResolvedSchema, resolve_or_explain


def _resolve(p: Platform, tenant_id: str, ref: Any) -> tuple[ResolvedSchema | None, str | None]:
    return resolve_or_explain(p.engine, tenant_id,
                              None if ref is None else json.dumps(ref, ensure_ascii=False))


def _validation(step: StepResult, note: str | None) -> dict[str, Any]:
    return {"status": step.status, "errors": step.errors,
            **({"detail": note} if note and step.status == "SKIPPED" else {})}


def _answer(result: FlowResult, definition: FlowDefinition) -> dict[str, Any]:
    by_name = {s.name: s for s in result.steps}
    return {
        "result": result.output,
        "durationMs": result.duration_ms,
        "errors": [
            {"code": e.get("code"), "message": e.get("message"),
             "position": e.get("position"), **({"pointer": e["pointer"]} if "pointer" in e
                                                 else {})}
            for e in result.errors
        ],
        "validation": {
            "source": _validation(by_name["validate"], definition.source_note),
            "target": _validation(by_name["validateOutput"], definition.target_note),
        },
    }


def _preview(p: Platform, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
    source, source_note = _resolve(p, tenant_id, body.get("sourceSchema"))
    target, target_note = _resolve(p, tenant_id, body.get("targetSchema"))
    definition = FlowDefinition(body["expression"], source, target, source_note, target_note)
    environment = body.get("environment", "DEV")
    context = EvaluationContext(
        tenant=tenant_id, environment=environment,
        variables=p.lookups.variables(tenant_id, environment),
        lookup=p.lookups.resolver(tenant_id),
    )
    payload, raw = body.get("payload"), None
    if source is not None and source.format == "XSD" and isinstance(payload, str):
        payload, raw = None, payload.encode()
    result = run_flow(definition, payload, context, raw=raw,
                      content_type="application/xml" if raw else None,
                      bindings=body.get("bindings"))
    return _answer(result, definition)


async def preview(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await parse_body(request, TRANSFORMATION_PREVIEW)
    return JSONResponse(await run_in_threadpool(_preview, p, tenant_id, body))


routes = [resource("/v1/transformations/preview", POST=preview)]
