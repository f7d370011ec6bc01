"""``/v1/lookups``: writes on the real broker and worker, then validation, limits, reads and
tenant isolation on the brokerless app (every refusal happens before the log is touched)."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from integrationos.api.app import create_app
from integrationos.api.routes.lookups import MAX_ROWS, MAX_ROWS_BYTES
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import lookup_rows
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import ACME, GLOBEX, assert_error
from tests.api.test_reads import conforms

CSV = {"Content-Type": "text/csv"}


class Api:
    """A tenant's client that checks each status and returns the JSON body."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def __call__(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        headers = self.headers | kwargs.pop("headers", {})
        response = self.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None


@pytest.fixture
def api(worker, tenant) -> Iterator[Api]:
    with TestClient(create_app(Settings.from_env())) as client:
        yield Api(client, {"X-Tenant-Id": tenant[0], "X-API-Key": tenant[1]})


@pytest.mark.broker
def test_static_lookup_lifecycle_with_json_and_csv_uploads(api: Api) -> None:
    created = api("POST", "/v1/lookups", 201, json={
        "name": "countries", "type": "STATIC", "rows": {"PT": "Portugal", "ES": "Spain"}})
    conforms(created, "Lookup")
    assert created["id"].startswith("lkp_") and created["rowsVersion"] == 1
    assert created["config"] == {} and created["version"] == 1
    path = f"/v1/lookups/{created['id']}"
    assert api("GET", path, 200) == created
    assert [item["id"] for item in api("GET", "/v1/lookups", 200)["data"]] == [created["id"]]
    api("POST", "/v1/lookups", 409, json={"name": "countries", "type": "STATIC"})

    replaced = api("PUT", f"{path}/rows", 200, json={"PT": "Portugal", "FR": "France",
                                                     "DE": {"name": "Germany"}})
    assert replaced["rowsVersion"] == 2 and replaced["version"] == 1
    api("PUT", f"{path}/rows", 200, headers=CSV,
        content="key,value\nPT,Portugal\n\"IT, Rome\",\"Italy, \"\"the boot\"\"\"\n")
    by_columns = api("PUT", f"{path}/rows", 200, headers=CSV,
                     content="\ufeffkey,name,capital\r\nPT,Portugal,Lisboa\r\nES,Spain,Madrid\r\n")
    assert by_columns["rowsVersion"] == 4

    current = api("GET", f"{path}/rows", 200)
    conforms(current, "LookupRows")
    assert current == {"lookupId": created["id"], "rowsVersion": 4, "nextCursor": None,
                       "data": [{"key": "ES", "value": {"name": "Spain", "capital": "Madrid"}},
                                {"key": "PT", "value": {"name": "Portugal",
                                                        "capital": "Lisboa"}}]}
    csv_text = api("GET", f"{path}/rows?version=3", 200)["data"]
    assert csv_text == [{"key": "IT, Rome", "value": 'Italy, "the boot"'},
                        {"key": "PT", "value": "Portugal"}]
    first = api("GET", f"{path}/rows?version=2&limit=2", 200)
    assert [r["key"] for r in first["data"]] == ["DE", "FR"] and first["nextCursor"]
    rest = api("GET", f"{path}/rows?version=2&limit=2&cursor={first['nextCursor']}", 200)
    assert rest["data"] == [{"key": "PT", "value": "Portugal"}] and rest["nextCursor"] is None

    renamed = api("PATCH", path, 200, json={"name": "países"})
    assert renamed["name"] == "países" and renamed["version"] == 2
    assert renamed["rowsVersion"] == 4
    api("DELETE", path, 204)
    api("GET", path, 404)
    api("PUT", f"{path}/rows", 404, json={"PT": "Portugal"})
    assert api("GET", "/v1/lookups", 200)["data"] == []


