"""References resolve against the real projection tables; definitions are checked before
they are stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrationos.schemas.registry import (
    MAX_DEFINITION_BYTES,
    InvalidDefinition,
    ResolvedSchema,
    resolve,
    resolve_or_explain,
    stored_definition,
)
from integrationos.store.database import open_database
from integrationos.store.projector import LogRecord, Projector
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

ORDER_XSD = (Path(__file__).parent / "order.xsd").read_text()
V1 = {"type": "object", "properties": {"id": {"type": "integer"}}}
V2 = V1 | {"required": ["id"]}


def _version(tenant, schema_id, name, version, definition, format_="JSON_SCHEMA"):
    text = definition if format_ == "XSD" else json.dumps(definition)
    return Event(t.SCHEMA_VERSION_ADDED, tenant, schema_id, {
        "id": schema_id, "name": name, "format": format_, "version": version,
        "definition": text, "compatibility": "BACKWARD"})


@pytest.fixture
def engine(tmp_path):
    """A database whose rows were made by the real projector from encoded events."""
    engine = open_database(f"sqlite:///{tmp_path / 'registry.db'}")
    events = [
        _version("acme", "sch_1", "orders", 1, V1),
        _version("acme", "sch_1", "orders", 2, V2),
        _version("acme", "sch_2", "invoices", 1, ORDER_XSD, "XSD"),
        _version("acme", "sch_3", "gone", 1, V1),
        Event(t.SCHEMA_DELETED, "acme", "sch_3", {"id": "sch_3"}),
        _version("globex", "sch_4", "secret", 1, V1),
    ]
    Projector(engine).apply(LogRecord("cfg", 0, n, codec.encode(e)) for n, e in enumerate(events))
    yield engine
    engine.dispose()


def test_a_name_resolves_to_its_latest_version_and_name_at_n_to_that_one(engine):
    assert resolve(engine, "acme", '"orders"') == ResolvedSchema(
        "JSON_SCHEMA", "orders", 2, json.dumps(V2))
    assert resolve(engine, "acme", '"orders@1"') == ResolvedSchema(
        "JSON_SCHEMA", "orders", 1, json.dumps(V1))
    assert resolve(engine, "acme", '"invoices"') == ResolvedSchema(
        "XSD", "invoices", 1, ORDER_XSD)


def test_an_inline_schema_is_itself_and_no_schema_is_none(engine):
    text = json.dumps({"type": "string"})
    assert resolve(engine, "acme", text) == ResolvedSchema("JSON_SCHEMA", None, None, text)
    assert resolve_or_explain(engine, "acme", None) == (None, None)


@pytest.mark.parametrize("tenant, ref, note", [
    ("acme", '"nope"', "schema 'nope' is not registered"),
    ("acme", '"gone"', "schema 'gone' is not registered"),
    ("acme", '"secret"', "schema 'secret' is not registered"),
    ("globex", '"orders"', "schema 'orders' is not registered"),
    ("acme", '"orders@3"', "schema 'orders' has no version 3 (latest: 2)"),
])
def test_what_cannot_be_resolved_is_explained(engine, tenant, ref, note):
    assert resolve_or_explain(engine, tenant, ref) == (None, note)
    assert resolve(engine, tenant, ref) is None


def test_a_connection_can_be_passed_instead_of_an_engine(engine):
    with engine.connect() as conn:
        assert resolve(conn, "acme", '"orders@1"').version == 1


def test_a_valid_definition_is_stored_as_text():
    assert json.loads(stored_definition("JSON_SCHEMA", V2)) == V2
    assert stored_definition("XSD", ORDER_XSD) == ORDER_XSD


@pytest.mark.parametrize("format_, definition, message", [
    ("JSON_SCHEMA", "a string", "a JSON Schema definition is an object"),
    ("XSD", {"type": "object"}, "an XSD definition is a string of XML"),
    ("JSON_SCHEMA", {"type": "nope"}, "is not valid under any of the given schemas"),
    ("JSON_SCHEMA", {"$ref": "https://example.com/s.json"}, "cannot resolve $ref"),
    ("JSON_SCHEMA", {"$ref": "#/$defs/missing"}, "cannot resolve $ref"),
    ("JSON_SCHEMA", {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
     "a $ref cycle"),
    ("JSON_SCHEMA", {"x-fixedWidth": [{"name": "a", "start": 0, "length": 1}]},
     "must be an integer >= 1"),
    ("XSD", "<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'/>", "no global element"),
    ("XSD", "x" * (MAX_DEFINITION_BYTES + 1), "larger than"),
])
def test_an_unusable_definition_is_refused_with_the_reason(format_, definition, message):
    with pytest.raises(InvalidDefinition) as caught:
        stored_definition(format_, definition)
    assert any(message in p["message"] for p in caught.value.problems), caught.value.problems
