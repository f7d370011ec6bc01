"""JSON Schemas of every request body (enforced by ``validation``) and response body
(documented in the OpenAPI document, and checked against real responses by the tests).

One definition serves both purposes, so the reference can never disagree with the server.
"""

from __future__ import annotations

from typing import Any

from integrationos.engine.error_strategy import (
    DEFAULT_BACKOFF,
    MAX_DELAY_MS,
    MAX_MULTIPLIER,
    MIN_DELAY_MS,
    MIN_MULTIPLIER,
)

Schema = dict[str, Any]

ERROR_STRATEGY_PATTERN = r"^(RETRY_([1-9]|10)(_DLQ)?|DLQ|FAIL_FAST)$"
ENVIRONMENTS = ["DEV", "QA", "PROD"]


def _object(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema | extra


def _nullable(schema: Schema) -> Schema:
    message = schema.get("x-message") or f"must be of type {schema['type']}"
    return {"anyOf": [schema, {"type": "null"}], "x-message": f"{message}, or null"}


NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": "^[^\\u0000-\\u001f]+$",
    "description": "Unique per tenant (per environment for integrations).",
}
EXPRESSION: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 65536,
    "pattern": "^[^\\u0000]*$",
    "description": "JSONata expression; compiled when saved (syntax errors are 422).",
}
SOURCE_SCHEMA: Schema = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 200},
        {"type": "object"},
    ],
    "x-message": "must be a schema name (string) or an inline JSON Schema (object)",
    "description": "A schema name, stored as given, or an inline JSON Schema that every "
    "payload is validated against before it is transformed.",
}
CONNECTOR_REF: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "description": "A connector id or the name of a connector of the same tenant.",
}
ERROR_STRATEGY: Schema = {
    "type": "string",
    "pattern": ERROR_STRATEGY_PATTERN,
    "x-message": "must be RETRY_<n>_DLQ, RETRY_<n> (1 <= n <= 10), DLQ or FAIL_FAST",
    "default": "RETRY_3_DLQ",
}
_DELAY_MS: Schema = {"type": "integer", "minimum": MIN_DELAY_MS, "maximum": MAX_DELAY_MS,
                     "x-message": f"must be an integer of {MIN_DELAY_MS}..{MAX_DELAY_MS} "
                     "(milliseconds)"}
BACKOFF: Schema = _object(
    {
        "initialDelayMs": _DELAY_MS | {"default": DEFAULT_BACKOFF.initial_ms,
                                       "description": "Delay before the second attempt."},
        "maxDelayMs": _DELAY_MS | {"default": DEFAULT_BACKOFF.max_ms,
                                   "description": "No delay is longer (a target's Retry-After "
                                   "may be, up to one hour). At least initialDelayMs."},
        "multiplier": {"type": "number", "minimum": MIN_MULTIPLIER,
                       "maximum": MAX_MULTIPLIER, "default": DEFAULT_BACKOFF.multiplier,
                       "x-message": f"must be a number of {MIN_MULTIPLIER:g}..{MAX_MULTIPLIER:g}",
                       "description": "Each delay is the previous one times this."},
    },
    # Not anyOf with null: a bad field inside must be reported at its own pointer.
    type=["object", "null"],
    description="Delays between attempts: initialDelayMs * multiplier^(attempt - 2), at most "
    "maxDelayMs, ±20 % jitter. Omitted fields take these defaults; null (or no backoff): the "
    "platform defaults.",
)
ENVIRONMENT: Schema = {"type": "string", "enum": ENVIRONMENTS, "default": "DEV"}
RESOURCE_ID: Schema = {"type": "string", "minLength": 1, "maxLength": 64}

