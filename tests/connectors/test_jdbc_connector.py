"""The JDBC connector against real databases: a SQLite file, the test PostgreSQL server, and
a PostgreSQL cluster of its own that checks passwords (the shared test server trusts every
login, so only a second cluster can refuse a wrong password)."""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from integrationos.connectors import registry
from integrationos.connectors.base import ConnectorError
from integrationos.connectors.jdbc import JdbcConnector
from tests.conftest import fresh_postgres_database

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


def test_registered_as_jdbc_without_roles() -> None:
    described = registry.describe("JDBC")
    assert described["roles"] == []
    assert registry.validate_config("JDBC", {"dialect": "postgresql", "database": "x"}, {}) \
        == [{"field": "/config/host", "message": "'host' is a required property"}]
    assert registry.validate_config("JDBC", {"dialect": "sqlite", "database": "/d.db"}, {}) == []
    relative = registry.validate_config("JDBC", {"dialect": "sqlite", "database": "d.db"}, {})
    assert [v["field"] for v in relative] == ["/config/database"]
    unknown = registry.validate_config("JDBC", {"dialect": "db2", "host": "h", "database": "x"},
                                       {})
    assert [v["field"] for v in unknown] == ["/config/dialect"]


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
