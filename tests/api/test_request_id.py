"""Every answer carries X-Request-Id: the client's own when it is a plain token (an SDK
sends one per call, the same on each retry), a fresh one otherwise; refusals by the
authentication middleware included."""

from __future__ import annotations

import re

from tests.api.conftest import ACME


def test_a_plain_client_id_is_echoed_on_success_and_on_errors(client):
    ok = client.get("/v1/connectors", headers={**ACME, "X-Request-Id": "req_abc-123"})
    assert ok.status_code == 200 and ok.headers["X-Request-Id"] == "req_abc-123"
    missing = client.get("/v1/connectors/con_nope", headers={**ACME, "X-Request-Id": "r.1:2"})
    assert missing.status_code == 404 and missing.headers["X-Request-Id"] == "r.1:2"


def test_refusals_before_any_route_carry_a_fresh_id(client):
    unauthenticated = client.get("/v1/connectors")
    assert unauthenticated.status_code == 401
    assert re.fullmatch(r"req_[0-9a-f]{24}", unauthenticated.headers["X-Request-Id"])
    other = client.get("/v1/connectors")
    assert other.headers["X-Request-Id"] != unauthenticated.headers["X-Request-Id"]


def test_an_id_that_could_forge_log_lines_is_replaced(client):
    for hostile in ("a b", "x" * 129, "id\u00e9".encode(), "a;b"):
        answer = client.get("/v1/openapi.json", headers={"X-Request-Id": hostile})
        assert re.fullmatch(r"req_[0-9a-f]{24}", answer.headers["X-Request-Id"]), hostile
