"""The pure flow steps (no broker): validation, transformation, and their error reports."""

from __future__ import annotations

import json
import threading

from integrationos.engine.flow import FlowDefinition, run_flow
from integrationos.engine.transform import TransformError, compile_expression, transform

SEED = """{
    "FirstName": $substringBefore($.nome_completo, " "),
    "LastName": $substringAfter($.nome_completo, " "),
    "Email": $.email,
    "Phone": $.telefone,
    "IsActive__c": $.ativo
}"""
SCHEMA = json.dumps({
    "type": "object", "required": ["email", "nome_completo"],
    "properties": {"email": {"type": "string"}, "ativo": {"type": "boolean"}},
})


def test_the_seed_mapping_gives_the_seed_contact():
    result = run_flow(FlowDefinition(SEED), {"nome_completo": "João Silva", "email": "j@ex.pt"})
    assert result.status == "SUCCESS"
    assert result.output == {"FirstName": "João", "LastName": "Silva", "Email": "j@ex.pt"}
    assert [s.name for s in result.steps] == ["validate", "transform"]


def test_every_schema_violation_is_listed_with_its_pointer():
    result = run_flow(FlowDefinition(SEED, SCHEMA), {"ativo": "yes", "email": 3})
    assert result.status == "FAILED" and result.output is None
    found = {(e["pointer"], e["code"]) for e in result.errors}
    assert found == {("/", "SCHEMA_VIOLATION"), ("/ativo", "SCHEMA_VIOLATION"),
                     ("/email", "SCHEMA_VIOLATION")}
    assert result.steps[1].status == "SKIPPED"


def test_a_named_schema_is_not_applied_as_json_schema():
    result = run_flow(FlowDefinition(SEED, json.dumps("csv-contact-v1")), {"nome_completo": "A B"})
    assert result.status == "SUCCESS" and result.steps[0].status == "SKIPPED"


def test_a_schema_that_cannot_be_applied_fails_validation_not_the_caller():
    result = run_flow(FlowDefinition(SEED, json.dumps({"$ref": "#/nowhere"})), {})
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