@pytest.mark.broker
def test_remote_lookups_are_defined_against_their_connectors(api: Api, tmp_path: Path) -> None:
    reference = tmp_path / "reference.db"
    sqlite3.connect(reference).close()
    http = api("POST", "/v1/connectors", 201, json={
        "name": "crm", "type": "HTTP", "config": {"url": "http://127.0.0.1:9/api"}})
    db = api("POST", "/v1/connectors", 201, json={
        "name": "ref", "type": "JDBC", "config": {"dialect": "sqlite",
                                                  "database": str(reference)}})
    assert api("POST", f"/v1/connectors/{db['id']}/test", 200)["status"] == "UP"
    config = {"connectorId": http["id"], "urlTemplate": "/customers/{key}",
              "responsePath": "data.name", "ttlSeconds": 60, "maxEntries": 500}
    customers = api("POST", "/v1/lookups", 201, json={
        "name": "customers", "type": "HTTP", "config": config})
    assert customers["config"] == config and customers["rowsVersion"] is None
    products = api("POST", "/v1/lookups", 201, json={
        "name": "products", "type": "DB", "config": {
            "connectorId": db["id"], "query": "select name from products where sku = :key"}})
    changed = api("PATCH", f"/v1/lookups/{products['id']}", 200, json={"config": {
        "connectorId": db["id"], "query": "SELECT name, price FROM products WHERE sku = :key",
        "column": "name"}})
    assert changed["version"] == 2 and changed["config"]["column"] == "name"
    error = assert_error(api.client.patch(f"/v1/lookups/{products['id']}", headers=api.headers,
                                          json={"config": {"connectorId": http["id"],
                                                           "query": "select 1 where :key"}}),
                         422, "VALIDATION_FAILED")
    assert error["details"] == [{"field": "/config/connectorId",
                                 "message": "must be a JDBC connector, not HTTP"}]
    for lookup in (customers, products):
        assert_error(api.client.put(f"/v1/lookups/{lookup['id']}/rows", headers=api.headers,
                                    json={"k": "v"}), 409, "LOOKUP_NOT_STATIC")
    in_use = assert_error(api.client.delete(f"/v1/connectors/{http['id']}", headers=api.headers),
                          409, "CONNECTOR_IN_USE")
    assert in_use["details"] == [{"lookupId": customers["id"]}]
    api("DELETE", f"/v1/lookups/{customers['id']}", 204)
    api("DELETE", f"/v1/connectors/{http['id']}", 204)


@pytest.mark.broker
def test_the_largest_upload_fits_one_event(api: Api, platform_env: dict[str, str]) -> None:
    value = "v" * (MAX_ROWS_BYTES // MAX_ROWS - 17)  # 16 bytes of key and punctuation
    rows = {f"key-{n:06d}": value for n in range(MAX_ROWS)}
    assert len(json.dumps(rows, separators=(",", ":"))) > MAX_ROWS_BYTES * 0.95
    created = api("POST", "/v1/lookups", 201, json={"name": "big", "type": "STATIC"})
    replaced = api("PUT", f"/v1/lookups/{created['id']}/rows", 200, json=rows)
    assert replaced["rowsVersion"] == 1
    engine = open_database(platform_env["DATABASE_URL"])
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(lookup_rows).where(
            lookup_rows.c.lookup_id == created["id"])).scalar_one()
    engine.dispose()
    assert count == MAX_ROWS
    cursor = base64.urlsafe_b64encode(b"key-049998").decode()
    last = api("GET", f"/v1/lookups/{created['id']}/rows?limit=1&cursor={cursor}", 200)
    assert last["data"] == [{"key": "key-049999", "value": value}]


# --- brokerless: refusals, reads, isolation ------------------------------------------------

LKP = "lkp_0123456789abcdef01234567"


@pytest.fixture
def tables(seed: Any) -> Any:
    seed.connector("acme", "con_http", "crm", "HTTP", {"url": "http://127.0.0.1:9/api"})
    seed.connector("acme", "con_inbound", "inbound", "HTTP", {})
    seed.connector("acme", "con_sftp", "files", "SFTP", {"host": "sftp.example"})
    seed.connector("globex", "con_globex", "theirs", "HTTP", {"url": "http://127.0.0.1:9/x"})
    seed.apply(Event(t.LOOKUP_CREATED, "acme", LKP, {
        "id": LKP, "name": "colours", "lookupType": "STATIC", "configJson": "{}",
        "version": 1}))
    for version, rows in ((1, {"r": "red"}), (2, {"b": "blue", "g": "green", "r": "red"})):
        seed.apply(Event(t.LOOKUP_ROWS_REPLACED, "acme", LKP, {
            "id": LKP, "rowsVersion": version, "rowsJson": json.dumps(rows)}))
    return seed


