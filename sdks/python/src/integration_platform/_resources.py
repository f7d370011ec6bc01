"""The API's resources, written once for both clients.

Each method builds a ``Call`` and hands it to the client: ``IntegrationPlatform`` returns
the result, ``AsyncIntegrationPlatform`` returns an awaitable of it (and async pagers). The
return annotations name the result type as the sync client returns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union
from urllib.parse import quote

import httpx

from integration_platform._core import NOT_GIVEN, Call, body, new_idempotency_key
from integration_platform._models import (
    Alert,
    AlertRule,
    Connector,
    DlqEntry,
    HealthReport,
    Integration,
    IntegrationMetrics,
    IntegrationStatus,
    Message,
    MessageAccepted,
    MessageTrace,
    Model,
    PreviewResult,
    Record,
    Replay,
    SandboxResult,
    StreamResult,
    Transformation,
    Usage,
)
from integration_platform._pagination import SyncPager
from integration_platform._streaming import DEFAULT_CHUNK_BYTES, DEFAULT_CHUNK_RECORDS

if TYPE_CHECKING:
    from integration_platform._client import BaseClient

M = TypeVar("M", bound=Model)


def _one(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.from_json(response.json())


def _data(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    """An unpaged list answer, ``{"data": [...]}``."""
    return lambda response: [model.from_json(entry) for entry in response.json()["data"]]


def _nothing(_response: httpx.Response) -> None:
    return None


def _json(response: httpx.Response) -> Any:
    return response.json()


def _quoted(segment: str) -> str:
    """A path segment from a caller's id: an id with ``/`` or ``?`` must not change the
    route it reaches."""
    return quote(segment, safe="")


class Resource:
    path = ""

    def __init__(self, client: BaseClient) -> None:
        self._client = client

    def _run(self, call: Call[Any]) -> Any:
        return self._client._execute(call)

    def _at(self, *segments: str) -> str:
        return "/".join([self.path, *(_quoted(s) for s in segments)])

    def _list(self, path: str, model: type[M], **params: Any) -> SyncPager[M]:
        return self._client._paginate(path, params, model.from_json)


class Connectors(Resource):
    path = "/v1/connectors"

    def create(self, name: str, type: str, config: Optional[dict[str, Any]] = None,
               credentials: Optional[dict[str, Any]] = None) -> Connector:
        return self._run(Call("POST", self.path, _one(Connector), json=body(
            name=name, type=type, config=NOT_GIVEN if config is None else config,
            credentials=NOT_GIVEN if credentials is None else credentials)))

    def get(self, connector_id: str) -> Connector:
        return self._run(Call("GET", self._at(connector_id), _one(Connector)))

    def list(self, type: Optional[str] = None, limit: Optional[int] = None
             ) -> SyncPager[Connector]:
        return self._list(self.path, Connector, type=type, limit=limit)

    def update(self, connector_id: str, *, name: str = NOT_GIVEN,
               config: dict[str, Any] = NOT_GIVEN,
               credentials: Optional[dict[str, Any]] = NOT_GIVEN) -> Connector:
        """``credentials=None`` removes them; a left-out argument is unchanged."""
        return self._run(Call("PATCH", self._at(connector_id), _one(Connector),
                              json=body(name=name, config=config, credentials=credentials)))

    def delete(self, connector_id: str) -> None:
        return self._run(Call("DELETE", self._at(connector_id), _nothing))

    def test(self, connector_id: str) -> HealthReport:
        """Really connects; ``status`` is ``UP`` or ``DOWN`` with the reason in ``detail``."""
        return self._run(Call("POST", self._at(connector_id, "test"), _one(HealthReport),
                              side_effect_free=True))

    def types(self) -> Any:
        """``GET /v1/connector-types``: each type's roles and config/credentials specs."""
        return self._run(Call("GET", "/v1/connector-types", _json))


