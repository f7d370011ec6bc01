"""Tenant isolation: acme's admin calls every route with globex's ids and gets 404 (422 for a
reference in a body), and no answer ever carries globex's data."""

from __future__ import annotations

import json
import re

import pytest

from integrationos.api.permissions import RULES
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.auth_support import InProcessLog
from tests.api.conftest import ACME, GLOBEX

MARK = "GlobexSecretMark"  # in every name and value globex owns
GLOBEX_IDS = {
    "/v1/connectors/": "con_globex", "/v1/transformations/": "trf_globex",
    "/v1/integrations/": "int_globex", "/v1/messages/": "msg_globex",
    "/v1/dlq/replays/": "rpl_globex0123456789abcdef01", "/v1/dlq/": "msg_globex",
    "/v1/schemas/": "sch_globex", "/v1/lookups/": "lkp_globex", "/v1/api-keys/": "key_globex",
    "/v1/alerts/rules/": "rul_globex", "/v1/alerts/": "alt_globex",
}
# Bodies valid enough that only the id in the path can make the request fail.
BODIES = {
    ("PATCH", "/v1/connectors/{id}"): {"name": "x"},
    ("PATCH", "/v1/transformations/{id}"): {"expression": "$"},
    ("PATCH", "/v1/integrations/{id}"): {"name": "x"},
    ("POST", "/v1/integrations/{id}/messages"): {"a": 1},
    ("POST", "/v1/integrations/{id}/replay"): {"from": "2026-01-01T00:00:00Z"},
    ("POST", "/v1/schemas/{id}/versions"): {"definition": {"type": "object"}},
    ("POST", "/v1/schemas/{id}/validate"): {"document": {}},
    ("PATCH", "/v1/lookups/{id}"): {"name": "x"},
    ("PATCH", "/v1/alerts/rules/{id}"): {"name": "x"},
    ("PUT", "/v1/lookups/{id}/rows"): {"k": "v"},
    ("POST", "/v1/integrations/{id}/promote"): {"from": "DEV", "to": "QA"},
    ("POST", "/v1/integrations/{id}/test-cases"): {"name": "x", "payload": {}, "expected": {}},
}
NOT_TENANT_DATA = {"/v1/connector-types/{type}"}  # the registry is the platform's


def _globex_path(path: str) -> str:
    prefix = next(p for p in sorted(GLOBEX_IDS, key=len, reverse=True) if path.startswith(p))
    values = {"id": GLOBEX_IDS[prefix], "version": "1", "caseId": "tc_globex"}
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


@pytest.fixture
def globex(client, seed):
    client.app_state["platform"].producer = InProcessLog(seed)
    seed.connector("globex", "con_globex", f"{MARK}-con", "HTTP",
                   {"url": f"http://127.0.0.1:9/{MARK}"})
    seed.transformation("globex", "trf_globex", f"{MARK}-trf", f'"{MARK}"')
    seed.integration("globex", "int_globex", f"{MARK}-int", environment="PROD",
                     targetConnectorId="con_globex")
    seed.apply(
        Event(t.SCHEMA_VERSION_ADDED, "globex", "sch_globex", {
            "id": "sch_globex", "name": f"{MARK}-sch", "format": "JSON_SCHEMA", "version": 1,
            "definition": json.dumps({"title": MARK}), "compatibility": "BACKWARD"}),
        Event(t.LOOKUP_CREATED, "globex", "lkp_globex", {
            "id": "lkp_globex", "name": f"{MARK}-lkp", "lookupType": "STATIC",
            "configJson": "{}", "version": 1}),
        Event(t.LOOKUP_ROWS_REPLACED, "globex", "lkp_globex", {
            "id": "lkp_globex", "rowsVersion": 1, "rowsJson": json.dumps({"k": MARK})}),
        Event(t.ENVIRONMENT_VARIABLE_SET, "globex", "env:PROD", {
            "environment": "PROD", "name": "GLOBEX_VAR", "value": MARK}),
    )
    seed.apply(Event(t.INTEGRATION_TEST_CASE_SAVED, "globex", "int_globex", {
        "id": "int_globex", "testCaseId": "tc_globex", "name": f"{MARK}-case",
        "payloadJson": "{}", "expectedJson": json.dumps({"m": MARK}), "match": "SUBSET",
        "savedBy": None}))
    common = {"messageId": "msg_globex", "integrationId": "int_globex"}
    seed.message_events(
        Event(t.MESSAGE_RECEIVED, "globex", "msg_globex", common | {
            "key": None, "payloadJson": json.dumps({"m": MARK}), "source": "api",
            "contentType": "application/json"}),
        Event(t.MESSAGE_DEAD_LETTERED, "globex", "msg_globex", common | {
            "stage": "deliver", "code": "HTTP_400", "message": MARK,
            "dlqTopic": "tapi.dlq.v1"}),
    )
    seed.apply(Event(t.MESSAGE_REPLAY_REQUESTED, "globex", GLOBEX_IDS["/v1/dlq/replays/"], {
        "replayId": GLOBEX_IDS["/v1/dlq/replays/"], "kind": "DLQ", "integrationId": None,
        "messageIds": ["msg_globex"], "filterJson": None, "payloadJson": None,
        "contentType": None, "fromJson": None, "requestedAt": 1, "requestedBy": MARK}),
        topic="tapi.replays.v1")
    seed.apply(Event(t.ALERT_RULE_CREATED, "globex", "rul_globex", {
        "id": "rul_globex", "name": f"{MARK}-rule", "severity": "info", "enabled": True,
        "conditionJson": json.dumps({"type": "DLQ_DEPTH", "threshold": 1,
                                     "integrationId": "int_globex"}),
        "channelsJson": json.dumps([{"type": "webhook", "url": f"https://x/{MARK}"}]),
        "repeatIntervalSeconds": 60, "secret": seed.vault.seal({"secret": MARK}),
        "version": 1, "changedBy": None}))
    seed.apply(Event(t.ALERT_FIRED, "globex", "rul_globex", {
        "alertId": "alt_globex", "ruleId": "rul_globex", "ruleName": f"{MARK}-rule",
        "severity": "info", "conditionType": "DLQ_DEPTH", "integrationId": "int_globex",
        "connectorId": None, "value": 2.0, "threshold": 1.0, "summary": MARK}),
        topic="tapi.alerts.v1")
    return seed


