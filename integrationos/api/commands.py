"""The write path: append an event to the log, then wait until the projection has it.

The log is the source of truth; tables are derived from it by the worker. Waiting for the
projection to pass the event's offset gives clients read-your-writes: a POST followed by a
GET sees the result. Both waits are bounded by ``projection_wait_seconds``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.concurrency import run_in_threadpool

from integrationos.api.context import Platform
from integrationos.api.errors import ApiError
from integrationos.store.projector import applied_through
from integrationos.topics.envelope import Event
from integrationos.topics.producer import AppendFailed

POLL_SECONDS = 0.01


async def acked(platform: Platform, delivery: Awaitable[tuple[int, int]]) -> tuple[int, int]:
    """(partition, offset) once the broker has the record, or 503 ``LOG_UNAVAILABLE``."""
    timeout = platform.settings.projection_wait_seconds
    try:
        return await asyncio.wait_for(delivery, timeout)
    except (TimeoutError, AppendFailed):
        raise ApiError(
            503,
            "LOG_UNAVAILABLE",
            f"the event log did not acknowledge the write within {timeout:g} s; it may "
            "still be written, so read before retrying",
            headers={"Retry-After": "1"},
        ) from None


async def commit(platform: Platform, event: Event) -> None:
    """Append ``event`` to the config topic and return once the read model reflects it."""
    await commit_to(platform, platform.config_topic, event)


async def commit_to(platform: Platform, topic: str, event: Event) -> None:
    """Append ``event`` to ``topic`` (the partition of its key) and return once the read model
    reflects it: how writes to the message-events topic (e.g. a discard) are read back."""
    partition, offset = await acked(platform, platform.producer.append(topic, event))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + platform.settings.projection_wait_seconds
    while await run_in_threadpool(applied_through, platform.engine, topic, partition) <= offset:
        if loop.time() >= deadline:
            raise ApiError(
                503,
                "PROJECTION_TIMEOUT",
                "accepted into the log, not yet applied; is a worker running?",
                [{"eventId": event.event_id, "partition": partition, "offset": offset}],
                headers={"Retry-After": "1"},
            )
        await asyncio.sleep(POLL_SECONDS)
