"""``/v1/environments/{env}/variables``: the values ``$env(name)`` returns, per tenant and
environment, so one expression promoted from DEV to PROD reads each environment's own
values. They are configuration, not secrets: they are stored and returned in clear."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.commands import commit
from integrationos.api.context import platform, tenant
from integrationos.api.db import fetch_all, first
from integrationos.api.errors import ApiError
from integrationos.api.routing import resource
from integrationos.api.schemas import ENVIRONMENTS, VARIABLE_SET
from integrationos.api.serializers import iso
from integrationos.api.validation import parse_body
from integrationos.store.tables import environment_variables as variables
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
MAX_VARIABLES = 500


def _environment(request: Request) -> str:
    """The environment in the path, any case; 404 for one that does not exist."""
    given = request.path_params["env"]
    if given.upper() not in ENVIRONMENTS:
        raise ApiError(404, "NOT_FOUND", f"no environment {given[:20]!r} (environments: "
                       f"{', '.join(ENVIRONMENTS)})")
    return given.upper()


def _name(request: Request) -> str:
    name = request.path_params["name"]
    if not NAME_PATTERN.match(name):
        raise ApiError(422, "VALIDATION_FAILED", "invalid variable name", [{
            "field": "/name", "message": f"must match {NAME_PATTERN.pattern}"}])
    return name


def _where(tenant_id: str, environment: str, *names: str) -> list[ColumnElement[bool]]:
    clauses = [variables.c.tenant_id == tenant_id, variables.c.environment == environment]
    return clauses + [variables.c.name == name for name in names]


async def list_variables(request: Request) -> Response:
    p, tenant_id, environment = platform(request), tenant(request), _environment(request)
    rows = await fetch_all(p.engine, select(variables).where(*_where(tenant_id, environment))
                           .order_by(variables.c.name))
    return JSONResponse({"environment": environment, "data": [
        {"environment": environment, "name": r.name, "value": r.value,
         "updatedAt": iso(r.updated_at)} for r in rows]})


async def set_variable(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    environment, name = _environment(request), _name(request)
    body = await parse_body(request, VARIABLE_SET)
    async with p.write_lock(tenant_id):
        exists = await first(p.engine, select(variables.c.name)
                             .where(*_where(tenant_id, environment, name)))
        count = (await first(p.engine, select(func.count()).select_from(variables)
                             .where(*_where(tenant_id, environment))))[0]
        if exists is None and count >= MAX_VARIABLES:
            raise ApiError(409, "LIMIT_REACHED", f"{environment} already has {MAX_VARIABLES} "
                           "variables, the most an environment holds")
        await commit(p, Event(t.ENVIRONMENT_VARIABLE_SET, tenant_id, f"env:{environment}",
                              {"environment": environment, "name": name,
                               "value": body["value"]}))
    row = await first(p.engine, select(variables).where(*_where(tenant_id, environment, name)))
    return JSONResponse({"environment": environment, "name": name, "value": row.value,
                         "updatedAt": iso(row.updated_at)})


async def delete_variable(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    environment, name = _environment(request), _name(request)
    async with p.write_lock(tenant_id):
        exists = await first(p.engine, select(variables.c.name)
                             .where(*_where(tenant_id, environment, name)))
        if exists is None:
            raise ApiError(404, "NOT_FOUND", f"no variable {name!r} in {environment}")
        await commit(p, Event(t.ENVIRONMENT_VARIABLE_DELETED, tenant_id, f"env:{environment}",
                              {"environment": environment, "name": name}))
    return Response(status_code=204)


routes = [
    resource("/v1/environments/{env}/variables", GET=list_variables),
    resource("/v1/environments/{env}/variables/{name}", PUT=set_variable,
             DELETE=delete_variable),
]
