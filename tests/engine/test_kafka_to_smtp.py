"""Kafka to email, end to end: records on a source topic become one email each, sent by the
worker through a real SMTP server (STARTTLS and AUTH); a refused recipient is dead-lettered."""

from __future__ import annotations

import json

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import select

from integrationos.connectors.credentials import CredentialVault
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import messages
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer
from tests.smtp_server import PASSWORD, USERNAME, SmtpServer, self_signed_certificate
from tests.support import count_messages, wait_for

CUSTOMERS = ["ana", "bea", "bad", "caio", "duda"]  # bad@ is refused with 550


def test_each_record_becomes_an_email_and_a_refused_one_is_dead_lettered(
        worker, platform_env, tmp_path):
    settings = Settings.from_env()
    topic = f"{settings.topic_prefix}.orders"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for n, name in enumerate(CUSTOMERS):
        producer.produce(topic, key=name.encode(), value=json.dumps(
            {"order": n, "customer": {"name": name.title(), "email": f"{name}@example.com"}}))
    producer.flush(30)

    pem, cert_file, key_file = self_signed_certificate(tmp_path)
    server = SmtpServer("starttls", cert_file, key_file)
    try:
        _configure(settings, topic, server.port, pem)
        wait_for(lambda: count_messages(settings, "DELIVERED") == 4
                 and count_messages(settings, "DEAD_LETTERED") == 1, 90,
                 "4 emails delivered and 1 dead-lettered")
        received = server.mailbox.messages()
        assert sorted(r.recipients[0] for r in received) == [
            f"{name}@example.com" for name in sorted(CUSTOMERS) if name != "bad"]
        ana = next(r for r in received if r.recipients == ["ana@example.com"])
        assert ana.authenticated
        assert ana.message["Subject"] == "Order 0 for Ana"
        assert ana.message.get_content().strip() == "Hi Ana, order 0 is on its way."
        engine = open_database(settings.database_url)
        with engine.connect() as conn:
            [code] = conn.execute(select(messages.c.last_error_code).where(
                messages.c.status == "DEAD_LETTERED")).scalars()
        engine.dispose()
        assert code == "SMTP_550"
    finally:
        server.stop()


def _configure(settings: Settings, topic: str, smtp_port: int, certificate: str) -> None:
    vault = CredentialVault.from_settings(settings)
    log = LogProducer(settings.kafka_bootstrap)
    config_topic = CONFIG.name(settings.topic_prefix)
    connectors = [
        ("con_orders", "KAFKA", {"topic": topic}, None),
        ("con_mail", "SMTP", {
            "host": "127.0.0.1", "port": smtp_port, "caCertificate": certificate,
            "from": "Shop <noreply@shop.example>", "to": "$.to",
            "subject": '"Order " & $.order & " for " & $.name',
            "text": '"Hi " & $.name & ", order " & $.order & " is on its way."',
        }, vault.seal({"username": USERNAME, "password": PASSWORD})),
    ]
    for connector_id, type_name, config, credentials in connectors:
        log.append_sync(config_topic, Event(t.CONNECTOR_CREATED, "acme", connector_id, {
            "id": connector_id, "name": connector_id, "connectorType": type_name,
            "configJson": json.dumps(config), "credentials": credentials, "version": 1}))
    log.append_sync(config_topic, Event(t.INTEGRATION_CREATED, "acme", "int_mail", {
        "id": "int_mail", "name": "order emails", "environment": "DEV",
        "sourceConnectorId": "con_orders", "targetConnectorId": "con_mail",
        "transformationId": None, "errorStrategy": "RETRY_3_DLQ", "version": 1,
        "expression": '{"to": customer.email, "name": customer.name, "order": order}'}))
    log.close()
