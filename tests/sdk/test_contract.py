"""The SDK against the live platform (real broker, worker and API): pages with the API's
own cursors, errors with the platform's request id, NDJSON streaming, a webhook signed by
the SDK and checked by the platform, and the async client on the dead-letter queue."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.support import RecordingTarget, wait_for

SECRET = "webhook-secret-0123456789"


def test_the_sdk_surface_on_the_live_platform(api_server, tenant):
    from integration_platform import (
        AuthenticationError,
        ConflictError,
        IntegrationPlatform,
        NotFoundError,
        ValidationError,
        webhooks,
    )

    tenant_id, key = tenant
    good, bad = RecordingTarget(), RecordingTarget(status=400)
    client = IntegrationPlatform(api_key=key, tenant_id=tenant_id, base_url=api_server)
    try:
        hooks = client.connectors.create(name="hooks", type="HTTP",
                                         credentials={"webhookSecret": SECRET})
        ok = client.connectors.create(name="ok", type="HTTP", config={"url": good.url})
        failing = client.connectors.create(name="failing", type="http",
                                           config={"url": bad.url})

        pages = list(client.connectors.list(type="HTTP", limit=1).pages())
        assert [len(p.items) for p in pages] == [1, 1, 1] and pages[-1].next_cursor is None
        assert [c.name for c in client.connectors.list(limit=2)] == ["hooks", "ok", "failing"]

        with pytest.raises(NotFoundError) as missing:
            client.connectors.get("con_" + "0" * 24)
        assert missing.value.request_id.startswith("req_")  # the platform's X-Request-Id
        with pytest.raises(ValidationError) as invalid:
            client.connectors.create(name="", type="HTTP", config={"url": 3})
        assert {d["field"] for d in invalid.value.details} >= {"/name"}
        with pytest.raises(ConflictError) as taken:
            client.connectors.create(name="ok", type="HTTP", config={"url": good.url})
        assert taken.value.code == "CONFLICT"
        with pytest.raises(AuthenticationError):
            IntegrationPlatform(api_key="ip_live_wrong", tenant_id=tenant_id,
                                base_url=api_server).usage.get()

        preview = client.transformations.preview('{"n": $.n * 2}', {"n": 21})
        assert preview.result == {"n": 42} and preview.errors == []
        double = client.transformations.create(name="double", expression='{"n": $.n * 2}')
        flow = client.flows.create(source="hooks", target="ok", transformation_id=double.id)
        assert (flow.source_connector_id, flow.target_connector_id) == (hooks.id, ok.id)

        streamed = client.messages.send_stream(flow.id, ({"n": i} for i in range(600)),
                                               chunk_records=250)
        assert (streamed.count, streamed.requests) == (600, 3)
        assert len(set(streamed.message_ids)) == 600

        body = json.dumps({"n": 1000}).encode()
        signed = httpx.post(f"{api_server}/v1/webhooks/{flow.id}", content=body,
                            headers={**webhooks.sign(SECRET, body),
                                     "Content-Type": "application/json"})
        assert signed.status_code == 202, signed.text

        wait_for(lambda: client.integrations.status(flow.id).delivered == 601, 120,
                 "601 deliveries")
        assert sorted(r["body"]["n"] for r in good.received) == [
            *range(0, 1200, 2), 2000]
        assert client.messages.get(streamed.message_ids[0]).status == "DELIVERED"
        history = [entry.type for entry in client.integrations.history(flow.id)]
        assert history[0] == "integration.created"

        dead = client.integrations.create("to the DLQ", source_connector_id="hooks",
                                          target_connector_id=failing.id,
                                          error_strategy="DLQ")
        asyncio.run(_dead_letters(api_server, tenant_id, key, dead.id))
        assert client.usage.get().messages["used"] >= 603
        # The generic call, for any route (those the SDK does not wrap, newer ones).
        assert client.request("GET", "/v1/schemas", params={"limit": 5})["data"] == []
        assert client.request("PUT", "/v1/environments/DEV/variables/region",
                              json={"value": "eu"})["value"] == "eu"
    finally:
        client.close()
        good.close()
        bad.close()


async def _dead_letters(base: str, tenant_id: str, key: str, integration_id: str) -> None:
    from integration_platform import AsyncIntegrationPlatform

    async with AsyncIntegrationPlatform(api_key=key, tenant_id=tenant_id,
                                        base_url=base) as sdk:
        sent = [await sdk.messages.send(integration_id, {"n": n}) for n in range(3)]

        async def entries() -> list:
            return [e async for e in sdk.dlq.iter(integration_id=integration_id, limit=2)]

        for _ in range(300):
            found = await entries()
            if len(found) == 3:
                break
            await asyncio.sleep(0.2)
        assert sorted(e.message_id for e in found) == sorted(s.message_id for s in sent)
        assert {e.code for e in found} == {"HTTP_400"}
        detail = await sdk.dlq.get(found[0].message_id)
        assert detail.message_id == found[0].message_id
        first = await sdk.dlq.replay([found[0].message_id], idempotency_key="replay-once")
        again = await sdk.dlq.replay([found[0].message_id], idempotency_key="replay-once")
        assert first.replay_id == again.replay_id  # the API honours the Idempotency-Key
        for _ in range(300):
            progress = await sdk.dlq.replay_status(first.replay_id)
            if progress.status == "COMPLETED":
                break
            await asyncio.sleep(0.2)
        assert (progress.status, progress.total, progress.sent) == ("COMPLETED", 1, 1)
