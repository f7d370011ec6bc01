"""Versioned Avro schemas: the envelope, and the data of each event type.

How a schema evolves: never edit a published version. Add a new version to
``EVENT_DATA_SCHEMAS`` whose new fields have defaults, and point ``CURRENT_VERSION`` at it.
Records keep the version they were written with; readers decode them with that writer
schema and Avro schema resolution upgrades them to the current one, so the log is never
rewritten.
"""

from __future__ import annotations

from typing import Any

from integrationos.topics import event_types as t

ENVELOPE_FORMAT_V1 = 1

ENVELOPE_V1: dict[str, Any] = {
    "type": "record",
    "name": "Envelope",
    "namespace": "io.integrationos.events.v1",
    "fields": [
        {"name": "eventId", "type": "string"},
        {"name": "type", "type": "string"},
        {"name": "schemaVersion", "type": "int"},
        {"name": "tenant", "type": "string"},
        {"name": "aggregateId", "type": "string"},
        {"name": "occurredAt", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "causationId", "type": ["null", "string"], "default": None},
        {"name": "correlationId", "type": ["null", "string"], "default": None},
        {"name": "traceparent", "type": ["null", "string"], "default": None},
        {"name": "data", "type": "bytes"},
    ],
}

_OPT_STR = ["null", "string"]

_SEALED_SECRET = {
    "type": "record",
    "name": "SealedSecret",
    "doc": "AES-256-GCM ciphertext of the connector's credentials (JSON), never plain text.",
    "fields": [
        {"name": "keyId", "type": "string"},
        {"name": "nonce", "type": "bytes"},
        {"name": "ciphertext", "type": "bytes"},
    ],
}


def _record(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "io.integrationos.data", "fields": fields}


def _f(name: str, type_: Any, default: Any = ...) -> dict[str, Any]:
    field: dict[str, Any] = {"name": name, "type": type_}
    if default is not ...:
        field["default"] = default
    return field


def _opt(name: str) -> dict[str, Any]:
    return _f(name, _OPT_STR, None)


_CONNECTOR_STATE = _record(
    "ConnectorState",
    [
        _f("id", "string"),
        _f("name", "string"),
        _f("connectorType", "string"),
        _f("configJson", "string"),
        _f("credentials", ["null", _SEALED_SECRET], None),
        _f("version", "int"),
    ],
)

_TRANSFORMATION_STATE = _record(
    "TransformationState",
    [
        _f("id", "string"),
        _f("name", "string"),
        _opt("sourceSchema"),
        _f("expression", "string"),
        _f("version", "int"),
    ],
)

_TRANSFORMATION_STATE_V2 = _record(
    "TransformationState",
    [*_TRANSFORMATION_STATE["fields"][:3], _opt("targetSchema"),
     *_TRANSFORMATION_STATE["fields"][3:]],
)

_INTEGRATION_STATE = _record(
    "IntegrationState",
    [
        _f("id", "string"),
        _f("name", "string"),
        _f("environment", "string"),
        _opt("sourceConnectorId"),
        _opt("targetConnectorId"),
        _opt("transformationId"),
        _opt("expression"),
        _f("errorStrategy", "string"),
        _f("version", "int"),
    ],
)


_INTEGRATION_STATE_V2 = _record(
    "IntegrationState",
    [*_INTEGRATION_STATE["fields"][:6],
     _f("transformationVersion", ["null", "int"], None),
     *_INTEGRATION_STATE["fields"][6:]],
)

_BACKOFF = {
    "type": "record",
    "name": "Backoff",
    "doc": "The integration's own delays between attempts; null: the platform defaults.",
    "fields": [
        {"name": "initialDelayMs", "type": "long"},
        {"name": "maxDelayMs", "type": "long"},
        {"name": "multiplier", "type": "double"},
    ],
}

