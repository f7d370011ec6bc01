"""The monthly quota end to end on the real broker, worker and API: source messages over
the quota are parked (never dropped), HTTP ingest is refused with 429, and raising the
quota with `integrationos tenants plan` sends the parked messages through."""

from __future__ import annotations

import httpx
import pytest

from integrationos.cli.tenants import change_plan
from integrationos.settings import Settings
from tests.support import RecordingTarget, ingest, wait_for


@pytest.fixture
def platform_env(platform_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
                 ) -> dict[str, str]:
    """The worker looks for releasable messages every second instead of every minute."""
    platform_env["IOS_QUOTA_RELEASE_SECONDS"] = "1"
    monkeypatch.setenv("IOS_QUOTA_RELEASE_SECONDS", "1")
    return platform_env


def test_over_quota_source_messages_wait_parked_until_the_plan_allows(api_server, tenant):
    tenant_id, key = tenant
    settings = Settings.from_env()
    assert change_plan(settings, tenant_id, "pro",
                       {"messagesPerMonth": 3, "requestsPerMinute": 1_000_000})
    target = RecordingTarget()
    client = httpx.Client(base_url=api_server, timeout=30,
                          headers={"X-API-Key": key, "X-Tenant-Id": tenant_id})
    try:
        connector = client.post("/v1/connectors", json={
            "name": "out", "type": "HTTP", "config": {"url": target.url}}).json()
        integration_id = client.post("/v1/integrations", json={
            "name": "quota", "targetConnectorId": connector["id"], "expression": "$"},
        ).json()["id"]
        path = f"/v1/integrations/{integration_id}/status"

        def status(delivered: int, parked: int) -> bool:
            body = client.get(path).json()
            return (body["delivered"], body["parked"]) == (delivered, parked)

        ingest(settings, [b'{"n": %d}' % n for n in range(3)], integration_id, tenant_id)
        wait_for(lambda: status(3, 0), 60, "three delivered")
        wait_for(lambda: client.get("/v1/usage").json()["messages"]["used"] == 3, 30,
                 "the usage to count three")

        ingest(settings, [b'{"n": %d}' % n for n in range(3, 5)], integration_id, tenant_id)
        wait_for(lambda: status(3, 2), 60, "two parked over the quota")
        refused = client.post(f"/v1/integrations/{integration_id}/messages", json={"n": 9})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
        assert {r["body"]["n"] for r in target.received} == {0, 1, 2}

        assert change_plan(settings, tenant_id, "pro",
                           {"messagesPerMonth": 10, "requestsPerMinute": 1_000_000})
        wait_for(lambda: status(5, 0), 90, "the parked messages delivered after the change")
        assert {r["body"]["n"] for r in target.received} == {0, 1, 2, 3, 4}
        usage = client.get("/v1/usage").json()["messages"]
        assert (usage["used"], usage["limit"]) == (5, 10)
    finally:
        client.close()
        target.close()
