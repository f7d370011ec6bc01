"""Retrying an agent's batch until it succeeds.

Faust acknowledges a batch even when the agent's body raised, then restarts the agent on
the next batch: the records of the failed one would be committed without having been
processed. So a batch that fails because the broker or the database is unreachable for
longer than the clients' own retries (librdkafka gives up after 5 minutes) is tried again,
with backoff, for as long as it takes. Work in a batch is idempotent or at-least-once by
design (projections skip applied offsets; targets see the same idempotency keys), so a
second try is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_WAIT_S = 0.5
LONGEST_WAIT_S = 30.0


async def until_done(what: str, attempt: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``await attempt(*args)`` until it returns; only cancellation (shutdown) stops it."""
    wait = FIRST_WAIT_S
    while True:
        try:
            return await attempt(*args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever it was, the batch must not be skipped
            log.error("%s failed (%s: %s); trying the same batch again in %.1f s",
                      what, type(exc).__name__, str(exc)[:300], wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT_S)
