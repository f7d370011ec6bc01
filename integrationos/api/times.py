"""Times in requests: ISO-8601 text to the epoch milliseconds the read models store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from integrationos.api.errors import ApiError


def epoch_ms(raw: Any, field: str, in_body: bool) -> int:
    """``raw`` as epoch ms (no offset means UTC); a clear 400 (query) or 422 (body) if it
    is not a time. ``field`` is the parameter name or the body's JSON pointer."""
    try:
        moment = datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        status, code = (422, "VALIDATION_FAILED") if in_body else (400, "INVALID_QUERY")
        raise ApiError(status, code, f"invalid {'field' if in_body else 'query parameter'} "
                       f"{field!r}", [{"field": field, "message": "must be an ISO-8601 time, "
                                       "e.g. 2026-02-01T09:30:00Z"}]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
