"""Request bodies: 400 for broken JSON, 413 past the limit, 422 listing every violation.

All of these are decided before anything is written, so they need no broker.
"""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import ACME, PAYLOAD_LIMIT, assert_error


def fields(error):
    return sorted(d["field"] for d in error["details"])


@pytest.mark.parametrize("body", [b"{", b"not json", b"", b"   ", b'{"a": NaN}',
                                  b'{"a": Infinity}', b"\xff\xfe\x00", b'{"a": 1} {"b": 2}'])
def test_malformed_json_is_400(client, body):
    response = client.post("/v1/connectors", headers=ACME, content=body)
    assert_error(response, 400, "MALFORMED_JSON")


def test_json_nested_too_deep_is_400(client):
    body = "[" * 100 + "]" * 100
    assert_error(client.post("/v1/sandbox/execute", headers=ACME, content=body), 400,
                 "MALFORMED_JSON")
    body = "[" * 10_000 + "]" * 5_000
    assert_error(client.post("/v1/connectors", headers=ACME, content=body), 400, "MALFORMED_JSON")


def test_a_body_over_the_limit_is_413_by_content_length(client):
    body = json.dumps({"name": "x" * PAYLOAD_LIMIT}).encode()
    assert_error(client.post("/v1/connectors", headers=ACME, content=body), 413,
                 "PAYLOAD_TOO_LARGE")


def test_a_body_over_the_limit_is_413_by_bytes_read(client):
    def chunks():  # no Content-Length: sent chunked
        yield b'{"name": "'
        for _ in range(PAYLOAD_LIMIT // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = client.post("/v1/integrations/int_x/messages", headers=ACME, content=chunks())
    assert response.status_code in (404, 413)
    response = client.post("/v1/connectors", headers=ACME, content=chunks())
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_every_violation_is_listed_with_its_field(client):
    response = client.post("/v1/connectors", headers=ACME,
                           json={"config": "nope", "extra": 1, "other": 2})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert fields(error) == ["/config", "/extra", "/name", "/other", "/type"]
    assert all(d["message"] for d in error["details"])


def test_a_body_that_is_not_an_object_is_422(client):
    error = assert_error(client.post("/v1/connectors", headers=ACME, json=[1]), 422,
                         "VALIDATION_FAILED")
    assert fields(error) == ["/"]


def test_messages_never_echo_a_huge_value(client):
    response = client.post("/v1/transformations", headers=ACME,
                           json={"name": "n" * 5000, "expression": 5})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert fields(error) == ["/expression", "/name"]
    assert len(response.content) < 1000


def test_unknown_connector_types_list_the_known_ones(client):
    error = assert_error(client.post("/v1/connectors", headers=ACME,
                                     json={"name": "c", "type": "FTP"}),
                         422, "VALIDATION_FAILED")
    assert error["details"][0]["field"] == "/type"
    assert "HTTP" in error["details"][0]["message"] and "SFTP" in error["details"][0]["message"]


def test_connector_config_is_checked_against_the_type_spec(client):
    response = client.post("/v1/connectors", headers=ACME, json={
        "name": "s", "type": "sftp", "config": {"port": "twenty-two"},
        "credentials": {"password": 12345}})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert "/config/host" in fields(error) and "/config/port" in fields(error)
    assert "12345" not in response.text


def test_a_transformation_expression_that_does_not_compile_is_422(client):
    response = client.post("/v1/transformations", headers=ACME,
                           json={"name": "t", "expression": '{"a": $.b'})
    error = assert_error(response, 422, "INVALID_EXPRESSION")
    detail = error["details"][0]
    assert detail["field"] == "/expression"
    assert set(detail) >= {"code", "message", "position"} and detail["code"].startswith("S")


@pytest.mark.parametrize("schema", [{"type": 5}, {"$ref": "http://example.com/s.json"},
                                    {"$ref": "#"}, {"allOf": [{"$ref": "#/$defs/a"}],
                                                    "$defs": {"a": {"$ref": "#"}}},
                                    {"properties": {"a": {"$ref": "#/$defs/missing"}}}])
def test_an_invalid_inline_source_schema_is_422(client, schema):
    response = client.post("/v1/transformations", headers=ACME,
                           json={"name": "t", "expression": "$", "sourceSchema": schema})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert fields(error) == ["/sourceSchema"]


def test_integration_fields_are_all_checked(client):
    response = client.post("/v1/integrations", headers=ACME, json={
        "environment": "STAGING", "errorStrategy": "RETRY_11_DLQ", "sourceConnectorId": 3})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert fields(error) == ["/environment", "/errorStrategy", "/name", "/sourceConnectorId"]
    assert "RETRY_<n>" in next(d["message"] for d in error["details"]
                                if d["field"] == "/errorStrategy")


@pytest.mark.parametrize("strategy", ["RETRY_0_DLQ", "RETRY_3_dlq", "DLQ_RETRY", "RETRY__DLQ",
                                      "FAIL_FAST ", "RETRY_10_DLQ_"])
def test_bad_error_strategies_are_refused(client, strategy):
    response = client.post("/v1/integrations", headers=ACME,
                           json={"name": "i", "errorStrategy": strategy})
    assert fields(assert_error(response, 422, "VALIDATION_FAILED")) == ["/errorStrategy"]


def test_an_integration_cannot_have_both_a_transformation_and_an_expression(client):
    response = client.post("/v1/integrations", headers=ACME, json={
        "name": "i", "transformationId": "trf_x", "expression": "$"})
    assert fields(assert_error(response, 422, "VALIDATION_FAILED")) == ["/expression"]


def test_unknown_references_are_422_naming_each_field(client, seed):
    seed.connector("globex", "con_globex000000000000000000", "theirs")
    response = client.post("/v1/integrations", headers=ACME, json={
        "name": "i", "sourceConnectorId": "con_nope", "targetConnectorId": "theirs",
        "transformationId": "trf_nope"})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert fields(error) == ["/sourceConnectorId", "/targetConnectorId", "/transformationId"]


def test_a_connector_that_cannot_play_its_role_is_refused(client, seed):
    seed.connector("acme", "con_sftp00000000000000000000", "files", "SFTP",
                   {"host": "sftp.example"})
    seed.connector("acme", "con_inbound00000000000000000", "inbound", "HTTP", {})
    seed.connector("acme", "con_mail0000000000000000000", "mail", "SMTP",
                   {"host": "smtp.example", "from": "a@b", "to": '"c@d"', "subject": '"s"',
                    "text": '"t"'})
    response = client.post("/v1/integrations", headers=ACME, json={
        "name": "i", "sourceConnectorId": "files", "targetConnectorId": "inbound"})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert fields(error) == ["/targetConnectorId"]
    assert "cannot be the target" in error["details"][0]["message"]
    assert "/config/url" in error["details"][0]["message"]
    response = client.post("/v1/integrations", headers=ACME, json={
        "name": "i", "sourceConnectorId": "mail", "targetConnectorId": "files"})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert fields(error) == ["/sourceConnectorId"]
    assert "cannot be the source" in error["details"][0]["message"]


def test_inline_expressions_of_integrations_are_compiled(client):
    response = client.post("/v1/integrations", headers=ACME,
                           json={"name": "i", "expression": "$$$("})
    assert_error(response, 422, "INVALID_EXPRESSION")


def test_patch_needs_at_least_one_field(client, seed):
    seed.connector("acme", "con_a00000000000000000000000", "a")
    response = client.patch("/v1/connectors/con_a00000000000000000000000", headers=ACME, json={})
    assert_error(response, 422, "VALIDATION_FAILED")


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "limit=-1", "cursor=%%%",
                                   "cursor=bm9wZQ"])
