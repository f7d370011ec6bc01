"""Salesforce in real flows: real worker, real broker, the local Salesforce emulator.

The emulator runs in this process; the worker, a child process, reaches it over HTTPS and
trusts its certificate through ``REQUESTS_CA_BUNDLE``, set before the worker starts.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from integrationos.connectors.credentials import CredentialVault
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import integrations, messages, source_checkpoints
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer
from tests.emulators.salesforce import SalesforceEmulator
from tests.support import RecordingTarget, configure_flow, count_messages, ingest, wait_for

TO_CONTACT = '{"External_Id__c": $.id, "LastName": $.name, "Email": $.email}'


def add_salesforce_connector(settings: Settings, emulator: SalesforceEmulator,
                             connector_id: str, config: dict[str, Any]) -> None:
    vault = CredentialVault.from_settings(settings)
    credentials = {"username": emulator.username, "password": emulator.password,
                   "securityToken": emulator.security_token}
    log = LogProducer(settings.kafka_bootstrap)
    log.append_sync(CONFIG.name(settings.topic_prefix), Event(
        t.CONNECTOR_CREATED, "acme", connector_id, {
            "id": connector_id, "name": "crm", "connectorType": "SALESFORCE",
            "configJson": json.dumps({"loginUrl": emulator.url, **config}),
            "credentials": vault.seal(credentials), "version": 1}))
    log.close()


def add_integration(settings: Settings, integration_id: str, source: str | None, target: str,
                    expression: str) -> None:
    log = LogProducer(settings.kafka_bootstrap)
    log.append_sync(CONFIG.name(settings.topic_prefix), Event(
        t.INTEGRATION_CREATED, "acme", integration_id, {
            "id": integration_id, "name": integration_id, "environment": "DEV",
            "sourceConnectorId": source, "targetConnectorId": target,
            "transformationId": None, "expression": expression,
            "errorStrategy": "RETRY_3_DLQ", "version": 1}))
    log.close()


def test_messages_are_upserted_once_and_a_refused_one_is_dead_lettered(salesforce, worker,
                                                                       platform_env):
    settings = Settings.from_env()
    add_salesforce_connector(settings, salesforce, "con_sf", {
        "sobject": "Contact", "operation": "upsert", "externalIdField": "External_Id__c"})
    add_integration(settings, "int_sf", None, "con_sf", TO_CONTACT)
    people = [{"id": f"p{n}", "name": f"Person {n}", "email": f"p{n}@example.com"}
              for n in range(20)]
    values = [json.dumps(p).encode() for p in people]
    wait_for(lambda: _projected(settings, "int_sf"), 30, "the integration to be projected")
    ingest(settings, values[:10], integration="int_sf")
    ingest(settings, [values[3], json.dumps({"id": "nameless"}).encode()], integration="int_sf")
    ingest(settings, values[10:], integration="int_sf")

    wait_for(lambda: count_messages(settings, "DELIVERED") == 21
             and count_messages(settings, "DEAD_LETTERED") == 1, 90,
             "21 deliveries and 1 dead letter")
    stored = salesforce.records("Contact")
    assert sorted(r["External_Id__c"] for r in stored) == sorted(p["id"] for p in people)
    assert {r["LastName"] for r in stored} == {p["name"] for p in people}
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        dead = conn.execute(select(messages).where(messages.c.status == "DEAD_LETTERED")).one()
    engine.dispose()
    assert dead.last_error_code == "REQUIRED_FIELD_MISSING"
    assert dead.attempts == 1  # permanent: not retried


def test_soql_polling_source_feeds_new_and_changed_records_to_the_target(salesforce, worker,
                                                                         platform_env):
    settings = Settings.from_env()
    for n in range(30):  # there before the integration: read from the start
        salesforce.org.create("Contact", {"LastName": f"Early{n}", "Email": f"e{n}@example.com"})
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url)  # con_1: the HTTP target
        add_salesforce_connector(settings, salesforce, "con_src", {
            "soql": "SELECT LastName, Email FROM Contact", "pollIntervalSeconds": 1})
        add_integration(settings, "int_src", "con_src", "con_1",
                        '{"Email": $.Email, "Name": $.LastName}')
        wait_for(lambda: len(target.received) == 30, 90, "the first 30 records")
        first = salesforce.records("Contact")[0]
        for n in range(10):
            salesforce.org.create("Contact", {"LastName": f"Late{n}", "Email": f"l{n}@x.org"})
        salesforce.org.update("Contact", first["Id"], {"Email": "changed@example.com"})

        wait_for(lambda: len(target.received) == 41, 90, "10 new records and 1 change")
        emails = [r["body"]["Email"] for r in target.received]
        assert sorted(emails[30:]) == sorted([f"l{n}@x.org" for n in range(10)]
                                             + ["changed@example.com"])
        assert len(set(emails)) == 41 and len(set(target.keys())) == 41
        newest = max((r["SystemModstamp"], r["Id"]) for r in salesforce.records("Contact"))
        wait_for(lambda: _checkpoint(settings, "int_src") == {
            "systemModstamp": newest[0], "id": newest[1]}, 30, "the newest checkpoint")
        time.sleep(2.5)  # two more poll intervals after the commit
        assert len(target.received) == 41  # nothing was read twice
    finally:
        target.close()


def _projected(settings: Settings, integration_id: str) -> bool:
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        found = conn.execute(select(integrations.c.id).where(
            integrations.c.id == integration_id)).first()
    engine.dispose()
    return found is not None


def _checkpoint(settings: Settings, integration_id: str) -> dict[str, str] | None:
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        row = conn.execute(select(source_checkpoints.c.checkpoint).where(
            source_checkpoints.c.integration_id == integration_id)).first()
    engine.dispose()
    return json.loads(row.checkpoint) if row else None


def test_a_worker_killed_mid_poll_loses_no_salesforce_record(salesforce, worker, platform_env,
                                                             capsys):
    settings = Settings.from_env()
    for n in range(1500):
        salesforce.org.create("Contact", {"LastName": f"K{n}", "Email": f"k{n}@example.com"})
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url)
        add_salesforce_connector(settings, salesforce, "con_src", {
            "soql": "SELECT LastName, Email FROM Contact", "pollIntervalSeconds": 1})
        add_integration(settings, "int_src", "con_src", "con_1", '{"Email": $.Email}')
        wait_for(lambda: _checkpoint(settings, "int_src") is not None, 90, "a first checkpoint")
        worker.kill()
        before = len(target.received)
        assert before < 1500, "the kill came too late to test anything"
        worker.start()
        wait_for(lambda: count_messages(settings, "DELIVERED") == 1500, 240, "every record")
        by_key: dict[str, set[str]] = {}
        for r in target.received:
            by_key.setdefault(r["idempotency_key"], set()).add(r["body"]["Email"])
        assert {email for emails in by_key.values() for email in emails} == {
            f"k{n}@example.com" for n in range(1500)}
        assert len(by_key) == 1500 and all(len(v) == 1 for v in by_key.values())
        with capsys.disabled():
            print(f"\n[salesforce source kill] killed after {before} deliveries; "
                  f"{len(target.received)} deliveries for 1500 records")
    finally:
        target.close()
