"""``POST /v1/integrations/{id}/promote`` and ``/rollback``, and the lineage's connector
bindings: how a version moves DEV → QA → PROD and how PROD steps back.

A promotion copies one immutable version of the stage's integration into the next stage's
integration of the same lineage (created on the first promotion), with each connector
replaced by the one bound for that stage. One ``integration.promoted`` event carries the
new state, so the target changes atomically with the audit record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api import serializers
from integrationos.api.commands import commit
from integrationos.api.context import Platform, new_id, platform, tenant
from integrationos.api.db import fetch_all, first, get_live, live
from integrationos.api.errors import ApiError
from integrationos.api.gate import run_cases
from integrationos.api.lineage import (
    NEXT_STAGE,
    actor,
    definition,
    find_integration_version,
    lineage_of,
    stage_integrations,
    unprocessable,
)
from integrationos.api.routes.integrations import Problems, check_role, find_connector
from integrationos.api.routes.transformations import find_version
from integrationos.api.routing import resource
from integrationos.api.schemas import INTEGRATION_PROMOTE, INTEGRATION_ROLLBACK
from integrationos.api.validation import check, parse_body, parse_json, read_body
from integrationos.engine.catalog import flow_definition
from integrationos.engine.flow import FlowDefinition
from integrationos.store.tables import (
    connector_bindings,
    connectors,
    integration_test_cases,
    integration_versions,
    integrations,
    transformations,
)
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

_ROLES = (("sourceConnectorId", "source"), ("targetConnectorId", "target"))


async def _stored_bindings(p: Platform, tenant_id: str, lineage_id: str, environment: str
                           ) -> dict[str, str]:
    rows = await fetch_all(p.engine, select(connector_bindings).where(
        connector_bindings.c.tenant_id == tenant_id,
        connector_bindings.c.lineage_id == lineage_id,
        connector_bindings.c.environment == environment))
    return {row.from_connector_id: row.to_connector_id for row in rows}


async def _bind(p: Platform, tenant_id: str, version_definition: dict[str, Any],
                given: dict[str, str], stored: dict[str, str], to: str
                ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The definition with each connector replaced by its binding, and the bindings applied.
    422 listing every connector without a usable binding, and every binding given for a
    connector the version does not use."""
    problems, bound, applied = Problems(), dict(version_definition), []
    used = {version_definition[field] for field, _ in _ROLES} - {None}
    for from_id in sorted(set(given) - used):
        problems.add(f"/connectorBindings/{from_id}",
                     "is not a connector of the version being promoted (it uses: "
                     f"{', '.join(sorted(used)) or 'none'})")
    for field, role in _ROLES:
        from_id = version_definition[field]
        if from_id is None:
            continue
        where = f"/connectorBindings/{from_id}"
        ref = given.get(from_id) or stored.get(from_id)
        if ref is None:
            problems.add(where, f"the {role} connector {from_id} has no {to} connector bound: "
                         "give one in connectorBindings")
            continue
        source = await first(p.engine, select(connectors).where(
            connectors.c.id == from_id, connectors.c.tenant_id == tenant_id))
        bound_row = await find_connector(p, tenant_id, ref)
        if bound_row is None:
            problems.add(where, f"no connector with id or name {ref!r}")
            continue
        if bound_row.id == from_id:
            problems.add(where, f"must be another connector than {from_id}: each stage uses "
                         "its own connectors")
            continue
        if source is not None and bound_row.connector_type != source.connector_type:
            problems.add(where, f"connector {bound_row.name!r} is {bound_row.connector_type}, "
                         f"the {role} connector is {source.connector_type}")
            continue
        role_problems = Problems()
        check_role(bound_row, f"/{field}", role_problems)
        for detail in role_problems.details:
            problems.add(where, detail["message"])
        bound[field] = bound_row.id
        applied.append({"role": role, "fromConnectorId": from_id,
                        "toConnectorId": bound_row.id})
    problems.raise_any()
    return bound, applied


async def _check_transformation(p: Platform, tenant_id: str, version_definition: dict[str, Any]
                                ) -> None:
    """The pinned transformation version must still be there (it travels as it is)."""
    transformation_id = version_definition["transformationId"]
    if transformation_id is None:
        return
    version = version_definition["transformationVersion"]
    alive = await first(p.engine, live(transformations, tenant_id,
                                       transformations.c.id == transformation_id))
    if alive is None or (version is not None and
                         await find_version(p, tenant_id, transformation_id, version) is None):
        raise unprocessable("/version", f"the version pins transformation {transformation_id}"
                            f"@{version}, which no longer exists")


