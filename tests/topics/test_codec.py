"""The Avro envelope: every event type round-trips, junk is refused, old versions upgrade."""

from __future__ import annotations

import copy

import pytest

from integrationos.topics import codec, schemas
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

SAMPLES = {
    t.TENANT_CREATED: {"id": "acme", "name": "Acme", "plan": "pro"},
    t.API_KEY_ISSUED: {"keyId": "k1", "keyHash": "ab" * 32, "prefix": "ip_live_abcd",
                       "name": "first", "roles": ["developer", "viewer"],
                       "environments": ["DEV", "QA"], "live": False},
    t.API_KEY_REVOKED: {"keyId": "k1"},
    t.TENANT_PLAN_CHANGED: {"id": "acme", "plan": "pro", "messagesPerMonth": -1,
                            "requestsPerMinute": 600, "connectors": None, "retentionDays": None},
    t.CONNECTOR_CREATED: {"id": "c", "name": "n", "connectorType": "HTTP", "configJson": "{}",
                          "credentials": {"keyId": "k", "nonce": b"\x00" * 12,
                                          "ciphertext": b"\x01\x02"}, "version": 1},
    t.CONNECTOR_UPDATED: {"id": "c", "name": "n", "connectorType": "HTTP", "configJson": "{}",
                          "credentials": None, "version": 2},
    t.CONNECTOR_DELETED: {"id": "c"},
    t.TRANSFORMATION_CREATED: {"id": "t", "name": "n", "sourceSchema": None,
                               "targetSchema": None, "expression": "$", "version": 1},
    t.TRANSFORMATION_UPDATED: {"id": "t", "name": "n", "sourceSchema": '"x"',
                               "targetSchema": '"y"', "expression": "$", "version": 2},
    t.TRANSFORMATION_DELETED: {"id": "t"},
    t.INTEGRATION_CREATED: {"id": "i", "name": "n", "environment": "DEV",
                            "sourceConnectorId": None, "targetConnectorId": "c",
                            "transformationId": None, "transformationVersion": None,
                            "expression": "$", "errorStrategy": "RETRY_3_DLQ", "backoff": None,
                            "version": 1, "changedBy": "key_acme"},
    t.INTEGRATION_UPDATED: {"id": "i", "name": "n", "environment": "QA",
                            "sourceConnectorId": "s", "targetConnectorId": "c",
                            "transformationId": "t", "transformationVersion": 2,
                            "expression": None, "errorStrategy": "DLQ",
                            "backoff": {"initialDelayMs": 4000, "maxDelayMs": 3_600_000,
                                        "multiplier": 1.5}, "version": 2, "changedBy": None},
    t.INTEGRATION_DELETED: {"id": "i", "changedBy": "jwt:user-1"},
    t.INTEGRATION_PAUSED: {"id": "i", "reason": "FAIL_FAST", "messageId": "m",
                           "code": "HTTP_400", "message": "HTTP 400", "changedBy": "worker"},
    t.INTEGRATION_RESUMED: {"id": "i", "changedBy": "key_acme"},
    t.INTEGRATION_PROMOTED: {
        "id": "i", "fromEnvironment": "QA", "toEnvironment": "PROD", "promotedId": "i2",
        "promotedBy": "apikey:ip_live_abcd", "sourceVersion": 3, "targetVersion": 1,
        "lineageId": "i0",
        "connectorBindings": [{"role": "target", "fromConnectorId": "c", "toConnectorId": "c2"}],
        "gate": {"status": "PASSED", "cases": [{"testCaseId": "tc_1", "name": "ok",
                                                "status": "PASSED", "durationMs": 0.4}]},
        "state": {"id": "i2", "name": "n", "environment": "PROD", "sourceConnectorId": None,
                  "targetConnectorId": "c2", "transformationId": "t",
                  "transformationVersion": 2, "expression": None, "errorStrategy": "DLQ",
                  "backoff": None, "version": 1}},
    t.INTEGRATION_ROLLED_BACK: {
        "id": "i2", "fromVersion": 3, "restoredVersion": 1, "reason": "bad mapping",
        "rolledBackBy": "api",
        "state": {"id": "i2", "name": "n", "environment": "PROD", "sourceConnectorId": None,
                  "targetConnectorId": "c2", "transformationId": None,
                  "transformationVersion": None, "expression": "$", "errorStrategy": "DLQ",
                  "backoff": {"initialDelayMs": 1000, "maxDelayMs": 300000,
                              "multiplier": 2.0}, "version": 4}},
    t.INTEGRATION_TEST_CASE_SAVED: {"id": "i0", "testCaseId": "tc_1", "name": "ok",
                                    "payloadJson": '{"a": 1}', "expectedJson": '{"b": 1}',
                                    "match": "SUBSET", "savedBy": None},
    t.INTEGRATION_TEST_CASE_DELETED: {"id": "i0", "testCaseId": "tc_1", "deletedBy": "api"},
    t.SCHEMA_VERSION_ADDED: {"id": "s", "name": "orders", "format": "XSD", "version": 1,
                             "definition": "<xs:schema/>", "compatibility": "BACKWARD",
                             "examplesJson": '["<order/>"]'},
    t.SCHEMA_DELETED: {"id": "s"},
    t.LOOKUP_CREATED: {"id": "l", "name": "countries", "lookupType": "STATIC",
                       "configJson": "{}", "version": 1},
    t.LOOKUP_UPDATED: {"id": "l", "name": "countries", "lookupType": "HTTP",
                       "configJson": "{}", "version": 2},
    t.LOOKUP_ROWS_REPLACED: {"id": "l", "rowsVersion": 3, "rowsJson": '{"PT": "Portugal"}'},
    t.LOOKUP_DELETED: {"id": "l"},
    t.ENVIRONMENT_VARIABLE_SET: {"environment": "DEV", "name": "ORG", "value": "x"},
    t.ENVIRONMENT_VARIABLE_DELETED: {"environment": "DEV", "name": "ORG"},
    t.SOURCE_CHECKPOINTED: {"integrationId": "i", "connectorId": "c",
                            "checkpoint": '{"cursor": 42}'},
    t.MESSAGE_RECEIVED: {"messageId": "m", "integrationId": "i", "key": None,
                         "payloadJson": '{"a": "ção"}', "source": "http",
                         "contentType": "application/json"},
    t.MESSAGE_TRANSFORMED: {"messageId": "m", "integrationId": "i", "outputJson": "{}",
                            "durationUs": 12},
    t.MESSAGE_DELIVERED: {"messageId": "m", "integrationId": "i", "attempt": 1,
                          "target": "kafka:x", "detail": "ok"},
    t.MESSAGE_FAILED: {"messageId": "m", "integrationId": None, "attempt": 2,
                       "stage": "deliver", "errorClass": "RETRYABLE", "code": "HTTP_503",
                       "message": "down"},
    t.MESSAGE_DEAD_LETTERED: {"messageId": "m", "integrationId": "i", "stage": "deliver",
                              "code": "HTTP_400", "message": "bad", "dlqTopic": "ios.dlq.v1"},
    t.MESSAGE_DISCARDED: {"messageId": "m", "integrationId": "i", "reason": "obsolete"},
    t.MESSAGE_REPLAY_REQUESTED: {
        "replayId": "rpl_1", "kind": "DLQ", "integrationId": None, "messageIds": ["m"],
        "filterJson": None, "payloadJson": '{"fixed": true}', "contentType": None,
        "fromJson": None, "requestedAt": 1_700_000_000_000, "requestedBy": None},
    t.MESSAGE_REPLAYED: {"messageId": "m", "integrationId": "i", "replayId": "rpl_1",
                         "payloadJson": None},
    t.REPLAY_BARRIER: {"replayId": "rpl_1"},
    t.REPLAY_PROGRESSED: {"replayId": "rpl_1", "total": 3, "sent": 1, "skipped": 0},
    t.REPLAY_COMPLETED: {"replayId": "rpl_1", "status": "COMPLETED", "total": 3, "sent": 2,
                         "skipped": 1, "error": None},
    t.MESSAGE_PARKED: {"messageId": "m", "integrationId": "i", "reason": "INTEGRATION_PAUSED",
                       "code": "INTEGRATION_PAUSED", "message": "the integration is paused"},
    t.ALERT_RULE_CREATED: (_ALERT_RULE := {
        "id": "rul_1", "name": "dlq", "severity": "critical", "enabled": True,
        "conditionJson": '{"type": "DLQ_DEPTH", "threshold": 3}',
        "channelsJson": '[{"type": "webhook", "url": "https://x"}]',
        "repeatIntervalSeconds": 3600,
        "secret": {"keyId": "k", "nonce": b"\x00" * 12, "ciphertext": b"\x01" * 40},
        "version": 1, "changedBy": "key_1"}),
    t.ALERT_RULE_UPDATED: _ALERT_RULE | {"version": 2, "enabled": False},
    t.ALERT_RULE_DELETED: {"id": "rul_1", "changedBy": None},
    t.ALERT_FIRED: {"alertId": "alt_1", "ruleId": "rul_1", "ruleName": "dlq",
                    "severity": "critical", "conditionType": "DLQ_DEPTH", "integrationId": "i",
                    "connectorId": None, "value": 4.0, "threshold": 3.0, "summary": "4 waiting"},
    t.ALERT_RESOLVED: {"alertId": "alt_1", "ruleId": "rul_1", "value": None,
                       "summary": "the rule was disabled or deleted"},
    t.ALERT_NOTIFIED: {"alertId": "alt_1", "ruleId": "rul_1", "kind": "FIRED",
                       "channel": "webhook https://x/", "outcome": "FAILED", "attempts": 3,
                       "error": "HTTP 500"},
}


