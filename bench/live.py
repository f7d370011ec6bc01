"""A live platform for the benchmarks that need one: the real broker, a real worker, the
real API and a fast local HTTP target, each in its own process.

The worker and the API are started by the test suite's own wrappers (``WorkerProcess``,
``ApiProcess`` in tests/conftest.py), so a benchmark runs them exactly as the end-to-end
tests do. Each platform gets its own topic prefix and data directory, and deletes its topics
when it stops: the broker is shared with other runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import multiprocessing
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient

from integrationos.cli.devbroker import DevBroker
from integrationos.cli.tenants import change_plan, create_tenant
from integrationos.settings import Settings
from integrationos.topics.admin import ensure_topics
from tests.conftest import ApiProcess, WorkerProcess

BENCH_REQUESTS_PER_MINUTE = 100_000_000
"""The benchmark tenants' rate limit: far above any load this machine can make."""


def bootstrap() -> str:
    """The broker named by IOS_KAFKA_BOOTSTRAP; the dev broker is started if none answers
    (as the test suite does), so one command is enough on a fresh checkout."""
    settings = Settings.from_env()
    broker = DevBroker.from_settings(settings)
    if not broker.answers():
        broker.start()
    return settings.kafka_bootstrap


@dataclasses.dataclass
class LivePlatform:
    """One isolated platform: own topics, own database, own master key."""

    settings: Settings
    env: dict[str, str]
    worker: WorkerProcess | None = None
    api: ApiProcess | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def base(self) -> str:
        assert self.api is not None, "the API was not started"
        return self.api.base

    def client(self, timeout: float = 60) -> httpx.Client:
        """An authenticated client of the platform's API."""
        return httpx.Client(base_url=self.base, headers=self.headers, timeout=timeout)


def _env(root: Path, database_url: str | None) -> dict[str, str]:
    prefix = f"b{uuid.uuid4().hex[:10]}"
    data_dir = root / prefix
    data_dir.mkdir(parents=True)
    return {"IOS_KAFKA_BOOTSTRAP": bootstrap(), "IOS_TOPIC_PREFIX": prefix,
            "IOS_DATA_DIR": str(data_dir), "IOS_MASTER_KEY": "",
            "DATABASE_URL": database_url or f"sqlite:///{data_dir / 'integrationos.db'}"}


def _settings(env: dict[str, str]) -> Settings:
    base = Settings.from_env()
    return dataclasses.replace(
        base, kafka_bootstrap=env["IOS_KAFKA_BOOTSTRAP"], topic_prefix=env["IOS_TOPIC_PREFIX"],
        data_dir=Path(env["IOS_DATA_DIR"]), database_url=env["DATABASE_URL"], master_key="")


