"""``/v1/connector-types``: what the registry offers, with each type's config and
credentials specs (JSON Schema), enough for a client to render a form."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.errors import not_found
from integrationos.api.routes.connectors import canonical_type
from integrationos.api.routing import resource
from integrationos.connectors.registry import connector_types, describe


async def list_connector_types(_request: Request) -> Response:
    return JSONResponse({"data": [describe(name) for name in connector_types()]})


async def get_connector_type(request: Request) -> Response:
    type_name = canonical_type(request.path_params["type"])
    if type_name is None:
        raise not_found("connector type", request.path_params["type"])
    return JSONResponse(describe(type_name))


routes = [
    resource("/v1/connector-types", GET=list_connector_types),
    resource("/v1/connector-types/{type}", GET=get_connector_type),
]