CONNECTOR_CREATE = _object(
    {
        "name": NAME,
        "type": {"type": "string", "minLength": 1, "maxLength": 40,
                 "description": "A connector type (GET /v1/connector-types), any case."},
        "config": {"type": "object", "description": "Checked against the type's config spec."},
        "credentials": {"type": "object",
                        "description": "Sealed at rest; never returned (masked)."},
    },
    required=("name", "type"),
)
CONNECTOR_UPDATE = _object(
    {
        "name": NAME,
        "config": {"type": "object", "description": "Replaces the whole config."},
        "credentials": _nullable({"type": "object"})
        | {"description": "Replaces the credentials; null removes them."},
    },
    minProperties=1,
)
TRANSFORMATION_CREATE = _object(
    {"name": NAME, "sourceSchema": SOURCE_SCHEMA, "targetSchema": SOURCE_SCHEMA,
     "expression": EXPRESSION},
    required=("name", "expression"),
)
TRANSFORMATION_UPDATE = _object(
    {"name": NAME, "sourceSchema": _nullable(SOURCE_SCHEMA),
     "targetSchema": _nullable(SOURCE_SCHEMA), "expression": EXPRESSION},
    minProperties=1,
)
TRANSFORMATION_VERSION = {"type": "integer", "minimum": 1, "maximum": 2_147_483_647}
INTEGRATION_CREATE = _object(
    {
        "name": NAME,
        "environment": ENVIRONMENT,
        "sourceConnectorId": CONNECTOR_REF,
        "targetConnectorId": CONNECTOR_REF,
        "transformationId": RESOURCE_ID,
        "transformationVersion": TRANSFORMATION_VERSION,
        "expression": EXPRESSION,
        "errorStrategy": ERROR_STRATEGY,
        "backoff": BACKOFF,
    },
    required=("name",),
)
INTEGRATION_UPDATE = _object(
    {
        "name": NAME,
        "sourceConnectorId": _nullable(CONNECTOR_REF),
        "targetConnectorId": _nullable(CONNECTOR_REF),
        "transformationId": _nullable(RESOURCE_ID),
        "transformationVersion": TRANSFORMATION_VERSION,
        "expression": _nullable(EXPRESSION),
        "errorStrategy": ERROR_STRATEGY,
        "backoff": BACKOFF | {"description": "Replaces the whole backoff (omitted fields take "
                              "the defaults); null: the platform defaults."},
    },
    minProperties=1,
)
FLOW_CREATE = _object(
    {
        "source": CONNECTOR_REF | {"description": "Connector id, name, or type (e.g. sftp) "
                                   "when the tenant has exactly one connector of it."},
        "target": CONNECTOR_REF | {"description": "As source."},
        "name": NAME,
        "expression": EXPRESSION,
        "transformationId": RESOURCE_ID,
        "environment": ENVIRONMENT,
        "errorStrategy": ERROR_STRATEGY,
        "backoff": BACKOFF,
    },
    required=("source", "target"),
)
TRANSFORMATION_PREVIEW = _object(
    {
        "expression": {"type": "string", "maxLength": 100_000},
        "payload": {"description": "Any JSON value; a string of XML when sourceSchema is an "
                    "XSD."},
        "bindings": {"type": "object", "description": "Extra $variables (JSON values)."},
        "sourceSchema": SOURCE_SCHEMA,
        "targetSchema": SOURCE_SCHEMA,
        "environment": ENVIRONMENT,
    },
    required=("expression",),
)
SANDBOX_EXECUTE = _object(
    {"integrationId": RESOURCE_ID, "payload": {"description": "Any JSON value."}},
    required=("integrationId", "payload"),
)
LOOKUP_TYPES = ["STATIC", "HTTP", "DB"]
LOOKUP_ROWS: Schema = {
    "type": "object",
    "description": "Key -> value (any JSON). Up to 50,000 keys of 1 to 400 characters and "
    "4 MiB as JSON; replaces every row, as a new rows version.",
}
LOOKUP_CREATE = _object(
    {
        "name": NAME | {"description": "Unique per tenant; what $lookup(name, key) names."},
        "type": {"type": "string", "enum": LOOKUP_TYPES},
        "config": {"type": "object", "description": "Checked against the type: see "
                   "docs/lookups.md (STATIC takes none)."},
        "rows": LOOKUP_ROWS,
    },
    required=("name", "type"),
)
LOOKUP_UPDATE = _object(
    {"name": NAME, "config": {"type": "object", "description": "Replaces the whole config."}},
    minProperties=1,
)
VARIABLE_SET = _object(
    {"value": {"type": "string", "maxLength": 4096, "pattern": "^[^\\u0000]*$",
               "description": "What $env(name) returns. Not secret: use connector "
               "credentials for secrets."}},
    required=("value",),
)

SCHEMA_FORMATS = ["JSON_SCHEMA", "XSD"]
SCHEMA_DEFINITION: Schema = {
    "type": ["object", "string"],
    "description": "An object for JSON_SCHEMA (2020-12, or draft-07 by $schema), a string of "
    "XML for XSD; at most 256 KiB. Only references inside the definition are followed.",
}
SCHEMA_EXAMPLES: Schema = {
    "type": "array", "maxItems": 20,
    "description": "Documents (JSON values; strings of XML for XSD) the previous version "
    "accepted (for a first version: this one): every one must be accepted.",
}
SCHEMA_CREATE = _object(
    {
        "name": NAME | {"pattern": "^[^\\u0000-\\u001f@]+$", "description": "Unique per "
                        "tenant; no '@' (a reference name@3 pins version 3)."},
        "format": {"type": "string", "enum": SCHEMA_FORMATS},
        "definition": SCHEMA_DEFINITION,
        "compatibility": {"type": "string", "enum": ["BACKWARD", "NONE"], "default": "BACKWARD",
                          "description": "BACKWARD: a new version must accept what the "
                          "previous one accepted, as far as can be checked."},
        "examples": SCHEMA_EXAMPLES,
    },
    required=("name", "format", "definition"),
)
SCHEMA_VERSION_CREATE = _object(
    {"definition": SCHEMA_DEFINITION, "examples": SCHEMA_EXAMPLES}, required=("definition",))
SCHEMA_VALIDATE = _object(
    {
        "document": {"description": "A JSON value, or a string of XML for an XSD; with "
                     "contentType, the payload's text."},
        "contentType": {"type": "string", "minLength": 1, "maxLength": 100,
                        "description": "Decode document as the pipeline would: "
                        "application/json, application/xml, text/csv, text/x-fixed-width."},
    },
    required=("document",),
)
DLQ_DISCARD = _object(
    {
        "messageIds": {"type": "array", "minItems": 1, "maxItems": 100, "uniqueItems": True,
                       "items": {"type": "string", "minLength": 1, "maxLength": 64}},
        "reason": {"type": "string", "minLength": 1, "maxLength": 2000,
                   "description": "Why the messages are given up; kept in their history."},
    },
    required=("messageIds", "reason"),
)

