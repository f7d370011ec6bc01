"""What the observability instrumentation costs one message in the worker, tracing off:
the calls a message meets (pass and deliver spans, step spans, header injection, metrics,
log context), timed in a loop with ``timeit`` (best of 5).

    python -m bench.instrumentation_cost [--calls 200000]

Not part of ``python -m bench``: a micro-measurement with no broker and no baseline run; the
figures are in docs/observability.md ("What it costs when off"), next to the worker's time
per message.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

from integrationos import logs, metrics, tracing
from integrationos.engine.flow import StepResult
from integrationos.engine.pipeline import _record_steps
from integrationos.observe import timed

_STEPS = [StepResult("validate", "SKIPPED", 0.0), StepResult("transform", "OK", 0.02),
          StepResult("validateOutput", "SKIPPED", 0.0)]
_HEADERS = [("ios-tenant", b"acme"), ("ios-integration", b"int_1")]
_COUNTED = ("message.received", "message.transformed", "message.delivered")


def one_span() -> None:
    with tracing.span("pipeline.message"):
        pass


def tracing_of_a_message() -> None:
    with tracing.span("pipeline.message"), tracing.span("pipeline.deliver"):
        tracing.record_span("pipeline.transform", 0, 1, {})
    tracing.inject(_HEADERS)


def metrics_of_a_message() -> None:
    for stage in ("message", "transform", "deliver"):
        metrics.STAGE_SECONDS.labels(stage).observe(0.001)
    for event_type in _COUNTED:
        metrics.count_message_event(event_type, "acme", "int_1")


def all_of_a_message() -> None:
    """As ``_MessageRun.run`` and ``_deliver`` do it."""
    with timed("pipeline.message", metrics.STAGE_SECONDS, ("message",)) as span, \
            logs.bound(tenant="acme", integration="int_1", message_id="msg_1",
                       trace_id=tracing.trace_id_of(None)):
        span.is_recording()
        _record_steps(_STEPS, 0)
        with timed("pipeline.deliver", metrics.STAGE_SECONDS, ("deliver",)):
            pass
        for event_type in _COUNTED:
            metrics.count_message_event(event_type, "acme", "int_1")


CASES: tuple[tuple[str, Callable[[], None]], ...] = (
    ("one tracing.span block", one_span),
    ("every tracing call of one message", tracing_of_a_message),
    ("the metrics of one message", metrics_of_a_message),
    ("all the instrumentation of one message", all_of_a_message),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls
    tracing.use(None)
    for label, case in CASES:
        best = min(timeit.repeat(case, number=calls, repeat=5)) / calls
        print(f"{label} (tracing off): {best * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
