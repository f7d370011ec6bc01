"""Lazy pages (the API's opaque cursor passed back as given), the error classes with the
request id, typed models that keep unknown fields, and the client's configuration."""

from __future__ import annotations

import asyncio

import pytest
from starlette.responses import JSONResponse

from tests.sdk.fake_api import error


def _page(ids: list[str], cursor: str | None) -> JSONResponse:
    return JSONResponse({"data": [{"id": i, "name": i, "type": "HTTP", "futureField": 1}
                                  for i in ids], "nextCursor": cursor})


def test_list_fetches_pages_only_as_iteration_reaches_them(fake, client):
    fake.queue("GET", "/v1/connectors", _page(["a", "b"], "MTIzOmNvbl8x"),
               _page(["c", "d"], "opaque/+=="), _page(["e"], None))
    pager = client.connectors.list(type="http", limit=2)
    assert fake.seen == []  # nothing before iterating
    items = iter(pager)
    assert next(items).id == "a" and next(items).id == "b" and len(fake.seen) == 1
    assert [c.id for c in items] == list("cde")
    assert [s.query for s in fake.seen] == [
        {"type": "http", "limit": "2"},
        {"type": "http", "limit": "2", "cursor": "MTIzOmNvbl8x"},
        {"type": "http", "limit": "2", "cursor": "opaque/+=="},
    ]


def test_dlq_iter_streams_entries_and_sends_the_filters(fake, client):
    entry = {"messageId": "msg_1", "integrationId": "int_1", "code": "HTTP_500",
             "message": "boom", "stage": "deliver", "attempts": 4,
             "deadLetteredAt": "2026-02-01T09:30:00.123Z"}
    fake.queue("GET", "/v1/dlq", JSONResponse({"data": [entry], "nextCursor": "x"}),
               JSONResponse({"data": [entry | {"messageId": "msg_2"}], "nextCursor": None}))
    entries = client.dlq.iter(integration_id="int_1", code="HTTP_500", from_="2026-01-01")
    assert [(e.message_id, e.attempts, e.stage) for e in entries] == [
        ("msg_1", 4, "deliver"), ("msg_2", 4, "deliver")]
    assert fake.seen[0].query == {"integrationId": "int_1", "code": "HTTP_500",
                                  "from": "2026-01-01"}


def test_async_pages_are_lazy_too(fake):
    from integration_platform import AsyncIntegrationPlatform

    fake.queue("GET", "/v1/integrations", JSONResponse({"data": [{"id": "int_1"}],
                                                        "nextCursor": "c1"}),
               JSONResponse({"data": [{"id": "int_2"}], "nextCursor": None}))

    async def run() -> list[str]:
        async with AsyncIntegrationPlatform(api_key="k", tenant_id="acme",
                                            base_url=fake.url) as sdk:
            pager = sdk.integrations.list(environment="DEV")
            assert fake.seen == []
            return [i.id async for i in pager]

    assert asyncio.run(run()) == ["int_1", "int_2"]
    assert fake.seen[1].query == {"environment": "DEV", "cursor": "c1"}


@pytest.mark.parametrize(("status", "code", "cls"), [
    (400, "INVALID_QUERY", "BadRequestError"),
    (401, "UNAUTHENTICATED", "AuthenticationError"),
    (403, "FORBIDDEN", "PermissionDeniedError"),
    (404, "NOT_FOUND", "NotFoundError"),
    (409, "CONNECTOR_IN_USE", "ConflictError"),
    (422, "VALIDATION_FAILED", "ValidationError"),
    (429, "RATE_LIMITED", "RateLimitError"),
    (500, "INTERNAL", "InternalServerError"),
    (418, "HTTP_418", "APIError"),
])
def test_each_status_maps_to_its_exception_with_the_request_id(fake, sleeps, status, code,
                                                               cls):
    import integration_platform
    from integration_platform import IntegrationPlatform

    details = [{"field": "/name", "message": "is required"}]
    fake.queue("PATCH", "/v1/connectors/con_1",
               error(status, code, "explained", details,
                     headers={"X-Request-Id": "req_from_server", "Retry-After": "3600"}))
    with IntegrationPlatform(api_key="k", tenant_id="acme", base_url=fake.url, sleep=sleeps,
                             max_retries=0) as sdk, pytest.raises(
            getattr(integration_platform, cls)) as raised:
        sdk.connectors.update("con_1", name="x")
    exc = raised.value
    assert type(exc).__name__ == cls and isinstance(exc, integration_platform.APIError)
    assert (exc.status_code, exc.code, exc.message) == (status, code, "explained")
    assert exc.details == details and exc.request_id == "req_from_server"
    assert "req_from_server" in str(exc)


