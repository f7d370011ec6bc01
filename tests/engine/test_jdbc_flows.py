"""JDBC source and target on the real broker and worker: PostgreSQL rows flow through the
pipeline into MariaDB, and a worker killed with SIGKILL mid-flow loses no row."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text

from integrationos.connectors.credentials import CredentialVault
from integrationos.connectors.jdbc import JdbcConnector
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import integrations, messages, source_checkpoints
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer
from tests.conftest import (
    WorkerProcess,
    fresh_mariadb_database,
    fresh_postgres_database,
    jdbc_settings,
)
from tests.support import count_messages, wait_for

pytestmark = pytest.mark.broker

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
EXPRESSION = ('{"order_id": $.id, "customer": $.customer, "amount": $.amount, '
              '"placed_at": $.updated_at}')


class Database:
    """A fresh database on a test server: its connector settings and an engine on it."""

    def __init__(self, url: str) -> None:
        self.config, self.credentials = jdbc_settings(url)
        self.engine: Engine = create_engine(JdbcConnector(self.config, self.credentials).url())

    def execute(self, *statements: str, params: list[dict[str, Any]] | None = None) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params)

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()


@pytest.fixture
def source_db() -> Iterator[Database]:
    db = Database(fresh_postgres_database(f"src_{uuid.uuid4().hex[:10]}"))
    db.execute("CREATE TABLE orders (id integer PRIMARY KEY, customer text NOT NULL, "
               "amount numeric(10, 2), updated_at timestamptz NOT NULL)")
    yield db
    db.engine.dispose()


@pytest.fixture
def target_db() -> Iterator[Database]:
    db = Database(fresh_mariadb_database(f"dst_{uuid.uuid4().hex[:10]}"))
    yield db
    db.engine.dispose()


def add_orders(db: Database, ids: range, amount: Any = "12.50") -> None:
    db.execute("INSERT INTO orders VALUES (:id, :customer, :amount, :updated_at)", params=[
        {"id": n, "customer": f"c{n}", "amount": amount,
         "updated_at": T0 + timedelta(milliseconds=n)} for n in ids])


def configure(settings: Settings, source: Database, source_options: dict[str, Any],
              target: Database, target_options: dict[str, Any]) -> None:
    """JDBC source and target connectors and the integration between them, as config
    events; waits until the worker's projections have them."""
    vault = CredentialVault.from_settings(settings)
    log = LogProducer(settings.kafka_bootstrap)
    topic = CONFIG.name(settings.topic_prefix)
    for connector_id, db, options in (("con_src", source, source_options),
                                      ("con_dst", target, target_options)):
        log.append_sync(topic, Event(t.CONNECTOR_CREATED, "acme", connector_id, {
            "id": connector_id, "name": connector_id, "connectorType": "JDBC",
            "configJson": json.dumps(db.config | options),
            "credentials": vault.seal(db.credentials), "version": 1}))
    log.append_sync(topic, Event(t.INTEGRATION_CREATED, "acme", "int_jdbc", {
        "id": "int_jdbc", "name": "orders copy", "environment": "DEV",
        "sourceConnectorId": "con_src", "targetConnectorId": "con_dst",
        "transformationId": None, "expression": EXPRESSION, "errorStrategy": "RETRY_3_DLQ",
        "version": 1}))
    log.close()
    store = open_database(settings.database_url)

    def projected() -> bool:
        with store.connect() as conn:
            return conn.execute(select(integrations.c.id)).first() is not None

    wait_for(projected, 30, "the integration to be projected")
    store.dispose()


def read_model(settings: Settings, query: Any) -> list[Any]:
    store = open_database(settings.database_url)
    try:
        with store.connect() as conn:
            return list(conn.execute(query))
    finally:
        store.dispose()


