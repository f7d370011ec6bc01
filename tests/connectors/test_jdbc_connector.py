"""The JDBC connector against real databases: a SQLite file, the test PostgreSQL and MariaDB
servers, and a PostgreSQL cluster of its own that checks passwords (the shared test server
trusts every login, so only a second cluster can refuse a wrong password). SQL Server and
Oracle have no server here: their MERGE statements are checked as compiled SQL."""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Engine,
    Executable,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc
from sqlalchemy.dialects.oracle import oracledb as oracle_oracledb

from integrationos.connectors import registry
from integrationos.connectors.base import ConnectorError, OutboundMessage, SourceRecord
from integrationos.connectors.jdbc import JdbcConnector
from integrationos.connectors.jdbc_statements import check_identifier, upsert_row
from tests.conftest import fresh_mariadb_database, fresh_postgres_database, jdbc_settings
from tests.support import wait_for

HOSTILE = "x' or '1'='1"
PASSWORD = "pw-3@/:x-never-logged"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(connector: JdbcConnector, coro: Any) -> Any:
    async def main() -> Any:
        try:
            return await coro
        finally:
            await connector.close()

    return asyncio.run(main())


def failure(connector: JdbcConnector, sql: str, params: dict[str, Any] | None = None
            ) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        connector.query_one_sync(sql, params or {})
    return caught.value


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "ref data.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT, pop INTEGER)")
        conn.executemany("INSERT INTO countries VALUES (?, ?, ?)",
                         [("PT", "Portugal", 10), ("ES", "Spain", 48)])
    return path


def pg_url_parts(url: str) -> dict[str, Any]:
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    return {"host": host, "port": int(port)}


@pytest.fixture
def pg_database() -> Iterator[dict[str, Any]]:
    """A fresh database on the test PostgreSQL with a small table; its connector config."""
    name = f"jdbc_{uuid.uuid4().hex[:10]}"
    url = fresh_postgres_database(name)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE countries (code text PRIMARY KEY, name text)"))
        conn.execute(text("INSERT INTO countries VALUES ('PT', 'Portugal'), ('ES', 'Spain')"))
    yield {"engine": engine, "config": {"dialect": "postgresql", "database": name,
                                        **pg_url_parts(url)}}
    engine.dispose()


def test_registered_as_jdbc_source_and_target() -> None:
    described = registry.describe("JDBC")
    assert described["roles"] == ["source", "target"]
    assert registry.validate_config("JDBC", {"dialect": "postgresql", "database": "x"}, {}) \
        == [{"field": "/config/host", "message": "'host' is a required property"}]
    assert registry.validate_config("JDBC", {"dialect": "sqlite", "database": "/d.db"}, {}) == []
    relative = registry.validate_config("JDBC", {"dialect": "sqlite", "database": "d.db"}, {})
    assert [v["field"] for v in relative] == ["/config/database"]
    unknown = registry.validate_config("JDBC", {"dialect": "db2", "host": "h", "database": "x"},
                                       {})
    assert [v["field"] for v in unknown] == ["/config/dialect"]


def test_role_settings_are_validated() -> None:
    base = {"dialect": "sqlite", "database": "/d.db"}

    def fields(config: dict[str, Any], role: str | None = None) -> list[str]:
        found = registry.validate_config("JDBC", base | config, {}, role=role)  # type: ignore[arg-type]
        return [v["field"] for v in found]

    assert fields({"table": "orders", "mode": "upsert", "keyColumns": ["id"]}, "target") == []
    assert fields({"table": "orders", "cursorColumn": "id"}, "source") == []
    assert fields({"query": "SELECT * FROM t WHERE id > :cursor", "cursorColumn": "id"},
                  "source") == []
    assert fields({}, "target") == ["/config/table"]
    assert fields({"table": "orders"}, "source") == ["/config/cursorColumn"]
    assert fields({"table": "orders", "mode": "upsert"}) == ["/config/keyColumns"]
    assert fields({"table": "t", "mode": "upsert", "idempotencyColumn": "msg_key"}) == []
    assert fields({"cursorColumn": "id"}) == ["/config/table"]
    assert fields({"query": "SELECT * FROM t"}) == ["/config", "/config/query"]
    assert fields({"table": "orders; DROP TABLE orders"}) == ["/config/table"]
    assert fields({"table": "t", "columns": {"Name": "name\" --"}}) == ["/config/columns/Name"]
    assert fields({"table": "t", "keyColumns": ["a b"], "mode": "upsert"}) \
        == ["/config/keyColumns/0"]


