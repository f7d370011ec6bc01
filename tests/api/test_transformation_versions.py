"""Transformations are versioned and an integration pins one (real API, broker and worker)."""

from __future__ import annotations

import httpx


def _client(base: str, tenant: tuple[str, str]) -> httpx.Client:
    tenant_id, key = tenant
    return httpx.Client(base_url=base, timeout=30,
                        headers={"X-API-Key": key, "X-Tenant-Id": tenant_id})


def test_an_integration_runs_its_pinned_version_until_moved(api_server, tenant):
    with _client(api_server, tenant) as client:
        trf = client.post("/v1/transformations", json={
            "name": "contact", "expression": '{"v": 1, "email": email}',
            "targetSchema": {"type": "object", "required": ["email"]},
        }).json()
        assert trf["version"] == 1 and trf["targetSchema"] == {"type": "object",
                                                               "required": ["email"]}
        integration = client.post("/v1/integrations", json={
            "name": "pinned", "transformationId": trf["id"]}).json()
        assert integration["transformationVersion"] == 1

        updated = client.patch(f"/v1/transformations/{trf['id']}",
                               json={"expression": '{"v": 2, "email": email}'}).json()
        assert updated["version"] == 2

        def sandbox() -> dict:
            response = client.post("/v1/sandbox/execute", json={
                "integrationId": integration["id"], "payload": {"email": "a@b"}})
            assert response.status_code == 200, response.text
            return response.json()["outputPayload"]

        assert sandbox() == {"v": 1, "email": "a@b"}
        versions = client.get(f"/v1/transformations/{trf['id']}/versions").json()["data"]
        assert [v["version"] for v in versions] == [1, 2]
        assert client.get(f"/v1/transformations/{trf['id']}/versions/1").json()[
            "expression"] == '{"v": 1, "email": email}'
        assert client.get(f"/v1/transformations/{trf['id']}/versions/9").status_code == 404

        moved = client.patch(f"/v1/integrations/{integration['id']}",
                             json={"transformationVersion": 2})
        assert moved.status_code == 200 and moved.json()["transformationVersion"] == 2
        assert sandbox() == {"v": 2, "email": "a@b"}

        bad = client.patch(f"/v1/integrations/{integration['id']}",
                           json={"transformationVersion": 7})
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["field"] == "/transformationVersion"