def test_postgresql_rows_upserted_into_mariadb_and_a_violation_dead_lettered(
        worker: WorkerProcess, platform_env: dict[str, str], source_db: Database,
        target_db: Database) -> None:
    settings = Settings.from_env()
    target_db.execute(
        "CREATE TABLE orders_copy (order_id INT PRIMARY KEY, customer VARCHAR(100) NOT NULL, "
        "amount DECIMAL(10, 2), placed_at DATETIME(6), CONSTRAINT amount_not_negative "
        "CHECK (amount >= 0))")
    add_orders(source_db, range(1, 40))
    add_orders(source_db, range(40, 41), amount="-5.00")  # breaks the target's CHECK
    configure(settings, source_db, {"table": "orders", "cursorColumn": "updated_at",
                                    "tieBreakColumn": "id", "batchSize": 15,
                                    "pollIntervalMs": 200},
              target_db, {"table": "orders_copy", "mode": "upsert", "keyColumns": ["order_id"]})
    add_orders(source_db, range(41, 61))  # and while it runs

    wait_for(lambda: count_messages(settings, "DELIVERED") == 59
             and count_messages(settings, "DEAD_LETTERED") == 1, 120,
             "59 deliveries and one dead letter")
    assert target_db.scalar("SELECT count(*) FROM orders_copy") == 59
    assert target_db.scalar("SELECT amount FROM orders_copy WHERE order_id = 7") \
        == Decimal("12.50")
    assert target_db.scalar("SELECT placed_at FROM orders_copy WHERE order_id = 7") \
        == datetime(2024, 5, 1, 10, 0, 0, 7000)  # UTC, as the naive DATETIME holds it
    ((code, error),) = read_model(settings, select(
        messages.c.last_error_code, messages.c.last_error_message).where(
        messages.c.status == "DEAD_LETTERED"))
    assert code == "DB_CONSTRAINT" and "amount_not_negative" in error

    source_db.execute("UPDATE orders SET amount = 99, updated_at = now() WHERE id = 7")
    wait_for(lambda: target_db.scalar("SELECT amount FROM orders_copy WHERE order_id = 7")
             == Decimal("99.00"), 60, "the update to arrive")
    assert target_db.scalar("SELECT count(*) FROM orders_copy") == 59  # upserted, not added
    wait_for(lambda: count_messages(settings, "DELIVERED") == 60, 30, "the update's delivery")


TOTAL = 3000


def test_worker_killed_mid_flow_loses_no_row_and_duplicates_nothing(
        worker: WorkerProcess, platform_env: dict[str, str], source_db: Database,
        target_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env()
    # No unique key but the idempotency key: a re-delivery absorbed by the upsert shows up
    # in `rewrites` (a trigger), one it failed to absorb as an extra row.
    target_db.execute(
        "CREATE TABLE orders_copy (row_id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, "
        "customer VARCHAR(100), amount DECIMAL(10, 2), placed_at DATETIME(6), "
        "msg_key VARCHAR(64) NOT NULL UNIQUE)",
        "CREATE TABLE rewrites (msg_key VARCHAR(64))",
        "CREATE TRIGGER count_rewrites BEFORE UPDATE ON orders_copy FOR EACH ROW "
        "INSERT INTO rewrites VALUES (NEW.msg_key)")
    add_orders(source_db, range(1, TOTAL + 1))
    configure(settings, source_db, {"table": "orders", "cursorColumn": "id"},
              target_db, {"table": "orders_copy", "mode": "upsert",
                          "idempotencyColumn": "msg_key"})

    wait_for(lambda: target_db.scalar("SELECT count(*) FROM orders_copy") >= 200, 120,
             "the first rows")
    worker.kill()
    written_before_kill = target_db.scalar("SELECT count(*) FROM orders_copy")
    assert written_before_kill < TOTAL, "the kill came too late to test anything"
    worker.start()

    wait_for(lambda: count_messages(settings, "DELIVERED") == TOTAL, 300, "every row")
    assert target_db.scalar("SELECT count(*) FROM orders_copy") == TOTAL
    assert target_db.scalar("SELECT count(DISTINCT order_id) FROM orders_copy") == TOTAL
    assert target_db.scalar("SELECT min(order_id) FROM orders_copy") == 1
    assert target_db.scalar("SELECT max(order_id) FROM orders_copy") == TOTAL
    ((checkpoint,),) = read_model(settings, select(source_checkpoints.c.checkpoint))
    assert json.loads(checkpoint)["cursor"] == TOTAL
    rewrites = target_db.scalar("SELECT count(*) FROM rewrites")
    with capsys.disabled():
        print(f"\n[jdbc crash test] killed after {written_before_kill} rows; {TOTAL} rows, "
              f"{rewrites} re-deliveries absorbed by the upsert on the idempotency key")
