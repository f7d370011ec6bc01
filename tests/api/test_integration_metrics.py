"""``GET /v1/integrations/{id}/metrics``: counts, error rate and stage percentiles from the
projections, on SQLite and PostgreSQL; a bad window is a 400 in the error envelope."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from integrationos.settings import Settings
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import ACME, GLOBEX, assert_error

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def settings(settings: Settings, database_url: str) -> Settings:
    return dataclasses.replace(settings, database_url=database_url)


def _lifecycle(message_id: str, received_at: int, transform_ms: int | None,
               deliver_ms: int | None, dead: bool = False, failed: bool = False
               ) -> list[Event]:
    def event(type_: str, at: int, data: dict) -> Event:
        return Event(type_, "acme", message_id, {"messageId": message_id,
                                                 "integrationId": "int_m", **data},
                     occurred_at_ms=at, correlation_id=message_id)

    events = [event(t.MESSAGE_RECEIVED, received_at, {
        "key": None, "payloadJson": "{}", "source": "api", "contentType": "application/json"})]
    if transform_ms is not None:
        events.append(event(t.MESSAGE_TRANSFORMED, received_at + transform_ms, {
            "outputJson": "{}", "durationUs": 1}))
    if deliver_ms is not None:
        events.append(event(t.MESSAGE_DELIVERED, received_at + transform_ms + deliver_ms, {
            "attempt": 1, "target": "http", "detail": "HTTP 200"}))
    if failed or dead:
        events.append(event(t.MESSAGE_FAILED, received_at + 1, {
            "attempt": 1, "stage": "deliver", "errorClass": "PERMANENT", "code": "HTTP_400",
            "message": "bad"}))
    if dead:
        events.append(event(t.MESSAGE_DEAD_LETTERED, received_at + 2, {
            "stage": "deliver", "code": "HTTP_400", "message": "bad", "dlqTopic": "dlq"}))
    return events


def test_counts_error_rate_and_percentiles_by_stage(client, seed):
    seed.integration("acme", "int_m", "metered")
    now = int(time.time() * 1000)
    start = now - 10 * 60_000
    events = []
    for i in range(1, 21):  # delivered: received->transformed 10*i ms, ->delivered 100+i ms
        events += _lifecycle(f"msg_ok_{i}", start + i * 1000, 10 * i, 100 + i)
    events += _lifecycle("msg_dead_1", start, None, None, dead=True)
    events += _lifecycle("msg_dead_2", start, None, None, dead=True)
    events += _lifecycle("msg_failed", start, 5, None, failed=True)
    events += _lifecycle("msg_waiting", start, None, None)
    events += _lifecycle("msg_old", now - 2 * 3600_000, 1, 1)  # outside the hour
    seed.message_events(*events)

    response = client.get("/v1/integrations/int_m/metrics?window=1h", headers=ACME)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window"] == "1h"
    assert body["throughput"] | {"receivedPerMinute": None, "deliveredPerMinute": None} == {
        "received": 24, "delivered": 20, "deadLettered": 2, "failed": 1, "parked": 0,
        "inFlight": 1, "receivedPerMinute": None, "deliveredPerMinute": None}
    assert body["throughput"]["receivedPerMinute"] == pytest.approx(24 / 60, abs=1e-3)
    assert body["errorRate"] == pytest.approx(3 / 23, abs=1e-4)
    latency = body["latencyMs"]
    # nearest rank over 20 values 10, 20, ..., 200: p50 is the 10th, p95 the 19th, p99 the 20th
    assert latency["receivedToTransformed"] == {"count": 21, "p50": 100, "p95": 190, "p99": 200}
    assert latency["transformedToDelivered"] == {"count": 20, "p50": 110, "p95": 119,
                                                 "p99": 120}
    assert latency["endToEnd"] == {"count": 20, "p50": 210, "p95": 309, "p99": 320}
    assert body["sampledMessages"] == 24

    wider = client.get("/v1/integrations/int_m/metrics?window=3h", headers=ACME).json()
    assert wider["throughput"]["received"] == 25


def test_an_integration_without_traffic_has_empty_metrics(client, seed):
    seed.integration("acme", "int_quiet", "quiet")
    body = client.get("/v1/integrations/int_quiet/metrics", headers=ACME).json()
    assert body["window"] == "1h"
    assert body["throughput"]["received"] == 0
    assert body["errorRate"] is None
    assert body["latencyMs"]["endToEnd"] == {"count": 0, "p50": None, "p95": None, "p99": None}


@pytest.mark.parametrize("window", ["0m", "30s", "8d", "169h", "1w", "h", "-1h", "1.5h",
                                    "abc", ""])
def test_a_bad_window_is_a_400(client, seed, window):
    seed.integration("acme", "int_m", "metered")
    error = assert_error(client.get(f"/v1/integrations/int_m/metrics?window={window}",
                                    headers=ACME), 400, "INVALID_QUERY")
    assert error["details"][0]["field"] == "window"


@pytest.mark.parametrize("window", ["1m", "15m", "24h", "7d", "168h"])
def test_windows_up_to_seven_days(client, seed, window):
    seed.integration("acme", "int_m", "metered")
    assert client.get(f"/v1/integrations/int_m/metrics?window={window}",
                      headers=ACME).status_code == 200


def test_another_tenants_integration_is_not_found(client, seed):
    seed.integration("acme", "int_m", "metered")
    assert_error(client.get("/v1/integrations/int_m/metrics", headers=GLOBEX), 404,
                 "NOT_FOUND")
    assert json.loads(client.get("/v1/integrations/nope/metrics",
                                 headers=ACME).text)["error"]["code"] == "NOT_FOUND"
