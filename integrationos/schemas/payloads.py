"""The one entry point for payload formats: bytes in (JSON, XML, CSV, fixed width) to JSON
for JSONata, JSON checked against a schema, and JSON out as the target schema wants it.

Violations are ``{"pointer", "message"}`` (CSV and fixed width add ``row`` and ``column``);
the pointer is a JSON pointer, or an XPath for XML.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from integrationos.schemas import records
from integrationos.schemas.json_schema import violations
from integrationos.schemas.registry import ResolvedSchema
from integrationos.schemas.xml import decode_xml, encode_xml

Violation = dict[str, Any]

JSON_TYPES = ("application/json",)
XML_TYPES = ("application/xml", "text/xml")
CSV_TYPE = "text/csv"
FIXED_WIDTH_TYPE = "text/x-fixed-width"


@dataclass(frozen=True)
class DecodeResult:
    """One document (``value``) or many (``records``, for CSV and fixed width), and what
    kept the payload from decoding cleanly.

    ``validated`` is True when decoding already checked the payload against the schema
    (XML against its XSD): no further ``validate_value`` is needed. Otherwise each value
    or record still has to be validated."""

    value: Any = None
    records: list[dict[str, Any]] | None = None
    violations: list[Violation] = field(default_factory=list)
    validated: bool = False

    @property
    def ok(self) -> bool:
        return not self.violations


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """``("text/csv", "latin-1")`` from ``text/csv; charset=latin-1``; JSON if absent."""
    kind, *params = (content_type or "application/json").split(";")
    charset = next((p.split("=", 1)[1].strip().strip('"') for p in params
                    if p.strip().lower().startswith("charset=")), None)
    return kind.strip().lower(), charset


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    """``1e999`` is valid JSON but overflows to infinity, which JSON cannot carry on."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def loads_strict(raw: bytes | str) -> Any:
    """``json.loads`` that refuses what JSON cannot carry on: NaN, Infinity, ``1e999``.
    Raises ValueError (or RecursionError on absurd nesting)."""
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)


def _decode_json(raw: bytes) -> DecodeResult:
    try:
        value = loads_strict(raw)
    except (ValueError, RecursionError) as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)[:100]
        return DecodeResult(violations=[{"pointer": "/", "message": f"not JSON: {message}"}])
    return DecodeResult(value=value)


def _json_schema(schema: ResolvedSchema | None) -> dict[str, Any] | None:
    return json.loads(schema.definition) if schema and schema.format == "JSON_SCHEMA" else None


def decode_payload(raw: bytes, content_type: str | None, schema: ResolvedSchema | None
                   ) -> DecodeResult:
    """``raw`` decoded by its content type (``application/json`` when none is given)."""
    kind, charset = media_type(content_type)
    if kind in JSON_TYPES or kind.endswith("+json"):
        return _decode_json(raw)
    if kind in XML_TYPES or kind.endswith("+xml"):
        if schema is None or schema.format != "XSD":
            return DecodeResult(violations=[{"pointer": "/", "message":
                                             "an XML payload needs an XSD sourceSchema"}])
        value, found = decode_xml(schema.definition, raw)
        return DecodeResult(value=value, violations=found, validated=True)
    if kind in (CSV_TYPE, FIXED_WIDTH_TYPE):
        if schema is not None and schema.format == "XSD":
            return DecodeResult(violations=[{"pointer": "/", "message": f"a {kind} payload "
                                             "needs a JSON Schema sourceSchema, not an XSD"}])
        decode = records.decode_csv if kind == CSV_TYPE else records.decode_fixed_width
        rows, found = decode(raw, _json_schema(schema), charset)
        return DecodeResult(records=rows, violations=found)
    supported = ", ".join((*JSON_TYPES, *XML_TYPES, CSV_TYPE, FIXED_WIDTH_TYPE))
    return DecodeResult(violations=[{"pointer": "/", "message": f"unsupported content type "
                                     f"{kind[:100]!r}; supported: {supported}"}])


def check_payload(raw: bytes, content_type: str | None, schema: ResolvedSchema | None
                  ) -> DecodeResult:
    """Decode, then validate what was decoded (each record, pointers prefixed by its index):
    one result listing every problem, from bytes to schema."""
    result = decode_payload(raw, content_type, schema)
    if schema is None or result.validated or result.violations:
        return result
    if result.records is None:
        found = validate_value(schema, result.value)
    else:
        found = [{**v, "pointer": f"/{i}{v['pointer'].rstrip('/')}"}
                 for i, record in enumerate(result.records)
                 for v in validate_value(schema, record)]
    return replace(result, violations=found, validated=True)


def validate_value(schema: ResolvedSchema, value: Any) -> list[Violation]:
    """Every violation of ``value`` against the schema; for an XSD, of the XML it encodes to
    (pointers are then XPaths)."""
    if schema.format == "XSD":
        return encode_xml(schema.definition, value)[1]
    return violations(schema.definition, value)


def check_document(schema: ResolvedSchema, document: Any) -> tuple[Any, list[Violation]]:
    """A document as people write it for this schema (a JSON value, or a string of XML for
    an XSD), its JSON form, and every violation: for examples and the validate endpoint."""
    if schema.format != "XSD":
        return document, validate_value(schema, document)
    if not isinstance(document, str):
        return None, [{"pointer": "/", "message": "a document for an XSD is a string of XML"}]
    return decode_xml(schema.definition, document.encode())


def encode_output(schema: ResolvedSchema | None, value: Any
                  ) -> tuple[bytes, str, list[Violation]]:
    """The bytes to deliver, their content type, and every violation of the target schema:
    XML for an XSD target, JSON otherwise."""
    if schema is not None and schema.format == "XSD":
        data, found = encode_xml(schema.definition, value)
        return data, "application/xml", found
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    found = [] if schema is None else violations(schema.definition, value)
    return data, "application/json", found
