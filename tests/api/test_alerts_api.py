"""``/v1/alerts/rules`` and ``/v1/alerts`` through the real app, its writes applied by the
real projector (no broker: tests/api/auth_support.InProcessLog). The engine side, on a real
broker and worker, is tests/e2e/test_alerts.py."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from integrationos.store.tables import alert_rules
from integrationos.topics import event_types as t
from integrationos.topics.catalog import ALERTS
from integrationos.topics.envelope import Event
from tests.api.auth_support import InProcessLog, headers, seed_role_keys
from tests.api.conftest import ACME, GLOBEX, assert_error

SMTP = {"host": "127.0.0.1", "port": 2525, "security": "none", "from": "ops@acme.test",
        "to": "$.to", "subject": "$.s", "text": "$.t"}


@pytest.fixture
def api(client, seed):
    client.app_state["platform"].producer = InProcessLog(seed)
    seed.integration("acme", "int_a", "orders")
    seed.connector("acme", "con_http", "target")
    seed.connector("acme", "con_smtp", "mailer", "SMTP", SMTP, {"username": "u",
                                                                "password": "p"})
    seed.connector("globex", "con_globex_smtp", "their mailer", "SMTP", SMTP)
    return client


def _rule(**changes):
    return {"name": "dlq filling up", "severity": "critical",
            "condition": {"type": "DLQ_DEPTH", "threshold": 10, "integrationId": "int_a"},
            "channels": [{"type": "email", "connectorId": "con_smtp",
                          "recipients": ["oncall@acme.test"]},
                         {"type": "webhook", "url": "https://hooks.acme.test/alerts?k=1"}],
            "repeatIntervalSeconds": 600} | changes


def test_create_read_update_delete(api, seed):
    created = api.post("/v1/alerts/rules", headers=ACME, json=_rule())
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body.pop("webhookSecret")
    assert secret.startswith("whsec_") and len(secret) > 40
    assert body["id"].startswith("rul_") and body["version"] == 1 and body["enabled"]
    assert body["condition"] == _rule()["condition"]

    fetched = api.get(f"/v1/alerts/rules/{body['id']}", headers=ACME).json()
    assert fetched == body  # the secret only in the creation answer
    with seed.engine.connect() as conn:
        stored = conn.execute(select(alert_rules)).one()
    assert secret not in json.dumps([str(v) for v in stored])  # sealed, never plain

    patched = api.patch(f"/v1/alerts/rules/{body['id']}", headers=ACME,
                        json={"enabled": False, "severity": "info"})
    assert patched.status_code == 200, patched.text
    assert patched.json() | {"updatedAt": None} == body | {
        "enabled": False, "severity": "info", "version": 2, "updatedAt": None}
    with seed.engine.connect() as conn:
        assert conn.execute(select(alert_rules.c.secret_sealed)).scalar() == \
            stored.secret_sealed  # the secret stays across updates

    listed = api.get("/v1/alerts/rules", headers=ACME).json()
    assert [r["id"] for r in listed["data"]] == [body["id"]]
    assert api.get("/v1/alerts/rules", headers=GLOBEX).json()["data"] == []

    assert api.delete(f"/v1/alerts/rules/{body['id']}", headers=ACME).status_code == 204
    assert_error(api.get(f"/v1/alerts/rules/{body['id']}", headers=ACME), 404, "NOT_FOUND")


def test_an_error_rate_rule_gets_the_default_minimum(api):
    created = api.post("/v1/alerts/rules", headers=ACME, json=_rule(condition={
        "type": "ERROR_RATE", "thresholdPercent": 5, "windowSeconds": 300})).json()
    assert created["condition"]["minMessages"] == 10


@pytest.mark.parametrize(("condition", "field", "message"), [
    ({"type": "DLQ_DEPTH"}, "/condition/threshold", "is required for DLQ_DEPTH"),
    ({"type": "QUOTA", "thresholdPercent": 80, "windowSeconds": 60},
     "/condition/windowSeconds", "does not apply to QUOTA"),
    ({"type": "NO_TRAFFIC", "silenceSeconds": 60}, "/condition/integrationId",
     "is required for NO_TRAFFIC"),
    ({"type": "NO_TRAFFIC", "silenceSeconds": 60, "integrationId": "int_nope"},
     "/condition/integrationId", "no such integration"),
    ({"type": "CONNECTOR_DOWN", "connectorId": "con_globex_smtp"},
     "/condition/connectorId", "no such connector"),
    ({"type": "ERROR_RATE", "thresholdPercent": 101, "windowSeconds": 60},
     "/condition/thresholdPercent", "must be a number of 0..100"),
    ({"type": "ERROR_RATE", "thresholdPercent": 5, "windowSeconds": 5},
     "/condition/windowSeconds", "must be an integer of 10..86400 (seconds)"),
    ({"type": "FULL_MOON"}, "/condition/type", "must be one of DLQ_DEPTH, ERROR_RATE, "
     "NO_TRAFFIC, CONNECTOR_DOWN, QUOTA"),
])
def test_invalid_conditions_are_422_with_the_field(api, condition, field, message):
    error = assert_error(api.post("/v1/alerts/rules", headers=ACME,
                                  json=_rule(condition=condition)), 422, "VALIDATION_FAILED")
    assert {"field": field, "message": message} in error["details"]


@pytest.mark.parametrize(("channel", "field", "message"), [
    ({"type": "email", "connectorId": "con_http", "recipients": ["a@b.c"]},
     "/channels/0/connectorId", "no SMTP connector with this id"),
    ({"type": "email", "connectorId": "con_globex_smtp", "recipients": ["a@b.c"]},
     "/channels/0/connectorId", "no SMTP connector with this id"),
    ({"type": "email", "connectorId": "con_smtp"}, "/channels/0/recipients",
     "is required for email"),
    ({"type": "email", "connectorId": "con_smtp", "recipients": ["not an address"]},
     "/channels/0/recipients/0", "must be an email address"),
    ({"type": "webhook", "url": "ftp://x"}, "/channels/0/url", "must be an http(s) URL"),
    ({"type": "webhook", "url": "https://x", "recipients": ["a@b.c"]},
     "/channels/0/recipients", "does not apply to webhook"),
])
def test_invalid_channels_are_422_with_the_field(api, channel, field, message):
    error = assert_error(api.post("/v1/alerts/rules", headers=ACME,
                                  json=_rule(channels=[channel])), 422, "VALIDATION_FAILED")
    assert {"field": field, "message": message} in error["details"]


def test_names_are_unique_per_tenant(api):
    assert api.post("/v1/alerts/rules", headers=ACME, json=_rule()).status_code == 201
    assert_error(api.post("/v1/alerts/rules", headers=ACME, json=_rule()), 409, "CONFLICT")


def test_viewers_read_and_operators_write(api, seed):
    seed_role_keys(seed)
    assert_error(api.post("/v1/alerts/rules", headers=headers("viewer"), json=_rule()), 403,
                 "FORBIDDEN")
    assert_error(api.post("/v1/alerts/rules", headers=headers("developer"), json=_rule()),
                 403, "FORBIDDEN")
    created = api.post("/v1/alerts/rules", headers=headers("operator"), json=_rule())
    assert created.status_code == 201
    assert api.get("/v1/alerts/rules", headers=headers("viewer")).status_code == 200
    assert api.get("/v1/alerts", headers=headers("viewer")).status_code == 200


def _alert_events(seed, alert_id: str, rule_id: str, integration_id: str | None,
                  resolved: bool) -> None:
    topic = ALERTS.name("tapi")
    seed.apply(Event(t.ALERT_FIRED, "acme", rule_id, {
        "alertId": alert_id, "ruleId": rule_id, "ruleName": "r", "severity": "warning",
        "conditionType": "DLQ_DEPTH", "integrationId": integration_id, "connectorId": None,
        "value": 3.0, "threshold": 2.0, "summary": "3 dead-lettered"}, occurred_at_ms=1000),
        topic=topic)
    seed.apply(Event(t.ALERT_NOTIFIED, "acme", rule_id, {
        "alertId": alert_id, "ruleId": rule_id, "kind": "FIRED", "channel": "webhook x",
        "outcome": "FAILED", "attempts": 3, "error": "HTTP 500"}, occurred_at_ms=2000),
        topic=topic)
    if resolved:
        seed.apply(Event(t.ALERT_RESOLVED, "acme", rule_id, {
            "alertId": alert_id, "ruleId": rule_id, "value": 0.0, "summary": "0 left"},
            occurred_at_ms=5000), topic=topic)


def test_alerts_are_listed_filtered_and_shown_with_their_notifications(api, seed):
    _alert_events(seed, "alt_1", "rul_1", "int_a", resolved=True)
    _alert_events(seed, "alt_2", "rul_2", None, resolved=False)

    def ids(query: str) -> list[str]:
        answer = api.get(f"/v1/alerts{query}", headers=ACME)
        assert answer.status_code == 200, answer.text
        return [a["id"] for a in answer.json()["data"]]

    assert ids("") == ["alt_1", "alt_2"]
    assert ids("?state=FIRING") == ["alt_2"]
    assert ids("?state=resolved") == ["alt_1"]
    assert ids("?ruleId=rul_2") == ["alt_2"]
    assert ids("?integrationId=int_a") == ["alt_1"]
    assert ids("?limit=1")[0] == "alt_1"
    assert api.get("/v1/alerts", headers=GLOBEX).json()["data"] == []
    assert_error(api.get("/v1/alerts?state=ON_FIRE", headers=ACME), 400, "INVALID_QUERY")

    detail = api.get("/v1/alerts/alt_1", headers=ACME).json()
    assert detail["state"] == "RESOLVED" and detail["resolvedSummary"] == "0 left"
    assert detail["firedAt"] == "1970-01-01T00:00:01.000Z"
    assert detail["resolvedAt"] == "1970-01-01T00:00:05.000Z"
    assert detail["lastNotifiedAt"] == "1970-01-01T00:00:02.000Z"
    assert detail["notifications"] == [{"kind": "FIRED", "channel": "webhook x",
                                         "outcome": "FAILED", "attempts": 3,
                                         "error": "HTTP 500",
                                         "at": "1970-01-01T00:00:02.000Z"}]
    assert_error(api.get("/v1/alerts/alt_1", headers=GLOBEX), 404, "NOT_FOUND")