def fields(error: dict[str, Any]) -> list[str]:
    return [d["field"] for d in error["details"]]


@pytest.mark.parametrize(("body", "expected"), [
    ({"name": "x", "type": "static"}, ["/type"]),
    ({"name": "x", "type": "STATIC", "config": {"ttlSeconds": 5}}, ["/config/ttlSeconds"]),
    ({"name": "x", "type": "HTTP"}, ["/config/connectorId", "/config/urlTemplate"]),
    ({"name": "x", "type": "HTTP", "rows": {"k": "v"},
      "config": {"connectorId": "con_http", "urlTemplate": "/c/{key}"}}, ["/rows"]),
    ({"name": "x", "type": "HTTP", "config": {"connectorId": "con_http",
                                              "urlTemplate": "/customers/key"}},
     ["/config/urlTemplate"]),
    ({"name": "x", "type": "HTTP", "config": {"connectorId": "con_http",
                                              "urlTemplate": "ftp://h/{key}"}},
     ["/config/urlTemplate"]),
    ({"name": "x", "type": "HTTP", "config": {"connectorId": "con_http", "ttlSeconds": -1,
                                              "urlTemplate": "/c/{key}", "maxEntries": 0}},
     ["/config/maxEntries", "/config/ttlSeconds"]),
    ({"name": "x", "type": "HTTP", "config": {"connectorId": "con_http",
                                              "urlTemplate": "/c/{key}",
                                              "responsePath": "data.("}},
     ["/config/responsePath"]),
    ({"name": "x", "type": "HTTP", "config": {"connectorId": "con_nope",
                                              "urlTemplate": "/c/{key}"}},
     ["/config/connectorId"]),
    ({"name": "x", "type": "HTTP", "config": {"connectorId": "con_globex",
                                              "urlTemplate": "/c/{key}"}},
     ["/config/connectorId"]),
    ({"name": "x", "type": "HTTP", "config": {"connectorId": "con_sftp",
                                              "urlTemplate": "/c/{key}"}},
     ["/config/connectorId"]),
    ({"name": "x", "type": "HTTP", "config": {"connectorId": "con_inbound",
                                              "urlTemplate": "/c/{key}"}},
     ["/config/urlTemplate"]),
    ({"name": "x", "type": "DB", "config": {"connectorId": "con_http",
                                            "query": "select name from t where code = 'a'"}},
     ["/config/query"]),
    ({"name": "x", "type": "DB", "config": {"connectorId": "con_http",
                                            "query": "select a from t where x = :key "
                                                     "and y = :other"}},
     ["/config/query"]),
    ({"name": "x", "type": "DB", "config": {"connectorId": "con_http",
                                            "query": "delete from t where x = :key"}},
     ["/config/query"]),
    ({"name": "x", "type": "DB", "config": {"connectorId": "con_http",
                                            "query": "select a from t where x = :key"}},
     ["/config/connectorId"]),
])
def test_config_is_checked_by_type(client: TestClient, tables: Any, body: dict[str, Any],
                                   expected: list[str]) -> None:
    error = assert_error(client.post("/v1/lookups", headers=ACME, json=body), 422,
                         "VALIDATION_FAILED")
    assert sorted(fields(error)) == expected, error


def test_names_are_unique_per_tenant(client: TestClient, tables: Any) -> None:
    assert_error(client.post("/v1/lookups", headers=ACME, json={
        "name": "colours", "type": "STATIC"}), 409, "CONFLICT")


