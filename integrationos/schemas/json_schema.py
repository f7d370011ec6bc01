"""JSON Schema validation that reports every violation, each with its JSON pointer."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator


class InvalidSchema(ValueError):
    """The schema itself is not a valid JSON Schema."""


def _validator_class(schema: dict[str, Any]) -> type[Validator]:
    if "draft-07" in str(schema.get("$schema", "")):
        return Draft7Validator
    return Draft202012Validator


def check_schema(schema: dict[str, Any]) -> None:
    try:
        _validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidSchema(exc.message) from None


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Validator:
    import json

    schema = json.loads(schema_json)
    return _validator_class(schema)(schema)


def violations(schema_json: str, instance: Any) -> list[dict[str, str]]:
    """Every violation of ``instance`` against the schema (given as its JSON text)."""
    found = sorted(_validator(schema_json).iter_errors(instance), key=lambda e: list(e.path))
    return [
        {"pointer": "/" + "/".join(str(p) for p in err.absolute_path), "message": err.message}
        for err in found
    ]
