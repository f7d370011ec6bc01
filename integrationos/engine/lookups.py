"""Lookup tables behind JSONata's ``$lookup(table, key)``, and the values behind ``$env``.

Three kinds of table, defined per tenant by ``lookup.*`` events and read from the
projections: STATIC (rows uploaded to the platform, versioned), HTTP (a GET through an HTTP
connector) and DB (a parameterised query through a JDBC connector). Transformations are
evaluated synchronously, so everything here is blocking and thread-safe; the caller runs
the evaluation off the event loop.

A definition is re-read at most once a second per tenant, so an edit reaches running
workers within about a second. Remote answers, including "not found", are kept in a
bounded TTL + LRU cache per table, so a hot key costs one remote call per TTL and a burst
of unknown keys cannot grow memory without bound.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError

from integrationos.connectors.base import ConnectorError
from integrationos.connectors.credentials import CredentialsUnreadable, CredentialVault
from integrationos.connectors.jdbc import JdbcConnector
from integrationos.connectors.registry import InvalidConnectorConfig, build
from integrationos.engine.functions import MISSING, LookupFailed
from integrationos.engine.transform import TransformError, compile_expression
from integrationos.store.projections import sealed_from_text
from integrationos.store.tables import connectors, environment_variables, lookup_rows, lookups

Resolver = Callable[[str, Any], Any]

REFRESH_SECONDS = 1.0
DEFAULT_TTL_SECONDS = 300
DEFAULT_MAX_ENTRIES = 10_000
MAX_ENTRIES_LIMIT = 100_000
MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_HTTP_TIMEOUT_MS = 10_000
CONNECTOR_TYPES = {"HTTP": "HTTP", "DB": "JDBC"}

_CACHE_FIELDS: dict[str, Any] = {
    "ttlSeconds": {"type": "number", "minimum": 0, "maximum": 86_400,
                   "default": DEFAULT_TTL_SECONDS,
                   "description": "How long an answer (found or not found) is reused; 0 "
                   "asks the source every time."},
    "maxEntries": {"type": "integer", "minimum": 1, "maximum": MAX_ENTRIES_LIMIT,
                   "default": DEFAULT_MAX_ENTRIES,
                   "description": "Cached keys per table and worker; the least recently "
                   "used goes first."},
}
_CONNECTOR_ID = {"type": "string", "minLength": 1, "maxLength": 64}
CONFIG_SPECS: dict[str, dict[str, Any]] = {
    "STATIC": {"type": "object", "additionalProperties": False, "properties": {}},
    "HTTP": {
        "type": "object", "additionalProperties": False,
        "required": ["connectorId", "urlTemplate"],
        "properties": {
            "connectorId": _CONNECTOR_ID,
            "urlTemplate": {"type": "string", "minLength": 1, "maxLength": 2000,
                            "pattern": "^(/|https?://).*\\{key\\}",
                            "x-message": "must contain {key} and start with / (appended to "
                            "the connector's url) or http(s)://",
                            "description": "GET this URL; {key} is replaced by the "
                            "URL-encoded key."},
            "responsePath": {"type": "string", "minLength": 1, "maxLength": 2000,
                             "description": "Dotted path (data.0.name) or JSONata "
                             "expression picking the value out of the JSON answer; "
                             "default: the whole answer."},
            "notFoundStatus": {"type": "integer", "minimum": 400, "maximum": 499,
                               "default": 404},
            **_CACHE_FIELDS,
        },
    },
    "DB": {
        "type": "object", "additionalProperties": False,
        "required": ["connectorId", "query"],
        "properties": {
            "connectorId": _CONNECTOR_ID,
            "query": {"type": "string", "minLength": 1, "maxLength": 10_000,
                      "description": "A SELECT (or WITH ... SELECT) run with the key bound "
                      "as :key; the first row answers."},
            "column": {"type": "string", "minLength": 1, "maxLength": 200,
                       "description": "The column to return; default: the only column, "
                       "or the whole row as an object."},
            **_CACHE_FIELDS,
        },
    },
}

_DOTTED_PATH = re.compile(r"^[\w-]+(\.[\w-]+)*$")
_READ_QUERY = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


def config_problems(kind: str, config: dict[str, Any]) -> list[dict[str, str]]:
    """What the JSON Schema cannot say about a config: the query binds exactly ``:key``,
    and a ``responsePath`` that is not a dotted path compiles as JSONata."""
    found = []
    query = config.get("query")
    if kind == "DB" and isinstance(query, str):
        binds = set(text(query).compile().params)
        if not _READ_QUERY.match(query):
            found.append({"field": "/config/query",
                          "message": "must be a SELECT (or WITH ... SELECT) query"})
        if binds != {"key"}:
            found.append({"field": "/config/query",
                          "message": "must bind exactly one parameter, :key "
                          f"(found: {', '.join(sorted(binds)) or 'none'})"})
    path = config.get("responsePath")
    if kind == "HTTP" and isinstance(path, str) and not _DOTTED_PATH.match(path):
        try:
            compile_expression(path)
        except TransformError as exc:
            found.append({"field": "/config/responsePath",
                          "message": f"neither a dotted path nor JSONata: {exc.message}"})
    return found


class TtlLruCache:
    """At most ``max_entries`` answers, each for ``ttl_seconds``; full means the least
    recently used goes. Thread-safe."""

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Any]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, entry[1]

    def put(self, key: str, value: Any) -> None:
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


@dataclass
class Counters:
    """``hits``: answered from memory (static rows or the cache, "not found" included);
    ``misses``: the source was asked; ``errors``: the source failed; ``notFound``: answers
    that were "no such key"."""

    hits: int = 0
    misses: int = 0
    errors: int = 0
    not_found: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors,
                "notFound": self.not_found}


@dataclass(frozen=True)
class ConnectorSpec:
    id: str
    type: str
    config: dict[str, Any]
    sealed: str | None
    version: int


@dataclass(frozen=True)
class LookupSpec:
    """One table's definition as projected."""

    id: str
    name: str
    kind: str
    config: dict[str, Any]
    version: int
    rows_version: int | None
    connector: ConnectorSpec | None

    @property
    def signature(self) -> tuple[Any, ...]:
        """What a running source depends on: a change means a fresh source and cache."""
        con = self.connector
        return self.version, self.rows_version, None if con is None else (con.id, con.version)