class Transformations(Resource):
    path = "/v1/transformations"

    def create(self, name: str, expression: str, source_schema: Any = NOT_GIVEN,
               target_schema: Any = NOT_GIVEN) -> Transformation:
        return self._run(Call("POST", self.path, _one(Transformation), json=body(
            name=name, expression=expression, source_schema=source_schema,
            target_schema=target_schema)))

    def get(self, transformation_id: str) -> Transformation:
        return self._run(Call("GET", self._at(transformation_id), _one(Transformation)))

    def list(self, limit: Optional[int] = None) -> SyncPager[Transformation]:
        return self._list(self.path, Transformation, limit=limit)

    def update(self, transformation_id: str, *, name: str = NOT_GIVEN,
               expression: str = NOT_GIVEN, source_schema: Any = NOT_GIVEN,
               target_schema: Any = NOT_GIVEN) -> Transformation:
        return self._run(Call("PATCH", self._at(transformation_id), _one(Transformation),
                              json=body(name=name, expression=expression,
                                        source_schema=source_schema,
                                        target_schema=target_schema)))

    def delete(self, transformation_id: str) -> None:
        return self._run(Call("DELETE", self._at(transformation_id), _nothing))

    def versions(self, transformation_id: str) -> SyncPager[Record]:
        return self._list(self._at(transformation_id, "versions"), Record)

    def preview(self, expression: str, payload: Any, *, bindings: Any = NOT_GIVEN,
                source_schema: Any = NOT_GIVEN, target_schema: Any = NOT_GIVEN,
                environment: str = NOT_GIVEN) -> PreviewResult:
        """Evaluates without saving anything."""
        return self._run(Call("POST", self._at("preview"), _one(PreviewResult), json=body(
            expression=expression, payload=payload, bindings=bindings,
            source_schema=source_schema, target_schema=target_schema,
            environment=environment), side_effect_free=True))


class Integrations(Resource):
    path = "/v1/integrations"

    def create(self, name: str, source_connector_id: str, target_connector_id: str, *,
               environment: str = NOT_GIVEN, transformation_id: str = NOT_GIVEN,
               transformation_version: int = NOT_GIVEN, expression: str = NOT_GIVEN,
               error_strategy: str = NOT_GIVEN, backoff: Optional[dict[str, Any]] = NOT_GIVEN
               ) -> Integration:
        """Connector arguments take an id or a connector name."""
        return self._run(Call("POST", self.path, _one(Integration), json=body(
            name=name, environment=environment, source_connector_id=source_connector_id,
            target_connector_id=target_connector_id, transformation_id=transformation_id,
            transformation_version=transformation_version, expression=expression,
            error_strategy=error_strategy, backoff=backoff)))

    def get(self, integration_id: str) -> Integration:
        return self._run(Call("GET", self._at(integration_id), _one(Integration)))

    def list(self, environment: Optional[str] = None, limit: Optional[int] = None
             ) -> SyncPager[Integration]:
        return self._list(self.path, Integration, environment=environment, limit=limit)

    def update(self, integration_id: str, **fields: Any) -> Integration:
        """Any of ``name``, ``source_connector_id``, ``target_connector_id``,
        ``transformation_id``, ``transformation_version``, ``expression``,
        ``error_strategy``, ``backoff`` (snake_case; ``None`` sends ``null``)."""
        return self._run(Call("PATCH", self._at(integration_id), _one(Integration),
                              json=body(**fields)))

    def delete(self, integration_id: str) -> None:
        return self._run(Call("DELETE", self._at(integration_id), _nothing))

    def pause(self, integration_id: str) -> Integration:
        return self._run(Call("POST", self._at(integration_id, "pause"), _one(Integration)))

    def resume(self, integration_id: str) -> Integration:
        return self._run(Call("POST", self._at(integration_id, "resume"), _one(Integration)))

    def status(self, integration_id: str) -> IntegrationStatus:
        return self._run(Call("GET", self._at(integration_id, "status"),
                              _one(IntegrationStatus)))

    def metrics(self, integration_id: str, window: str = "1h") -> IntegrationMetrics:
        """Throughput, error rate and latency percentiles by stage of the messages received
        in the last ``window`` (``<n>m``, ``<n>h`` or ``<n>d``, 1m to 7d; anything else is
        ``BadRequestError``)."""
        return self._run(Call("GET", self._at(integration_id, "metrics"),
                              _one(IntegrationMetrics), params={"window": window}))

    def create_test_case(self, integration_id: str, name: str, payload: Any, expected: Any,
                         *, match: str = NOT_GIVEN) -> Record:
        """A sandbox case of the PROD promotion gate, shared by every stage of the
        integration's lineage; ``match`` is ``SUBSET`` (the API's default) or ``EXACT``."""
        return self._run(Call("POST", self._at(integration_id, "test-cases"), _one(Record),
                              json=body(name=name, payload=payload, expected=expected,
                                        match=match)))

    def test_cases(self, integration_id: str) -> list[Record]:
        """Every saved case (``id``, ``name``, ``payload``, ``expected``, ``match``...);
        the API answers them all in one list."""
        return self._run(Call("GET", self._at(integration_id, "test-cases"), _data(Record)))

    def delete_test_case(self, integration_id: str, case_id: str) -> None:
        return self._run(Call("DELETE", self._at(integration_id, "test-cases", case_id),
                              _nothing))

    def connector_bindings(self, integration_id: str) -> Record:
        """The connector replacements remembered from promotions: ``lineage_id`` and
        ``data``, one ``{environment, fromConnectorId, toConnectorId, updatedAt}`` each."""
        return self._run(Call("GET", self._at(integration_id, "connector-bindings"),
                              _one(Record)))

    def promote(self, integration_id: str, *, to: str, from_: str,
                version: int = NOT_GIVEN,
                connector_bindings: Optional[dict[str, str]] = NOT_GIVEN) -> Record:
        """DEV -> QA -> PROD; the answer is the promotion (with the target integration)."""
        return self._run(Call("POST", self._at(integration_id, "promote"), _one(Record),
                              json=body(from_=from_, to=to, version=version,
                                        connector_bindings=connector_bindings)))

    def rollback(self, integration_id: str, reason: str = NOT_GIVEN) -> Integration:
        return self._run(Call("POST", self._at(integration_id, "rollback"), _one(Integration),
                              json=body(reason=reason)))

    def history(self, integration_id: str, limit: Optional[int] = None) -> SyncPager[Record]:
        """The audit log, oldest first: ``event_id``, ``type``, ``occurred_at``, ``by``..."""
        return self._list(self._at(integration_id, "history"), Record, limit=limit)

    def versions(self, integration_id: str, limit: Optional[int] = None) -> SyncPager[Record]:
        return self._list(self._at(integration_id, "versions"), Record, limit=limit)

    def replay(self, integration_id: str, from_: Union[str, dict[str, Any]], *,
               to: str = NOT_GIVEN, idempotency_key: Optional[str] = None) -> Replay:
        """Reprocess what the integration received since ``from_``. Sent with an
        ``Idempotency-Key`` (one is made if not given), so a retry returns the same replay."""
        return self._run(Call(
            "POST", self._at(integration_id, "replay"), _one(Replay),
            json=body(from_=from_, to=to),
            headers={"Idempotency-Key": idempotency_key or new_idempotency_key()}))


