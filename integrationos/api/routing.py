"""One ``Route`` per path with a handler per method, so a wrong method gets a 405 whose
``Allow`` header lists every method of the path (Starlette reports only the first route's
methods when one path is split over several routes). Each dispatch first asks
``permissions.authorize`` whether the caller may use this route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrationos import logs
from integrationos.api.context import TENANT_SCOPE_KEY
from integrationos.api.permissions import authorize
from integrationos.api.telemetry import ROUTE_SCOPE_KEY

Handler = Callable[[Request], Awaitable[Response]]


def resource(path: str, **handlers: Handler) -> Route:
    """``resource("/v1/things", GET=list_things, POST=create_thing)``."""
    by_method = {method.upper(): handler for method, handler in handlers.items()}
    if "GET" in by_method:
        by_method.setdefault("HEAD", by_method["GET"])

    async def dispatch(request: Request) -> Response:
        request.scope[ROUTE_SCOPE_KEY] = path  # what the telemetry labels the request with
        logs.bind(tenant=request.scope.get(TENANT_SCOPE_KEY))
        await authorize(request, path)
        return await by_method[request.method](request)

    return Route(path, dispatch, methods=list(by_method), name=path)
