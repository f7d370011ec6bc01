"""Signed webhooks: ``POST /v1/webhooks/{integrationId}`` takes no API key, only a valid
HMAC signature made with the integration's source ``webhookSecret``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest

from tests.api.conftest import assert_error
from tests.support import RecordingTarget, wait_for

SECRET = "whsec-0123456789abcdef"
BODY = json.dumps({"nome_completo": "Ana Lima", "email": "ana@example.com"}).encode()


def signed(body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    """The headers a sender computes, written out independently of the server's code."""
    timestamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {"X-Timestamp": timestamp, "X-Signature": f"sha256={digest.hexdigest()}",
            "Content-Type": "application/json"}


@pytest.fixture
def hooks(seed):
    seed.connector("acme", "con_in", "inbound", "HTTP", {}, {"webhookSecret": SECRET})
    seed.connector("acme", "con_plain", "plain inbound", "HTTP", {}, {})
    seed.integration("acme", "int_hook", "hooked", sourceConnectorId="con_in")
    seed.integration("acme", "int_nosecret", "unsigned", sourceConnectorId="con_plain")
    return seed


def test_a_valid_signature_without_api_key_reaches_ingest(client, hooks):
    # the API's log producer points at a closed port: reaching it proves auth passed
    response = client.post("/v1/webhooks/int_hook", content=BODY, headers=signed(BODY))
    assert_error(response, 503, "LOG_UNAVAILABLE")


@pytest.mark.parametrize("headers", [
    lambda: {},
    lambda: {"X-Timestamp": str(int(time.time()))},
    lambda: signed(BODY, secret="another-secret-0123456"),
    lambda: signed(BODY, at=time.time() - 360),
    lambda: signed(BODY, at=time.time() + 360),
    lambda: signed(b'{"other": "body"}'),
    lambda: {**signed(BODY), "X-Timestamp": str(int(time.time()) - 1)},
    lambda: {**signed(BODY), "X-Timestamp": "9" * 5000},  # beyond int()'s 4300 digits
    lambda: {**signed(BODY), "X-Signature": signed(BODY)["X-Signature"].upper()},
], ids=["missing", "no-signature", "wrong-secret", "expired", "future", "other-body",
        "other-timestamp", "huge-timestamp", "upper-hex"])
def test_a_missing_wrong_or_stale_signature_is_401(client, hooks, headers):
    # Signed when the test runs, not when it is collected: a run slower than the window
    # must not turn the "future" signature valid.
    response = client.post("/v1/webhooks/int_hook", content=BODY, headers=headers())
    error = assert_error(response, 401, "INVALID_SIGNATURE")
    assert SECRET not in json.dumps(error)


def test_unknown_integrations_and_those_without_a_secret_are_404(client, hooks):
    for integration in ("int_nope", "int_nosecret"):
        response = client.post(f"/v1/webhooks/{integration}", content=BODY,
                               headers=signed(BODY))
        assert_error(response, 404, "NOT_FOUND")


def test_a_paused_integration_refuses_signed_webhooks(client, hooks):
    from integrationos.topics import event_types as t
    from integrationos.topics.envelope import Event

    hooks.apply(Event(t.INTEGRATION_PAUSED, "acme", "int_hook", {"id": "int_hook"}))
    response = client.post("/v1/webhooks/int_hook", content=BODY, headers=signed(BODY))
    assert_error(response, 409, "INTEGRATION_PAUSED")


def test_signed_webhooks_flow_through_the_pipeline(api_server, tenant):
    """Real API, broker and worker: a signed POST ends at the integration's target."""
    tenant_id, key = tenant
    target = RecordingTarget()
    try:
        with httpx.Client(base_url=api_server, timeout=30,
                          headers={"X-API-Key": key, "X-Tenant-Id": tenant_id}) as client:
            for name, config, credentials in [("crm-hook", {}, {"webhookSecret": SECRET}),
                                              ("sink", {"url": target.url}, {})]:
                created = client.post("/v1/connectors", json={
                    "name": name, "type": "HTTP", "config": config, "credentials": credentials})
                assert created.status_code == 201, created.text
            integration = client.post("/v1/integrations", json={
                "name": "from webhook", "sourceConnectorId": "crm-hook",
                "targetConnectorId": "sink", "expression": '{"Email": email}'}).json()
        url = f"{api_server}/v1/webhooks/{integration['id']}"
        accepted = httpx.post(url, content=BODY, headers=signed(BODY), timeout=30)
        assert accepted.status_code == 202, accepted.text
        assert httpx.post(url, content=BODY, headers={**signed(BODY), "X-Signature": "sha256=0"},
                          timeout=30).status_code == 401
        wait_for(lambda: target.received, 60, "the webhook's message at the target")
        time.sleep(0.5)  # a second (refused) message would have arrived by now
        assert [r["body"] for r in target.received] == [{"Email": "ana@example.com"}]
    finally:
        target.close()