class Flows(Resource):
    path = "/v1/flows"

    def create(self, source: str, target: str, *, name: str = NOT_GIVEN,
               expression: str = NOT_GIVEN, transformation_id: str = NOT_GIVEN,
               environment: str = NOT_GIVEN, error_strategy: str = NOT_GIVEN,
               backoff: Optional[dict[str, Any]] = NOT_GIVEN) -> Integration:
        """The short form: ``source``/``target`` are a connector id, a name, or a type
        (``"sftp"``) when the tenant has exactly one connector of it."""
        return self._run(Call("POST", self.path, _one(Integration), json=body(
            source=source, target=target, name=name, expression=expression,
            transformation_id=transformation_id, environment=environment,
            error_strategy=error_strategy, backoff=backoff)))


class Sandbox(Resource):
    path = "/v1/sandbox"

    def execute(self, integration_id: str, payload: Any) -> SandboxResult:
        """Validates and transforms ``payload`` as the pipeline would; delivers nothing."""
        return self._run(Call("POST", self._at("execute"), _one(SandboxResult),
                              json={"integrationId": integration_id, "payload": payload},
                              side_effect_free=True))


class Messages(Resource):
    path = "/v1/messages"

    def send(self, integration_id: str, payload: Any, *, key: Optional[str] = None
             ) -> MessageAccepted:
        """Accepted once in the log. ``key``: messages with one key are processed in order.
        Not retried after it may have reached the server (that could send it twice)."""
        headers = {} if key is None else {"X-Message-Key": key}
        return self._run(Call("POST", f"/v1/integrations/{_quoted(integration_id)}/messages",
                              _one(MessageAccepted), json=payload, headers=headers))

    def send_stream(self, integration_id: str, source: Any, *, key: Optional[str] = None,
                    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                    chunk_records: int = DEFAULT_CHUNK_RECORDS) -> StreamResult:
        """Send every item of ``source`` (payloads, or NDJSON lines, or a file of them) as
        NDJSON requests of at most ``chunk_bytes``/``chunk_records``, reading ``source``
        only as each chunk is needed. Stops at the first refused chunk (the exception);
        the chunks before it are in the log."""
        headers = {"Content-Type": "application/x-ndjson"}
        if key is not None:
            headers["X-Message-Key"] = key
        path = f"/v1/integrations/{_quoted(integration_id)}/messages"
        return self._client._send_chunks(
            lambda chunk: Call("POST", path, _json, content=chunk, headers=headers),
            source, chunk_bytes, chunk_records)

    def get(self, message_id: str) -> Message:
        """404 (``NotFoundError``) until the worker has recorded the message's first event."""
        return self._run(Call("GET", self._at(message_id), _one(Message)))

    def trace(self, message_id: str) -> MessageTrace:
        """The message's lineage: every event in order with the time between them and the
        trace ids; 404 (``NotFoundError``) like ``get`` until the worker recorded it."""
        return self._run(Call("GET", self._at(message_id, "trace"), _one(MessageTrace)))


