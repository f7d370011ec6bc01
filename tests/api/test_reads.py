"""Reads of projected rows: shapes, masking, pagination, status counts, message history,
and tenant isolation on every resource route."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator

from integrationos.api.openapi import document
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import ACME, GLOBEX, SECRET, assert_error

CON = "con_0123456789abcdef01234567"
TRF = "trf_0123456789abcdef01234567"
INT = "int_0123456789abcdef01234567"
MSG = "msg_0123456789abcdef01234567"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def conforms(body, schema_name):
    """The response matches the schema the OpenAPI document publishes for it."""
    doc = document()
    schema = {**doc["components"]["schemas"][schema_name], "components": doc["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
    assert not errors, errors


@pytest.fixture
def acme(seed):
    seed.connector("acme", CON, "target", "HTTP", {"url": "http://127.0.0.1:9/hook"},
                   {"bearerToken": SECRET})
    seed.transformation("acme", TRF, "contact", '{"Email": $.email}',
                        {"type": "object", "required": ["email"]})
    seed.integration("acme", INT, "flow", targetConnectorId=CON, transformationId=TRF)
    seed.message_events(
        Event(t.MESSAGE_RECEIVED, "acme", MSG, {
            "messageId": MSG, "integrationId": INT, "key": "k1",
            "payloadJson": '{"email": "a@ex.pt"}', "source": "api"}),
        Event(t.MESSAGE_FAILED, "acme", MSG, {
            "messageId": MSG, "integrationId": INT, "attempt": 1, "stage": "deliver",
            "errorClass": "TRANSIENT", "code": "HTTP_503", "message": "HTTP 503"}),
        Event(t.MESSAGE_RECEIVED, "acme", "msg_other", {
            "messageId": "msg_other", "integrationId": INT, "key": None,
            "payloadJson": "{}", "source": "api"}),
    )
    return seed


def test_a_connector_is_shown_with_masked_credentials(client, acme):
    response = client.get(f"/v1/connectors/{CON}", headers=ACME)
    assert response.status_code == 200
    body = response.json()
    conforms(body, "Connector")
    assert body["type"] == "HTTP" and body["config"] == {"url": "http://127.0.0.1:9/hook"}
    assert body["hasCredentials"] is True
    assert set(body["credentials"]) == {"bearerToken"}
    assert SECRET not in response.text
    assert ISO.match(body["createdAt"]) and ISO.match(body["updatedAt"])


def test_lists_are_paginated_in_creation_order(client, seed):
    ids = [f"con_{n:024x}" for n in range(5)]
    for n, connector_id in enumerate(ids):
        seed.connector("acme", connector_id, f"c{n}", credentials={"bearerToken": SECRET})
    seen, cursor = [], None
    for _ in range(3):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(f"/v1/connectors{query}", headers=ACME)
        conforms(response.json(), "ConnectorList")
        assert SECRET not in response.text
        seen += [c["id"] for c in response.json()["data"]]
        cursor = response.json()["nextCursor"]
    assert seen == ids and cursor is None
    assert client.get("/v1/connectors?type=kafka", headers=ACME).json()["data"] == []
    assert len(client.get("/v1/connectors?type=http", headers=ACME).json()["data"]) == 5
    assert client.get("/v1/connectors", headers=GLOBEX).json() == {"data": [], "nextCursor": None}


def test_a_transformation_and_an_integration(client, acme):
    body = client.get(f"/v1/transformations/{TRF}", headers=ACME).json()
    conforms(body, "Transformation")
    assert body["sourceSchema"] == {"type": "object", "required": ["email"]}
    body = client.get(f"/v1/integrations/{INT}", headers=ACME).json()
    conforms(body, "Integration")
    assert body["status"] == "ACTIVE" and body["targetConnectorId"] == CON
    listed = client.get("/v1/integrations?environment=dev", headers=ACME).json()
    assert [i["id"] for i in listed["data"]] == [INT]
    assert client.get("/v1/integrations?environment=PROD", headers=ACME).json()["data"] == []
    conforms(client.get("/v1/transformations", headers=ACME).json(), "TransformationList")


def test_status_counts_messages_by_current_status(client, acme):
    body = client.get(f"/v1/integrations/{INT}/status", headers=ACME).json()
    conforms(body, "IntegrationStatus")
    assert body == {"integrationId": INT, "received": 1, "transformed": 0, "delivered": 0,
                    "failed": 1, "deadLettered": 0, "discarded": 0, "parked": 0, "total": 2,
                    "status": "ACTIVE", "pausedReason": None}


def _parked(message_id: str, reason: str, code: str) -> Event:
    return Event(t.MESSAGE_PARKED, "acme", message_id, {
        "messageId": message_id, "integrationId": INT, "reason": reason, "code": code,
        "message": f"{code} happened"})


def test_a_fail_fast_pause_shows_its_reason_and_the_parked_messages(client, acme):
    pause = Event(t.INTEGRATION_PAUSED, "acme", INT, {
        "id": INT, "reason": "FAIL_FAST", "messageId": MSG, "code": "HTTP_400",
        "message": "HTTP 400 from 127.0.0.1"})
    later = Event(t.INTEGRATION_PAUSED, "acme", INT, {
        "id": INT, "reason": "FAIL_FAST", "messageId": "msg_other", "code": "HTTP_400",
        "message": "the same outage, seen by another worker"})
    acme.apply(pause, later)  # several messages failed at once: the first reason stays
    acme.message_events(_parked(MSG, "FAIL_FAST", "HTTP_400"),
                        _parked("msg_other", "INTEGRATION_PAUSED", "INTEGRATION_PAUSED"))
    body = client.get(f"/v1/integrations/{INT}/status", headers=ACME).json()
    conforms(body, "IntegrationStatus")
    assert (body["parked"], body["failed"], body["received"], body["total"]) == (2, 0, 0, 2)
    assert body["status"] == "PAUSED"
    assert body["pausedReason"] == {
        "reason": "FAIL_FAST", "messageId": MSG, "code": "HTTP_400",
        "message": "HTTP 400 from 127.0.0.1", "at": body["pausedReason"]["at"]}
    assert ISO.match(body["pausedReason"]["at"])
    message = client.get(f"/v1/messages/{MSG}", headers=ACME).json()
    conforms(message, "Message")
    assert message["status"] == "PARKED"
    assert message["lastError"] == {"code": "HTTP_400", "message": "HTTP_400 happened"}
    assert message["payload"] == {"email": "a@ex.pt"}  # nothing about it is lost

    acme.apply(Event(t.INTEGRATION_RESUMED, "acme", INT, {"id": INT}))
    resumed = client.get(f"/v1/integrations/{INT}/status", headers=ACME).json()
    assert (resumed["status"], resumed["pausedReason"]) == ("ACTIVE", None)
    acme.apply(Event(t.INTEGRATION_PAUSED, "acme", INT, {"id": INT}))  # a v1-style pause
    assert client.get(f"/v1/integrations/{INT}/status", headers=ACME).json()[
        "pausedReason"]["reason"] == "USER"


def test_a_message_with_its_history(client, acme):
    body = client.get(f"/v1/messages/{MSG}", headers=ACME).json()
    conforms(body, "Message")
    assert body["status"] == "FAILED" and body["payload"] == {"email": "a@ex.pt"}
    assert body["lastError"] == {"code": "HTTP_503", "message": "HTTP 503"}
    assert [e["type"] for e in body["events"]] == ["message.received", "message.failed"]
    assert_error(client.get("/v1/messages/msg_unknown", headers=ACME), 404, "NOT_FOUND")


def test_connector_types_come_from_the_registry(client):
    body = client.get("/v1/connector-types", headers=ACME).json()
    conforms(body, "ConnectorTypeList")
    assert [d["type"] for d in body["data"]] == [
        "HTTP", "JDBC", "KAFKA", "SALESFORCE", "SFTP", "SMTP"]
    assert client.get("/v1/connector-types/sftp", headers=ACME).json()["type"] == "SFTP"
    assert_error(client.get("/v1/connector-types/ftp", headers=ACME), 404, "NOT_FOUND")


RESOURCE_ROUTES = [
    ("GET", f"/v1/connectors/{CON}", None),
    ("PATCH", f"/v1/connectors/{CON}", {"name": "mine now"}),
    ("DELETE", f"/v1/connectors/{CON}", None),
    ("POST", f"/v1/connectors/{CON}/test", None),
    ("GET", f"/v1/transformations/{TRF}", None),
    ("PATCH", f"/v1/transformations/{TRF}", {"expression": "$"}),
    ("DELETE", f"/v1/transformations/{TRF}", None),
    ("GET", f"/v1/integrations/{INT}", None),
    ("PATCH", f"/v1/integrations/{INT}", {"name": "x"}),
    ("DELETE", f"/v1/integrations/{INT}", None),
    ("POST", f"/v1/integrations/{INT}/pause", None),
    ("POST", f"/v1/integrations/{INT}/resume", None),
    ("GET", f"/v1/integrations/{INT}/status", None),
    ("POST", f"/v1/integrations/{INT}/messages", {"email": "x"}),
    ("GET", f"/v1/messages/{MSG}", None),
    ("POST", "/v1/sandbox/execute", {"integrationId": INT, "payload": {}}),
]


@pytest.mark.parametrize(("method", "path", "body"), RESOURCE_ROUTES)
def test_another_tenants_ids_are_404(client, acme, method, path, body):
    response = client.request(method, path, headers=GLOBEX, json=body)
    assert_error(response, 404, "NOT_FOUND")
    assert SECRET not in response.text and "a@ex.pt" not in response.text


def test_references_to_another_tenants_resources_are_refused(client, acme):
    response = client.post("/v1/flows", headers=GLOBEX, json={"source": CON, "target": "target"})
    assert_error(response, 422, "VALIDATION_FAILED")
    response = client.post("/v1/integrations", headers=GLOBEX,
                           json={"name": "i", "transformationId": TRF})
    assert_error(response, 422, "VALIDATION_FAILED")


def test_deleting_what_an_integration_uses_is_409(client, acme):
    assert_error(client.delete(f"/v1/connectors/{CON}", headers=ACME), 409, "CONNECTOR_IN_USE")
    assert_error(client.delete(f"/v1/transformations/{TRF}", headers=ACME), 409,
                 "TRANSFORMATION_IN_USE")


def test_a_paused_integration_refuses_messages(client, acme):
    acme.apply(Event(t.INTEGRATION_PAUSED, "acme", INT, {"id": INT}))
    response = client.post(f"/v1/integrations/{INT}/messages", headers=ACME, json={"a": 1})
    assert_error(response, 409, "INTEGRATION_PAUSED")


def test_names_are_unique_per_tenant(client, acme):
    response = client.post("/v1/connectors", headers=ACME, json={
        "name": "target", "type": "HTTP", "config": {"url": "http://127.0.0.1:9/"}})
    assert_error(response, 409, "CONFLICT")
    response = client.post("/v1/transformations", headers=ACME,
                           json={"name": "contact", "expression": "$"})
    assert_error(response, 409, "CONFLICT")


def test_a_connector_in_use_must_keep_what_its_role_needs(client, acme):
    response = client.patch(f"/v1/connectors/{CON}", headers=ACME, json={"config": {}})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert [d["field"] for d in error["details"]] == ["/config/url"]
