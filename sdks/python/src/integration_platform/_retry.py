"""When to try a request again, and after how long: pure decisions, no I/O, shared by the
sync and the async client.

- A connection that could not be opened (nothing was sent) is retried for every call.
- 429 is retried for every call: the rate limiter answers before any handler runs, so the
  request did nothing. The wait is ``Retry-After``, else the ``X-RateLimit-Reset`` time when
  ``X-RateLimit-Remaining`` is 0; a wait longer than ``max_wait`` (a month's quota used up)
  is not slept through: the ``RateLimitError`` is raised at once.
- 5xx and errors after the request may have reached the server (read timeout, reset) are
  retried only for calls marked ``retryable``: GET/PUT/DELETE, POSTs without side effects
  (connector test, sandbox, preview) and POSTs that carry the SDK's ``Idempotency-Key``
  (replays), because retrying anything else could do it twice.
- Backoff is exponential with full jitter (a random delay up to ``initial * 2**attempt``,
  capped), so many clients failing together do not come back together.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Optional

import httpx

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
# Failures where the request provably never left: safe to repeat for any method.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_wait: float = 60.0
    """The longest ``Retry-After`` or rate-limit reset worth waiting for."""
    jitter: Callable[[], float] = random.random
    clock: Callable[[], float] = time.time

    def backoff(self, attempt: int) -> float:
        return self.jitter() * min(self.max_delay, self.initial_delay * (2 ** attempt))

    def after_error(self, retryable: bool, attempt: int, error: Exception) -> Optional[float]:
        """Seconds to wait before retrying after a transport ``error``, or None to give up."""
        if attempt >= self.max_retries:
            return None
        if isinstance(error, NOT_SENT) or retryable:
            return self.backoff(attempt)
        return None

    def after_response(self, retryable: bool, attempt: int,
                       response: httpx.Response) -> Optional[float]:
        """Seconds to wait before retrying after ``response``, or None to keep it."""
        if attempt >= self.max_retries:
            return None
        if response.status_code == 429:
            wait = self._rate_limit_wait(response, attempt)
            return wait if wait <= self.max_wait else None
        if response.status_code in RETRYABLE_STATUS and retryable:
            asked = _seconds(response.headers.get("retry-after"))
            wait = asked if asked is not None else self.backoff(attempt)
            return wait if wait <= self.max_wait else None
        return None

    def _rate_limit_wait(self, response: httpx.Response, attempt: int) -> float:
        asked = _seconds(response.headers.get("retry-after"))
        if asked is not None:
            return asked
        reset = _seconds(response.headers.get("x-ratelimit-reset"))
        if reset is not None and response.headers.get("x-ratelimit-remaining") == "0":
            return max(0.0, reset - self.clock())
        return self.backoff(attempt)


def _seconds(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
