"""Every error, including the router's and unexpected ones, has the one error shape."""

from __future__ import annotations

from starlette.testclient import TestClient

from integrationos.api.app import create_app
from tests.api.conftest import ACME, assert_error


def test_unknown_routes_are_404_in_the_error_shape(client):
    assert_error(client.get("/v1/nowhere", headers=ACME), 404, "NOT_FOUND")
    assert_error(client.get("/nowhere"), 404, "NOT_FOUND")
    assert_error(client.get("/"), 404, "NOT_FOUND")


def test_wrong_methods_are_405_with_allow(client):
    response = client.put("/v1/connectors", headers=ACME)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert_error(client.post("/v1/openapi.json"), 405, "METHOD_NOT_ALLOWED")


def test_an_unexpected_exception_is_500_internal_without_internals(settings, seed, monkeypatch):
    def explode() -> list[str]:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("integrationos.api.routes.meta.connector_types", explode)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/v1/connector-types", headers=ACME)
    assert_error(response, 500, "INTERNAL")
    assert "secret" not in response.text and "RuntimeError" not in response.text


def test_writes_without_a_reachable_log_are_503_not_500(client):
    response = client.post("/v1/transformations", headers=ACME,
                           json={"name": "t", "expression": "$"})
    error = assert_error(response, 503, "LOG_UNAVAILABLE")
    assert "retry" in error["message"]
