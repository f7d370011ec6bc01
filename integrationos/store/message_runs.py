"""Applies a run of message lifecycle events (received, transformed, delivered, failed) in
a handful of statements instead of four or five per event.

These four make up nearly all of the event trail (three per delivered message), and
applying them one at a time was the worker's largest cost (docs/performance.md). A run of
consecutive lifecycle events from one batch is applied as one read of the events already
recorded, one read of the messages' rows, then multi-row writes, with the rows folded in
memory in log order: the result is the same as applying the events one by one
(tests/store/test_message_runs.py compares the two).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from integrationos.store import usage
from integrationos.store.tables import message_events, messages
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

TERMINAL_STATUSES = frozenset({"DELIVERED", "DEAD_LETTERED", "DISCARDED"})
LIFECYCLE_TYPES = frozenset({t.MESSAGE_RECEIVED, t.MESSAGE_TRANSFORMED, t.MESSAGE_DELIVERED,
                             t.MESSAGE_FAILED})
# Columns a later event may still change on a message that already reached a terminal
# status (a late duplicate of an early event must not move it back).
_KEPT_AFTER_TERMINAL = ("payload_json", "output_json")
_MESSAGE_COLUMNS = tuple(column.name for column in messages.columns)


def settle(current_status: str, status: str, values: dict[str, Any]) -> dict[str, Any]:
    """The columns an event moving a message to ``status`` changes on its existing row: a
    terminal status only yields to another terminal one, so a duplicate early event
    (re-delivery after a crash) never regresses it."""
    if current_status in TERMINAL_STATUSES and status not in TERMINAL_STATUSES:
        return {k: v for k, v in values.items() if k in _KEPT_AFTER_TERMINAL}
    return {**values, "status": status}


def new_message_row(event: Event, status: str, values: dict[str, Any]) -> dict[str, Any]:
    """The row of a message first seen through ``event``; ``source`` is kept only here."""
    source = values.pop("source", "unknown")
    return {"id": event.data["messageId"], "tenant_id": event.tenant,
            "integration_id": event.data.get("integrationId"), "status": status,
            "attempts": 0, "source": source, "received_at": event.occurred_at_ms,
            "updated_at": event.occurred_at_ms, **values}


def message_event_row(event: Event) -> dict[str, Any]:
    """The event's line in the message's history (``message_events``)."""
    return {"event_id": event.event_id, "message_id": event.data["messageId"],
            "tenant_id": event.tenant, "event_type": event.type,
            "occurred_at": event.occurred_at_ms,
            "data_json": json.dumps(event.data, ensure_ascii=False),
            "traceparent": event.traceparent}


def _lifecycle(event: Event) -> tuple[str, dict[str, Any]]:
    """The status a lifecycle event moves its message to, and the columns it sets."""
    d = event.data
    if event.type == t.MESSAGE_RECEIVED:
        return "RECEIVED", {"source": d["source"][:400],
                            "message_key": None if d["key"] is None else d["key"][:400],
                            "payload_json": d["payloadJson"]}
    if event.type == t.MESSAGE_TRANSFORMED:
        return "TRANSFORMED", {"output_json": d["outputJson"]}
    if event.type == t.MESSAGE_DELIVERED:
        return "DELIVERED", {"attempts": d["attempt"]}
    return "FAILED", {"attempts": d["attempt"], "last_error_code": d["code"],
                      "last_error_message": d["message"]}


def _unrecorded(conn: Connection, events: Sequence[Event]) -> list[Event]:
    """The events not yet in ``message_events``, each once, in log order."""
    ids = {event.event_id for event in events}
    seen = set(conn.execute(select(message_events.c.event_id)
                            .where(message_events.c.event_id.in_(ids))).scalars())
    fresh = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            fresh.append(event)
    return fresh


class _Fold:
    """The messages' rows as the run's events leave them, built in memory in log order."""

    def __init__(self, stored: Iterable[Any]) -> None:
        self.stored = {row.id: (row.tenant_id, row.status) for row in stored}
        self.created: dict[str, dict[str, Any]] = {}
        self.changed: dict[str, dict[str, Any]] = {}
        self.admitted: Counter[tuple[str, str]] = Counter()

    def apply(self, event: Event) -> None:
        message_id = event.data["messageId"]
        status, values = _lifecycle(event)
        if event.type == t.MESSAGE_RECEIVED and not self._exists(message_id, event.tenant):
            self.admitted[(event.tenant, usage.month_of(event.occurred_at_ms))] += 1
        if message_id in self.created:
            row = self.created[message_id]
            values.pop("source", None)
            row.update(settle(row["status"], status, values), updated_at=event.occurred_at_ms)
        elif message_id in self.stored:
            tenant, current = self.stored[message_id]
            values.pop("source", None)
            change = settle(current, status, values)
            self.stored[message_id] = (tenant, change.get("status", current))
            self.changed.setdefault(message_id, {}).update(change,
                                                           updated_at=event.occurred_at_ms)
        else:
            self.created[message_id] = new_message_row(event, status, values)

    def _exists(self, message_id: str, tenant: str) -> bool:
        """As the quota counts it: a row of that id in that tenant (usage.on_received)."""
        if message_id in self.created:
            return self.created[message_id]["tenant_id"] == tenant
        return message_id in self.stored and self.stored[message_id][0] == tenant


def apply_run(conn: Connection, events: Sequence[Event]) -> None:
    """Apply consecutive lifecycle events as if one by one, in a few statements."""
    fresh = _unrecorded(conn, events)
    if not fresh:
        return
    ids = {event.data["messageId"] for event in fresh}
    fold = _Fold(conn.execute(select(messages.c.id, messages.c.tenant_id, messages.c.status)
                              .where(messages.c.id.in_(ids))))
    for event in fresh:
        fold.apply(event)
    conn.execute(insert(message_events), [message_event_row(event) for event in fresh])
    if fold.created:
        conn.execute(insert(messages), [{name: row.get(name) for name in _MESSAGE_COLUMNS}
                                         for row in fold.created.values()])
    _write_changes(conn, fold.changed)
    for (tenant, month), admitted in fold.admitted.items():
        usage.add(conn, tenant, month, admitted)


def _write_changes(conn: Connection, changed: dict[str, dict[str, Any]]) -> None:
    """One executemany UPDATE per set of changed columns (usually one or two sets)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for message_id, change in changed.items():
        columns = tuple(sorted(change))
        by_columns.setdefault(columns, []).append(
            {"b_id": message_id, **{f"b_{name}": change[name] for name in columns}})
    for columns, params in by_columns.items():
        statement = (update(messages).where(messages.c.id == bindparam("b_id"))
                     .values({name: bindparam(f"b_{name}") for name in columns}))
        conn.execute(statement, params)
