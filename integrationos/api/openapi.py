"""The OpenAPI 3.1 document (``GET /v1/openapi.json``), built from the same JSON Schemas the
server validates with, and the operation table below; a test checks that the table and the
app's routes name the same operations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from integrationos.api.docs_page import render
from integrationos.api.schemas import REQUEST_SCHEMAS, RESPONSE_SCHEMAS

VERSION = "1.0.0"


@dataclass(frozen=True)
class Operation:
    """One documented endpoint; ``route`` is ``"METHOD /path"`` as the app declares it."""

    operation_id: str
    route: str
    summary: str
    success: int
    response: str | None = None
    request: str | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    query: tuple[tuple[str, str], ...] = ()
    required_headers: tuple[tuple[str, str], ...] = ()
    public: bool = False

    @property
    def method(self) -> str:
        return self.route.split()[0].lower()

    @property
    def path(self) -> str:
        return self.route.split()[1]


_PAGED = (("limit", "Page size, 1 to 200 (default 50)."),
          ("cursor", "The nextCursor of the previous page."))
_WRITE = (400, 409, 413, 422, 503)

_CONNECTORS = (
    Operation("createConnector", "POST /v1/connectors", "Create a connector", 201,
              "Connector", "ConnectorCreate", _WRITE,
              "The type is checked against the registry and config/credentials against its "
              "specs. Credentials are sealed (AES-256-GCM) before they reach the log and are "
              "only ever returned masked. 409 PLAN_LIMIT_REACHED when the plan's connector "
              "limit is reached."),
    Operation("listConnectors", "GET /v1/connectors", "List connectors", 200, "ConnectorList",
              errors=(400,), query=(("type", "Only connectors of this type."), *_PAGED)),
    Operation("getConnector", "GET /v1/connectors/{id}", "Get a connector", 200, "Connector"),
    Operation("updateConnector", "PATCH /v1/connectors/{id}", "Update a connector", 200,
              "Connector", "ConnectorUpdate", _WRITE,
              "config and credentials each replace the stored value; the version is bumped."),
    Operation("deleteConnector", "DELETE /v1/connectors/{id}", "Delete a connector", 204,
              errors=(409, 503),
              description="Refused with 409 CONNECTOR_IN_USE while an integration uses it."),
    Operation("testConnector", "POST /v1/connectors/{id}/test", "Test a connector", 200,
              "ConnectorTestResult",
              description="Connects with the stored config and credentials, bounded by 10 s. "
              "A failure is a 200 with status DOWN and the reason in detail."),
    Operation("listConnectorTypes", "GET /v1/connector-types", "List connector types", 200,
              "ConnectorTypeList"),
    Operation("getConnectorType", "GET /v1/connector-types/{type}", "Get a connector type",
              200, "ConnectorType"),
)
_TRANSFORMATIONS = (
    Operation("createTransformation", "POST /v1/transformations", "Create a transformation",
              201, "Transformation", "TransformationCreate", _WRITE,
              "The expression is compiled: a syntax error is 422 INVALID_EXPRESSION with the "
              "JSONata code and position."),
    Operation("listTransformations", "GET /v1/transformations", "List transformations", 200,
              "TransformationList", errors=(400,), query=_PAGED),
    Operation("getTransformation", "GET /v1/transformations/{id}", "Get a transformation",
              200, "Transformation"),
    Operation("updateTransformation", "PATCH /v1/transformations/{id}",
              "Update a transformation", 200, "Transformation", "TransformationUpdate", _WRITE),
    Operation("deleteTransformation", "DELETE /v1/transformations/{id}",
              "Delete a transformation", 204, errors=(409, 503),
              description="Refused with 409 TRANSFORMATION_IN_USE while an integration uses "
              "it."),
    Operation("previewTransformation", "POST /v1/transformations/preview",
              "Evaluate an expression on a payload (live preview)", 200, "PreviewResult",
              "TransformationPreview", (400, 413, 422),
              "Nothing is saved. Compile and evaluation errors are part of the 200 answer "
              "(code, message, position); sourceSchema and targetSchema (a registry name, "
              "name@version, or an inline JSON Schema) validate input and output."),
    Operation("listTransformationVersions", "GET /v1/transformations/{id}/versions",
              "List every version of a transformation", 200, "TransformationVersionList",
              description="Each update makes a new immutable version; integrations pin one."),
    Operation("getTransformationVersion", "GET /v1/transformations/{id}/versions/{version}",
              "Get one version of a transformation", 200, "TransformationVersion"),
)
_INTEGRATIONS = (
    Operation("createIntegration", "POST /v1/integrations", "Create an integration", 201,
              "Integration", "IntegrationCreate", _WRITE,
              "sourceConnectorId and targetConnectorId take a connector id or name; give "
              "transformationId or an inline expression, not both. backoff sets the delays "
              "between attempts (maxDelayMs at least initialDelayMs, else 422)."),
    Operation("listIntegrations", "GET /v1/integrations", "List integrations", 200,
              "IntegrationList", errors=(400,),
              query=(("environment", "Only integrations of DEV, QA or PROD."), *_PAGED)),
    Operation("getIntegration", "GET /v1/integrations/{id}", "Get an integration", 200,
              "Integration"),
    Operation("updateIntegration", "PATCH /v1/integrations/{id}", "Update an integration",
              200, "Integration", "IntegrationUpdate", _WRITE,
              "Setting transformationId clears expression and the other way round."),
    Operation("deleteIntegration", "DELETE /v1/integrations/{id}", "Delete an integration",
              204, errors=(503,)),
    Operation("replayIntegration", "POST /v1/integrations/{id}/replay",
              "Reprocess what an integration received", 202, "Replay", "StreamReplay",
              (400, 404, 413, 422, 503),
              "Reads the ingest topic back from a time or per-partition offsets up to its end "
              "now (or `to`) and sends each of the integration's messages through its current "
              "version again under its original id; targets suppress duplicates by the "
              "idempotency key. Limited by the ingest topic's retention (7 days)."),
    Operation("pauseIntegration", "POST /v1/integrations/{id}/pause", "Pause an integration",
              200, "Integration", errors=(503,),
              description="New messages are refused with 409 INTEGRATION_PAUSED; those "
              "already on their way (ingest topic, sources, retries) are PARKED. The pause's "
              "reason is USER (FAIL_FAST when the worker paused it)."),
    Operation("resumeIntegration", "POST /v1/integrations/{id}/resume",
              "Resume an integration", 200, "Integration", errors=(503,)),
    Operation("getIntegrationStatus", "GET /v1/integrations/{id}/status",
              "Count an integration's messages by status", 200, "IntegrationStatus",
              description="With the run status and, while PAUSED, the pause's reason."),
    Operation("promoteIntegration", "POST /v1/integrations/{id}/promote",
              "Promote a version to the next stage", 200, "Promotion", "IntegrationPromote",
              _WRITE,
              "Copies a version of the lineage's from-stage integration (id may name any "
              "stage of it) into its to-stage integration, created on the first promotion "
              "(201), with each connector replaced by its binding. DEV -> QA -> PROD, never "
              "skipping a stage; a QA version must have come from DEV. A promotion to PROD "
              "runs the saved test cases first: 409 PROMOTION_GATE_FAILED lists every case's "
              "result. Recorded as an integration.promoted event (who, when, bindings, gate)."),
    Operation("rollbackIntegration", "POST /v1/integrations/{id}/rollback",
              "Roll a PROD integration back to its previous version", 200, "Integration",
              "IntegrationRollback", (400, 409, 413, 422, 503),
              "A new version whose definition is the version live before the current one "
              "(repeated rollbacks walk further back). The body is optional: {reason}. 409 "
              "ROLLBACK_NOT_AVAILABLE outside PROD, with no earlier version, or when its "
              "connectors were deleted."),
    Operation("listIntegrationConnectorBindings", "GET /v1/integrations/{id}/connector-bindings",
              "List the connector bindings of an integration's lineage", 200,
              "ConnectorBindingList",
              description="Remembered from the promotions: which QA connector replaces each "
                          "DEV connector, and which PROD connector each QA connector."),
    Operation("listIntegrationVersions", "GET /v1/integrations/{id}/versions",
              "List every version of an integration", 200, "IntegrationVersionList",
              errors=(400,), query=_PAGED,
              description="Oldest first; each change makes a new immutable version."),
    Operation("getIntegrationVersion", "GET /v1/integrations/{id}/versions/{version}",
              "Get one version of an integration", 200, "IntegrationVersion"),
    Operation("getIntegrationHistory", "GET /v1/integrations/{id}/history",
              "The integration's audit log", 200, "IntegrationHistory", errors=(400,),
              query=_PAGED,
              description="From the events, oldest first: created, updated, paused, resumed, "
              "promoted (from and to), rolled back, deleted; who, when and the version. "
              "Readable after the integration is deleted."),
    Operation("createIntegrationTestCase", "POST /v1/integrations/{id}/test-cases",
              "Save a sandbox test case (the PROD promotion gate)", 201, "TestCase",
              "TestCaseCreate", _WRITE,
              "Shared by every stage of the integration; at most 100. While any exist, a "
              "promotion to PROD must pass all of them."),
    Operation("listIntegrationTestCases", "GET /v1/integrations/{id}/test-cases",
              "List the saved test cases", 200, "TestCaseList"),
    Operation("deleteIntegrationTestCase", "DELETE /v1/integrations/{id}/test-cases/{caseId}",
              "Delete a test case", 204, errors=(503,)),
    Operation("createFlow", "POST /v1/flows", "Create a flow (short form)", 201,
              "Integration", "FlowCreate", _WRITE,
              "source and target take a connector id, a name, or a type such as sftp when "
              "the tenant has exactly one connector of that type."),
)
_MESSAGES = (
    Operation("sendMessage", "POST /v1/integrations/{id}/messages", "Send a message", 202,
              "MessageAccepted", "MessagePayload", (400, 409, 413, 422, 503),
              "The body is the payload. Optional header X-Message-Key: messages with one key "
              "are processed in order (default: the message id). 202 once the log has it. An "
              "application/x-ndjson body is one message per line -> {messageIds, count, "
              "status} (422 naming every bad line, nothing accepted). 429 "
              "QUOTA_EXCEEDED once the month's message quota is used up."),
    Operation("getMessage", "GET /v1/messages/{id}", "Get a message and its history", 200,
              "Message",
              description="404 until the worker has recorded the message's first event, "
              "usually milliseconds after the 202."),
    Operation("getMessageTrace", "GET /v1/messages/{id}/trace",
              "A message's lineage: its events, the time between them, its trace id", 200,
              "MessageTrace",
              description="Every event of the message in order (received, transformed with "
              "its output, each attempt with its error, delivered or dead-lettered, replays) "
              "with the milliseconds since the previous one, and the OpenTelemetry trace id "
              "its events carried (null when the message came without a trace context and "
              "tracing is off). See docs/observability.md."),
    Operation("receiveWebhook", "POST /v1/webhooks/{integrationId}",
              "Send a message as a signed webhook (no API key)", 202, "MessageAccepted",
              "MessagePayload", (400, 401, 404, 409, 413, 422, 429, 503),
              "For senders that sign instead of holding a key: the secret is the webhookSecret "
              "credential of the integration's HTTP source connector. X-Signature is sha256= "
              "and the hex HMAC-SHA256 of X-Timestamp + '.' + the raw body; X-Timestamp (Unix "
              "seconds) must be within 5 minutes of the server's clock. The body is ingested "
              "as by sendMessage.",
              required_headers=(("X-Signature", "sha256=<hex HMAC-SHA256>"),
                                ("X-Timestamp", "Unix time in seconds")),
              public=True),
    Operation("executeSandbox", "POST /v1/sandbox/execute", "Run an integration on a payload",
              200, "SandboxResult", "SandboxExecute", (400, 404, 409, 413, 422),
              "Validates and transforms exactly as the pipeline does; never delivers."),
)
_DLQ = (
    Operation("listDlq", "GET /v1/dlq", "List dead-lettered messages", 200, "DlqEntryList",
              errors=(400,),
              query=(("integrationId", "Only this integration's messages."),
                     ("code", "Only this error code, e.g. HTTP_400."),
                     ("from", "Dead-lettered at or after this ISO-8601 time (UTC if no "
                      "offset)."),
                     ("to", "Dead-lettered at or before this ISO-8601 time."),
                     ("q", "Text the error message contains (case-insensitive)."), *_PAGED),
              description="Oldest first. Discarded messages are not listed."),
    Operation("getDlqEntry", "GET /v1/dlq/{id}", "Get a dead-lettered message", 200,
              "DlqMessage",
              description="The original payload, the transformed output if any, every "
              "attempt's error in order, the dead-letter reason and the trace context."),
    Operation("discardDlq", "POST /v1/dlq/discard", "Discard dead-lettered messages", 200,
              "DlqDiscardResult", "DlqDiscard", (400, 413, 422, 503),
              "Appends one message.discarded event per message and answers once they are "
              "applied. Any id not in the tenant's DLQ refuses the whole request (422); "
              "already discarded ids are accepted. The messages and their history stay."),
    Operation("replayDlq", "POST /v1/dlq/replay", "Replay dead-lettered messages", 202,
              "Replay", "DlqReplay", (400, 413, 422, 503),
              "Sends messages through their integration's current version again, under their "
              "original ids (so targets see the same idempotency key): a list of ids (all "
              "must be in the DLQ), or every entry the filter matches now; one message may "
              "get an edited payload. A message.replay_requested event carried out by a "
              "worker; answers once recorded. An Idempotency-Key header makes a retried "
              "request return the same replay (200). A message a running or finished replay "
              "already sent is skipped."),
    Operation("getReplay", "GET /v1/dlq/replays/{id}", "Follow a replay", 200, "Replay",
              description="Progress (total, sent, skipped) and what became of the messages "
              "sent (delivered, dead-lettered again, in flight)."),
)
_LOOKUPS = (
    Operation("createLookup", "POST /v1/lookups", "Create a lookup table", 201, "Lookup",
              "LookupCreate", _WRITE,
              "STATIC (rows uploaded here), HTTP (GET through an HTTP connector) or DB (a "
              "query through a JDBC connector); config is checked against the type. A body "
              "may be up to 4 MiB when it carries rows."),
    Operation("listLookups", "GET /v1/lookups", "List lookup tables", 200, "LookupList",
              errors=(400,), query=_PAGED),
    Operation("getLookup", "GET /v1/lookups/{id}", "Get a lookup table", 200, "Lookup"),
    Operation("updateLookup", "PATCH /v1/lookups/{id}", "Update a lookup table", 200,
              "Lookup", "LookupUpdate", _WRITE,
              "config replaces the stored config; the type cannot change."),
    Operation("deleteLookup", "DELETE /v1/lookups/{id}", "Delete a lookup table", 204,
              errors=(503,)),
    Operation("replaceLookupRows", "PUT /v1/lookups/{id}/rows",
              "Upload a STATIC table's rows (a new rows version)", 200, "Lookup",
              "LookupRowsUpload", (*_WRITE, 415),
              "JSON object key -> value, or text/csv with a header row key,value (value is "
              "the text) or key,<col>,... (value is an object of the columns). At most 50,000 "
              "rows and 4 MiB. 409 LOOKUP_NOT_STATIC for HTTP and DB tables."),
    Operation("listLookupRows", "GET /v1/lookups/{id}/rows", "Page through a rows version",
              200, "LookupRows", errors=(400, 409),
              query=(("version", "A rows version (default: the current one)."), *_PAGED)),
)
_ENVIRONMENTS = (
    Operation("listEnvironmentVariables", "GET /v1/environments/{env}/variables",
              "List an environment's variables", 200, "EnvironmentVariableList",
              description="env is DEV, QA or PROD. $env(name) reads these in an integration "
              "of that environment."),
    Operation("setEnvironmentVariable", "PUT /v1/environments/{env}/variables/{name}",
              "Set a variable", 200, "EnvironmentVariable", "EnvironmentVariableSet",
              (400, 409, 413, 422, 503),
              "name matches ^[A-Za-z_][A-Za-z0-9_]{0,99}$; at most 500 variables per "
              "environment. Values are not secret."),
    Operation("deleteEnvironmentVariable", "DELETE /v1/environments/{env}/variables/{name}",
              "Delete a variable", 204, errors=(422, 503)),
)
_SCHEMAS = (
    Operation("createSchema", "POST /v1/schemas", "Register a schema (version 1)", 201,
              "Schema", "SchemaCreate", _WRITE,
              "JSON_SCHEMA (definition: an object) or XSD (definition: a string). Transformations "
              "refer to it by name (latest version) or name@version. Invalid definitions and "
              "examples are 422 with every fault."),
    Operation("listSchemas", "GET /v1/schemas", "List schemas", 200, "SchemaList",
              errors=(400,), query=_PAGED),
    Operation("getSchema", "GET /v1/schemas/{id}", "Get a schema (latest version)", 200,
              "Schema"),
    Operation("deleteSchema", "DELETE /v1/schemas/{id}", "Delete a schema", 204,
              errors=(409, 503),
              description="Refused with 409 SCHEMA_IN_USE while a transformation names it."),
    Operation("addSchemaVersion", "POST /v1/schemas/{id}/versions", "Add a version", 201,
              "Schema", "SchemaVersionCreate", _WRITE,
              "With compatibility BACKWARD, 409 INCOMPATIBLE_SCHEMA lists every narrowing "
              "(JSON pointer, rule, message) and every example the new version refuses."),
    Operation("getSchemaVersion", "GET /v1/schemas/{id}/versions/{version}",
              "Get one version", 200, "SchemaVersion"),
    Operation("validateAgainstSchema", "POST /v1/schemas/{id}/validate",
              "Validate a document against the latest version", 200, "SchemaValidation",
              "SchemaValidate", (400, 413, 422),
              "Lists every violation (JSON pointer, XPath for XML, row and column for CSV) and "
              "the document decoded to JSON."),
)
_PLAN = (
    Operation("getUsage", "GET /v1/usage", "The plan's limits and what is used of them", 200,
              "Usage",
              description="Messages this calendar month (UTC) against the monthly quota, the "
              "request rate limit, connectors against their limit, and the retention. A null "
              "limit is unlimited. See docs/plans.md."),
)
_METRICS_AND_ALERTS = (
    Operation("getIntegrationMetrics", "GET /v1/integrations/{id}/metrics",
              "An integration's throughput, error rate and stage latencies", 200,
              "IntegrationMetrics", errors=(400,),
              query=(("window", "How far back: <n>m, <n>h or <n>d, 1m to 7d (default 1h)."),),
              description="From the projections, over the messages received in the window. "
              "Counts are exact; latency percentiles (nearest rank, ms) come from the "
              "window's newest 10,000 messages (sampledMessages). See docs/alerts.md."),
    Operation("createAlertRule", "POST /v1/alerts/rules", "Create an alert rule", 201,
              "AlertRuleCreated", "AlertRuleCreate", _WRITE,
              "condition.type: DLQ_DEPTH, ERROR_RATE, NO_TRAFFIC, CONNECTOR_DOWN or QUOTA; "
              "channels: email (an SMTP connector and recipients) or webhook (signed "
              "X-Timestamp and X-Signature: sha256=<hex HMAC-SHA256 of X-Timestamp + '.' + "
              "body>, as receiveWebhook). "
              "webhookSecret is in this answer only. See docs/alerts.md."),
    Operation("listAlertRules", "GET /v1/alerts/rules", "List alert rules", 200,
              "AlertRuleList", errors=(400,), query=_PAGED),
    Operation("getAlertRule", "GET /v1/alerts/rules/{id}", "Get an alert rule", 200,
              "AlertRule"),
    Operation("updateAlertRule", "PATCH /v1/alerts/rules/{id}", "Update an alert rule", 200,
              "AlertRule", "AlertRuleUpdate", _WRITE,
              "Given fields replace the stored ones; condition and channels are replaced "
              "whole. The webhook secret stays."),
    Operation("deleteAlertRule", "DELETE /v1/alerts/rules/{id}", "Delete an alert rule", 204,
              errors=(503,),
              description="A firing alert of the rule is resolved at the next evaluation."),
    Operation("listAlerts", "GET /v1/alerts", "List alerts, firing and past", 200,
              "AlertList", errors=(400,),
              query=(("state", "FIRING or RESOLVED."), ("ruleId", "Only this rule's."),
                     ("integrationId", "Only alerts about this integration."), *_PAGED),
              description="Oldest first, by the time they fired."),
    Operation("getAlert", "GET /v1/alerts/{id}", "Get an alert and its notifications", 200,
              "AlertDetail",
              description="With every notification sent for it: channel, outcome, attempts."),
)
_API_KEYS = (
    Operation("createApiKey", "POST /v1/api-keys", "Issue an API key (admin)", 201,
              "ApiKeyCreated", "ApiKeyCreate", _WRITE,
              "The key is in this answer only; it is stored as a SHA-256 hash. roles: admin, "
              "developer, operator, viewer; environments (default all) limit where it acts."),
    Operation("listApiKeys", "GET /v1/api-keys", "List the tenant's API keys (admin)", 200,
              "ApiKeyList",
              description="Never the key nor its hash: id, name, prefix, permissions, times."),
    Operation("revokeApiKey", "DELETE /v1/api-keys/{id}", "Revoke an API key (admin)", 204,
              errors=(503,),
              description="Every API process refuses the key within one second. Idempotent."),
)
_REFERENCE = (
    Operation("getOpenApiDocument", "GET /v1/openapi.json", "This OpenAPI document", 200,
              public=True),
    Operation("getApiReference", "GET /v1/docs", "This API reference as HTML", 200,
              public=True),
)
TAGS: dict[str, tuple[Operation, ...]] = {
    "Connectors": _CONNECTORS,
    "Transformations": _TRANSFORMATIONS,
    "Integrations": _INTEGRATIONS,
    "Messages": _MESSAGES,
    "Dead letters": _DLQ,
    "Lookups": _LOOKUPS,
    "Environments": _ENVIRONMENTS,
    "API keys": _API_KEYS,
    "Schemas": _SCHEMAS,
    "Plan": _PLAN,
    "Metrics and alerts": _METRICS_AND_ALERTS,
    "Reference": _REFERENCE,
}
OPERATIONS = tuple(op for ops in TAGS.values() for op in ops)

_ERRORS = {
    400: "Malformed JSON (MALFORMED_JSON) or query (INVALID_QUERY)",
    401: "Missing or invalid credential (X-API-Key or Authorization: Bearer) for "
         "X-Tenant-Id (UNAUTHENTICATED), or webhook signature (INVALID_SIGNATURE)",
    403: "The credential's roles or environments do not allow this (FORBIDDEN); details "
         "name the requiredRole or environment",
    404: "No such resource for this tenant (NOT_FOUND)",
    409: "Conflicts with the current state (CONFLICT, *_IN_USE, INTEGRATION_PAUSED, "
         "PROMOTION_GATE_FAILED, ROLLBACK_NOT_AVAILABLE, ...)",
    413: "Body larger than the payload limit (PAYLOAD_TOO_LARGE)",
    415: "Content-Type not accepted here (UNSUPPORTED_MEDIA_TYPE)",
    422: "Invalid body (VALIDATION_FAILED, INVALID_EXPRESSION): details lists every fault",
    429: "Over the request rate limit (RATE_LIMITED) or, on message ingest, the monthly "
         "quota (QUOTA_EXCEEDED); Retry-After says when to try again",
    503: "Log or projection not available in time (LOG_UNAVAILABLE, PROJECTION_TIMEOUT)",
}


_SUCCESS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}
_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests allowed per minute for this credential",
                          "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left in the current minute",
                              "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "When the current minute ends (Unix seconds)",
                          "schema": {"type": "integer"}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(op: Operation, tag: str) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ] + [
        {"name": name, "in": "query", "required": False, "description": text,
         "schema": {"type": "string"}}
        for name, text in op.query
    ]
    parameters += [
        {"name": name, "in": "header", "required": True, "description": text,
         "schema": {"type": "string"}}
        for name, text in op.required_headers
    ]
    if op.request == "MessagePayload":
        parameters.append({"name": "X-Message-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "maxLength": 400}})
    ok: dict[str, Any] = {"description": _SUCCESS[op.success]}
    if op.response:
        ok["content"] = {"application/json": {"schema": _ref(op.response)}}
    elif op.path.endswith("/docs"):
        ok["content"] = {"text/html": {"schema": {"type": "string"}}}
    elif op.public:
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    if not op.public:
        ok["headers"] = _RATE_LIMIT_HEADERS
    responses = {str(op.success): ok}
    statuses = op.errors if op.public else (401, 403, 429, *op.errors,
                                            *(() if "{" not in op.path else (404,)))
    for status in sorted(set(statuses)):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    result: dict[str, Any] = {
        "operationId": op.operation_id,
        "tags": [tag],
        "summary": op.summary,
        "responses": responses,
    }
    if op.description:
        result["description"] = op.description
    if parameters:
        result["parameters"] = parameters
    if op.request:
        result["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(op.request)}}}
        if op.request == "LookupRowsUpload":
            result["requestBody"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    if op.public:
        result["security"] = []
    return result


@cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for tag, operations in TAGS.items():
        for op in operations:
            paths.setdefault(op.path, {})[op.method] = _operation(op, tag)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "IntegrationOS API",
            "version": VERSION,
            "description": "Create connectors, transformations and integrations, send "
            "messages and follow them. Every request under /v1 (except this reference and "
            "webhooks) carries X-Tenant-Id and X-API-Key or Authorization: Bearer <JWT>; "
            "every authenticated response carries X-RateLimit-Limit, X-RateLimit-Remaining "
            "and X-RateLimit-Reset. Errors are "
            '{"error": {"code", "message", "details"}}.',
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKey": [], "TenantId": []}, {"Bearer": [], "TenantId": []}],
        "tags": [{"name": name} for name in TAGS],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "TenantId": {"type": "apiKey", "in": "header", "name": "X-Tenant-Id"},
                "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "schemas": {**REQUEST_SCHEMAS, **RESPONSE_SCHEMAS},
            "responses": {
                f"E{status}": {"description": text, "content": {
                    "application/json": {"schema": _ref("Error")}},
                    **({"headers": {**_RATE_LIMIT_HEADERS, "Retry-After": {
                        "description": "Seconds until the request may succeed",
                        "schema": {"type": "integer"}}}} if status == 429 else {})}
                for status, text in _ERRORS.items()
            },
        },
    }


async def openapi_json(_request: Request) -> Response:
    return JSONResponse(document())


async def docs(_request: Request) -> Response:
    return HTMLResponse(render(document()))