def test_sqlite_file_up_and_bound_parameters(sqlite_file: Path) -> None:
    connector = JdbcConnector({"dialect": "sqlite", "database": str(sqlite_file)}, {})
    report = asyncio.run(connector.test())
    assert report.status == "UP", report.detail
    sql = "SELECT name, pop FROM countries WHERE code = :key"
    row = connector.query_one_sync(sql, {"key": "PT"})
    assert row is not None and row._mapping == {"name": "Portugal", "pop": 10}
    assert connector.query_one_sync(sql, {"key": HOSTILE}) is None
    assert connector.query_one_sync(sql, {"key": "ES'; DROP TABLE countries; --"}) is None
    assert run(connector, connector.query_one(sql, {"key": "ES"})).name == "Spain"
    with sqlite3.connect(sqlite_file) as conn:
        assert conn.execute("SELECT count(*) FROM countries").fetchone() == (2,)


def test_sqlite_statement_errors_are_permanent(sqlite_file: Path) -> None:
    connector = JdbcConnector({"dialect": "sqlite", "database": str(sqlite_file)}, {})
    syntax = failure(connector, "SELEC name FROM countries")
    assert (syntax.code, syntax.retryable) == ("DB_SYNTAX", False)
    missing = failure(connector, "SELECT name FROM nowhere WHERE code = :key", {"key": "PT"})
    assert (missing.code, missing.retryable) == ("DB_QUERY_INVALID", False)
    unbound = failure(connector, "SELECT name FROM countries WHERE code = :key")
    assert unbound.retryable is False


def test_sqlite_missing_file_is_down_and_never_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    connector = JdbcConnector({"dialect": "sqlite", "database": str(path)}, {})
    report = asyncio.run(connector.test())
    assert report.status == "DOWN"
    assert "does not exist" in report.detail and str(path) in report.detail
    assert not path.exists()


def test_sqlite_locked_database_is_retryable(sqlite_file: Path) -> None:
    connector = JdbcConnector({"dialect": "sqlite", "database": str(sqlite_file),
                               "timeoutMs": 500}, {})
    blocker = sqlite3.connect(sqlite_file)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        locked = failure(connector, "SELECT name FROM countries WHERE code = :key", {"key": "PT"})
    finally:
        blocker.rollback()
        blocker.close()
    assert (locked.code, locked.retryable) == ("DB_UNAVAILABLE", True)


def test_postgresql_up_query_and_hostile_key(pg_database: dict[str, Any]) -> None:
    connector = JdbcConnector(pg_database["config"], {"username": "postgres"})
    report = asyncio.run(connector.test())
    assert report.status == "UP" and report.detail == "postgresql answered SELECT 1"
    sql = "SELECT name FROM countries WHERE code = :key"
    assert connector.query_one_sync(sql, {"key": "PT"}).name == "Portugal"
    assert connector.query_one_sync(sql, {"key": HOSTILE}) is None
    assert run(connector, connector.query_one(sql, {"key": "ES"})).name == "Spain"
    with pg_database["engine"].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM countries")).scalar_one() == 2


def test_one_pooled_engine_per_connector(pg_database: dict[str, Any]) -> None:
    connector = JdbcConnector(pg_database["config"] | {"poolSize": 2, "maxOverflow": 0},
                              {"username": "postgres"})
    engine = connector.engine()
    for code in ("PT", "ES", "PT"):
        connector.query_one_sync("SELECT name FROM countries WHERE code = :key", {"key": code})
    assert connector.engine() is engine
    assert engine.pool.size() == 2
    asyncio.run(connector.close())
    assert connector.engine() is not engine


