"""How each event changes the read models. Pure SQL on a connection, no Kafka.

Handlers are written so applying the same event twice leaves the same rows (upserts keyed
by aggregate or event id); the projector adds exactly-once on top by tracking offsets.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from integrationos.store import usage
from integrationos.store.integration_audit import (
    link_lineage,
    record_history,
    record_version,
    remember_bindings,
)
from integrationos.store.tables import (
    api_keys,
    connectors,
    dlq_entries,
    environment_variables,
    integration_test_cases,
    integrations,
    lookup_rows,
    lookups,
    message_events,
    messages,
    replays,
    schema_versions,
    schemas,
    source_checkpoints,
    tenant_limits,
    tenants,
    transformation_versions,
    transformations,
)
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

Handler = Callable[[Connection, Event], None]
_HANDLERS: dict[str, Handler] = {}

TERMINAL_STATUSES = frozenset({"DELIVERED", "DEAD_LETTERED", "DISCARDED"})


def handles(*types: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for type_ in types:
            _HANDLERS[type_] = fn
        return fn

    return register


def apply_event(conn: Connection, event: Event) -> None:
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        handler(conn, event)


def _upsert(conn: Connection, table: Table, key: str, row: dict[str, Any]) -> None:
    """Insert or update by primary key; ``created_at`` is kept from the first insert."""
    pk = table.c[key]
    exists = conn.execute(select(pk).where(pk == row[key])).first()
    if exists:
        changes = {k: v for k, v in row.items() if k != "created_at"}
        conn.execute(update(table).where(pk == row[key]).values(**changes))
    else:
        conn.execute(insert(table).values(**row))


def _soft_delete(conn: Connection, table: Table, event: Event) -> None:
    conn.execute(
        update(table)
        .where(table.c.id == event.data["id"], table.c.tenant_id == event.tenant)
        .values(deleted=True, updated_at=event.occurred_at_ms)
    )


@handles(t.TENANT_CREATED)
def _tenant_created(conn: Connection, event: Event) -> None:
    d = event.data
    _upsert(conn, tenants, "id", {
        "id": d["id"], "name": d["name"], "plan": d["plan"],
        "created_at": event.occurred_at_ms, "updated_at": event.occurred_at_ms,
    })


@handles(t.TENANT_PLAN_CHANGED)
def _tenant_plan_changed(conn: Connection, event: Event) -> None:
    """The new plan, and the overrides as given (every one: a null clears an earlier one)."""
    d = event.data
    conn.execute(update(tenants).where(tenants.c.id == event.tenant)
                 .values(plan=d["plan"], updated_at=event.occurred_at_ms))
    _upsert(conn, tenant_limits, "tenant_id", {
        "tenant_id": event.tenant, "messages_per_month": d["messagesPerMonth"],
        "requests_per_minute": d["requestsPerMinute"], "connectors": d["connectors"],
        "retention_days": d["retentionDays"], "updated_at": event.occurred_at_ms,
    })


@handles(t.API_KEY_ISSUED)
def _api_key_issued(conn: Connection, event: Event) -> None:
    d = event.data
    _upsert(conn, api_keys, "key_id", {
        "key_id": d["keyId"], "tenant_id": event.tenant, "key_hash": d["keyHash"],
        "prefix": d["prefix"], "name": d["name"], "roles": ",".join(d["roles"]),
        "environments": ",".join(d["environments"]), "live": d["live"], "revoked": False,
        "created_at": event.occurred_at_ms, "updated_at": event.occurred_at_ms,
    })


@handles(t.API_KEY_REVOKED)
def _api_key_revoked(conn: Connection, event: Event) -> None:
    conn.execute(
        update(api_keys)
        .where(api_keys.c.key_id == event.data["keyId"], api_keys.c.tenant_id == event.tenant)
        .values(revoked=True, updated_at=event.occurred_at_ms)
    )


def seal_to_text(sealed: dict[str, Any] | None) -> str | None:
    """The sealed credentials as stored in a table: still ciphertext, base64 in JSON."""
    if sealed is None:
        return None
    return json.dumps({
        "keyId": sealed["keyId"],
        "nonce": base64.b64encode(sealed["nonce"]).decode(),
        "ciphertext": base64.b64encode(sealed["ciphertext"]).decode(),
    })


@handles(t.CONNECTOR_CREATED, t.CONNECTOR_UPDATED)
def _connector_state(conn: Connection, event: Event) -> None:
    d = event.data
    _upsert(conn, connectors, "id", {
        "id": d["id"], "tenant_id": event.tenant, "name": d["name"],
        "connector_type": d["connectorType"], "config_json": d["configJson"],
        "credentials_sealed": seal_to_text(d["credentials"]), "version": d["version"],
        "deleted": False, "created_at": event.occurred_at_ms, "updated_at": event.occurred_at_ms,
    })


@handles(t.CONNECTOR_DELETED)
def _connector_deleted(conn: Connection, event: Event) -> None:
    _soft_delete(conn, connectors, event)


@handles(t.TRANSFORMATION_CREATED, t.TRANSFORMATION_UPDATED)
def _transformation_state(conn: Connection, event: Event) -> None:
    d = event.data
    _upsert(conn, transformations, "id", {
        "id": d["id"], "tenant_id": event.tenant, "name": d["name"],
        "source_schema": d["sourceSchema"], "target_schema": d["targetSchema"],
        "expression": d["expression"], "version": d["version"], "deleted": False,
        "created_at": event.occurred_at_ms, "updated_at": event.occurred_at_ms,
    })
    key = (transformation_versions.c.transformation_id == d["id"],
           transformation_versions.c.version == d["version"])
    if conn.execute(select(transformation_versions.c.version).where(*key)).first() is None:
        conn.execute(insert(transformation_versions).values(
            transformation_id=d["id"], version=d["version"], tenant_id=event.tenant,
            source_schema=d["sourceSchema"], target_schema=d["targetSchema"],
            expression=d["expression"], created_at=event.occurred_at_ms,
        ))


@handles(t.TRANSFORMATION_DELETED)
def _transformation_deleted(conn: Connection, event: Event) -> None:
    _soft_delete(conn, transformations, event)


@handles(t.INTEGRATION_CREATED, t.INTEGRATION_UPDATED)
def _integration_state(conn: Connection, event: Event) -> None:
    d = event.data
    _write_integration(conn, event, d, activate=event.type == t.INTEGRATION_CREATED)
    origin = "CREATED" if event.type == t.INTEGRATION_CREATED else "UPDATED"
    record_version(conn, event, d, origin, d.get("changedBy"))
    record_history(conn, event, d["id"], d["version"], d.get("changedBy"),
                   {"name": d["name"], "environment": d["environment"]})


def _write_integration(conn: Connection, event: Event, d: dict[str, Any],
                       activate: bool) -> None:
    """The integration row as ``d`` (a full state) describes it; ``activate``: a new
    integration starts ACTIVE, a changed one keeps its run status."""
    row = {
        "id": d["id"], "tenant_id": event.tenant, "name": d["name"],
        "environment": d["environment"], "source_connector_id": d["sourceConnectorId"],
        "target_connector_id": d["targetConnectorId"],
        "transformation_id": d["transformationId"],
        "transformation_version": d["transformationVersion"], "expression": d["expression"],
        "error_strategy": d["errorStrategy"], **_backoff_columns(d["backoff"]),
        "version": d["version"], "deleted": False,
        "created_at": event.occurred_at_ms, "updated_at": event.occurred_at_ms,
    }
    if activate:
        row["status"] = "ACTIVE"
    _upsert(conn, integrations, "id", row)


@handles(t.INTEGRATION_PROMOTED)
def _integration_promoted(conn: Connection, event: Event) -> None:
    """Creates or updates the target stage's integration (v2 carries its state) and
    records the promotion in the history of both integrations."""
    d = event.data
    state, lineage = d.get("state"), d.get("lineageId") or d["id"]
    if state is not None:
        exists = conn.execute(select(integrations.c.id).where(
            integrations.c.id == state["id"], integrations.c.deleted.is_(False))).first()
        _write_integration(conn, event, state, activate=exists is None)
        record_version(conn, event, state, "PROMOTED", d["promotedBy"],
                       promoted_from=(d["id"], d.get("sourceVersion", 0)))
        link_lineage(conn, event, state["id"], lineage)
        remember_bindings(conn, event, lineage, d["toEnvironment"],
                          d.get("connectorBindings") or [])
    details = {
        "fromEnvironment": d["fromEnvironment"], "toEnvironment": d["toEnvironment"],
        "source": {"integrationId": d["id"], "version": d.get("sourceVersion") or None},
        "target": {"integrationId": d["promotedId"], "version": d.get("targetVersion") or None},
        "connectorBindings": d.get("connectorBindings") or [], "gate": d.get("gate"),
    }
    record_history(conn, event, d["id"], d.get("sourceVersion") or None, d["promotedBy"],
                   details)
    record_history(conn, event, d["promotedId"], d.get("targetVersion") or None,
                   d["promotedBy"], details)


@handles(t.INTEGRATION_ROLLED_BACK)
def _integration_rolled_back(conn: Connection, event: Event) -> None:
    """A new version whose definition is an earlier one's; the run status is kept."""
    d = event.data
    _write_integration(conn, event, d["state"], activate=False)
    record_version(conn, event, d["state"], "ROLLED_BACK", d["rolledBackBy"],
                   restored_version=d["restoredVersion"])
    record_history(conn, event, d["id"], d["state"]["version"], d["rolledBackBy"], {
        "fromVersion": d["fromVersion"], "restoredVersion": d["restoredVersion"],
        "reason": d["reason"]})


