"""The write path on the real broker and a real worker: each write is appended to the log,
projected by the worker, and visible to the next read (read-your-writes)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from integrationos.api.app import create_app
from integrationos.cli.tenants import create_tenant
from integrationos.settings import Settings
from tests.api.conftest import assert_error
from tests.support import RecordingTarget, wait_for

pytestmark = pytest.mark.broker

SECRET = "s3cr3t-bearer-never-shown"


class Recorder:
    """A client that keeps every response, to check no secret ever left the API."""

    def __init__(self, client: TestClient, tenant: tuple[str, str]) -> None:
        self.client = client
        self.headers = {"X-Tenant-Id": tenant[0], "X-API-Key": tenant[1]}
        self.texts: list[str] = []

    def __call__(self, method: str, path: str, status: int, **kwargs) -> dict:
        response = self.client.request(method, path, headers=self.headers | kwargs.pop(
            "headers", {}), **kwargs)
        self.texts.append(response.text)
        assert response.status_code == status, response.text
        return response.json() if response.content else {}


@pytest.fixture
def api(worker, tenant) -> Iterator[Recorder]:
    with TestClient(create_app(Settings.from_env())) as client:
        recorder = Recorder(client, tenant)
        yield recorder
    assert not any(SECRET in text for text in recorder.texts)


@pytest.fixture
def target() -> Iterator[RecordingTarget]:
    server = RecordingTarget()
    yield server
    server.close()


def test_connector_lifecycle(api, target):
    created = api("POST", "/v1/connectors", 201, json={
        "name": "hook", "type": "http", "config": {"url": target.url},
        "credentials": {"bearerToken": SECRET}})
    assert created["id"].startswith("con_") and len(created["id"]) == 28
    assert created["type"] == "HTTP" and created["version"] == 1
    assert created["hasCredentials"] and set(created["credentials"]) == {"bearerToken"}
    assert api("GET", f"/v1/connectors/{created['id']}", 200) == created
    assert [c["id"] for c in api("GET", "/v1/connectors", 200)["data"]] == [created["id"]]
    assert_error(api.client.post("/v1/connectors", headers=api.headers, json={
        "name": "hook", "type": "HTTP", "config": {"url": target.url}}), 409, "CONFLICT")

    health = api("POST", f"/v1/connectors/{created['id']}/test", 200)
    assert health["status"] == "UP" and isinstance(health["latencyMs"], int)

    renamed = api("PATCH", f"/v1/connectors/{created['id']}", 200, json={"name": "hook 2"})
    assert renamed["version"] == 2 and renamed["name"] == "hook 2"
    assert renamed["hasCredentials"] and renamed["createdAt"] == created["createdAt"]
    cleared = api("PATCH", f"/v1/connectors/{created['id']}", 200, json={"credentials": None})
    assert cleared["version"] == 3 and cleared["hasCredentials"] is False
    assert cleared["credentials"] is None

    api("DELETE", f"/v1/connectors/{created['id']}", 204)
    api("GET", f"/v1/connectors/{created['id']}", 404)
    assert api("GET", "/v1/connectors", 200)["data"] == []


def test_integration_lifecycle_with_messages(api, target):
    hook = api("POST", "/v1/connectors", 201, json={
        "name": "salesforce-prod", "type": "HTTP", "config": {"url": target.url},
        "credentials": {"bearerToken": SECRET}})
    transformation = api("POST", "/v1/transformations", 201, json={
        "name": "contact", "sourceSchema": {"type": "object", "required": ["email"]},
        "expression": '{"Email": $.email}'})
    assert transformation["sourceSchema"] == {"type": "object", "required": ["email"]}
    updated = api("PATCH", f"/v1/transformations/{transformation['id']}", 200,
                  json={"expression": '{"Email": $uppercase($.email)}'})
    assert updated["version"] == 2

    integration = api("POST", "/v1/integrations", 201, json={
        "name": "flow", "targetConnectorId": "salesforce-prod",
        "transformationId": transformation["id"]})
    assert integration["targetConnectorId"] == hook["id"]
    assert integration["environment"] == "DEV" and integration["errorStrategy"] == "RETRY_3_DLQ"
    assert integration["status"] == "ACTIVE"
    path = f"/v1/integrations/{integration['id']}"

    sandbox = api("POST", "/v1/sandbox/execute", 200,
                  json={"integrationId": integration["id"], "payload": {"email": "a@ex.pt"}})
    assert sandbox["outputPayload"] == {"Email": "A@EX.PT"} and target.received == []

    assert api("POST", f"{path}/pause", 200)["status"] == "PAUSED"
    assert_error(api.client.post(f"{path}/messages", headers=api.headers, json={"email": "x"}),
                 409, "INTEGRATION_PAUSED")
    assert api("POST", f"{path}/resume", 200)["status"] == "ACTIVE"

    accepted = api("POST", f"{path}/messages", 202, json={"email": "b@ex.pt"},
                   headers={"X-Message-Key": "customer-7"})
    assert accepted["status"] == "ACCEPTED" and accepted["messageId"].startswith("msg_")
    message_path = f"/v1/messages/{accepted['messageId']}"

    def delivered() -> dict | None:
        response = api.client.get(message_path, headers=api.headers)
        return response.json() if response.status_code == 200 and \
            response.json()["status"] == "DELIVERED" else None

    message = wait_for(delivered, 60, "the message to be delivered")
    assert message["payload"] == {"email": "b@ex.pt"}
    assert message["output"] == {"Email": "B@EX.PT"}
    assert [e["type"] for e in message["events"]] == [
        "message.received", "message.transformed", "message.delivered"]
    assert target.received[0]["body"] == {"Email": "B@EX.PT"}
    status = api("GET", f"{path}/status", 200)
    assert status["delivered"] == 1 and status["total"] == 1

    inline = api("PATCH", path, 200, json={"expression": "$"})
    assert inline["transformationId"] is None and inline["version"] == 2

    assert_error(api.client.delete(f"/v1/connectors/{hook['id']}", headers=api.headers), 409,
                 "CONNECTOR_IN_USE")
    api("DELETE", path, 204)
    api("GET", path, 404)
    api("DELETE", f"/v1/transformations/{transformation['id']}", 204)
    api("DELETE", f"/v1/connectors/{hook['id']}", 204)


def test_flows_short_form_and_tenant_isolation(api, target, platform_env):
    sftp = api("POST", "/v1/connectors", 201, json={
        "name": "SFTP Production", "type": "SFTP",
        "config": {"host": "sftp.empresa.pt", "port": 22, "remotePath": "/outbound"},
        "credentials": {"username": "integrations", "password": SECRET}})
    api("POST", "/v1/connectors", 201, json={"name": "hook", "type": "HTTP",
                                              "config": {"url": target.url}})
    flow = api("POST", "/v1/flows", 201, json={"source": "sftp", "target": "http"})
    assert flow["sourceConnectorId"] == sftp["id"] and flow["name"] == "SFTP Production → hook"

    other = create_tenant(Settings.from_env(), "Other Co", "free")
    headers = {"X-Tenant-Id": other.tenant_id, "X-API-Key": other.api_key}
    for path in (f"/v1/connectors/{sftp['id']}", f"/v1/integrations/{flow['id']}"):
        assert_error(api.client.get(path, headers=headers), 404, "NOT_FOUND")
    response = api.client.post("/v1/connectors", headers=headers, json={
        "name": "SFTP Production", "type": "SFTP", "config": {"host": "other.example"},
        "credentials": {"username": "u", "password": "p"}})
    assert response.status_code == 201, response.text
    listed = api.client.get("/v1/connectors", headers=headers).json()["data"]
    assert [c["id"] for c in listed] == [response.json()["id"]]
    assert SECRET not in json.dumps(listed)


def test_backoff_round_trips_through_the_log(api, target):
    api("POST", "/v1/connectors", 201, json={"name": "hook", "type": "HTTP",
                                              "config": {"url": target.url}})
    own = {"initialDelayMs": 4000, "maxDelayMs": 3_600_000, "multiplier": 1.5}
    created = api("POST", "/v1/integrations", 201, json={
        "name": "slow target", "targetConnectorId": "hook", "expression": "$",
        "errorStrategy": "RETRY_5_DLQ", "backoff": own})
    path = f"/v1/integrations/{created['id']}"
    assert created["backoff"] == own and api("GET", path, 200)["backoff"] == own

    renamed = api("PATCH", path, 200, json={"name": "still slow"})
    assert renamed["backoff"] == own  # an update that does not name it keeps it
    partial = api("PATCH", path, 200, json={"backoff": {"initialDelayMs": 250}})
    assert partial["backoff"] == {"initialDelayMs": 250, "maxDelayMs": 300_000,
                                  "multiplier": 2}  # replaced; omitted fields: defaults
    assert api("PATCH", path, 200, json={"backoff": None})["backoff"] is None

    flow = api("POST", "/v1/flows", 201, json={
        "source": "hook", "target": "hook", "name": "short form",
        "backoff": {"multiplier": 3}})
    assert api("GET", f"/v1/integrations/{flow['id']}", 200)["backoff"] == {
        "initialDelayMs": 1000, "maxDelayMs": 300_000, "multiplier": 3}
    assert api("POST", "/v1/integrations", 201, json={"name": "defaults"})["backoff"] is None


def test_a_users_pause_has_reason_user(api):
    integration = api("POST", "/v1/integrations", 201, json={"name": "paused by hand"})
    path = f"/v1/integrations/{integration['id']}"
    assert api("GET", f"{path}/status", 200)["pausedReason"] is None
    api("POST", f"{path}/pause", 200)
    status = api("GET", f"{path}/status", 200)
    assert status["status"] == "PAUSED"
    assert {k: v for k, v in status["pausedReason"].items() if k != "at"} == {
        "reason": "USER", "messageId": None, "code": None, "message": None}
    api("POST", f"{path}/resume", 200)
    assert api("GET", f"{path}/status", 200)["pausedReason"] is None
