"""The alert engine end to end on the real broker, worker, API, an SMTP server and webhook
receivers: each condition fires and resolves on a real stream of messages and changes,
notifications go out once per state change (again only after the repeat interval), webhooks
verify with the shipped helper, a failing channel is retried and recorded, and only one of
two workers evaluates."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from integrationos.cli.tenants import change_plan
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.rebuild import rebuild
from integrationos.store.tables import alert_notifications, alert_rules, alerts
from integrationos.topics.catalog import ALERTS, CONFIG
from integrationos.webhook_signatures import TIMESTAMP_HEADER, InvalidSignature, verify
from tests.smtp_server import SmtpServer, self_signed_certificate
from tests.support import RecordingTarget, WorkerProcess, wait_for
from tests.webhook_receiver import WebhookReceiver

INTERVAL = "1"  # IOS_ALERT_INTERVAL_SECONDS: an evaluation a second keeps the test short


@pytest.fixture
def fast_alerts(platform_env: dict[str, str]) -> dict[str, str]:
    """Asked for before the worker: it copies this environment when it starts."""
    platform_env["IOS_ALERT_INTERVAL_SECONDS"] = INTERVAL
    return platform_env


@pytest.fixture
def smtp(tmp_path):
    _, cert, key = self_signed_certificate(tmp_path)
    server = SmtpServer("none", cert, key)
    yield server
    server.stop()


def _events(receiver: WebhookReceiver, secrets: dict[str, str], alert_id: str) -> list[str]:
    return [b["event"] for b in receiver.verified(secrets) if b["alert"]["id"] == alert_id]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_each_condition_fires_and_resolves_and_notifies(fast_alerts, api_server, tenant, smtp):
    tenant_id, key = tenant
    refusing, accepting = RecordingTarget(status=400), RecordingTarget(status=200)
    hooks, broken_hook = WebhookReceiver(), WebhookReceiver(status=500)
    api = httpx.Client(base_url=api_server, timeout=30,
                       headers={"X-API-Key": key, "X-Tenant-Id": tenant_id})

    def create(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = api.post(path, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def send(integration_id: str, n: int) -> list[str]:
        return [api.post(f"/v1/integrations/{integration_id}/messages", json={"n": i}).json()[
            "messageId"] for i in range(n)]

    def alerts_of(rule: dict[str, Any]) -> list[dict[str, Any]]:
        return api.get(f"/v1/alerts?ruleId={rule['id']}").json()["data"]

    def firing(rule: dict[str, Any]) -> dict[str, Any] | None:
        return next((a for a in alerts_of(rule) if a["state"] == "FIRING"), None)

    def resolved(alert: dict[str, Any]) -> dict[str, Any] | None:
        current = api.get(f"/v1/alerts/{alert['id']}").json()
        return current if current["state"] == "RESOLVED" else None

    try:
        bad_target = create("/v1/connectors", {"name": "refuses", "type": "HTTP",
                                               "config": {"url": refusing.url}})
        good_target = create("/v1/connectors", {"name": "accepts", "type": "HTTP",
                                                "config": {"url": accepting.url}})
        probed = create("/v1/connectors", {"name": "probed", "type": "HTTP",
                                           "config": {"url": "http://127.0.0.1:9/down"}})
        mailer = create("/v1/connectors", {"name": "mailer", "type": "SMTP", "config": {
            "host": "127.0.0.1", "port": smtp.port, "security": "none",
            "from": "IntegrationOS <alerts@ios.test>", "to": "$.to", "subject": "$.s",
            "text": "$.t"}})
        bad = create("/v1/integrations", {"name": "bad", "environment": "DEV",
                                          "targetConnectorId": bad_target["id"],
                                          "expression": "$", "errorStrategy": "DLQ"})
        quiet = create("/v1/integrations", {"name": "quiet", "environment": "DEV",
                                            "targetConnectorId": good_target["id"],
                                            "expression": "$", "errorStrategy": "DLQ"})
        hook = {"type": "webhook", "url": hooks.url}
        dlq_rule = create("/v1/alerts/rules", {
            "name": "dlq", "severity": "critical",
            "condition": {"type": "DLQ_DEPTH", "threshold": 0, "integrationId": bad["id"]},
            "channels": [{"type": "email", "connectorId": mailer["id"],
                          "recipients": ["oncall@acme.test"]},
                         hook, {"type": "webhook", "url": broken_hook.url}]})
        rate_rule = create("/v1/alerts/rules", {
            "name": "error rate", "channels": [hook], "condition": {
                "type": "ERROR_RATE", "integrationId": bad["id"], "thresholdPercent": 50,
                "windowSeconds": 600, "minMessages": 3}})
        quiet_rule = create("/v1/alerts/rules", {
            "name": "quiet", "channels": [hook], "repeatIntervalSeconds": 5,
            "condition": {"type": "NO_TRAFFIC", "integrationId": quiet["id"],
                          "silenceSeconds": 5}})
        down_rule = create("/v1/alerts/rules", {
            "name": "down", "channels": [hook],
            "condition": {"type": "CONNECTOR_DOWN", "connectorId": probed["id"]}})
        quota_rule = create("/v1/alerts/rules", {
            "name": "quota", "channels": [hook],
            "condition": {"type": "QUOTA", "thresholdPercent": 80}})
        secrets = {r["id"]: r["webhookSecret"]
                   for r in (dlq_rule, rate_rule, quiet_rule, down_rule, quota_rule)}
        assert len(set(secrets.values())) == 5

        # DLQ depth: one dead letter fires it. The error rate (1 of 1) stays quiet: too few.
        dead = send(bad["id"], 1)
        dlq_alert = wait_for(lambda: firing(dlq_rule), 60, "the DLQ depth alert")
        assert dlq_alert["value"] == 1 and dlq_alert["integrationId"] == bad["id"]
        # CONNECTOR_DOWN: the probe finds nothing listening.
        down_alert = wait_for(lambda: firing(down_rule), 60, "the connector-down alert")
        assert "DOWN" in down_alert["summary"]
        # NO_TRAFFIC: nothing for 5 s; reminded every 5 s while it lasts.
        quiet_alert = wait_for(lambda: firing(quiet_rule), 60, "the no-traffic alert")
        wait_for(lambda: "alert.reminder" in _events(hooks, secrets,
                                                     quiet_alert["id"]), 60, "a reminder")
        assert alerts_of(rate_rule) == []  # several evaluations later: 1 of 1 is not enough

        # ERROR_RATE: 3 of 3 errored.
        dead += send(bad["id"], 2)
        rate_alert = wait_for(lambda: firing(rate_rule), 60, "the error-rate alert")
        assert rate_alert["value"] == 100

        # Each resolves when its cause goes away.
        send(quiet["id"], 1)
        wait_for(lambda: resolved(quiet_alert), 60, "the no-traffic alert to resolve")
        assert api.patch(f"/v1/connectors/{probed['id']}", json={
            "config": {"url": accepting.url}}).status_code == 200
        wait_for(lambda: resolved(down_alert), 60, "the connector-down alert to resolve")
        assert api.post("/v1/dlq/discard", json={"messageIds": dead,
                                                 "reason": "seen"}).status_code == 200
        wait_for(lambda: resolved(dlq_alert), 60, "the DLQ depth alert to resolve")
        assert api.patch(f"/v1/integrations/{bad['id']}", json={
            "targetConnectorId": good_target["id"]}).status_code == 200
        time.sleep(2)  # workers see a configuration change within a second
        send(bad["id"], 6)  # 3 errored of 9: 33%, under the threshold
        wait_for(lambda: resolved(rate_alert), 60, "the error-rate alert to resolve")

        # QUOTA: the plan's monthly quota lowered under what was used, then raised again.
        used = 10  # messages sent above
        wait_for(lambda: api.get("/v1/usage").json()["messages"]["used"] == used, 30,
                 "every message counted")
        settings = Settings.from_env()
        assert change_plan(settings, tenant_id, "pro", {"requestsPerMinute": 1_000_000,
                                                        "messagesPerMonth": used})
        quota_alert = wait_for(lambda: firing(quota_rule), 60, "the quota alert")
        assert quota_alert["value"] == 100
        assert change_plan(settings, tenant_id, "pro", {"requestsPerMinute": 1_000_000,
                                                        "messagesPerMonth": used * 100})
        wait_for(lambda: resolved(quota_alert), 60, "the quota alert to resolve")

        # Webhooks: signed, one per state change (the repeat interval is an hour), except
        # the quiet rule's reminders.
        for rule, alert in ((dlq_rule, dlq_alert), (rate_rule, rate_alert),
                            (down_rule, down_alert), (quota_rule, quota_alert)):
            assert wait_for(lambda r=rule, a=alert: _events(hooks, secrets, a["id"])
                            == ["alert.fired", "alert.resolved"] or None, 30,
                            f"{rule['name']}'s notifications")
        quiet_events = _events(hooks, secrets, quiet_alert["id"])
        assert quiet_events[0] == "alert.fired" and quiet_events[-1] == "alert.resolved"
        assert set(quiet_events[1:-1]) == {"alert.reminder"}
        body = next(b for b in hooks.verified(secrets)
                    if b["event"] == "alert.resolved" and b["alert"]["id"] == dlq_alert["id"])
        assert body["alert"]["state"] == "RESOLVED" and body["tenant"] == tenant_id
        # What the helper refuses: another rule's secret, a changed body, an old request.
        headers, raw = hooks.requests[0]
        with pytest.raises(InvalidSignature):
            verify(secrets[quota_rule["id"]] + "x", raw, headers)  # wrong key
        with pytest.raises(InvalidSignature):
            verify(secrets[json.loads(raw)["alert"]["ruleId"]], raw.replace(b"}", b" }", 1),
                   headers)
        with pytest.raises(InvalidSignature):
            owner = secrets[json.loads(raw)["alert"]["ruleId"]]
            verify(owner, raw, headers, now=int(headers[TIMESTAMP_HEADER]) + 301)

        # Email: the firing and the resolution, at the real SMTP server.
        mails = wait_for(lambda: [m for m in smtp.mailbox.messages()
                                  if dlq_alert["id"] in m.message.get_content()]
                         if len(smtp.mailbox.messages()) >= 2 else None, 30, "two emails")
        assert [m.message["Subject"] for m in mails] == [
            "[CRITICAL] FIRING: dlq", "[CRITICAL] RESOLVED: dlq"]
        assert all(m.recipients == ["oncall@acme.test"] for m in mails)

        # The broken webhook: tried three times each time, recorded, the worker carried on.
        detail = api.get(f"/v1/alerts/{dlq_alert['id']}").json()
        outcomes = {(n["kind"], n["channel"].split(" ")[0], n["outcome"], n["attempts"])
                    for n in detail["notifications"]}
        broken = f"webhook http://127.0.0.1:{broken_hook.server.server_port}/alerts"
        assert {(n["kind"], n["outcome"], n["attempts"]) for n in detail["notifications"]
                if n["channel"] == broken} == {("FIRED", "FAILED", 3), ("RESOLVED", "FAILED", 3)}
        assert ("FIRED", "email", "SENT", 1) in outcomes
        assert ("RESOLVED", "webhook", "SENT", 1) in outcomes
        assert len(broken_hook.requests) == 6
        assert "kept-out-of-logs" not in json.dumps(detail)
    finally:
        api.close()
        for server in (refusing, accepting, hooks, broken_hook):
            server.close()


def test_one_of_two_workers_evaluates(fast_alerts, api_server, tenant, worker, tmp_path):
    """Two workers in the group: the one holding the alerts partition evaluates; each state
    change is notified once, not once per worker. Then the alert tables are rebuilt from
    the log."""
    tenant_id, key = tenant
    second = WorkerProcess(fast_alerts, worker_id="worker-2")
    second.start()
    hooks = WebhookReceiver()
    api = httpx.Client(base_url=api_server, timeout=30,
                       headers={"X-API-Key": key, "X-Tenant-Id": tenant_id})
    try:
        rule = api.post("/v1/alerts/rules", json={
            "name": "quota", "channels": [{"type": "webhook", "url": hooks.url}],
            "condition": {"type": "QUOTA", "thresholdPercent": 0}}).json()
        alert = wait_for(lambda: api.get(f"/v1/alerts?ruleId={rule['id']}").json()["data"],
                         60, "the alert")[0]
        assert api.patch(f"/v1/alerts/rules/{rule['id']}",
                         json={"enabled": False}).status_code == 200
        wait_for(lambda: api.get(f"/v1/alerts/{alert['id']}").json()["state"] == "RESOLVED",
                 60, "the alert to resolve (its rule disabled)")
        wait_for(lambda: len(hooks.requests) >= 1, 30, "the notification")
        for _ in range(5):  # more evaluations on both workers
            time.sleep(1)
        sent = hooks.verified({rule["id"]: rule["webhookSecret"]})
        assert [b["event"] for b in sent] == ["alert.fired"]
        assert len(api.get(f"/v1/alerts?ruleId={rule['id']}").json()["data"]) == 1
    finally:
        api.close()
        hooks.close()
        second.stop()
    worker.stop()
    _rebuilt_alert_tables_equal_the_live_ones(tmp_path)


def _rebuilt_alert_tables_equal_the_live_ones(tmp_path) -> None:
    """The alert tables are projections like the others: the log rebuilds them."""
    settings = Settings.from_env()
    tables = (alert_rules, alerts, alert_notifications)

    def dump(engine) -> dict[str, list[tuple]]:
        with engine.connect() as conn:
            return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in tables}

    live = open_database(settings.database_url)
    expected = dump(live)
    live.dispose()
    assert expected["alerts"] and expected["alert_notifications"]
    rebuilt = open_database(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuild(rebuilt, settings.kafka_bootstrap,
            [spec.name(settings.topic_prefix) for spec in (CONFIG, ALERTS)])
    assert dump(rebuilt) == expected
    rebuilt.dispose()
