"""Target writes of an exactly-once integration: its Kafka target's records go through the
runner's transactional producer, so they commit or abort with the batch's events and
source offsets.

A record the broker refuses for good (too large, topic missing) makes the whole
transaction fail; the runner aborts and re-runs the batch one record per transaction
(``attributable``), because the broker refuses a whole produce request, so in a batch an
innocent record sharing the request gets the same error. Only a refusal of a record
written alone is pinned on it: its message id and error are remembered (``poisoned``), its
next write fails at once without producing, and the pipeline's error strategy
dead-letters it inside a transaction that can commit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaException

from integrationos.connectors.base import Connector, ConnectorError, Delivery, OutboundMessage
from integrationos.connectors.credentials import CredentialVault
from integrationos.connectors.kafka import KafkaConnector, classify_error
from integrationos.engine.bindings import writes_transactionally
from integrationos.engine.catalog import TargetRef
from integrationos.engine.targets import TargetPool
from integrationos.store.projections import sealed_from_text
from integrationos.topics.producer import AppendFailed
from integrationos.topics.transactional import TransactionalLog


class _TransactionalKafkaTarget(KafkaConnector):
    """The Kafka connector's record, produced into the caller's open transaction."""

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any],
                 log: TransactionalLog, pool: TransactionalTargets) -> None:
        super().__init__(config, credentials)
        self._log = log
        self._pool = pool
        self._topic_ready = not config.get("createTopic")

    async def write(self, message: OutboundMessage) -> Delivery:
        known = self._pool.poisoned.get(message.message_id)
        if known is not None:
            raise known
        key, value, headers = self.record_for(message)
        if not self._topic_ready:
            await asyncio.to_thread(self.create_topic)
            self._topic_ready = True
        try:
            partition, offset = await self._log.produce(self.topic, key, value, headers)
        except KafkaException as exc:  # refused before it joined the transaction
            raise classify_error(exc.args[0], self.topic) from None
        except AppendFailed as exc:  # refused by the broker: the transaction cannot commit
            if exc.error is None:
                raise ConnectorError("KAFKA_APPEND_FAILED", str(exc), retryable=True) from None
            error = classify_error(exc.error, self.topic)
            if not error.retryable and self._pool.attributable:
                self._pool.poisoned[message.message_id] = error
            raise error from None
        return Delivery(target=f"kafka:{self.topic}",
                        detail=f"partition {partition} offset {offset} (transactional)")


class TransactionalTargets(TargetPool):
    """Kafka targets that can join the transaction write through ``log``; any other target
    (the integration was just re-pointed; its runner is replaced within one source sync)
    is served by the ordinary pool, at-least-once."""

    def __init__(self, vault: CredentialVault, log: TransactionalLog,
                 platform_bootstrap: str) -> None:
        super().__init__(vault)
        self._log = log
        self._bootstrap = platform_bootstrap
        self._writers: dict[tuple[str, int], _TransactionalKafkaTarget] = {}
        self.poisoned: dict[str, ConnectorError] = {}
        self.attributable = False  # True while the runner writes one record per transaction

    async def get(self, ref: TargetRef) -> Connector:
        if ref.connector_type != "KAFKA" or not writes_transactionally(ref.config,
                                                                        self._bootstrap):
            return await super().get(ref)
        writer = self._writers.get((ref.connector_id, ref.version))
        if writer is None:
            sealed = sealed_from_text(ref.credentials_sealed)
            credentials = self._vault.open(sealed) if sealed else {}
            writer = _TransactionalKafkaTarget(ref.config, credentials, self._log, self)
            self._writers[(ref.connector_id, ref.version)] = writer
        return writer
