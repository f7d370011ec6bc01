"""The OpenAPI document describes exactly the app's routes, and the reference page renders."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft202012Validator

from integrationos.api.app import ROUTES
from integrationos.api.schemas import REQUEST_SCHEMAS, RESPONSE_SCHEMAS


def app_operations() -> set[tuple[str, str]]:
    return {(method.lower(), route.path) for route in ROUTES
            for method in route.methods if method != "HEAD"}


def test_the_document_is_openapi_3_1_and_covers_every_route(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    documented = {(m, p) for p, methods in doc["paths"].items() for m in methods}
    assert documented == app_operations()
    ids = [op["operationId"] for methods in doc["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))


def test_the_document_passes_the_openapi_validator(client):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(client.get("/v1/openapi.json").json())


def test_every_schema_is_valid_json_schema_and_every_ref_resolves(client):
    doc = client.get("/v1/openapi.json").json()
    for schema in {**REQUEST_SCHEMAS, **RESPONSE_SCHEMAS}.values():
        Draft202012Validator.check_schema(schema)
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = doc
        for part in ref.split("/"):
            node = node[part]


def test_the_reference_page_renders_every_operation_without_external_resources(client):
    response = client.get("/v1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert page.startswith("<!doctype html>")
    for _, path in app_operations():
        assert f"<code>{path}</code>" in page
    for name in REQUEST_SCHEMAS:
        assert f'id="schema-{name}"' in page
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)
