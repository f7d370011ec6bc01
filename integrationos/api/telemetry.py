"""Each request's span and metrics, as pure ASGI middleware (the outermost one), and the
unauthenticated ``/metrics`` endpoint for Prometheus.

The span continues the client's trace when the request carries ``traceparent`` (even with
tracing off, the context is made current so the ingest record carries it on). Requests are
counted and timed by route template, never by raw path: ``resource`` puts the template in
the scope; a request refused before routing (401, 429) is matched against the routes here,
and one no route matches counts as ``unmatched``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrationos import metrics, tracing
from integrationos.api.context import TENANT_SCOPE_KEY
from integrationos.store.tables import dlq_entries

ROUTE_SCOPE_KEY = "integrationos.route"
METRICS_PATH = "/metrics"


class Telemetry:
    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        status = 500  # what the server answers if the app raises before responding

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        route, token = "unmatched", None
        headers = Headers(scope=scope)
        if "traceparent" in headers:
            token = tracing.attach(tracing.extract(
                [(k, headers[k].encode("latin-1")) for k in tracing.TRACE_HEADERS
                 if k in headers]))
        try:
            with tracing.span(f"HTTP {method}", kind=SpanKind.SERVER,
                              attributes={"http.request.method": method}) as span:
                try:
                    await self.app(scope, receive, send_and_note)
                finally:
                    route = self._route(scope)
                    if span.is_recording():
                        span.update_name(f"{method} {route}")
                        span.set_attributes({"http.route": route,
                                             "http.response.status_code": status})
                        if TENANT_SCOPE_KEY in scope:
                            span.set_attribute("ios.tenant", scope[TENANT_SCOPE_KEY])
        finally:
            if token is not None:
                tracing.detach(token)
            labels = (method, route, str(status))
            metrics.API_REQUESTS.labels(*labels).inc()
            metrics.API_REQUEST_SECONDS.labels(*labels).observe(time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        found = scope.get(ROUTE_SCOPE_KEY)
        if found is not None:
            return str(found)
        for route in self.routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return str(getattr(route, "path", "unmatched"))
        return "unmatched"


def dlq_depth(engine: Engine) -> metrics.DlqDepth:
    """The DLQ depth collector, reading this API's projection when scraped."""

    def count() -> list[tuple[str, str, int]]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(dlq_entries.c.tenant_id, dlq_entries.c.integration_id, func.count())
                .where(dlq_entries.c.status == "DEAD_LETTERED")
                .group_by(dlq_entries.c.tenant_id, dlq_entries.c.integration_id))
            return [(row[0], row[1], int(row[2])) for row in rows]

    return metrics.DlqDepth(count)


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text exposition (collected on a thread: the DLQ depth is a query)."""
    body = await run_in_threadpool(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
