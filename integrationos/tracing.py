"""OpenTelemetry tracing, configured by the standard ``OTEL_*`` variables, off by default.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``;
comma-separated for several) or when an OTLP endpoint is set
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and
``OTEL_SDK_DISABLED`` is not ``true``. Otherwise no SDK is loaded and ``span`` does nothing
but hand back the current context: a message pays one function call and a flag test
(measured in docs/observability.md). ``console`` writes one JSON object per span, to
standard output or, with ``IOS_TRACES_FILE``, appended to that file (how the tests collect a
worker's spans).

The W3C trace context (``traceparent``, ``tracestate``) travels in Kafka record headers
(``inject`` / ``extract``), so one trace spans API → ingest topic → worker → retry tier →
worker → target. It is propagated even with tracing off: a client's ``traceparent`` reaches
the message's events and the lineage endpoint unchanged.

The provider is this module's own (``use``), not the OpenTelemetry global one, so a test can
install an in-memory exporter for the duration of a test and remove it again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACE_HEADERS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
NO_SPAN = NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
"""What ``span`` yields while tracing is off: records nothing, ``is_recording()`` False."""


class _State:
    """The tracer in use; None while tracing is off."""

    tracer: trace.Tracer | None = None
    provider: Any = None


def enabled() -> bool:
    return _State.tracer is not None


def use(provider: Any | None) -> None:
    """Trace through ``provider`` (an SDK ``TracerProvider``), or stop tracing (None)."""
    _State.provider = provider
    _State.tracer = None if provider is None else provider.get_tracer("integrationos")


def exporters_wanted(env: Mapping[str, str]) -> list[str]:
    """The exporter names the environment asks for; empty means tracing stays off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")
             if n.strip()]
    if not named and (env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
                      or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()):
        named = ["otlp"]
    return [n for n in named if n != "none"]


def configure(service_name: str, instance_id: str, env: Mapping[str, str] | None = None
              ) -> bool:
    """Set tracing up from the environment for a process (the API or a worker); True if on.

    ``service_name`` applies only when ``OTEL_SERVICE_NAME`` is not set. The SDK is
    imported only here, so a process with tracing off never loads it."""
    env = os.environ if env is None else env
    names = exporters_wanted(env)
    if not names:
        use(None)
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    attributes = {"service.instance.id": instance_id}
    if not env.get("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = service_name
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in names:
        provider.add_span_processor(_processor(name, env))
    use(provider)
    return True


def _processor(name: str, env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    if name == "console":
        path = env.get("IOS_TRACES_FILE", "").strip()
        out = open(path, "a", encoding="utf-8") if path else sys.stdout  # noqa: SIM115
        # One span per line, written as it ends: for debugging and tests, not for load.
        return SimpleSpanProcessor(ConsoleSpanExporter(
            out=out, formatter=lambda span: span.to_json(indent=None) + "\n"))
    if name == "otlp":
        protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
        if protocol != "http/protobuf":
            raise ValueError(f"OTLP protocol {protocol!r} is not supported: IntegrationOS "
                             "ships the http/protobuf exporter (port 4318)")
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return BatchSpanProcessor(OTLPSpanExporter())
    raise ValueError(f"unknown OTEL_TRACES_EXPORTER {name!r}: use otlp, console or none")


def shutdown() -> None:
    """Flush what is buffered (a worker's last spans) and stop tracing."""
    if _State.provider is not None:
        _State.provider.shutdown()
    use(None)


@contextmanager
def span(name: str, *, parent: otel_context.Context | None = None,
         kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None,
         ) -> Iterator[Span]:
    """A span around the block, current inside it; the no-op span while tracing is off.

    An exception leaving the block marks the span as an error (and is re-raised)."""
    tracer = _State.tracer
    if tracer is None:
        yield NO_SPAN
        return
    with tracer.start_as_current_span(name, context=parent, kind=kind,
                                      attributes=attributes) as current:
        yield current


def record_span(name: str, start_ns: int, end_ns: int, attributes: Mapping[str, Any],
                error: str | None = None) -> None:
    """A finished span, child of the current one, for work timed elsewhere (wall-clock ns)."""
    tracer = _State.tracer
    if tracer is None:
        return
    done = tracer.start_span(name, start_time=start_ns, attributes=attributes)
    if error is not None:
        done.set_status(Status(StatusCode.ERROR, error))
    done.end(end_time=end_ns)


def mark_error(current: Span, code: str, message: str) -> None:
    """An outcome that is a failure without an exception (a delivery answered 503)."""
    if current.is_recording():
        current.set_status(Status(StatusCode.ERROR, f"{code}: {message}"[:300]))
        current.set_attribute("ios.error.code", code)


def extract(headers: Mapping[str, bytes] | Sequence[tuple[str, bytes]]) -> otel_context.Context:
    """The trace context carried by Kafka record headers (empty context if none)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {k: v.decode("latin-1") for k, v in items if k in TRACE_HEADERS and v}
    return _PROPAGATOR.extract(carrier) if carrier else otel_context.Context()


def inject(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``headers`` with the current trace context in place of any it carried: the span that
    produces a record becomes the parent of whatever consumes it. Unchanged when there is no
    current context (tracing off and nothing propagated)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    if not carrier:
        return headers
    return [(k, v) for k, v in headers if k not in TRACE_HEADERS] + [
        (k, v.encode("latin-1")) for k, v in carrier.items()]


def http_headers() -> dict[str, str]:
    """The current trace context as HTTP headers, for a call to a target (may be empty)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def attach(parent: otel_context.Context) -> object:
    """Make ``parent`` current (a propagated context while tracing is off); see ``detach``."""
    return otel_context.attach(parent)


def detach(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]


def current_traceparent() -> str | None:
    """The current context as a ``traceparent`` value, None without a valid one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a W3C ``traceparent`` (``00-<trace>-<span>-<flags>``)."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or parts[1] == "0" * 32:
        return None
    return parts[1]


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, for log lines; None outside one."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)
