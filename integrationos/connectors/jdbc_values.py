"""Database values to JSON and back, for the JDBC source and target.

A source row becomes a JSON object a transformation can read without knowing the driver:
timestamps are ISO 8601 text (aware ones in UTC, so the text does not depend on the
session time zone), decimals are text with their exact digits (a float would round money),
binary is base64. A target gets JSON and converts text to what the column's type wants
(dates, decimals), because only some drivers let the server cast text. Cursor values in a
checkpoint keep their type, so a restored cursor compares with the column as the read one did.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from sqlalchemy import JSON
from sqlalchemy.types import TypeEngine

JsonValue = Any

_CURSOR_TYPES = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "decimal": Decimal,
    "uuid": UUID,
}


def to_json(value: Any) -> JsonValue:
    """One column value as JSON (see the module docstring for the choices)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return str(value)


def position_text(value: Any) -> str:
    """A cursor or key value as it appears in a record's position and Kafka key."""
    shown = to_json(value)
    return shown if isinstance(shown, str) else json.dumps(shown)


def encode_cursor(value: Any) -> JsonValue:
    """A cursor value for a checkpoint: JSON scalars as they are, others tagged with their
    type (``{"datetime": "..."}``) so ``decode_cursor`` gives back the same Python value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    for tag, kind in (("datetime", datetime), ("date", date), ("time", time),
                      ("decimal", Decimal), ("uuid", UUID)):
        if isinstance(value, kind):
            return {tag: value.isoformat() if tag in ("datetime", "date", "time") else str(value)}
    raise ValueError(f"unsupported cursor type {type(value).__name__}")


def decode_cursor(data: JsonValue) -> Any:
    if isinstance(data, dict):
        ((tag, text),) = data.items()
        return _CURSOR_TYPES[tag](text)
    return data


def to_column(value: JsonValue, column_type: TypeEngine[Any]) -> Any:
    """A JSON value as a bind parameter for a column of ``column_type``.

    Raises ValueError for text the column's type cannot take (a malformed date)."""
    if value is None or isinstance(column_type, JSON):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    try:
        wanted = column_type.python_type
    except NotImplementedError:  # a type SQLAlchemy cannot map (reflected as NullType)
        return value
    if wanted is datetime and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo and not getattr(column_type, "timezone", False):
            return parsed.astimezone(UTC).replace(tzinfo=None)  # naive columns hold UTC
        return parsed
    if wanted is date and isinstance(value, str):
        return datetime.fromisoformat(value).date() if len(value) > 10 else \
            date.fromisoformat(value)
    if wanted is time and isinstance(value, str):
        return time.fromisoformat(value)
    if wanted is Decimal and isinstance(value, str | int | float):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"not a decimal: {value!r}") from None
    return value
