"""Promotion end to end on the real broker, worker and API (uvicorn): a DEV integration
goes to QA and PROD with each stage's own target, the test-case gate stops a PROD
promotion and then lets it through, messages reach the PROD target, a bad version is
rolled back, and the history tells the whole story."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from integrationos.engine.catalog import FlowCatalog
from tests.support import RecordingTarget, wait_for

pytestmark = pytest.mark.broker

GOOD = '{"Email": $lowercase(email)}'
BAD = '{"Mail": email}'
# A worker sees a changed integration within its catalog's TTL (docs/ARCHITECTURE.md).
CONFIG_STALENESS_S = inspect.signature(FlowCatalog).parameters["ttl"].default + 0.5


@pytest.fixture
def client(api_server: str, tenant: tuple[str, str]) -> Iterator[httpx.Client]:
    tenant_id, key = tenant
    with httpx.Client(base_url=api_server, timeout=30,
                      headers={"X-API-Key": key, "X-Tenant-Id": tenant_id}) as http:
        yield http


@pytest.fixture
def targets() -> Iterator[dict[str, RecordingTarget]]:
    servers = {stage: RecordingTarget() for stage in ("DEV", "QA", "PROD")}
    yield servers
    for server in servers.values():
        server.close()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _delivered(client: httpx.Client, target: RecordingTarget, integration_id: str,
               payload: dict[str, Any]) -> Any:
    seen = len(target.received)
    ok(client.post(f"/v1/integrations/{integration_id}/messages", json=payload), 202)
    return wait_for(lambda: target.received[seen:] and target.received[seen]["body"], 60,
                    f"a delivery to the target of {integration_id}")


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_dev_to_qa_to_prod_with_the_gate_then_a_rollback(client, targets):
    connector = {stage: ok(client.post("/v1/connectors", json={
        "name": f"crm {stage}", "type": "HTTP", "config": {"url": targets[stage].url}}), 201)
        ["id"] for stage in targets}
    dev = ok(client.post("/v1/integrations", json={
        "name": "contacts", "environment": "DEV", "targetConnectorId": connector["DEV"],
        "expression": GOOD}), 201)
    assert _delivered(client, targets["DEV"], dev["id"], {"email": "A@EX.PT"}) == {
        "Email": "a@ex.pt"}

    to_qa = ok(client.post(f"/v1/integrations/{dev['id']}/promote", json={
        "from": "DEV", "to": "QA", "connectorBindings": {connector["DEV"]: "crm QA"}}), 201)
    qa_id = to_qa["target"]["integrationId"]
    assert _delivered(client, targets["QA"], qa_id, {"email": "B@EX.PT"}) == {
        "Email": "b@ex.pt"}

    keeps = ok(client.post(f"/v1/integrations/{dev['id']}/test-cases", json={
        "name": "keeps the email", "payload": {"email": "C@EX.PT"},
        "expected": {"Email": "c@ex.pt"}}), 201)
    failing = ok(client.post(f"/v1/integrations/{dev['id']}/test-cases", json={
        "name": "wants a name", "payload": {"email": "d@ex.pt"},
        "expected": {"Name": "D"}}), 201)
    prod_request = {"from": "QA", "to": "PROD",
                    "connectorBindings": {connector["QA"]: connector["PROD"]}}
    refused = client.post(f"/v1/integrations/{qa_id}/promote", json=prod_request)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "PROMOTION_GATE_FAILED"
    assert [r["status"] for r in refused.json()["error"]["details"]] == ["PASSED", "FAILED"]
    assert ok(client.get("/v1/integrations", params={"environment": "PROD"}))["data"] == []

    ok(client.delete(f"/v1/integrations/{dev['id']}/test-cases/{failing['id']}"), 204)
    to_prod = ok(client.post(f"/v1/integrations/{qa_id}/promote", json=prod_request), 201)
    assert to_prod["gate"]["status"] == "PASSED"
    prod_id = to_prod["target"]["integrationId"]
    assert _delivered(client, targets["PROD"], prod_id, {"email": "E@EX.PT"}) == {
        "Email": "e@ex.pt"}

    # Without test cases there is no gate: a bad change reaches PROD through QA, and PROD
    # rolls back to the version before it.
    ok(client.delete(f"/v1/integrations/{dev['id']}/test-cases/{keeps['id']}"), 204)
    ok(client.patch(f"/v1/integrations/{dev['id']}", json={"expression": BAD}))
    ok(client.post(f"/v1/integrations/{dev['id']}/promote", json={"from": "DEV", "to": "QA"}))
    second = ok(client.post(f"/v1/integrations/{dev['id']}/promote",
                            json={"from": "QA", "to": "PROD"}))
    assert second["target"] == {"integrationId": prod_id, "version": 2}
    time.sleep(CONFIG_STALENESS_S)
    assert _delivered(client, targets["PROD"], prod_id, {"email": "F@EX.PT"}) == {
        "Mail": "F@EX.PT"}

    rolled = ok(client.post(f"/v1/integrations/{prod_id}/rollback",
                            json={"reason": "Mail is not a field of the CRM"}))
    assert (rolled["version"], rolled["expression"]) == (3, GOOD)
    time.sleep(CONFIG_STALENESS_S)
    assert _delivered(client, targets["PROD"], prod_id, {"email": "G@EX.PT"}) == {
        "Email": "g@ex.pt"}

    history = ok(client.get(f"/v1/integrations/{prod_id}/history"))["data"]
    assert [(e["type"], e["version"]) for e in history] == [
        ("integration.promoted", 1), ("integration.promoted", 2),
        ("integration.rolled_back", 3)]
    assert history[0]["details"]["gate"]["status"] == "PASSED"
    assert history[1]["details"]["gate"] is None  # no test cases left: no gate
    assert history[2]["details"] == {"fromVersion": 2, "restoredVersion": 1,
                                     "reason": "Mail is not a field of the CRM"}
    assert all(e["by"].startswith("key_") for e in history)  # the API key id
    versions = ok(client.get(f"/v1/integrations/{prod_id}/versions"))["data"]
    assert [(v["origin"], v["targetConnectorId"]) for v in versions] == [
        ("PROMOTED", connector["PROD"]), ("PROMOTED", connector["PROD"]),
        ("ROLLED_BACK", connector["PROD"])]
