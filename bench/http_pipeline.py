"""HTTP ingest -> HTTP target: messages/s and end-to-end latency through the whole platform,
next to the same client posting straight to the same target in the same run.

    IOS_KAFKA_BOOTSTRAP=127.0.0.1:19092 python -m bench.http_pipeline

The platform path is the real one: ``POST /v1/integrations/{id}/messages`` on the API
(uvicorn process), the ingest topic on the broker, one worker (Faust process) that
transforms with the seed mapping and delivers to an HTTP target connector. The target is a
minimal ASGI app under uvicorn in its own process; it records when each message arrived.
Every payload carries ``sentAt`` (the generator's clock when it sent it; the mapping copies
it), so end-to-end latency is arrival minus ``sentAt`` on one machine's clock.

Baseline: the same load generator (its own process, same clients, same message count)
posting the mapped payload straight to the target. messages/s is messages over the time
from the first send to the last arrival; the ratio platform/baseline is the headline.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.live import LivePlatform, TargetServer, live_platform, percentile, run_in_process
from bench.load import Load, Outcome, generate

NAME = "http_pipeline"
SIZES = {"tiny": {"messages": 1000, "clients": 10},
         "full": {"messages": 20_000, "clients": 50}}
MAPPING = ('{"FirstName": $substringBefore($.nome_completo, " "), '
           '"LastName": $substringAfter($.nome_completo, " "), "Email": $.email, '
           '"Phone": $.telefone, "IsActive__c": $.ativo, "seq": $.seq, "sentAt": $.sentAt}')
PAYLOAD = {"nome_completo": "João Silva", "email": "j@ex.pt"}
MAPPED = {"FirstName": "João", "LastName": "Silva", "Email": "j@ex.pt"}
WARMUP_MESSAGES = 50


def _created(response: httpx.Response) -> dict[str, Any]:
    if response.status_code not in (200, 201, 202):
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: "
                           f"{response.status_code} {response.text[:500]}")
    return response.json()


def create_http_flow(platform: LivePlatform, target_url: str, expression: str,
                     strategy: str = "RETRY_3_DLQ") -> str:
    """An HTTP target connector and an integration to it, through the API; its id."""
    with platform.client() as client:
        connector = _created(client.post("/v1/connectors", json={
            "name": "bench target", "type": "HTTP", "config": {"url": target_url}}))
        return _created(client.post("/v1/integrations", json={
            "name": "bench flow", "environment": "DEV", "targetConnectorId": connector["id"],
            "expression": expression, "errorStrategy": strategy}))["id"]


def _row(path: str, outcome: Outcome, stats: dict[str, Any], messages: int) -> dict[str, Any]:
    seconds = stats["last"] - outcome.started
    return {"path": path, "messages": messages, "seconds": round(seconds, 2),
            "messages_per_s": round(messages / seconds, 1),
            "e2e_p50_ms": percentile(stats["latencies_ms"], 0.50),
            "e2e_p99_ms": percentile(stats["latencies_ms"], 0.99),
            "send_p99_ms": outcome.summary()["p99_ms"],
            "send_errors": outcome.errors, "delivered": stats["distinct"],
            "duplicates": stats["delivered"] - stats["distinct"]}


def _baseline(target: TargetServer, params: dict[str, Any]) -> dict[str, Any]:
    target.reset()
    load = Load(target.base, "POST", "/hook", {}, MAPPED, params["clients"],
                count=params["messages"], stamp=True)
    outcome = run_in_process(generate, load)
    # The baseline's requests carry no Idempotency-Key: count arrivals, not distinct keys.
    stats = target.wait_for_deliveries(params["messages"], 60, counted="delivered")
    stats["distinct"] = stats["delivered"]
    return _row("baseline: client -> target", outcome, stats, params["messages"])


def _platform(platform: LivePlatform, target: TargetServer, params: dict[str, Any]
              ) -> dict[str, Any]:
    integration = create_http_flow(platform, target.url, MAPPING)
    path = f"/v1/integrations/{integration}/messages"
    warmup = Load(platform.base, "POST", path, platform.headers, PAYLOAD, params["clients"],
                  count=WARMUP_MESSAGES, stamp=True)
    run_in_process(generate, warmup)
    target.wait_for_deliveries(WARMUP_MESSAGES, 120)
    target.reset()
    load = Load(platform.base, "POST", path, platform.headers, PAYLOAD, params["clients"],
                count=params["messages"], stamp=True)
    outcome = run_in_process(generate, load)
    stats = target.wait_for_deliveries(params["messages"] - outcome.errors,
                                       120 + params["messages"] / 50)
    return _row("platform: API -> ingest topic -> worker -> target", outcome, stats,
                params["messages"])


def run(size: str) -> dict[str, Any]:
    """The baseline, then the platform, at ``size`` ("tiny" or "full")."""
    params = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp, TargetServer() as target, \
            live_platform(Path(tmp)) as platform:
        baseline = _baseline(target, params)
        measured = _platform(platform, target, params)
    ratio = round(measured["messages_per_s"] / baseline["messages_per_s"], 3)
    measured["vs_baseline"] = ratio
    baseline["vs_baseline"] = 1.0
    return {"name": NAME,
            "parameters": {**params, "workers": 1, "api_processes": 1, "database": "SQLite",
                           "mapping": MAPPING, "error_strategy": "RETRY_3_DLQ",
                           "warmup_messages": WARMUP_MESSAGES},
            "rows": [baseline, measured],
            "summary": (f"{measured['messages_per_s']} msg/s through the platform (e2e p99 "
                        f"{measured['e2e_p99_ms']} ms) vs {baseline['messages_per_s']} msg/s "
                        f"straight to the target: {ratio}x"),
            "notes": NOTES}


NOTES = [
    "End-to-end latency = arrival at the target - sentAt stamped by the generator. The "
    "generator is closed-loop (each client sends its next message once the API answered), "
    "and the API answers once the broker has the record, before the worker runs it: when "
    "ingest outpaces the worker, a backlog builds and e2e latency grows through the run.",
    "Every process (API, worker, target, generator, shared broker) shares the machine's "
    "cores; the ratio to the baseline of the same run is the figure to compare.",
]


if __name__ == "__main__":
    result = run("full")
    for row in result["rows"]:
        print(row)
    print(result["summary"])
