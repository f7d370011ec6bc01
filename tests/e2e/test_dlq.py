"""The dead-letter queue end to end on the real broker, worker and API: messages a target
refuses for good are listed with their reasons, discarded, and leave the list and the
integration's dead-letter depth."""

from __future__ import annotations

import httpx

from tests.support import RecordingTarget, wait_for


def test_permanent_failures_are_listed_then_discarded(api_server, tenant):
    tenant_id, key = tenant
    target = RecordingTarget(status=400)
    client = httpx.Client(base_url=api_server, timeout=30,
                          headers={"X-API-Key": key, "X-Tenant-Id": tenant_id})
    try:
        connector = client.post("/v1/connectors", json={
            "name": "refuses", "type": "HTTP", "config": {"url": target.url}}).json()
        integration = client.post("/v1/integrations", json={
            "name": "to the DLQ", "environment": "DEV", "targetConnectorId": connector["id"],
            "expression": '{"Email": $.email}', "errorStrategy": "RETRY_3_DLQ"}).json()
        integration_id = integration["id"]
        sent = [client.post(f"/v1/integrations/{integration_id}/messages",
                            json={"email": f"{n}@ex.pt"}).json()["messageId"]
                for n in range(3)]

        def listed() -> list[dict]:
            entries = client.get(f"/v1/dlq?integrationId={integration_id}").json()["data"]
            return entries if len(entries) == len(sent) else []

        entries = wait_for(listed, 60, "three dead-lettered messages")
        assert sorted(e["messageId"] for e in entries) == sorted(sent)
        assert {(e["stage"], e["code"]) for e in entries} == {("deliver", "HTTP_400")}

        detail = client.get(f"/v1/dlq/{sent[0]}").json()
        assert detail["payload"] == {"email": "0@ex.pt"}
        assert detail["output"] == {"Email": "0@ex.pt"}
        assert [a["code"] for a in detail["attempts"]] == ["HTTP_400"] * len(detail["attempts"])
        assert detail["attempts"] and detail["deadLetter"]["code"] == "HTTP_400"

        response = client.post("/v1/dlq/discard",
                               json={"messageIds": sent[:2], "reason": "bad addresses"})
        assert response.status_code == 200, response.text
        # answered once projected: the next read sees it
        remaining = client.get(f"/v1/dlq?integrationId={integration_id}").json()["data"]
        assert [e["messageId"] for e in remaining] == [sent[2]]
        status = client.get(f"/v1/integrations/{integration_id}/status").json()
        assert (status["deadLettered"], status["discarded"]) == (1, 2)
        assert client.get(f"/v1/dlq/{sent[0]}").json()["discarded"]["reason"] == "bad addresses"
    finally:
        client.close()
        target.close()