_TIME_TEXT = {"type": "string", "minLength": 1, "maxLength": 64,
              "description": "ISO-8601 time; UTC when it has no offset."}
DLQ_REPLAY = _object(
    {
        "messageIds": {"type": "array", "minItems": 1, "maxItems": 1000, "uniqueItems": True,
                       "items": {"type": "string", "minLength": 1, "maxLength": 64},
                       "description": "These dead-lettered messages (all must be in the DLQ)."},
        "filter": _object(
            {
                "integrationId": {"type": "string", "minLength": 1, "maxLength": 40},
                "code": {"type": "string", "minLength": 1, "maxLength": 60},
                "q": {"type": "string", "minLength": 1, "maxLength": 200},
                "from": _TIME_TEXT,
                "to": _TIME_TEXT,
            },
            description="Every message GET /v1/dlq lists with the same filters when the "
            "replay is requested.",
        ),
        "payload": {"description": "With exactly one messageId: send this payload instead "
                    "of the original (a string for XML, CSV and other text)."},
    },
)
STREAM_REPLAY = _object(
    {
        "from": {
            "oneOf": [
                _TIME_TEXT,
                _object({"offsets": {
                    "type": "object", "minProperties": 1, "maxProperties": 1000,
                    "propertyNames": {"pattern": "^[0-9]{1,4}$"},
                    "additionalProperties": {"type": "integer", "minimum": 0},
                    "description": "Ingest-topic partition -> first offset; partitions not "
                    "named start at their beginning."}}, required=("offsets",)),
            ],
        },
        "to": _TIME_TEXT,
    },
    required=("from",),
)

ROLE_NAMES = ["admin", "developer", "operator", "viewer"]
API_KEY_CREATE = _object(
    {
        "name": NAME,
        "roles": {"type": "array", "items": {"type": "string", "enum": ROLE_NAMES},
                  "minItems": 1, "uniqueItems": True},
        "environments": {"type": "array", "items": {"type": "string", "enum": ENVIRONMENTS},
                         "minItems": 1, "uniqueItems": True,
                         "description": "Where the key may act (default: all)."},
        "live": {"type": "boolean", "description": "ip_live_ (default) or ip_test_ key."},
    },
    required=("name", "roles"),
)
INTEGRATION_PROMOTE = _object(
    {
        "from": {"type": "string", "enum": ENVIRONMENTS[:2],
                 "description": "The stage whose version is promoted: DEV or QA."},
        "to": {"type": "string", "enum": ENVIRONMENTS[1:],
               "description": "The next stage: QA after DEV, PROD after QA (never skipped)."},
        "version": TRANSFORMATION_VERSION | {"description": "The version of the from-stage "
                                             "integration to promote (default: its current "
                                             "one)."},
        "connectorBindings": {
            "type": "object", "maxProperties": 20,
            "propertyNames": {"minLength": 1, "maxLength": 64},
            "additionalProperties": CONNECTOR_REF,
            "description": "From-stage connector id -> the to-stage connector (id or name) "
            "that replaces it. Remembered for the next promotion to the same stage; every "
            "connector the version uses needs one, given here or remembered.",
        },
    },
    required=("from", "to"),
)
INTEGRATION_ROLLBACK = _object(
    {"reason": {"type": "string", "minLength": 1, "maxLength": 2000,
                "pattern": "^[^\\u0000]*$", "description": "Kept in the history."}},
)
TEST_CASE_CREATE = _object(
    {
        "name": NAME | {"description": "Unique among the integration's test cases."},
        "payload": {"description": "The input, any JSON value (a string of XML for an XSD "
                    "source schema)."},
        "expected": {"description": "The output the flow must produce."},
        "match": {"type": "string", "enum": ["SUBSET", "EXACT"], "default": "SUBSET",
                  "description": "SUBSET: every field of expected is in the output with a "
                  "matching value (extra fields allowed; arrays match item by item); EXACT: "
                  "equal JSON."},
    },
    required=("name", "payload", "expected"),
)

ALERT_CONDITION_TYPES = ["DLQ_DEPTH", "ERROR_RATE", "NO_TRAFFIC", "CONNECTOR_DOWN", "QUOTA"]
ALERT_SEVERITIES = ["info", "warning", "critical"]
# Fields each condition type requires, and those it may have besides (api/routes/alerts.py
# refuses the fields of other types).
ALERT_CONDITION_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "DLQ_DEPTH": (("threshold",), ("integrationId",)),
    "ERROR_RATE": (("thresholdPercent", "windowSeconds"), ("integrationId", "minMessages")),
    "NO_TRAFFIC": (("integrationId", "silenceSeconds"), ()),
    "CONNECTOR_DOWN": (("connectorId",), ()),
    "QUOTA": (("thresholdPercent",), ()),
}
_ID_REF: Schema = {"type": "string", "minLength": 1, "maxLength": 40}