def test_postgresql_statement_errors(pg_database: dict[str, Any]) -> None:
    config = pg_database["config"] | {"timeoutMs": 500}
    connector = JdbcConnector(config, {"username": "postgres"})
    syntax = failure(connector, "SELEC 1")
    assert (syntax.code, syntax.retryable) == ("DB_SYNTAX", False)
    slow = failure(connector, "SELECT pg_sleep(3)")
    assert (slow.code, slow.retryable) == ("DB_TIMEOUT", True)

    role = f"reader_{uuid.uuid4().hex[:8]}"
    with pg_database["engine"].begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        reader = JdbcConnector(config, {"username": role})
        denied = failure(reader, "SELECT name FROM countries WHERE code = :key", {"key": "PT"})
        assert (denied.code, denied.retryable) == ("DB_PERMISSION", False)
        asyncio.run(reader.close())
    finally:
        with pg_database["engine"].begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
    asyncio.run(connector.close())


def test_postgresql_down_reasons(pg_database: dict[str, Any]) -> None:
    config = pg_database["config"]
    cases = {
        "does not exist": config | {"database": f"absent_{uuid.uuid4().hex[:6]}"},
        "connection refused": config | {"port": free_port()},
        "DNS": config | {"host": "no-such-host.invalid"},
    }
    for expected, broken in cases.items():
        report = asyncio.run(JdbcConnector(broken, {"username": "postgres"}).test(5))
        assert report.status == "DOWN" and expected in report.detail, (expected, report)


def test_drivers_that_are_not_installed_say_so() -> None:
    for dialect, module in (("mssql", "pyodbc"), ("oracle", "oracledb")):
        if importlib.util.find_spec(module) is not None:
            continue
        connector = JdbcConnector({"dialect": dialect, "host": "127.0.0.1", "database": "x"},
                                  {"username": "u", "password": PASSWORD})
        report = asyncio.run(connector.test())
        assert report.status == "DOWN"
        assert "driver not installed" in report.detail and module in report.detail
        with pytest.raises(ConnectorError) as caught:
            connector.query_one_sync("SELECT 1", {})
        assert caught.value.code == "DB_DRIVER_MISSING" and caught.value.retryable is False


def test_mysql_refused_names_the_reason() -> None:
    connector = JdbcConnector({"dialect": "mysql", "host": "127.0.0.1", "port": free_port(),
                               "database": "x"}, {"username": "u", "password": PASSWORD})
    report = asyncio.run(connector.test(5))
    assert report.status == "DOWN" and "connection refused" in report.detail
    assert PASSWORD not in report.detail


@pytest.fixture(scope="module")
def password_postgres() -> Iterator[dict[str, Any]]:
    """A throwaway PostgreSQL cluster with scram-sha-256 logins, as postgres/PASSWORD."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        if os.environ.get("CI"):
            pytest.fail("CI needs PostgreSQL's binaries (.ci/postgres.sh installs them)")
        pytest.skip("no PostgreSQL binaries to start a password-checking cluster")
    bindir = Path(initdb[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="ios-pgpw-"))
    port = free_port()
    (base / "pw").write_text(PASSWORD)
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(base / "pw", "postgres")

    def pg(*args: str) -> None:
        command = [str(bindir / args[0]), *args[1:]]
        if as_root:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", subprocess.list2cmdline(command)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    pg("initdb", "-D", f"{base}/data", "-U", "postgres", "-A", "scram-sha-256", "-N",
       f"--pwfile={base}/pw")
    pg("pg_ctl", "-D", f"{base}/data", "-l", f"{base}/log", "-w", "-o",
       f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off", "start")
    try:
        yield {"dialect": "postgresql", "host": "127.0.0.1", "port": port,
               "database": "postgres"}
    finally:
        pg("pg_ctl", "-D", f"{base}/data", "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_wrong_password_is_down_with_authentication(password_postgres: dict[str, Any]) -> None:
    wrong = JdbcConnector(password_postgres, {"username": "postgres", "password": "nope"})
    report = asyncio.run(wrong.test())
    assert report.status == "DOWN" and "authentication" in report.detail
    with pytest.raises(ConnectorError) as caught:
        wrong.query_one_sync("SELECT 1", {})
    assert (caught.value.code, caught.value.retryable) == ("DB_AUTH", False)

    right = JdbcConnector(password_postgres, {"username": "postgres", "password": PASSWORD})
    assert asyncio.run(right.test()).status == "UP"
    assert right.query_one_sync("SELECT :key AS echoed", {"key": HOSTILE}).echoed == HOSTILE
    shown = " ".join([repr(right), str(right.url()), repr(right.engine()), report.detail])
    assert PASSWORD not in shown and "***" in str(right.url())
    asyncio.run(right.close())


# --- source and target, on a real SQLite file, PostgreSQL and MariaDB ------------------------

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@dataclass
class Server:
    """One fresh database: a connector's settings for it, and an engine to arrange and
    inspect it from the test's side."""

    dialect: str
    config: dict[str, Any]
    credentials: dict[str, Any]
    engine: Engine

    def connector(self, **options: Any) -> JdbcConnector:
        return JdbcConnector(self.config | options, self.credentials)

    def rows(self, query: str | Executable) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            statement = text(query) if isinstance(query, str) else query
            return [tuple(row) for row in conn.execute(statement)]


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    name = f"jdbc_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        path = tmp_path / f"{name}.db"
        sqlite3.connect(path).close()
        config, credentials = {"dialect": "sqlite", "database": str(path)}, {}
    else:
        fresh = fresh_postgres_database if request.param == "postgresql" \
            else fresh_mariadb_database
        config, credentials = jdbc_settings(fresh(name))
    connector = JdbcConnector(config, credentials)
    engine = create_engine(connector.url())
    yield Server(request.param, config, credentials, engine)
    engine.dispose()


