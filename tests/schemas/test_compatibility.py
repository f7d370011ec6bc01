"""BACKWARD compatibility: each rule refuses the narrowing and lets the widening through, and
examples catch for XSD (and beyond the rules for JSON) what the text cannot show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrationos.schemas.compatibility import incompatibilities, structural
from integrationos.schemas.registry import ResolvedSchema

ORDER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "status": {"enum": ["NEW", "PAID"]},
        "qty": {"type": "integer", "minimum": 0, "maximum": 100},
        "code": {"type": "string", "minLength": 2, "maxLength": 20, "pattern": "^[A-Z]"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
    },
    "required": ["id"],
    "additionalProperties": False,
}


def _with(**properties):
    return ORDER | {"properties": ORDER["properties"] | properties}


# (rule, narrowed version, widened version, pointer of the narrowing)
CASES = [
    ("REQUIRED_ADDED", ORDER | {"required": ["id", "qty"]}, ORDER | {"required": []},
     "/required"),
    ("PROPERTY_REMOVED",
     ORDER | {"properties": {k: v for k, v in ORDER["properties"].items() if k != "tags"}},
     _with(note={"type": "string"}), "/properties/tags"),
    ("TYPE_NARROWED", _with(id={"type": "string"}), _with(id={"type": ["number", "null"]}),
     "/properties/id/type"),
    ("ENUM_NARROWED", _with(status={"enum": ["NEW"]}), _with(status={"enum": ["NEW", "PAID",
                                                                              "VOID"]}),
     "/properties/status/enum"),
    ("BOUND_TIGHTENED", _with(qty={"type": "integer", "minimum": 1, "maximum": 100}),
     _with(qty={"type": "integer", "minimum": -5, "maximum": 100}), "/properties/qty/minimum"),
    ("BOUND_TIGHTENED", _with(qty={"type": "integer", "minimum": 0, "exclusiveMaximum": 100}),
     _with(qty={"type": "integer", "minimum": 0, "exclusiveMaximum": 101}),
     "/properties/qty/exclusiveMaximum"),
    ("BOUND_TIGHTENED",
     _with(code={"type": "string", "minLength": 3, "maxLength": 20, "pattern": "^[A-Z]"}),
     _with(code={"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[A-Z]"}),
     "/properties/code/minLength"),
    ("BOUND_TIGHTENED",
     _with(code={"type": "string", "minLength": 2, "maxLength": 10, "pattern": "^[A-Z]"}),
     _with(code={"type": "string", "minLength": 2, "pattern": "^[A-Z]"}),
     "/properties/code/maxLength"),
    ("PATTERN_CHANGED",
     _with(code={"type": "string", "minLength": 2, "maxLength": 20, "pattern": "^[A-Z]{2}"}),
     _with(code={"type": "string", "minLength": 2, "maxLength": 20}),
     "/properties/code/pattern"),
    ("BOUND_TIGHTENED", _with(tags={"type": "array", "items": {"type": "string"},
                                    "maxItems": 5, "uniqueItems": True}),
     _with(tags={"type": "array", "items": {"type": "string"}}), "/properties/tags/uniqueItems"),
    ("TYPE_NARROWED", _with(tags={"type": "array", "items": {"type": "integer"}, "maxItems": 5}),
     _with(tags={"type": "array", "items": {"type": ["string", "integer"]}, "maxItems": 5}),
     "/properties/tags/items/type"),
]


@pytest.mark.parametrize("rule, narrowed, widened, pointer", CASES,
                         ids=[f"{c[0]}:{c[3]}" for c in CASES])
def test_each_rule_refuses_the_narrowing_and_allows_the_widening(rule, narrowed, widened,
                                                                 pointer):
    found = structural(ORDER, narrowed)
    assert [(f["rule"], f["pointer"]) for f in found] == [(rule, pointer)], found
    assert structural(ORDER, widened) == []


def test_closing_an_open_model_narrows_and_opening_it_widens():
    open_model = ORDER | {"additionalProperties": True}
    assert [(f["rule"], f["pointer"]) for f in structural(open_model, ORDER)] == [
        ("ADDITIONAL_PROPERTIES_CLOSED", "/additionalProperties")]
    assert structural(ORDER, open_model) == []
    typed = ORDER | {"additionalProperties": {"type": "string"}}
    assert [(f["rule"], f["pointer"]) for f in structural(open_model, typed)] == [
        ("TYPE_NARROWED", "/additionalProperties/type")]
    assert structural(ORDER, typed) == []


def test_every_incompatibility_is_listed_at_once():
    narrowed = ORDER | {"required": ["id", "status"], "properties": ORDER["properties"] | {
        "id": {"type": "string"}, "status": {"enum": ["NEW"]}}}
    found = structural(ORDER, narrowed)
    assert {(f["rule"], f["pointer"]) for f in found} == {
        ("REQUIRED_ADDED", "/required"), ("TYPE_NARROWED", "/properties/id/type"),
        ("ENUM_NARROWED", "/properties/status/enum")}
    assert all(f["message"] for f in found)


def test_a_property_added_to_an_open_model_narrows_unless_it_only_annotates():
    open_model = {"type": "object", "properties": {"id": {"type": "integer"}}}
    added = open_model | {"properties": open_model["properties"] | {"x": {"type": "string"}}}
    assert [f["rule"] for f in structural(open_model, added)] == ["PROPERTY_ADDED_TO_OPEN_MODEL"]
    documented = open_model | {"properties": open_model["properties"] | {"x": {"title": "X"}}}
    assert structural(open_model, documented) == []
    closed = open_model | {"additionalProperties": False}
    assert structural(closed, closed | {"properties": added["properties"]}) == []


def test_nullable_through_any_of_is_a_widening_and_dropping_it_a_narrowing():
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert structural({"type": "string"}, nullable) == []
    assert [f["message"] for f in structural(nullable, {"type": "string"})] == [
        "no longer accepts null"]
    assert [f["rule"] for f in structural(nullable, {"anyOf": [{"type": "string"}]})] == [
        "BRANCHES_NARROWED"]


def test_shared_definitions_are_compared_through_refs_and_reported_once():
    def schema(item):
        return {"$defs": {"line": item}, "type": "object", "properties": {
            "first": {"$ref": "#/$defs/line"}, "rest": {"type": "array",
                                                         "items": {"$ref": "#/$defs/line"}}}}
    old = schema({"type": "object", "properties": {"sku": {"type": "string"}}})
    new = schema({"type": "object", "properties": {"sku": {"type": "string"}},
                  "required": ["sku"]})
    assert [(f["rule"], f["pointer"]) for f in structural(old, new)] == [
        ("REQUIRED_ADDED", "/$defs/line/required")]
    assert structural(new, old) == []


def test_recursive_schemas_terminate():
    def tree(max_items=None):
        kids = {"type": "array", "items": {"$ref": "#/$defs/node"}}
        if max_items is not None:
            kids["maxItems"] = max_items
        return {"$defs": {"node": {"type": "object", "properties": {"kids": kids}}},
                "$ref": "#/$defs/node"}
    assert structural(tree(), tree()) == []
    assert [f["pointer"] for f in structural(tree(), tree(3))] == [
        "/$defs/node/properties/kids/maxItems"]


def test_multiple_of_compares_exactly():
    assert structural({"multipleOf": 0.3}, {"multipleOf": 0.1}) == []
    assert [f["rule"] for f in structural({"multipleOf": 0.1}, {"multipleOf": 0.3})] == [
        "BOUND_TIGHTENED"]


def test_draft_07_tuples_are_compared_by_position():
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "array",
              "items": [{"type": "string"}]}
    closed = draft7 | {"items": [{"type": "integer"}], "additionalItems": False}
    assert [(f["rule"], f["pointer"]) for f in structural(draft7, closed)] == [
        ("TYPE_NARROWED", "/items/0/type"), ("NOW_REJECTED", "/additionalItems")]


def _json(schema, version):
    return ResolvedSchema("JSON_SCHEMA", "orders", version, json.dumps(schema))


def test_examples_catch_what_the_rules_do_not_see():
    old = {"type": "object"}
    new = {"type": "object", "if": {"required": ["vat"]}, "then": {"required": ["country"]}}
    assert structural(old, new) == []
    found = incompatibilities(_json(old, 1), _json(new, 2), [{"vat": 21}, {"sku": "A"}])
    assert found == [{"pointer": "/examples/0", "rule": "EXAMPLE_REJECTED",
                      "message": "at /: 'country' is a required property"}]


ORDER_XSD = (Path(__file__).parent / "order.xsd").read_text()


def test_xsd_versions_are_checked_by_their_examples():
    order = ('<order xmlns="urn:example:orders" id="o-1"><customer>Ada</customer>'
             '<placed>2026-02-01</placed><items><item line="1"><sku>A</sku><qty>1</qty>'
             '<price>2</price></item></items><paid>false</paid></order>')
    stricter = ORDER_XSD.replace('<xs:element name="sku" type="xs:string"/>',
                                 '<xs:element name="sku"><xs:simpleType><xs:restriction '
                                 'base="xs:string"><xs:minLength value="3"/></xs:restriction>'
                                 '</xs:simpleType></xs:element>')
    old = ResolvedSchema("XSD", "orders", 1, ORDER_XSD)
    new = ResolvedSchema("XSD", "orders", 2, stricter)
    assert incompatibilities(old, old, [order]) == []
    found = incompatibilities(old, new, [order])
    assert [(f["pointer"], f["rule"]) for f in found] == [("/examples/0", "EXAMPLE_REJECTED")]
    assert found[0]["message"].startswith("at /order/items/item/sku:")