def test_without_a_request_id_header_the_sent_one_is_kept(fake, client):
    from integration_platform import NotFoundError

    with pytest.raises(NotFoundError) as raised:
        client.connectors.get("con_missing")
    assert raised.value.request_id == fake.seen[0].headers["x-request-id"]


def test_a_non_api_error_body_still_raises_an_api_error(fake, client):
    from integration_platform import ConflictError

    fake.queue("DELETE", "/v1/connectors/con_1", JSONResponse(["proxy says no"], 409))
    with pytest.raises(ConflictError) as raised:
        client.connectors.delete("con_1")
    assert raised.value.code == "HTTP_409"


def test_models_are_snake_case_and_keep_unknown_fields(fake, client):
    fake.queue("POST", "/v1/connectors/con/1/test", JSONResponse(
        {"status": "UP", "latencyMs": 12, "detail": "ok", "probedAt": "now"}))
    health = client.connectors.test("con/1")  # an id never changes the route
    assert (health.status, health.latency_ms, health.detail) == ("UP", 12, "ok")
    assert health.extra == {"probedAt": "now"}
    assert fake.seen[0].raw_path == b"/v1/connectors/con%2F1/test"
    fake.queue("GET", "/v1/integrations/int_1/history", JSONResponse({"data": [
        {"eventId": "e1", "type": "integration.created", "by": {"keyId": "k"}}],
        "nextCursor": None}))
    (entry,) = list(client.integrations.history("int_1"))
    assert entry.event_id == "e1" and entry["type"] == "integration.created"


def test_requests_carry_the_credentials_and_camel_case_bodies(fake, client):
    fake.queue("POST", "/v1/integrations", JSONResponse({"id": "int_1"}, status_code=201))
    client.integrations.create("n", source_connector_id="con_1",
                               target_connector_id="salesforce-prod",
                               transformation_id="trf_1", error_strategy="RETRY_3_DLQ")
    (seen,) = fake.seen
    assert seen.headers["x-api-key"] == "ip_test_k" and seen.headers["x-tenant-id"] == "acme"
    assert seen.headers["user-agent"].startswith("integration-platform-python/")
    import json

    assert json.loads(seen.body) == {"name": "n", "sourceConnectorId": "con_1",
                                     "targetConnectorId": "salesforce-prod",
                                     "transformationId": "trf_1",
                                     "errorStrategy": "RETRY_3_DLQ"}


def test_configuration_from_the_environment(monkeypatch):
    from integration_platform import IntegrationPlatform, IntegrationPlatformError

    monkeypatch.delenv("INTEGRATION_PLATFORM_API_KEY", raising=False)
    monkeypatch.delenv("INTEGRATION_PLATFORM_TENANT_ID", raising=False)
    monkeypatch.delenv("INTEGRATION_PLATFORM_BASE_URL", raising=False)
    with pytest.raises(IntegrationPlatformError, match="INTEGRATION_PLATFORM_API_KEY"):
        IntegrationPlatform(tenant_id="t")
    with pytest.raises(IntegrationPlatformError, match="INTEGRATION_PLATFORM_TENANT_ID"):
        IntegrationPlatform(api_key="k")
    assert IntegrationPlatform(api_key="k", tenant_id="t").config.base_url == (
        "http://127.0.0.1:8080")
    monkeypatch.setenv("INTEGRATION_PLATFORM_API_KEY", "ip_live_secret")
    monkeypatch.setenv("INTEGRATION_PLATFORM_TENANT_ID", "your-tenant")
    monkeypatch.setenv("INTEGRATION_PLATFORM_BASE_URL", "http://api.example:9000/v1/")
    sdk = IntegrationPlatform()
    assert sdk.config.base_url == "http://api.example:9000"
    assert sdk.config.tenant_id == "your-tenant" and "ip_live_secret" not in repr(sdk.config)