@handles(t.INTEGRATION_TEST_CASE_SAVED)
def _test_case_saved(conn: Connection, event: Event) -> None:
    d = event.data
    _upsert(conn, integration_test_cases, "id", {
        "id": d["testCaseId"], "tenant_id": event.tenant, "lineage_id": d["id"],
        "name": d["name"], "payload_json": d["payloadJson"],
        "expected_json": d["expectedJson"], "match": d["match"], "created_by": d["savedBy"],
        "deleted": False, "created_at": event.occurred_at_ms,
        "updated_at": event.occurred_at_ms,
    })


@handles(t.INTEGRATION_TEST_CASE_DELETED)
def _test_case_deleted(conn: Connection, event: Event) -> None:
    conn.execute(update(integration_test_cases).where(
        integration_test_cases.c.id == event.data["testCaseId"],
        integration_test_cases.c.tenant_id == event.tenant,
    ).values(deleted=True, updated_at=event.occurred_at_ms))


def _backoff_columns(backoff: dict[str, Any] | None) -> dict[str, Any]:
    """An event's ``backoff`` (null: the platform defaults) as the three columns."""
    backoff = backoff or {}
    return {"backoff_initial_ms": backoff.get("initialDelayMs"),
            "backoff_max_ms": backoff.get("maxDelayMs"),
            "backoff_multiplier": backoff.get("multiplier")}


