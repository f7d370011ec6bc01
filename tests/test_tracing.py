"""Tracing's configuration from OTEL_* variables, the Kafka header propagation, and the
exporters a process can be given (the end-to-end trace is in test_observability.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integrationos import tracing

CLIENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.use(provider)
    yield spans
    tracing.use(None)


@pytest.mark.parametrize(("env", "wanted"), [
    ({}, []),
    ({"OTEL_TRACES_EXPORTER": "none"}, []),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
    ({"OTEL_TRACES_EXPORTER": "console, OTLP"}, ["console", "otlp"]),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, []),
])
def test_tracing_is_on_only_when_an_exporter_is_configured(env, wanted):
    assert tracing.exporters_wanted(env) == wanted


def test_with_nothing_configured_spans_are_the_no_op_span():
    assert tracing.configure("svc", "i1", {}) is False
    assert not tracing.enabled()
    with tracing.span("anything") as span:
        assert span is tracing.NO_SPAN and not span.is_recording()
    headers = [("ios-tenant", b"acme")]
    assert tracing.inject(headers) is headers  # nothing to carry


def test_a_propagated_context_is_carried_on_even_with_tracing_off():
    token = tracing.attach(tracing.extract({"traceparent": CLIENT.encode()}))
    try:
        carried = dict(tracing.inject([("ios-tenant", b"acme"), ("traceparent", b"old")]))
    finally:
        tracing.detach(token)
    assert carried == {"ios-tenant": b"acme", "traceparent": CLIENT.encode()}
    assert tracing.trace_id_of(CLIENT) == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_record_produced_in_a_span_makes_the_consumer_its_child(exporter):
    with tracing.span("produce") as producing:
        headers = tracing.inject([("ios-tenant", b"acme")])
    parent = tracing.extract(headers)
    with tracing.span("consume", parent=parent) as consuming:
        pass
    assert consuming.parent.span_id == producing.get_span_context().span_id
    assert consuming.get_span_context().trace_id == producing.get_span_context().trace_id
    assert {k for k, _ in headers} == {"ios-tenant", "traceparent"}


def test_the_console_exporter_writes_one_json_span_per_line_to_the_file(tmp_path: Path):
    out = tmp_path / "spans.jsonl"
    assert tracing.configure("integrationos-worker", "worker-7", {
        "OTEL_TRACES_EXPORTER": "console", "IOS_TRACES_FILE": str(out)})
    try:
        with tracing.span("outer", attributes={"ios.tenant": "acme"}), tracing.span("inner"):
            pass
    finally:
        tracing.shutdown()
    spans = [json.loads(line) for line in out.read_text().splitlines()]
    assert [s["name"] for s in spans] == ["inner", "outer"]
    assert spans[1]["attributes"] == {"ios.tenant": "acme"}
    assert spans[0]["parent_id"] == spans[1]["context"]["span_id"]
    assert spans[1]["resource"]["attributes"]["service.name"] == "integrationos-worker"
    assert spans[1]["resource"]["attributes"]["service.instance.id"] == "worker-7"
    assert not tracing.enabled()


def test_otel_service_name_wins_and_an_unknown_exporter_or_protocol_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown OTEL_TRACES_EXPORTER"):
        tracing.configure("svc", "i", {"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="http/protobuf"):
        tracing.configure("svc", "i", {"OTEL_TRACES_EXPORTER": "otlp",
                                       "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    tracing.use(None)
