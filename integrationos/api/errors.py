"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Clients branch on ``code`` (stable, upper snake case), show ``message`` to people, and read
``details`` (a list, possibly empty) for per-field problems. Router 404/405s and unexpected
exceptions are mapped to the same shape, so no response ever carries a Starlette default body
or a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client can act on; raised anywhere under a route, rendered by a handler."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=status, headers=headers)


def not_found(kind: str, resource_id: str) -> ApiError:
    """The same answer whether the id does not exist or belongs to another tenant."""
    return ApiError(404, "NOT_FOUND", f"no {kind} with id {resource_id!r}")


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


_HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
}


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Router-level errors (no such route, wrong method) in the common shape."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected(_request: Request, _exc: Exception) -> Response:
    """Never show internals; Starlette re-raises the exception so the server logs it."""
    return error_response(500, "INTERNAL", "internal error; it has been logged")


EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
