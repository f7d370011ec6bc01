"""Replays end to end on the real broker, worker and API: a DLQ round trip after a fixed
transformation (through the CLI and its progress bar), a message replayed twice delivered
once, an edited payload, and a stream replay after a bug fix."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import RecordingTarget, wait_for

CONTACT = {"type": "object", "required": ["Email"], "properties": {"Email": {"type": "string"}}}


@pytest.fixture
def client(api_server: str, tenant: tuple[str, str]) -> httpx.Client:
    tenant_id, key = tenant
    with httpx.Client(base_url=api_server, timeout=30,
                      headers={"X-API-Key": key, "X-Tenant-Id": tenant_id}) as http:
        yield http


@pytest.fixture
def target() -> RecordingTarget:
    recording = RecordingTarget()
    yield recording
    recording.close()


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def _integration(client: httpx.Client, target: RecordingTarget, name: str,
                 **fields: Any) -> str:
    connector = _created(client.post("/v1/connectors", json={
        "name": f"{name} target", "type": "HTTP", "config": {"url": target.url}}))
    return _created(client.post("/v1/integrations", json={
        "name": name, "environment": "DEV", "targetConnectorId": connector["id"],
        "errorStrategy": "RETRY_3_DLQ", **fields}))["id"]


def _send(client: httpx.Client, integration_id: str, payloads: list[Any]) -> list[str]:
    return [_created(client.post(f"/v1/integrations/{integration_id}/messages", json=p))
            ["messageId"] for p in payloads]


def _dead_lettered(client: httpx.Client, integration_id: str, count: int) -> list[dict]:
    def listed() -> list[dict]:
        entries = client.get("/v1/dlq", params={"integrationId": integration_id,
                                               "limit": 200}).json()["data"]
        return entries if len(entries) == count else []
    return wait_for(listed, 90, f"{count} dead-lettered messages of {integration_id}")


def _settled(client: httpx.Client, replay_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        replay = client.get(f"/v1/dlq/replays/{replay_id}").json()
        finished = replay["status"] == "COMPLETED" and replay["outcome"]["inFlight"] == 0
        return replay if finished else None
    return wait_for(done, 120, f"replay {replay_id} to settle")


def test_a_fixed_transformation_gets_100_dead_letters_through_once(
        client: httpx.Client, target: RecordingTarget, api_server: str,
        tenant: tuple[str, str]) -> None:
    buggy = _created(client.post("/v1/transformations", json={
        "name": "contact", "targetSchema": CONTACT,
        "expression": '{"Email": $.mail}'}))  # the bug: the field is "email"
    integration_id = _integration(client, target, "contacts", transformationId=buggy["id"])
    other_id = _integration(client, target, "other contacts", transformationId=buggy["id"])
    sent = _send(client, integration_id, [{"email": f"c{n}@ex.pt"} for n in range(100)])
    others = _send(client, other_id, [{"email": f"o{n}@ex.pt"} for n in range(5)])
    entries = _dead_lettered(client, integration_id, 100)
    assert {e["code"] for e in entries} == {"TARGET_SCHEMA_VIOLATION"}
    _dead_lettered(client, other_id, 5)
    assert target.received == []

    _created(client.patch(f"/v1/transformations/{buggy['id']}",
                          json={"expression": '{"Email": $.email}'}))
    _created(client.patch(f"/v1/integrations/{integration_id}",
                          json={"transformationId": buggy["id"]}))  # now runs version 2

    tenant_id, key = tenant
    replay = subprocess.run(
        [sys.executable, "-m", "integrationos.cli.main", "dlq", "replay",
         "--integration", integration_id, "--code", "TARGET_SCHEMA_VIOLATION",
         "--api-url", api_server],
        env={**os.environ, "IOS_API_KEY": key, "IOS_TENANT_ID": tenant_id},
        capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr
    print(f"\n[DLQ round trip] {replay.stdout.strip()}")
    assert "100 sent, 0 skipped; 100 delivered, 0 dead-lettered again" in replay.stdout
    assert "[" + "#" * 30 + "]" in replay.stderr  # the progress bar, full at the end

    keys = [r["idempotency_key"] for r in target.received]
    assert sorted(keys) == sorted(sent)  # every one, each once, under its original id
    assert {r["body"]["Email"] for r in target.received} == {f"c{n}@ex.pt" for n in range(100)}
    status = client.get(f"/v1/integrations/{integration_id}/status").json()
    assert (status["delivered"], status["deadLettered"], status["total"]) == (100, 0, 100)
    left = client.get("/v1/dlq", params={"limit": 200}).json()["data"]
    assert sorted(e["messageId"] for e in left) == sorted(others)  # not selected, still there

    again = client.post("/v1/dlq/replay", json={"filter": {"integrationId": integration_id}})
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "NOTHING_TO_REPLAY"


def test_a_message_replayed_twice_is_delivered_once_with_its_edited_payload(
        client: httpx.Client, target: RecordingTarget) -> None:
    integration_id = _integration(
        client, target, "needs email", errorStrategy="DLQ",
        expression='$exists(email) ? {"Email": email} : $error("no email")')
    first, second = _send(client, integration_id, [{"name": "Ana"}, {"name": "Rui"}])
    _dead_lettered(client, integration_id, 2)

    edited = {"messageIds": [first], "payload": {"email": "ana@ex.pt"}}
    one = _created(client.post("/v1/dlq/replay", json=edited))
    two = _created(client.post("/v1/dlq/replay", json=edited))
    assert one["replayId"] != two["replayId"]
    one, two = _settled(client, one["replayId"]), _settled(client, two["replayId"])
    assert (one["sent"], one["skipped"], two["sent"], two["skipped"]) == (1, 0, 0, 1)
    assert one["outcome"]["delivered"] == 1
    assert [(r["idempotency_key"], r["body"]) for r in target.received] == [
        (first, {"Email": "ana@ex.pt"})]
    message = client.get(f"/v1/messages/{first}").json()
    assert message["status"] == "DELIVERED"
    assert message["payload"] == {"email": "ana@ex.pt"}

    retried = {"Idempotency-Key": "fix-rui-1"}
    body = {"messageIds": [second], "payload": {"email": "rui@ex.pt"}}
    accepted = client.post("/v1/dlq/replay", json=body, headers=retried)
    repeated = client.post("/v1/dlq/replay", json=body, headers=retried)
    assert (accepted.status_code, repeated.status_code) == (202, 200)
    assert accepted.json()["replayId"] == repeated.json()["replayId"]
    assert _settled(client, accepted.json()["replayId"])["outcome"]["delivered"] == 1
    assert sorted(r["idempotency_key"] for r in target.received) == sorted([first, second])


def test_a_stream_replay_reprocesses_what_an_integration_received(
        client: httpx.Client, target: RecordingTarget) -> None:
    integration_id = _integration(client, target, "stream", expression='{"Email": email}')
    quiet = _integration(client, RecordingTarget(), "not replayed", expression='{"E": email}')
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    sent = _send(client, integration_id, [{"email": f"s{n}@ex.pt"} for n in range(10)])
    _send(client, quiet, [{"email": "q@ex.pt"}])
    wait_for(lambda: len(target.received) == 10, 60, "the first ten deliveries")

    _created(client.patch(f"/v1/integrations/{integration_id}",
                          json={"expression": '{"Email": email, "Fixed": true}'}))
    by_time = _created(client.post(f"/v1/integrations/{integration_id}/replay",
                                   json={"from": since}))
    replay = _settled(client, by_time["replayId"])
    assert (replay["kind"], replay["total"], replay["sent"]) == ("STREAM", 10, 10)
    assert replay["outcome"]["delivered"] == 10
    again = target.received[10:]
    assert sorted(r["idempotency_key"] for r in again) == sorted(sent)  # same keys: targets
    assert all(r["body"]["Fixed"] is True for r in again)               # can suppress them

    by_offset = _created(client.post(f"/v1/integrations/{integration_id}/replay",
                                     json={"from": {"offsets": {"0": 0}}}))
    assert _settled(client, by_offset["replayId"])["total"] == 10


def test_resuming_a_fail_fast_integration_delivers_what_it_parked(
        client: httpx.Client, target: RecordingTarget) -> None:
    target.status = 400
    integration_id = _integration(client, target, "fail fast", errorStrategy="FAIL_FAST",
                                  expression='{"Email": email}')
    accepted = []
    for n in range(8):  # once the pause is applied, HTTP ingest refuses with 409
        response = client.post(f"/v1/integrations/{integration_id}/messages",
                               json={"email": f"p{n}@ex.pt"})
        assert response.status_code in (202, 409), response.text
        if response.status_code == 202:
            accepted.append(response.json()["messageId"])

    def parked() -> dict | None:
        status = client.get(f"/v1/integrations/{integration_id}/status").json()
        return status if status["parked"] == len(accepted) else None
    status = wait_for(parked, 60, "every accepted message parked")
    assert status["status"] == "PAUSED" and status["pausedReason"]["reason"] == "FAIL_FAST"
    assert status["deadLettered"] == 0

    target.status = 200  # the target is fixed
    assert client.post(f"/v1/integrations/{integration_id}/resume").status_code == 200
    wait_for(lambda: client.get(f"/v1/integrations/{integration_id}/status").json()
             ["delivered"] == len(accepted), 90, "the parked messages delivered")
    delivered = [r["idempotency_key"] for r in target.received if r["status"] == 200]
    assert sorted(delivered) == sorted(accepted)  # each once, under its own id
    final = client.get(f"/v1/integrations/{integration_id}/status").json()
    assert (final["parked"], final["total"]) == (0, len(accepted))
