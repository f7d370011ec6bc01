"""Observability end to end, on a real broker, a real worker process and the real API: one
message sent with ``POST /v1/integrations/{id}/messages`` to a target that fails once, and a
record that is not JSON, and one whose transform fails and is then replayed with an edited
payload, then

- one trace: the API's spans (in-process, the SDK's ``InMemorySpanExporter``) and the
  worker's (its console exporter writing JSON lines to a file) form a single tree, API
  request → ingest produce → attempt 1 (validate, transform, deliver → connector call) →
  retry release → attempt 2, and the target received the trace context too;
- the replay continues the trace of its API request, and the replayed pass is its child;
- the lineage endpoint gives the events in order with the same trace id;
- the worker's and the API's ``/metrics`` moved by what happened;
- every line of the worker's JSON log parses, and a line written while handling the
  message names that trace.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from integrationos import tracing
from integrationos.api.app import create_app
from integrationos.cli.api_keys import issue_key
from integrationos.settings import Settings
from integrationos.topics.admin import ensure_topics
from integrationos.topics.catalog import INGEST
from tests.conftest import _free_port, delete_topics_named
from tests.support import (
    IdempotentTarget,
    WorkerProcess,
    configure_flow,
    dead_letter_rows,
    ingest,
    platform_environment,
    wait_for,
)

pytestmark = pytest.mark.broker
ROUTE = "/v1/integrations/{id}/messages"


@dataclass
class Scenario:
    message_id: str
    replayed_id: str
    replayed_lineage: dict[str, Any]
    api_spans: list[ReadableSpan]
    worker_spans: list[dict[str, Any]]
    target: IdempotentTarget
    lineage: dict[str, Any]
    worker_metrics: str
    api_metrics_before: str
    api_metrics_after: str
    worker_log: str
    ingest_topic: str


class InProcessApi:
    """The API app under uvicorn on a thread of this process, so its spans reach the test's
    in-memory exporter."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(), host="127.0.0.1", port=self.port, log_config=None))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "the in-process API to start")
        return self.base

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def _fails_once() -> IdempotentTarget:
    answered: list[int] = []

    def verdict(_body: Any) -> int:
        answered.append(503 if not answered else 200)
        return answered[-1]

    return IdempotentTarget(verdict)


