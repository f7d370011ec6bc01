"""Relational databases through SQLAlchemy: PostgreSQL, MySQL/MariaDB, SQLite, SQL Server, Oracle.

Named after the JDBC connectors of other platforms, so users find it where they look. It
has no roles yet: it exists for DB lookups (``query_one``); source and target behaviour
comes with the connectors issue. One pooled engine per connector instance; its URL is built
with ``URL.create`` from separate fields, so a password with ``@`` or ``/`` needs no quoting,
and SQLAlchemy masks it in every repr and log line. Every failure is classified so a lookup
can tell a database that is down (retry later) from a query that will never work.
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

from sqlalchemy import URL, Engine, Row, create_engine, text
from sqlalchemy import exc as sa_exc

from integrationos.connectors.base import Connector, ConnectorError, HealthReport, Role

DEFAULT_TIMEOUT_MS = 10_000
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
    1045: ("DB_AUTH", False), 1049: ("DB_MISSING", False), 1044: ("DB_PERMISSION", False),
    1142: ("DB_PERMISSION", False), 1143: ("DB_PERMISSION", False), 1064: ("DB_SYNTAX", False),
    1146: ("DB_QUERY_INVALID", False), 1054: ("DB_QUERY_INVALID", False),
    1205: ("DB_TIMEOUT", True), 1213: ("DB_DEADLOCK", True), 1040: ("DB_UNAVAILABLE", True),
    2002: ("DB_UNAVAILABLE", True), 2003: ("DB_UNAVAILABLE", True),
    2006: ("DB_UNAVAILABLE", True), 2013: ("DB_UNAVAILABLE", True),
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
    ("DB_DEADLOCK", r"deadlock", True),
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
    "DB_UNAVAILABLE": "database unavailable",
    "DB_PERMISSION": "permission denied",
    "DB_SYNTAX": "SQL syntax error",
    "DB_QUERY_INVALID": "query refused",
    "DB_ERROR": "database error",
}


class JdbcConnector(Connector):
    type_name: ClassVar[str] = "JDBC"
    display_name: ClassVar[str] = "Database (JDBC / SQL)"
    roles: ClassVar[frozenset[Role]] = frozenset()
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
        },
        "if": {"properties": {"dialect": {"const": "sqlite"}}},
        "then": {"properties": {"database": {"pattern": "^/"}}},
        "else": {"required": ["host"]},
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
    return "DB_ERROR", False


def _report(status: Status, started: float, detail: str) -> HealthReport:
    return HealthReport(status, int((time.monotonic() - started) * 1000), detail)
