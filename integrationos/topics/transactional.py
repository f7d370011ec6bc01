"""A log producer whose records and consumer offsets commit atomically (Kafka transactions).

Exactly-once integrations (``engine/exactly_once.py``) write their target records, message
events and dead letters through one of these, then commit the source offsets into the same
transaction, so a consumer reading with ``isolation.level=read_committed`` sees all of a
batch or none of it. The blocking librdkafka transaction calls run on a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import TopicPartition

from integrationos.topics.producer import LogProducer

TRANSACTION_TIMEOUT_MS = 30_000
"""How long the broker keeps a transaction open without a commit: the longest a worker that
died mid-batch (and does not come back under its transactional id) holds read_committed
consumers of the partitions it wrote. A batch must finish well within it."""
CALL_TIMEOUT_S = 30.0


class TransactionalLog(LogProducer):
    """``produce``/``append`` as ``LogProducer``, inside transactions begun and ended here.

    ``transactional_id`` must be stable across restarts of the same writer: initialising
    with it aborts whatever its previous incarnation left open and fences that incarnation
    off (a zombie's later writes fail instead of landing).
    """

    def __init__(self, bootstrap: str, transactional_id: str, client_id: str,
                 timeout_ms: int = TRANSACTION_TIMEOUT_MS) -> None:
        super().__init__(bootstrap, client_id, extra={
            "transactional.id": transactional_id,
            "transaction.timeout.ms": timeout_ms,
        })
        self.transactional_id = transactional_id

    async def init(self) -> None:
        await asyncio.to_thread(self._producer.init_transactions, CALL_TIMEOUT_S)

    def begin(self) -> None:
        """Local only: no broker round trip, so no thread."""
        self._producer.begin_transaction()

    async def commit(self, offsets: list[TopicPartition], group_metadata: Any) -> None:
        """Add the consumer's next offsets to the transaction and commit it: the batch's
        records become visible and its input is marked consumed, in one step. The group
        metadata (generation, member id) lets the broker refuse a member that lost the
        partitions meanwhile (KIP-447)."""
        await asyncio.to_thread(self._producer.send_offsets_to_transaction, offsets,
                                group_metadata, CALL_TIMEOUT_S)
        await asyncio.to_thread(self._producer.commit_transaction, CALL_TIMEOUT_S)

    async def abort(self) -> None:
        await asyncio.to_thread(self._producer.abort_transaction, CALL_TIMEOUT_S)