def _int_range(low: int, high: int, unit: str = "") -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high,
            "x-message": f"must be an integer of {low}..{high}{unit}"}


ALERT_CONDITION = _object(
    {
        "type": {"type": "string", "enum": ALERT_CONDITION_TYPES},
        "integrationId": _ID_REF | {"description": "DLQ_DEPTH, ERROR_RATE (optional: the "
                                    "whole tenant without it), NO_TRAFFIC (required)."},
        "connectorId": _ID_REF | {"description": "CONNECTOR_DOWN: the connector probed."},
        "threshold": _int_range(0, 1_000_000_000) | {
            "description": "DLQ_DEPTH: fires when more dead letters than this wait."},
        "thresholdPercent": {"type": "number", "minimum": 0, "maximum": 100,
                             "x-message": "must be a number of 0..100",
                             "description": "ERROR_RATE: fires above it; QUOTA: fires at "
                             "it (e.g. 80 or 100)."},
        "windowSeconds": _int_range(10, 86_400, " (seconds)") | {
            "description": "ERROR_RATE: the messages received this far back."},
        "minMessages": _int_range(1, 1_000_000) | {
            "default": 10, "description": "ERROR_RATE: finished messages needed before the "
            "rate counts, so one failure of one message does not page."},
        "silenceSeconds": _int_range(5, 604_800, " (seconds)") | {
            "description": "NO_TRAFFIC: fires after this long without a message."},
    },
    ("type",),
    description="What to watch; the fields each type takes are in docs/alerts.md.",
)
ALERT_CHANNEL = _object(
    {
        "type": {"type": "string", "enum": ["email", "webhook"]},
        "connectorId": _ID_REF | {"description": "email: an SMTP connector of the tenant "
                                  "(its server, credentials and sender are used)."},
        "recipients": {"type": "array", "minItems": 1, "maxItems": 20, "items": {
            "type": "string", "maxLength": 254, "pattern": "^[^@\\s<>,;\"]+@[^@\\s<>,;\"]+$",
            "x-message": "must be an email address"}},
        "url": {"type": "string", "maxLength": 2000, "pattern": "^https?://[^\\s]+$",
                "x-message": "must be an http(s) URL",
                "description": "webhook: POSTed to, signed (X-Timestamp, X-Signature)."},
    },
    ("type",),
)
_ALERT_RULE_FIELDS: dict[str, Schema] = {
    "name": NAME,
    "severity": {"type": "string", "enum": ALERT_SEVERITIES, "default": "warning"},
    "enabled": {"type": "boolean", "default": True},
    "condition": ALERT_CONDITION,
    "channels": {"type": "array", "maxItems": 10, "items": ALERT_CHANNEL, "default": []},
    "repeatIntervalSeconds": _int_range(5, 604_800, " (seconds)") | {
        "default": 3600, "description": "While an alert keeps firing, notify again after "
        "this long."},
}
ALERT_RULE_CREATE = _object(_ALERT_RULE_FIELDS, ("name", "condition"))
ALERT_RULE_UPDATE = _object(_ALERT_RULE_FIELDS, minProperties=1)

REQUEST_SCHEMAS: dict[str, Schema] = {
    "ConnectorCreate": CONNECTOR_CREATE,
    "ConnectorUpdate": CONNECTOR_UPDATE,
    "TransformationCreate": TRANSFORMATION_CREATE,
    "TransformationUpdate": TRANSFORMATION_UPDATE,
    "IntegrationCreate": INTEGRATION_CREATE,
    "IntegrationUpdate": INTEGRATION_UPDATE,
    "FlowCreate": FLOW_CREATE,
    "SandboxExecute": SANDBOX_EXECUTE,
    "TransformationPreview": TRANSFORMATION_PREVIEW,
    "MessagePayload": {"description": "Any JSON value: the message payload itself."},
    "SchemaCreate": SCHEMA_CREATE,
    "SchemaVersionCreate": SCHEMA_VERSION_CREATE,
    "SchemaValidate": SCHEMA_VALIDATE,
    "LookupCreate": LOOKUP_CREATE,
    "LookupUpdate": LOOKUP_UPDATE,
    "LookupRowsUpload": LOOKUP_ROWS | {"description": "A JSON object key -> value, or text/csv "
                                       "with a header row key,value or key,<col>,...; "
                                       + LOOKUP_ROWS["description"]},
    "EnvironmentVariableSet": VARIABLE_SET,
    "DlqDiscard": DLQ_DISCARD,
    "DlqReplay": DLQ_REPLAY,
    "StreamReplay": STREAM_REPLAY,
    "ApiKeyCreate": API_KEY_CREATE,
    "IntegrationPromote": INTEGRATION_PROMOTE,
    "IntegrationRollback": INTEGRATION_ROLLBACK,
    "TestCaseCreate": TEST_CASE_CREATE,
    "AlertRuleCreate": ALERT_RULE_CREATE,
    "AlertRuleUpdate": ALERT_RULE_UPDATE,
}

# Responses: documented as closed objects so the tests catch an undocumented field.
_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_OPT_INT = {"type": ["integer", "null"], "description": "null: unlimited"}
_TIME = {"type": "string", "format": "date-time"}
_AUDIT = {"version": _INT, "createdAt": _TIME, "updatedAt": _TIME}


