"""The worker's long-lived collaborators, built once per process (never at import time)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from integrationos.connectors.credentials import CredentialVault
from integrationos.engine.alerts import AlertEvaluator
from integrationos.engine.catalog import FlowCatalog
from integrationos.engine.lookups import LookupService
from integrationos.engine.pipeline import Pipeline
from integrationos.engine.replays import ReplayRunner
from integrationos.engine.sources import SourceManager
from integrationos.engine.targets import TargetPool
from integrationos.quota import MessageQuota
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.projector import Projector
from integrationos.topics.producer import LogProducer


@dataclass
class WorkerRuntime:
    settings: Settings
    database: Engine
    producer: LogProducer
    targets: TargetPool
    pipeline: Pipeline
    lookups: LookupService
    sources: SourceManager
    projector: Projector
    replays: ReplayRunner
    db_writer: ThreadPoolExecutor
    alerts: AlertEvaluator

    @classmethod
    def build(cls, settings: Settings) -> WorkerRuntime:
        database = open_database(settings.database_url)
        producer = LogProducer(settings.kafka_bootstrap, client_id=f"ios-{settings.worker_id}")
        vault = CredentialVault.from_settings(settings)
        targets = TargetPool(vault)
        lookups = LookupService(database, vault)
        pipeline = Pipeline(
            producer,
            FlowCatalog(database),
            targets,
            lookups,
            settings.topic_prefix,
            MessageQuota(database),
        )
        return cls(
            settings=settings,
            database=database,
            producer=producer,
            targets=targets,
            pipeline=pipeline,
            lookups=lookups,
            sources=SourceManager(database, vault, producer, settings, lookups),
            projector=Projector(database),
            replays=ReplayRunner(database, producer, settings.kafka_bootstrap,
                                 settings.topic_prefix),
            # One writer thread: projections are applied in log order, off the event loop.
            db_writer=ThreadPoolExecutor(max_workers=1, thread_name_prefix="projector"),
            alerts=AlertEvaluator(database, producer, vault, settings.topic_prefix),
        )

    async def close(self) -> None:
        await self.sources.close()
        await self.targets.close()
        await self.alerts.close()
        self.lookups.close()
        self.producer.close()
        self.db_writer.shutdown(wait=True)
        self.database.dispose()
