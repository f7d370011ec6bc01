"""Kafka topics, on the platform's own broker or an external cluster.

As a source it consumes a topic in a consumer group and commits offsets only after the
engine has put the records durably into the ingest topic (at-least-once; the record's
topic/partition/offset gives each message a stable id, so re-reads keep their identity).
Record values are read as JSON, as UTF-8 text (``{"value": text}``) or as Avro binary
written with the configured schema (no schema registry: the writer schema is the config's
``avroSchema``); either way the pipeline receives JSON. A value that does not decode is passed
on as it is, so the pipeline dead-letters it with its original bytes instead of the source
stalling on it.

As a target each message becomes one JSON record keyed by ``keyExpression`` (JSONata on the
payload), else the message key, else the idempotency key, with headers from expressions too,
produced by an idempotent, acks=all producer. The producer's delivery reports arrive on
librdkafka's threads; they are handed to the event loop with ``call_soon_threadsafe`` so
``write`` awaits durability without blocking the loop.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import io
import json
import logging
import time
import uuid
from decimal import Decimal
from typing import Any, ClassVar, Literal

import fastavro
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from integrationos.connectors.base import (
    Connector,
    ConnectorError,
    Delivery,
    HealthReport,
    OutboundMessage,
    Role,
    SourceRecord,
)
from integrationos.connectors.templates import Templates
from integrationos.settings import Settings
from integrationos.topics.delivery import ReportPoller

MESSAGE_TIMEOUT_MS = 30_000
_log = logging.getLogger(__name__)

# Failures that will not go away by retrying the same record against the same config.
_PERMANENT = frozenset({
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._AUTHENTICATION,
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.INVALID_RECORD,
    KafkaError._INVALID_ARG,
})
_UNKNOWN_TOPIC = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})


class KafkaConnector(Connector):
    type_name: ClassVar[str] = "KAFKA"
    display_name: ClassVar[str] = "Apache Kafka"
    roles: ClassVar[frozenset[Role]] = frozenset({"source", "target"})
    config_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["topic"],
        "properties": {
            "topic": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,249}$"},
            "bootstrapServers": {
                "type": "string",
                "minLength": 1,
                "description": "host:port[,host:port...]; empty means the platform's broker.",
            },
            "acks": {"type": "string", "enum": ["all", "1"], "default": "all"},
            "securityProtocol": {
                "type": "string",
                "enum": ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
                "default": "PLAINTEXT",
            },
            "saslMechanism": {
                "type": "string",
                "enum": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
            },
            "consumerGroup": {
                "type": "string",
                "minLength": 1,
                "description": "Source: consumer group (default: one per integration).",
            },
            "startFrom": {
                "type": "string",
                "enum": ["earliest", "latest"],
                "default": "earliest",
                "description": "Source: where a new consumer group starts.",
            },
            "createTopic": {
                "type": "boolean",
                "default": False,
                "description": "Create the topic on first write if it does not exist.",
            },
            "partitions": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": 3,
                "description": "Partitions of a topic created by createTopic.",
            },
            "valueFormat": {
                "type": "string",
                "enum": ["json", "string", "avro"],
                "default": "json",
                "description": "Source: record values are JSON, UTF-8 text (read as "
                "{\"value\": text}) or Avro binary written with avroSchema.",
            },
            "avroSchema": {
                "type": "object",
                "description": "Source: the Avro writer schema of every record (valueFormat "
                "avro; plain Avro binary, not the schema-registry wire format).",
            },
            "exactlyOnce": {
                "type": "boolean",
                "default": True,
                "description": "Target: when the integration's source is a Kafka topic on "
                "the platform's cluster too, write in Kafka transactions together with the "
                "source offsets (docs/exactly-once.md); false keeps at-least-once.",
            },
            "keyExpression": {
                "type": "string",
                "minLength": 1,
                "description": "Target: JSONata on the payload giving the record key "
                "(undefined: the message key, else the idempotency key).",
            },
            "headers": {
                "type": "object",
                "propertyNames": {"not": {"pattern": "^ios-"}},
                "additionalProperties": {"type": "string", "minLength": 1},
                "description": "Target: header name -> JSONata on the payload; a header "
                "whose expression is undefined is left out.",
            },
        },
        "allOf": [
            {
                "if": {
                    "required": ["securityProtocol"],
                    "properties": {"securityProtocol": {"enum": ["SASL_PLAINTEXT", "SASL_SSL"]}},
                },
                "then": {"required": ["saslMechanism"]},
            },
            {
                "if": {"required": ["valueFormat"],
                       "properties": {"valueFormat": {"const": "avro"}}},
                "then": {"required": ["avroSchema"]},
            },
        ],
    }
    credentials_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "username": {"type": "string", "minLength": 1},
            "password": {"type": "string", "writeOnly": True},
        },
        "dependentRequired": {"username": ["password"], "password": ["username"]},
    }

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        super().__init__(config, credentials)
        self._producer: _AsyncProducer | None = None
        self._consumer: Consumer | None = None
        expressions = {f"headers.{name}": expression
                       for name, expression in config.get("headers", {}).items()}
        if "keyExpression" in config:
            expressions["keyExpression"] = config["keyExpression"]
        self._templates = Templates(expressions)
        self._avro_schema: Any = None
        self._problem: str | None = None
        if config.get("valueFormat") == "avro":
            try:
                self._avro_schema = fastavro.parse_schema(config.get("avroSchema"))
            except Exception as exc:  # fastavro has no common base for schema errors
                self._problem = f"avroSchema: {type(exc).__name__}: {exc}"
        if self._templates.problem is not None:
            self._problem = f"template {self._templates.problem}"

    @property
    def topic(self) -> str:
        return self.config["topic"]

    @property
    def bootstrap(self) -> str:
        return self.config.get("bootstrapServers") or Settings.from_env().kafka_bootstrap

    def _client_config(self) -> dict[str, Any]:
        """librdkafka settings shared by the producer and the admin client."""
        settings: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.config.get("securityProtocol", "PLAINTEXT"),
            "logger": _log,
        }
        if mechanism := self.config.get("saslMechanism"):
            settings["sasl.mechanism"] = mechanism
        if "username" in self._credentials:
            settings["sasl.username"] = self._credentials["username"]
            settings["sasl.password"] = self._credentials.get("password", "")
        return settings

    def _templated_headers(self, payload: Any) -> list[tuple[str, bytes]]:
        headers = []
        for name in self.config.get("headers", {}):
            value = self._templates.text(f"headers.{name}", payload)
            if value is not None:
                headers.append((name, value.encode()))
        return headers

    async def write(self, message: OutboundMessage) -> Delivery:
        key, value, headers = self.record_for(message)
        if self._producer is not None and self._producer.broken:
            self._producer.abandon()
            self._producer = None
        if self._producer is None:
            if self.config.get("createTopic"):
                await asyncio.to_thread(self.create_topic)
            self._producer = self._new_producer()
        record = await self._producer.produce(self.topic, key=key, value=value, headers=headers)
        return Delivery(
            target=f"kafka:{self.topic}",
            detail=f"partition {record.partition()} offset {record.offset()}",
        )

    def record_for(self, message: OutboundMessage) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """The target record of ``message``: key, value, headers. Shared with the
        transactional writer of exactly-once integrations, so both write the same record.
        Raises ``ConnectorError`` (permanent) when a template fails on this payload."""
        self._templates.check()
        key = self._templates.text("keyExpression", message.payload)
        if key is None:
            key = message.key if message.key is not None else message.idempotency_key
        return key.encode(), message.encoded(), [
            ("ios-message-id", message.message_id.encode()),
            ("ios-idempotency-key", message.idempotency_key.encode()),
            ("content-type", message.content_type.encode()),
            *self._templated_headers(message.payload),
        ]

    def _new_producer(self) -> _AsyncProducer:
        acks = self.config.get("acks", "all")
        try:
            return _AsyncProducer({
                **self._client_config(),
                "acks": acks,
                "enable.idempotence": acks == "all",
                "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                "linger.ms": 5,
                # Give up on a missing topic after 5s (permanent) rather than letting the
                # record sit until the 30s message timeout (which reads as retryable).
                "topic.metadata.propagation.max.ms": 5000,
            })
        except KafkaException as exc:  # librdkafka rejected the configuration
            raise classify_error(exc.args[0], self.topic) from None

    def create_topic(self, timeout: float = 30) -> None:
        """Blocking: create the target topic (replication per broker default) if missing."""
        admin = AdminClient(self._client_config())
        try:
            if self.topic in admin.list_topics(timeout=timeout).topics:
                return
            spec = NewTopic(self.topic, num_partitions=self.config.get("partitions", 3),
                            replication_factor=-1)
            admin.create_topics([spec], operation_timeout=timeout)[self.topic].result(timeout)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise classify_error(err, self.topic) from None

    async def test(self, timeout: float = 10.0) -> HealthReport:
        started = time.monotonic()
        if self._problem is not None:
            return HealthReport("DOWN", 0, self._problem)
        try:
            status, detail = await asyncio.wait_for(
                asyncio.to_thread(self._check_topic, timeout), timeout + 1
            )
        except TimeoutError:
            status, detail = "DOWN", f"broker {self.bootstrap}: timeout after {timeout:g}s"
        except Exception as exc:  # a health check reports, it never raises
            status, detail = "DOWN", f"unexpected {type(exc).__name__}: {exc}"
        return HealthReport(status, int((time.monotonic() - started) * 1000), detail)

    def _check_topic(self, timeout: float) -> tuple[Literal["UP", "DOWN"], str]:
        """Blocking: ask the cluster for its metadata and look for the topic."""
        errors: list[KafkaError] = []
        admin = AdminClient({**self._client_config(), "error_cb": errors.append})
        try:
            metadata = admin.list_topics(timeout=timeout)
        except KafkaException as exc:
            cause = errors[-1] if errors else exc.args[0]
            return "DOWN", f"broker {self.bootstrap} unreachable: {_describe(cause)}"
        found = metadata.topics.get(self.topic)
        if found is None or (found.error is not None and found.error.code() in _UNKNOWN_TOPIC):
            return "DOWN", f"topic {self.topic!r} does not exist"
        if found.error is not None:
            return "DOWN", f"topic {self.topic!r}: {_describe(found.error)}"
        return "UP", f"topic {self.topic}: {len(found.partitions)} partitions"

    def consumer_config(self) -> dict[str, Any]:
        """librdkafka settings of the source's consumer (group, start, manual commits)."""
        if self._problem is not None:
            raise ConnectorError("KAFKA_BAD_CONFIG", self._problem, retryable=False)
        group = self.config.get("consumerGroup")
        if not group:
            raise ConnectorError("KAFKA_NO_GROUP", "a Kafka source needs a consumerGroup",
                                 retryable=False)
        return {
            **self._client_config(),
            "group.id": group,
            "auto.offset.reset": self.config.get("startFrom", "earliest"),
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }

    def _source_consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self.consumer_config())
            self._consumer.subscribe([self.topic])
        return self._consumer

    async def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        """Consume from the topic; offsets are committed only by ``commit`` (at-least-once)."""
        consumer = self._source_consumer()
        batch = await asyncio.to_thread(consumer.consume, max_records, timeout)
        return [record for msg in batch if (record := self.source_record(msg)) is not None]

    def source_record(self, msg: Message) -> SourceRecord | None:
        """One consumed record as the engine reads it (value decoded to JSON); None for a
        transient consumer error, which librdkafka retries itself. Shared with the
        exactly-once runner, which consumes with its own transactional settings."""
        if msg.error():
            if msg.error().code() in _UNKNOWN_TOPIC:
                raise ConnectorError("KAFKA_UNKNOWN_TOPIC",
                                     f"topic {self.topic!r} does not exist", retryable=True)
            return None
        position = f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
        return SourceRecord(
            key=msg.key(), value=self._json_value(msg.value() or b"", position),
            position=position, headers={k: v or b"" for k, v in (msg.headers() or [])},
        )

    def _json_value(self, raw: bytes, position: str) -> bytes:
        """The value as the JSON the pipeline reads, or ``raw`` if it does not decode."""
        value_format = self.config.get("valueFormat", "json")
        if value_format == "json":
            return raw
        try:
            if value_format == "string":
                decoded: Any = {"value": raw.decode("utf-8")}
            else:
                decoded = _read_avro(raw, self._avro_schema)
            return json.dumps(decoded, ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False, default=_json_default).encode()
        except Exception as exc:  # fastavro raises many kinds on bad bytes
            _log.warning("record %s is not %s (%s: %s); passed on as it is", position,
                         value_format, type(exc).__name__, exc)
            return raw

    async def commit(self, records: list[SourceRecord]) -> None:
        if not records or self._consumer is None:
            return
        next_offsets: dict[tuple[str, int], int] = {}
        for record in records:
            topic, partition, offset = record.position.rsplit("/", 2)
            tp = (topic, int(partition))
            next_offsets[tp] = max(next_offsets.get(tp, 0), int(offset) + 1)
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
        await asyncio.to_thread(self._consumer.commit, offsets=offsets, asynchronous=False)

    async def close(self) -> None:
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close)
            self._producer = None
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
            self._consumer = None