_INTEGRATION_STATE_V3 = _record(
    "IntegrationState",
    [*_INTEGRATION_STATE_V2["fields"], _f("backoff", ["null", _BACKOFF], None)],
)

_INTEGRATION_PAUSED_V2 = _record(
    "IntegrationPaused",
    [_f("id", "string"),
     _f("reason", "string", "USER"),  # v1 records: every pause was a user's
     _opt("messageId"), _opt("code"), _opt("message")],
)

# v4 / v3 / v2: who changed it (the API credential id, ``worker`` for FAIL_FAST); null on
# older records, which history shows as unknown.
_INTEGRATION_STATE_V4 = _record(
    "IntegrationState", [*_INTEGRATION_STATE_V3["fields"], _opt("changedBy")])
_INTEGRATION_PAUSED_V3 = _record(
    "IntegrationPaused", [*_INTEGRATION_PAUSED_V2["fields"], _opt("changedBy")])
_INTEGRATION_CHANGE_V2 = {name: _record(name, [_f("id", "string"), _opt("changedBy")])
                          for name in ("IntegrationDeleted", "IntegrationResumed")}

_CONNECTOR_BINDING = {
    "type": "record",
    "name": "ConnectorBinding",
    "doc": "A connector of the source environment replaced by one of the target environment.",
    "fields": [
        {"name": "role", "type": "string"},
        {"name": "fromConnectorId", "type": "string"},
        {"name": "toConnectorId", "type": "string"},
    ],
}

_GATE_CASE = {
    "type": "record",
    "name": "GateCase",
    "fields": [
        {"name": "testCaseId", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "status", "type": "string"},
        {"name": "durationMs", "type": "double"},
    ],
}

_PROMOTION_GATE = {
    "type": "record",
    "name": "PromotionGate",
    "doc": "The saved test cases run on the promoted version (promotions to PROD).",
    "fields": [
        {"name": "status", "type": "string"},
        {"name": "cases", "type": {"type": "array", "items": _GATE_CASE}},
    ],
}

_INTEGRATION_PROMOTED_V1 = _record(
    "IntegrationPromoted",
    [_f("id", "string"), _f("fromEnvironment", "string"), _f("toEnvironment", "string"),
     _f("promotedId", "string"), _opt("promotedBy")],
)

# v2: the promoted integration's full new state travels in the event (one event creates or
# updates the target), with the versions, the lineage, the bindings and the gate's result.
_INTEGRATION_PROMOTED_V2 = _record(
    "IntegrationPromoted",
    [*_INTEGRATION_PROMOTED_V1["fields"],
     _f("sourceVersion", "int", 0),
     _f("targetVersion", "int", 0),
     _opt("lineageId"),
     _f("connectorBindings", {"type": "array", "items": _CONNECTOR_BINDING}, []),
     _f("gate", ["null", _PROMOTION_GATE], None),
     _f("state", ["null", _INTEGRATION_STATE_V3], None)],
)

_INTEGRATION_ROLLED_BACK = _record(
    "IntegrationRolledBack",
    [_f("id", "string"), _f("fromVersion", "int"), _f("restoredVersion", "int"),
     _opt("reason"), _opt("rolledBackBy"), _f("state", _INTEGRATION_STATE_V3)],
)

_LOOKUP_STATE = _record(
    "LookupState",
    [_f("id", "string"), _f("name", "string"), _f("lookupType", "string"),
     _f("configJson", "string"), _f("version", "int")],
)


_API_KEY_ISSUED_V1 = _record(
    "ApiKeyIssued",
    [_f("keyId", "string"), _f("keyHash", "string"), _f("prefix", "string"),
     _f("name", "string")],
)

# v2: what the key may do. v1 keys (every key before roles existed) read as what they were:
# live, admin, every environment.
_API_KEY_ISSUED_V2 = _record(
    "ApiKeyIssued",
    [*_API_KEY_ISSUED_V1["fields"],
     _f("roles", {"type": "array", "items": "string"}, ["admin"]),
     _f("environments", {"type": "array", "items": "string"}, ["DEV", "QA", "PROD"]),
     _f("live", "boolean", True)],
)


