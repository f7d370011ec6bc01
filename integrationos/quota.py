"""The monthly message quota as the API and the worker see it: the tenant's limit against the
count the usage projection keeps (integrationos/store/usage.py).

The count is a projection, so it trails the log by the messages in flight (accepted, not yet
projected): the quota holds to within those, not to the message. The worker narrows that
gap by adding what it admitted itself since it last read the count.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from integrationos.plans import limits_of
from integrationos.store.usage import month_of, used

CACHE_SECONDS = 1.0


def month_end_ms(now_ms: int) -> int:
    """When the month of ``now_ms`` ends (UTC): when its quota resets."""
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True)
class QuotaState:
    """A tenant's messages this month against its limit (``None``: unlimited)."""

    limit: int | None
    used: int
    resets_at_ms: int

    def allows(self, count: int = 1) -> bool:
        return self.limit is None or self.used + count <= self.limit


def quota_state(engine: Engine, tenant: str, now_ms: int | None = None) -> QuotaState:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    with engine.connect() as conn:
        limit = limits_of(conn, tenant).messages_per_month
        count = used(conn, tenant, month_of(now_ms))
    return QuotaState(limit, count, month_end_ms(now_ms))


@dataclass
class _Seen:
    state: QuotaState
    month: str
    read_at: float
    admitted: int = 0


class MessageQuota:
    """The worker's view: admits a source message while the tenant is under its quota.

    The projected count is read at most once per ``CACHE_SECONDS`` per tenant (a database
    read per message would cost more than the message); messages admitted here since then
    are added to it. The messages of a batch run concurrently, so when the view expires
    they all find it stale at once: one read serves them all (before, each made its own,
    and the quota reads were a third of a loaded worker's time: docs/performance.md)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._seen: dict[str, _Seen] = {}
        self._reading: dict[str, asyncio.Task[QuotaState]] = {}

    async def admit(self, tenant: str) -> QuotaState | None:
        """``None`` if the message may go on (and is counted here), else the state that
        refuses it."""
        now = time.time()
        month = month_of(int(now * 1000))
        seen = self._seen.get(tenant)
        if _stale(seen, month, now):
            state = await self._read(tenant)
            # The first message back from the read stores the view; the others that waited
            # on the same read keep it, with what was admitted into it meanwhile.
            seen = self._seen.get(tenant)
            if _stale(seen, month, now):
                seen = self._seen[tenant] = _Seen(state, month, now)
        assert seen is not None
        current = QuotaState(seen.state.limit, seen.state.used + seen.admitted,
                             seen.state.resets_at_ms)
        if not current.allows():
            return current
        seen.admitted += 1
        return None

    async def _read(self, tenant: str) -> QuotaState:
        """The projected state, read once however many messages ask at the same time."""
        reading = self._reading.get(tenant)
        if reading is None:
            reading = asyncio.ensure_future(asyncio.to_thread(quota_state, self._engine,
                                                              tenant))
            self._reading[tenant] = reading
            reading.add_done_callback(lambda _: self._reading.pop(tenant, None))
        return await asyncio.shield(reading)


def _stale(seen: _Seen | None, month: str, now: float) -> bool:
    return seen is None or seen.month != month or now - seen.read_at > CACHE_SECONDS
