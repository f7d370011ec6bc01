"""The load generator: ``clients`` requests kept in flight against one endpoint, for a fixed
time or a fixed number of requests. Run it in a process of its own
(``bench.live.run_in_process(generate, load)``) so it never shares a GIL with what it
measures. aiohttp rather than httpx: its client costs less CPU per request, and on a
2-core machine the generator's CPU is taken from the server's.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.live import percentile


@dataclass(frozen=True)
class Load:
    base: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None
    clients: int = 50
    seconds: float | None = None
    """Run this long ..."""
    count: int | None = None
    """... or send this many requests."""
    stamp: bool = False
    """Add ``seq`` and ``sentAt`` (epoch seconds) to each (object) body: the target
    measures end-to-end latency from it."""
    rate: float | None = None
    """Paced: start requests on a fixed schedule of ``rate`` per second in all (the
    ``clients`` share it) instead of as fast as answers come back. Latency is then taken
    from each request's scheduled start, so a server that falls behind the schedule is
    charged for the wait (no coordinated omission)."""


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: int = 0
    """Requests that got no answer at all (refused, reset, timed out)."""
    started: float = 0.0
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return self.failures + sum(n for status, n in self.statuses.items() if status >= 400)

    def summary(self) -> dict[str, Any]:
        requests = len(self.latencies_ms)
        return {"requests": requests, "rps": round(requests / self.seconds, 1),
                "p50_ms": percentile(self.latencies_ms, 0.50),
                "p95_ms": percentile(self.latencies_ms, 0.95),
                "p99_ms": percentile(self.latencies_ms, 0.99), "errors": self.errors}


async def generate(load: Load) -> Outcome:
    """Drive ``load``; every request's latency and status, and the wall time taken."""
    outcome, issued = Outcome(), 0
    connector = aiohttp.TCPConnector(limit=load.clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(load.base, connector=connector, headers=load.headers,
                                     timeout=timeout) as session:
        outcome.started, started = time.time(), time.perf_counter()
        deadline = started + (load.seconds or float("inf"))

        def take() -> int | None:
            nonlocal issued
            if time.perf_counter() >= deadline or (load.count is not None
                                                    and issued >= load.count):
                return None
            issued += 1
            return issued - 1

        async def client() -> None:
            while (seq := take()) is not None:
                scheduled = time.perf_counter()
                if load.rate:
                    scheduled = started + seq / load.rate
                    await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                await _one(session, load, seq, outcome, scheduled)

        await asyncio.gather(*(client() for _ in range(load.clients)))
        outcome.seconds = time.perf_counter() - started
    return outcome


async def _one(session: aiohttp.ClientSession, load: Load, seq: int, outcome: Outcome,
               started: float) -> None:
    body = load.body
    if load.stamp:
        body = {**body, "seq": seq, "sentAt": time.time()}
    try:
        async with session.request(load.method, load.path, json=body) as response:
            await response.read()
            outcome.statuses[response.status] += 1
    except (aiohttp.ClientError, TimeoutError):
        outcome.failures += 1
        return
    outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