class Dlq(Resource):
    path = "/v1/dlq"

    def list(self, *, integration_id: Optional[str] = None, code: Optional[str] = None,
             from_: Optional[str] = None, to: Optional[str] = None, q: Optional[str] = None,
             limit: Optional[int] = None) -> SyncPager[DlqEntry]:
        return self._list(self.path, DlqEntry, integrationId=integration_id, code=code,
                          q=q, to=to, limit=limit, **{"from": from_})

    def iter(self, **filters: Any) -> SyncPager[DlqEntry]:
        """Every dead letter matching ``filters`` (as ``list``), fetched a page at a time
        as the iteration reaches it."""
        return self.list(**filters)

    def get(self, message_id: str) -> Record:
        """The original payload, the output if any, every attempt's error."""
        return self._run(Call("GET", self._at(message_id), _one(Record)))

    def replay(self, message_ids: Optional[list[str]] = None, *,
               filter: Optional[dict[str, Any]] = None, payload: Any = NOT_GIVEN,
               idempotency_key: Optional[str] = None) -> Replay:
        """Ids or a filter (``integrationId``, ``code``, ``from``, ``to``, ``q``). Sent with
        an ``Idempotency-Key`` (one is made if not given), so a retry returns the same
        replay instead of starting a second one."""
        return self._run(Call(
            "POST", self._at("replay"), _one(Replay),
            json=body(message_ids=NOT_GIVEN if message_ids is None else message_ids,
                      filter=NOT_GIVEN if filter is None else filter, payload=payload),
            headers={"Idempotency-Key": idempotency_key or new_idempotency_key()}))

    def replay_status(self, replay_id: str) -> Replay:
        return self._run(Call("GET", self._at("replays", replay_id), _one(Replay)))

    def discard(self, message_ids: list[str], reason: str) -> Record:
        return self._run(Call("POST", self._at("discard"), _one(Record),
                              json={"messageIds": message_ids, "reason": reason}))


