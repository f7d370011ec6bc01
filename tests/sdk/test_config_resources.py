"""Schemas, lookups, environment variables, test cases and connector bindings against a
local API: the bodies and queries sent, the ``Record``s read back, CSV uploads, lazy row
pages, and which calls are retried (PUT and validate yes; adding a schema version no)."""

from __future__ import annotations

import json

import pytest
from starlette.responses import JSONResponse, Response

from tests.sdk.fake_api import error


def test_environment_variables_and_test_cases(fake, client, sleeps):
    variable = {"environment": "PROD", "name": "region", "value": "eu",
                "updatedAt": "2026-12-05T01:00:00.000Z"}
    fake.queue("PUT", "/v1/environments/prod/variables/region", error(503, "UNAVAILABLE"),
               JSONResponse(variable))
    fake.queue("GET", "/v1/environments/prod/variables",
               JSONResponse({"environment": "PROD", "data": [variable]}))
    fake.queue("DELETE", "/v1/environments/prod/variables/region", Response(status_code=204))
    assert client.environments.set_variable("prod", "region", "eu").value == "eu"
    assert len(sleeps) == 1  # a PUT sets the same value again: retried
    assert json.loads(fake.seen[-1].body) == {"value": "eu"}
    (listed,) = client.environments.variables("prod")
    assert (listed.name, listed.updated_at) == ("region", variable["updatedAt"])
    assert client.environments.delete_variable("prod", "region") is None

    case = {"id": "tc_1", "name": "vip", "payload": {"n": 1}, "expected": {"n": 2},
            "match": "EXACT", "createdBy": {"keyId": "k"}, "createdAt": "t"}
    fake.queue("POST", "/v1/integrations/int_1/test-cases", JSONResponse(case, 201))
    fake.queue("GET", "/v1/integrations/int_1/test-cases", JSONResponse({"data": [case]}))
    fake.queue("DELETE", "/v1/integrations/int_1/test-cases/tc_1", Response(status_code=204))
    fake.queue("GET", "/v1/integrations/int_1/connector-bindings", JSONResponse(
        {"lineageId": "lin_1", "data": [{"environment": "QA", "fromConnectorId": "con_1",
                                         "toConnectorId": "con_2", "updatedAt": "t"}]}))
    saved = client.integrations.create_test_case("int_1", "vip", {"n": 1}, {"n": 2},
                                                 match="EXACT")
    assert json.loads(fake.seen[-1].body) == {"name": "vip", "payload": {"n": 1},
                                              "expected": {"n": 2}, "match": "EXACT"}
    assert (saved.id, saved.created_by) == ("tc_1", {"keyId": "k"})
    assert [c.name for c in client.integrations.test_cases("int_1")] == ["vip"]
    assert client.integrations.delete_test_case("int_1", "tc_1") is None
    bindings = client.integrations.connector_bindings("int_1")
    assert bindings.lineage_id == "lin_1" and bindings.data[0]["toConnectorId"] == "con_2"


def test_schemas_validate_is_retried_and_add_version_is_not(fake, client, sleeps):
    from integration_platform import ConflictError, InternalServerError

    schema = {"id": "sch_1", "name": "contact", "format": "JSON_SCHEMA",
              "compatibility": "BACKWARD", "version": 1,
              "definition": {"type": "object"}, "versions": [{"version": 1}]}
    fake.queue("POST", "/v1/schemas", JSONResponse(schema, 201))
    fake.queue("POST", "/v1/schemas/sch_1/validate", error(503, "UNAVAILABLE"),
               JSONResponse({"valid": True, "violations": [], "decoded": [{"a": "1"}]}))
    fake.queue("POST", "/v1/schemas/sch_1/versions", error(502, "BAD_GATEWAY"))
    fake.queue("GET", "/v1/schemas/sch_1/versions/1", JSONResponse(
        {"schemaId": "sch_1", "version": 1, "definition": {"type": "object"}}))
    fake.queue("GET", "/v1/schemas", JSONResponse({"data": [schema], "nextCursor": None}))
    created = client.schemas.create("contact", "JSON_SCHEMA", {"type": "object"},
                                    examples=[{"a": 1}])
    assert json.loads(fake.seen[-1].body) == {"name": "contact", "format": "JSON_SCHEMA",
                                              "definition": {"type": "object"},
                                              "examples": [{"a": 1}]}
    assert created.version == 1
    result = client.schemas.validate("sch_1", "a\n1\n", content_type="text/csv")
    assert (result.valid, result.decoded) == (True, [{"a": "1"}]) and len(sleeps) == 1
    assert json.loads(fake.seen[-1].body) == {"document": "a\n1\n", "contentType": "text/csv"}
    with pytest.raises(InternalServerError):
        client.schemas.add_version("sch_1", {"type": "object", "required": ["a"]})
    assert len(sleeps) == 1  # a retry could add a second version
    assert client.schemas.get_version("sch_1", 1).schema_id == "sch_1"
    assert [s.name for s in client.schemas.list()] == ["contact"]
    fake.queue("DELETE", "/v1/schemas/sch_1", error(409, "SCHEMA_IN_USE"))
    with pytest.raises(ConflictError):
        client.schemas.delete("sch_1")


def test_lookup_rows_upload_as_json_or_csv_and_page_lazily(fake, client):
    lookup = {"id": "lkp_1", "name": "countries", "type": "STATIC", "config": {},
              "rowsVersion": 2, "version": 1}
    fake.queue("POST", "/v1/lookups", JSONResponse(lookup | {"rowsVersion": 1}, 201))
    fake.queue("PUT", "/v1/lookups/lkp_1/rows", JSONResponse(lookup),
               JSONResponse(lookup | {"rowsVersion": 3}))
    fake.queue("GET", "/v1/lookups/lkp_1/rows",
               JSONResponse({"lookupId": "lkp_1", "rowsVersion": 2,
                             "data": [{"key": "PT", "value": "Portugal"}],
                             "nextCursor": "UFQ="}),
               JSONResponse({"lookupId": "lkp_1", "rowsVersion": 2,
                             "data": [{"key": "ES", "value": "Spain"}], "nextCursor": None}))
    fake.queue("PATCH", "/v1/lookups/lkp_1", JSONResponse(lookup | {"name": "c2"}))
    assert client.lookups.create("countries", "STATIC", rows={"PT": "Portugal"}).id == "lkp_1"
    assert json.loads(fake.seen[-1].body) == {"name": "countries", "type": "STATIC",
                                              "rows": {"PT": "Portugal"}}
    assert client.lookups.replace_rows("lkp_1", {"PT": "Portugal"}).rows_version == 2
    assert fake.seen[-1].headers["content-type"] == "application/json"
    assert client.lookups.replace_rows("lkp_1", "key,value\nES,Spain\n").rows_version == 3
    assert fake.seen[-1].headers["content-type"] == "text/csv"
    assert fake.seen[-1].body == b"key,value\nES,Spain\n"
    rows = client.lookups.rows("lkp_1", version=2, limit=1)
    assert [(r.key, r.value) for r in rows] == [("PT", "Portugal"), ("ES", "Spain")]
    assert fake.seen[-1].query == {"version": "2", "limit": "1", "cursor": "UFQ="}
    assert client.lookups.update("lkp_1", name="c2").name == "c2"
    assert json.loads(fake.seen[-1].body) == {"name": "c2"}