@pytest.fixture(scope="module")
def scenario(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Scenario]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("observability")
    data = root / "data"
    env = platform_environment(kafka_bootstrap, prefix, data,
                               f"sqlite:///{data / 'integrationos.db'}")
    spans_file = root / "worker-spans.jsonl"
    metrics_port = _free_port()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    target = _fails_once()
    worker = WorkerProcess({**env, "OTEL_TRACES_EXPORTER": "console",
                            "IOS_TRACES_FILE": str(spans_file), "IOS_LOG_FORMAT": "json",
                            "IOS_WORKER_METRICS_PORT": str(metrics_port)})
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            ensure_topics(kafka_bootstrap, prefix)
            worker.start()
            settings = Settings.from_env()
            configure_flow(settings, target.url, "RETRY_3_DLQ", backoff={
                "initialDelayMs": 200, "maxDelayMs": 200, "multiplier": 1})
            key = issue_key(settings, "acme", "observer", ["admin"], ["DEV"], True).api_key
            tracing.use(provider)
            with InProcessApi() as base, httpx.Client(base_url=base, timeout=30, headers={
                    "X-API-Key": key, "X-Tenant-Id": "acme"}) as api:
                before = api.get("/metrics").text
                assert api.post("/v1/integrations/int_1/messages",
                                headers={"X-API-Key": "ip_live_wrong"}, json={}
                                ).status_code == 401
                sent = api.post("/v1/integrations/int_1/messages",
                                json={"nome_completo": "Ana Lima", "email": "ana@x.pt"})
                assert sent.status_code == 202, sent.text
                message_id = sent.json()["messageId"]
                ingest(settings, [b"{not json"])  # a dead letter, for the DLQ metrics
                # $substringBefore of a number: a permanent transform error, dead-lettered
                replayed_id = api.post("/v1/integrations/int_1/messages", json={
                    "nome_completo": 5, "email": "rui@x.pt"}).json()["messageId"]

                def delivered() -> Any:
                    found = api.get(f"/v1/messages/{message_id}")
                    return found.status_code == 200 and found.json()["status"] == "DELIVERED"

                wait_for(delivered, 60, "the message to be delivered on its second attempt")
                wait_for(lambda: len(dead_letter_rows(settings)) == 2, 30, "the dead letters")
                replay = api.post("/v1/dlq/replay", json={
                    "messageIds": [replayed_id],
                    "payload": {"nome_completo": "Rui Sá", "email": "rui@x.pt"}})
                assert replay.status_code == 202, replay.text

                def replayed() -> Any:
                    return api.get(f"/v1/messages/{replayed_id}").json()["status"] == "DELIVERED"

                wait_for(replayed, 60, "the replayed message's delivery")
                replayed_lineage = api.get(f"/v1/messages/{replayed_id}/trace").json()
                lineage = api.get(f"/v1/messages/{message_id}/trace").json()
                after = api.get("/metrics").text
            # the worker writes a span when it ends: the pass's own span ends last
            wait_for(lambda: spans_file.exists() and sum(
                '"pipeline.message"' in line for line in spans_file.read_text().splitlines()
            ) >= 5, 30, "the worker's spans")
            scrape = f"http://127.0.0.1:{metrics_port}/metrics"

            def sampled_lag() -> str | None:  # the lag is sampled every 5 s
                text = httpx.get(scrape).text
                return text if "ios_consumer_lag_records{" in text else None

            worker_metrics = wait_for(sampled_lag, 30, "a consumer lag sample")
            yield Scenario(
                message_id=message_id, replayed_id=replayed_id,
                replayed_lineage=replayed_lineage, api_spans=list(exporter.get_finished_spans()),
                worker_spans=[json.loads(line) for line in spans_file.read_text().splitlines()],
                target=target, lineage=lineage, worker_metrics=worker_metrics,
                api_metrics_before=before, api_metrics_after=after, worker_log=worker.log(),
                ingest_topic=INGEST.name(prefix),
            )
    finally:
        tracing.use(None)
        worker.stop()
        target.close()
        delete_topics_named(kafka_bootstrap, prefix)


def _request_of(scenario: Scenario, message_id: str) -> ReadableSpan:
    """The API's span of the request that sent ``message_id`` (its produce span's parent)."""
    produce = next(s for s in scenario.api_spans if s.name == "ingest.produce"
                   and s.attributes["ios.message.id"] == message_id)
    return next(s for s in scenario.api_spans
                if s.context.span_id == produce.parent.span_id)


def _accepted(scenario: Scenario) -> ReadableSpan:
    return _request_of(scenario, scenario.message_id)


def _hex(value: str | None) -> str | None:
    return None if value is None else value.removeprefix("0x")


def _one(spans: list[dict[str, Any]], **wanted: Any) -> dict[str, Any]:
    found = [s for s in spans if all(s.get(k) == v for k, v in wanted.items())]
    assert len(found) == 1, f"{wanted}: {len(found)} spans"
    return found[0]