@handles(t.INTEGRATION_DELETED)
def _integration_deleted(conn: Connection, event: Event) -> None:
    _soft_delete(conn, integrations, event)
    record_history(conn, event, event.data["id"], None, event.data.get("changedBy"), {})


def _integration_row(event: Event) -> Any:
    return (integrations.c.id == event.data["id"], integrations.c.tenant_id == event.tenant)


@handles(t.INTEGRATION_PAUSED)
def _integration_paused(conn: Connection, event: Event) -> None:
    """PAUSED with its reason. An integration already paused keeps the first reason: when
    many messages fail at once under FAIL_FAST, workers may append several pauses, and the
    first failure is the one that explains the pause."""
    d = event.data
    conn.execute(
        update(integrations).where(*_integration_row(event), integrations.c.status != "PAUSED")
        .values(status="PAUSED", paused_reason=d["reason"], paused_message_id=d["messageId"],
                paused_code=d["code"], paused_message=d["message"],
                paused_at=event.occurred_at_ms, updated_at=event.occurred_at_ms)
    )
    record_history(conn, event, d["id"], None, d.get("changedBy"), {
        "reason": d["reason"], "messageId": d["messageId"], "code": d["code"],
        "message": d["message"]})


@handles(t.INTEGRATION_RESUMED)
def _integration_resumed(conn: Connection, event: Event) -> None:
    conn.execute(
        update(integrations).where(*_integration_row(event))
        .values(status="ACTIVE", paused_reason=None, paused_message_id=None, paused_code=None,
                paused_message=None, paused_at=None, updated_at=event.occurred_at_ms)
    )
    record_history(conn, event, event.data["id"], None, event.data.get("changedBy"), {})


