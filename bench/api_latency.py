"""API latency under load: p50/p95/p99, requests/s and errors per endpoint at a fixed
concurrency, next to a baseline endpoint measured in the same run (these machines are noisy:
the ratio holds, absolute times drift). The goal is p95 under 10 ms on loopback.

    IOS_KAFKA_BOOTSTRAP=127.0.0.1:19092 python -m bench.api_latency

The API runs as its own uvicorn process (`integrationos api`) on SQLite, against the real
broker (``POST .../messages`` answers once the broker has acknowledged the record). A load
generator in a separate process keeps ``clients`` requests in flight for ``seconds`` per
endpoint, after a warm-up. The read models are filled through the real projector (the
worker's code) and no worker runs: its CPU would be taken from the API on a 2-core machine,
and none of these endpoints waits for it. Baseline: ``GET /v1/connector-types``
(authenticated, no database work beyond the key, which is cached).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.live import LivePlatform, live_platform, run_in_process
from bench.load import Load, generate
from integrationos.api.auth import hash_key
from integrationos.store.database import open_database
from integrationos.store.projector import LogRecord, Projector
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

NAME = "api_latency"
KEY = "ip_test_bench-0123456789abcdef"
TENANT = "bench"
SEED = ('{"FirstName": $substringBefore($.nome_completo, " "), '
        '"LastName": $substringAfter($.nome_completo, " "), "Email": $.email, '
        '"Phone": $.telefone, "IsActive__c": $.ativo}')
PAYLOAD = {"nome_completo": "João Silva", "email": "j@ex.pt"}
GOAL_P95_MS = 10.0
# ``paced_rate``: the same clients, paced to that many requests/s in all (well under what
# one API process serves here): latency without the queue of a saturated server.
SIZES = {"tiny": {"clients": 4, "seconds": 2.0, "warmup_seconds": 0.5, "paced_rate": 20.0},
         "full": {"clients": 50, "seconds": 30.0, "warmup_seconds": 3.0,
                  "paced_rate": 200.0}}
BASELINE = "baseline GET /v1/connector-types"
ENDPOINTS: dict[str, tuple[str, str, Any]] = {
    BASELINE: ("GET", "/v1/connector-types", None),
    "GET /v1/integrations/{id}": ("GET", "/v1/integrations/int_bench", None),
    "POST /v1/integrations/{id}/messages": ("POST", "/v1/integrations/int_bench/messages",
                                            PAYLOAD),
    "POST /v1/sandbox/execute": (
        "POST", "/v1/sandbox/execute", {"integrationId": "int_bench", "payload": PAYLOAD}),
    "POST /v1/transformations/preview": (
        "POST", "/v1/transformations/preview", {"expression": SEED, "payload": PAYLOAD}),
}


def _seed(database_url: str) -> None:
    """A tenant, a key, the seed transformation and an integration using it, projected as
    the worker would (no worker runs during the measurement)."""
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


def _measure(platform: LivePlatform, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Each endpoint saturated (requests back to back), then paced; one row each."""
    headers = {"X-API-Key": KEY, "X-Tenant-Id": TENANT}
    rows = []
    for load_name, rate in (("saturated", None), (f"paced {params['paced_rate']:g}/s",
                                                  params["paced_rate"])):
        for name, (method, path, body) in ENDPOINTS.items():
            load = Load(platform.base, method, path, headers, body, params["clients"],
                        rate=rate)
            run_in_process(generate, replace(load, seconds=params["warmup_seconds"]))
            outcome = run_in_process(generate, replace(load, seconds=params["seconds"]))
            rows.append({"endpoint": name, "load": load_name, **outcome.summary()})
    return rows


def _judge(rows: list[dict[str, Any]]) -> None:
    """Each row's p95 against the baseline's under the same load, and against the goal."""
    baselines = {r["load"]: r["p95_ms"] for r in rows if r["endpoint"] == BASELINE}
    for row in rows:
        row["p95_vs_baseline"] = round(row["p95_ms"] / baselines[row["load"]], 2)
        row["p95_under_10ms"] = row["p95_ms"] < GOAL_P95_MS


def _summary(rows: list[dict[str, Any]], clients: int) -> str:
    parts = []
    for load in dict.fromkeys(r["load"] for r in rows):
        measured = [r for r in rows if r["endpoint"] != BASELINE and r["load"] == load]
        worst = max(measured, key=lambda r: r["p95_ms"])
        met = sum(r["p95_under_10ms"] for r in measured)
        parts.append(f"{load}: {met} of {len(measured)} endpoints meet p95 < 10 ms at "
                     f"{clients} clients, worst p95 {worst['p95_ms']} ms "
                     f"({worst['endpoint']}, {worst['p95_vs_baseline']}x the baseline's)")
    return "; ".join(parts)


def run(size: str) -> dict[str, Any]:
    """Measure every endpoint at ``size`` ("tiny" or "full")."""
    params = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp, \
            live_platform(Path(tmp), worker=False) as platform:
        _seed(platform.env["DATABASE_URL"])
        rows = _measure(platform, params)
    _judge(rows)
    return {"name": NAME, "parameters": {**params, "endpoints": list(ENDPOINTS),
                                         "database": "SQLite", "api_processes": 1,
                                         "goal_p95_ms": GOAL_P95_MS},
            "rows": rows, "summary": _summary(rows, params["clients"]),
            "notes": NOTES}


NOTES = [
    "Closed-loop load: with `clients` requests always in flight, mean latency = clients / "
    "throughput (Little's law). p95 under 10 ms at 50 clients needs well over 5,000 "
    "requests/s from the API; one Python process on one core does 700-1,400 here, so the "
    "goal is met by adding API processes (the API is stateless), not by one process.",
    "One API process (uvicorn, h11) on SQLite, no worker; the load generator (aiohttp, its "
    "own process) shares the machine's cores with it, so at 50 clients both are CPU-bound "
    "and latency is mostly queueing: compare each row with the baseline of the same run.",
    "POST /v1/integrations/{id}/messages answers once the broker has acknowledged the "
    "record (acks=all, shared broker on loopback; the producer's linger.ms=5 alone adds up "
    "to 5 ms when traffic is light).",
    "Where the time goes (py-spy on the API process, 50 clients, 8 s per endpoint, "
    "2026-12-04): the event loop is saturated. Baseline: 26% of samples encode the large "
    "connector-types document on every request (a pre-encoded answer would remove it). "
    "Reads, ingest and sandbox: SQLAlchemy execute/fetch on SQLite in the thread pool "
    "(~20-25%) and the hand-off to and from the pool's threads; the sandbox's uncached "
    "FlowCatalog.lookup is 24% of its samples. With up to 40 pool threads querying and "
    "SQLAlchemy keeping 5 SQLite connections, overflow connections are opened and closed "
    "per request, each re-running the WAL PRAGMAs (~4% of samples): a larger SQLite pool "
    "is a cheap next step. uvicorn runs on h11 (httptools is not installed).",
]


if __name__ == "__main__":
    result = run("full")
    for row in result["rows"]:
        print(row)
    print(result["summary"])
