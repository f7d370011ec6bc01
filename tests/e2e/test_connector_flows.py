"""Connector flows end to end through the API, on the real broker and worker: PostgreSQL
rows → Salesforce upsert (emulator), HTTP → MariaDB upsert, each with a bad record that
ends in a dead letter with a clear code while the others flow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, text

from integrationos.connectors.jdbc import JdbcConnector
from tests.conftest import fresh_mariadb_database, fresh_postgres_database, jdbc_settings
from tests.support import wait_for

pytestmark = pytest.mark.broker


def _client(base: str, tenant: tuple[str, str]) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30,
                        headers={"X-API-Key": tenant[1], "X-Tenant-Id": tenant[0]})


def _created(response: httpx.Response) -> dict:
    assert response.status_code in (201, 202), response.text
    return response.json()


def _status(client: httpx.Client, integration_id: str) -> dict:
    return client.get(f"/v1/integrations/{integration_id}/status").json()


def _jdbc(url: str) -> tuple[dict, dict, object]:
    config, credentials = jdbc_settings(url)
    engine = create_engine(JdbcConnector(config, credentials).url())
    return config, credentials, engine


def test_postgresql_rows_upserted_into_salesforce(salesforce, api_server, tenant):
    config, credentials, db = _jdbc(fresh_postgres_database(f"crm_{uuid.uuid4().hex[:8]}"))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE people (id integer PRIMARY KEY, name text, "
                          "email text, updated_at timestamptz NOT NULL)"))
        conn.execute(text("INSERT INTO people VALUES (:id, :name, :email, :at)"), [
            {"id": n, "name": None if n == 7 else f"Person {n}", "email": f"p{n}@ex.pt",
             "at": t0 + timedelta(seconds=n)} for n in range(40)])
    with _client(api_server, tenant) as client:
        source = _created(client.post("/v1/connectors", json={
            "name": "people-db", "type": "JDBC",
            "config": config | {"table": "people", "cursorColumn": "updated_at",
                                "tieBreakColumn": "id"},
            "credentials": credentials}))
        target = _created(client.post("/v1/connectors", json={
            "name": "salesforce-prod", "type": "SALESFORCE",
            "config": {"loginUrl": salesforce.url, "sobject": "Contact", "operation": "upsert",
                       "externalIdField": "External_Id__c"},
            "credentials": {"username": salesforce.username, "password": salesforce.password,
                            "securityToken": salesforce.security_token}}))
        assert client.post(f"/v1/connectors/{target['id']}/test").json()["status"] == "UP"
        integration = _created(client.post("/v1/integrations", json={
            "name": "people to contacts", "sourceConnectorId": source["id"],
            "targetConnectorId": "salesforce-prod",
            "expression": '{"External_Id__c": $string(id), "LastName": name, "Email": email}'}))
        wait_for(lambda: _status(client, integration["id"])["total"] == 40
                 and _status(client, integration["id"])["received"] == 0
                 and _status(client, integration["id"])["transformed"] == 0, 120,
                 "40 rows processed")
        status = _status(client, integration["id"])
        assert status["delivered"] == 39 and status["deadLettered"] == 1
    contacts = salesforce.records("Contact")
    assert sorted(int(c["External_Id__c"]) for c in contacts) == [n for n in range(40) if n != 7]
    db.dispose()


def test_http_messages_upserted_into_mariadb(api_server, tenant):
    config, credentials, db = _jdbc(fresh_mariadb_database(f"ops_{uuid.uuid4().hex[:8]}"))
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE people (id varchar(20) PRIMARY KEY, "
                          "name varchar(100) NOT NULL, email varchar(100))"))
    with _client(api_server, tenant) as client:
        _created(client.post("/v1/connectors", json={
            "name": "ops-db", "type": "JDBC",
            "config": config | {"table": "people", "mode": "upsert", "keyColumns": ["id"]},
            "credentials": credentials}))
        integration = _created(client.post("/v1/integrations", json={
            "name": "people to ops", "targetConnectorId": "ops-db",
            "expression": '{"id": id, "name": name, "email": email}'}))
        url = f"/v1/integrations/{integration['id']}/messages"
        for n in range(30):
            _created(client.post(url, json={"id": f"p{n}", "name": f"N{n}",
                                            "email": f"{n}@x"}))
        _created(client.post(url, json={"id": "p3", "name": "Renamed", "email": "3@x"}))
        bad = _created(client.post(url, json={"id": "nameless", "email": "none@x"}))
        wait_for(lambda: _status(client, integration["id"])["delivered"] == 31
                 and _status(client, integration["id"])["deadLettered"] == 1, 90,
                 "31 deliveries and one dead letter")
        dead = client.get(f"/v1/messages/{bad['messageId']}").json()
        assert dead["lastError"]["code"] == "DB_CONSTRAINT"
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM people")).scalar_one() == 30
        assert conn.execute(text("SELECT name FROM people WHERE id = 'p3'")).scalar_one() \
            == "Renamed"
    db.dispose()


def test_sftp_csv_files_upserted_into_postgresql(sshd, api_server, tenant):
    config, credentials, db = _jdbc(fresh_postgres_database(f"wh_{uuid.uuid4().hex[:8]}"))
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE stock (sku text PRIMARY KEY, units integer NOT NULL, "
                          "message_id text)"))
    inbox = sshd.directory(f"inbox-{uuid.uuid4().hex[:8]}")
    (inbox / "stock-1.csv").write_text("sku;units\nA;10\nB;20\nC;oops;extra\n")
    (inbox / "stock-2.csv").write_text("sku;units\nA;11\nD;40\n")
    with _client(api_server, tenant) as client:
        _created(client.post("/v1/connectors", json={
            "name": "partner-sftp", "type": "SFTP",
            "config": sshd.config(remotePath=str(inbox), filePattern="*.csv",
                                  csv={"delimiter": ";"}, pollIntervalSeconds=1),
            "credentials": {"username": sshd.username, "password": sshd.password}}))
        _created(client.post("/v1/connectors", json={
            "name": "warehouse", "type": "JDBC",
            "config": config | {"table": "stock", "mode": "upsert", "keyColumns": ["sku"]},
            "credentials": credentials}))
        trf = _created(client.post("/v1/transformations", json={
            "name": "stock rows", "expression": '{"sku": sku, "units": $number(units)}',
            "sourceSchema": {"type": "object", "required": ["sku", "units"]}}))
        integration = _created(client.post("/v1/integrations", json={
            "name": "partner stock", "sourceConnectorId": "partner-sftp",
            "targetConnectorId": "warehouse", "transformationId": trf["id"]}))
        wait_for(lambda: _status(client, integration["id"])["delivered"] == 4
                 and _status(client, integration["id"])["deadLettered"] == 1, 120,
                 "4 rows upserted and the malformed one dead-lettered")
        wait_for(lambda: sorted(p.name for p in (inbox / "archive").glob("*.csv"))
                 == ["stock-1.csv", "stock-2.csv"], 30, "both files archived")
    with db.connect() as conn:
        rows = dict(conn.execute(text("SELECT sku, units FROM stock")).all())
    assert rows in ({"A": 11, "B": 20, "D": 40}, {"A": 10, "B": 20, "D": 40})
    db.dispose()
