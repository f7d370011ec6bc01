"""The pure flow steps (no broker): validation, transformation, and their error reports."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from integrationos.engine.flow import FlowDefinition, run_flow
from integrationos.engine.transform import TransformError, compile_expression, transform
from integrationos.schemas.registry import ResolvedSchema, parse_reference

SEED = """{
    "FirstName": $substringBefore($.nome_completo, " "),
    "LastName": $substringAfter($.nome_completo, " "),
    "Email": $.email,
    "Phone": $.telefone,
    "IsActive__c": $.ativo
}"""
SCHEMA = parse_reference(json.dumps({
    "type": "object", "required": ["email", "nome_completo"],
    "properties": {"email": {"type": "string"}, "ativo": {"type": "boolean"}},
}))
ORDER_XSD = ResolvedSchema("XSD", "orders", 1,
                           (Path(__file__).parents[1] / "schemas" / "order.xsd").read_text())
ORDER_XML = (b'<order xmlns="urn:example:orders" id="A1"><customer>Ana</customer>'
             b'<placed>2026-12-01</placed><items>'
             b'<item line="1"><sku>X</sku><qty>2</qty><price>9.50</price></item>'
             b'<item line="2"><sku>Y</sku><qty>1</qty><price>5</price></item>'
             b'</items><paid>true</paid></order>')
ORDER_MAPPING = """{
    "orderId": order.`@id`,
    "customer": order.customer,
    "total": $sum(order.items.item.(qty * price)),
    "lines": $count(order.items.item)
}"""


def test_the_seed_mapping_gives_the_seed_contact():
    result = run_flow(FlowDefinition(SEED), {"nome_completo": "João Silva", "email": "j@ex.pt"})
    assert result.status == "SUCCESS"
    assert result.output == {"FirstName": "João", "LastName": "Silva", "Email": "j@ex.pt"}
    assert [s.name for s in result.steps] == ["validate", "transform", "validateOutput"]
    assert json.loads(result.body) == result.output
    assert result.content_type == "application/json"


def test_every_schema_violation_is_listed_with_its_pointer():
    result = run_flow(FlowDefinition(SEED, source=SCHEMA), {"ativo": "yes", "email": 3})
    assert result.status == "FAILED" and result.output is None
    found = {(e["pointer"], e["code"]) for e in result.errors}
    assert found == {("/", "SCHEMA_VIOLATION"), ("/ativo", "SCHEMA_VIOLATION"),
                     ("/email", "SCHEMA_VIOLATION")}
    assert result.steps[1].status == "SKIPPED"


def test_an_unregistered_schema_name_skips_validation_and_says_so():
    note = "schema 'csv-contact-v1' is not registered: not validated"
    result = run_flow(FlowDefinition(SEED, source_note=note), {"nome_completo": "A B"})
    assert result.status == "SUCCESS" and result.steps[0].status == "SKIPPED"
    assert result.steps[0].detail == note


def test_a_schema_that_cannot_be_applied_fails_validation_not_the_caller():
    unusable = ResolvedSchema("JSON_SCHEMA", None, None, json.dumps({"$ref": "#/nowhere"}))
    result = run_flow(FlowDefinition(SEED, source=unusable), {})
    assert result.status == "FAILED"
    assert result.errors[0]["code"] == "SCHEMA_UNUSABLE"


def test_syntax_errors_carry_the_jsonata_code():
    result = run_flow(FlowDefinition('{"a": '), {})
    assert result.status == "FAILED"
    assert result.errors[0]["stage"] == "transform" and result.errors[0]["code"] == "S0207"


def test_infinity_is_not_a_json_output():
    result = run_flow(FlowDefinition("1/0"), {})
    assert result.status == "FAILED" and result.errors[0]["code"] == "D1001"


def test_runaway_recursion_is_stopped_with_a_code():
    result = run_flow(FlowDefinition("($f := function($x){ $f($x) + 1 }; $f(1))"), {})
    assert result.status == "FAILED"
    assert result.errors[0]["code"] in {"D1012", "D1011"}


def test_compiled_expressions_are_cached_and_usable_from_any_thread():
    assert compile_expression(SEED) is compile_expression(SEED)
    outputs: list[object] = []
    worker = threading.Thread(target=lambda: outputs.append(transform("$.a * 2", {"a": 21})[0]))
    worker.start()
    worker.join()
    assert outputs == [42]
    try:
        compile_expression("$.a +")
    except TransformError as exc:
        assert exc.code.startswith("S0")
    else:
        raise AssertionError("a syntax error must raise")


def test_an_xml_order_is_validated_by_its_xsd_and_mapped_to_json():
    result = run_flow(FlowDefinition(ORDER_MAPPING, source=ORDER_XSD), raw=ORDER_XML,
                      content_type="application/xml")
    assert result.status == "SUCCESS", result.errors
    assert result.steps[0].status == "OK"
    assert result.output == {"orderId": "A1", "customer": "Ana", "total": 24.0, "lines": 2}


def test_every_xsd_violation_is_listed_by_xpath():
    bad = ORDER_XML.replace(b"<qty>2</qty>", b"<qty>-2</qty>").replace(
        b"<paid>true</paid>", b"<paid>maybe</paid>")
    result = run_flow(FlowDefinition(ORDER_MAPPING, source=ORDER_XSD), raw=bad,
                      content_type="application/xml")
    assert result.status == "FAILED"
    pointers = [e["pointer"] for e in result.errors]
    assert len(pointers) == 2 and all(p.startswith("/") for p in pointers)
    assert any("qty" in p for p in pointers) and any("paid" in p for p in pointers)


def test_json_output_is_encoded_to_xml_against_a_target_xsd():
    mapping = """{"order": {"@id": "B2", "customer": name, "placed": "2026-12-04",
                 "items": {"item": [{"@line": 1, "sku": "Z", "qty": 3, "price": 1.5}]},
                 "paid": false}}"""
    result = run_flow(FlowDefinition(mapping, target=ORDER_XSD), {"name": "Rui"})
    assert result.status == "SUCCESS", result.errors
    assert result.content_type == "application/xml"
    assert b"<customer>Rui</customer>" in result.body and b'id="B2"' in result.body


def test_output_that_breaks_the_target_schema_fails_with_every_violation():
    target = parse_reference(json.dumps({"type": "object", "required": ["Email", "Id"]}))
    result = run_flow(FlowDefinition(SEED, target=target), {"nome_completo": "A B"})
    assert result.status == "FAILED" and result.output is None
    assert {e["code"] for e in result.errors} == {"TARGET_SCHEMA_VIOLATION"}
    assert len(result.errors) == 2