class Source(Protocol):
    def fetch(self, key: Any, key_text: str) -> Any:
        """The value for ``key`` or ``MISSING``; raises ``LookupFailed``."""

    def close(self) -> None: ...


class StaticSource:
    """All rows of one version, loaded once: a static table is small by its limits."""

    def __init__(self, rows: dict[str, Any]) -> None:
        self.rows = rows

    @classmethod
    def load(cls, engine: Engine, spec: LookupSpec) -> StaticSource:
        if spec.rows_version is None:
            return cls({})
        query = select(lookup_rows.c.key, lookup_rows.c.value_json).where(
            lookup_rows.c.lookup_id == spec.id, lookup_rows.c.rows_version == spec.rows_version)
        with engine.connect() as conn:
            return cls({row.key: json.loads(row.value_json) for row in conn.execute(query)})

    def fetch(self, key: Any, key_text: str) -> Any:
        value = self.rows.get(key_text)
        return MISSING if value is None else value

    def close(self) -> None:
        return None


class HttpSource:
    """GET ``urlTemplate`` with the connector's headers, auth and timeout."""

    def __init__(self, spec: LookupSpec, credentials: dict[str, Any]) -> None:
        assert spec.connector is not None
        config = spec.connector.config
        self.name = spec.name
        template = spec.config["urlTemplate"]
        base = (config.get("url") or "").rstrip("/")
        if template.startswith("/") and not base:
            raise _misconfigured(spec, "the HTTP connector has no url for a relative "
                                 "urlTemplate")
        self.template = base + template if template.startswith("/") else template
        self.path = spec.config.get("responsePath")
        self.not_found_status = int(spec.config.get("notFoundStatus", 404))
        self.timeout_ms = int(config.get("timeoutMs", DEFAULT_HTTP_TIMEOUT_MS))
        headers = dict(config.get("headers", {}))
        if token := credentials.get("bearerToken"):
            headers["Authorization"] = f"Bearer {token}"
        auth = (httpx.BasicAuth(credentials["username"], credentials.get("password", ""))
                if "username" in credentials else None)
        self.client = httpx.Client(headers=headers, auth=auth, timeout=self.timeout_ms / 1000)

    def url_for(self, key_text: str) -> str:
        return self.template.replace("{key}", quote(key_text, safe=""))

    def fetch(self, key: Any, key_text: str) -> Any:
        url = self.url_for(key_text)
        host = urlsplit(url).hostname or "?"
        try:
            with self.client.stream("GET", url) as response:
                if response.status_code == self.not_found_status:
                    return MISSING
                body = self._read(response)
        except httpx.TimeoutException:
            raise self._down(f"no answer from {host} within {self.timeout_ms} ms") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._down(f"cannot reach {host} ({type(exc).__name__})") from None
        value = _walk(body, self.path) if self.path else body
        return MISSING if value is None else value

    def _read(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise self._down(f"HTTP {status} from {response.url.host}")
        if not response.is_success:
            raise LookupFailed("LOOKUP_SOURCE_ERROR",
                               f"lookup {self.name!r}: HTTP {status} from {response.url.host}",
                               retryable=False)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                raise self._bad(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            return json.loads(body)
        except ValueError:
            raise self._bad("answer is not JSON") from None

    def _down(self, why: str) -> LookupFailed:
        return LookupFailed("LOOKUP_SOURCE_DOWN", f"lookup {self.name!r}: {why}", retryable=True)

    def _bad(self, why: str) -> LookupFailed:
        return LookupFailed("LOOKUP_BAD_RESPONSE", f"lookup {self.name!r}: {why}",
                            retryable=False)

    def close(self) -> None:
        self.client.close()


class DbSource:
    """The first row of ``query`` with the key bound as ``:key``, through a JDBC connector."""

    def __init__(self, spec: LookupSpec, credentials: dict[str, Any]) -> None:
        assert spec.connector is not None
        try:
            connector = build("JDBC", spec.connector.config, credentials)
        except InvalidConnectorConfig as exc:
            raise _misconfigured(spec, str(exc)) from None
        assert isinstance(connector, JdbcConnector)
        self.connector = connector
        self.name = spec.name
        self.query = spec.config["query"]
        self.column = spec.config.get("column")

    def fetch(self, key: Any, key_text: str) -> Any:
        try:
            row = self.connector.query_one_sync(self.query, {"key": key})
        except ConnectorError as exc:
            code = "LOOKUP_SOURCE_DOWN" if exc.retryable else "LOOKUP_QUERY_FAILED"
            raise LookupFailed(code, f"lookup {self.name!r}: {exc.message}",
                               retryable=exc.retryable) from None
        if row is None:
            return MISSING
        mapping = dict(row._mapping)
        if self.column is not None:
            if self.column not in mapping:
                raise LookupFailed("LOOKUP_BAD_RESPONSE", f"lookup {self.name!r}: the query "
                                   f"has no column {self.column!r}", retryable=False)
            value = _json_value(mapping[self.column])
        elif len(mapping) == 1:
            value = _json_value(next(iter(mapping.values())))
        else:
            value = {name: _json_value(cell) for name, cell in mapping.items()}
        return MISSING if value is None else value

    def close(self) -> None:
        self.connector.dispose()


class Table:
    """A table's running source with its cache (remote kinds only) and counters."""

    def __init__(self, spec: LookupSpec, source: Source, counters: Counters) -> None:
        self.spec = spec
        self.source = source
        self.counters = counters
        self.cache = None if spec.kind == "STATIC" else TtlLruCache(
            int(spec.config.get("maxEntries", DEFAULT_MAX_ENTRIES)),
            float(spec.config.get("ttlSeconds", DEFAULT_TTL_SECONDS)))

    def lookup(self, key: Any, key_text: str) -> Any:
        if self.cache is None:
            self.counters.add("hits")
            return self._counted(self.source.fetch(key, key_text))
        found, value = self.cache.get(key_text)
        if found:
            self.counters.add("hits")
            return self._counted(value)
        self.counters.add("misses")
        try:
            value = self.source.fetch(key, key_text)
        except LookupFailed:
            self.counters.add("errors")
            raise
        self.cache.put(key_text, value)
        return self._counted(value)

    def _counted(self, value: Any) -> Any:
        if value is MISSING:
            self.counters.add("not_found")
        return value


@dataclass
class _Catalog:
    loaded_at: float
    tables: dict[str, LookupSpec]


class LookupService:
    """Every tenant's lookup tables and environment variables, for one process.

    ``resolver(tenant)`` is what ``EvaluationContext.lookup`` takes; ``variables(tenant,
    environment)`` what its ``variables`` takes. Thread-safe; close it once at shutdown.
    """

    def __init__(self, engine: Engine, vault: CredentialVault,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._engine = engine
        self._vault = vault
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._catalogs: dict[str, _Catalog] = {}
        self._variables: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
        self._tables: dict[str, Table] = {}
        self._counters: dict[str, Counters] = {}

    def resolver(self, tenant: str) -> Resolver:
        """``lookup(table, key)`` for one tenant: the value, ``MISSING``, or ``LookupFailed``."""
        return partial(self.lookup, tenant)

    def lookup(self, tenant: str, table_name: str, key: Any) -> Any:
        spec = self._catalog(tenant).tables.get(table_name)
        if spec is None:
            raise LookupFailed("LOOKUP_UNKNOWN_TABLE", f"no lookup table named "
                               f"{str(table_name)[:200]!r}", retryable=False)
        key_text = _key_text(key)
        if key_text is None:
            return MISSING
        return self._table(spec).lookup(_bound_key(key), key_text)

    def variables(self, tenant: str, environment: str) -> dict[str, str]:
        """The tenant's ``$env`` values in ``environment``, re-read at most once a second."""
        now = time.monotonic()
        cached = self._variables.get((tenant, environment))
        if cached is not None and now - cached[0] < self._refresh_seconds:
            return cached[1]
        query = select(environment_variables.c.name, environment_variables.c.value).where(
            environment_variables.c.tenant_id == tenant,
            environment_variables.c.environment == environment)
        with self._engine.connect() as conn:
            values = {row.name: row.value for row in conn.execute(query)}
        self._variables[(tenant, environment)] = (now, values)
        return values

    def stats(self, tenant: str) -> dict[str, dict[str, int]]:
        """Counters and cache size of each table the tenant has, by table name."""
        catalog = self._catalog(tenant)
        result = {}
        for name, spec in catalog.tables.items():
            counters = self._counters.get(spec.id, Counters()).as_dict()
            table = self._tables.get(spec.id)
            cached = table.cache if table is not None else None
            result[name] = counters | {"entries": 0 if cached is None else len(cached)}
        return result

    def close(self) -> None:
        with self._lock:
            tables, self._tables = list(self._tables.values()), {}
        for table in tables:
            table.source.close()

    def _catalog(self, tenant: str) -> _Catalog:
        """The tenant's definitions, re-read when older than the refresh period. Read
        without the lock: two threads may both re-read, but none waits on another's query."""
        now = time.monotonic()
        catalog = self._catalogs.get(tenant)
        if catalog is None or now - catalog.loaded_at >= self._refresh_seconds:
            catalog = self._catalogs[tenant] = _Catalog(now, self._load(tenant))
        return catalog

    def _load(self, tenant: str) -> dict[str, LookupSpec]:
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(select(lookups).where(
                    lookups.c.tenant_id == tenant, lookups.c.deleted.is_(False))).all()
                configs = {row.id: json.loads(row.config_json) for row in rows}
                wanted = {c["connectorId"] for c in configs.values() if "connectorId" in c}
                found = conn.execute(select(connectors).where(
                    connectors.c.tenant_id == tenant, connectors.c.deleted.is_(False),
                    connectors.c.id.in_(wanted))).all() if wanted else []
        except SQLAlchemyError as exc:
            raise LookupFailed("LOOKUP_SOURCE_DOWN", "cannot read the lookup definitions "
                               f"({type(exc).__name__})", retryable=True) from None
        by_id = {c.id: ConnectorSpec(c.id, c.connector_type, json.loads(c.config_json),
                                     c.credentials_sealed, c.version) for c in found}
        return {row.name: LookupSpec(row.id, row.name, row.lookup_type, configs[row.id],
                                     row.version, row.rows_version,
                                     by_id.get(configs[row.id].get("connectorId", "")))
                for row in rows}

    def _table(self, spec: LookupSpec) -> Table:
        with self._lock:
            table = self._tables.get(spec.id)
            if table is not None and table.spec.signature == spec.signature:
                return table
            counters = self._counters.setdefault(spec.id, Counters())
        try:
            fresh = Table(spec, self._open(spec), counters)  # may load rows: not under the lock
        except LookupFailed:
            counters.add("errors")
            raise
        with self._lock:
            current = self._tables.get(spec.id)
            if current is not None and current.spec.signature == spec.signature:
                fresh.source.close()
                return current
            self._tables[spec.id] = fresh
        if current is not None:
            current.source.close()
        return fresh

    def _open(self, spec: LookupSpec) -> Source:
        if spec.kind == "STATIC":
            return StaticSource.load(self._engine, spec)
        con = spec.connector
        if con is None or con.type != CONNECTOR_TYPES.get(spec.kind):
            raise _misconfigured(spec, f"connector {spec.config.get('connectorId')!r} is "
                                 f"missing or not a {CONNECTOR_TYPES.get(spec.kind)} connector")
        try:
            sealed = sealed_from_text(con.sealed)
            credentials = {} if sealed is None else self._vault.open(sealed)
        except CredentialsUnreadable as exc:
            raise _misconfigured(spec, str(exc)) from None
        return HttpSource(spec, credentials) if spec.kind == "HTTP" else DbSource(
            spec, credentials)


def _misconfigured(spec: LookupSpec, why: str) -> LookupFailed:
    return LookupFailed("LOOKUP_MISCONFIGURED", f"lookup {spec.name!r}: {why}",
                        retryable=False)


def _key_text(key: Any) -> str | None:
    """The key as the text static rows and URLs use: ``42`` and ``42.0`` are ``"42"``."""
    if key is None:
        return None
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    if isinstance(key, str | int | float):
        return str(key)
    raise LookupFailed("LOOKUP_BAD_KEY", "a lookup key must be a string, number or boolean, "
                       f"not {type(key).__name__}", retryable=False)


def _bound_key(key: Any) -> Any:
    """The key as a query parameter: integral numbers bind as integers."""
    if isinstance(key, float) and key.is_integer():
        return int(key)
    return key


def _walk(body: Any, path: str) -> Any:
    """Follow a dotted path (numeric segments index arrays), or evaluate JSONata."""
    if not _DOTTED_PATH.match(path):
        try:
            return compile_expression(path).evaluate(body)
        except TransformError as exc:
            raise LookupFailed("LOOKUP_BAD_RESPONSE", f"responsePath failed: {exc.message}",
                               retryable=False) from None
    node = body
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _json_value(cell: Any) -> Any:
    """A database cell as JSON: decimals as numbers, times as ISO-8601, bytes as base64."""
    if isinstance(cell, Decimal):
        return int(cell) if cell == cell.to_integral_value() else float(cell)
    if isinstance(cell, dt.datetime | dt.date | dt.time):
        return cell.isoformat()
    if isinstance(cell, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(cell)).decode()
    if isinstance(cell, uuid.UUID):
        return str(cell)
    return cell