def _flow(p: Platform, tenant_id: str, version_definition: dict[str, Any]) -> FlowDefinition:
    with p.engine.connect() as conn:
        return flow_definition(conn, tenant_id, version_definition["transformationId"],
                               version_definition["transformationVersion"],
                               version_definition["expression"])


async def _gate(p: Platform, tenant_id: str, lineage_id: str, to: str,
                version_definition: dict[str, Any]) -> dict[str, Any] | None:
    """Run the lineage's saved test cases on the version when it goes to PROD; 409
    ``PROMOTION_GATE_FAILED`` with every case's result when one fails. None: no gate."""
    if to != "PROD":
        return None
    cases = await fetch_all(p.engine, live(
        integration_test_cases, tenant_id, integration_test_cases.c.lineage_id == lineage_id
    ).order_by(integration_test_cases.c.created_at, integration_test_cases.c.id))
    if not cases:
        return None
    flow = await run_in_threadpool(_flow, p, tenant_id, version_definition)
    results = await run_cases(p, tenant_id, cases, flow, to)
    failed = [r for r in results if r["status"] == "FAILED"]
    if failed:
        raise ApiError(409, "PROMOTION_GATE_FAILED",
                       f"{len(failed)} of {len(results)} test cases failed on the version "
                       "being promoted; nothing was promoted", results)
    return {"status": "PASSED", "cases": [
        {key: r[key] for key in ("testCaseId", "name", "status", "durationMs")}
        for r in results]}


async def _source(p: Platform, tenant_id: str, named: Row, lineage_id: str, stage: str
                  ) -> Row:
    """The lineage's integration in ``stage``: the one named, or its sibling there."""
    if named.environment == stage:
        return named
    found = (await stage_integrations(p, tenant_id, lineage_id)).get(stage)
    if found is None:
        raise unprocessable("/from", f"integration {named.id} has no {stage} stage yet")
    return found


async def promote(request: Request) -> Response:
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    body = await parse_body(request, INTEGRATION_PROMOTE)
    stage_from, stage_to = body["from"], body["to"]
    if NEXT_STAGE.get(stage_from) != stage_to:
        raise unprocessable("/to", f"{stage_from} cannot be promoted to {stage_to}: DEV goes "
                            "to QA and QA to PROD, never skipping a stage")
    who = await actor(request)
    async with p.write_lock(tenant_id):
        named = await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
        lineage_id = await lineage_of(p, tenant_id, named.id)
        source = await _source(p, tenant_id, named, lineage_id, stage_from)
        number = body.get("version", source.version)
        version = await find_integration_version(p, tenant_id, source.id, number)
        if version is None:
            raise unprocessable("/version", f"integration {source.id} has no version {number}")
        if stage_from == "QA" and version.promoted_from_id is None:
            raise unprocessable("/version", f"QA version {number} of {source.id} was not "
                                "promoted from DEV (it was created or edited in QA): promote "
                                "it from DEV first")
        version_definition = definition(version)
        await _check_transformation(p, tenant_id, version_definition)
        bound, applied = await _bind(
            p, tenant_id, version_definition, body.get("connectorBindings", {}),
            await _stored_bindings(p, tenant_id, lineage_id, stage_to), stage_to)
        target = (await stage_integrations(p, tenant_id, lineage_id)).get(stage_to)
        clash = await first(p.engine, live(
            integrations, tenant_id, integrations.c.name == version.name,
            integrations.c.environment == stage_to,
            integrations.c.id != (target.id if target else "")))
        if clash is not None:
            raise ApiError(409, "CONFLICT", f"another integration named {version.name!r} "
                           f"already exists in {stage_to}", [{"field": "/name", "id": clash.id}])
        gate = await _gate(p, tenant_id, lineage_id, stage_to, version_definition)
        target_id = target.id if target else new_id("int")
        target_version = target.version + 1 if target else 1
        state = {"id": target_id, "name": version.name, "environment": stage_to, **bound,
                 "version": target_version}
        event = Event(t.INTEGRATION_PROMOTED, tenant_id, target_id, {
            "id": source.id, "fromEnvironment": stage_from, "toEnvironment": stage_to,
            "promotedId": target_id, "promotedBy": who, "sourceVersion": number,
            "targetVersion": target_version, "lineageId": lineage_id,
            "connectorBindings": applied, "gate": gate, "state": state})
        await commit(p, event)
    return JSONResponse({
        "fromEnvironment": stage_from, "toEnvironment": stage_to,
        "source": {"integrationId": source.id, "version": number},
        "target": {"integrationId": target_id, "version": target_version},
        "created": target is None, "connectorBindings": applied, "gate": gate,
        "promotedBy": who, "promotedAt": serializers.iso(event.occurred_at_ms),
    }, status_code=201 if target is None else 200)


