"""Which role each route needs, and which environment it touches: the one table to read.

Roles grant needs: ``viewer`` reads (and evaluates without side effects: preview, validate);
``operator`` adds running things (send, replay, pause/resume, DLQ); ``developer`` adds
configuring (connectors, transformations, integrations, schemas, lookups, variables) but only
in DEV and QA; ``admin`` has every need in every environment, and alone manages API keys.
So viewer ⊂ operator ⊂ admin and viewer ⊂ developer ⊂ admin.

A rule may also name where the route's environment comes from (the path, the integration of
the path, the body). When it does, the credential's allowed environments must include it, and
a developer (not admin) may not change anything in PROD. A resource that does not exist (or
is another tenant's) has no environment: the handler answers 404 as for anyone else.

``authorize`` runs in ``routing.resource``'s dispatch, after authentication and routing, so
it knows the path template. A route missing from ``RULES`` is refused (fail closed), and a
test checks every route of the app is in it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import Table, select
from starlette.requests import Request

from integrationos.api.context import (
    ALL_ENVIRONMENTS,
    PRINCIPAL_SCOPE_KEY,
    Principal,
    platform,
    tenant,
)
from integrationos.api.db import fetch_all, first
from integrationos.api.errors import ApiError
from integrationos.api.validation import read_body
from integrationos.store.tables import dlq_entries, integrations, messages

VIEWER, OPERATOR, DEVELOPER, ADMIN = "viewer", "operator", "developer", "admin"
GRANTS: dict[str, frozenset[str]] = {
    ADMIN: frozenset({VIEWER, OPERATOR, DEVELOPER, ADMIN}),
    DEVELOPER: frozenset({VIEWER, DEVELOPER}),
    OPERATOR: frozenset({VIEWER, OPERATOR}),
    VIEWER: frozenset({VIEWER}),
}
# Environments where a role may change things; reads and runs follow the credential alone.
WRITABLE: dict[str, frozenset[str]] = {DEVELOPER: frozenset({"DEV", "QA"})}

Resolver = Callable[[Request], Awaitable[str | None]]


def _known(environment: object) -> str | None:
    """An environment that exists; anything else is left to the handler (404 or 422)."""
    return environment if environment in ALL_ENVIRONMENTS else None


async def _path_env(request: Request) -> str | None:
    return _known(request.path_params["env"].upper())


ANY_ENVIRONMENT = "*"  # a listing across every environment


async def _query_env(request: Request) -> str | None:
    """The ``?environment=`` of a listing; without one, the listing spans them all."""
    given = request.query_params.get("environment")
    return ANY_ENVIRONMENT if given is None else _known(given.upper())


async def _integration_env(request: Request, integration_id: object) -> str | None:
    if not isinstance(integration_id, str):
        return None
    row = await first(platform(request).engine, select(integrations.c.environment).where(
        integrations.c.tenant_id == tenant(request), integrations.c.id == integration_id,
        integrations.c.deleted.is_(False)))
    return row.environment if row else None


async def _path_integration_env(request: Request) -> str | None:
    return await _integration_env(request, request.path_params["id"])


def _via(table: Table) -> Resolver:
    """The environment of the integration a message (or DLQ entry) of the path belongs to."""

    async def resolve(request: Request) -> str | None:
        row = await first(platform(request).engine, select(table.c.integration_id).where(
            table.c.tenant_id == tenant(request), table.c.id == request.path_params["id"]))
        return await _integration_env(request, row.integration_id) if row else None

    return resolve


async def _json_body(request: Request) -> object:
    """The body parsed, or None when it is not JSON (the handler will say why). The body
    stays readable by the handler: Starlette's ``Request`` serves a cached ``_body``."""
    body = await read_body(request, platform(request).settings.max_payload_bytes)
    request._body = body  # Starlette's cache, read by stream() and body()
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


async def _body_env(request: Request) -> str | None:
    """``environment`` of a creation body, DEV when absent (the handlers' default)."""
    body = await _json_body(request)
    return _known(body.get("environment", "DEV")) if isinstance(body, dict) else None


async def _body_to_env(request: Request) -> str | None:
    """The stage a promotion writes to (``to``); the handler refuses a missing one."""
    body = await _json_body(request)
    return _known(body.get("to")) if isinstance(body, dict) else None


async def _body_integration_env(request: Request) -> str | None:
    body = await _json_body(request)
    return await _integration_env(
        request, body.get("integrationId") if isinstance(body, dict) else None)


async def _dlq_listing_env(request: Request) -> str | None:
    """The DLQ listing of one integration is in its environment; without
    ``?integrationId=`` it spans them all."""
    given = request.query_params.get("integrationId")
    return ANY_ENVIRONMENT if given is None else await _integration_env(request, given)


