"""The SDK's exceptions: one class per thing a caller handles differently.

Every API error body is ``{"error": {"code", "message", "details"}}``; the class is chosen
by the HTTP status, ``code`` keeps the API's finer distinction (``CONFLICT`` vs
``CONNECTOR_IN_USE``), and ``request_id`` is the ``X-Request-Id`` the platform answered
with, which is what to quote when asking an operator to look at the server's log.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Optional

import httpx


class IntegrationPlatformError(Exception):
    """Base of everything the SDK raises."""


class APIConnectionError(IntegrationPlatformError):
    """No HTTP answer (connection refused, reset, timed out) after every allowed retry."""

    def __init__(self, message: str, request_id: Optional[str] = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class APIError(IntegrationPlatformError):
    """An error answer of the API; the subclasses below name the ones worth catching."""

    def __init__(self, status_code: int, code: str, message: str,
                 details: Optional[list[dict[str, Any]]] = None,
                 request_id: Optional[str] = None,
                 headers: Optional[httpx.Headers] = None) -> None:
        super().__init__(f"{status_code} {code}: {message}"
                         + (f" (request {request_id})" if request_id else ""))
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details: list[dict[str, Any]] = details or []
        self.request_id = request_id
        self.headers = headers if headers is not None else httpx.Headers()


class BadRequestError(APIError):
    """400: malformed JSON or a bad query parameter (``details[].field`` names it)."""


class AuthenticationError(APIError):
    """401: the key or token is missing or wrong, or not the tenant's."""


class PermissionDeniedError(APIError):
    """403: the credential's roles or environments do not allow this call."""


class NotFoundError(APIError):
    """404: no such resource for this tenant."""


class ConflictError(APIError):
    """409: the state forbids it (name taken, resource in use, integration paused...)."""


class ValidationError(APIError):
    """422: the body breaks a rule; ``details`` lists every violation as
    ``{"field": <JSON pointer>, "message": ...}``."""


class RateLimitError(APIError):
    """429: over the requests per minute (``RATE_LIMITED``) or the month's message quota
    (``QUOTA_EXCEEDED``), raised once waiting is not allowed or would take too long."""

    @property
    def retry_after(self) -> Optional[float]:
        """Seconds the API asked to wait (``Retry-After``), if it said."""
        return _float(self.headers.get("retry-after"))

    @property
    def reset_at(self) -> Optional[datetime]:
        """When the rate-limit window ends (``X-RateLimit-Reset``), else now plus
        ``Retry-After``."""
        reset = _float(self.headers.get("x-ratelimit-reset"))
        if reset is not None:
            return datetime.fromtimestamp(reset, timezone.utc)
        if self.retry_after is not None:
            return datetime.fromtimestamp(time.time() + self.retry_after, timezone.utc)
        return None


class InternalServerError(APIError):
    """5xx after every allowed retry."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError,
    404: NotFoundError, 409: ConflictError, 422: ValidationError, 429: RateLimitError,
}


def error_from_response(response: httpx.Response, sent_request_id: Optional[str]) -> APIError:
    """The exception for an error ``response``; tolerant of bodies not in the API's shape
    (a proxy's HTML page, say) so a gateway error still surfaces as an ``APIError``."""
    code, message, details = f"HTTP_{response.status_code}", response.reason_phrase, []
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = list(error.get("details") or [])
    except (ValueError, KeyError, TypeError):
        pass
    request_id = response.headers.get("x-request-id") or sent_request_id
    cls = _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIError
    return cls(response.status_code, code, message, details, request_id, response.headers)


def _float(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