def create_orders(engine: Engine) -> Table:
    orders = Table(
        "orders", MetaData(),
        Column("order_id", Integer, primary_key=True, autoincrement=False),
        Column("customer", String(200), nullable=False),
        Column("amount", Numeric(10, 2)),
        Column("placed_at", DateTime(timezone=True)),
        Column("msg_key", String(64), unique=True),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )
    orders.create(engine)
    return orders


def message(payload: Any, key: str = "msg_1") -> OutboundMessage:
    return OutboundMessage(message_id=key, idempotency_key=key, tenant="acme",
                           integration_id="int_1", key=None, payload=payload)


def write(connector: JdbcConnector, payload: Any, key: str = "msg_1") -> str:
    return connector.write_sync(message(payload, key)).detail


def write_error(connector: JdbcConnector, payload: Any, key: str = "msg_1") -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        connector.write_sync(message(payload, key))
    return caught.value


def utc_naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def test_target_insert_upsert_and_batch(server: Server) -> None:
    orders = create_orders(server.engine)
    dropper = "Robert'); DROP TABLE orders; --"
    inserter = server.connector(table="orders")
    assert write(inserter, {"order_id": 1, "customer": HOSTILE, "amount": "12.50",
                            "placed_at": "2024-05-01T11:00:00+01:00"}) == "insert: 1 row(s)"
    assert write(inserter, {"order_id": 4, "customer": dropper}) == "insert: 1 row(s)"
    upserter = server.connector(table="orders", mode="upsert", keyColumns=["order_id"])
    assert write(upserter, {"order_id": 1, "customer": "Ana", "amount": 13}) \
        == "upsert: 1 row(s)"
    batch = [{"order_id": 2, "customer": "Rui"}, {"order_id": 3, "customer": "Eva"},
             {"order_id": 2, "customer": "Rui B", "amount": 0.5}]
    assert write(upserter, batch) == "upsert: 3 row(s)"  # the later row of a key wins
    rows = server.rows(select(orders.c["order_id", "customer", "amount", "placed_at"])
                       .order_by(orders.c.order_id))
    assert [row[:3] for row in rows] == [
        (1, "Ana", Decimal("13.00")), (2, "Rui B", Decimal("0.50")), (3, "Eva", None),
        (4, dropper, None)]
    assert utc_naive(rows[0][3]) == datetime(2024, 5, 1, 10, 0)  # kept by the upsert
    assert write(upserter, []) == "upsert: 0 row(s)"
    asyncio.run(upserter.close())
    asyncio.run(inserter.close())