class AlertRules(Resource):
    path = "/v1/alerts/rules"

    def create(self, name: str, condition: dict[str, Any], *, severity: str = NOT_GIVEN,
               enabled: bool = NOT_GIVEN, channels: list[dict[str, Any]] = NOT_GIVEN,
               repeat_interval_seconds: int = NOT_GIVEN) -> AlertRule:
        """``condition`` and ``channels`` as the API spells them (``{"type": "DLQ_DEPTH",
        "threshold": 0}``, ``{"type": "webhook", "url": ...}``). The answer's
        ``webhook_secret`` signs the rule's webhooks and is shown this once: keep it.
        Not retried after it may have reached the server (a retry would make a second rule,
        or fail on the name)."""
        return self._run(Call("POST", self.path, _one(AlertRule), json=body(
            name=name, condition=condition, severity=severity, enabled=enabled,
            channels=channels, repeat_interval_seconds=repeat_interval_seconds)))

    def get(self, rule_id: str) -> AlertRule:
        return self._run(Call("GET", self._at(rule_id), _one(AlertRule)))

    def list(self, limit: Optional[int] = None) -> SyncPager[AlertRule]:
        return self._list(self.path, AlertRule, limit=limit)

    def update(self, rule_id: str, *, name: str = NOT_GIVEN, severity: str = NOT_GIVEN,
               enabled: bool = NOT_GIVEN, condition: dict[str, Any] = NOT_GIVEN,
               channels: list[dict[str, Any]] = NOT_GIVEN,
               repeat_interval_seconds: int = NOT_GIVEN) -> AlertRule:
        """Replaces the given fields (``condition`` and ``channels`` whole); a left-out
        argument is unchanged, and the webhook secret stays."""
        return self._run(Call("PATCH", self._at(rule_id), _one(AlertRule), json=body(
            name=name, severity=severity, enabled=enabled, condition=condition,
            channels=channels, repeat_interval_seconds=repeat_interval_seconds)))

    def delete(self, rule_id: str) -> None:
        """Its firing alert, if any, is resolved at the next evaluation."""
        return self._run(Call("DELETE", self._at(rule_id), _nothing))


class Alerts(Resource):
    path = "/v1/alerts"

    def __init__(self, client: BaseClient) -> None:
        super().__init__(client)
        self.rules = AlertRules(client)

    def list(self, *, state: Optional[str] = None, rule_id: Optional[str] = None,
             integration_id: Optional[str] = None, limit: Optional[int] = None
             ) -> SyncPager[Alert]:
        """Firing and past alerts, oldest first; ``state`` is ``FIRING`` or ``RESOLVED``."""
        return self._list(self.path, Alert, state=state, ruleId=rule_id,
                          integrationId=integration_id, limit=limit)

    def get(self, alert_id: str) -> Alert:
        """The alert with its ``notifications`` (each channel's outcome)."""
        return self._run(Call("GET", self._at(alert_id), _one(Alert)))


class Schemas(Resource):
    """The schema registry (JSON Schema or XSD, versioned). Schemas, versions and results
    are ``Record``s: ``schema.version`` (the latest), ``schema["definition"]``."""

    path = "/v1/schemas"

    def create(self, name: str, format: str, definition: Any, *,
               compatibility: str = NOT_GIVEN, examples: list[Any] = NOT_GIVEN) -> Record:
        """``format`` ``JSON_SCHEMA`` or ``XSD`` (the definition a JSON object, or the XSD
        text); ``compatibility`` ``BACKWARD`` (the API's default) or ``NONE``."""
        return self._run(Call("POST", self.path, _one(Record), json=body(
            name=name, format=format, definition=definition, compatibility=compatibility,
            examples=examples)))

    def get(self, schema_id: str) -> Record:
        """The latest definition and the list of ``versions``."""
        return self._run(Call("GET", self._at(schema_id), _one(Record)))

    def list(self, limit: Optional[int] = None) -> SyncPager[Record]:
        return self._list(self.path, Record, limit=limit)

    def delete(self, schema_id: str) -> None:
        """``ConflictError`` (``SCHEMA_IN_USE``) while a transformation refers to it."""
        return self._run(Call("DELETE", self._at(schema_id), _nothing))

    def add_version(self, schema_id: str, definition: Any, *,
                    examples: list[Any] = NOT_GIVEN) -> Record:
        """The next version; under ``BACKWARD``, ``ConflictError`` (``INCOMPATIBLE_SCHEMA``)
        lists what it would refuse that the previous one accepted. Not retried once sent
        (a retry could add a second version)."""
        return self._run(Call("POST", self._at(schema_id, "versions"), _one(Record),
                              json=body(definition=definition, examples=examples)))

    def get_version(self, schema_id: str, version: int) -> Record:
        return self._run(Call("GET", self._at(schema_id, "versions", str(version)),
                              _one(Record)))

    def validate(self, schema_id: str, document: Any, *, content_type: str = NOT_GIVEN
                 ) -> Record:
        """``valid``, ``violations`` and ``decoded`` for ``document`` under the latest
        version; with ``content_type`` the document is the text, decoded as the pipeline
        would (CSV, fixed-width, XML, JSON). Changes nothing, so it is retried."""
        return self._run(Call("POST", self._at(schema_id, "validate"), _one(Record),
                              json=body(document=document, content_type=content_type),
                              side_effect_free=True))


