"""A message's lineage with tracing off, end to end on the real broker, worker and API: the
client's W3C trace context is carried from the HTTP request through the ingest topic onto
every event, the dead letter, the lineage and the worker's JSON log lines, and the lineage
tells the story in order."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import RecordingTarget, WorkerProcess, wait_for

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{CLIENT_TRACE}-b7ad6b7169203331-01"


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker (started after this) writes JSON lines."""
    monkeypatch.setenv("IOS_LOG_FORMAT", "json")


def test_a_dead_lettered_message_keeps_the_clients_trace(json_logs, api_server, tenant,
                                                         worker: WorkerProcess):
    tenant_id, key = tenant
    target = RecordingTarget(status=503)
    client = httpx.Client(base_url=api_server, timeout=30,
                          headers={"X-API-Key": key, "X-Tenant-Id": tenant_id})
    try:
        connector = client.post("/v1/connectors", json={
            "name": "refuses", "type": "HTTP", "config": {"url": target.url}}).json()
        integration = client.post("/v1/integrations", json={
            "name": "traced", "environment": "DEV", "targetConnectorId": connector["id"],
            "expression": '{"Email": $.email}', "errorStrategy": "RETRY_2_DLQ",
            "backoff": {"initialDelayMs": 100}}).json()
        sent = client.post(f"/v1/integrations/{integration['id']}/messages",
                           json={"email": "a@ex.pt"}, headers={"traceparent": TRACEPARENT})
        message_id = sent.json()["messageId"]

        def dead_lettered() -> dict | None:
            found = client.get(f"/v1/messages/{message_id}/trace")
            if found.status_code != 200 or found.json()["status"] != "DEAD_LETTERED":
                return None
            return found.json()

        lineage = wait_for(dead_lettered, 60, "the message to be dead-lettered")
        assert lineage["traceId"] == CLIENT_TRACE and lineage["traceIds"] == [CLIENT_TRACE]
        events = lineage["events"]
        assert [e["type"] for e in events] == [
            "message.received", "message.transformed", "message.failed",
            "message.transformed", "message.failed", "message.dead_lettered"]
        assert {e["traceId"] for e in events} == {CLIENT_TRACE}
        assert events[0]["detail"]["source"] == "http"
        assert events[1]["detail"]["output"] == {"Email": "a@ex.pt"}
        assert [e["detail"]["attempt"] for e in events if e["type"] == "message.failed"] == [1, 2]
        assert events[2]["detail"]["error"]["code"] == "HTTP_503"
        assert events[2]["detail"]["errorClass"] == "RETRYABLE"
        assert events[5]["detail"]["stage"] == "deliver"
        assert events[5]["detail"]["dlqTopic"].endswith(".dlq.v1")
        assert client.get(f"/v1/dlq/{message_id}").json()["traceparent"] == TRACEPARENT

        lines = [json.loads(line) for line in worker.log().splitlines() if line.strip()]
        retry = next(line for line in lines if "attempt 1 failed" in line["message"])
        assert retry["trace_id"] == CLIENT_TRACE and retry["message_id"] == message_id
        assert "span_id" not in retry  # no span of ours: tracing is off

        missing = client.get("/v1/messages/msg_nothing/trace")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "NOT_FOUND"
    finally:
        client.close()
        target.close()
