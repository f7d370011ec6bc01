"""Exactly-once Kafka to Kafka integrations: consume, transform, produce, commit offsets,
all in one Kafka transaction per batch.

The at-least-once path (``engine/sources.py``) forwards source records to the ingest topic
and lets the Faust pipeline deliver them; a crash between a hop's write and its commit
repeats the write. Faust's own ``exactly_once`` guarantee cannot close that gap: it wraps
only what Faust's aiokafka producers send, while our target records, events and dead
letters are produced with confluent-kafka, and the source side is not a Faust stream at
all. So an integration whose source and target are Kafka topics on the platform's cluster
(``bindings.runs_exactly_once``) gets this runner instead, which skips the ingest topic:

1. consume up to ``POLL_BATCH`` source records (``isolation.level=read_committed``);
2. begin a transaction on a producer whose ``transactional.id`` is stable per
   (integration, worker), so a restarted worker aborts what its killed predecessor left
   open and fences it;
3. run the batch through the ordinary ``Pipeline`` (same validation, ``run_flow``,
   events, error strategies, dead letters), built on that producer and on targets that
   produce into the transaction (``engine/transactional_target.py``);
4. add the batch's next source offsets with the consumer's group metadata (KIP-447: a
   member that lost the partitions meanwhile is refused) and commit.

Every batch is thus visible to read_committed readers entirely or not at all, and its
source records are marked consumed in the same step. A failed batch is aborted, the
consumer rewound to its first records, and its records re-run one per transaction (so a
record the target refuses for good is told from its neighbours and dead-lettered,
``engine/transactional_target.py``); if even the abort fails, the consumer and producer
are rebuilt from the committed offsets. Message ids come from the source position
(``bindings.message_id_for``), so a re-run keeps each message's identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from confluent_kafka import Consumer, Message, TopicPartition
from sqlalchemy import Engine

from integrationos.connectors.credentials import CredentialVault
from integrationos.connectors.kafka import KafkaConnector
from integrationos.engine.bindings import SourceBinding, routing_headers
from integrationos.engine.catalog import FlowCatalog
from integrationos.engine.lookups import LookupService
from integrationos.engine.pipeline import IngestRecord, Pipeline
from integrationos.engine.transactional_target import TransactionalTargets
from integrationos.quota import MessageQuota
from integrationos.settings import Settings
from integrationos.topics.transactional import TransactionalLog

log = logging.getLogger(__name__)

POLL_BATCH = 500
POLL_TIMEOUT_S = 0.5
ERROR_BACKOFF_S = 2.0
SESSION_TIMEOUT_MS = 15_000
"""A killed worker's source partitions move to the others (or to its restart) after this
long, as for the Faust consumer group (``engine/app.py``)."""


class _Session:
    """One consumer and one transactional producer, for as long as neither fails."""

    def __init__(self, binding: SourceBinding, connector: KafkaConnector, settings: Settings,
                 vault: CredentialVault, lookups: LookupService, database: Engine) -> None:
        self._binding = binding
        self._connector = connector
        tid = f"{settings.topic_prefix}-eos-{binding.integration_id}-{settings.worker_id}"
        self._log = TransactionalLog(settings.kafka_bootstrap, tid,
                                     client_id=f"ios-{settings.worker_id}-eos")
        self._targets = TransactionalTargets(vault, self._log, settings.kafka_bootstrap)
        self._pipeline = Pipeline(self._log, FlowCatalog(database), self._targets, lookups,
                                  settings.topic_prefix, MessageQuota(database))
        self._consumer: Consumer | None = None
        self._in_transaction = False
        self._one_by_one = 0  # records of an aborted batch still to re-run singly

    async def open(self) -> None:
        """Initialise the producer first: that aborts a transaction the previous
        incarnation left open, so the consumer then reads settled committed offsets."""
        await self._log.init()
        self._consumer = Consumer({
            **self._connector.consumer_config(),
            "isolation.level": "read_committed",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
        })
        self._consumer.subscribe([self._connector.topic])

    async def step(self) -> None:
        """One batch: consume, process and commit it in one transaction."""
        assert self._consumer is not None
        consumer = self._consumer
        limit = 1 if self._one_by_one else POLL_BATCH
        messages = await asyncio.to_thread(consumer.consume, limit, POLL_TIMEOUT_S)
        batch = [(m, r) for m in messages if (r := self._connector.source_record(m))]
        if not batch:
            return
        records = [self._ingest_record(m, r.key, r.value, routing_headers(self._binding, r))
                   for m, r in batch]
        self._targets.attributable = bool(self._one_by_one)
        self._log.begin()
        self._in_transaction = True
        try:
            await self._pipeline.process_batch(records)
            await self._log.commit(_next_offsets(messages), consumer.consumer_group_metadata())
        except Exception as exc:
            log.warning("exactly-once batch of %s aborted (%s: %s); re-running it one record"
                        " per transaction", self._binding.integration_id,
                        type(exc).__name__, exc)
            await self._abort_and_rewind(messages)
            self._one_by_one = max(self._one_by_one, len(messages))
            await asyncio.sleep(ERROR_BACKOFF_S)
            return
        self._in_transaction = False
        self._one_by_one = max(0, self._one_by_one - len(messages))
        for record in records:  # committed: a poisoned record will not come again
            self._targets.poisoned.pop(record.message_id, None)

    @staticmethod
    def _ingest_record(msg: Message, key: bytes | None, value: bytes,
                       headers: list[tuple[str, bytes]]) -> IngestRecord:
        return IngestRecord(msg.topic(), msg.partition(), msg.offset(), key, value,
                            dict(headers))

    async def _abort_and_rewind(self, messages: list[Message]) -> None:
        """Abort the batch's transaction and put the consumer back on its first records, so
        the next step re-runs it; raises (and the session is rebuilt) if either fails: a
        fatal producer error, partitions revoked meanwhile."""
        await self._log.abort()
        self._in_transaction = False
        assert self._consumer is not None
        for tp in _first_offsets(messages):
            self._consumer.seek(tp)

    async def close(self) -> None:
        """Abort an open transaction, leave the group (its partitions move at once)."""
        if self._in_transaction:
            with contextlib.suppress(Exception):  # a fenced producer cannot abort: harmless
                await self._log.abort()
        await self._targets.close()
        await asyncio.to_thread(self._log.close)
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        if not m.error():
            tp = (m.topic(), m.partition())
            offsets[tp] = max(offsets.get(tp, 0), m.offset() + 1)
    return [TopicPartition(t, p, o) for (t, p), o in offsets.items()]


def _first_offsets(messages: list[Message]) -> list[TopicPartition]:
    offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        if not m.error():
            tp = (m.topic(), m.partition())
            offsets[tp] = min(offsets.get(tp, m.offset()), m.offset())
    return [TopicPartition(t, p, o) for (t, p), o in offsets.items()]


class ExactlyOnceRunner:
    """Runs one exactly-once integration in this worker; the same interface as
    ``SourceRunner`` so the source manager treats both alike. Every worker runs one per
    such integration, in one consumer group, so the source partitions are spread."""

    def __init__(self, binding: SourceBinding, connector: KafkaConnector, settings: Settings,
                 vault: CredentialVault, lookups: LookupService, database: Engine) -> None:
        self.binding = binding
        self._connector = connector
        self._settings = settings
        self._vault = vault
        self._lookups = lookups
        self._database = database
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(),
                                         name=f"exactly-once-{self.binding.integration_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._connector.close()

    async def _run(self) -> None:
        while True:
            session = _Session(self.binding, self._connector, self._settings, self._vault,
                               self._lookups, self._database)
            try:
                await session.open()
                while True:
                    await session.step()
            except asyncio.CancelledError:
                await session.close()
                raise
            except Exception as exc:
                log.warning("exactly-once runner of %s: %s: %s; restarting from the committed"
                            " offsets", self.binding.integration_id, type(exc).__name__, exc)
                await session.close()
                await asyncio.sleep(ERROR_BACKOFF_S)
