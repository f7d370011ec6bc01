"""Relational databases through SQLAlchemy: PostgreSQL, MySQL/MariaDB, SQLite, SQL Server, Oracle.

Named after the JDBC connectors of other platforms, so users find it where they look. It
serves DB lookups (``query_one``), polls a table or query by a cursor column as a source
(``jdbc_source``) and inserts or upserts rows as a target (``jdbc_target``, with the SQL in
``jdbc_statements``). One pooled engine per connector instance; its URL is built with
``URL.create`` from separate fields, so a password with ``@`` or ``/`` needs no quoting, and
SQLAlchemy masks it in every repr and log line. Every failure is classified so the engine can
tell a database that is down or a deadlock (retry later) from a statement or a row that will
never work (a constraint violation is dead-lettered, not retried).
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from sqlalchemy import URL, Engine, MetaData, Row, Table, create_engine, text
from sqlalchemy import exc as sa_exc

from integrationos.connectors.base import (
    Connector,
    ConnectorError,
    Delivery,
    HealthReport,
    OutboundMessage,
    Role,
    SourceRecord,
)
from integrationos.connectors.jdbc_source import CursorReader
from integrationos.connectors.jdbc_statements import IDENTIFIER
from integrationos.connectors.jdbc_target import TableWriter, UnknownColumns

DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_BATCH = 500
DEFAULT_POLL_INTERVAL_MS = 1000
DRIVER_MESSAGE_CHARS = 300

Status = Literal["UP", "DOWN"]


@dataclass(frozen=True)
class Dialect:
    drivername: str
    module: str
    package: str
    default_port: int | None
    probe: str = "SELECT 1"


DIALECTS: dict[str, Dialect] = {
    "postgresql": Dialect("postgresql+psycopg", "psycopg", "psycopg[binary]", 5432),
    "mysql": Dialect("mysql+pymysql", "pymysql", "pymysql", 3306),
    "mariadb": Dialect("mariadb+pymysql", "pymysql", "pymysql", 3306),
    "sqlite": Dialect("sqlite+pysqlite", "sqlite3", "(the standard library)", None),
    "mssql": Dialect("mssql+pyodbc", "pyodbc", "pyodbc (and an ODBC driver)", 1433),
    "oracle": Dialect("oracle+oracledb", "oracledb", "oracledb", 1521, "SELECT 1 FROM DUAL"),
}

# Driver error codes that say more than the exception class: psycopg's SQLSTATE (exact or
# its two-character class) and the MySQL server/client error numbers.
_CODES: dict[str | int, tuple[str, bool]] = {
    "08": ("DB_UNAVAILABLE", True), "53": ("DB_UNAVAILABLE", True),
    "57P": ("DB_UNAVAILABLE", True), "57014": ("DB_TIMEOUT", True),
    "55P03": ("DB_TIMEOUT", True), "40001": ("DB_DEADLOCK", True),
    "40P01": ("DB_DEADLOCK", True), "28": ("DB_AUTH", False), "3D000": ("DB_MISSING", False),
    "42501": ("DB_PERMISSION", False), "42601": ("DB_SYNTAX", False),
    "42": ("DB_QUERY_INVALID", False), "22": ("DB_QUERY_INVALID", False),
    "23": ("DB_CONSTRAINT", False),
    1045: ("DB_AUTH", False), 1049: ("DB_MISSING", False), 1044: ("DB_PERMISSION", False),
    1142: ("DB_PERMISSION", False), 1143: ("DB_PERMISSION", False), 1064: ("DB_SYNTAX", False),
    1146: ("DB_QUERY_INVALID", False), 1054: ("DB_QUERY_INVALID", False),
    1205: ("DB_TIMEOUT", True), 1213: ("DB_DEADLOCK", True), 1040: ("DB_UNAVAILABLE", True),
    2002: ("DB_UNAVAILABLE", True), 2003: ("DB_UNAVAILABLE", True),
    2006: ("DB_UNAVAILABLE", True), 2013: ("DB_UNAVAILABLE", True),
    1020: ("DB_DEADLOCK", True),  # MariaDB: record changed since read (snapshot isolation)
    1062: ("DB_CONSTRAINT", False), 1048: ("DB_CONSTRAINT", False),
    1364: ("DB_CONSTRAINT", False), 1451: ("DB_CONSTRAINT", False),
    1452: ("DB_CONSTRAINT", False), 3819: ("DB_CONSTRAINT", False),
    4025: ("DB_CONSTRAINT", False), 1265: ("DB_QUERY_INVALID", False),
    1292: ("DB_QUERY_INVALID", False), 1366: ("DB_QUERY_INVALID", False),
    1406: ("DB_QUERY_INVALID", False),
}

Patterns = tuple[tuple[str, re.Pattern[str], bool], ...]


def _patterns(*rules: tuple[str, str, bool]) -> Patterns:
    return tuple((code, re.compile(rx, re.IGNORECASE), retryable) for code, rx, retryable in rules)


# Checked before the codes: MySQL's 2003 "can't connect" covers both of these.
_NETWORK = _patterns(
    ("DB_DNS", r"resolve host|translate host name|name or service not known|"
               r"nodename nor servname|getaddrinfo|temporary failure in name resolution", True),
    ("DB_REFUSED", r"connection refused|errno 111\b|actively refused", True),
)
# Connection-time failures carry no code in psycopg, and SQLite has none at all: the
# driver's words, checked in order after the codes.
_PATTERNS = _patterns(
    ("DB_AUTH", r"authentication failed|access denied for user|login failed|ora-01017|"
                r"role \".*\" does not exist|no password supplied", False),
    ("DB_MISSING", r"database \".*\" does not exist|unknown database|"
                   r"cannot open database|unable to open database file|ora-12514", False),
    ("DB_TIMEOUT", r"timeout expired|timed out|statement timeout|lock wait timeout", True),
    ("DB_DEADLOCK", r"deadlock|could not serialize|can't serialize|ora-08177", True),
    ("DB_CONSTRAINT", r"constraint failed|violation of (primary|unique) key|"
                      r"cannot insert duplicate key|conflicted with the .* constraint|"
                      r"cannot insert the value null|ora-00001|ora-01400|ora-02290|ora-02291|"
                      r"ora-02292", False),
    ("DB_UNAVAILABLE", r"database is locked|disk i/o error|server closed the connection|"
                       r"lost connection|gone away|terminating connection", True),
    ("DB_PERMISSION", r"permission denied|insufficient privilege|command denied|"
                      r"ora-01031|attempt to write a readonly database", False),
    ("DB_SYNTAX", r"syntax error|ora-00900|ora-00933", False),
    ("DB_QUERY_INVALID", r"no such (table|column)|does not exist|unknown column", False),
)

_REASONS = {
    "DB_DNS": "DNS: cannot resolve {host}",
    "DB_REFUSED": "connection refused by {host}:{port}",
    "DB_AUTH": "authentication failed for user {user}",
    "DB_MISSING": "database {database} does not exist or cannot be opened",
    "DB_TIMEOUT": "timeout",
    "DB_DEADLOCK": "deadlock or serialization failure (retry)",
    "DB_CONSTRAINT": "constraint violation",
    "DB_UNAVAILABLE": "database unavailable",
    "DB_PERMISSION": "permission denied",
    "DB_SYNTAX": "SQL syntax error",
    "DB_QUERY_INVALID": "query refused",
    "DB_ERROR": "database error",
}


_NAME = {"type": "string", "pattern": IDENTIFIER.pattern}

# What the source and target roles add to the connection settings (docs/connectors/jdbc.md).
_ROLE_PROPERTIES: dict[str, Any] = {
    "schema": {**_NAME, "description": "Schema of the table (default: the connection's)."},
    "table": {**_NAME, "description": "Source: the table polled (unless query is set). "
              "Target: the table written."},
    "cursorColumn": {**_NAME, "description": "Source: the increasing column read by, e.g. an "
                     "id or an updated-at timestamp."},
    "tieBreakColumn": {**_NAME, "description": "Source: a unique column (the primary key) "
                       "ordering rows that share a cursor value."},
    "query": {"type": "string", "minLength": 1, "maxLength": 20_000, "pattern": ":cursor\\b",
              "description": "Source: a SELECT instead of the table, with bound :cursor "
              "(:tiebreak, :limit), returning the rows after them in cursor order."},
    "initialCursor": {"type": ["string", "number"], "description": "Source: read rows after "
                      "this cursor value when there is no checkpoint yet."},
    "batchSize": {"type": "integer", "minimum": 1, "maximum": 10_000,
                  "default": DEFAULT_BATCH},
    "pollIntervalMs": {"type": "integer", "minimum": 100, "maximum": 3_600_000,
                       "default": DEFAULT_POLL_INTERVAL_MS,
                       "description": "Source: wait between polls that found nothing new."},
    "mode": {"type": "string", "enum": ["insert", "upsert"], "default": "insert"},
    "keyColumns": {"type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True,
                   "description": "Target upsert: the unique key matched (default: "
                   "idempotencyColumn)."},
    "idempotencyColumn": {**_NAME, "description": "Target: the column that receives the "
                          "message's idempotency key."},
    "columns": {"type": "object", "minProperties": 1, "additionalProperties": _NAME,
                "description": "Target: payload field -> column (default: the same names)."},
}


class JdbcConnector(Connector):
    type_name: ClassVar[str] = "JDBC"
    display_name: ClassVar[str] = "Database (JDBC / SQL)"
    roles: ClassVar[frozenset[Role]] = frozenset({"source", "target"})
    required_for_role: ClassVar[dict[Role, tuple[str, ...]]] = {
        "source": ("cursorColumn",), "target": ("table",)}
    config_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["dialect", "database"],
        "properties": {
            "dialect": {"type": "string", "enum": sorted(DIALECTS)},
            "host": {"type": "string", "minLength": 1, "maxLength": 255,
                     "pattern": "^[^\\s/?#@]+$"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "database": {"type": "string", "minLength": 1, "maxLength": 1024,
                         "description": "Database name; for sqlite the absolute path of an "
                         "existing database file."},
            "options": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Driver query arguments, e.g. {\"sslmode\": "
                        "\"require\"}."},
            "timeoutMs": {"type": "integer", "minimum": 500, "maximum": 120_000,
                          "default": DEFAULT_TIMEOUT_MS,
                          "description": "Connect timeout, and statement timeout where the "
                          "driver has one (PostgreSQL, MySQL/MariaDB)."},
            "poolSize": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
            "maxOverflow": {"type": "integer", "minimum": 0, "maximum": 50, "default": 5},
            "poolRecycleSeconds": {"type": "integer", "minimum": 1, "maximum": 86_400,
                                   "default": 1800},
            "poolPrePing": {"type": "boolean", "default": True},
            **_ROLE_PROPERTIES,
        },
        "dependentRequired": {"query": ["cursorColumn"], "tieBreakColumn": ["cursorColumn"],
                              "initialCursor": ["cursorColumn"]},
        "allOf": [
            {"if": {"properties": {"dialect": {"const": "sqlite"}}},
             "then": {"properties": {"database": {"pattern": "^/"}}},
             "else": {"required": ["host"]}},
            # A source reads a query, or else a table; an upsert matches keyColumns, or else
            # the idempotency column.
            {"if": {"required": ["cursorColumn"], "not": {"required": ["query"]}},
             "then": {"required": ["table"]}},
            {"if": {"properties": {"mode": {"const": "upsert"}}, "required": ["mode"],
                    "not": {"required": ["idempotencyColumn"]}},
             "then": {"required": ["keyColumns"]}},
        ],
    }
    credentials_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "username": {"type": "string", "minLength": 1},
            "password": {"type": "string", "writeOnly": True},
        },
        "dependentRequired": {"password": ["username"]},
    }

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        super().__init__(config, credentials)
        self.dialect = DIALECTS[config["dialect"]]
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._tables: dict[tuple[str | None, str], Table] = {}
        self._reader = CursorReader(config) if "cursorColumn" in config else None
        self._writer = TableWriter(config["dialect"], config) if "table" in config else None
        self._idle_until = 0.0  # monotonic time before which an empty source is not polled

    def __repr__(self) -> str:
        return f"JdbcConnector({self.config['dialect']}, {self._where()})"

    @property
    def timeout_seconds(self) -> float:
        return int(self.config.get("timeoutMs", DEFAULT_TIMEOUT_MS)) / 1000

    def url(self) -> URL:
        """The SQLAlchemy URL, built from fields; ``str()`` of it shows ``***`` for the
        password."""
        if self.config["dialect"] == "sqlite":
            # A URI with mode=rw: a mistyped path is an error, never a new empty database.
            uri = Path(self.config["database"]).as_uri() + "?mode=rw"
            return URL.create(self.dialect.drivername, database=uri, query={"uri": "true"})
        return URL.create(
            self.dialect.drivername,
            username=self._credentials.get("username"),
            password=self._credentials.get("password"),
            host=self.config.get("host"),
            port=self.config.get("port", self.dialect.default_port),
            database=self.config["database"],
            query=self.config.get("options", {}),
        )

    def engine(self) -> Engine:
        """The connector's pooled engine, created on first use (thread-safe)."""
        with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
            return self._engine

    def _create_engine(self) -> Engine:
        if importlib.util.find_spec(self.dialect.module) is None:
            raise ConnectorError(
                "DB_DRIVER_MISSING",
                f"driver not installed: {self.config['dialect']} needs the Python package "
                f"{self.dialect.package} ({self.dialect.module}) on the workers and the API",
                retryable=False,
            )
        try:
            return create_engine(
                self.url(),
                connect_args=self._connect_args(),
                pool_size=int(self.config.get("poolSize", 5)),
                max_overflow=int(self.config.get("maxOverflow", 5)),
                pool_recycle=int(self.config.get("poolRecycleSeconds", 1800)),
                pool_pre_ping=bool(self.config.get("poolPrePing", True)),
                pool_timeout=self.timeout_seconds,
                hide_parameters=True,  # lookup keys are data, not for logs
            )
        except (sa_exc.NoSuchModuleError, ImportError) as exc:
            raise ConnectorError("DB_DRIVER_MISSING", f"driver not installed: {exc}",
                                 retryable=False) from None
        except sa_exc.ArgumentError as exc:
            raise ConnectorError("DB_BAD_CONFIG", f"unusable config: {exc}",
                                 retryable=False) from None

    def _connect_args(self) -> dict[str, Any]:
        """Bound connects and statements by ``timeoutMs`` in each driver's own terms."""
        seconds = self.timeout_seconds
        dialect = self.config["dialect"]
        if dialect == "postgresql":
            user_options = self.config.get("options", {}).get("options", "")
            return {"connect_timeout": max(1, round(seconds)),
                    "options": f"{user_options} -c statement_timeout={int(seconds * 1000)}"
                    .strip()}
        if dialect in ("mysql", "mariadb"):
            whole = max(1, round(seconds))
            return {"connect_timeout": whole, "read_timeout": whole, "write_timeout": whole}
        if dialect == "sqlite":
            return {"timeout": seconds, "check_same_thread": False}
        if dialect == "mssql":
            return {"timeout": max(1, round(seconds))}
        return {}

    def query_one_sync(self, sql: str, params: dict[str, Any]) -> Row | None:
        """The first row of ``sql`` run with bound ``:name`` parameters, or None.

        Blocking: for use inside a JSONata host function, which is synchronous. Raises a
        classified ``ConnectorError``.
        """
        try:
            with self.engine().connect() as conn:
                return conn.execute(text(sql), params).first()
        except sa_exc.SQLAlchemyError as exc:
            raise self.classify(exc) from None

    async def query_one(self, sql: str, params: dict[str, Any]) -> Row | None:
        """``query_one_sync`` in a worker thread, so the event loop never waits on SQL."""
        return await asyncio.to_thread(self.query_one_sync, sql, params)

    async def test(self, timeout: float = 10.0) -> HealthReport:
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.to_thread(self.query_one_sync, self.dialect.probe, {})
        except TimeoutError:
            return _report("DOWN", started, f"timeout: no answer within {timeout:g} s")
        except ConnectorError as exc:
            return _report("DOWN", started, exc.message)
        except Exception as exc:  # a health check reports, it never raises
            return _report("DOWN", started, f"unexpected {type(exc).__name__}")
        return _report("UP", started, f"{self.config['dialect']} answered {self.dialect.probe}")

    def table(self, name: str, *, refresh: bool = False) -> Table:
        """The table ``name`` (in the configured schema) as the database describes it,
        reflected once per connector; ``refresh`` reads it again (a column was added)."""
        schema = self.config.get("schema")
        if refresh or (schema, name) not in self._tables:
            try:
                with self.engine().connect() as conn:
                    self._tables[(schema, name)] = Table(name, MetaData(), schema=schema,
                                                         autoload_with=conn)
            except sa_exc.NoSuchTableError:
                where = f"{schema}.{name}" if schema else name
                raise ConnectorError("DB_NO_TABLE", f"table {where} not found",
                                     retryable=False) from None
            except sa_exc.SQLAlchemyError as exc:
                raise self.classify(exc) from None
        return self._tables[(schema, name)]

    def restore(self, checkpoint: str | None) -> None:
        if self._reader is not None:
            self._reader.restore(checkpoint)

    async def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        """The next rows after the committed position; when the last poll found none, waits
        out ``pollIntervalMs`` (at most ``timeout`` per call) instead of querying again."""
        wait = self._idle_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(min(wait, timeout))
            if time.monotonic() < self._idle_until:
                return []
        limit = min(max_records, int(self.config.get("batchSize", DEFAULT_BATCH)))
        records = await asyncio.to_thread(self._read, limit)
        if not records:
            interval = int(self.config.get("pollIntervalMs", DEFAULT_POLL_INTERVAL_MS))
            self._idle_until = time.monotonic() + interval / 1000
        return records

    def _read(self, limit: int) -> list[SourceRecord]:
        if self._reader is None:
            raise ConnectorError("DB_BAD_CONFIG", "a JDBC source needs cursorColumn",
                                 retryable=False)
        table = self.table(self._reader.name) if self._reader.query is None else None
        try:
            with self.engine().connect() as conn:
                return self._reader.read(conn, table, limit)
        except sa_exc.SQLAlchemyError as exc:
            raise self.classify(exc) from None

    async def commit(self, records: list[SourceRecord]) -> None:
        if self._reader is not None:
            self._reader.advance(records)

    async def write(self, message: OutboundMessage) -> Delivery:
        return await asyncio.to_thread(self.write_sync, message)

    def write_sync(self, message: OutboundMessage) -> Delivery:
        """Write the message's row(s) in one transaction (blocking)."""
        writer = self._writer
        if writer is None:
            raise ConnectorError("DB_BAD_CONFIG", "a JDBC target needs table", retryable=False)
        rows = writer.rows(message)
        table = self.table(writer.table_name)
        try:
            bound = writer.bind(table, rows)
        except UnknownColumns:
            table = self.table(writer.table_name, refresh=True)
            try:
                bound = writer.bind(table, rows)
            except UnknownColumns as exc:
                raise ConnectorError("DB_UNKNOWN_COLUMN", f"table {writer.table_name} has no "
                                     f"column(s) {exc}", retryable=False) from None
        delivered = Delivery(f"jdbc:{writer.table_name}", f"{writer.mode}: {len(bound)} row(s)")
        if not bound:
            return delivered
        try:
            with self.engine().begin() as conn:
                writer.execute(conn, table, bound)
        except sa_exc.IntegrityError as exc:
            if writer.mode == "insert" and self._written_before(table, bound):
                return Delivery(delivered.target, "duplicate: already written")
            raise self.classify(exc) from None
        except sa_exc.SQLAlchemyError as exc:
            raise self.classify(exc) from None
        return delivered

    def _written_before(self, table: Table, rows: list[dict[str, Any]]) -> bool:
        assert self._writer is not None
        try:
            with self.engine().connect() as conn:
                return self._writer.already_written(conn, table, rows)
        except sa_exc.SQLAlchemyError as exc:
            raise self.classify(exc) from None

    def classify(self, exc: Exception) -> ConnectorError:
        """A ``ConnectorError`` naming the fault as an operator would search for it."""
        orig = getattr(exc, "orig", None) or exc
        detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        code, retryable = (_match(_NETWORK, detail) or _by_code(orig)
                           or _match(_PATTERNS, detail) or _by_class(exc))
        reason = _REASONS.get(code, _REASONS["DB_ERROR"]).format(
            host=self.config.get("host", "?"),
            port=self.config.get("port", self.dialect.default_port),
            user=self._credentials.get("username", "(none)"),
            database=self.config["database"],
        )
        return ConnectorError(code, f"{reason}: {detail[:DRIVER_MESSAGE_CHARS]}",
                              retryable=retryable)

    def _where(self) -> str:
        if self.config["dialect"] == "sqlite":
            return self.config["database"]
        port = self.config.get("port", self.dialect.default_port)
        return f"{self.config.get('host')}:{port}/{self.config['database']}"

    def dispose(self) -> None:
        """Close the pool (blocking); a later query opens a new one."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    async def close(self) -> None:
        await asyncio.to_thread(self.dispose)


def _match(patterns: Patterns, detail: str) -> tuple[str, bool] | None:
    return next(((code, retry) for code, rx, retry in patterns if rx.search(detail)), None)


def _by_code(orig: BaseException) -> tuple[str, bool] | None:
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        for key in (sqlstate, sqlstate[:3], sqlstate[:2]):
            if key in _CODES:
                return _CODES[key]
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return _CODES.get(args[0])
    return None


def _by_class(exc: Exception) -> tuple[str, bool]:
    """Last resort: the DB-API class. Operational and interface errors are about the
    connection or the server's state; the rest are about the statement itself."""
    if isinstance(exc, sa_exc.TimeoutError):
        return "DB_TIMEOUT", True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "DB_UNAVAILABLE", True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return "DB_UNAVAILABLE", True
    if isinstance(exc, sa_exc.IntegrityError):
        return "DB_CONSTRAINT", False
    return "DB_ERROR", False


def _report(status: Status, started: float, detail: str) -> HealthReport:
    return HealthReport(status, int((time.monotonic() - started) * 1000), detail)