def test_globex_sees_its_own_data(client, globex):
    """The fixture really gives globex data to find, so the absences below mean something."""
    for path in ("/v1/connectors/con_globex", "/v1/integrations/int_globex",
                 "/v1/integrations/int_globex/test-cases",
                 "/v1/messages/msg_globex", "/v1/dlq/msg_globex", "/v1/lookups/lkp_globex",
                 "/v1/schemas/sch_globex", "/v1/transformations/trf_globex",
                 "/v1/environments/PROD/variables", "/v1/alerts/rules/rul_globex",
                 "/v1/alerts/alt_globex"):
        response = client.get(path, headers=GLOBEX)
        assert response.status_code == 200 and MARK in response.text, path
    replay = client.get(f"/v1/dlq/replays/{GLOBEX_IDS['/v1/dlq/replays/']}", headers=GLOBEX)
    assert replay.status_code == 200 and "msg_globex" in replay.text


@pytest.mark.parametrize("route", sorted(
    r for r in RULES if "{id}" in r[1] and r[1] not in NOT_TENANT_DATA))
def test_every_route_with_another_tenants_id_is_404(client, globex, route):
    method, path = route
    response = client.request(method, _globex_path(path), headers=ACME,
                              json=BODIES.get(route, {}) if method != "GET" else None)
    assert response.status_code == 404, (route, response.text)
    assert MARK not in response.text


def test_another_tenants_variable_is_404(client, globex):
    response = client.delete("/v1/environments/PROD/variables/GLOBEX_VAR", headers=ACME)
    assert response.status_code == 404 and MARK not in response.text


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/v1/integrations", {"name": "x", "targetConnectorId": "con_globex"}, 422),
    ("/v1/integrations", {"name": "x", "transformationId": "trf_globex"}, 422),
    ("/v1/flows", {"source": "con_globex", "target": f"{MARK}-con"}, 422),
    ("/v1/sandbox/execute", {"integrationId": "int_globex", "payload": {}}, 404),
    ("/v1/dlq/discard", {"messageIds": ["msg_globex"]}, 422),
    ("/v1/dlq/replay", {"messageIds": ["msg_globex"]}, 422),
    ("/v1/alerts/rules", {"name": "x", "condition": {
        "type": "NO_TRAFFIC", "integrationId": "int_globex", "silenceSeconds": 60}}, 422),
    ("/v1/alerts/rules", {"name": "x", "condition": {"type": "QUOTA", "thresholdPercent": 80},
                          "channels": [{"type": "email", "connectorId": "con_globex",
                                        "recipients": ["a@b.c"]}]}, 422),
    ("/v1/lookups", {"name": "x", "type": "HTTP",
                     "config": {"connectorId": "con_globex", "path": "/x"}}, 422),
])
def test_references_to_another_tenants_ids_in_a_body_are_refused(client, globex, path, body,
                                                                   status):
    response = client.post(path, headers=ACME, json=body)
    assert response.status_code in (status, 404, 422), (path, response.text)
    assert MARK not in response.text.replace(f"{MARK}-con", "").replace(f"{MARK}-sch", "")


def test_another_tenants_schema_is_not_registered_for_a_preview(client, globex):
    response = client.post("/v1/transformations/preview", headers=ACME, json={
        "expression": "$", "payload": {}, "sourceSchema": f"{MARK}-sch"})
    assert response.status_code == 200
    source = response.json()["validation"]["source"]
    assert source["status"] == "SKIPPED" and "not registered" in source["detail"]
    assert "title" not in response.text


def test_no_listing_shows_another_tenants_data(client, globex):
    listings = sorted(path for method, path in RULES if method == "GET" and "{id}" not in path
                      and "{type}" not in path)
    for path in listings:
        response = client.get(path.replace("{env}", "PROD"), headers=ACME)
        assert response.status_code == 200, path
        assert MARK not in response.text, path
