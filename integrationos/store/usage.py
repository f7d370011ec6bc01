"""The monthly message count behind the quota: ``usage_counters`` rows, changed by message
events as the projection applies them (called by the message handlers in projections.py,
before they change the message's row, whose state they read).

A message counts once, in the month it is admitted:

- ``message.received`` of a message id not seen before: +1 (counted by
  store/message_runs.py, which applies the received events in runs) (a retry or a replay emits no
  ``message.received``, and a duplicate after a crash finds the row already there);
- ``message.parked`` with code ``QUOTA_EXCEEDED``: -1 in the month it was counted in (it
  was not admitted after all; it waits, parked);
- ``message.replayed`` of a message parked for the quota: +1 in the replay's month (it is
  admitted now: engine/quota_release.py releases only as many as the quota has room for).

Each rule looks at the message's state before the event, so an event applied to a state
it already produced changes nothing; the projector's offsets add exactly-once per record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, select, update

from integrationos.store.tables import messages, usage_counters
from integrationos.topics.envelope import Event

QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


def month_of(epoch_ms: int) -> str:
    """The calendar month (UTC) of an instant, as ``usage_counters.month``: ``"2026-02"``."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m")


def add(conn: Connection, tenant: str, month: str, delta: int) -> None:
    where = (usage_counters.c.tenant_id == tenant, usage_counters.c.month == month)
    current = conn.execute(select(usage_counters.c.messages).where(*where)).scalar()
    if current is None:
        if delta > 0:
            conn.execute(usage_counters.insert().values(tenant_id=tenant, month=month,
                                                        messages=delta))
        return
    conn.execute(update(usage_counters).where(*where)
                 .values(messages=max(current + delta, 0)))


def _state(conn: Connection, event: Event) -> tuple[str, str | None, int] | None:
    row = conn.execute(select(messages.c.status, messages.c.last_error_code,
                              messages.c.updated_at).where(
        messages.c.id == event.data["messageId"], messages.c.tenant_id == event.tenant)).first()
    return None if row is None else (row.status, row.last_error_code, row.updated_at)


def _quota_parked(state: tuple[str, str | None, int] | None) -> bool:
    return state is not None and state[0] == "PARKED" and state[1] == QUOTA_EXCEEDED


def on_parked(conn: Connection, event: Event) -> None:
    state = _state(conn, event)
    if event.data["code"] == QUOTA_EXCEEDED and state is not None and not _quota_parked(state):
        # updated_at is the admission's time: the received or replayed event before this one
        add(conn, event.tenant, month_of(state[2]), -1)


def on_replayed(conn: Connection, event: Event) -> None:
    if _quota_parked(_state(conn, event)):
        add(conn, event.tenant, month_of(event.occurred_at_ms), 1)


def used(conn: Connection, tenant: str, month: str) -> int:
    """Messages counted for ``tenant`` in ``month`` so far."""
    return conn.execute(select(usage_counters.c.messages).where(
        usage_counters.c.tenant_id == tenant, usage_counters.c.month == month)).scalar() or 0

