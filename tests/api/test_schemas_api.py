"""``/v1/schemas``: reads, refusals and validation on rows the real projector made, then the
whole registry on the real broker and worker (versions, an incompatible version refused,
tenant isolation)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from integrationos.api.app import create_app
from integrationos.api.openapi import document
from integrationos.cli.tenants import create_tenant
from integrationos.settings import Settings
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import ACME, GLOBEX, assert_error

ORDER_XSD = (Path(__file__).parents[1] / "schemas" / "order.xsd").read_text()
SCH = "sch_0123456789abcdef01234567"
XSD = "sch_76543210fedcba9876543210"
LINE = {"type": "object", "required": ["sku"],
        "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}
ORDER = ('<order xmlns="urn:example:orders" id="o-1"><customer>Ada</customer>'
         '<placed>2026-02-01</placed><items><item line="1"><sku>A</sku><qty>3</qty>'
         '<price>2.5</price></item></items><paid>false</paid></order>')


def conforms(body, schema_name):
    """The response matches the schema the OpenAPI document publishes for it."""
    doc = document()
    schema = {**doc["components"]["schemas"][schema_name], "components": doc["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
    assert not errors, errors


def _version_added(schema_id, name, version, definition, format_="JSON_SCHEMA",
                   compatibility="BACKWARD"):
    text = definition if format_ == "XSD" else json.dumps(definition)
    return Event(t.SCHEMA_VERSION_ADDED, "acme", schema_id, {
        "id": schema_id, "name": name, "format": format_, "version": version,
        "definition": text, "compatibility": compatibility})


@pytest.fixture
def registry(seed):
    seed.apply(
        _version_added(SCH, "lines", 1, LINE | {"required": []}),
        _version_added(SCH, "lines", 2, LINE),
        _version_added(XSD, "orders", 1, ORDER_XSD, "XSD"),
    )
    return seed


def test_a_schema_shows_its_latest_version_and_every_version(client, registry):
    response = client.get(f"/v1/schemas/{SCH}", headers=ACME)
    assert response.status_code == 200
    body = response.json()
    conforms(body, "Schema")
    assert body["version"] == 2 and body["definition"] == LINE
    assert [v["version"] for v in body["versions"]] == [1, 2]
    first = client.get(f"/v1/schemas/{SCH}/versions/1", headers=ACME).json()
    conforms(first, "SchemaVersion")
    assert first["definition"]["required"] == [] and first["schemaId"] == SCH
    xsd = client.get(f"/v1/schemas/{XSD}", headers=ACME).json()
    assert xsd["format"] == "XSD" and xsd["definition"] == ORDER_XSD


def test_schemas_are_listed_in_pages(client, registry):
    page = client.get("/v1/schemas?limit=1", headers=ACME).json()
    conforms(page, "SchemaList")
    assert len(page["data"]) == 1 and page["nextCursor"]
    rest = client.get(f"/v1/schemas?cursor={page['nextCursor']}", headers=ACME).json()
    assert {s["name"] for s in page["data"] + rest["data"]} == {"lines", "orders"}


@pytest.mark.parametrize("headers, path", [
    (GLOBEX, f"/v1/schemas/{SCH}"), (GLOBEX, f"/v1/schemas/{SCH}/versions/1"),
    (ACME, f"/v1/schemas/{SCH}/versions/3"), (ACME, f"/v1/schemas/{SCH}/versions/one"),
])
def test_another_tenants_schema_and_a_missing_version_are_not_found(client, registry, headers,
                                                                     path):
    assert_error(client.get(path, headers=headers), 404, "NOT_FOUND")


def test_other_tenants_cannot_validate_delete_or_version_it(client, registry):
    assert client.get("/v1/schemas", headers=GLOBEX).json()["data"] == []
    for method, suffix, body in (("POST", "/validate", {"document": {}}),
                                 ("POST", "/versions", {"definition": LINE}),
                                 ("DELETE", "", None)):
        response = client.request(method, f"/v1/schemas/{SCH}{suffix}", headers=GLOBEX,
                                  json=body)
        assert_error(response, 404, "NOT_FOUND")


def test_validate_lists_every_violation_by_pointer(client, registry):
    response = client.post(f"/v1/schemas/{SCH}/validate", headers=ACME,
                           json={"document": {"qty": 0}})
    body = response.json()
    conforms(body, "SchemaValidation")
    assert body["valid"] is False and body["decoded"] == {"qty": 0}
    assert {(v["pointer"], v["message"]) for v in body["violations"]} == {
        ("/", "'sku' is a required property"), ("/qty", "0 is less than the minimum of 1")}


def test_validate_decodes_xml_and_csv_as_the_pipeline_would(client, registry):
    xml = client.post(f"/v1/schemas/{XSD}/validate", headers=ACME,
                      json={"document": ORDER.replace('id="o-1"', "")}).json()
    assert xml["valid"] is False
    assert xml["violations"] == [{"pointer": "/order",
                                  "message": "missing required attribute 'id'"}]
    assert xml["decoded"]["order"]["customer"] == "Ada"
    csv = client.post(f"/v1/schemas/{SCH}/validate", headers=ACME, json={
        "document": "sku,qty\nPEN,2\nINK,x\n", "contentType": "text/csv"}).json()
    assert csv["valid"] is False and csv["decoded"][0] == {"sku": "PEN", "qty": 2}
    assert [(v["row"], v["column"]) for v in csv["violations"]] == [(3, "qty")]
    assert_error(client.post(f"/v1/schemas/{SCH}/validate", headers=ACME, json={
        "document": {"a": 1}, "contentType": "text/csv"}), 422, "VALIDATION_FAILED")


def test_an_incompatible_version_is_refused_with_every_reason(client, registry):
    narrowed = LINE | {"required": ["sku", "qty"], "properties": LINE["properties"] | {
        "sku": {"type": "string", "maxLength": 8}}}
    error = assert_error(client.post(f"/v1/schemas/{SCH}/versions", headers=ACME, json={
        "definition": narrowed, "examples": [{"sku": "PEN-LONG-NAME"}]}),
        409, "INCOMPATIBLE_SCHEMA")
    assert {(d["rule"], d["pointer"]) for d in error["details"]} == {
        ("REQUIRED_ADDED", "/required"),
        ("BOUND_TIGHTENED", "/properties/sku/maxLength"),
        ("EXAMPLE_REJECTED", "/examples/0"),
    }


def test_an_xsd_version_is_refused_when_it_rejects_an_example(client, registry):
    stricter = ORDER_XSD.replace('<xs:element name="customer" type="xs:string"/>',
                                 '<xs:element name="customer" type="xs:int"/>')
    error = assert_error(client.post(f"/v1/schemas/{XSD}/versions", headers=ACME, json={
        "definition": stricter, "examples": [ORDER]}), 409, "INCOMPATIBLE_SCHEMA")
    assert [d["pointer"] for d in error["details"]] == ["/examples/0"]
    assert "/order/customer" in error["details"][0]["message"]


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "format": "JSON_SCHEMA", "definition": {"type": "nope"}}, "/definition"),
    ({"name": "x", "format": "JSON_SCHEMA", "definition": {"$ref": "http://x.example/s"}},
     "/definition"),
    ({"name": "x", "format": "XSD", "definition": "<not-a-schema/>"}, "/definition"),
    ({"name": "x", "format": "XSD", "definition": {"type": "object"}}, "/definition"),
    ({"name": "x@2", "format": "JSON_SCHEMA", "definition": {}}, "/name"),
    ({"name": "x", "format": "AVRO", "definition": {}}, "/format"),
    ({"name": "x", "format": "JSON_SCHEMA", "definition": LINE, "examples": [{"qty": 2}]},
     "/examples/0"),
    ({"name": "x", "format": "JSON_SCHEMA", "definition": {}, "examples": [0] * 21},
     "/examples"),
])
def test_an_invalid_registration_is_422_naming_the_field(client, registry, body, field):
    error = assert_error(client.post("/v1/schemas", headers=ACME, json=body), 422,
                         "VALIDATION_FAILED")
    assert any(d["field"] == field for d in error["details"]), error["details"]


def test_examples_must_be_documents_the_previous_version_accepted(client, registry):
    error = assert_error(client.post(f"/v1/schemas/{SCH}/versions", headers=ACME, json={
        "definition": LINE, "examples": [{"qty": 1}]}), 422, "VALIDATION_FAILED")
    assert error["details"][0]["field"] == "/examples/0"


def test_a_schema_named_by_a_transformation_cannot_be_deleted(client, registry):
    registry.apply(Event(t.TRANSFORMATION_CREATED, "acme", "trf_1", {
        "id": "trf_1", "name": "map", "sourceSchema": None,
        "targetSchema": json.dumps("lines@1"), "expression": "$", "version": 1}))
    error = assert_error(client.delete(f"/v1/schemas/{SCH}", headers=ACME), 409,
                         "SCHEMA_IN_USE")
    assert error["details"] == [{"transformationId": "trf_1"}]


# The write path: the real broker and a real worker.

@pytest.fixture
def api(worker, tenant) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with TestClient(create_app(Settings.from_env())) as client:
        yield client, {"X-Tenant-Id": tenant[0], "X-API-Key": tenant[1]}


@pytest.mark.broker
def test_the_registry_through_the_log(api):
    client, headers = api
    created = client.post("/v1/schemas", headers=headers, json={
        "name": "lines", "format": "JSON_SCHEMA", "definition": LINE | {"required": []},
        "examples": [{"sku": "PEN"}, {"qty": 2}]})
    assert created.status_code == 201, created.text
    schema = created.json()
    conforms(schema, "Schema")
    assert schema["id"].startswith("sch_") and schema["version"] == 1
    assert schema["compatibility"] == "BACKWARD"
    assert client.get(f"/v1/schemas/{schema['id']}", headers=headers).json() == schema
    assert_error(client.post("/v1/schemas", headers=headers, json={
        "name": "lines", "format": "JSON_SCHEMA", "definition": {}}), 409, "CONFLICT")

    widened = LINE | {"required": [], "properties": LINE["properties"] | {
        "qty": {"type": ["integer", "null"]}}}
    second = client.post(f"/v1/schemas/{schema['id']}/versions", headers=headers,
                         json={"definition": widened, "examples": [{"qty": 2}]})
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2
    assert [v["version"] for v in second.json()["versions"]] == [1, 2]

    # A narrowing the structural rules cannot see (if/then) is caught by an example stored
    # with version 1, though this request names none.
    conditional = widened | {"if": {"required": ["sku"]}, "then": {"required": ["qty"]}}
    stored = client.post(f"/v1/schemas/{schema['id']}/versions", headers=headers,
                         json={"definition": conditional})
    assert [d["rule"] for d in assert_error(stored, 409, "INCOMPATIBLE_SCHEMA")["details"]] == [
        "EXAMPLE_REJECTED"]

    refused = client.post(f"/v1/schemas/{schema['id']}/versions", headers=headers,
                          json={"definition": LINE})
    error = assert_error(refused, 409, "INCOMPATIBLE_SCHEMA")
    assert [(d["rule"], d["pointer"]) for d in error["details"]][:3] == [
        ("REQUIRED_ADDED", "/required"), ("TYPE_NARROWED", "/properties/qty/type"),
        ("BOUND_TIGHTENED", "/properties/qty/minimum")]
    # ...and the stored examples LINE would refuse ({"sku": "PEN"} lacks a qty)
    assert {d["rule"] for d in error["details"][3:]} == {"EXAMPLE_REJECTED"}
    assert client.get(f"/v1/schemas/{schema['id']}", headers=headers).json()["version"] == 2

    version = client.get(f"/v1/schemas/{schema['id']}/versions/2", headers=headers).json()
    assert version["definition"] == widened
    check = client.post(f"/v1/schemas/{schema['id']}/validate", headers=headers,
                        json={"document": {"sku": 1}}).json()
    assert check["valid"] is False and check["violations"][0]["pointer"] == "/sku"

    other = create_tenant(Settings.from_env(), "Other", "pro")
    other_headers = {"X-Tenant-Id": other.tenant_id, "X-API-Key": other.api_key}
    assert_error(client.get(f"/v1/schemas/{schema['id']}", headers=other_headers),
                 404, "NOT_FOUND")
    same_name = client.post("/v1/schemas", headers=other_headers, json={
        "name": "lines", "format": "XSD", "definition": ORDER_XSD})
    assert same_name.status_code == 201, "names are unique per tenant only"

    assert client.delete(f"/v1/schemas/{schema['id']}", headers=headers).status_code == 204
    assert_error(client.get(f"/v1/schemas/{schema['id']}", headers=headers), 404, "NOT_FOUND")
    assert client.get("/v1/schemas", headers=headers).json()["data"] == []


@pytest.mark.broker
def test_compatibility_none_accepts_any_new_version(api):
    client, headers = api
    schema = client.post("/v1/schemas", headers=headers, json={
        "name": "free", "format": "JSON_SCHEMA", "definition": {"type": "object"},
        "compatibility": "NONE"}).json()
    narrowed = client.post(f"/v1/schemas/{schema['id']}/versions", headers=headers,
                           json={"definition": {"type": "string"}})
    assert narrowed.status_code == 201, narrowed.text
    assert narrowed.json()["compatibility"] == "NONE" and narrowed.json()["version"] == 2
