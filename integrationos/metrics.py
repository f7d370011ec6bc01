"""Prometheus metrics of the API and the workers (``prometheus-client``, default registry).

Names follow Prometheus conventions: an ``ios_`` namespace, the unit in the name,
``_total`` counters and ``_seconds`` histograms. Label sets are bounded: route templates
(never raw paths), tenants, integrations, connector ids and types, stages, topics and
partitions: configured things, never a message id or a payload value. The table with every
name and label is in docs/observability.md, and ``tests/test_deploy.py`` checks that the
dashboard and the alert rules in deploy/ name only metrics defined here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from integrationos.topics import event_types as t

log = logging.getLogger(__name__)

# Seconds: 1 ms to 30 s, the span of a JSONata evaluation to a slow target.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0)
# JSONata evaluations are bounded by IOS_JSONATA_TIMEOUT_MS (250 ms by default).
_JSONATA_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                    0.05, 0.1, 0.25, 1.0)

API_REQUESTS = Counter(
    "ios_api_requests_total", "HTTP requests answered by the API.",
    ["method", "route", "status"])
API_REQUEST_SECONDS = Histogram(
    "ios_api_request_duration_seconds", "Time to answer an HTTP request.",
    ["method", "route", "status"], buckets=_LATENCY_BUCKETS)

MESSAGES_RECEIVED = Counter(
    "ios_messages_received_total", "Messages received by the pipeline (first pass).",
    ["tenant", "integration"])
MESSAGES_TRANSFORMED = Counter(
    "ios_messages_transformed_total", "Messages validated and transformed.",
    ["tenant", "integration"])
MESSAGES_DELIVERED = Counter(
    "ios_messages_delivered_total", "Messages delivered to their target (or filtered out).",
    ["tenant", "integration"])
MESSAGES_FAILED = Counter(
    "ios_messages_failed_total", "Failed attempts (a message retried twice counts twice).",
    ["tenant", "integration", "stage"])
MESSAGES_DEAD_LETTERED = Counter(
    "ios_messages_dead_lettered_total", "Messages written to the dead-letter topic.",
    ["tenant", "integration", "stage"])
MESSAGES_PARKED = Counter(
    "ios_messages_parked_total", "Messages parked (integration paused, quota, FAIL_FAST).",
    ["tenant", "integration"])

STAGE_SECONDS = Histogram(
    "ios_pipeline_stage_duration_seconds",
    "Time spent in one pipeline stage of one attempt (validate, transform, validateOutput, "
    "deliver) and in the whole pass (message).",
    ["stage"], buckets=_LATENCY_BUCKETS)
JSONATA_SECONDS = Histogram(
    "ios_jsonata_evaluation_duration_seconds", "Time of one JSONata evaluation.",
    buckets=_JSONATA_BUCKETS)

CONNECTOR_CALLS = Counter(
    "ios_connector_calls_total", "Calls into connectors by operation and outcome.",
    ["connector_type", "operation", "outcome"])
CONNECTOR_CALL_SECONDS = Histogram(
    "ios_connector_call_duration_seconds", "Time of one connector call.",
    ["connector_type", "operation"], buckets=_LATENCY_BUCKETS)
CONNECTOR_UP = Gauge(
    "ios_connector_up",
    "1 if the connector's last call reached it (test UP, delivery answered), 0 if not.",
    ["tenant", "connector", "connector_type"])

CONSUMER_LAG = Gauge(
    "ios_consumer_lag_records",
    "Records in a partition this worker has not read yet (high watermark - position).",
    ["topic", "partition"])

_BY_EVENT: dict[str, Counter] = {
    t.MESSAGE_RECEIVED: MESSAGES_RECEIVED,
    t.MESSAGE_TRANSFORMED: MESSAGES_TRANSFORMED,
    t.MESSAGE_DELIVERED: MESSAGES_DELIVERED,
    t.MESSAGE_PARKED: MESSAGES_PARKED,
}
_BY_EVENT_AND_STAGE: dict[str, Counter] = {
    t.MESSAGE_FAILED: MESSAGES_FAILED,
    t.MESSAGE_DEAD_LETTERED: MESSAGES_DEAD_LETTERED,
}


def count_message_event(event_type: str, tenant: str, integration: str, stage: str = ""
                        ) -> None:
    """Count one message lifecycle event the pipeline emitted (its one hook)."""
    counter = _BY_EVENT.get(event_type)
    if counter is not None:
        counter.labels(tenant, integration).inc()
        return
    counter = _BY_EVENT_AND_STAGE.get(event_type)
    if counter is not None:
        counter.labels(tenant, integration, stage).inc()


class DlqDepth(Collector):
    """``ios_dlq_messages``: dead letters waiting (not replayed or discarded), read from the
    projection when scraped, so every API replica reports the same number."""

    def __init__(self, count: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
        self._count = count

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("ios_dlq_messages",
                                   "Dead-lettered messages waiting in the DLQ.",
                                   labels=["tenant", "integration"])
        try:
            rows = list(self._count())
        except Exception:  # a scrape must answer even while the database is away
            log.warning("could not count the DLQ for /metrics", exc_info=True)
            rows = []
        for tenant, integration, depth in rows:
            family.add_metric([tenant, integration or ""], depth)
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # collected only when scraped: never during registration


_registered: dict[str, Collector] = {}
_lock = threading.Lock()


def register_once(name: str, collector: Collector) -> None:
    """Register a collector under ``name``, replacing the one an earlier app registered
    (tests build several apps in one process)."""
    with _lock:
        old = _registered.pop(name, None)
        if old is not None:
            REGISTRY.unregister(old)
        REGISTRY.register(collector)
        _registered[name] = collector


def serve(host: str, port: int) -> int:
    """The worker's /metrics on its own HTTP server thread; the port it listens on."""
    server, _thread = start_http_server(port, addr=host)
    bound = int(server.server_address[1])
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return bound
