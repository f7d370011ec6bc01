"""Requests per minute per credential, as pure ASGI middleware placed after authentication.

The window is fixed and aligned to the minute (UTC): a credential may make its plan's
``requestsPerMinute`` requests between hh:mm:00 and hh:mm+1:00, and ``X-RateLimit-Reset``
is the window's end (Unix seconds). A client can thus send up to twice the limit across a
window boundary; in exchange the count is one integer per credential and minute, exact
under any concurrency:

- in-process (the default): the count is incremented on the event loop with no ``await``
  between reading and writing it, so concurrent requests cannot both take the last slot;
- Redis (``IOS_REDIS_URL``): one Lua script does ``INCR`` and ``EXPIRE`` atomically on the
  key of (credential, minute), so every API replica draws on the same budget.

Every authenticated response carries ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset``;
a request over the limit is answered ``429 RATE_LIMITED`` with ``Retry-After`` (seconds to
the window's end) and never reaches its handler. Unauthenticated requests (401 by the auth
middleware, and the public paths) carry none.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrationos.api.context import TENANT_SCOPE_KEY
from integrationos.api.errors import error_response
from integrationos.plans import limits_of

CREDENTIAL_SCOPE_KEY = "integrationos.credential"
COUNTER_STATE_KEY = "rate_counter"
"""Where the app's lifespan puts the ``Counter`` (one per process, closed at shutdown)."""
WINDOW_SECONDS = 60
LIMIT_CACHE_SECONDS = 1.0
REDIS_KEY_PREFIX = "ios:ratelimit"

# Returns the count after this request; the key expires after its window (plus a margin,
# so a clock a little behind another replica's never finds it gone early).
_INCR_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class Counter(Protocol):
    async def increment(self, credential: str, window: int) -> int:
        """The number of requests of ``credential`` in ``window`` including this one."""

    async def close(self) -> None:
        """Release connections, if any."""


class InProcessCounter:
    """Counts in this process: exact for one API replica."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, int] = {}

    async def increment(self, credential: str, window: int) -> int:
        if window > self._window:  # a new minute: the old counts can never matter again
            self._window, self._counts = window, {}
        count = self._counts.get(credential, 0) + 1
        self._counts[credential] = count
        return count

    async def close(self) -> None:
        """Nothing to release."""


class RedisCounter:
    """Counts in Redis: exact across every replica that shares the server."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis  # only deployments that configure Redis need it

        self._redis = Redis.from_url(url)
        self._script = self._redis.register_script(_INCR_SCRIPT)

    async def increment(self, credential: str, window: int) -> int:
        key = f"{REDIS_KEY_PREFIX}:{credential}:{window}"
        return int(await self._script(keys=[key], args=[WINDOW_SECONDS * 2]))

    async def close(self) -> None:
        await self._redis.aclose()


def counter_for(redis_url: str) -> Counter:
    return RedisCounter(redis_url) if redis_url else InProcessCounter()


@dataclass(frozen=True)
class Decision:
    limit: int
    count: int
    reset: int

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(self.limit - self.count, 0)),
                "X-RateLimit-Reset": str(self.reset)}


def credential_of(scope: Scope) -> str:
    """What the budget belongs to: the credential the authentication recorded (an API key
    id or a token's subject), else a hash of the X-API-Key header (never the key itself,
    which would end up in Redis)."""
    given = scope.get(CREDENTIAL_SCOPE_KEY)
    if given:
        return str(given)
    key = Headers(scope=scope).get("x-api-key", "")
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]


class RateLimit:
    """Counts each authenticated request against its credential's per-minute budget."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._limits: dict[str, tuple[int, float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or TENANT_SCOPE_KEY not in scope:
            await self.app(scope, receive, send)
            return
        limit = await self._limit(scope, scope[TENANT_SCOPE_KEY])
        counter: Counter = scope["state"][COUNTER_STATE_KEY]
        now = time.time()  # after the await: the window is the one the count lands in
        window = int(now // WINDOW_SECONDS)
        count = await counter.increment(credential_of(scope), window)
        decision = Decision(limit, count, (window + 1) * WINDOW_SECONDS)
        if not decision.allowed:
            retry_after = max(decision.reset - int(now), 1)
            response = error_response(
                429, "RATE_LIMITED", f"more than {limit} requests in this minute; retry "
                f"after {retry_after} s", [{"limit": limit, "resetsAt": decision.reset}],
                headers={**decision.headers(), "Retry-After": str(retry_after)})
            await response(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(decision.headers())
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _limit(self, scope: Scope, tenant: str) -> int:
        """The tenant's requests per minute, read at most once a second per tenant: a plan
        change reaches the limiter within that."""
        cached = self._limits.get(tenant)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        limit = await run_in_threadpool(_requests_per_minute, _platform(scope).engine, tenant)
        self._limits[tenant] = (limit, time.monotonic() + LIMIT_CACHE_SECONDS)
        return limit


def _platform(scope: Scope) -> Any:
    return scope["state"]["platform"]


def _requests_per_minute(engine: Any, tenant: str) -> int:
    with engine.connect() as conn:
        return limits_of(conn, tenant).requests_per_minute
