"""Fixtures for API tests that need no broker: the real app (lifespan included) on a fresh
SQLite file, with rows put in place by the real projection code from encoded events.

The log producer points at a closed port: a test that reaches the write path without a
broker gets 503 ``LOG_UNAVAILABLE`` within ``projection_wait_seconds``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from integrationos.api.app import create_app
from integrationos.api.auth import hash_key
from integrationos.connectors.credentials import CredentialVault
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.projector import LogRecord, Projector, applied_through
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG, MESSAGE_EVENTS
from integrationos.topics.envelope import Event

ACME_KEY = "ip_test_acme-key-0123456789"
GLOBEX_KEY = "ip_test_globex-key-0123456789"
ACME = {"X-API-Key": ACME_KEY, "X-Tenant-Id": "acme"}
GLOBEX = {"X-API-Key": GLOBEX_KEY, "X-Tenant-Id": "globex"}
SECRET = "pa55-w0rd-never-shown"
PAYLOAD_LIMIT = 16 * 1024


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    data_dir = tmp_path / "data"
    return dataclasses.replace(
        Settings.from_env(),
        data_dir=data_dir,
        kafka_bootstrap="127.0.0.1:9",
        topic_prefix="tapi",
        database_url=f"sqlite:///{data_dir / 'integrationos.db'}",
        master_key="",
        max_payload_bytes=PAYLOAD_LIMIT,
        projection_wait_seconds=0.5,
    )


class Seeder:
    """Applies events to the tables exactly as the worker would."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.vault = CredentialVault.from_settings(settings)
        self.config_topic = CONFIG.name(settings.topic_prefix)
        self.message_topic = MESSAGE_EVENTS.name(settings.topic_prefix)

    def apply(self, *events: Event, topic: str | None = None) -> None:
        topic = topic or self.config_topic
        offset = applied_through(self.engine, topic, 0)
        Projector(self.engine).apply(
            LogRecord(topic, 0, offset + n, codec.encode(event)) for n, event in enumerate(events)
        )

    def tenant(self, tenant: str, key: str) -> None:
        self.apply(
            Event(t.TENANT_CREATED, tenant, tenant, {"id": tenant, "name": tenant, "plan": "FREE"}))
        self.key(tenant, f"key_{tenant}", key, ["admin"])

    def key(self, tenant: str, key_id: str, key: str, roles: list[str],
            environments: tuple[str, ...] = ("DEV", "QA", "PROD")) -> None:
        self.apply(Event(t.API_KEY_ISSUED, tenant, key_id, {
            "keyId": key_id, "keyHash": hash_key(key), "prefix": key[:8], "name": "test",
            "roles": roles, "environments": list(environments), "live": False}))

    def connector(self, tenant: str, connector_id: str, name: str, type_: str = "HTTP",
                  config: dict[str, Any] | None = None,
                  credentials: dict[str, Any] | None = None) -> None:
        self.apply(Event(t.CONNECTOR_CREATED, tenant, connector_id, {
            "id": connector_id, "name": name, "connectorType": type_,
            "configJson": json.dumps(config if config is not None else
                                     {"url": "http://127.0.0.1:9/hook"}),
            "credentials": None if credentials is None else self.vault.seal(credentials),
            "version": 1,
        }))

    def transformation(self, tenant: str, transformation_id: str, name: str, expression: str,
                       source_schema: Any = None) -> None:
        self.apply(Event(t.TRANSFORMATION_CREATED, tenant, transformation_id, {
            "id": transformation_id, "name": name, "expression": expression, "version": 1,
            "sourceSchema": None if source_schema is None else json.dumps(source_schema),
        }))

    def integration(self, tenant: str, integration_id: str, name: str, **fields: Any) -> None:
        data = {"id": integration_id, "name": name, "environment": "DEV",
                "sourceConnectorId": None, "targetConnectorId": None, "transformationId": None,
                "expression": None, "errorStrategy": "RETRY_3_DLQ", "version": 1}
        self.apply(Event(t.INTEGRATION_CREATED, tenant, integration_id, data | fields))

    def message_events(self, *events: Event) -> None:
        self.apply(*events, topic=self.message_topic)


@pytest.fixture
def seed(settings: Settings) -> Iterator[Seeder]:
    engine = open_database(settings.database_url)
    seeder = Seeder(engine, settings)
    seeder.tenant("acme", ACME_KEY)
    seeder.tenant("globex", GLOBEX_KEY)
    yield seeder
    engine.dispose()


@pytest.fixture
def client(settings: Settings, seed: Seeder) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the common error shape with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    return body["error"]
