"""Alert rules and alerts, a message's trace and an integration's metrics against a local
API: the requests the SDK sends (camelCase bodies and filters, the cursor passed back), the
typed models it builds (the once-shown webhook secret, ``from`` as ``from_``, unknown
fields in ``extra``) and which of the new calls are retried."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.responses import JSONResponse, Response

from tests.sdk.fake_api import error

RULE = {"id": "rul_1", "name": "orders DLQ", "severity": "critical", "enabled": True,
        "condition": {"type": "DLQ_DEPTH", "integrationId": "int_1", "threshold": 0},
        "channels": [{"type": "webhook", "url": "https://hooks.example/ios"}],
        "repeatIntervalSeconds": 600, "version": 1,
        "createdAt": "2026-12-05T01:00:00.000Z", "updatedAt": "2026-12-05T01:00:00.000Z"}
ALERT = {"id": "alt_1", "ruleId": "rul_1", "ruleName": "orders DLQ", "severity": "critical",
         "state": "FIRING", "conditionType": "DLQ_DEPTH", "integrationId": "int_1",
         "connectorId": None, "value": 1.0, "threshold": 0.0,
         "summary": "1 dead-lettered message(s) waiting", "resolvedSummary": None,
         "firedAt": "2026-12-05T01:00:30.000Z", "resolvedAt": None,
         "lastNotifiedAt": "2026-12-05T01:00:31.000Z"}


def test_creating_a_rule_sends_camel_case_and_shows_the_secret_once(fake, client):
    fake.queue("POST", "/v1/alerts/rules",
               JSONResponse(RULE | {"webhookSecret": "whsec_abc"}, status_code=201))
    fake.queue("GET", "/v1/alerts/rules/rul_1", JSONResponse(RULE))
    rule = client.alerts.rules.create(
        "orders DLQ", {"type": "DLQ_DEPTH", "integrationId": "int_1", "threshold": 0},
        severity="critical", channels=RULE["channels"], repeat_interval_seconds=600)
    assert json.loads(fake.seen[0].body) == {
        "name": "orders DLQ", "severity": "critical", "condition": RULE["condition"],
        "channels": RULE["channels"], "repeatIntervalSeconds": 600}
    assert (rule.id, rule.repeat_interval_seconds, rule.condition["threshold"]) == (
        "rul_1", 600, 0)
    assert rule.webhook_secret == "whsec_abc" and rule.extra == {}
    assert "whsec_abc" not in repr(rule)  # a logged rule does not leak the key
    again = client.alerts.rules.get("rul_1")
    assert again.webhook_secret is None and again.created_at == RULE["createdAt"]


def test_rule_update_sends_only_the_given_fields_and_delete_returns_nothing(fake, client):
    fake.queue("PATCH", "/v1/alerts/rules/rul_1",
               JSONResponse(RULE | {"enabled": False, "version": 2}))
    fake.queue("DELETE", "/v1/alerts/rules/rul_1", Response(status_code=204))
    rule = client.alerts.rules.update("rul_1", enabled=False, repeat_interval_seconds=60)
    assert json.loads(fake.seen[0].body) == {"enabled": False, "repeatIntervalSeconds": 60}
    assert (rule.enabled, rule.version) == (False, 2)
    assert client.alerts.rules.delete("rul_1") is None


def test_only_the_safe_rule_calls_are_retried_on_a_5xx(fake, client, sleeps):
    from integration_platform import InternalServerError

    fake.queue("POST", "/v1/alerts/rules", error(503, "UNAVAILABLE"),
               JSONResponse(RULE, status_code=201))
    with pytest.raises(InternalServerError):  # a retry could create a second rule
        client.alerts.rules.create("orders DLQ", RULE["condition"])
    fake.queue("PATCH", "/v1/alerts/rules/rul_1", error(502, "BAD_GATEWAY"))
    with pytest.raises(InternalServerError):
        client.alerts.rules.update("rul_1", name="renamed")
    assert sleeps == []
    fake.queue("DELETE", "/v1/alerts/rules/rul_1", error(503, "UNAVAILABLE"),
               Response(status_code=204))
    fake.queue("GET", "/v1/alerts/alt_1", error(500, "INTERNAL"), JSONResponse(ALERT))
    client.alerts.rules.delete("rul_1")
    assert client.alerts.get("alt_1").id == "alt_1"
    assert len(sleeps) == 2
    assert len(fake.requests_to("POST", "/v1/alerts/rules")) == 1


def test_alerts_and_rules_are_listed_lazily_with_the_filters(fake, client):
    fake.queue("GET", "/v1/alerts", JSONResponse({"data": [ALERT], "nextCursor": "c/1=="}),
               JSONResponse({"data": [ALERT | {"id": "alt_2", "state": "RESOLVED",
                                               "resolvedAt": "2026-12-05T01:05:00.000Z",
                                               "snoozedUntil": None}],
                             "nextCursor": None}))
    pager = client.alerts.list(state="FIRING", rule_id="rul_1", integration_id="int_1",
                               limit=1)
    assert fake.seen == []
    alerts = list(pager)
    assert [(a.id, a.state, a.rule_name) for a in alerts] == [
        ("alt_1", "FIRING", "orders DLQ"), ("alt_2", "RESOLVED", "orders DLQ")]
    assert alerts[0].value == 1.0 and alerts[0].notifications == []
    assert alerts[1].extra == {"snoozedUntil": None}
    assert [s.query for s in fake.seen] == [
        {"state": "FIRING", "ruleId": "rul_1", "integrationId": "int_1", "limit": "1"},
        {"state": "FIRING", "ruleId": "rul_1", "integrationId": "int_1", "limit": "1",
         "cursor": "c/1=="}]
    fake.queue("GET", "/v1/alerts/rules", JSONResponse({"data": [RULE], "nextCursor": None}))
    assert [r.name for r in client.alerts.rules.list()] == ["orders DLQ"]


def test_one_alert_carries_its_notifications(fake, client):
    sent = {"kind": "FIRED", "channel": "webhook https://hooks.example/ios",
            "outcome": "SENT", "attempts": 1, "error": None, "at": "2026-12-05T01:00:31Z"}
    fake.queue("GET", "/v1/alerts/alt/1", JSONResponse(ALERT | {"notifications": [sent]}))
    alert = client.alerts.get("alt/1")
    assert fake.seen[0].raw_path == b"/v1/alerts/alt%2F1"
    assert alert.notifications == [sent] and alert.last_notified_at == ALERT["lastNotifiedAt"]


def test_a_message_trace_is_typed_and_keeps_its_events_in_order(fake, client):
    events = [
        {"type": "message.received", "occurredAt": "t0", "sincePreviousMs": None,
         "traceId": "c573", "spanId": "9d1e", "detail": {"source": "http"}},
        {"type": "message.transformed", "occurredAt": "t1", "sincePreviousMs": 3,
         "traceId": "c573", "spanId": "aa01", "detail": {"output": {"n": 2}}},
        {"type": "message.delivered", "occurredAt": "t2", "sincePreviousMs": 9,
         "traceId": "c573", "spanId": "bb02", "detail": {"attempt": 1, "result": "HTTP 200"}},
    ]
    fake.queue("GET", "/v1/messages/msg_1/trace", JSONResponse({
        "messageId": "msg_1", "integrationId": "int_1", "status": "DELIVERED",
        "traceId": "c573", "traceIds": ["c573"], "totalDurationMs": 12, "events": events}))
    trace = client.messages.trace("msg_1")
    assert (trace.message_id, trace.status, trace.trace_id, trace.total_duration_ms) == (
        "msg_1", "DELIVERED", "c573", 12)
    assert trace.event_types == ["message.received", "message.transformed",
                                 "message.delivered"]
    assert trace.events[1]["detail"]["output"] == {"n": 2} and trace.extra == {}


def test_integration_metrics_send_the_window_and_map_from_to_from_(fake, client):
    answer = {"integrationId": "int_1", "window": "15m", "from": "2026-12-05T01:45:00.000Z",
              "to": "2026-12-05T02:00:00.000Z",
              "throughput": {"received": 24, "delivered": 20, "deadLettered": 2, "failed": 1,
                             "parked": 0, "inFlight": 1, "receivedPerMinute": 1.6,
                             "deliveredPerMinute": 1.333},
              "errorRate": 0.1304,
              "latencyMs": {"endToEnd": {"count": 20, "p50": 210, "p95": 309, "p99": 320}},
              "sampledMessages": 24, "sampleLimit": 10000}
    fake.queue("GET", "/v1/integrations/int_1/metrics", JSONResponse(answer),
               JSONResponse(answer | {"window": "1h", "errorRate": None}))
    metrics = client.integrations.metrics("int_1", window="15m")
    assert (metrics.from_, metrics.to, metrics.window) == (
        answer["from"], answer["to"], "15m")
    assert metrics.throughput["deadLettered"] == 2 and metrics.error_rate == 0.1304
    assert metrics.latency_ms["endToEnd"]["p95"] == 309
    assert (metrics.sampled_messages, metrics.sample_limit, metrics.extra) == (24, 10000, {})
    assert client.integrations.metrics("int_1").error_rate is None
    assert [s.query for s in fake.seen] == [{"window": "15m"}, {"window": "1h"}]


def test_a_bad_window_is_a_bad_request_error(fake, client):
    from integration_platform import BadRequestError

    details = [{"field": "window", "message": "must be a duration <n>m, <n>h or <n>d"}]
    fake.queue("GET", "/v1/integrations/int_1/metrics",
               error(400, "INVALID_QUERY", "invalid query parameter 'window'", details))
    with pytest.raises(BadRequestError) as raised:
        client.integrations.metrics("int_1", window="2w")
    assert raised.value.details == details and len(fake.seen) == 1


def test_the_async_client_has_the_same_new_resources(fake):
    from integration_platform import AsyncIntegrationPlatform

    fake.queue("GET", "/v1/alerts", JSONResponse({"data": [ALERT], "nextCursor": "n"}),
               JSONResponse({"data": [ALERT | {"id": "alt_2"}], "nextCursor": None}))
    fake.queue("POST", "/v1/alerts/rules",
               JSONResponse(RULE | {"webhookSecret": "whsec_abc"}, status_code=201))
    fake.queue("GET", "/v1/messages/msg_1/trace", JSONResponse({"messageId": "msg_1"}))

    async def run() -> tuple[list[str], str, str]:
        async with AsyncIntegrationPlatform(api_key="k", tenant_id="acme",
                                            base_url=fake.url) as sdk:
            ids = [a.id async for a in sdk.alerts.list(integration_id="int_1")]
            rule = await sdk.alerts.rules.create("orders DLQ", RULE["condition"])
            trace = await sdk.messages.trace("msg_1")
            return ids, rule.webhook_secret, trace.message_id

    assert asyncio.run(run()) == (["alt_1", "alt_2"], "whsec_abc", "msg_1")
    assert fake.seen[1].query == {"integrationId": "int_1", "cursor": "n"}

