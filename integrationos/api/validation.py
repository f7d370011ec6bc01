"""Request bodies: bounded reading, strict JSON parsing, JSON Schema checks listing every fault.

Limits are enforced before parsing (``Content-Length``) and while reading (bytes actually
received), so a client cannot make the API buffer more than ``max_payload_bytes``. JSON is
parsed strictly: ``NaN``/``Infinity`` are refused because they could not be re-serialised as
JSON for the log, and nesting is capped so no later recursive step (schema validation,
transformation, serialisation) can overflow the stack.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from starlette.requests import Request

from integrationos.api.context import platform
from integrationos.api.errors import ApiError
from integrationos.schemas.payloads import loads_strict

MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
_MESSAGE_LIMIT = 200


def _problem(value: Any) -> str | None:
    """What makes a parsed document unusable downstream: too deep, or a lone surrogate
    (``"\\ud800"`` parses, but is not Unicode and cannot be encoded as UTF-8)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return "a string holds an unpaired UTF-16 surrogate"
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return f"JSON nested deeper than {MAX_DEPTH} levels"
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def too_large(limit: int) -> ApiError:
    return ApiError(413, "PAYLOAD_TOO_LARGE", f"the request body exceeds {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body; 413 past ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


async def read_json(request: Request, limit: int) -> Any:
    """The parsed body; 413 past ``limit`` bytes, 400 if it is not one JSON document."""
    return parse_json(await read_body(request, limit))


def parse_json(body: bytes) -> Any:
    """One JSON document, or 400 ``MALFORMED_JSON`` saying why not."""
    if not body.strip():
        raise ApiError(400, "MALFORMED_JSON", "the request body is empty; send a JSON document")
    try:
        value = loads_strict(body)
    except (ValueError, RecursionError) as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)[:100]
        raise ApiError(400, "MALFORMED_JSON", f"the request body is not JSON: {message}") from None
    problem = _problem(value)
    if problem is not None:
        raise ApiError(400, "MALFORMED_JSON", f"the request body is not usable JSON: {problem}")
    return value


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def _pointer(path: Any) -> str:
    return "".join(f"/{part}" for part in path)


def _message(error: ValidationError) -> str:
    """A short message that never echoes the (possibly huge) offending value."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "x-message" in schema:
        return schema["x-message"]
    value = error.validator_value
    types = " or ".join(value) if isinstance(value, list) else value
    messages = {
        "type": lambda: f"must be of type {types}",
        "enum": lambda: "must be one of " + ", ".join(map(str, value)),
        "minLength": lambda: f"must have at least {value} characters",
        "maxLength": lambda: f"must have at most {value} characters",
        "pattern": lambda: f"must match {value}",
        "minProperties": lambda: f"must have at least {value} field(s)",
    }
    if error.validator in messages:
        return messages[error.validator]()
    return error.message[:_MESSAGE_LIMIT]


def _details(error: ValidationError) -> list[dict[str, str]]:
    """One entry per faulty field; a missing or unknown field is named in the pointer."""
    at = _pointer(error.absolute_path)
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required":
        return [
            {"field": f"{at}/{name}", "message": "is required"}
            for name in error.validator_value
            if name not in instance
        ]
    if error.validator == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        allowed = ", ".join(sorted(known)) or "none"
        return [
            {"field": f"{at}/{name}", "message": f"is not a known field (allowed: {allowed})"}
            for name in sorted(set(instance) - known)
        ]
    return [{"field": at or "/", "message": _message(error)}]


def violations(schema: dict[str, Any], value: Any) -> list[dict[str, str]]:
    """Every violation of ``schema`` by ``value``, deduplicated, in document order."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    found: list[dict[str, str]] = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path))):
        for detail in _details(error):
            if detail not in found:
                found.append(detail)
    return found


def check(schema: dict[str, Any], value: Any) -> None:
    """Raise 422 ``VALIDATION_FAILED`` listing every violation."""
    found = violations(schema, value)
    if found:
        raise ApiError(422, "VALIDATION_FAILED", "the request body is invalid", found)


async def parse_body(request: Request, schema: dict[str, Any]) -> dict[str, Any]:
    """Read, parse and validate a JSON object body against ``schema``."""
    value = await read_json(request, platform(request).settings.max_payload_bytes)
    check(schema, value)
    return value