async def _dlq_body_env(request: Request) -> str | None:
    """The environment a bulk DLQ action (ids, or a filter) acts in: the one its messages'
    integrations share, or every one when they differ or the filter names no integration."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        return None
    wanted = body.get("filter")
    if isinstance(wanted, dict):
        named = wanted.get("integrationId")
        return ANY_ENVIRONMENT if named is None else await _integration_env(request, named)
    ids = body.get("messageIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None
    rows = await fetch_all(platform(request).engine, select(
        integrations.c.environment).distinct().select_from(dlq_entries.join(
            integrations, integrations.c.id == dlq_entries.c.integration_id)).where(
        dlq_entries.c.tenant_id == tenant(request), dlq_entries.c.id.in_(ids[:1000])))
    environments = {row.environment for row in rows}
    if not environments:
        return None  # nothing known: the handler answers 422
    return environments.pop() if len(environments) == 1 else ANY_ENVIRONMENT


@dataclass(frozen=True)
class Rule:
    role: str
    environment: Resolver | None = None


_R, _O, _D, _A = Rule(VIEWER), Rule(OPERATOR), Rule(DEVELOPER), Rule(ADMIN)
_ON_INTEGRATION = _path_integration_env

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/v1/connectors"): _R,
    ("POST", "/v1/connectors"): _D,
    ("GET", "/v1/connectors/{id}"): _R,
    ("PATCH", "/v1/connectors/{id}"): _D,
    ("DELETE", "/v1/connectors/{id}"): _D,
    # connects to the external system with the stored credentials
    ("POST", "/v1/connectors/{id}/test"): _D,
    ("GET", "/v1/connector-types"): _R,
    ("GET", "/v1/connector-types/{type}"): _R,
    ("POST", "/v1/transformations/preview"): _R,
    ("GET", "/v1/transformations"): _R,
    ("POST", "/v1/transformations"): _D,
    ("GET", "/v1/transformations/{id}"): _R,
    ("PATCH", "/v1/transformations/{id}"): _D,
    ("DELETE", "/v1/transformations/{id}"): _D,
    ("GET", "/v1/transformations/{id}/versions"): _R,
    ("GET", "/v1/transformations/{id}/versions/{version}"): _R,
    ("GET", "/v1/integrations"): Rule(VIEWER, _query_env),
    ("POST", "/v1/integrations"): Rule(DEVELOPER, _body_env),
    ("GET", "/v1/integrations/{id}"): Rule(VIEWER, _ON_INTEGRATION),
    ("PATCH", "/v1/integrations/{id}"): Rule(DEVELOPER, _ON_INTEGRATION),
    ("DELETE", "/v1/integrations/{id}"): Rule(DEVELOPER, _ON_INTEGRATION),
    ("POST", "/v1/integrations/{id}/pause"): Rule(OPERATOR, _ON_INTEGRATION),
    ("POST", "/v1/integrations/{id}/resume"): Rule(OPERATOR, _ON_INTEGRATION),
    ("GET", "/v1/integrations/{id}/status"): Rule(VIEWER, _ON_INTEGRATION),
    ("POST", "/v1/integrations/{id}/messages"): Rule(OPERATOR, _ON_INTEGRATION),
    ("POST", "/v1/integrations/{id}/replay"): Rule(OPERATOR, _ON_INTEGRATION),
    # promotion writes the next stage: a developer promotes DEV -> QA, QA -> PROD is admin's
    ("POST", "/v1/integrations/{id}/promote"): Rule(DEVELOPER, _body_to_env),
    # only PROD integrations roll back, so in effect admin's
    ("POST", "/v1/integrations/{id}/rollback"): Rule(DEVELOPER, _ON_INTEGRATION),
    ("GET", "/v1/integrations/{id}/connector-bindings"): Rule(VIEWER, _ON_INTEGRATION),
    ("GET", "/v1/integrations/{id}/versions"): Rule(VIEWER, _ON_INTEGRATION),
    ("GET", "/v1/integrations/{id}/versions/{version}"): Rule(VIEWER, _ON_INTEGRATION),
    ("GET", "/v1/integrations/{id}/history"): Rule(VIEWER, _ON_INTEGRATION),
    ("GET", "/v1/integrations/{id}/test-cases"): Rule(VIEWER, _ON_INTEGRATION),
    ("POST", "/v1/integrations/{id}/test-cases"): Rule(DEVELOPER, _ON_INTEGRATION),
    ("DELETE", "/v1/integrations/{id}/test-cases/{caseId}"): Rule(DEVELOPER, _ON_INTEGRATION),
    ("POST", "/v1/flows"): Rule(DEVELOPER, _body_env),
    # runs an integration's transformation with its environment's variables and lookups
    ("POST", "/v1/sandbox/execute"): Rule(DEVELOPER, _body_integration_env),
    ("GET", "/v1/messages/{id}"): Rule(VIEWER, _via(messages)),
    ("GET", "/v1/messages/{id}/trace"): Rule(VIEWER, _via(messages)),
    ("GET", "/v1/dlq"): Rule(VIEWER, _dlq_listing_env),
    ("GET", "/v1/dlq/{id}"): Rule(VIEWER, _via(dlq_entries)),
    ("POST", "/v1/dlq/replay"): Rule(OPERATOR, _dlq_body_env),
    ("POST", "/v1/dlq/discard"): Rule(OPERATOR, _dlq_body_env),
    ("GET", "/v1/dlq/replays/{id}"): _R,
    ("GET", "/v1/schemas"): _R,
    ("POST", "/v1/schemas"): _D,
    ("GET", "/v1/schemas/{id}"): _R,
    ("DELETE", "/v1/schemas/{id}"): _D,
    ("POST", "/v1/schemas/{id}/versions"): _D,
    ("GET", "/v1/schemas/{id}/versions/{version}"): _R,
    ("POST", "/v1/schemas/{id}/validate"): _R,
    ("GET", "/v1/lookups"): _R,
    ("POST", "/v1/lookups"): _D,
    ("GET", "/v1/lookups/{id}"): _R,
    ("PATCH", "/v1/lookups/{id}"): _D,
    ("DELETE", "/v1/lookups/{id}"): _D,
    ("GET", "/v1/lookups/{id}/rows"): _R,
    ("PUT", "/v1/lookups/{id}/rows"): _D,
    ("GET", "/v1/environments/{env}/variables"): Rule(VIEWER, _path_env),
    ("PUT", "/v1/environments/{env}/variables/{name}"): Rule(DEVELOPER, _path_env),
    ("DELETE", "/v1/environments/{env}/variables/{name}"): Rule(DEVELOPER, _path_env),
    ("GET", "/v1/api-keys"): _A,
    ("POST", "/v1/api-keys"): _A,
    ("DELETE", "/v1/api-keys/{id}"): _A,
    ("GET", "/v1/usage"): _R,
    ("GET", "/v1/integrations/{id}/metrics"): Rule(VIEWER, _ON_INTEGRATION),
    # Alerting is running the platform: operators (and admins) set rules up, viewers read.
    ("GET", "/v1/alerts/rules"): _R,
    ("POST", "/v1/alerts/rules"): _O,
    ("GET", "/v1/alerts/rules/{id}"): _R,
    ("PATCH", "/v1/alerts/rules/{id}"): _O,
    ("DELETE", "/v1/alerts/rules/{id}"): _O,
    ("GET", "/v1/alerts"): _R,
    ("GET", "/v1/alerts/{id}"): _R,
}


def grants(principal: Principal, need: str) -> bool:
    return any(need in GRANTS.get(role, ()) for role in principal.roles)


def may_change(principal: Principal, need: str, environment: str) -> bool:
    """Whether one of the principal's roles granting ``need`` may change ``environment``."""
    return any(need in GRANTS.get(role, ()) and environment in WRITABLE.get(
        role, frozenset({environment})) for role in principal.roles)