def test_every_event_type_has_a_sample_here():
    assert set(SAMPLES) == set(schemas.CURRENT_VERSION)


@pytest.mark.parametrize("type_", sorted(SAMPLES))
def test_round_trip(type_: str):
    event = Event(type_, "acme", "agg-1", SAMPLES[type_], causation_id="c1",
                  correlation_id="r1", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize("raw", [b"", b"\x02abc", b"\x01", b"\x01\xff\xff\xff\xff", b"{}"])
def test_junk_is_refused_with_one_error_type(raw: bytes):
    with pytest.raises(codec.UndecodableEvent):
        codec.decode(raw)


def test_an_unknown_type_cannot_be_built():
    with pytest.raises(ValueError):
        Event("no.such.type", "acme", "x", {})


def test_v1_transformation_records_already_in_logs_read_as_v2():
    v1 = Event(t.TRANSFORMATION_CREATED, "acme", "t", {
        "id": "t", "name": "n", "sourceSchema": None, "expression": "$", "version": 1},
        schema_version=1)
    upgraded = codec.decode(codec.encode(v1))
    assert upgraded.schema_version == 2 and upgraded.data["targetSchema"] is None


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_integration_records_read_as_v4_without_a_backoff_or_author(version: int):
    data = {k: v for k, v in SAMPLES[t.INTEGRATION_UPDATED].items()
            if k not in ("backoff", "changedBy")}
    if version == 1:
        del data["transformationVersion"]
    old = Event(t.INTEGRATION_UPDATED, "acme", "i", data, schema_version=version)
    upgraded = codec.decode(codec.encode(old))
    assert upgraded.schema_version == 4
    assert upgraded.data["backoff"] is None and upgraded.data["errorStrategy"] == "DLQ"
    assert upgraded.data["changedBy"] is None


def test_v1_api_keys_already_in_logs_read_as_live_admin_keys_of_every_environment():
    old = Event(t.API_KEY_ISSUED, "acme", "k1", {
        "keyId": "k1", "keyHash": "ab" * 32, "prefix": "ip_live_abcd", "name": "first"},
        schema_version=1)
    upgraded = codec.decode(codec.encode(old))
    assert upgraded.schema_version == 2
    assert upgraded.data["roles"] == ["admin"] and upgraded.data["live"] is True
    assert upgraded.data["environments"] == ["DEV", "QA", "PROD"]


def test_v1_promotions_already_in_logs_read_as_v2_without_a_state():
    old = Event(t.INTEGRATION_PROMOTED, "acme", "i2", {
        "id": "i", "fromEnvironment": "DEV", "toEnvironment": "QA", "promotedId": "i2",
        "promotedBy": None}, schema_version=1)
    upgraded = codec.decode(codec.encode(old))
    assert upgraded.schema_version == 2
    assert upgraded.data["state"] is None and upgraded.data["gate"] is None
    assert upgraded.data["connectorBindings"] == [] and upgraded.data["sourceVersion"] == 0


def test_v1_pauses_already_in_logs_read_as_a_users_pause():
    old = Event(t.INTEGRATION_PAUSED, "acme", "i", {"id": "i"}, schema_version=1)
    upgraded = codec.decode(codec.encode(old))
    assert upgraded.schema_version == 3
    assert upgraded.data == {"id": "i", "reason": "USER", "messageId": None, "code": None,
                             "message": None, "changedBy": None}


def test_a_v1_record_is_read_as_v2_with_the_new_field_defaulted(monkeypatch):
    old = codec.encode(Event(t.TENANT_CREATED, "acme", "acme", SAMPLES[t.TENANT_CREATED]))
    v2 = copy.deepcopy(schemas.EVENT_DATA_SCHEMAS[(t.TENANT_CREATED, 1)])
    v2["fields"].append({"name": "region", "type": "string", "default": "eu"})
    monkeypatch.setitem(schemas.EVENT_DATA_SCHEMAS, (t.TENANT_CREATED, 2), v2)
    monkeypatch.setitem(schemas.CURRENT_VERSION, t.TENANT_CREATED, 2)
    codec._data_schema.cache_clear()
    try:
        upgraded = codec.decode(old)
    finally:
        codec._data_schema.cache_clear()
    assert upgraded.schema_version == 2
    assert upgraded.data == {**SAMPLES[t.TENANT_CREATED], "region": "eu"}