def test_target_constraint_violations_are_permanent_and_batches_atomic(server: Server
                                                                        ) -> None:
    create_orders(server.engine)
    connector = server.connector(table="orders")
    write(connector, {"order_id": 1, "customer": "Ana"})
    cases = {
        "duplicate key": {"order_id": 1, "customer": "Ana again"},
        "check": [{"order_id": 2, "customer": "Rui"}, {"order_id": 3, "customer": "Eva",
                                                        "amount": -1}],
        "not null": {"order_id": 5},
    }
    for case, payload in cases.items():
        error = write_error(connector, payload)
        assert (error.code, error.retryable) == ("DB_CONSTRAINT", False), (case, error.message)
    bad_date = write_error(connector, {"order_id": 6, "customer": "X", "placed_at": "soon"})
    assert (bad_date.code, bad_date.retryable) == ("DB_BAD_VALUE", False)
    assert server.rows("SELECT order_id, customer FROM orders") == [(1, "Ana")]
    asyncio.run(connector.close())


def test_target_idempotency_key_makes_redelivery_harmless(server: Server) -> None:
    create_orders(server.engine)
    upserter = server.connector(table="orders", mode="upsert", idempotencyColumn="msg_key")
    for _ in range(2):
        write(upserter, {"order_id": 1, "customer": "Ana"}, key="msg_a")
    write(upserter, [{"order_id": 2, "customer": "Rui"}, {"order_id": 3, "customer": "Eva"}],
          key="msg_b")
    write(upserter, [{"order_id": 2, "customer": "Rui"}, {"order_id": 3, "customer": "Eva"}],
          key="msg_b")
    assert server.rows("SELECT order_id, msg_key FROM orders ORDER BY order_id") == [
        (1, "msg_a"), (2, "msg_b/0"), (3, "msg_b/1")]

    inserter = server.connector(table="orders", idempotencyColumn="msg_key")
    assert write(inserter, {"order_id": 4, "customer": "Zé"}, key="msg_c") == "insert: 1 row(s)"
    assert write(inserter, {"order_id": 4, "customer": "Zé"}, key="msg_c") \
        == "duplicate: already written"
    clash = write_error(inserter, {"order_id": 4, "customer": "Other"}, key="msg_d")
    assert (clash.code, clash.retryable) == ("DB_CONSTRAINT", False)
    assert server.rows("SELECT count(*) FROM orders") == [(4,)]
    asyncio.run(upserter.close())
    asyncio.run(inserter.close())


def test_target_names_are_checked_and_mapped(sqlite_file: Path) -> None:
    with sqlite3.connect(sqlite_file) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
    connector = JdbcConnector({"dialect": "sqlite", "database": str(sqlite_file),
                               "table": "people"}, {})
    hostile = write_error(connector, {"id": 1, "name; DROP TABLE people; --": "x"})
    assert (hostile.code, hostile.retryable) == ("DB_BAD_IDENTIFIER", False)
    unknown = write_error(connector, {"id": 1, "nickname": "Zé"})
    assert (unknown.code, unknown.retryable) == ("DB_UNKNOWN_COLUMN", False)
    not_object = write_error(connector, ["just text"])
    assert not_object.code == "DB_BAD_PAYLOAD"
    with sqlite3.connect(sqlite_file) as conn:  # a column added while the connector lives
        conn.execute("ALTER TABLE people ADD COLUMN nickname TEXT")
    write(connector, {"id": 1, "nickname": "Zé"})
    mapped = JdbcConnector(connector.config | {"columns": {"Id": "id", "FullName": "name"}}, {})
    write(mapped, {"Id": 2, "FullName": "Ana Lima", "ignored; DROP TABLE people": 1})
    with sqlite3.connect(sqlite_file) as conn:
        assert conn.execute("SELECT id, name, nickname FROM people ORDER BY id").fetchall() \
            == [(1, None, "Zé"), (2, "Ana Lima", None)]


def poll(connector: JdbcConnector, max_records: int = 100) -> list[SourceRecord]:
    return asyncio.run(connector.poll(max_records, 1.0))


