"""API latency under load: p50/p95/p99 per endpoint, next to a baseline endpoint measured in
the same run (these machines are noisy: the ratio holds, absolute times drift).

    .venv/bin/python -m bench.api_latency [--seconds 10] [--clients 20]

The API runs as its own uvicorn process (`integrationos api`) on SQLite; a load generator in
a separate process keeps ``--clients`` requests in flight for ``--seconds`` per endpoint. The
read models are filled through the real projector (the worker's code), so no broker is
needed for the endpoints measured here: the preview and the sandbox never touch the log.
Baseline: ``GET /v1/connector-types`` (authenticated, no database work beyond the key).
Writes ``bench/results/api_latency.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from integrationos.api.auth import hash_key
from integrationos.store.database import open_database
from integrationos.store.projector import LogRecord, Projector
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

KEY = "ip_test_bench-0123456789abcdef"
TENANT = "bench"
SEED = ('{"FirstName": $substringBefore($.nome_completo, " "), '
        '"LastName": $substringAfter($.nome_completo, " "), "Email": $.email, '
        '"Phone": $.telefone, "IsActive__c": $.ativo}')
PAYLOAD = {"nome_completo": "João Silva", "email": "j@ex.pt"}
RESULTS = Path(__file__).parent / "results" / "api_latency.json"


def _seed(database_url: str) -> None:
    """A tenant, a key, a transformation and an integration, projected as the worker would."""
    events = [
        Event(t.TENANT_CREATED, TENANT, TENANT, {"id": TENANT, "name": TENANT, "plan": "pro"}),
        Event(t.API_KEY_ISSUED, TENANT, "key_bench", {
            "keyId": "key_bench", "keyHash": hash_key(KEY), "prefix": KEY[:12], "name": "b"}),
        Event(t.TRANSFORMATION_CREATED, TENANT, "trf_bench", {
            "id": "trf_bench", "name": "seed", "sourceSchema": None, "targetSchema": None,
            "expression": SEED, "version": 1}),
        Event(t.INTEGRATION_CREATED, TENANT, "int_bench", {
            "id": "int_bench", "name": "seed", "environment": "DEV", "sourceConnectorId": None,
            "targetConnectorId": None, "transformationId": "trf_bench",
            "transformationVersion": 1, "expression": None, "errorStrategy": "RETRY_3_DLQ",
            "version": 1}),
    ]
    engine = open_database(database_url)
    Projector(engine).apply(LogRecord("bench.config.v1", 0, n, codec.encode(e))
                            for n, e in enumerate(events))
    engine.dispose()


ENDPOINTS: dict[str, tuple[str, str, Any]] = {
    "baseline GET /v1/connector-types": ("GET", "/v1/connector-types", None),
    "GET /v1/integrations/{id}": ("GET", "/v1/integrations/int_bench", None),
    "POST /v1/transformations/preview": (
        "POST", "/v1/transformations/preview", {"expression": SEED, "payload": PAYLOAD}),
    "POST /v1/sandbox/execute": (
        "POST", "/v1/sandbox/execute", {"integrationId": "int_bench", "payload": PAYLOAD}),
}


async def _load(base: str, method: str, path: str, body: Any, seconds: float,
                clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    headers = {"X-API-Key": KEY, "X-Tenant-Id": TENANT}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=10) as client:
        deadline = time.perf_counter() + seconds

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.request(method, path, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code >= 400

        await asyncio.gather(*(one_client() for _ in range(clients)))
    cuts = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "errors": errors, "rps": round(len(latencies) / seconds),
            "p50_ms": round(cuts[49], 2), "p95_ms": round(cuts[94], 2),
            "p99_ms": round(cuts[98], 2)}


def _generator(base: str, seconds: float, clients: int, out: Any) -> None:
    """The load generator process: one endpoint after another, results on a queue."""
    for name, (method, path, body) in ENDPOINTS.items():
        asyncio.run(_load(base, method, path, body, 1.0, clients))  # warm-up
        out.put((name, asyncio.run(_load(base, method, path, body, seconds, clients))))
    out.put(None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/bench.db"
        _seed(database_url)
        port = _free_port()
        env = {**os.environ, "IOS_DATA_DIR": tmp, "DATABASE_URL": database_url,
               "IOS_API_PORT": str(port), "IOS_KAFKA_BOOTSTRAP": "127.0.0.1:9"}
        api = subprocess.Popen([sys.executable, "-m", "integrationos.cli.main", "api"],
                               env=env, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{base}/v1/openapi.json", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            queue: Any = multiprocessing.get_context("spawn").Queue()
            generator = multiprocessing.get_context("spawn").Process(
                target=_generator, args=(base, args.seconds, args.clients, queue))
            generator.start()
            results = dict(iter(queue.get, None))
            generator.join()
        finally:
            api.terminate()
            api.wait(10)
    baseline = results["baseline GET /v1/connector-types"]["p95_ms"]
    print(f"{'endpoint':40} {'rps':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'err':>4} "
          f"{'p95/base':>8}")
    for name, r in results.items():
        r["p95_vs_baseline"] = round(r["p95_ms"] / baseline, 2)
        print(f"{name:40} {r['rps']:>6} {r['p50_ms']:>7} {r['p95_ms']:>7} {r['p99_ms']:>7} "
              f"{r['errors']:>4} {r['p95_vs_baseline']:>8}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "parameters": {"seconds": args.seconds, "clients": args.clients},
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