class Lookups(Resource):
    """Lookup tables for ``$lookup(name, key)``: ``STATIC`` (rows uploaded here) or backed
    by a connector (``config``, docs/lookups.md). Lookups and rows are ``Record``s."""

    path = "/v1/lookups"

    def create(self, name: str, type: str, *, config: dict[str, Any] = NOT_GIVEN,
               rows: dict[str, Any] = NOT_GIVEN) -> Record:
        """``rows`` (key -> any JSON value) only for ``STATIC``."""
        return self._run(Call("POST", self.path, _one(Record), json=body(
            name=name, type=type, config=config, rows=rows)))

    def get(self, lookup_id: str) -> Record:
        return self._run(Call("GET", self._at(lookup_id), _one(Record)))

    def list(self, limit: Optional[int] = None) -> SyncPager[Record]:
        return self._list(self.path, Record, limit=limit)

    def update(self, lookup_id: str, *, name: str = NOT_GIVEN,
               config: dict[str, Any] = NOT_GIVEN) -> Record:
        """``config`` replaces the whole config; a left-out argument is unchanged."""
        return self._run(Call("PATCH", self._at(lookup_id), _one(Record),
                              json=body(name=name, config=config)))

    def delete(self, lookup_id: str) -> None:
        return self._run(Call("DELETE", self._at(lookup_id), _nothing))

    def replace_rows(self, lookup_id: str, rows: Union[dict[str, Any], str, bytes]) -> Record:
        """Every row of a ``STATIC`` lookup, as a new rows version: a dict (key -> value)
        sent as JSON, or CSV text (header ``key,value`` or ``key,<col>,...``). A ``PUT``:
        retried, since sending the same rows again leaves the same rows."""
        if isinstance(rows, dict):
            return self._run(Call("PUT", self._at(lookup_id, "rows"), _one(Record),
                                  json=rows))
        return self._run(Call("PUT", self._at(lookup_id, "rows"), _one(Record),
                              content=rows.encode() if isinstance(rows, str) else rows,
                              headers={"Content-Type": "text/csv"}))

    def rows(self, lookup_id: str, *, version: Optional[int] = None,
             limit: Optional[int] = None) -> SyncPager[Record]:
        """The rows (``key``, ``value``) of a rows version (default the current one), in
        key order, fetched a page at a time."""
        return self._list(self._at(lookup_id, "rows"), Record, version=version, limit=limit)


class Environments(Resource):
    """The variables ``$env(name)`` reads, per environment (``DEV``, ``QA``, ``PROD``; any
    case). Configuration, not secrets: the API stores and returns them in clear."""

    path = "/v1/environments"

    def variables(self, environment: str) -> list[Record]:
        """Every variable of ``environment`` (``name``, ``value``, ``updated_at``), by name."""
        return self._run(Call("GET", self._at(environment, "variables"), _data(Record)))

    def set_variable(self, environment: str, name: str, value: str) -> Record:
        """Creates or replaces it (a ``PUT``: retried like a ``GET``)."""
        return self._run(Call("PUT", self._at(environment, "variables", name), _one(Record),
                              json={"value": value}))

    def delete_variable(self, environment: str, name: str) -> None:
        return self._run(Call("DELETE", self._at(environment, "variables", name), _nothing))


class UsageResource(Resource):
    path = "/v1/usage"

    def get(self) -> Usage:
        return self._run(Call("GET", self.path, _one(Usage)))


class ApiKeys(Resource):
    path = "/v1/api-keys"

    def create(self, name: str, roles: list[str], *, environments: list[str] = NOT_GIVEN,
               live: bool = NOT_GIVEN) -> Record:
        """The answer's ``key`` is shown this once."""
        return self._run(Call("POST", self.path, _one(Record), json=body(
            name=name, roles=roles, environments=environments, live=live)))

    def list(self) -> list[Record]:
        return self._run(Call("GET", self.path, _data(Record)))

    def revoke(self, key_id: str) -> None:
        return self._run(Call("DELETE", self._at(key_id), _nothing))
