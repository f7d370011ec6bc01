"""The Kafka connector against the real broker."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import socket
import time
import uuid
from decimal import Decimal

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from integrationos.connectors import registry
from integrationos.connectors.base import (
    ConnectorError,
    Delivery,
    HealthReport,
    OutboundMessage,
    SourceRecord,
)
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


def make_topic(bootstrap: str, name: str, values: list[bytes]) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=-1)])[name].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(name, value=value)
    producer.flush(30)
    return name


def poll_all(config: dict, count: int, timeout: float = 30) -> list[SourceRecord]:
    async def run() -> list[SourceRecord]:
        connector = KafkaConnector({**config, "consumerGroup": uuid.uuid4().hex}, {})
        records: list[SourceRecord] = []
        deadline = time.monotonic() + timeout
        try:
            while len(records) < count and time.monotonic() < deadline:
                records += await connector.poll(count, 0.5)
        finally:
            await connector.close()
        return records
    return asyncio.run(run())


ORDER_SCHEMA = {
    "type": "record", "name": "Order", "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": ["null", "string"]},
        {"name": "lines", "type": {"type": "array", "items": "string"}},
        {"name": "blob", "type": "bytes"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal",
                                    "precision": 10, "scale": 2}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def test_source_reads_string_and_avro_values_as_json(kafka_bootstrap, topic_prefix):
    strings = make_topic(kafka_bootstrap, f"{topic_prefix}.text", ["olá".encode(), b"\xff\xfe"])
    records = poll_all({"topic": strings, "bootstrapServers": kafka_bootstrap,
                        "valueFormat": "string"}, 2)
    assert [r.value for r in records] == ['{"value":"olá"}'.encode(), b"\xff\xfe"]

    order = {"id": 7, "customer": "Ana", "lines": ["a", "b"], "blob": b"\x00\x01",
             "amount": Decimal("12.34"),
             "at": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)}
    encoded = io.BytesIO()
    fastavro.schemaless_writer(encoded, fastavro.parse_schema(ORDER_SCHEMA), order)
    truncated = encoded.getvalue()[:3]
    avro = make_topic(kafka_bootstrap, f"{topic_prefix}.avro", [encoded.getvalue(), truncated])
    records = poll_all({"topic": avro, "bootstrapServers": kafka_bootstrap,
                        "valueFormat": "avro", "avroSchema": ORDER_SCHEMA}, 2)
    assert json.loads(records[0].value) == {
        "id": 7, "customer": "Ana", "lines": ["a", "b"], "blob": "AAE=", "amount": "12.34",
        "at": "2024-05-01T12:00:00+00:00"}
    assert records[1].value == truncated  # undecodable: the pipeline dead-letters it


def test_target_key_and_headers_come_from_expressions(kafka_bootstrap, target_topic):
    config = {"topic": target_topic, "bootstrapServers": kafka_bootstrap,
              "keyExpression": "$string($.customer.id)",
              "headers": {"x-region": "$.customer.region", "x-n": "$.n", "x-none": "$.nope"}}

    def outbound(n: int, payload: dict) -> OutboundMessage:
        return OutboundMessage(message_id=f"msg-{n}", idempotency_key=f"idem-{n}",
                               tenant="acme", integration_id="int-1", key=None, payload=payload)

    async def run() -> None:
        connector = KafkaConnector(config, {})
        try:
            await connector.write(outbound(1, {"n": 1, "customer": {"id": 42, "region": "eu"}}))
            await connector.write(outbound(2, {"n": 2}))
        finally:
            await connector.close()

    asyncio.run(run())
    by_id = {dict(r.headers())["ios-message-id"]: r
             for r in read_back(kafka_bootstrap, target_topic, 2)}
    first, second = by_id[b"msg-1"], by_id[b"msg-2"]
    assert first.key() == b"42"
    assert (dict(first.headers())["x-region"], dict(first.headers())["x-n"]) == (b"eu", b"1")
    assert "x-none" not in dict(first.headers())
    assert second.key() == b"idem-2"  # the expression is undefined: the idempotency key


def test_bad_templates_and_schemas_fail_before_the_broker() -> None:
    broken = KafkaConnector({"topic": "x", "bootstrapServers": "127.0.0.1:1",
                             "keyExpression": '"a" &'}, {})
    with pytest.raises(ConnectorError) as caught:
        asyncio.run(broken.write(message(1)))
    assert (caught.value.code, caught.value.retryable) == ("TEMPLATE_INVALID", False)
    assert health({"topic": "x", "keyExpression": '"a" &'}).status == "DOWN"
    schema = health({"topic": "x", "valueFormat": "avro", "avroSchema": {"type": "nope"}})
    assert schema.status == "DOWN" and schema.detail.startswith("avroSchema: ")
    violations = registry.validate_config("KAFKA", {"topic": "x", "valueFormat": "avro"}, {})
    assert [v["field"] for v in violations] == ["/config/avroSchema"]
