"""Pull-based sources: each active integration whose source connector can ``poll`` gets a
runner that pumps its records into the ingest topic.

The runner stores the source's checkpoint (a ``source.checkpointed`` event on the compacted
checkpoint topic, projected into ``source_checkpoints``) and commits the source's own
position (consumer offsets, archived files) only after the broker acknowledged every record
it forwarded, so a crash re-reads (never skips) records; the message id is derived from the
record's position in its source, so a re-read record keeps its id and idempotency key and
targets can drop the duplicate. Every worker runs the same runners: for a Kafka source they
share one consumer group, so the source's partitions are spread over the workers.

A Kafka source whose integration writes to a Kafka target on the same (the platform's)
cluster is run exactly-once instead (``engine/exactly_once.py``, docs/exactly-once.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from sqlalchemy import Engine, select

from integrationos.connectors import registry
from integrationos.connectors.base import Connector, ConnectorError, SourceRecord
from integrationos.connectors.credentials import CredentialVault
from integrationos.connectors.kafka import KafkaConnector
from integrationos.engine.bindings import (
    SourceBinding,
    active_bindings,
    routing_headers,
    runs_exactly_once,
)
from integrationos.engine.exactly_once import ExactlyOnceRunner
from integrationos.engine.lookups import LookupService
from integrationos.settings import Settings
from integrationos.store.projections import sealed_from_text
from integrationos.store.tables import source_checkpoints
from integrationos.topics import event_types as t
from integrationos.topics.catalog import INGEST, SOURCE_CHECKPOINTS
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer

log = logging.getLogger(__name__)

POLL_BATCH = 500
POLL_TIMEOUT_S = 0.5
ERROR_BACKOFF_S = 2.0


class SourceRunner:
    def __init__(self, binding: SourceBinding, connector: Connector, producer: LogProducer,
                 ingest_topic: str, checkpoint_topic: str) -> None:
        self.binding = binding
        self._connector = connector
        self._producer = producer
        self._ingest_topic = ingest_topic
        self._checkpoint_topic = checkpoint_topic
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"source-{self.binding.integration_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._connector.close()

    async def _run(self) -> None:
        while True:
            try:
                records = await self._connector.poll(POLL_BATCH, POLL_TIMEOUT_S)
                if records:
                    await self._forward(records)
                    await self._checkpoint(records)
                    await self._connector.commit(records)
            except asyncio.CancelledError:
                raise
            except ConnectorError as exc:
                log.warning("source of %s: %s (%s)", self.binding.integration_id, exc.message,
                            exc.code)
                await asyncio.sleep(ERROR_BACKOFF_S)
            except Exception:
                log.exception("source of %s failed; retrying", self.binding.integration_id)
                await asyncio.sleep(ERROR_BACKOFF_S)

    async def _checkpoint(self, records: list[SourceRecord]) -> None:
        """Store the source's state after the last record, now that every record is durable."""
        checkpoint = next((r.checkpoint for r in reversed(records) if r.checkpoint), None)
        if checkpoint is None:
            return
        b = self.binding
        await self._producer.append(self._checkpoint_topic, Event(
            t.SOURCE_CHECKPOINTED, b.tenant, b.integration_id,
            {"integrationId": b.integration_id, "connectorId": b.connector_id,
             "checkpoint": checkpoint}))

    async def _forward(self, records: list[SourceRecord]) -> None:
        await asyncio.gather(*(
            self._producer.produce(self._ingest_topic, record.key, record.value,
                                   routing_headers(self.binding, record))
            for record in records))


class SourceManager:
    """Keeps one runner per active pull-based source, in step with the projections."""

    def __init__(self, database: Engine, vault: CredentialVault, producer: LogProducer,
                 settings: Settings, lookups: LookupService) -> None:
        self._database = database
        self._vault = vault
        self._producer = producer
        self._settings = settings
        self._lookups = lookups
        self._ingest_topic = INGEST.name(settings.topic_prefix)
        self._checkpoint_topic = SOURCE_CHECKPOINTS.name(settings.topic_prefix)
        self._prefix = settings.topic_prefix
        self._runners: dict[str, SourceRunner | ExactlyOnceRunner] = {}

    async def sync(self) -> None:
        wanted = {b.integration_id: b for b in
                  await asyncio.to_thread(active_bindings, self._database)}
        for integration_id, runner in list(self._runners.items()):
            if wanted.get(integration_id) != runner.binding:
                del self._runners[integration_id]
                await runner.stop()
        for integration_id, binding in wanted.items():
            if integration_id not in self._runners:
                runner = await self._runner_for(binding)
                self._runners[integration_id] = runner
                runner.start()

    async def _runner_for(self, binding: SourceBinding) -> SourceRunner | ExactlyOnceRunner:
        """Exactly-once where the rule allows it (``bindings.runs_exactly_once``), else the
        at-least-once runner that forwards to the ingest topic."""
        connector = self._build(binding)
        if (isinstance(connector, KafkaConnector)
                and runs_exactly_once(binding, self._settings.kafka_bootstrap)):
            return ExactlyOnceRunner(binding, connector, self._settings, self._vault,
                                     self._lookups, self._database)
        connector.restore(await asyncio.to_thread(self._stored_checkpoint, binding))
        return SourceRunner(binding, connector, self._producer, self._ingest_topic,
                            self._checkpoint_topic)

    def _stored_checkpoint(self, binding: SourceBinding) -> str | None:
        """The last projected checkpoint of this integration's source, for this connector
        (a source connector swapped for another starts afresh)."""
        with self._database.connect() as conn:
            row = conn.execute(select(source_checkpoints).where(
                source_checkpoints.c.integration_id == binding.integration_id,
                source_checkpoints.c.tenant_id == binding.tenant,
                source_checkpoints.c.connector_id == binding.connector_id,
            )).first()
        return row.checkpoint if row else None

    def _build(self, binding: SourceBinding) -> Connector:
        config = json.loads(binding.config_json)
        if "consumerGroup" in registry.connector_class(binding.connector_type).config_spec.get(
                "properties", {}):
            config.setdefault("consumerGroup", f"{self._prefix}-source-{binding.integration_id}")
        sealed = sealed_from_text(binding.credentials_sealed)
        credentials = self._vault.open(sealed) if sealed else {}
        return registry.build(binding.connector_type, config, credentials)

    async def close(self) -> None:
        for runner in self._runners.values():
            await runner.stop()
        self._runners.clear()
