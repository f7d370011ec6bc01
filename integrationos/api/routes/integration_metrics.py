"""``GET /v1/integrations/{id}/metrics?window=1h``: an integration's recent traffic from the
projections: throughput, error rate and latency percentiles by stage
(store/message_stats.py says how they are computed and sampled).

``window`` is a duration, ``<n>m``, ``<n>h`` or ``<n>d``, from 1 minute to 7 days (the
default is 1h); it covers the messages received in the last ``window``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.context import platform, tenant
from integrationos.api.db import get_live
from integrationos.api.errors import ApiError
from integrationos.api.routing import resource
from integrationos.api.serializers import iso
from integrationos.store.message_stats import (
    SAMPLE_LIMIT,
    STAGES,
    Counts,
    Latencies,
    counts,
    latencies,
    percentile,
)
from integrationos.store.tables import integrations

DEFAULT_WINDOW = "1h"
MIN_WINDOW_SECONDS = 60
MAX_WINDOW_SECONDS = 7 * 24 * 3600
_UNITS = {"m": 60, "h": 3600, "d": 86400}
_WINDOW = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")


def window_seconds(raw: str) -> int:
    """``raw`` as seconds, or 400 ``INVALID_QUERY`` saying what is accepted."""
    match = _WINDOW.fullmatch(raw)
    seconds = int(match[1]) * _UNITS[match[2]] if match else 0
    if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
        raise ApiError(400, "INVALID_QUERY", "invalid query parameter 'window'", [{
            "field": "window", "message": "must be a duration <n>m, <n>h or <n>d from 1m "
            "to 7d, e.g. 15m, 1h, 24h"}])
    return seconds


def _measure(engine: Engine, tenant_id: str, integration_id: str, since_ms: int,
             until_ms: int) -> tuple[Counts, Latencies]:
    with engine.connect() as conn:
        return (counts(conn, tenant_id, integration_id, since_ms, until_ms),
                latencies(conn, tenant_id, integration_id, since_ms, until_ms))


def _latency(values: list[int]) -> dict[str, Any]:
    return {"count": len(values), "p50": percentile(values, 50),
            "p95": percentile(values, 95), "p99": percentile(values, 99)}


async def get_metrics(request: Request) -> Response:
    p, tenant_id, integration_id = platform(request), tenant(request), request.path_params["id"]
    window = request.query_params.get("window", DEFAULT_WINDOW)
    seconds = window_seconds(window)
    await get_live(p.engine, integrations, "integration", tenant_id, integration_id)
    until_ms = int(time.time() * 1000) + 1
    since_ms = until_ms - seconds * 1000
    seen, timings = await run_in_threadpool(_measure, p.engine, tenant_id, integration_id,
                                            since_ms, until_ms)
    minutes = seconds / 60
    delivered = seen.of("DELIVERED")
    return JSONResponse({
        "integrationId": integration_id, "window": window, "from": iso(since_ms),
        "to": iso(until_ms),
        "throughput": {
            "received": seen.received, "delivered": delivered,
            "deadLettered": seen.of("DEAD_LETTERED"), "failed": seen.of("FAILED"),
            "parked": seen.of("PARKED"),
            "inFlight": seen.of("RECEIVED", "TRANSFORMED", "REPLAYING"),
            "receivedPerMinute": round(seen.received / minutes, 3),
            "deliveredPerMinute": round(delivered / minutes, 3),
        },
        "errorRate": None if seen.error_rate is None else round(seen.error_rate, 4),
        "latencyMs": {stage: _latency(timings.samples[stage]) for stage in STAGES},
        "sampledMessages": timings.sampled, "sampleLimit": SAMPLE_LIMIT,
    })


routes = [resource("/v1/integrations/{id}/metrics", GET=get_metrics)]