def test_bad_pagination_parameters_are_400(client, query):
    response = client.get(f"/v1/connectors?{query}", headers=ACME)
    assert_error(response, 400, "INVALID_QUERY")


def test_flows_explain_which_connectors_match(client, seed):
    seed.connector("acme", "con_h1000000000000000000000", "hook one")
    seed.connector("acme", "con_h2000000000000000000000", "hook two")
    response = client.post("/v1/flows", headers=ACME, json={"source": "http", "target": "kafka"})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    source, target = error["details"]
    assert source["field"] == "/source" and "hook one" in source["message"]
    assert "hook two" in source["message"]
    assert target["field"] == "/target" and "no KAFKA connector" in target["message"]
    response = client.post("/v1/flows", headers=ACME,
                           json={"source": "salesforce", "target": "hook one"})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert [d["field"] for d in error["details"]] == ["/source"]


BAD_BACKOFFS = [
    ({"initialDelayMs": 99}, "/backoff/initialDelayMs", "100..3600000"),
    ({"initialDelayMs": 3_600_001}, "/backoff/initialDelayMs", "100..3600000"),
    ({"initialDelayMs": 1500.5}, "/backoff/initialDelayMs", "integer"),
    ({"initialDelayMs": "1000"}, "/backoff/initialDelayMs", "integer"),
    ({"maxDelayMs": 3_600_001}, "/backoff/maxDelayMs", "100..3600000"),
    ({"multiplier": 0.5}, "/backoff/multiplier", "1..10"),
    ({"multiplier": 10.01}, "/backoff/multiplier", "1..10"),
    ({"multiplier": True}, "/backoff/multiplier", "1..10"),
    ({"jitter": 0.1}, "/backoff/jitter", "not a known field"),
    ("fast", "/backoff", "object or null"),
]


@pytest.mark.parametrize(("path", "extra"), [
    ("/v1/integrations", {"name": "i"}),
    ("/v1/flows", {"source": "a", "target": "b"}),
])
@pytest.mark.parametrize(("backoff", "field", "says"), BAD_BACKOFFS)
def test_backoff_values_outside_the_limits_are_422_at_their_field(client, path, extra, backoff,
                                                                    field, says):
    response = client.post(path, headers=ACME, json=extra | {"backoff": backoff})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert fields(error) == [field]
    assert says in error["details"][0]["message"]


@pytest.mark.parametrize("backoff", [{"initialDelayMs": 5000, "maxDelayMs": 4999},
                                     {"initialDelayMs": 600_000}])  # the default max: 300 s
def test_a_maximum_below_the_initial_delay_is_422(client, seed, backoff):
    response = client.post("/v1/integrations", headers=ACME,
                           json={"name": "i", "backoff": backoff})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert error["details"] == [{"field": "/backoff/maxDelayMs",
                                 "message": f"must be at least initialDelayMs "
                                            f"({backoff['initialDelayMs']})"}]
    seed.integration("acme", "int_b00000000000000000000000", "b")
    response = client.patch("/v1/integrations/int_b00000000000000000000000", headers=ACME,
                            json={"backoff": backoff})
    assert fields(assert_error(response, 422, "VALIDATION_FAILED")) == ["/backoff/maxDelayMs"]