@pytest.mark.parametrize(("rows", "status", "code"), [
    ({f"k{n}": n for n in range(MAX_ROWS + 1)}, 422, "VALIDATION_FAILED"),
    ({"k" * 401: 1}, 422, "VALIDATION_FAILED"),
    ({"": 1}, 422, "VALIDATION_FAILED"),
    (["not", "an", "object"], 422, "VALIDATION_FAILED"),
    ({"k": "x" * MAX_ROWS_BYTES}, 413, "PAYLOAD_TOO_LARGE"),
])
def test_json_rows_limits(client: TestClient, tables: Any, rows: Any, status: int,
                          code: str) -> None:
    assert_error(client.put(f"/v1/lookups/{LKP}/rows", headers=ACME, json=rows), status, code)


@pytest.mark.parametrize(("csv_body", "status", "code", "says"), [
    (b"", 400, "MALFORMED_CSV", "empty"),
    (b"code,value\nPT,Portugal\n", 400, "MALFORMED_CSV", "header"),
    (b"key\nPT\n", 400, "MALFORMED_CSV", "header"),
    (b"key,a,a\nPT,1,2\n", 400, "MALFORMED_CSV", "unique"),
    (b"key,value\nPT,Portugal,extra\n", 400, "MALFORMED_CSV", "line 2"),
    (b"key,value\n\xff\xfe,bad\n", 400, "MALFORMED_CSV", "UTF-8"),
    (b"key,value\nPT,Portugal\nES,Spain\nPT,again\n", 422, "VALIDATION_FAILED", "unique"),
])
def test_csv_uploads_are_refused_with_the_reason(client: TestClient, tables: Any,
                                                 csv_body: bytes, status: int, code: str,
                                                 says: str) -> None:
    error = assert_error(client.put(f"/v1/lookups/{LKP}/rows", headers=ACME | CSV,
                                    content=csv_body), status, code)
    assert says in error["message"] + json.dumps(error["details"])


def test_uploads_beyond_the_byte_limit_and_other_media(client: TestClient, tables: Any) -> None:
    too_big = b"key,value\n" + b"k,v\n" * (MAX_ROWS_BYTES // 4)
    assert_error(client.put(f"/v1/lookups/{LKP}/rows", headers=ACME | CSV, content=too_big),
                 413, "PAYLOAD_TOO_LARGE")
    assert_error(client.put(f"/v1/lookups/{LKP}/rows", headers=ACME | {
        "Content-Type": "application/xml"}, content=b"<rows/>"), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_rows_versions_pages_and_bad_queries(client: TestClient, tables: Any) -> None:
    def rows(query: str = "") -> Any:
        return client.get(f"/v1/lookups/{LKP}/rows{query}", headers=ACME)

    body = rows().json()
    conforms(body, "LookupRows")
    assert body["rowsVersion"] == 2 and [r["key"] for r in body["data"]] == ["b", "g", "r"]
    assert rows("?version=1").json()["data"] == [{"key": "r", "value": "red"}]
    for version in ("0", "3", "x"):
        assert_error(rows(f"?version={version}"), 404, "NOT_FOUND")
    assert_error(rows("?limit=0"), 400, "INVALID_QUERY")
    assert_error(rows("?cursor=%%%"), 400, "INVALID_QUERY")
    listed = client.get("/v1/lookups", headers=ACME).json()
    conforms(listed, "LookupList")
    assert [(item["name"], item["rowsVersion"]) for item in listed["data"]] == [("colours", 2)]


def test_another_tenants_lookup_does_not_exist(client: TestClient, tables: Any) -> None:
    for method, path, body in (
        ("GET", f"/v1/lookups/{LKP}", None),
        ("PATCH", f"/v1/lookups/{LKP}", {"name": "mine"}),
        ("DELETE", f"/v1/lookups/{LKP}", None),
        ("PUT", f"/v1/lookups/{LKP}/rows", {"k": "v"}),
        ("GET", f"/v1/lookups/{LKP}/rows", None),
    ):
        assert_error(client.request(method, path, headers=GLOBEX, json=body), 404, "NOT_FOUND")
    assert client.get("/v1/lookups", headers=GLOBEX).json()["data"] == []