def bodies(records: list[SourceRecord]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


def test_source_polls_in_cursor_order_and_resumes_from_its_checkpoint(server: Server) -> None:
    events = Table("events", MetaData(), Column("id", Integer, primary_key=True),
                   Column("name", String(50)), Column("amount", Numeric(10, 2)),
                   Column("updated_at", DateTime(timezone=True)))
    events.create(server.engine)
    stamps = [T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2),
              T0 + timedelta(seconds=2)]
    with server.engine.begin() as conn:
        conn.execute(insert(events), [
            {"id": n, "name": f"e{n}", "amount": Decimal("1.50") * n, "updated_at": stamp}
            for n, stamp in enumerate(stamps, start=1)])
        conn.execute(insert(events), {"id": 6, "name": "no cursor yet", "updated_at": None})
    options = {"table": "events", "cursorColumn": "updated_at", "tieBreakColumn": "id",
               "batchSize": 2, "pollIntervalMs": 100}
    source = server.connector(**options)
    source.restore(None)
    first = poll(source)
    assert [b["id"] for b in bodies(first)] == [1, 2]
    assert bodies(first)[0]["amount"] == "1.50" and bodies(first)[0]["name"] == "e1"
    assert bodies(first)[0]["updated_at"].startswith("2024-05-01T10:00:00")
    assert [r.key for r in first] == [b"1", b"2"]
    assert poll(source) == first  # nothing committed yet: the same rows, the same positions
    asyncio.run(source.commit(first))
    second = poll(source)
    assert [b["id"] for b in bodies(second)] == [3, 4]
    asyncio.run(source.close())

    restarted = server.connector(**options)  # a crash before the second batch was committed
    restarted.restore(first[-1].checkpoint)
    again = poll(restarted)
    assert [(r.position, r.value) for r in again] == [(r.position, r.value) for r in second]
    asyncio.run(restarted.commit(again))
    last = poll(restarted)
    assert [b["id"] for b in bodies(last)] == [5]
    asyncio.run(restarted.commit(last))
    assert poll(restarted) == []

    with server.engine.begin() as conn:  # an update moves the row past the cursor
        conn.execute(update(events).where(events.c.id == 1).values(
            name="e1 changed", updated_at=T0 + timedelta(seconds=3)))
    changed = poll(restarted)
    assert [(b["id"], b["name"]) for b in bodies(changed)] == [(1, "e1 changed")]
    positions = [r.position for r in first + second + last + changed]
    assert len(set(positions)) == 6 and all(p.startswith("events/2024-05-01T10:00:0")
                                            for p in positions)
    asyncio.run(restarted.close())

    later = server.connector(**options, initialCursor="2024-05-01T10:00:01+00:00")
    later.restore(None)
    assert [b["id"] for b in bodies(poll(later))] == [4, 5]
    asyncio.run(later.close())

    query = server.connector(query="SELECT id, name FROM events WHERE id > :cursor "
                             "ORDER BY id LIMIT :limit", cursorColumn="id", initialCursor=3)
    query.restore(None)
    rows = poll(query)
    assert [b["id"] for b in bodies(rows)] == [4, 5, 6]
    assert [r.position for r in rows] == ["query/4", "query/5", "query/6"]
    asyncio.run(query.close())


def test_source_without_tie_break_never_splits_a_cursor_value(sqlite_file: Path) -> None:
    with sqlite3.connect(sqlite_file) as conn:
        conn.execute("CREATE TABLE ticks (batch INTEGER, note TEXT)")
        conn.executemany("INSERT INTO ticks VALUES (?, ?)",
                         [(1, "a"), (1, "b"), (2, "c"), (2, "d"), (3, "e"), (3, "f")])
    source = JdbcConnector({"dialect": "sqlite", "database": str(sqlite_file), "table": "ticks",
                            "cursorColumn": "batch", "batchSize": 3}, {})
    seen = []
    for _ in range(3):
        records = poll(source)
        seen.append(sorted(b["note"] for b in bodies(records)))
        asyncio.run(source.commit(records))
    assert seen == [["a", "b"], ["c", "d"], ["e", "f"]]

    with sqlite3.connect(sqlite_file) as conn:
        conn.executemany("INSERT INTO ticks VALUES (?, ?)", [(4, n) for n in "ghij"])
    with pytest.raises(ConnectorError) as caught:
        poll(source)
    assert caught.value.code == "DB_CURSOR_NOT_UNIQUE" and "tieBreakColumn" in caught.value.message

    source.restore("not json")
    with pytest.raises(ConnectorError) as unreadable:
        poll(source)
    assert unreadable.value.code == "DB_BAD_CHECKPOINT"


