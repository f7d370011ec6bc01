"""Sending messages parked over the monthly quota once the quota allows them again.

A worker timer (every ``IOS_QUOTA_RELEASE_SECONDS``, default 60) looks for integrations
with messages parked for ``QUOTA_EXCEEDED`` whose tenant has room again (a plan change or
override raised the limit, or a new month began) and requests a replay of kind ``PARKED``
for each (engine/replays.py sends them, oldest first). A released message is checked again
on its way: what does not fit is parked again, to wait for the next release, so nothing is
dropped and the quota still holds.

Every worker runs the timer. The replay id is derived from the integration and the minute,
so workers requesting the same release in the same minute request the same replay, and an
integration is released at most once a minute; one with a PARKED replay still pending or
running is left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from sqlalchemy import Engine, select

from integrationos.quota import quota_state
from integrationos.store.tables import messages, replays
from integrationos.store.usage import QUOTA_EXCEEDED
from integrationos.topics import event_types as t
from integrationos.topics.catalog import REPLAYS
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer

log = logging.getLogger(__name__)

_RELEASE_NAMESPACE = uuid.UUID("9d0b6f4e-2c1a-4d8e-b5f3-7a6c1e0d2b94")


def _replay_id(tenant: str, integration_id: str, now_ms: int) -> str:
    minute = now_ms // 60_000
    return "rpl_" + uuid.uuid5(_RELEASE_NAMESPACE, f"{tenant}/{integration_id}/{minute}").hex[:24]


def release_requests(engine: Engine, now_ms: int) -> list[Event]:
    """The replay requests due now: one per integration with quota-parked messages whose
    tenant is under its quota, unless a PARKED replay of it is pending or running, or this
    minute's release of it was already requested."""
    with engine.connect() as conn:
        parked = conn.execute(select(messages.c.tenant_id, messages.c.integration_id).where(
            messages.c.status == "PARKED", messages.c.last_error_code == QUOTA_EXCEEDED,
            messages.c.integration_id.is_not(None)).distinct()).all()
        busy = {(r.tenant_id, r.integration_id) for r in conn.execute(
            select(replays.c.tenant_id, replays.c.integration_id).where(
                replays.c.kind == "PARKED", replays.c.status.in_(("PENDING", "RUNNING"))))}
        ids = {(r.tenant_id, r.integration_id): _replay_id(r.tenant_id, r.integration_id,
                                                           now_ms) for r in parked}
        requested = set(conn.execute(select(replays.c.id).where(
            replays.c.id.in_(list(ids.values())))).scalars())
    room: dict[str, bool] = {}
    requests = []
    for (tenant, integration_id), replay_id in ids.items():
        if (tenant, integration_id) in busy or replay_id in requested:
            continue
        if tenant not in room:
            room[tenant] = quota_state(engine, tenant, now_ms).allows()
        if room[tenant]:
            requests.append(Event(t.MESSAGE_REPLAY_REQUESTED, tenant, replay_id, {
                "replayId": replay_id, "kind": "PARKED", "integrationId": integration_id,
                "requestedAt": now_ms, "requestedBy": "quota-release"}))
    return requests


async def release_parked(engine: Engine, producer: LogProducer, topic_prefix: str) -> None:
    """Request the releases due now; a failure is logged and retried at the next tick."""
    try:
        requests = await asyncio.to_thread(release_requests, engine, int(time.time() * 1000))
        topic = REPLAYS.name(topic_prefix)
        await asyncio.gather(*(producer.append(topic, event) for event in requests))
    except Exception:  # a timer that raises would stop the worker; the next tick retries
        log.exception("releasing quota-parked messages failed; trying again at the next tick")