def test_one_trace_from_the_api_request_to_the_second_delivery(scenario: Scenario):
    request = _accepted(scenario)
    produce = next(s for s in scenario.api_spans if s.name == "ingest.produce"
                   and s.attributes["ios.message.id"] == scenario.message_id)
    trace_id = f"{request.context.trace_id:032x}"
    assert request.parent is None
    assert request.attributes["http.route"] == ROUTE
    assert request.attributes["http.response.status_code"] == 202
    assert request.attributes["ios.tenant"] == "acme"
    assert produce.parent.span_id == request.context.span_id
    assert {"ios.tenant": "acme", "ios.integration": "int_1",
            "ios.message.id": scenario.message_id}.items() <= dict(produce.attributes).items()

    mine = [dict(s, span=_hex(s["context"]["span_id"]), parent=_hex(s["parent_id"]))
            for s in scenario.worker_spans
            if _hex(s["context"]["trace_id"]) == trace_id]
    passes = sorted((s for s in mine if s["name"] == "pipeline.message"),
                    key=lambda s: s["attributes"]["ios.attempt"])
    assert [p["attributes"]["ios.attempt"] for p in passes] == [1, 2]
    for attempt in passes:
        assert attempt["kind"] == "SpanKind.CONSUMER"
        assert attempt["attributes"]["ios.tenant"] == "acme"
        assert attempt["attributes"]["ios.integration"] == "int_1"
        assert attempt["attributes"]["ios.message.id"] == scenario.message_id
    first, second = passes
    assert first["parent"] == f"{produce.context.span_id:016x}"

    def children(parent: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in mine if s["parent"] == parent["span"]}

    steps = children(first)
    assert {"pipeline.validate", "pipeline.transform", "pipeline.deliver"} <= set(steps)
    assert steps["pipeline.validate"]["attributes"]["ios.step.status"] == "SKIPPED"  # no schema
    assert steps["pipeline.transform"]["attributes"]["ios.step.status"] == "OK"
    failed_delivery = steps["pipeline.deliver"]
    assert failed_delivery["status"]["status_code"] == "ERROR"
    assert failed_delivery["attributes"]["ios.attempt"] == 1
    call = _one(mine, name="connector.write", parent=failed_delivery["span"])
    assert call["attributes"]["ios.connector.type"] == "HTTP"
    assert call["attributes"]["ios.message.id"] == scenario.message_id
    release = _one(mine, name="retry.release", parent=failed_delivery["span"])
    assert second["parent"] == release["span"]
    delivery = children(second)["pipeline.deliver"]
    assert delivery["status"]["status_code"] == "UNSET"
    assert delivery["attributes"]["ios.attempt"] == 2
    _one(mine, name="connector.write", parent=delivery["span"])

    # the target saw both attempts in the same trace, each from its connector call
    seen = [r["traceparent"] for r in scenario.target.received
            if r["idempotency_key"] == scenario.message_id]
    assert len(seen) == 2
    assert {tracing.trace_id_of(t) for t in seen} == {trace_id}


def test_a_replay_continues_its_requests_trace_down_to_the_new_delivery(scenario: Scenario):
    request = next(s for s in scenario.api_spans if s.name == "POST /v1/dlq/replay")
    trace_id = f"{request.context.trace_id:032x}"
    spans = [dict(s, span=_hex(s["context"]["span_id"]), parent=_hex(s["parent_id"]))
             for s in scenario.worker_spans if _hex(s["context"]["trace_id"]) == trace_id]
    run = _one(spans, name="replay.run")
    assert run["parent"] == f"{request.context.span_id:016x}"
    assert run["attributes"]["ios.replay.kind"] == "DLQ"
    again = _one(spans, name="pipeline.message", parent=run["span"])
    assert again["attributes"]["ios.message.id"] == scenario.replayed_id
    _one(spans, name="connector.write", parent=_one(
        spans, name="pipeline.deliver", parent=again["span"])["span"])

    lineage = scenario.replayed_lineage
    first_pass = f"{_request_of(scenario, scenario.replayed_id).context.trace_id:032x}"
    assert lineage["traceIds"] == [first_pass, trace_id]
    assert [e["type"] for e in lineage["events"]] == [
        "message.received", "message.failed", "message.dead_lettered", "message.replayed",
        "message.transformed", "message.delivered"]
    replayed = lineage["events"][3]
    assert replayed["traceId"] == trace_id and replayed["detail"]["payloadEdited"] is True
    assert lineage["events"][1]["detail"]["stage"] == "transform"
    assert lineage["events"][4]["detail"]["output"] == {"FirstName": "Rui", "Email": "rui@x.pt"}


