"""The schema registry's read side: what a stored definition is, and what a reference names.

A transformation's ``sourceSchema``/``targetSchema`` is stored as JSON text: a JSON string
is a reference to a registered schema (``"orders"``: its latest version, ``"orders@3"``:
version 3), an object is an inline JSON Schema. Versions are immutable, so compiled
validators are cached by their definition text (``json_schema``, ``xml``), never by name,
and a new version can never be served from a stale cache.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT7, DRAFT202012
from sqlalchemy import Connection, Engine, select

from integrationos.schemas import records
from integrationos.schemas.json_schema import InvalidSchema, check_schema, violations
from integrationos.schemas.xml import InvalidXsd, compile_xsd
from integrationos.store.tables import schema_versions, schemas

SchemaFormat = Literal["JSON_SCHEMA", "XSD"]
MAX_DEFINITION_BYTES = 256 * 1024

_PINNED = re.compile(r"(.+)@([1-9]\d{0,8})")


@dataclass(frozen=True)
class ResolvedSchema:
    """A definition ready to apply: JSON text for JSON Schema, XML text for XSD. ``name`` and
    ``version`` are None for an inline schema."""

    format: SchemaFormat
    name: str | None
    version: int | None
    definition: str


@dataclass(frozen=True)
class SchemaRef:
    """A reference by name; ``version`` None means the latest."""

    name: str
    version: int | None


def parse_reference(ref: str | None) -> SchemaRef | ResolvedSchema | None:
    """The stored JSON text of a ``sourceSchema``/``targetSchema``: a reference, an inline
    JSON Schema, or None (no schema, or a value that is neither)."""
    value = None if ref is None else json.loads(ref)
    if isinstance(value, dict):
        return ResolvedSchema("JSON_SCHEMA", None, None, ref)
    if not isinstance(value, str):
        return None
    pinned = _PINNED.fullmatch(value)
    return SchemaRef(pinned[1], int(pinned[2])) if pinned else SchemaRef(value, None)


def _lookup(conn: Connection, tenant: str, ref: SchemaRef) -> ResolvedSchema | str:
    head = conn.execute(select(schemas).where(
        schemas.c.tenant_id == tenant, schemas.c.name == ref.name, schemas.c.deleted.is_(False),
    )).first()
    if head is None:
        return f"schema {ref.name!r} is not registered"
    version = ref.version or head.latest_version
    definition = conn.execute(select(schema_versions.c.definition).where(
        schema_versions.c.schema_id == head.id, schema_versions.c.version == version,
    )).scalar()
    if definition is None:
        return f"schema {ref.name!r} has no version {version} (latest: {head.latest_version})"
    return ResolvedSchema(head.format, head.name, version, definition)


def resolve_or_explain(bind: Engine | Connection, tenant: str, ref: str | None
                       ) -> tuple[ResolvedSchema | None, str | None]:
    """The schema ``ref`` names and None, or None and why not (e.g. ``schema 'x' is not
    registered``); (None, None) when there is no schema at all."""
    parsed = parse_reference(ref)
    if not isinstance(parsed, SchemaRef):
        return parsed, None
    if isinstance(bind, Connection):
        found = _lookup(bind, tenant, parsed)
    else:
        with bind.connect() as conn:
            found = _lookup(conn, tenant, parsed)
    return (None, found) if isinstance(found, str) else (found, None)


def resolve(bind: Engine | Connection, tenant: str, ref: str | None) -> ResolvedSchema | None:
    """The schema ``ref`` names; None if none is given or the name is not registered."""
    return resolve_or_explain(bind, tenant, ref)[0]


class InvalidDefinition(ValueError):
    """A definition that cannot be registered; ``problems`` are ``{pointer, message}``."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(p["message"] for p in problems))
        self.problems = problems


def stored_definition(format_: SchemaFormat, definition: Any) -> str:
    """The text to store for ``definition``, checked to be usable; else ``InvalidDefinition``.

    A JSON Schema must be an object that is valid for its draft, refer only inside itself
    (nothing is ever fetched), not recurse endlessly, and carry valid ``x-csv`` and
    ``x-fixedWidth`` options; an XSD must be a string that compiles without fetching."""
    if format_ == "XSD":
        if not isinstance(definition, str):
            raise InvalidDefinition([_problem("an XSD definition is a string of XML")])
        text = definition
    elif isinstance(definition, dict):
        text = json.dumps(definition, ensure_ascii=False)
    else:
        raise InvalidDefinition([_problem("a JSON Schema definition is an object")])
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        raise InvalidDefinition([_problem(f"larger than {MAX_DEFINITION_BYTES} bytes")])
    problems = _xsd_problems(text) if format_ == "XSD" else _json_schema_problems(definition)
    if problems:
        raise InvalidDefinition(problems)
    return text


def _problem(message: str, pointer: str = "") -> dict[str, str]:
    return {"pointer": pointer, "message": message}


def _xsd_problems(text: str) -> list[dict[str, str]]:
    try:
        compile_xsd(text)
    except InvalidXsd as exc:
        return [_problem(str(exc))]
    return []


def _json_schema_problems(schema: dict[str, Any]) -> list[dict[str, str]]:
    try:
        check_schema(schema)
    except InvalidSchema as exc:
        return [_problem(str(exc)[:300])]
    problems = [_problem(f"cannot resolve $ref {ref[:100]!r}; only references inside the "
                         "schema are followed") for ref in unresolvable_refs(schema)]
    if not problems and recurses_endlessly(json.dumps(schema)):
        problems.append(_problem("a $ref cycle that never reaches a value"))
    return problems + records.definition_problems(schema)


def unresolvable_refs(schema: dict[str, Any]) -> list[str]:
    """References that do not point inside the schema itself. Nothing is ever fetched, so
    a remote or dangling ``$ref`` would fail every document; refuse it when saved."""
    spec = DRAFT7 if "draft-07" in str(schema.get("$schema", "")) else DRAFT202012
    resolver = Registry().with_resource("", spec.create_resource(schema)).resolver()
    bad, stack = [], [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("$ref", "$dynamicRef"):
                if isinstance(node.get(key), str):
                    try:
                        resolver.lookup(node[key])
                    except Unresolvable:
                        bad.append(node[key])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return bad


def recurses_endlessly(schema_text: str) -> bool:
    """A ``$ref`` cycle that consumes no input overflows on every document; probing a few
    trivial values finds it before a message does."""
    try:
        for probe in (None, {}, [], "", 0):
            violations(schema_text, probe)
    except RecursionError:
        return True
    return False