def _forbidden(message: str, **details: str) -> ApiError:
    return ApiError(403, "FORBIDDEN", message, [details])


async def authorize(request: Request, path: str) -> None:
    """403 unless the caller's roles and environments allow this route; no-op on public
    routes (nobody was authenticated)."""
    principal: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        return
    method = "GET" if request.method == "HEAD" else request.method
    rule = RULES.get((method, path))
    if rule is None:
        raise _forbidden("this route grants no role access", route=f"{method} {path}")
    if not grants(principal, rule.role):
        raise _forbidden(f"this needs the {rule.role} role", requiredRole=rule.role)
    if rule.environment is None:
        return
    environment = await rule.environment(request)
    if environment is None:
        return
    if environment == ANY_ENVIRONMENT:
        if principal.environments < ALL_ENVIRONMENTS:
            allowed = ", ".join(sorted(principal.environments))
            raise _forbidden(f"this credential is limited to {allowed}: name one environment "
                             "at a time (?environment=, or one integration: ?integrationId= "
                             "or filter.integrationId)", environment=ANY_ENVIRONMENT)
        return
    if environment not in principal.environments:
        raise _forbidden(f"this credential is not allowed in {environment}",
                         environment=environment)
    if method != "GET" and not may_change(principal, rule.role, environment):
        raise _forbidden(f"changing {environment} needs the admin role",
                         requiredRole=ADMIN, environment=environment)
