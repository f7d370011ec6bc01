"""The Kafka connector against the real broker."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from integrationos.connectors.base import ConnectorError, Delivery, HealthReport, OutboundMessage
from integrationos.connectors.kafka import KafkaConnector

pytestmark = pytest.mark.broker
PARTITIONS = 3


@pytest.fixture
def target_topic(kafka_bootstrap: str, topic_prefix: str) -> str:
    name = f"{topic_prefix}.target"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=PARTITIONS,
                                            replication_factor=-1)])
    futures[name].result(30)
    return name


def message(n: int) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"msg-{n}", idempotency_key=f"idem-{n}", tenant="acme",
        integration_id="int-1", key=f"customer-{n % 5}" if n % 2 else None,
        payload={"n": n, "text": "olá"},
    )


def read_back(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            record = consumer.poll(0.5)
            if record is not None and record.error() is None:
                records.append(record)
    finally:
        consumer.close()
    return records


def test_write_produces_json_records_with_keys_and_headers(
    kafka_bootstrap: str, target_topic: str
) -> None:
    async def run() -> list:
        connector = KafkaConnector({"topic": target_topic, "bootstrapServers": kafka_bootstrap},
                                   {})
        try:
            return await asyncio.gather(*(connector.write(message(n)) for n in range(50)))
        finally:
            await connector.close()

    deliveries = asyncio.run(run())
    assert {d.target for d in deliveries} == {f"kafka:{target_topic}"}
    assert all(d.detail.startswith("partition ") for d in deliveries)

    records = read_back(kafka_bootstrap, target_topic, 50)
    assert len(records) == 50
    by_id = {dict(r.headers())["ios-message-id"].decode(): r for r in records}
    assert set(by_id) == {f"msg-{n}" for n in range(50)}
    for n in range(50):
        record = by_id[f"msg-{n}"]
        assert json.loads(record.value()) == {"n": n, "text": "olá"}
        expected_key = f"customer-{n % 5}" if n % 2 else f"idem-{n}"
        assert record.key().decode() == expected_key
        assert dict(record.headers())["ios-idempotency-key"] == f"idem-{n}".encode()


def test_default_bootstrap_is_the_platform_broker(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOS_KAFKA_BOOTSTRAP", kafka_bootstrap)
    assert KafkaConnector({"topic": "x"}, {}).bootstrap == kafka_bootstrap
    assert KafkaConnector({"topic": "x", "bootstrapServers": "k:9"}, {}).bootstrap == "k:9"


def test_write_to_missing_topic_is_permanent(kafka_bootstrap: str, topic_prefix: str) -> None:
    async def run() -> None:
        connector = KafkaConnector(
            {"topic": f"{topic_prefix}.missing", "bootstrapServers": kafka_bootstrap}, {}
        )
        try:
            await connector.write(message(1))
        finally:
            await connector.close()

    with pytest.raises(ConnectorError) as caught:
        asyncio.run(run())
    assert not caught.value.retryable
    assert caught.value.message == f"topic '{topic_prefix}.missing' does not exist"


def health(config: dict, timeout: float = 5.0) -> HealthReport:
    return asyncio.run(KafkaConnector(config, {}).test(timeout))


def test_health_up_reports_partitions(kafka_bootstrap: str, target_topic: str) -> None:
    report = health({"topic": target_topic, "bootstrapServers": kafka_bootstrap})
    assert report.status == "UP"
    assert report.detail == f"topic {target_topic}: {PARTITIONS} partitions"


def test_health_down_when_topic_is_missing(kafka_bootstrap: str, topic_prefix: str) -> None:
    report = health({"topic": f"{topic_prefix}.nope", "bootstrapServers": kafka_bootstrap})
    assert report.status == "DOWN"
    assert report.detail == f"topic '{topic_prefix}.nope' does not exist"


def test_health_down_when_broker_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    report = health({"topic": "x", "bootstrapServers": f"127.0.0.1:{port}"}, timeout=2)
    assert time.monotonic() - started < 4
    assert report.status == "DOWN"
    assert f"broker 127.0.0.1:{port} unreachable" in report.detail


def test_rejected_client_config_is_a_permanent_error() -> None:
    connector = KafkaConnector({"topic": "x", "bootstrapServers": "127.0.0.1:1",
                                "securityProtocol": "SASL_PLAINTEXT", "saslMechanism": "BOGUS"},
                               {})
    with pytest.raises(ConnectorError) as caught:
        asyncio.run(connector.write(message(1)))
    assert not caught.value.retryable
    assert "BOGUS" in caught.value.message


def test_create_topic_makes_a_missing_target_topic_on_first_write(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}.created-on-write"
    connector = KafkaConnector(
        {"topic": topic, "bootstrapServers": kafka_bootstrap, "createTopic": True,
         "partitions": 2}, {})

    async def scenario() -> Delivery:
        try:
            return await connector.write(OutboundMessage(
                message_id="m1", idempotency_key="m1", tenant="t", integration_id="i",
                key=None, payload={"a": 1}))
        finally:
            await connector.close()

    delivery = asyncio.run(scenario())
    assert delivery.target == f"kafka:{topic}"
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(topic, timeout=10)
    assert len(metadata.topics[topic].partitions) == 2
