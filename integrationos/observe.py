"""One helper per kind of hook point that does both a span and a latency histogram, so the
code being observed gains one ``with`` line instead of scattered tracing and metrics calls.

- ``timed``: a span around a block, its duration into a histogram (pipeline stages, ingest).
- ``instrument_connector``: wraps every connector type's ``test``/``write``/``poll``/
  ``commit`` once, when the class is defined (``Connector.__init_subclass__``), so every
  connector call, from the worker or the API, is timed, counted and (except ``poll``, which
  a source repeats several times a second mostly for nothing) traced.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind
from prometheus_client import Histogram

from integrationos import metrics, tracing

CONNECTOR_OPERATIONS = ("test", "write", "poll", "commit")
_TRACED_OPERATIONS = frozenset({"test", "write", "commit"})


@contextmanager
def timed(name: str, histogram: Histogram, labels: tuple[str, ...] = (), *,
          parent: otel_context.Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
          attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """Span ``name`` around the block and its duration into ``histogram`` (with ``labels``),
    whether the block ends normally or by an exception."""
    started = time.perf_counter()
    try:
        if not tracing.enabled():  # the common case: no second generator to enter
            yield tracing.NO_SPAN
            return
        with tracing.span(name, parent=parent, kind=kind, attributes=attributes) as current:
            yield current
    finally:
        (histogram.labels(*labels) if labels else histogram).observe(
            time.perf_counter() - started)


def instrument_connector(cls: type) -> None:
    """Wrap the connector operations ``cls`` itself defines (inherited ones already are)."""
    for operation in CONNECTOR_OPERATIONS:
        method = cls.__dict__.get(operation)
        if method is not None and not getattr(method, "__ios_observed__", False):
            setattr(cls, operation, _observed(operation, method))


def _observed(operation: str, method: Callable[..., Awaitable[Any]]
              ) -> Callable[..., Awaitable[Any]]:
    traced = operation in _TRACED_OPERATIONS

    @functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        type_name = getattr(self, "type_name", type(self).__name__)
        attributes: dict[str, Any] = {"ios.connector.type": type_name}
        message = args[0] if operation == "write" and args else None
        if message is not None:
            attributes.update({"ios.tenant": message.tenant,
                               "ios.integration": message.integration_id,
                               "ios.message.id": message.message_id})
        started = time.perf_counter()
        outcome = "error"
        try:
            if traced:
                with tracing.span(f"connector.{operation}", kind=SpanKind.CLIENT,
                                  attributes=attributes):
                    result = await method(self, *args, **kwargs)
            else:
                result = await method(self, *args, **kwargs)
            outcome = _outcome(result)
            return result
        finally:
            metrics.CONNECTOR_CALL_SECONDS.labels(type_name, operation).observe(
                time.perf_counter() - started)
            metrics.CONNECTOR_CALLS.labels(type_name, operation, outcome).inc()

    call.__ios_observed__ = True  # type: ignore[attr-defined]
    return call


def _outcome(result: Any) -> str:
    """``ok``, or ``down`` for a health check that reported DOWN (it never raises)."""
    return "down" if getattr(result, "status", None) == "DOWN" else "ok"