@handles(t.SCHEMA_VERSION_ADDED)
def _schema_version_added(conn: Connection, event: Event) -> None:
    d = event.data
    _upsert(conn, schemas, "id", {
        "id": d["id"], "tenant_id": event.tenant, "name": d["name"], "format": d["format"],
        "latest_version": d["version"], "compatibility": d["compatibility"], "deleted": False,
        "created_at": event.occurred_at_ms, "updated_at": event.occurred_at_ms,
    })
    key = (schema_versions.c.schema_id == d["id"], schema_versions.c.version == d["version"])
    if conn.execute(select(schema_versions.c.version).where(*key)).first() is None:
        conn.execute(insert(schema_versions).values(
            schema_id=d["id"], version=d["version"], tenant_id=event.tenant,
            definition=d["definition"], examples_json=d["examplesJson"],
            created_at=event.occurred_at_ms,
        ))


@handles(t.SCHEMA_DELETED)
def _schema_deleted(conn: Connection, event: Event) -> None:
    _soft_delete(conn, schemas, event)


@handles(t.LOOKUP_CREATED, t.LOOKUP_UPDATED)
def _lookup_state(conn: Connection, event: Event) -> None:
    d = event.data
    _upsert(conn, lookups, "id", {
        "id": d["id"], "tenant_id": event.tenant, "name": d["name"],
        "lookup_type": d["lookupType"], "config_json": d["configJson"],
        "version": d["version"], "deleted": False,
        "created_at": event.occurred_at_ms, "updated_at": event.occurred_at_ms,
    })


@handles(t.LOOKUP_ROWS_REPLACED)
def _lookup_rows_replaced(conn: Connection, event: Event) -> None:
    """A new immutable version of a static table's rows; older versions stay readable."""
    d = event.data
    version_rows = (lookup_rows.c.lookup_id == d["id"],
                    lookup_rows.c.rows_version == d["rowsVersion"])
    if conn.execute(select(lookup_rows.c.key).where(*version_rows).limit(1)).first() is None:
        rows = json.loads(d["rowsJson"])
        if rows:
            conn.execute(insert(lookup_rows), [
                {"lookup_id": d["id"], "rows_version": d["rowsVersion"], "key": key,
                 "value_json": json.dumps(value, ensure_ascii=False)}
                for key, value in rows.items()
            ])
    conn.execute(
        update(lookups).where(lookups.c.id == d["id"], lookups.c.tenant_id == event.tenant)
        .values(rows_version=d["rowsVersion"], updated_at=event.occurred_at_ms)
    )


@handles(t.LOOKUP_DELETED)
def _lookup_deleted(conn: Connection, event: Event) -> None:
    _soft_delete(conn, lookups, event)


@handles(t.ENVIRONMENT_VARIABLE_SET)
def _variable_set(conn: Connection, event: Event) -> None:
    d = event.data
    key = (environment_variables.c.tenant_id == event.tenant,
           environment_variables.c.environment == d["environment"],
           environment_variables.c.name == d["name"])
    conn.execute(delete(environment_variables).where(*key))
    conn.execute(insert(environment_variables).values(
        tenant_id=event.tenant, environment=d["environment"], name=d["name"],
        value=d["value"], updated_at=event.occurred_at_ms,
    ))


@handles(t.ENVIRONMENT_VARIABLE_DELETED)
def _variable_deleted(conn: Connection, event: Event) -> None:
    d = event.data
    conn.execute(delete(environment_variables).where(
        environment_variables.c.tenant_id == event.tenant,
        environment_variables.c.environment == d["environment"],
        environment_variables.c.name == d["name"],
    ))


