"""XML against an XSD (``xmlschema``): decode to JSON for JSONata, encode JSON back to XML.

Decoding is validation: ``lax`` mode keeps going after the first fault, so every violation
is listed, each by the XPath of the element it concerns. The JSON keeps the root element's
name as its only key (``{"order": {...}}``), attributes as ``@name``, an element's text
beside attributes as ``$``, and drops namespace prefixes so expressions read ``order.items``.

Parsing is defused: DTDs and entities are refused (no XXE, no billion laughs) and no
resource is ever fetched (no ``xs:include``/``xs:import`` by location, no network).
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any
from xml.etree import ElementTree

import xmlschema
from xmlschema.exceptions import XMLResourceForbidden, XMLResourceParseError, XMLSchemaException

Violation = dict[str, str]

# Never fetch anything, and refuse every DTD and entity declaration.
_SAFE = {"allow": "none", "defuse": "always"}


class InvalidXsd(ValueError):
    """The definition is not a usable XML Schema 1.0."""


@lru_cache(maxsize=256)
def compile_xsd(definition: str) -> xmlschema.XMLSchema:
    """The compiled schema; cached by its text, which a stored version never changes."""
    try:
        schema = xmlschema.XMLSchema(io.StringIO(definition), **_SAFE)
    except XMLSchemaException as exc:
        raise InvalidXsd(_first_line(exc)) from None
    except RecursionError:
        raise InvalidXsd("the schema is nested too deeply") from None
    if not schema.elements:
        raise InvalidXsd("the schema declares no global element, so no document can match it")
    return schema


def _first_line(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or str(exc)
    return str(reason).strip().splitlines()[0].rstrip(":")[:300]


def _violation(error: xmlschema.XMLSchemaValidationError) -> Violation:
    return {"pointer": error.path or "/", "message": str(error.reason or error.message)[:300]}


def _unparsable(exc: Exception) -> Violation:
    if isinstance(exc, XMLResourceForbidden):
        return {"pointer": "/", "message": "DTDs, entities and external references are not "
                "allowed in XML payloads"}
    if isinstance(exc, RecursionError):
        return {"pointer": "/", "message": "the XML is nested too deeply"}
    return {"pointer": "/", "message": f"not well-formed XML: {_first_line(exc)}"}


def decode_xml(definition: str, data: bytes) -> tuple[Any, list[Violation]]:
    """``data`` decoded to JSON by the schema, and every violation of the schema."""
    schema = compile_xsd(definition)
    try:
        resource = xmlschema.XMLResource(io.BytesIO(data), **_SAFE)
        value, errors = schema.decode(
            resource, validation="lax", decimal_type=float, preserve_root=True,
            strip_namespaces=True)
    except (XMLResourceParseError, XMLResourceForbidden, RecursionError) as exc:
        return None, [_unparsable(exc)]
    except XMLSchemaException as exc:  # e.g. a root element the schema does not declare
        return None, [{"pointer": "/", "message": _first_line(exc)}]
    return value, [_violation(error) for error in errors]


def _root_problem(schema: xmlschema.XMLSchema, value: Any) -> str | None:
    names = sorted(schema.elements)
    if not (isinstance(value, dict) and len(value) == 1):
        return f"must be an object with one key, the root element: one of {', '.join(names)}"
    (root,) = value
    if root not in schema.elements:
        return f"{root!r} is not a global element of the schema; one of {', '.join(names)}"
    return None


def encode_xml(definition: str, value: Any) -> tuple[bytes, list[Violation]]:
    """``value`` (shaped as ``decode_xml`` returns it) as UTF-8 XML, and every violation."""
    schema = compile_xsd(definition)
    problem = _root_problem(schema, value)
    if problem is not None:
        return b"", [{"pointer": "/", "message": problem}]
    namespace, namespaces = schema.target_namespace, None
    if namespace and schema.element_form_default == "qualified":
        namespaces = {"": namespace}  # every unprefixed key is in the target namespace
    elif namespace:  # only global elements are: qualify the root alone
        value = {f"{{{namespace}}}{root}": content for root, content in value.items()}
    try:
        element, errors = schema.encode(
            value, validation="lax", preserve_root=True, namespaces=namespaces)
    except (XMLSchemaException, RecursionError) as exc:
        return b"", [{"pointer": "/", "message": _first_line(exc)}]
    if element is None:
        return b"", [_violation(error) for error in errors] or [
            {"pointer": "/", "message": "nothing could be encoded"}]
    return _serialise(element, schema.target_namespace), [_violation(e) for e in errors]


def _serialise(element: ElementTree.Element, target_namespace: str) -> bytes:
    """Unprefixed (``xmlns="..."`` on the root) when every element is in the target namespace,
    ``ns0:`` prefixes otherwise. ElementTree's own ``default_namespace`` refuses unqualified
    attributes and ``register_namespace`` is process-wide, so the tree is renamed in place:
    it was just built for this call and nobody else holds it."""
    qualified = f"{{{target_namespace}}}"
    elements = list(element.iter())
    if target_namespace and all(e.tag.startswith(qualified) for e in elements):
        for e in elements:
            e.tag = e.tag[len(qualified):]
        element.set("xmlns", target_namespace)
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)