def test_upsert_compiles_to_merge_for_sql_server_and_oracle() -> None:
    """No SQL Server or Oracle runs here: their MERGE is checked as compiled SQL."""
    orders = Table("orders", MetaData(), Column("id", Integer, primary_key=True),
                   Column("date", String), Column("Name", String), schema="sales")
    sql_server = upsert_row("mssql", orders, ["id", "date", "Name"], ["id"]).compile(
        dialect=mssql_pyodbc.dialect(paramstyle="qmark"))
    assert str(sql_server) == (
        "MERGE INTO sales.orders WITH (HOLDLOCK) AS tgt USING (VALUES (?, ?, ?)) AS src "
        "(id, date, [Name]) ON tgt.id = src.id WHEN MATCHED THEN UPDATE SET "
        "tgt.date = src.date, tgt.[Name] = src.[Name] WHEN NOT MATCHED THEN INSERT "
        "(id, date, [Name]) VALUES (src.id, src.date, src.[Name]);")
    assert sql_server.positiontup == ["id", "date", "Name"]
    oracle = upsert_row("oracle", orders, ["id", "date", "Name"], ["id"]).compile(
        dialect=oracle_oracledb.dialect())
    assert str(oracle) == (
        'MERGE INTO sales.orders tgt USING (SELECT :id AS id, :"date" AS "date", :Name AS '
        '"Name" FROM DUAL) src ON (tgt.id = src.id) WHEN MATCHED THEN UPDATE SET '
        'tgt."date" = src."date", tgt."Name" = src."Name" WHEN NOT MATCHED THEN INSERT '
        '(id, "date", "Name") VALUES (src.id, src."date", src."Name")')
    assert oracle.construct_params({"id": 1, "date": HOSTILE, "Name": "n"}) \
        == {"id": 1, '"date"': HOSTILE, "Name": "n"}
    keys_only = upsert_row("oracle", orders, ["id"], ["id"]).compile(
        dialect=oracle_oracledb.dialect())
    assert "WHEN MATCHED" not in str(keys_only)
    with pytest.raises(ConnectorError):
        check_identifier('id" = 1; --', "column")


def test_postgresql_deadlock_is_retryable(pg_database: dict[str, Any]) -> None:
    """A real deadlock: the connector's batch holds row PT and waits for ES, which the test's
    own transaction holds while it waits for PT. PostgreSQL aborts the side whose
    deadlock_timeout runs out first: the connector's, as the test's own is raised."""
    connector = JdbcConnector(pg_database["config"] | {"table": "countries", "mode": "upsert",
                                                       "keyColumns": ["code"]},
                              {"username": "postgres"})
    outcome: list[BaseException] = []
    with pg_database["engine"].connect() as other:
        other.execute(text("SET deadlock_timeout = '30s'"))
        other.execute(text("UPDATE countries SET name = 'Espanha' WHERE code = 'ES'"))

        def batch() -> None:
            try:
                write(connector, [{"code": "PT", "name": "P"}, {"code": "ES", "name": "E"}])
            except ConnectorError as exc:
                outcome.append(exc)

        writer = threading.Thread(target=batch)
        writer.start()
        with pg_database["engine"].connect() as watcher:
            def batch_waits() -> bool:  # it holds PT and waits for ES
                return bool(watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar_one())

            wait_for(batch_waits, 30, "the batch to wait for the row lock")
        other.execute(text("UPDATE countries SET name = 'Portugal!' WHERE code = 'PT'"))
        other.commit()
        writer.join(30)
    assert len(outcome) == 1
    error = outcome[0]
    assert isinstance(error, ConnectorError)
    assert (error.code, error.retryable) == ("DB_DEADLOCK", True)
    asyncio.run(connector.close())
