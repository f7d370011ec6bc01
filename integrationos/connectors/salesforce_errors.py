"""How Salesforce failures become classified ``ConnectorError``s.

Salesforce reports an error in one of four shapes: a REST error list
(``[{"message", "errorCode", "fields"}]``), per-record ``{"statusCode", "message", "fields"}``
items in sObject Collections results, ``CODE:message`` cells in a Bulk API 2.0 failed-results
CSV, and a SOAP fault or OAuth ``{"error", "error_description"}`` at login. Each is reduced
to the Salesforce code itself (what an operator searches for) and a retry decision: API
limits, row locks, server faults and transport trouble pass with time; data errors
(``INVALID_FIELD``, ``REQUIRED_FIELD_MISSING``, ``DUPLICATE_VALUE``...) and refused logins
will not. Messages never quote credentials: Salesforce's own texts do not, and login
failures are reported by code and Salesforce's description only.
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceOperationError,
)

from integrationos.connectors.base import ConnectorError

EXCERPT_CHARS = 300
# Codes that describe the moment, not the request: the same call can succeed later.
RETRYABLE_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
ROLLED_BACK = "ALL_OR_NONE_OPERATION_ROLLED_BACK"


@dataclass(frozen=True)
class RecordError:
    code: str
    message: str
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f" (fields: {', '.join(self.fields)})" if self.fields else ""
        return f"{self.code}: {self.message}{where}"


class RecordsRejected(Exception):
    """Salesforce accepted the call but refused records in it (collections or a bulk job).

    ``written`` counts records that were saved anyway (a bulk job is not all-or-none).
    """

    def __init__(self, errors: list[RecordError], total: int, written: int) -> None:
        super().__init__(f"{len(errors)} of {total} records rejected")
        self.errors = errors
        self.total = total
        self.written = written


class SessionLost(Exception):
    """The session expired and logging in again was refused."""

    def __init__(self, cause: SalesforceAuthenticationFailed) -> None:
        super().__init__(str(cause))
        self.cause = cause


# Everything a Salesforce call is expected to raise; anything else is a bug and propagates.
FAILURES: tuple[type[Exception], ...] = (
    ConnectorError, SessionLost, SalesforceError, RecordsRejected, SalesforceOperationError,
    requests.RequestException)


def classify(exc: Exception, timeout_ms: int, *, create: bool = False) -> ConnectorError:
    """The ``ConnectorError`` for one of ``FAILURES``.

    ``create`` says the call inserted records: a partly written create batch must not be
    retried, or its written records would be inserted twice.
    """
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, SessionLost):
        return ConnectorError(
            "INVALID_SESSION_ID",
            f"session expired and logging in again failed: {_login_text(exc.cause)}",
            retryable=False,
        )
    if isinstance(exc, SalesforceAuthenticationFailed):
        return _login_error(exc)
    if isinstance(exc, SalesforceError):
        return _api_error(exc)
    if isinstance(exc, RecordsRejected):
        return _rejected(exc, create)
    if isinstance(exc, SalesforceOperationError):
        return ConnectorError("BULK_JOB_FAILED", f"Bulk API 2.0: {exc}"[:EXCERPT_CHARS],
                              retryable=False)
    assert isinstance(exc, requests.RequestException), f"not a Salesforce failure: {exc!r}"
    return _transport_error(exc, timeout_ms)


def record_error(item: dict[str, Any]) -> RecordError:
    """One error item of an sObject Collections result."""
    return RecordError(str(item.get("statusCode") or item.get("errorCode") or "UNKNOWN"),
                       str(item.get("message", "")), tuple(item.get("fields") or ()))


def bulk_error(cell: str) -> RecordError:
    """A Bulk API 2.0 ``sf__Error`` cell: ``CODE:message[:fields --]``."""
    code, _, rest = cell.partition(":")
    message, _, fields = rest.rpartition(":") if rest.endswith("--") else (rest, "", "")
    names = tuple(f.strip() for f in fields.removesuffix("--").split(",") if f.strip())
    return RecordError(code.strip() or "UNKNOWN", message.strip(), names)


def _api_error(exc: SalesforceError) -> ConnectorError:
    content = exc.content
    first = content[0] if isinstance(content, list) and content else None
    excerpt = _excerpt(content)
    if not isinstance(first, dict) or "errorCode" not in first:
        return ConnectorError(f"HTTP_{exc.status}", f"Salesforce answered HTTP {exc.status}",
                              retryable=exc.status >= 500 or exc.status == 429, excerpt=excerpt)
    error = RecordError(str(first["errorCode"]), str(first.get("message", "")),
                        tuple(first.get("fields") or ()))
    retryable = exc.status >= 500 or error.code in RETRYABLE_CODES
    return ConnectorError(error.code, error.describe(), retryable=retryable, excerpt=excerpt)


def _rejected(exc: RecordsRejected, create: bool) -> ConnectorError:
    errors = [e for e in exc.errors if e.code != ROLLED_BACK] or exc.errors
    retryable = all(e.code in RETRYABLE_CODES for e in errors) and not (create and exc.written)
    written = f"; {exc.written} written" if exc.written else ""
    message = (f"{len(errors)} of {exc.total} records rejected{written}; first: "
               f"{errors[0].describe()}")
    return ConnectorError(errors[0].code, message, retryable=retryable,
                          excerpt=_excerpt([e.describe() for e in errors[:5]]))


def _login_error(exc: SalesforceAuthenticationFailed) -> ConnectorError:
    if isinstance(exc.code, int) and exc.code >= 500:
        return ConnectorError(f"HTTP_{exc.code}", f"login endpoint answered HTTP {exc.code}",
                              retryable=True)
    return ConnectorError("AUTHENTICATION", _login_text(exc),
                          retryable=str(exc.code) in RETRYABLE_CODES)


def _login_text(exc: SalesforceAuthenticationFailed) -> str:
    return f"authentication failed: {exc.code}: {exc.auth_message}"[:EXCERPT_CHARS]


def _transport_error(exc: requests.RequestException, timeout_ms: int) -> ConnectorError:
    """Name the failure as an operator would search for it: timeout, DNS, refused, TLS."""
    if isinstance(exc, requests.Timeout):
        return ConnectorError("TIMEOUT", f"timeout after {timeout_ms}ms", retryable=True)
    causes = _causes(exc)
    if any(isinstance(c, socket.gaierror) for c in causes):
        return ConnectorError("DNS", "DNS: cannot resolve the Salesforce host", retryable=True)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return ConnectorError("CONNECTION_REFUSED", "unreachable: connection refused",
                              retryable=True)
    if tls := next((c for c in causes if isinstance(c, ssl.SSLError)), None):
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or tls
        return ConnectorError("TLS", f"TLS: {reason}", retryable=True)
    return ConnectorError("TRANSPORT", f"transport error: {type(exc).__name__}", retryable=True)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        # requests wraps urllib3's error in args[0]; urllib3 keeps the socket error in reason
        nested = (current.__cause__, current.__context__,
                  current.args[0] if current.args else None, getattr(current, "reason", None))
        current = next((n for n in nested if isinstance(n, BaseException)), None)
    return chain


def _excerpt(content: Any) -> str:
    text = content if isinstance(content, str) else json.dumps(content, default=str)
    return text[:EXCERPT_CHARS]