def _closed(properties: dict[str, Schema]) -> Schema:
    return _object(properties, required=tuple(properties))


def _list_of(item: str) -> Schema:
    return _closed({
        "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
        "nextCursor": _OPT_STR | {"description": "Pass as ?cursor= for the next page."},
    })


_ERROR_ENTRY = {"type": "object", "description": "stage, code, message, position or pointer"}

RESPONSE_SCHEMAS: dict[str, Schema] = {
    "Error": _closed({
        "error": _closed({
            "code": _STR,
            "message": _STR,
            "details": {"type": "array", "items": {"type": "object"},
                        "description": "e.g. [{field, message}] for VALIDATION_FAILED"},
        })
    }),
    "Connector": _closed({
        "id": _STR, "name": _STR, "type": _STR, "config": {"type": "object"},
        "credentials": {"type": ["object", "null"],
                        "description": "Masked: the field names, never the values."},
        "hasCredentials": {"type": "boolean"}, **_AUDIT,
    }),
    "ConnectorList": _list_of("Connector"),
    "ConnectorTestResult": _closed({
        "status": {"type": "string", "enum": ["UP", "DOWN"]},
        "latencyMs": _INT,
        "detail": _STR,
    }),
    "ConnectorType": {"type": "object", "description": "The registry's description of a type: "
                      "its name, roles and config/credentials specs (JSON Schema)."},
    "ConnectorTypeList": _closed({
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/ConnectorType"}},
    }),
    "Transformation": _closed({
        "id": _STR, "name": _STR,
        "sourceSchema": {"type": ["string", "object", "null"]},
        "targetSchema": {"type": ["string", "object", "null"]},
        "expression": _STR, **_AUDIT,
    }),
    "TransformationList": _list_of("Transformation"),
    "TransformationVersion": _closed({
        "transformationId": _STR, "version": {"type": "integer"},
        "sourceSchema": {"type": ["string", "object", "null"]},
        "targetSchema": {"type": ["string", "object", "null"]},
        "expression": _STR, "createdAt": _TIME,
    }),
    "TransformationVersionList": _closed({
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/TransformationVersion"}},
    }),
    "Integration": _closed({
        "id": _STR, "name": _STR,
        "environment": {"type": "string", "enum": ENVIRONMENTS},
        "status": {"type": "string", "enum": ["ACTIVE", "PAUSED"]},
        "sourceConnectorId": _OPT_STR, "targetConnectorId": _OPT_STR,
        "transformationId": _OPT_STR,
        "transformationVersion": {"type": ["integer", "null"]}, "expression": _OPT_STR,
        "errorStrategy": _STR,
        "backoff": {"anyOf": [_closed({"initialDelayMs": _INT, "maxDelayMs": _INT,
                                       "multiplier": {"type": "number"}}), {"type": "null"}],
                    "description": "The integration's own; null: the platform defaults "
                    "(1000, 300000, 2)."},
        **_AUDIT,
    }),
    "IntegrationList": _list_of("Integration"),
    "IntegrationVersion": _closed({
        "integrationId": _STR, "version": _INT, "name": _STR,
        "environment": {"type": "string", "enum": ENVIRONMENTS},
        "sourceConnectorId": _OPT_STR, "targetConnectorId": _OPT_STR,
        "transformationId": _OPT_STR, "transformationVersion": {"type": ["integer", "null"]},
        "expression": _OPT_STR, "errorStrategy": _STR,
        "backoff": {"type": ["object", "null"]},
        "origin": {"type": "string", "enum": ["CREATED", "UPDATED", "PROMOTED",
                                              "ROLLED_BACK"]},
        "promotedFrom": {"anyOf": [_closed({"integrationId": _STR, "version": _INT}),
                                   {"type": "null"}],
                         "description": "The version of the stage before this was copied "
                         "from."},
        "restoredVersion": {"type": ["integer", "null"],
                            "description": "ROLLED_BACK: the version whose definition this is."},
        "createdBy": _OPT_STR, "createdAt": _TIME,
    }),
    "IntegrationVersionList": _list_of("IntegrationVersion"),
    "Promotion": _closed({
        "fromEnvironment": {"type": "string", "enum": ENVIRONMENTS},
        "toEnvironment": {"type": "string", "enum": ENVIRONMENTS},
        "source": _closed({"integrationId": _STR, "version": _INT}),
        "target": _closed({"integrationId": _STR, "version": _INT}),
        "created": {"type": "boolean",
                    "description": "This promotion created the target stage's integration."},
        "connectorBindings": {"type": "array", "items": _closed({
            "role": {"type": "string", "enum": ["source", "target"]},
            "fromConnectorId": _STR, "toConnectorId": _STR})},
        "gate": {"anyOf": [_closed({
            "status": {"type": "string", "enum": ["PASSED"]},
            "cases": {"type": "array", "items": _closed({
                "testCaseId": _STR, "name": _STR,
                "status": {"type": "string", "enum": ["PASSED"]},
                "durationMs": {"type": "number"}})},
        }), {"type": "null"}], "description": "null: no gate (not PROD, or no test cases)."},
        "promotedBy": _STR, "promotedAt": _TIME,
    }),
    "ConnectorBindingList": _closed({
        "lineageId": _STR,
        "data": {"type": "array", "items": _closed({
            "environment": {"type": "string", "enum": ENVIRONMENTS},
            "fromConnectorId": _STR, "toConnectorId": _STR, "updatedAt": _TIME})},
    }),
    "TestCase": _closed({
        "id": _STR, "name": _STR, "payload": {}, "expected": {},
        "match": {"type": "string", "enum": ["SUBSET", "EXACT"]},
        "createdBy": _OPT_STR, "createdAt": _TIME,
    }),
    "TestCaseList": _closed({
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/TestCase"}},
    }),
    "IntegrationHistory": _list_of("IntegrationHistoryEntry"),
    "IntegrationHistoryEntry": _closed({
        "eventId": _STR,
        "type": {"type": "string", "enum": [
            "integration.created", "integration.updated", "integration.deleted",
            "integration.paused", "integration.resumed", "integration.promoted",
            "integration.rolled_back"]},
        "occurredAt": _TIME,
        "by": _OPT_STR | {"description": "Who: the credential or API key prefix (null where "
                          "the event does not record it: FAIL_FAST pauses, older events)."},
        "version": {"type": ["integer", "null"],
                    "description": "The integration's version the event made or promoted."},
        "details": {"type": "object", "description": "By type: created/updated {name, "
                    "environment}; paused {reason, messageId, code, message}; promoted "
                    "{fromEnvironment, toEnvironment, source, target, connectorBindings, "
                    "gate}; rolled_back {fromVersion, restoredVersion, reason}."},
    }),
    "IntegrationStatus": _closed({
        "integrationId": _STR, "received": _INT, "transformed": _INT, "delivered": _INT,
        "failed": _INT, "deadLettered": _INT, "discarded": _INT,
        "parked": _INT | {"description": "Held while the integration is paused (sent again "
                          "when it is resumed) or the tenant is over its monthly quota (sent "
                          "again when the quota allows)."},
        "total": _INT,
        "status": {"type": "string", "enum": ["ACTIVE", "PAUSED"]},
        "pausedReason": {"anyOf": [_closed({
            "reason": {"type": "string", "enum": ["USER", "FAIL_FAST"]},
            "messageId": _OPT_STR | {"description": "FAIL_FAST: the message that failed."},
            "code": _OPT_STR, "message": _OPT_STR, "at": _TIME,
        }), {"type": "null"}], "description": "Why the integration is paused; null while "
            "ACTIVE."},
    }),
    "PreviewResult": _closed({
        "result": {"description": "The expression's output (null when undefined or failed)."},
        "durationMs": {"type": "number"},
        "errors": {"type": "array", "items": _ERROR_ENTRY},
        "validation": _closed({
            "source": {"type": "object", "description": "status OK|FAILED|SKIPPED, errors, "
                       "detail"},
            "target": {"type": "object", "description": "status OK|FAILED|SKIPPED, errors, "
                       "detail"},
        }),
    }),
    "SandboxResult": _closed({
        "status": {"type": "string", "enum": ["SUCCESS", "FAILED"]},
        "durationMs": {"type": "number"},
        "outputPayload": {"description": "The transformed payload (null when FAILED)."},
        "errors": {"type": "array", "items": _ERROR_ENTRY},
        "steps": {"type": "array", "items": _object({
            "name": {"type": "string", "enum": ["validate", "transform", "validateOutput"]},
            "status": {"type": "string", "enum": ["OK", "FAILED", "SKIPPED"]},
            "durationMs": {"type": "number"},
            "errors": {"type": "array", "items": _ERROR_ENTRY},
            "detail": {"type": "string", "description": "Why a step was skipped, if it says."},
        }, required=("name", "status", "durationMs", "errors"))},
    }),
    "Lookup": _closed({
        "id": _STR, "name": _STR, "type": {"type": "string", "enum": LOOKUP_TYPES},
        "config": {"type": "object"},
        "rowsVersion": {"type": ["integer", "null"],
                        "description": "The current rows version of a STATIC table."},
        **_AUDIT,
    }),
    "LookupList": _list_of("Lookup"),
    "LookupRows": _closed({
        "lookupId": _STR, "rowsVersion": {"type": ["integer", "null"]},
        "data": {"type": "array", "items": _closed({"key": _STR, "value": {}})},
        "nextCursor": _OPT_STR | {"description": "Pass as ?cursor= for the next page."},
    }),
    "ApiKey": _closed({
        "id": _STR, "name": _STR, "prefix": _STR | {"description": "The key's first 12 "
                                                   "characters, to recognise it."},
        "roles": {"type": "array", "items": {"type": "string", "enum": ROLE_NAMES}},
        "environments": {"type": "array", "items": {"type": "string", "enum": ENVIRONMENTS}},
        "live": {"type": "boolean"}, "revoked": {"type": "boolean"}, "createdAt": _TIME,
        "lastUsedAt": {"type": ["string", "null"], "format": "date-time",
                       "description": "Updated at most once a minute per API process."},
    }),
    "ApiKeyCreated": _closed({
        "id": _STR, "name": _STR, "prefix": _STR,
        "roles": {"type": "array", "items": {"type": "string", "enum": ROLE_NAMES}},
        "environments": {"type": "array", "items": {"type": "string", "enum": ENVIRONMENTS}},
        "live": {"type": "boolean"}, "createdAt": _TIME,
        "key": _STR | {"description": "The key itself: shown this once, stored only as a "
                       "hash."},
    }),
    "ApiKeyList": _closed({
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/ApiKey"}},
    }),
    "EnvironmentVariable": _closed({
        "environment": {"type": "string", "enum": ENVIRONMENTS}, "name": _STR, "value": _STR,
        "updatedAt": _TIME,
    }),
    "EnvironmentVariableList": _closed({
        "environment": {"type": "string", "enum": ENVIRONMENTS},
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/EnvironmentVariable"}},
    }),
    "SchemaSummary": _closed({
        "id": _STR, "name": _STR, "format": {"type": "string", "enum": SCHEMA_FORMATS},
        "compatibility": _STR, **_AUDIT,
    }),
    "Schema": _closed({
        "id": _STR, "name": _STR, "format": {"type": "string", "enum": SCHEMA_FORMATS},
        "compatibility": _STR, **_AUDIT,
        "definition": {"type": ["object", "string"], "description": "The latest version's."},
        "versions": {"type": "array", "items": _closed({"version": _INT, "createdAt": _TIME})},
    }),
    "SchemaList": _list_of("SchemaSummary"),
    "SchemaVersion": _closed({
        "schemaId": _STR, "name": _STR, "format": {"type": "string", "enum": SCHEMA_FORMATS},
        "version": _INT, "definition": {"type": ["object", "string"]}, "createdAt": _TIME,
    }),
    "SchemaValidation": _closed({
        "valid": {"type": "boolean"},
        "violations": {"type": "array", "items": {"type": "object", "description": "pointer "
                       "(JSON pointer, or XPath for XML), message; row and column for CSV "
                       "and fixed width"}},
        "decoded": {"description": "The document as JSON (records for CSV/fixed width)."},
    }),
    "Usage": _closed({
        "plan": {"type": "string", "enum": ["free", "pro", "enterprise"]},
        "month": _STR | {"description": "The calendar month counted (UTC), YYYY-MM."},
        "messages": _closed({"used": _INT, "limit": _OPT_INT, "remaining": _OPT_INT,
                             "resetsAt": _TIME}),
        "requestsPerMinute": _closed({"limit": _INT}),
        "connectors": _closed({"used": _INT, "limit": _OPT_INT}),
        "retentionDays": _INT,
    }),
    "MessageAccepted": _closed({
        "messageId": _STR, "status": {"type": "string", "enum": ["ACCEPTED"]},
    }),
    "Message": _closed({
        "id": _STR, "integrationId": _OPT_STR,
        "status": {"type": "string", "enum": [
            "RECEIVED", "TRANSFORMED", "DELIVERED", "FAILED", "DEAD_LETTERED",
            "DISCARDED", "REPLAYING", "PARKED"]},
        "attempts": _INT, "receivedAt": _TIME, "updatedAt": _TIME,
        "payload": {}, "output": {},
        "lastError": {"anyOf": [_closed({"code": _STR, "message": _STR}), {"type": "null"}]},
        "events": {"type": "array", "items": _closed({
            "type": _STR, "occurredAt": _TIME, "data": {"type": "object"},
        })},
    }),
    "MessageTrace": _closed({
        "messageId": _STR, "integrationId": _OPT_STR, "status": _STR,
        "traceId": _OPT_STR | {"description": "32 hex digits; the first of traceIds."},
        "traceIds": {"type": "array", "items": _STR,
                     "description": "Every trace the events belong to (a replay starts one)."},
        "totalDurationMs": _INT,
        "events": {"type": "array", "items": _closed({
            "type": _STR, "occurredAt": _TIME,
            "sincePreviousMs": {"type": ["integer", "null"]},
            "traceId": _OPT_STR, "spanId": _OPT_STR,
            "detail": {"type": "object", "description":
                       "By type: received {source, key, contentType}; transformed {output, "
                       "transformUs}; failed {attempt, stage, errorClass, error}; delivered "
                       "{attempt, target, result}; dead_lettered {stage, error, dlqTopic}; "
                       "parked {reason, error}; replayed {replayId, payloadEdited}; "
                       "discarded {reason}."},
        })},
    }),
    "DlqEntry": _closed({
        "messageId": _STR, "integrationId": _OPT_STR, "code": _STR, "message": _STR,
        "stage": _STR, "deadLetteredAt": _TIME, "attempts": _INT,
    }),
    "DlqEntryList": _list_of("DlqEntry"),
    "DlqMessage": _closed({
        "messageId": _STR, "integrationId": _OPT_STR,
        "status": {"type": "string", "enum": ["DEAD_LETTERED", "DISCARDED", "REPLAYED"]},
        "contentType": _OPT_STR,
        "payload": {"description": "The payload as received (XML and other text as a string); "
                    "null when the record never got that far."},
        "output": {"description": "The transformed payload, null if it was not transformed."},
        "attempts": {"type": "array", "items": _closed({
            "attempt": _INT, "stage": _STR, "errorClass": _STR, "code": _STR, "message": _STR,
            "occurredAt": _TIME,
        })},
        "deadLetter": _closed({
            "stage": _STR, "code": _STR, "message": _STR, "dlqTopic": _STR,
            "deadLetteredAt": _TIME,
        }),
        "discarded": {"anyOf": [_closed({"reason": _STR, "discardedAt": _TIME}),
                                {"type": "null"}]},
        "traceparent": _OPT_STR | {"description": "W3C trace context of the message's events."},
    }),
    "DlqDiscardResult": _closed({
        "discarded": {"type": "array", "items": _STR,
                      "description": "Every id asked for; already discarded ones included."},
    }),
    "Replay": _closed({
        "replayId": _STR,
        "kind": {"type": "string", "enum": ["DLQ", "STREAM", "PARKED"]},
        "integrationId": _OPT_STR,
        "status": {"type": "string", "enum": ["PENDING", "RUNNING", "COMPLETED", "FAILED"]},
        "total": {"type": ["integer", "null"],
                  "description": "Messages the replay covers; null until it has started."},
        "sent": _INT | {"description": "Put back on the ingest topic so far."},
        "skipped": _INT | {"description": "Asked for but no longer waiting (replayed or "
                           "discarded meanwhile)."},
        "outcome": _closed({
            "delivered": _INT, "deadLettered": _INT, "parked": _INT, "failed": _INT,
            "discarded": _INT,
            "inFlight": _INT | {"description": "Sent and not at an end yet."},
        }),
        "selection": {"type": "object", "description": "What the request asked for."},
        "requestedAt": _TIME, "updatedAt": _TIME,
        "completedAt": {"type": ["string", "null"], "format": "date-time"},
        "error": _OPT_STR,
    }),
}

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_MS_OR_NULL = {"type": ["integer", "null"], "description": "null: no sample"}
_LATENCY = _closed({"count": _INT, "p50": _MS_OR_NULL, "p95": _MS_OR_NULL, "p99": _MS_OR_NULL})
_ALERT: dict[str, Schema] = {
    "id": _STR, "ruleId": _STR, "ruleName": _STR,
    "severity": {"type": "string", "enum": ALERT_SEVERITIES},
    "state": {"type": "string", "enum": ["FIRING", "RESOLVED"]},
    "conditionType": {"type": "string", "enum": ALERT_CONDITION_TYPES},
    "integrationId": _OPT_STR, "connectorId": _OPT_STR,
    "value": _NUMBER_OR_NULL | {"description": "What was measured when it fired."},
    "threshold": _NUMBER_OR_NULL, "summary": _STR,
    "resolvedSummary": _OPT_STR | {"description": "What was measured when it resolved."},
    "firedAt": _TIME, "resolvedAt": {"type": ["string", "null"], "format": "date-time"},
    "lastNotifiedAt": {"type": ["string", "null"], "format": "date-time"},
}
_ALERT_RULE: dict[str, Schema] = {
    "id": _STR, "name": _STR, "severity": {"type": "string", "enum": ALERT_SEVERITIES},
    "enabled": {"type": "boolean"}, "condition": {"type": "object"},
    "channels": {"type": "array", "items": {"type": "object"}},
    "repeatIntervalSeconds": _INT, **_AUDIT,
}
RESPONSE_SCHEMAS |= {
    "IntegrationMetrics": _closed({
        "integrationId": _STR, "window": _STR, "from": _TIME, "to": _TIME,
        "throughput": _closed({
            "received": _INT, "delivered": _INT, "deadLettered": _INT, "failed": _INT,
            "parked": _INT, "inFlight": _INT | {"description": "Not at an end yet."},
            "receivedPerMinute": {"type": "number"}, "deliveredPerMinute": {"type": "number"},
        }),
        "errorRate": _NUMBER_OR_NULL | {"description": "(dead-lettered + failed) / (those + "
                                        "delivered), 0..1; null when none finished."},
        "latencyMs": _closed({"receivedToTransformed": _LATENCY,
                              "transformedToDelivered": _LATENCY, "endToEnd": _LATENCY}),
        "sampledMessages": _INT | {"description": "Messages the latencies are computed from "
                                   "(the window's newest, at most sampleLimit)."},
        "sampleLimit": _INT,
    }),
    "AlertRule": _closed(_ALERT_RULE),
    "AlertRuleCreated": _closed({
        **_ALERT_RULE,
        "webhookSecret": _STR | {"description": "Signs this rule's webhooks; shown this once, "
                                 "stored encrypted."},
    }),
    "AlertRuleList": _list_of("AlertRule"),
    "Alert": _closed(_ALERT),
    "AlertDetail": _closed({**_ALERT, "notifications": {"type": "array", "items": _closed({
        "kind": {"type": "string", "enum": ["FIRED", "RESOLVED", "REPEAT"]},
        "channel": _STR, "outcome": {"type": "string", "enum": ["SENT", "FAILED"]},
        "attempts": _INT, "error": _OPT_STR, "at": _TIME})}}),
    "AlertList": _list_of("Alert"),
}