class _AsyncProducer:
    """A confluent ``Producer`` whose delivery reports resolve asyncio futures.

    Like ``integrationos.topics.producer.LogProducer``, but built from a full librdkafka
    config (security, acks) and failing with classified ``ConnectorError``s.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self.broken = False
        self._reports = ReportPoller(self._producer)

    async def produce(
        self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Message:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None and err.fatal():
                self.broken = True
            outcome = classify_error(err, topic) if err is not None else msg
            self._reports.settle_later(loop, future, outcome)

        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=on_delivery
                )
                break
            except BufferError:  # local queue full: give the poller time to drain it
                await asyncio.sleep(0.05)
            except KafkaException as exc:
                raise classify_error(exc.args[0], topic) from None
        return await future

    def close(self, timeout: float = 10) -> None:
        self._producer.flush(timeout)
        self.abandon()

    def abandon(self) -> None:
        """Stop polling without flushing (after a fatal error nothing more will be sent)."""
        self._reports.stop(1)


def _read_avro(raw: bytes, schema: Any) -> Any:
    """One schemaless Avro datum that uses every byte (left-over bytes mean another schema)."""
    stream = io.BytesIO(raw)
    datum = fastavro.schemaless_reader(stream, schema)
    if stream.tell() != len(raw):
        raise ValueError(f"{len(raw) - stream.tell()} bytes left over after the datum")
    return datum


def _json_default(value: Any) -> Any:
    """Avro values JSON has no type for: bytes as base64, times as ISO 8601, decimals and
    UUIDs as text (a decimal keeps every digit)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def classify_error(err: KafkaError, topic: str) -> ConnectorError:
    code = f"KAFKA_{err.name().lstrip('_')}"
    if err.code() in _UNKNOWN_TOPIC:
        return ConnectorError(code, f"topic {topic!r} does not exist", retryable=False)
    # A fatal error kills the producer instance, not the record: a new producer can retry.
    retryable = err.fatal() or err.code() not in _PERMANENT
    return ConnectorError(code, _describe(err), retryable=retryable)


def _describe(err: KafkaError) -> str:
    return f"{err.name()}: {err.str()}"