# Alert rules (config topic) carry their whole state; condition and channels are JSON
# checked by the API (api/alert_rules.py), the webhook signing secret is sealed like
# connector credentials.
_ALERT_RULE_STATE = _record(
    "AlertRuleState",
    [_f("id", "string"), _f("name", "string"), _f("severity", "string"),
     _f("enabled", "boolean"), _f("conditionJson", "string"), _f("channelsJson", "string"),
     _f("repeatIntervalSeconds", "long"), _f("secret", _SEALED_SECRET), _f("version", "int"),
     _opt("changedBy")],
)
_ALERT_FIRED = _record(
    "AlertFired",
    [_f("alertId", "string"), _f("ruleId", "string"), _f("ruleName", "string"),
     _f("severity", "string"), _f("conditionType", "string"), _opt("integrationId"),
     _opt("connectorId"), _f("value", ["null", "double"], None),
     _f("threshold", ["null", "double"], None), _f("summary", "string")],
)
_ALERT_RESOLVED = _record(
    "AlertResolved",
    [_f("alertId", "string"), _f("ruleId", "string"), _f("value", ["null", "double"], None),
     _f("summary", "string")],
)
_ALERT_NOTIFIED = _record(
    "AlertNotified",
    [_f("alertId", "string"), _f("ruleId", "string"), _f("kind", "string"),
     _f("channel", "string"), _f("outcome", "string"), _f("attempts", "int"), _opt("error")],
)


def _id_only(name: str) -> dict[str, Any]:
    return _record(name, [_f("id", "string")])


