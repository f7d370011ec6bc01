"""Retries against a local API: connection errors, 429 (Retry-After, X-RateLimit-Reset),
5xx for idempotent calls only, and POSTs retried only when repeating them is harmless."""

from __future__ import annotations

import json
import socket
import time

import pytest
from starlette.responses import JSONResponse

from tests.sdk.fake_api import FakeApi, error

CONNECTOR = {"id": "con_1", "name": "c", "type": "HTTP", "config": {}, "version": 1}
ACCEPTED = JSONResponse({"messageId": "msg_1", "status": "ACCEPTED"}, status_code=202)
REPLAY = {"replayId": "rpl_1", "kind": "DLQ", "status": "RUNNING", "total": 1}


def test_a_refused_connection_is_retried_until_the_server_answers(sleeps):
    from integration_platform import IntegrationPlatform

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = FakeApi()
    api.port, api.url = port, f"http://127.0.0.1:{port}"
    api.queue("POST", "/v1/integrations/int_1/messages", ACCEPTED)

    def start_on_second_wait(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            api.start()

    sdk = IntegrationPlatform(api_key="k", tenant_id="acme", base_url=api.url,
                              sleep=start_on_second_wait)
    try:
        # Nothing was sent while refused, so even a POST without idempotency is retried.
        assert sdk.messages.send("int_1", {"a": 1}).message_id == "msg_1"
    finally:
        api.stop()
        sdk.close()
    assert len(sleeps) == 2 and all(0 <= s <= 1.0 for s in sleeps)  # 0.5, 1.0 with jitter
    assert len(api.seen) == 1


def test_connection_errors_give_up_after_max_retries(sleeps):
    from integration_platform import APIConnectionError, IntegrationPlatform

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sdk = IntegrationPlatform(api_key="k", tenant_id="acme", base_url=f"http://127.0.0.1:{port}",
                              sleep=sleeps, max_retries=2)
    with pytest.raises(APIConnectionError) as raised:
        sdk.connectors.get("con_1")
    assert len(sleeps) == 2 and raised.value.request_id.startswith("req_")


def test_429_waits_as_long_as_retry_after_says_even_for_a_post(fake, client, sleeps):
    fake.queue("POST", "/v1/integrations/int_1/messages",
               error(429, "RATE_LIMITED", headers={"Retry-After": "7"}), ACCEPTED)
    assert client.messages.send("int_1", {"a": 1}).status == "ACCEPTED"
    assert sleeps == [7.0]
    first, second = fake.requests_to("POST", "/v1/integrations/int_1/messages")
    assert first.body == second.body and json.loads(first.body) == {"a": 1}


def test_429_without_retry_after_waits_for_the_rate_limit_reset(fake, client, sleeps):
    reset = int(time.time()) + 3
    fake.queue("GET", "/v1/connectors/con_1",
               error(429, "RATE_LIMITED", headers={"X-RateLimit-Limit": "60",
                                                   "X-RateLimit-Remaining": "0",
                                                   "X-RateLimit-Reset": str(reset)}),
               JSONResponse(CONNECTOR))
    assert client.connectors.get("con_1").id == "con_1"
    assert len(sleeps) == 1 and 1.5 < sleeps[0] <= 3.0


def test_a_wait_longer_than_max_wait_raises_at_once_with_the_reset_time(fake, client, sleeps):
    from integration_platform import RateLimitError

    reset = int(time.time()) + 20 * 86400
    fake.queue("POST", "/v1/integrations/int_1/messages",
               error(429, "QUOTA_EXCEEDED", "the month's quota is used up",
                     [{"limit": 10, "used": 10, "requested": 1}],
                     headers={"Retry-After": str(20 * 86400), "X-RateLimit-Reset": str(reset),
                              "X-Request-Id": "req_quota"}))
    with pytest.raises(RateLimitError) as raised:
        client.messages.send("int_1", {"a": 1})
    assert sleeps == []
    assert raised.value.code == "QUOTA_EXCEEDED" and raised.value.request_id == "req_quota"
    assert raised.value.retry_after == 20 * 86400
    assert int(raised.value.reset_at.timestamp()) == reset


def test_5xx_on_a_get_is_retried_with_backoff_and_one_request_id(fake, client, sleeps):
    fake.queue("GET", "/v1/connectors/con_1", error(503, "PROJECTION_TIMEOUT"),
               error(502, "HTTP_502"), JSONResponse(CONNECTOR))
    assert client.connectors.get("con_1").name == "c"
    seen = fake.requests_to("GET", "/v1/connectors/con_1")
    assert len(seen) == 3 and len(sleeps) == 2
    assert sleeps[0] <= 0.5 and sleeps[1] <= 1.0  # full jitter under 0.5 * 2**attempt
    assert len({s.headers["x-request-id"] for s in seen}) == 1


def test_retry_after_on_a_503_is_honoured(fake, client, sleeps):
    fake.queue("DELETE", "/v1/connectors/con_1",
               error(503, "LOG_UNAVAILABLE", headers={"Retry-After": "1"}),
               JSONResponse(None, status_code=204))
    assert client.connectors.delete("con_1") is None
    assert sleeps == [1.0]


def test_5xx_on_a_post_that_has_effects_is_not_retried(fake, client, sleeps):
    from integration_platform import InternalServerError

    fake.queue("POST", "/v1/integrations/int_1/messages", error(503, "PROJECTION_TIMEOUT"))
    with pytest.raises(InternalServerError):
        client.messages.send("int_1", {"a": 1})
    assert sleeps == [] and len(fake.seen) == 1


def test_a_post_with_the_sdks_idempotency_key_is_retried_with_the_same_key(fake, client, sleeps):
    fake.queue("POST", "/v1/dlq/replay", error(503, "LOG_UNAVAILABLE"),
               JSONResponse(REPLAY, status_code=202))
    assert client.dlq.replay(["msg_1"]).replay_id == "rpl_1"
    first, second = fake.requests_to("POST", "/v1/dlq/replay")
    assert first.headers["idempotency-key"].startswith("sdk_")
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert len(sleeps) == 1


def test_side_effect_free_posts_are_retried(fake, client, sleeps):
    fake.queue("POST", "/v1/sandbox/execute", error(500, "INTERNAL"),
               JSONResponse({"status": "SUCCESS", "durationMs": 1, "outputPayload": {}}))
    assert client.sandbox.execute("int_1", {}).status == "SUCCESS"
    assert len(sleeps) == 1


def test_every_retry_used_up_raises_the_last_error(fake, client, sleeps):
    from integration_platform import InternalServerError

    fake.queue("GET", "/v1/usage", *[error(500, "INTERNAL") for _ in range(4)])
    with pytest.raises(InternalServerError) as raised:
        client.usage.get()
    assert raised.value.status_code == 500 and len(fake.seen) == 4 and len(sleeps) == 3


def test_a_read_timeout_is_retried_for_a_get_but_not_for_a_post(fake, sleeps):
    from integration_platform import APIConnectionError, IntegrationPlatform

    fake.delay = 0.5
    fake.queue("GET", "/v1/usage", JSONResponse({}), JSONResponse({}))
    fake.queue("POST", "/v1/integrations/int_1/messages", ACCEPTED)
    with IntegrationPlatform(api_key="k", tenant_id="acme", base_url=fake.url, sleep=sleeps,
                             timeout=0.2, max_retries=1) as sdk:
        with pytest.raises(APIConnectionError):
            sdk.usage.get()
        assert len(fake.requests_to("GET", "/v1/usage")) == 2
        with pytest.raises(APIConnectionError):
            sdk.messages.send("int_1", {})  # it may have arrived: sending again could double it
        assert len(fake.requests_to("POST", "/v1/integrations/int_1/messages")) == 1