def delete_topics(bootstrap_servers: str, prefix: str) -> None:
    """Remove every topic of ``prefix`` from the shared broker."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    names = [n for n in admin.list_topics(timeout=30).topics if n.startswith(f"{prefix}.")]
    for future in (admin.delete_topics(names).values() if names else []):
        future.result(60)


@contextmanager
def live_platform(root: Path, worker: bool = True, api: bool = True,
                  database_url: str | None = None) -> Iterator[LivePlatform]:
    """Topics, then (optionally) a worker, a tenant and the API; all stopped on exit."""
    env = _env(root, database_url)
    platform = LivePlatform(_settings(env), env)
    ensure_topics(env["IOS_KAFKA_BOOTSTRAP"], env["IOS_TOPIC_PREFIX"])
    try:
        if worker:
            # Not the tests' INFO: that logs a line per HTTP delivery, which a benchmark pays.
            platform.worker = WorkerProcess(env, loglevel="warning")
            platform.worker.start(timeout=120)
            created = create_tenant(platform.settings, "Bench", "enterprise")
            # A benchmark measures the platform, not the tenant's rate limit (Enterprise:
            # 1,000 requests a minute, a few seconds of this load).
            change_plan(platform.settings, created.tenant_id, "enterprise",
                        {"requestsPerMinute": BENCH_REQUESTS_PER_MINUTE})
            platform.headers = {"X-API-Key": created.api_key, "X-Tenant-Id": created.tenant_id}
        if api:
            platform.api = ApiProcess(env)
            platform.api.start()
        yield platform
    finally:
        for process in (platform.api, platform.worker):
            if process is not None:
                process.stop()
        delete_topics(env["IOS_KAFKA_BOOTSTRAP"], env["IOS_TOPIC_PREFIX"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _TargetApp:
    """The target's ASGI app. ``POST /hook`` answers ``status`` (changed with
    ``PUT /control/status``) and, when 2xx, records the idempotency key, the arrival time
    and the body's ``sentAt``; ``GET /control/stats`` reports them, ``POST /control/reset``
    forgets them. No framework: the target must not be the bottleneck."""

    def __init__(self) -> None:
        self.status = 200
        self._forget()

    def _forget(self) -> None:
        self.keys: list[str] = []
        self.arrivals: list[float] = []
        self.latencies_ms: list[float] = []
        self.refused = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, answer = self._handle(scope, body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    def _handle(self, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
        route = (scope["method"], scope["path"])
        if route == ("PUT", "/control/status"):
            self.status = int(body)
        elif route == ("POST", "/control/reset"):
            self._forget()
        elif route == ("GET", "/control/stats"):
            return 200, json.dumps({
                "delivered": len(self.keys), "distinct": len(set(self.keys)),
                "refused": self.refused, "first": min(self.arrivals, default=None),
                "last": max(self.arrivals, default=None),
                "latencies_ms": self.latencies_ms}).encode()
        else:
            return self._hook(scope, body), b"{}"
        return 200, b"{}"

    def _hook(self, scope: dict[str, Any], body: bytes) -> int:
        now = time.time()
        if self.status >= 300:
            self.refused += 1
            return self.status
        headers = dict(scope["headers"])
        self.keys.append(headers.get(b"idempotency-key", b"").decode())
        self.arrivals.append(now)
        sent_at = json.loads(body).get("sentAt") if body else None
        if isinstance(sent_at, float):
            self.latencies_ms.append((now - sent_at) * 1000)
        return self.status


def _serve_target(port: int) -> None:
    import uvicorn

    uvicorn.run(_TargetApp(), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, backlog=2048)


class TargetServer:
    """The fast HTTP target in its own process (so its work is not charged to the caller's
    event loop or the worker's)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/hook"
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve_target, args=(self.port,), daemon=True)

    def __enter__(self) -> TargetServer:
        self._process.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                self.stats()
                return self
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def __exit__(self, *_: object) -> None:
        self._process.terminate()
        self._process.join(10)

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.base}/control/stats", timeout=30).json()

    def set_status(self, status: int) -> None:
        httpx.put(f"{self.base}/control/status", content=str(status), timeout=10)

    def reset(self) -> None:
        httpx.post(f"{self.base}/control/reset", timeout=10)

    def wait_for_deliveries(self, count: int, timeout: float,
                            counted: str = "distinct") -> dict[str, Any]:
        """The stats once ``count`` messages have arrived (or raise on timeout): distinct
        idempotency keys, or every request with ``counted="delivered"``."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats[counted] >= count:
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stats[counted]} of {count} messages reached the "
                                   f"target in {timeout:g} s")
            time.sleep(0.2)


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in 0..1), or None with no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))], 2)


def run_in_process(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a fresh (spawned) process; its return value comes back. The
    load generator runs this way so it never shares a GIL with what it measures."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_call_into, args=(queue, function, args))
    process.start()
    result = queue.get()
    process.join(30)
    if isinstance(result, BaseException):
        raise result
    return result


def _call_into(queue: Any, function: Any, args: tuple[Any, ...]) -> None:
    try:
        result = function(*args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        queue.put(result)
    except Exception as exc:
        queue.put(exc)
