"""Sending messages parked over the monthly quota once the quota allows them again.

A worker timer (every ``IOS_QUOTA_RELEASE_SECONDS``, default 60) looks for integrations
with messages parked for ``QUOTA_EXCEEDED`` whose tenant has room again (a plan change or
override raised the limit, or a new month began) and requests replays of kind ``PARKED``
naming the oldest of them, as many as the quota has room for (engine/replays.py sends them;
each counts against the quota when it is sent, ``message.replayed``). The rest wait for the
next check, so nothing is dropped and the quota holds.

Every worker runs the timer. The replay id is derived from the integration and the minute,
so workers requesting the same release in the same minute request the same replay; a
tenant is released at most once a minute, and not while a PARKED replay of it is pending or
running, so each release sees the count with the previous one in it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from sqlalchemy import Connection, Engine, or_, select

from integrationos.quota import quota_state
from integrationos.store.tables import messages, replays
from integrationos.store.usage import QUOTA_EXCEEDED
from integrationos.topics import event_types as t
from integrationos.topics.catalog import REPLAYS
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer

log = logging.getLogger(__name__)

RELEASE_BATCH = 10_000
"""The most messages one tenant gets released per check (a replay request names them)."""
_RELEASE_NAMESPACE = uuid.UUID("9d0b6f4e-2c1a-4d8e-b5f3-7a6c1e0d2b94")


def _replay_id(tenant: str, integration_id: str, now_ms: int) -> str:
    minute = now_ms // 60_000
    return "rpl_" + uuid.uuid5(_RELEASE_NAMESPACE, f"{tenant}/{integration_id}/{minute}").hex[:24]


def _releasable(conn: Connection, tenant: str, count: int) -> dict[str, list[str]]:
    """Up to ``count`` of the tenant's quota-parked messages, oldest first, by integration."""
    rows = conn.execute(select(messages.c.id, messages.c.integration_id).where(
        messages.c.tenant_id == tenant, messages.c.status == "PARKED",
        messages.c.last_error_code == QUOTA_EXCEEDED, messages.c.integration_id.is_not(None),
    ).order_by(messages.c.received_at, messages.c.id).limit(count))
    chosen: dict[str, list[str]] = {}
    for row in rows:
        chosen.setdefault(row.integration_id, []).append(row.id)
    return chosen


def release_requests(engine: Engine, now_ms: int) -> list[Event]:
    """The replay requests due now: for each tenant with room under its quota, its oldest
    quota-parked messages up to that room (at most ``RELEASE_BATCH``), one request per
    integration naming them. A tenant with a PARKED replay pending or running, or released
    already this minute, is left for a later check, when the count includes what that
    release sent."""
    with engine.connect() as conn:
        tenants = set(conn.execute(select(messages.c.tenant_id).where(
            messages.c.status == "PARKED", messages.c.last_error_code == QUOTA_EXCEEDED,
        ).distinct()).scalars())
        minute = now_ms // 60_000
        busy = set(conn.execute(select(replays.c.tenant_id).where(
            replays.c.kind == "PARKED", or_(
                replays.c.status.in_(("PENDING", "RUNNING")),
                replays.c.created_at >= minute * 60_000))).scalars())
        requests = []
        for tenant in sorted(tenants - busy):
            state = quota_state(engine, tenant, now_ms)
            room = RELEASE_BATCH if state.limit is None else state.limit - state.used
            if room <= 0:
                continue
            for integration_id, message_ids in _releasable(
                    conn, tenant, min(room, RELEASE_BATCH)).items():
                replay_id = _replay_id(tenant, integration_id, now_ms)
                requests.append(Event(t.MESSAGE_REPLAY_REQUESTED, tenant, replay_id, {
                    "replayId": replay_id, "kind": "PARKED", "integrationId": integration_id,
                    "messageIds": message_ids, "requestedAt": now_ms,
                    "requestedBy": "quota-release"}, occurred_at_ms=now_ms))
    return requests


async def release_parked(engine: Engine, producer: LogProducer, topic_prefix: str) -> None:
    """Request the releases due now; a failure is logged and retried at the next tick."""
    try:
        requests = await asyncio.to_thread(release_requests, engine, int(time.time() * 1000))
        topic = REPLAYS.name(topic_prefix)
        await asyncio.gather(*(producer.append(topic, event) for event in requests))
    except Exception:  # a timer that raises would stop the worker; the next tick retries
        log.exception("releasing quota-parked messages failed; trying again at the next tick")
