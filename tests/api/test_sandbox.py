"""The sandbox runs an integration's validate + transform steps on a payload, as the
pipeline would, and never touches the target."""

from __future__ import annotations

import pytest

from tests.api.conftest import ACME, assert_error
from tests.api.test_reads import conforms

TRF = "trf_aaaaaaaaaaaaaaaaaaaaaaaa"
MAPPING = '{"FirstName": $substringBefore($.nome_completo, " "), "Email": $.email}'
SCHEMA = {"type": "object", "required": ["email"],
          "properties": {"email": {"type": "string"}}}


@pytest.fixture
def integrations(seed):
    seed.transformation("acme", TRF, "contact", MAPPING, SCHEMA)
    seed.integration("acme", "int_by_transformation", "a", transformationId=TRF)
    seed.integration("acme", "int_inline", "b", expression="$.a / $.b")
    seed.integration("acme", "int_passthrough", "c")
    return seed


def execute(client, integration_id, payload):
    response = client.post("/v1/sandbox/execute", headers=ACME,
                           json={"integrationId": integration_id, "payload": payload})
    assert response.status_code == 200, response.text
    conforms(response.json(), "SandboxResult")
    return response.json()


def test_the_seed_quickstart_payload_is_transformed(client, integrations):
    result = execute(client, "int_by_transformation",
                     {"nome_completo": "João Silva", "email": "j@ex.pt"})
    assert result["status"] == "SUCCESS" and result["errors"] == []
    assert result["outputPayload"] == {"FirstName": "João", "Email": "j@ex.pt"}
    assert [(s["name"], s["status"]) for s in result["steps"]] == [
        ("validate", "OK"), ("transform", "OK"), ("validateOutput", "SKIPPED")]
    assert result["durationMs"] >= 0


def test_a_payload_that_violates_the_source_schema_fails_validation(client, integrations):
    result = execute(client, "int_by_transformation", {"email": 7})
    assert result["status"] == "FAILED" and result["outputPayload"] is None
    assert result["errors"][0]["stage"] == "validate"
    assert [s["status"] for s in result["steps"]] == ["FAILED", "SKIPPED", "SKIPPED"]


def test_inline_expressions_and_their_runtime_errors(client, integrations):
    assert execute(client, "int_inline", {"a": 6, "b": 3})["outputPayload"] == 2
    failed = execute(client, "int_inline", {"a": "x", "b": 3})
    assert failed["status"] == "FAILED" and failed["errors"][0]["stage"] == "transform"
    infinite = execute(client, "int_inline", {"a": 1, "b": 0})
    assert infinite["status"] == "FAILED" and infinite["outputPayload"] is None


def test_without_a_mapping_the_payload_passes_through(client, integrations):
    assert execute(client, "int_passthrough", [1, "two"])["outputPayload"] == [1, "two"]
    assert execute(client, "int_passthrough", None)["outputPayload"] is None


def test_unknown_integrations_and_missing_fields(client, integrations):
    response = client.post("/v1/sandbox/execute", headers=ACME,
                           json={"integrationId": "int_nope", "payload": {}})
    assert_error(response, 404, "NOT_FOUND")
    response = client.post("/v1/sandbox/execute", headers=ACME, json={"integrationId": "x"})
    assert_error(response, 422, "VALIDATION_FAILED")
