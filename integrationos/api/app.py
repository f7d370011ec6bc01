"""The HTTP API's app factory: wiring only (resources, middleware, routes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from integrationos.api import openapi
from integrationos.api.auth import ApiKeyAuth
from integrationos.api.context import Platform
from integrationos.api.errors import EXCEPTION_HANDLERS
from integrationos.api.ratelimit import COUNTER_STATE_KEY, RateLimit, counter_for
from integrationos.api.request_id import RequestId
from integrationos.api.routes import (
    alerts,
    api_keys,
    connectors,
    dlq,
    environments,
    flows,
    integration_audit,
    integration_metrics,
    integrations,
    lookups,
    messages,
    meta,
    preview,
    promotion,
    replays,
    sandbox,
    schemas,
    test_cases,
    transformations,
    usage,
    webhooks,
)
from integrationos.api.routing import resource
from integrationos.api.telemetry import METRICS_PATH, Telemetry, dlq_depth, metrics_endpoint
from integrationos.connectors.credentials import CredentialVault
from integrationos.engine.lookups import LookupService
from integrationos.metrics import register_once
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.topics.catalog import CONFIG, INGEST
from integrationos.topics.producer import LogProducer

# "/v1/webhooks/": every path under it; webhooks authenticate by signature instead
PUBLIC_PATHS = frozenset({"/v1/openapi.json", "/v1/docs", "/v1/webhooks/"})

ROUTES = [
    resource("/v1/openapi.json", GET=openapi.openapi_json),
    resource("/v1/docs", GET=openapi.docs),
    *connectors.routes,
    *meta.routes,
    *preview.routes,  # before transformations: /preview is not a transformation id
    *transformations.routes,
    *integrations.routes,
    *promotion.routes,
    *integration_audit.routes,
    *integration_metrics.routes,
    *test_cases.routes,
    *flows.routes,
    *sandbox.routes,
    *messages.routes,
    *replays.routes,
    *dlq.routes,
    *webhooks.routes,
    *schemas.routes,
    *lookups.routes,
    *environments.routes,
    *usage.routes,
    *api_keys.routes,
    *alerts.routes,
]


def create_app(settings: Settings | None = None) -> Starlette:
    """The API app; ``settings`` default to the environment (read when the app starts)."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        resolved = settings or Settings.from_env()
        engine = open_database(resolved.database_url)
        # A request waits for the broker's ack of what it appends: the workers' 5 ms of
        # batching (linger.ms) would be 5 ms on every write's latency here (half the p95 of
        # POST .../messages at a steady 200 requests/s: docs/performance.md).
        producer = LogProducer(resolved.kafka_bootstrap, client_id="integrationos-api",
                               extra={"linger.ms": 1})
        vault = CredentialVault.from_settings(resolved)
        lookups = LookupService(engine, vault)
        rate_counter = counter_for(resolved.redis_url)
        register_once("dlq_depth", dlq_depth(engine))
        try:
            yield {"platform": Platform(
                settings=resolved,
                engine=engine,
                producer=producer,
                vault=vault,
                lookups=lookups,
                config_topic=CONFIG.name(resolved.topic_prefix),
                ingest_topic=INGEST.name(resolved.topic_prefix),
            ), COUNTER_STATE_KEY: rate_counter}
        finally:
            # Requests finish before shutdown; what is left belongs to writes already
            # answered 503, so wait for it no longer than those requests did.
            producer.close(resolved.projection_wait_seconds)
            lookups.close()
            await rate_counter.close()
            engine.dispose()

    # /metrics is Prometheus' text, outside /v1/: unauthenticated like the other public
    # paths (it holds counts by tenant and integration, no payload, no secret).
    routes = [*ROUTES, Route(METRICS_PATH, metrics_endpoint, methods=["GET"])]
    return Starlette(
        routes=routes,
        # Outermost first: the request id (on every answer, refusals included), each
        # request's span and metrics, authentication, then the rate limit of the credential
        # it found.
        middleware=[Middleware(RequestId), Middleware(Telemetry, routes=routes),
                    Middleware(ApiKeyAuth, prefix="/v1/", public=PUBLIC_PATHS),
                    Middleware(RateLimit)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
