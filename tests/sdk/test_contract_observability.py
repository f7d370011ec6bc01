"""The SDK's alerts, message traces, integration metrics and configuration resources on the
live platform (real broker, worker and API): an alert rule whose webhook the SDK verifies
with the secret shown at creation, the alert's pages and notifications, a message's lineage
in order (and the trace id a client sent), metrics counting what was sent, and the
schemas/lookups/variables/test-case resources against the API's real answers."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import RecordingTarget, wait_for
from tests.webhook_receiver import WebhookReceiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def fast_alerts(platform_env: dict[str, str]) -> dict[str, str]:
    """Asked for before the worker (which copies the environment when it starts): an
    evaluation a second instead of every 30 s keeps the test short."""
    platform_env["IOS_ALERT_INTERVAL_SECONDS"] = "1"
    return platform_env


def test_alerts_traces_and_metrics_on_the_live_platform(fast_alerts, api_server, tenant):
    from integration_platform import IntegrationPlatform, NotFoundError, webhooks

    tenant_id, key = tenant
    good, bad, hooks = RecordingTarget(), RecordingTarget(status=400), WebhookReceiver()
    client = IntegrationPlatform(api_key=key, tenant_id=tenant_id, base_url=api_server)
    try:
        client.connectors.create(name="in", type="HTTP")
        client.connectors.create(name="ok", type="HTTP", config={"url": good.url})
        client.connectors.create(name="refusing", type="HTTP", config={"url": bad.url})
        flow = client.flows.create(source="in", target="ok", expression='{"n": $.n * 2}')
        dead = client.integrations.create("to the DLQ", "in", "refusing",
                                          error_strategy="DLQ")

        # A message's lineage: received, transformed (with the output), delivered.
        sent = [client.messages.send(flow.id, {"n": n}).message_id for n in range(5)]
        traced = httpx.post(
            f"{api_server}/v1/integrations/{flow.id}/messages", json={"n": 5},
            headers={"X-API-Key": key, "X-Tenant-Id": tenant_id,
                     "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
        assert traced.status_code == 202, traced.text
        sent.append(traced.json()["messageId"])
        wait_for(lambda: client.integrations.status(flow.id).delivered == 6, 60,
                 "6 deliveries")
        trace = client.messages.trace(sent[0])
        assert (trace.message_id, trace.integration_id, trace.status) == (
            sent[0], flow.id, "DELIVERED")
        assert trace.event_types == ["message.received", "message.transformed",
                                     "message.delivered"]
        received, transformed, delivered = trace.events
        assert received["detail"]["source"] == "http" and received["sincePreviousMs"] is None
        assert transformed["detail"]["output"] == {"n": 0}
        assert delivered["detail"]["attempt"] == 1
        assert trace.total_duration_ms == sum(e["sincePreviousMs"] for e in trace.events[1:])
        propagated = client.messages.trace(sent[-1])
        assert propagated.trace_id == TRACE_ID and propagated.trace_ids == [TRACE_ID]
        assert {e["traceId"] for e in propagated.events} == {TRACE_ID}
        assert propagated.events[1]["detail"]["output"] == {"n": 10}
        with pytest.raises(NotFoundError):
            client.messages.trace("msg_" + "0" * 24)

        # Metrics count what was sent, by the status each message has now.
        metrics = client.integrations.metrics(flow.id, window="15m")
        assert (metrics.integration_id, metrics.window) == (flow.id, "15m")
        assert metrics.from_ < metrics.to
        assert {k: metrics.throughput[k] for k in (
            "received", "delivered", "deadLettered", "failed", "inFlight")} == {
            "received": 6, "delivered": 6, "deadLettered": 0, "failed": 0, "inFlight": 0}
        assert metrics.error_rate == 0.0 and metrics.sampled_messages == 6
        assert metrics.latency_ms["endToEnd"]["count"] == 6
        assert metrics.latency_ms["endToEnd"]["p50"] <= metrics.latency_ms["endToEnd"]["p99"]

        # Two dead letters, then a rule that notices them and a tenant-wide one.
        for n in range(2):
            client.messages.send(dead.id, {"n": n})
        wait_for(lambda: len(list(client.dlq.list(integration_id=dead.id))) == 2, 60,
                 "2 dead letters")
        failing = client.integrations.metrics(dead.id)
        assert failing.throughput["deadLettered"] == 2 and failing.error_rate == 1.0
        rule = client.alerts.rules.create(
            "orders DLQ", {"type": "DLQ_DEPTH", "integrationId": dead.id, "threshold": 0},
            severity="critical", channels=[{"type": "webhook", "url": hooks.url}])
        assert rule.webhook_secret.startswith("whsec_") and rule.webhook_secret not in repr(rule)
        assert (rule.severity, rule.enabled, rule.repeat_interval_seconds) == (
            "critical", True, 3600)
        tenant_wide = client.alerts.rules.create(
            "any DLQ", {"type": "DLQ_DEPTH", "threshold": 1})
        assert client.alerts.rules.get(rule.id).webhook_secret is None
        assert [r.name for r in client.alerts.rules.list(limit=1)] == ["orders DLQ", "any DLQ"]

        wait_for(lambda: len(list(client.alerts.list(state="FIRING"))) == 2, 60,
                 "two firing alerts")
        pages = list(client.alerts.list(limit=1).pages())
        assert [len(p.items) for p in pages] == [1, 1] and pages[-1].next_cursor is None
        (alert,) = client.alerts.list(rule_id=rule.id)
        assert (alert.rule_name, alert.condition_type, alert.integration_id) == (
            "orders DLQ", "DLQ_DEPTH", dead.id)
        assert (alert.value, alert.threshold, alert.state) == (2.0, 0.0, "FIRING")
        assert [a.rule_id for a in client.alerts.list(integration_id=dead.id)] == [rule.id]

        # The webhook verifies with the secret the SDK showed once.
        wait_for(lambda: hooks.requests, 30, "the alert webhook")
        headers, body = hooks.requests[0]
        webhooks.verify(rule.webhook_secret, body, headers)
        notified = json.loads(body)
        assert (notified["event"], notified["alert"]["id"]) == ("alert.fired", alert.id)
        wait_for(lambda: client.alerts.get(alert.id).notifications, 30, "the notification")
        (notification,) = client.alerts.get(alert.id).notifications
        assert (notification["kind"], notification["outcome"], notification["attempts"]) == (
            "FIRED", "SENT", 1)

        # Disabling the rule resolves its alert; deleting it removes it.
        disabled = client.alerts.rules.update(rule.id, enabled=False)
        assert (disabled.enabled, disabled.version) == (False, 2)
        wait_for(lambda: [a.id for a in client.alerts.list(state="RESOLVED")] == [alert.id],
                 60, "the alert resolved")
        assert client.alerts.get(alert.id).resolved_at is not None
        client.alerts.rules.delete(rule.id)
        client.alerts.rules.delete(tenant_wide.id)
        with pytest.raises(NotFoundError):
            client.alerts.rules.get(rule.id)

        _configuration_resources(client, flow.id)
    finally:
        client.close()
        good.close()
        bad.close()
        hooks.close()


def _configuration_resources(client, integration_id: str) -> None:
    """Schemas, lookups, variables and test cases: the SDK's calls and models against the
    API's real answers."""
    from integration_platform import ConflictError

    schema = client.schemas.create("contact", "JSON_SCHEMA", {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    assert (schema.name, schema.version, schema.format) == ("contact", 1, "JSON_SCHEMA")
    checked = client.schemas.validate(schema.id, {"n": "one"})
    assert checked.valid is False and checked.violations
    assert client.schemas.validate(schema.id, {"n": 1}).valid is True
    with pytest.raises(ConflictError) as narrowing:
        client.schemas.add_version(schema.id, {"type": "object", "required": ["n", "m"]})
    assert narrowing.value.code == "INCOMPATIBLE_SCHEMA"
    assert client.schemas.get_version(schema.id, 1).definition["required"] == ["n"]
    assert [s.id for s in client.schemas.list()] == [schema.id]

    lookup = client.lookups.create("countries", "STATIC", rows={"PT": "Portugal"})
    replaced = client.lookups.replace_rows(lookup.id, "key,value\nES,Spain\nPT,Portugal\n")
    assert (lookup.rows_version, replaced.rows_version) == (1, 2)
    assert [(r.key, r.value) for r in client.lookups.rows(lookup.id, limit=1)] == [
        ("ES", "Spain"), ("PT", "Portugal")]
    assert [r.key for r in client.lookups.rows(lookup.id, version=1)] == ["PT"]
    assert client.lookups.update(lookup.id, name="países").name == "países"

    assert client.environments.set_variable("prod", "region", "eu").environment == "PROD"
    assert [(v.name, v.value) for v in client.environments.variables("PROD")] == [
        ("region", "eu")]
    client.environments.delete_variable("PROD", "region")
    assert client.environments.variables("PROD") == []

    case = client.integrations.create_test_case(integration_id, "doubles", {"n": 2},
                                                {"n": 4}, match="EXACT")
    assert [(c.id, c.match) for c in client.integrations.test_cases(integration_id)] == [
        (case.id, "EXACT")]
    client.integrations.delete_test_case(integration_id, case.id)
    assert client.integrations.test_cases(integration_id) == []
    assert client.integrations.connector_bindings(integration_id).data == []