@handles(t.SOURCE_CHECKPOINTED)
def _source_checkpointed(conn: Connection, event: Event) -> None:
    d = event.data
    conn.execute(delete(source_checkpoints).where(
        source_checkpoints.c.integration_id == d["integrationId"]))
    conn.execute(insert(source_checkpoints).values(
        integration_id=d["integrationId"], tenant_id=event.tenant,
        connector_id=d["connectorId"], checkpoint=d["checkpoint"],
        updated_at=event.occurred_at_ms,
    ))


def _record_message_event(conn: Connection, event: Event) -> bool:
    """Keep the event in the message's history; False if it was already there."""
    seen = conn.execute(
        select(message_events.c.event_id).where(message_events.c.event_id == event.event_id)
    ).first()
    if seen:
        return False
    conn.execute(insert(message_events).values(
        event_id=event.event_id, message_id=event.data["messageId"], tenant_id=event.tenant,
        event_type=event.type, occurred_at=event.occurred_at_ms,
        data_json=json.dumps(event.data, ensure_ascii=False), traceparent=event.traceparent,
    ))
    return True


def _set_message(conn: Connection, event: Event, status: str, **values: Any) -> None:
    """Move a message to ``status``; a terminal status only yields to another terminal one,
    so a duplicate early event (re-delivery after a crash) never regresses it."""
    current = conn.execute(
        select(messages.c.status).where(messages.c.id == event.data["messageId"])
    ).first()
    if current is None:
        conn.execute(insert(messages).values(
            id=event.data["messageId"], tenant_id=event.tenant,
            integration_id=event.data.get("integrationId"), status=status, attempts=0,
            source=values.pop("source", "unknown"), received_at=event.occurred_at_ms,
            updated_at=event.occurred_at_ms, **values,
        ))
        return
    if current.status in TERMINAL_STATUSES and status not in TERMINAL_STATUSES:
        values = {k: v for k, v in values.items() if k in ("payload_json", "output_json")}
    else:
        values["status"] = status
    values.pop("source", None)
    conn.execute(
        update(messages).where(messages.c.id == event.data["messageId"])
        .values(updated_at=event.occurred_at_ms, **values)
    )


@handles(t.MESSAGE_RECEIVED)
def _message_received(conn: Connection, event: Event) -> None:
    if _record_message_event(conn, event):
        d = event.data
        usage.on_received(conn, event)
        _set_message(conn, event, "RECEIVED", source=d["source"][:400],
                     message_key=None if d["key"] is None else d["key"][:400],
                     payload_json=d["payloadJson"])


@handles(t.MESSAGE_TRANSFORMED)
def _message_transformed(conn: Connection, event: Event) -> None:
    if _record_message_event(conn, event):
        _set_message(conn, event, "TRANSFORMED", output_json=event.data["outputJson"])


@handles(t.MESSAGE_DELIVERED)
def _message_delivered(conn: Connection, event: Event) -> None:
    if _record_message_event(conn, event):
        _set_message(conn, event, "DELIVERED", attempts=event.data["attempt"])


@handles(t.MESSAGE_FAILED)
def _message_failed(conn: Connection, event: Event) -> None:
    if _record_message_event(conn, event):
        d = event.data
        _set_message(conn, event, "FAILED", attempts=d["attempt"], last_error_code=d["code"],
                     last_error_message=d["message"])


@handles(t.MESSAGE_DEAD_LETTERED)
def _message_dead_lettered(conn: Connection, event: Event) -> None:
    if _record_message_event(conn, event):
        d = event.data
        _set_message(conn, event, "DEAD_LETTERED", last_error_code=d["code"],
                     last_error_message=d["message"])
        attempts = conn.execute(
            select(messages.c.attempts).where(messages.c.id == d["messageId"])).scalar_one()
        # A later dead-lettering of the same message (it failed again) reopens the entry.
        _upsert(conn, dlq_entries, "id", {
            "id": d["messageId"], "tenant_id": event.tenant, "integration_id": d["integrationId"],
            "status": "DEAD_LETTERED", "stage": d["stage"], "code": d["code"],
            "message": d["message"], "dlq_topic": d["dlqTopic"], "attempts": attempts,
            "traceparent": event.traceparent, "created_at": event.occurred_at_ms,
            "discarded_at": None, "discard_reason": None,
        })


