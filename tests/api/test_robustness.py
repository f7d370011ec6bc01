"""No input a client can send makes the API answer 500 or leave the error shape."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.testclient import TestClient

from integrationos.api.app import ROUTES, create_app
from integrationos.api.openapi import OPERATIONS
from tests.api.conftest import ACME, SECRET

IDS = ["x", "con_" + "0" * 24, "int_" + "0" * 24, "%00", "a%2Fb", "é", "x" * 5000, "..", "%FF"]
BODIES = [
    b"null", b"0", b'"s"', b"[]", b"{}", b'{"name": null}', b'{"name": "\\u0000"}',
    b'{"name": "a", "type": "http", "config": {"url": 5}}',
    b'{"name": "a", "type": "\\ud800"}',
    b'{"name": "x", "expression": "\\u0000"}',
    b'{"integrationId": "\\u0000", "payload": 1e999}',
    b'{"source": "", "target": []}',
    b'{"name": "a", "sourceSchema": {"$ref": "#"}, "expression": "$"}',
    b'{"sourceConnectorId": null, "transformationId": null}',
    b"\xef\xbb\xbf{}", b"1" * 5000, b'{"a": 1e999}', b'{"a": -1e400}', b"\xed\xa0\x80",
    b'"\xed\xa0\x80"',
]


@pytest.fixture
def lenient(settings, seed):
    seed.connector("acme", "con_" + "0" * 24, "c", credentials={"bearerToken": SECRET})
    seed.integration("acme", "int_" + "0" * 24, "i", expression="$")
    quick = dataclasses.replace(settings, projection_wait_seconds=0.05)
    with TestClient(create_app(quick), raise_server_exceptions=False) as client:
        yield client


def requests():
    """Every route and method, with odd ids in the path and odd bodies where one is read."""
    with_body = {(op.method.upper(), op.path) for op in OPERATIONS if op.request}
    seen = set()
    for route in ROUTES:
        for method in sorted(route.methods - {"HEAD"}):
            bodies = BODIES if (method, route.path) in with_body else [None, b"junk"]
            for resource_id in IDS:
                path = route.path.replace("{id}", resource_id).replace("{type}", resource_id)
                if (method, path) not in seen:
                    seen.add((method, path))
                    for body in bodies:
                        yield method, path, body


def test_no_request_yields_a_500(lenient):
    for method, path, body in requests():
        response = lenient.request(method, path, headers=ACME, content=body)
        assert response.status_code != 500, (method, path, body, response.text)
        assert SECRET not in response.text
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}
