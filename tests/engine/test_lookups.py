"""LookupService on real sources: rows projected from real events, a real HTTP server on
loopback, SQLite files and the test PostgreSQL server."""

from __future__ import annotations

import dataclasses
import json
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import create_engine, text

from integrationos.engine.functions import MISSING, EvaluationContext, LookupFailed
from integrationos.engine.lookups import LookupService, TtlLruCache
from integrationos.engine.transform import TransformError, transform
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import Seeder
from tests.conftest import fresh_postgres_database

TOKEN = "lookup-bearer-secret"


class Source(ThreadingHTTPServer):
    """Answers GET /customers/<key> from ``customers``; records every path it was asked."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.customers: dict[str, Any] = {}
        self.status: int | None = None
        self.raw: bytes | None = None
        self.delay = 0.0
        self.asked: list[str] = []
        self.authorization: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Source

    def do_GET(self) -> None:
        self.server.asked.append(self.path)
        self.server.authorization.append(self.headers.get("Authorization"))
        time.sleep(self.server.delay)
        key = unquote(self.path.removeprefix("/api/customers/"))
        status, body = 404, b'{"error": "not found"}'
        if self.server.status is not None:
            status, body = self.server.status, b"{}"
        elif self.server.raw is not None:
            status, body = 200, self.server.raw
        elif key in self.server.customers:
            status, body = 200, json.dumps({"data": self.server.customers[key]}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture
def source() -> Iterator[Source]:
    server = Source()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def seed(tmp_path: Path) -> Iterator[Seeder]:
    settings = dataclasses.replace(
        Settings.from_env(), data_dir=tmp_path / "data", master_key="", topic_prefix="tlk",
        database_url=f"sqlite:///{tmp_path / 'data' / 'integrationos.db'}")
    engine = open_database(settings.database_url)
    yield Seeder(engine, settings)
    engine.dispose()


@pytest.fixture
def service(seed: Seeder) -> Iterator[LookupService]:
    lookups = LookupService(seed.engine, seed.vault, refresh_seconds=0)
    yield lookups
    lookups.close()


def define(seed: Seeder, name: str, kind: str, config: dict[str, Any] | None = None,
           tenant: str = "acme", lookup_id: str | None = None, version: int = 1) -> str:
    lookup_id = lookup_id or f"lkp_{name}"
    created = t.LOOKUP_CREATED if version == 1 else t.LOOKUP_UPDATED
    seed.apply(Event(created, tenant, lookup_id, {
        "id": lookup_id, "name": name, "lookupType": kind,
        "configJson": json.dumps(config or {}), "version": version}))
    return lookup_id


def upload(seed: Seeder, lookup_id: str, version: int, rows: dict[str, Any],
           tenant: str = "acme") -> None:
    seed.apply(Event(t.LOOKUP_ROWS_REPLACED, tenant, lookup_id, {
        "id": lookup_id, "rowsVersion": version, "rowsJson": json.dumps(rows)}))


def failure(resolve: Any, table: str, key: Any) -> LookupFailed:
    with pytest.raises(LookupFailed) as caught:
        resolve(table, key)
    return caught.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- STATIC ---------------------------------------------------------------------------------


def test_static_rows_by_current_version(seed: Seeder, service: LookupService) -> None:
    countries = define(seed, "countries", "STATIC")
    upload(seed, countries, 1, {"PT": "Portugal", "42": {"n": 42}, "ES": "Spain"})
    resolve = service.resolver("acme")
    assert resolve("countries", "PT") == "Portugal"
    assert resolve("countries", 42) == {"n": 42} and resolve("countries", 42.0) == {"n": 42}
    assert resolve("countries", "FR") is MISSING
    upload(seed, countries, 2, {"PT": "Portugal (v2)", "FR": "France"})
    assert resolve("countries", "PT") == "Portugal (v2)"
    assert resolve("countries", "ES") is MISSING and resolve("countries", "FR") == "France"
    stats = service.stats("acme")["countries"]
    assert stats == {"hits": 7, "misses": 0, "errors": 0, "notFound": 2, "entries": 0}


def test_definitions_are_reread_at_most_every_refresh(seed: Seeder) -> None:
    service = LookupService(seed.engine, seed.vault, refresh_seconds=0.5)
    resolve = service.resolver("acme")
    assert failure(resolve, "late", "k").code == "LOOKUP_UNKNOWN_TABLE"
    upload(seed, define(seed, "late", "STATIC"), 1, {"k": "v"})
    assert failure(resolve, "late", "k").code == "LOOKUP_UNKNOWN_TABLE"  # still the old read
    time.sleep(0.6)
    assert resolve("late", "k") == "v"


def test_unknown_deleted_and_other_tenants_tables(seed: Seeder, service: LookupService) -> None:
    upload(seed, define(seed, "mine", "STATIC", tenant="globex"), 1, {"k": "globex's"},
           tenant="globex")
    unknown = failure(service.resolver("acme"), "mine", "k")
    assert unknown.code == "LOOKUP_UNKNOWN_TABLE" and unknown.retryable is False
    assert service.resolver("globex")("mine", "k") == "globex's"
    seed.apply(Event(t.LOOKUP_DELETED, "globex", "lkp_mine", {"id": "lkp_mine"}))
    assert failure(service.resolver("globex"), "mine", "k").code == "LOOKUP_UNKNOWN_TABLE"


def test_keys_that_cannot_be_keys(seed: Seeder, service: LookupService) -> None:
    upload(seed, define(seed, "flags", "STATIC"), 1, {"true": "yes"})
    resolve = service.resolver("acme")
    assert resolve("flags", True) == "yes" and resolve("flags", None) is MISSING
    bad = failure(resolve, "flags", {"an": "object"})
    assert bad.code == "LOOKUP_BAD_KEY" and bad.retryable is False


# --- HTTP -----------------------------------------------------------------------------------


def http_table(seed: Seeder, source: Source, name: str = "customers",
               **config: Any) -> str:
    seed.connector("acme", "con_crm", "crm", "HTTP", {"url": f"{source.url}/api",
                                                     "timeoutMs": 300},
                   {"bearerToken": TOKEN})
    return define(seed, name, "HTTP", {"connectorId": "con_crm",
                                       "urlTemplate": "/customers/{key}", **config})


def test_http_found_missing_and_ttl(seed: Seeder, service: LookupService,
                                    source: Source) -> None:
    source.customers = {"c-1": {"name": "Ada"}, "a/b c": {"name": "Slash"}}
    http_table(seed, source, responsePath="data.name", ttlSeconds=0.4)
    resolve = service.resolver("acme")
    assert resolve("customers", "c-1") == "Ada"
    assert resolve("customers", "c-1") == "Ada"
    assert source.asked == ["/api/customers/c-1"]
    assert source.authorization == [f"Bearer {TOKEN}"]
    assert resolve("customers", "a/b c") == "Slash"
    assert source.asked[-1] == "/api/customers/a%2Fb%20c"

    assert resolve("customers", "nobody") is MISSING
    assert resolve("customers", "nobody") is MISSING  # negative answers are cached too
    assert source.asked.count("/api/customers/nobody") == 1
    time.sleep(0.45)
    assert resolve("customers", "c-1") == "Ada" and resolve("customers", "nobody") is MISSING
    assert source.asked.count("/api/customers/c-1") == 2
    assert source.asked.count("/api/customers/nobody") == 2
    assert service.stats("acme")["customers"] == {
        "hits": 2, "misses": 5, "errors": 0, "notFound": 3, "entries": 3}


def test_http_response_path_as_jsonata(seed: Seeder, service: LookupService,
                                       source: Source) -> None:
    source.customers = {"c-1": {"first": "Ada", "last": "Lovelace"}}
    http_table(seed, source, responsePath='data.(first & " " & last)')
    assert service.resolver("acme")("customers", "c-1") == "Ada Lovelace"


def test_http_source_failures(seed: Seeder, service: LookupService, source: Source) -> None:
    source.customers = {"c-1": {"name": "Ada"}}
    http_table(seed, source, responsePath="data.name")
    resolve = service.resolver("acme")
    source.status = 503
    down = failure(resolve, "customers", "c-1")
    assert (down.code, down.retryable) == ("LOOKUP_SOURCE_DOWN", True)
    source.status = None
    assert resolve("customers", "c-1") == "Ada"  # failures are not cached
    source.status = 403
    refused = failure(resolve, "customers", "c-2")
    assert (refused.code, refused.retryable) == ("LOOKUP_SOURCE_ERROR", False)
    source.status, source.raw = None, b"<html>not json</html>"
    assert failure(resolve, "customers", "c-3").code == "LOOKUP_BAD_RESPONSE"
    source.raw, source.delay = None, 0.6
    slow = failure(resolve, "customers", "c-4")
    assert (slow.code, slow.retryable) == ("LOOKUP_SOURCE_DOWN", True)
    assert "300 ms" in slow.message
    assert service.stats("acme")["customers"]["errors"] == 4


def test_http_server_down_is_retryable(seed: Seeder, service: LookupService) -> None:
    port = free_port()
    seed.connector("acme", "con_gone", "gone", "HTTP", {"url": f"http://127.0.0.1:{port}"})
    define(seed, "gone", "HTTP", {"connectorId": "con_gone", "urlTemplate": "/x/{key}"})
    down = failure(service.resolver("acme"), "gone", "k")
    assert (down.code, down.retryable) == ("LOOKUP_SOURCE_DOWN", True)
    assert "127.0.0.1" in down.message


def test_cache_is_bounded_least_recently_used_first(seed: Seeder, service: LookupService,
                                                    source: Source) -> None:
    source.customers = {k: {"name": k.upper()} for k in ("a", "b", "c")}
    http_table(seed, source, responsePath="data.name", maxEntries=2)
    resolve = service.resolver("acme")
    for key in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        resolve("customers", key)
    assert service.stats("acme")["customers"]["entries"] == 2
    resolve("customers", "a")
    resolve("customers", "b")
    assert [p.rsplit("/", 1)[1] for p in source.asked] == ["a", "b", "c", "b"]


def test_ttl_lru_cache_alone() -> None:
    cache = TtlLruCache(max_entries=2, ttl_seconds=0.2)
    cache.put("a", 1)
    cache.put("b", MISSING)
    assert cache.get("b") == (True, MISSING) and cache.get("a") == (True, 1)
    cache.put("c", 3)  # "b" is the least recently used
    assert cache.get("a") == (True, 1) and cache.get("b") == (False, None) and len(cache) == 2
    time.sleep(0.25)
    assert cache.get("a") == (False, None) and len(cache) == 1
    off = TtlLruCache(max_entries=5, ttl_seconds=0)
    off.put("a", 1)
    assert off.get("a") == (False, None)


def test_a_changed_connector_gets_a_fresh_source(seed: Seeder, service: LookupService,
                                                 source: Source) -> None:
    source.customers = {"c-1": {"name": "Ada"}}
    http_table(seed, source, responsePath="data.name")
    resolve = service.resolver("acme")
    assert resolve("customers", "c-1") == "Ada"
    seed.apply(Event(t.CONNECTOR_UPDATED, "acme", "con_crm", {
        "id": "con_crm", "name": "crm", "connectorType": "HTTP",
        "configJson": json.dumps({"url": f"http://127.0.0.1:{free_port()}"}),
        "credentials": None, "version": 2}))
    assert failure(resolve, "customers", "c-1").code == "LOOKUP_SOURCE_DOWN"


def test_misconfigured_tables_fail_permanently(seed: Seeder, service: LookupService) -> None:
    seed.connector("acme", "con_sftp", "files", "SFTP", {"host": "sftp.example"})
    define(seed, "wrong", "DB", {"connectorId": "con_sftp", "query": "select 1 where :key"})
    wrong = failure(service.resolver("acme"), "wrong", "k")
    assert (wrong.code, wrong.retryable) == ("LOOKUP_MISCONFIGURED", False)


# --- DB -------------------------------------------------------------------------------------


@pytest.fixture
def reference_db(tmp_path: Path) -> Path:
    path = tmp_path / "reference.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT, price REAL)")
        conn.executemany("INSERT INTO products VALUES (?, ?, ?)",
                         [("P-1", "Pen", 1.5), ("P-2", "Ink", 4.0)])
    return path


def test_db_lookup_on_sqlite(seed: Seeder, service: LookupService, reference_db: Path) -> None:
    seed.connector("acme", "con_db", "ref", "JDBC", {"dialect": "sqlite",
                                                    "database": str(reference_db)})
    define(seed, "names", "DB", {"connectorId": "con_db",
                                 "query": "SELECT name FROM products WHERE sku = :key"})
    define(seed, "products", "DB", {"connectorId": "con_db",
                                    "query": "SELECT * FROM products WHERE sku = :key"})
    define(seed, "prices", "DB", {"connectorId": "con_db", "column": "price",
                                  "query": "SELECT name, price FROM products WHERE sku = :key"})
    resolve = service.resolver("acme")
    assert resolve("names", "P-1") == "Pen"
    assert resolve("products", "P-2") == {"sku": "P-2", "name": "Ink", "price": 4.0}
    assert resolve("prices", "P-1") == 1.5
    assert resolve("names", "x' or '1'='1") is MISSING
    assert resolve("names", "P-9") is MISSING
    with sqlite3.connect(reference_db) as conn:
        conn.execute("UPDATE products SET name = 'Pencil' WHERE sku = 'P-1'")
    assert resolve("names", "P-1") == "Pen"  # cached for ttlSeconds (default 300 s)
    assert service.stats("acme")["names"] == {
        "hits": 1, "misses": 3, "errors": 0, "notFound": 2, "entries": 3}


@pytest.fixture
def pg_reference() -> Iterator[dict[str, Any]]:
    name = f"lkp_{uuid.uuid4().hex[:10]}"
    url = fresh_postgres_database(name)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE stores (id integer PRIMARY KEY, city text, "
                          "opened date, area numeric(6,1))"))
        conn.execute(text("INSERT INTO stores VALUES (7, 'Lisboa', '2020-05-01', 120.5)"))
    host, port = url.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)
    yield {"dialect": "postgresql", "host": host, "port": int(port), "database": name,
           "timeoutMs": 2000}
    engine.dispose()


def test_db_lookup_on_postgresql(seed: Seeder, service: LookupService,
                                 pg_reference: dict[str, Any]) -> None:
    seed.connector("acme", "con_pg", "pg", "JDBC", pg_reference, {"username": "postgres"})
    define(seed, "stores", "DB", {"connectorId": "con_pg",
                                  "query": "SELECT city, opened, area FROM stores "
                                           "WHERE id = :key"})
    define(seed, "broken", "DB", {"connectorId": "con_pg",
                                  "query": "SELECT nope FROM stores WHERE id = :key"})
    resolve = service.resolver("acme")
    assert resolve("stores", 7) == {"city": "Lisboa", "opened": "2020-05-01", "area": 120.5}
    assert resolve("stores", 7.0) == resolve("stores", 7)
    assert resolve("stores", 8) is MISSING
    broken = failure(resolve, "broken", 7)
    assert (broken.code, broken.retryable) == ("LOOKUP_QUERY_FAILED", False)

    seed.connector("acme", "con_down", "down", "JDBC", pg_reference | {"port": free_port()},
                   {"username": "postgres"})
    define(seed, "down", "DB", {"connectorId": "con_down",
                                "query": "SELECT city FROM stores WHERE id = :key"})
    down = failure(resolve, "down", 7)
    assert (down.code, down.retryable) == ("LOOKUP_SOURCE_DOWN", True)
    assert "connection refused" in down.message


# --- plugged into JSONata -------------------------------------------------------------------


PAYLOAD = {"code": "PT", "customer": "c-1"}


def test_resolver_and_variables_in_an_evaluation_context(seed: Seeder, service: LookupService,
                                                          source: Source) -> None:
    upload(seed, define(seed, "countries", "STATIC"), 1, {"PT": "Portugal"})
    source.customers = {"c-1": {"first": "Ada", "last": "Lovelace"}}
    http_table(seed, source, responsePath='data.(first & " " & last)')
    seed.apply(Event(t.ENVIRONMENT_VARIABLE_SET, "acme", "env:PROD",
                     {"environment": "PROD", "name": "REGION", "value": "eu-west"}))
    context = EvaluationContext(tenant="acme", environment="PROD",
                                variables=service.variables("acme", "PROD"),
                                lookup=service.resolver("acme"))
    assert service.variables("acme", "DEV") == {}
    output, _ = transform('{"country": $lookup("countries", code), "who": $lookup('
                          '"customers", customer), "none": $lookup("countries", "XX", "n/a"), '
                          '"region": $env("REGION")}', PAYLOAD, context)
    assert output == {"country": "Portugal", "who": "Ada Lovelace", "none": "n/a",
                      "region": "eu-west"}
    with pytest.raises(TransformError) as unknown:
        transform('$lookup("nowhere", code)', PAYLOAD, context)
    assert unknown.value.code == "LOOKUP_UNKNOWN_TABLE" and unknown.value.retryable is False
    source.status = 503
    with pytest.raises(TransformError) as down:
        transform('$lookup("customers", "c-2")', PAYLOAD, context)
    assert down.value.code == "LOOKUP_SOURCE_DOWN" and down.value.retryable is True