def restore_point(versions: dict[int, Row], current: int) -> int | None:
    """The version a rollback from ``current`` restores: the one live before it, skipping
    what earlier rollbacks undid, so repeated rollbacks walk back one promotion at a time."""
    def before(number: int) -> int:
        row = versions.get(number)
        if row is not None and row.restored_version is not None:
            return before(row.restored_version)
        return number - 1

    candidate = before(current)
    while candidate in versions and versions[candidate].restored_version is not None:
        candidate = versions[candidate].restored_version
    return candidate if candidate in versions else None


async def _optional_body(request: Request) -> dict[str, Any]:
    raw = await read_body(request, platform(request).settings.max_payload_bytes)
    value = parse_json(raw) if raw.strip() else {}
    check(INTEGRATION_ROLLBACK, value)
    return value


async def rollback(request: Request) -> Response:
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    body = await _optional_body(request)
    who = await actor(request)
    async with p.write_lock(tenant_id):
        row = await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
        if row.environment != "PROD":
            raise ApiError(409, "ROLLBACK_NOT_AVAILABLE", f"integration {row.id} is in "
                           f"{row.environment}; only a PROD integration rolls back (in DEV, "
                           "update it; in QA, promote again)")
        versions = {v.version: v for v in await fetch_all(p.engine, select(
            integration_versions).where(integration_versions.c.integration_id == row.id,
                                        integration_versions.c.tenant_id == tenant_id))}
        restored = restore_point(versions, row.version)
        if restored is None:
            raise ApiError(409, "ROLLBACK_NOT_AVAILABLE",
                           f"version {row.version} has no earlier PROD version to go back to")
        version_definition = definition(versions[restored])
        problems = Problems()
        for field, _role in _ROLES:
            connector_id = version_definition[field]
            if connector_id and await first(p.engine, live(
                    connectors, tenant_id, connectors.c.id == connector_id)) is None:
                problems.add(f"/{field}", f"connector {connector_id} of version {restored} "
                             "was deleted")
        if problems.details:
            raise ApiError(409, "ROLLBACK_NOT_AVAILABLE",
                           f"version {restored} can no longer run", problems.details)
        state = {"id": row.id, "name": versions[restored].name, "environment": row.environment,
                 **version_definition, "version": row.version + 1}
        await commit(p, Event(t.INTEGRATION_ROLLED_BACK, tenant_id, row.id, {
            "id": row.id, "fromVersion": row.version, "restoredVersion": restored,
            "reason": body.get("reason"), "rolledBackBy": who, "state": state}))
    updated = await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
    return JSONResponse(serializers.integration(updated))


async def list_bindings(request: Request) -> Response:
    """The bindings remembered for the integration's lineage, per stage."""
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
    lineage_id = await lineage_of(p, tenant_id, integration_id)
    rows = await fetch_all(p.engine, select(connector_bindings).where(
        connector_bindings.c.tenant_id == tenant_id,
        connector_bindings.c.lineage_id == lineage_id,
    ).order_by(connector_bindings.c.environment, connector_bindings.c.from_connector_id))
    return JSONResponse({"lineageId": lineage_id, "data": [
        {"environment": r.environment, "fromConnectorId": r.from_connector_id,
         "toConnectorId": r.to_connector_id, "updatedAt": serializers.iso(r.updated_at)}
        for r in rows]})


routes = [
    resource("/v1/integrations/{id}/promote", POST=promote),
    resource("/v1/integrations/{id}/rollback", POST=rollback),
    resource("/v1/integrations/{id}/connector-bindings", GET=list_bindings),
]