@handles(t.MESSAGE_DISCARDED)
def _message_discarded(conn: Connection, event: Event) -> None:
    """Out of the DLQ listing and the dead-letter count; the message and its history stay."""
    if _record_message_event(conn, event):
        d = event.data
        _set_message(conn, event, "DISCARDED")
        conn.execute(
            update(dlq_entries)
            .where(dlq_entries.c.id == d["messageId"], dlq_entries.c.tenant_id == event.tenant)
            .values(status="DISCARDED", discarded_at=event.occurred_at_ms,
                    discard_reason=d["reason"])
        )


@handles(t.MESSAGE_REPLAYED)
def _message_replayed(conn: Connection, event: Event) -> None:
    """The message is on its way through its integration again: whatever it ended as before
    (delivered, dead-lettered, parked) yields to ``REPLAYING``, and it leaves the DLQ
    listing. One row per message, so a replayed message is never counted twice."""
    if not _record_message_event(conn, event):
        return
    usage.on_replayed(conn, event)
    d = event.data
    values: dict[str, Any] = {"status": "REPLAYING", "replay_id": d["replayId"],
                              "updated_at": event.occurred_at_ms}
    if d.get("payloadJson") is not None:
        values["payload_json"] = d["payloadJson"]
    found = conn.execute(update(messages).where(
        messages.c.id == d["messageId"], messages.c.tenant_id == event.tenant).values(**values))
    if found.rowcount == 0:
        _set_message(conn, event, "REPLAYING", source="replay", replay_id=d["replayId"],
                     payload_json=d.get("payloadJson"))
    conn.execute(
        update(dlq_entries)
        .where(dlq_entries.c.id == d["messageId"], dlq_entries.c.tenant_id == event.tenant,
               dlq_entries.c.status == "DEAD_LETTERED")
        .values(status="REPLAYED", replay_id=d["replayId"])
    )


@handles(t.MESSAGE_REPLAY_REQUESTED)
def _replay_requested(conn: Connection, event: Event) -> None:
    d = event.data
    selection = {key: d[key] for key in ("messageIds", "filterJson", "fromJson", "contentType")
                 if d.get(key)}
    selection["editedPayload"] = d.get("payloadJson") is not None
    _upsert(conn, replays, "id", {
        "id": d["replayId"], "tenant_id": event.tenant, "kind": d["kind"],
        "integration_id": d.get("integrationId"), "status": "PENDING",
        "selection_json": json.dumps(selection), "total": None, "sent": 0, "skipped": 0,
        "created_at": event.occurred_at_ms, "updated_at": event.occurred_at_ms,
    })


@handles(t.REPLAY_PROGRESSED, t.REPLAY_COMPLETED)
def _replay_progressed(conn: Connection, event: Event) -> None:
    d = event.data
    values: dict[str, Any] = {"total": d["total"], "sent": d["sent"], "skipped": d["skipped"],
                              "updated_at": event.occurred_at_ms}
    if event.type == t.REPLAY_COMPLETED:
        values |= {"status": d["status"], "error": d.get("error"),
                   "completed_at": event.occurred_at_ms}
    else:
        values["status"] = "RUNNING"
    conn.execute(update(replays).where(replays.c.id == d["replayId"],
                                       replays.c.tenant_id == event.tenant).values(**values))


@handles(t.MESSAGE_PARKED)
def _message_parked(conn: Connection, event: Event) -> None:
    """PARKED: held, neither delivered nor dead-lettered, until its integration runs again
    (the payload is in the message's ``message.received`` event)."""
    if _record_message_event(conn, event):
        d = event.data
        usage.on_parked(conn, event)
        _set_message(conn, event, "PARKED", last_error_code=d["code"],
                     last_error_message=d["message"])


def sealed_from_text(text: str | None) -> dict[str, Any] | None:
    """Inverse of ``seal_to_text``: the sealed credentials ready for the vault to open."""
    if text is None:
        return None
    raw = json.loads(text)
    return {
        "keyId": raw["keyId"],
        "nonce": base64.b64decode(raw["nonce"]),
        "ciphertext": base64.b64decode(raw["ciphertext"]),
    }