EVENT_DATA_SCHEMAS: dict[tuple[str, int], dict[str, Any]] = {
    (t.TENANT_CREATED, 1): _record(
        "TenantCreated", [_f("id", "string"), _f("name", "string"), _f("plan", "string")]
    ),
    (t.API_KEY_ISSUED, 1): _API_KEY_ISSUED_V1,
    (t.API_KEY_ISSUED, 2): _API_KEY_ISSUED_V2,
    (t.API_KEY_REVOKED, 1): _record("ApiKeyRevoked", [_f("keyId", "string")]),
    (t.TENANT_PLAN_CHANGED, 1): _record(
        "TenantPlanChanged",
        # Overrides: null keeps the plan's value, -1 is unlimited (integrationos/plans.py).
        [_f("id", "string"), _f("plan", "string"),
         _f("messagesPerMonth", ["null", "long"], None),
         _f("requestsPerMinute", ["null", "int"], None),
         _f("connectors", ["null", "int"], None),
         _f("retentionDays", ["null", "int"], None)],
    ),
    (t.CONNECTOR_CREATED, 1): _CONNECTOR_STATE,
    (t.CONNECTOR_UPDATED, 1): _CONNECTOR_STATE,
    (t.CONNECTOR_DELETED, 1): _id_only("ConnectorDeleted"),
    (t.TRANSFORMATION_CREATED, 1): _TRANSFORMATION_STATE,
    (t.TRANSFORMATION_UPDATED, 1): _TRANSFORMATION_STATE,
    (t.TRANSFORMATION_CREATED, 2): _TRANSFORMATION_STATE_V2,
    (t.TRANSFORMATION_UPDATED, 2): _TRANSFORMATION_STATE_V2,
    (t.TRANSFORMATION_DELETED, 1): _id_only("TransformationDeleted"),
    (t.INTEGRATION_CREATED, 1): _INTEGRATION_STATE,
    (t.INTEGRATION_UPDATED, 1): _INTEGRATION_STATE,
    (t.INTEGRATION_CREATED, 2): _INTEGRATION_STATE_V2,
    (t.INTEGRATION_UPDATED, 2): _INTEGRATION_STATE_V2,
    (t.INTEGRATION_CREATED, 3): _INTEGRATION_STATE_V3,
    (t.INTEGRATION_UPDATED, 3): _INTEGRATION_STATE_V3,
    (t.INTEGRATION_CREATED, 4): _INTEGRATION_STATE_V4,
    (t.INTEGRATION_UPDATED, 4): _INTEGRATION_STATE_V4,
    (t.INTEGRATION_DELETED, 1): _id_only("IntegrationDeleted"),
    (t.INTEGRATION_DELETED, 2): _INTEGRATION_CHANGE_V2["IntegrationDeleted"],
    (t.INTEGRATION_PAUSED, 1): _id_only("IntegrationPaused"),
    (t.INTEGRATION_PAUSED, 2): _INTEGRATION_PAUSED_V2,
    (t.INTEGRATION_PAUSED, 3): _INTEGRATION_PAUSED_V3,
    (t.INTEGRATION_RESUMED, 1): _id_only("IntegrationResumed"),
    (t.INTEGRATION_RESUMED, 2): _INTEGRATION_CHANGE_V2["IntegrationResumed"],
    (t.INTEGRATION_PROMOTED, 1): _INTEGRATION_PROMOTED_V1,
    (t.INTEGRATION_PROMOTED, 2): _INTEGRATION_PROMOTED_V2,
    (t.INTEGRATION_ROLLED_BACK, 1): _INTEGRATION_ROLLED_BACK,
    (t.INTEGRATION_TEST_CASE_SAVED, 1): _record(
        "IntegrationTestCaseSaved",
        [_f("id", "string"), _f("testCaseId", "string"), _f("name", "string"),
         _f("payloadJson", "string"), _f("expectedJson", "string"), _f("match", "string"),
         _opt("savedBy")],
    ),
    (t.INTEGRATION_TEST_CASE_DELETED, 1): _record(
        "IntegrationTestCaseDeleted", [_f("id", "string"), _f("testCaseId", "string"),
                                       _opt("deletedBy")],
    ),
    (t.MESSAGE_RECEIVED, 1): _record(
        "MessageReceived",
        [_f("messageId", "string"), _opt("integrationId"), _opt("key"),
         _f("payloadJson", "string"), _f("source", "string")],
    ),
    (t.MESSAGE_RECEIVED, 2): _record(
        "MessageReceived",
        [_f("messageId", "string"), _opt("integrationId"), _opt("key"),
         _f("payloadJson", "string"), _f("source", "string"),
         _f("contentType", "string", "application/json")],
    ),
    (t.SOURCE_CHECKPOINTED, 1): _record(
        "SourceCheckpointed",
        [_f("integrationId", "string"), _f("connectorId", "string"),
         _f("checkpoint", "string")],
    ),
    (t.MESSAGE_TRANSFORMED, 1): _record(
        "MessageTransformed",
        [_f("messageId", "string"), _f("integrationId", "string"), _f("outputJson", "string"),
         _f("durationUs", "long")],
    ),
    (t.MESSAGE_DELIVERED, 1): _record(
        "MessageDelivered",
        [_f("messageId", "string"), _f("integrationId", "string"), _f("attempt", "int"),
         _f("target", "string"), _f("detail", "string")],
    ),
    (t.MESSAGE_FAILED, 1): _record(
        "MessageFailed",
        [_f("messageId", "string"), _opt("integrationId"), _f("attempt", "int"),
         _f("stage", "string"), _f("errorClass", "string"), _f("code", "string"),
         _f("message", "string")],
    ),
    (t.MESSAGE_DEAD_LETTERED, 1): _record(
        "MessageDeadLettered",
        [_f("messageId", "string"), _opt("integrationId"), _f("stage", "string"),
         _f("code", "string"), _f("message", "string"), _f("dlqTopic", "string")],
    ),
    (t.MESSAGE_DISCARDED, 1): _record(
        "MessageDiscarded",
        [_f("messageId", "string"), _opt("integrationId"), _f("reason", "string")],
    ),
    (t.MESSAGE_REPLAY_REQUESTED, 1): _record(
        "MessageReplayRequested",
        [_f("replayId", "string"), _f("kind", "string"), _opt("integrationId"),
         _f("messageIds", {"type": "array", "items": "string"}, []), _opt("filterJson"),
         _opt("payloadJson"), _opt("contentType"), _opt("fromJson"),
         _f("requestedAt", "long"), _opt("requestedBy")],
    ),
    (t.MESSAGE_REPLAYED, 1): _record(
        "MessageReplayed",
        [_f("messageId", "string"), _opt("integrationId"), _f("replayId", "string"),
         _opt("payloadJson")],
    ),
    (t.REPLAY_PROGRESSED, 1): _record(
        "ReplayProgressed",
        [_f("replayId", "string"), _f("total", "long"), _f("sent", "long"),
         _f("skipped", "long")],
    ),
    (t.REPLAY_BARRIER, 1): _record("ReplayBarrier", [_f("replayId", "string")]),
    (t.REPLAY_COMPLETED, 1): _record(
        "ReplayCompleted",
        [_f("replayId", "string"), _f("status", "string"), _f("total", "long"),
         _f("sent", "long"), _f("skipped", "long"), _opt("error")],
    ),
    (t.MESSAGE_PARKED, 1): _record(
        "MessageParked",
        [_f("messageId", "string"), _opt("integrationId"), _f("reason", "string"),
         _f("code", "string"), _f("message", "string")],
    ),
    (t.SCHEMA_VERSION_ADDED, 1): _record(
        "SchemaVersionAdded",
        [_f("id", "string"), _f("name", "string"), _f("format", "string"),
         _f("version", "int"), _f("definition", "string"), _f("compatibility", "string")],
    ),
    (t.SCHEMA_VERSION_ADDED, 2): _record(
        "SchemaVersionAdded",
        [_f("id", "string"), _f("name", "string"), _f("format", "string"),
         _f("version", "int"), _f("definition", "string"), _f("compatibility", "string"),
         _opt("examplesJson")],
    ),
    (t.SCHEMA_DELETED, 1): _id_only("SchemaDeleted"),
    (t.LOOKUP_CREATED, 1): _LOOKUP_STATE,
    (t.LOOKUP_UPDATED, 1): _LOOKUP_STATE,
    (t.LOOKUP_ROWS_REPLACED, 1): _record(
        "LookupRowsReplaced",
        [_f("id", "string"), _f("rowsVersion", "int"), _f("rowsJson", "string")],
    ),
    (t.LOOKUP_DELETED, 1): _id_only("LookupDeleted"),
    (t.ENVIRONMENT_VARIABLE_SET, 1): _record(
        "EnvironmentVariableSet",
        [_f("environment", "string"), _f("name", "string"), _f("value", "string")],
    ),
    (t.ENVIRONMENT_VARIABLE_DELETED, 1): _record(
        "EnvironmentVariableDeleted", [_f("environment", "string"), _f("name", "string")]
    ),
    (t.ALERT_RULE_CREATED, 1): _ALERT_RULE_STATE,
    (t.ALERT_RULE_UPDATED, 1): _ALERT_RULE_STATE,
    (t.ALERT_RULE_DELETED, 1): _record("AlertRuleDeleted", [_f("id", "string"),
                                                            _opt("changedBy")]),
    (t.ALERT_FIRED, 1): _ALERT_FIRED,
    (t.ALERT_RESOLVED, 1): _ALERT_RESOLVED,
    (t.ALERT_NOTIFIED, 1): _ALERT_NOTIFIED,
}

CURRENT_VERSION: dict[str, int] = {}
for _name, _version in EVENT_DATA_SCHEMAS:
    CURRENT_VERSION[_name] = max(_version, CURRENT_VERSION.get(_name, 0))