def test_the_lineage_lists_the_events_with_timings_and_the_trace_id(scenario: Scenario):
    lineage = scenario.lineage
    request = _accepted(scenario)
    assert lineage["traceId"] == f"{request.context.trace_id:032x}"
    assert lineage["traceIds"] == [lineage["traceId"]]
    assert lineage["status"] == "DELIVERED"
    events = lineage["events"]
    assert [e["type"] for e in events] == [
        "message.received", "message.transformed", "message.failed", "message.transformed",
        "message.delivered"]
    assert events[0]["sincePreviousMs"] is None
    assert all(e["sincePreviousMs"] >= 0 for e in events[1:])
    assert lineage["totalDurationMs"] == sum(e["sincePreviousMs"] for e in events[1:])
    assert events[1]["detail"]["output"] == {"FirstName": "Ana", "Email": "ana@x.pt"}
    failed = events[2]["detail"]
    assert failed["attempt"] == 1 and failed["stage"] == "deliver"
    assert failed["errorClass"] == "RETRYABLE" and "503" in failed["error"]["code"]
    assert events[4]["detail"]["attempt"] == 2
    # a retry waits at least the 200 ms backoff
    assert events[3]["sincePreviousMs"] >= 150
    assert all(e["traceId"] == lineage["traceId"] for e in events)


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_the_worker_metrics_count_what_happened(scenario: Scenario):
    m = _samples(scenario.worker_metrics)
    mine = {"tenant": "acme", "integration": "int_1"}
    # Ana: failed delivery, retried, delivered; the bad record: dead-lettered unreceived;
    # Rui: transform failed, dead-lettered, replayed (not received again), delivered
    assert _value(m, "ios_messages_received_total", **mine) == 2
    assert _value(m, "ios_messages_transformed_total", **mine) == 3  # once per attempt
    assert _value(m, "ios_messages_failed_total", stage="deliver", **mine) == 1
    assert _value(m, "ios_messages_failed_total", stage="transform", **mine) == 1
    assert _value(m, "ios_messages_delivered_total", **mine) == 2
    assert _value(m, "ios_messages_dead_lettered_total", stage="ingest", **mine) == 1
    assert _value(m, "ios_messages_dead_lettered_total", stage="transform", **mine) == 1
    assert _value(m, "ios_pipeline_stage_duration_seconds_count", stage="deliver") == 3
    assert _value(m, "ios_pipeline_stage_duration_seconds_count", stage="transform") == 4
    assert _value(m, "ios_pipeline_stage_duration_seconds_count", stage="message") == 5
    assert _value(m, "ios_jsonata_evaluation_duration_seconds_count") == 4
    calls = {"connector_type": "HTTP", "operation": "write"}
    assert _value(m, "ios_connector_calls_total", outcome="error", **calls) == 1
    assert _value(m, "ios_connector_calls_total", outcome="ok", **calls) == 2
    assert _value(m, "ios_connector_call_duration_seconds_count", **calls) == 3
    assert _value(m, "ios_connector_up", tenant="acme", connector="con_1",
                  connector_type="HTTP") == 1
    lags = {labels: v for (name, labels), v in m.items() if name == "ios_consumer_lag_records"
            and dict(labels)["topic"] == scenario.ingest_topic}
    assert len(lags) == 6 and all(v >= 0 for v in lags.values())
    assert not any("msg_" in value for (_, labels) in m for _, value in labels)


def test_the_api_metrics_count_requests_by_route_and_the_dlq(scenario: Scenario):
    before, after = _samples(scenario.api_metrics_before), _samples(scenario.api_metrics_after)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("ios_api_requests_total", method="POST", route=ROUTE, status="202") == 2
    assert moved("ios_api_requests_total", method="POST", route=ROUTE, status="401") == 1
    assert moved("ios_api_request_duration_seconds_count", method="POST", route=ROUTE,
                 status="202") == 2
    assert moved("ios_api_requests_total", method="POST", route="/v1/dlq/replay",
                 status="202") == 1
    assert moved("ios_api_requests_total", method="GET", route="/v1/messages/{id}/trace",
                 status="200") == 2
    assert moved("ios_api_requests_total", method="GET", route="/metrics", status="200") == 1
    # the replayed message left the DLQ; the record that is not JSON waits there
    assert _value(after, "ios_dlq_messages", tenant="acme", integration="int_1") == 1
    paths = {dict(labels).get("route") for (_, labels) in after}
    assert not any(p and scenario.message_id in p for p in paths)


def test_every_worker_log_line_is_json_and_names_the_trace(scenario: Scenario):
    lines = [line for line in scenario.worker_log.splitlines() if line.strip()]
    assert lines
    parsed = [json.loads(line) for line in lines]
    assert all({"timestamp", "level", "logger", "message"} <= set(p) for p in parsed)
    request = _accepted(scenario)
    retry = next(p for p in parsed if "attempt 1 failed" in p["message"])
    assert retry["trace_id"] == f"{request.context.trace_id:032x}"
    assert retry["tenant"] == "acme" and retry["integration"] == "int_1"
    assert retry["message_id"] == scenario.message_id
    span_ids = {_hex(s["context"]["span_id"]) for s in scenario.worker_spans}
    assert retry["span_id"] in span_ids
    assert "Ana Lima" not in scenario.worker_log  # no payload above debug

