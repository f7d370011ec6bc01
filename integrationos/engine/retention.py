"""Retention: what is older than the tenant's plan allows leaves the read models.

A message expires when its last change (``messages.updated_at``) is older than the tenant's
retention: its row, its events (with its payload) and its dead-letter entry are deleted.
Dead-letter entries older than the retention go too. A parked message is kept whatever its
age: it waits to be sent (on a resume, or once the quota allows), and its payload is in its
events. The log itself keeps message events
and dead letters for the longest retention of any plan (``MAX_RETENTION_DAYS``, the topics'
retention), so a rebuild brings back what a purge removed until the next purge.

Deletes run in bounded batches, each in its own transaction, so the projection (which
shares the database and, in a worker, the writer thread) is never held up for long.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor

from sqlalchemy import Connection, Engine, delete, select

from integrationos.plans import limits_of
from integrationos.store.tables import dlq_entries, message_events, messages, tenants

log = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600.0
BATCH = 500
MAX_BATCHES_PER_RUN = 200
DAY_MS = 24 * 60 * 60 * 1000


def _purge_tenant_batch(conn: Connection, tenant: str, cutoff_ms: int, batch: int) -> int:
    """Delete up to ``batch`` expired messages (with their events and DLQ entry; parked
    ones wait) and up to ``batch`` expired DLQ entries of one tenant; return how many rows
    went."""
    ids = [r.id for r in conn.execute(select(messages.c.id).where(
        messages.c.tenant_id == tenant, messages.c.updated_at < cutoff_ms,
        messages.c.status != "PARKED").limit(batch))]
    deleted = 0
    if ids:
        deleted += conn.execute(delete(message_events).where(
            message_events.c.message_id.in_(ids))).rowcount
        deleted += conn.execute(delete(dlq_entries).where(dlq_entries.c.id.in_(ids))).rowcount
        deleted += conn.execute(delete(messages).where(messages.c.id.in_(ids))).rowcount
    old_entries = [r.id for r in conn.execute(select(dlq_entries.c.id).where(
        dlq_entries.c.tenant_id == tenant, dlq_entries.c.created_at < cutoff_ms).limit(batch))]
    if old_entries:
        deleted += conn.execute(delete(dlq_entries).where(
            dlq_entries.c.id.in_(old_entries))).rowcount
    return deleted


def purge_batch(engine: Engine, now_ms: int, batch: int = BATCH) -> int:
    """One bounded round over every tenant, in one transaction; 0 when nothing is left."""
    with engine.begin() as conn:
        deleted = 0
        for tenant in conn.execute(select(tenants.c.id)).scalars().all():
            cutoff = now_ms - limits_of(conn, tenant).retention_days * DAY_MS
            deleted += _purge_tenant_batch(conn, tenant, cutoff, batch)
        return deleted


async def run_purge(engine: Engine, writer: Executor) -> None:
    """The worker's timer: batches on the projection's writer thread, one at a time, so
    they interleave with projection batches instead of contending with them."""
    loop = asyncio.get_running_loop()
    now_ms = int(time.time() * 1000)
    try:
        for _ in range(MAX_BATCHES_PER_RUN):
            if await loop.run_in_executor(writer, purge_batch, engine, now_ms, BATCH) == 0:
                return
    except Exception:  # a timer that raises would stop the worker; the next run retries
        log.exception("retention purge failed; trying again in %.0f s", PURGE_INTERVAL_SECONDS)
