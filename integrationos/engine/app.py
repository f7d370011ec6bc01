"""The Faust application: three thin agents that decode, call the logic, and let Faust ack.

- ``run_pipeline``  ingest topic        -> Pipeline (validate, transform, deliver, events)
- ``project_config`` config topic       -> Projector (configuration tables)
- ``project_messages`` message events   -> Projector (message status and history)
- ``project_checkpoints`` source checkpoints -> Projector (where each pull-based source is)
- ``release_retry-<n>s.v1`` one per delay tier: parked retries back to the ingest topic
  when due (non-blocking retries); a delay longer than the tier goes round it in hops
- ``project_replays`` / ``run_replays`` replay requests and progress -> Projector (the
  ``replays`` table) / ReplayRunner (re-sends dead-lettered, parked or past messages)
- timers ``release_quota_parked`` (engine/quota_release.py) and ``purge_expired``
  (engine/retention.py): messages parked over quota sent again when the quota allows;
  read-model rows older than the tenant's retention deleted
- ``project_alerts`` alerts topic -> Projector (alerts and their notifications); timer
  ``evaluate_alerts`` (engine/alerts.py) on the one worker assigned that single-partition
  topic: alert rules evaluated, alert.fired / alert.resolved / alert.notified appended
- timer ``sync_sources`` keeps a runner per pull-based source (e.g. a Kafka source topic)
  that forwards its records to the ingest topic

All agents consume raw bytes: records are decoded by our own Avro/JSON code, never pickle.
Faust commits an offset only after the agent's loop body for that batch returned, which is
after everything the batch produced or projected is durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import TP
from opentelemetry.trace import SpanKind

from integrationos import metrics, tracing
from integrationos.engine import quota_release, retention
from integrationos.engine.persevere import until_done
from integrationos.engine.pipeline import IngestRecord, release_plan
from integrationos.engine.read_committed import ReadCommittedTransport
from integrationos.engine.runtime import WorkerRuntime
from integrationos.settings import Settings
from integrationos.store.projector import LogRecord
from integrationos.topics import codec
from integrationos.topics.catalog import (
    ALERTS,
    CONFIG,
    INGEST,
    MESSAGE_EVENTS,
    REPLAYS,
    RETRY_TIER_SECONDS,
    RETRY_TIERS,
    SOURCE_CHECKPOINTS,
    TopicSpec,
)

PIPELINE_BATCH = 500
PROJECTION_BATCH = 2000
SOURCE_SYNC_SECONDS = 2.0
LAG_SAMPLE_SECONDS = 5.0

log = logging.getLogger(__name__)


def _headers(raw: Any) -> dict[str, bytes]:
    if not raw:
        return {}
    items = raw.items() if isinstance(raw, dict) else raw
    return {k: (v or b"") for k, v in items}


def _log_records(events: Sequence[faust.types.EventT]) -> list[LogRecord]:
    return [
        LogRecord(e.message.topic, e.message.partition, e.message.offset, e.message.value)
        for e in events
    ]


def create_app(settings: Settings) -> tuple[faust.App, WorkerRuntime]:
    runtime = WorkerRuntime.build(settings)
    datadir = settings.data_dir / "faust" / settings.worker_id
    datadir.mkdir(parents=True, exist_ok=True)
    prefix = settings.topic_prefix
    app = faust.App(
        f"{prefix}-engine",
        broker=f"kafka://{settings.kafka_bootstrap}",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A crashed worker's partitions move to the others after this long (Kafka's own
        # default is 45 s); heartbeats every 3 s keep live workers well inside it.
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        stream_wait_empty=False,
    )
    # Message events of exactly-once integrations are written in transactions: project
    # only committed ones (engine/read_committed.py).
    app.transport = ReadCommittedTransport(app.conf.broker_consumer, app)

    def raw_topic(*names: str) -> faust.TopicT:
        return app.topic(*names, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    async def project(stream: faust.StreamT, batch: int, within: float) -> None:
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(batch, within=within):
            records = _log_records(events)
            await until_done("projecting a batch", loop.run_in_executor, runtime.db_writer,
                             runtime.projector.apply, records)

    @app.agent(raw_topic(CONFIG.name(prefix)), name="project_config")
    async def project_config(stream: faust.StreamT) -> None:
        await project(stream, PROJECTION_BATCH, 0.01)

    @app.agent(raw_topic(SOURCE_CHECKPOINTS.name(prefix)), name="project_checkpoints")
    async def project_checkpoints(stream: faust.StreamT) -> None:
        await project(stream, PROJECTION_BATCH, 0.05)

    @app.agent(raw_topic(MESSAGE_EVENTS.name(prefix)), name="project_messages")
    async def project_messages(stream: faust.StreamT) -> None:
        await project(stream, PROJECTION_BATCH, 0.05)

    @app.agent(raw_topic(REPLAYS.name(prefix)), name="project_replays")
    async def project_replays(stream: faust.StreamT) -> None:
        await project(stream, PROJECTION_BATCH, 0.01)

    @app.agent(raw_topic(REPLAYS.name(prefix)), name="run_replays")
    async def run_replays(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                request = codec.decode(value)
            except codec.UndecodableEvent:
                continue  # logged by the projection, which meets the same record
            await until_done("a replay", runtime.replays.handle, request)

    @app.agent(raw_topic(ALERTS.name(prefix)), name="project_alerts")
    async def project_alerts(stream: faust.StreamT) -> None:
        await project(stream, PROJECTION_BATCH, 0.01)

    alerts_partition = TP(ALERTS.name(prefix), 0)

    @app.timer(settings.alert_interval_seconds)
    async def evaluate_alerts() -> None:
        """Only on the worker that holds the alerts topic's one partition (and projects
        it): the group gives it to exactly one of them."""
        try:
            if alerts_partition not in app.consumer.assignment():
                return
            log_end = (await app.consumer.highwaters(alerts_partition))[alerts_partition]
        except Exception:  # not started or rebalancing: a timer that raised would stop
            return  # the worker, and the next tick asks again
        await runtime.alerts.tick(log_end)

    @app.agent(raw_topic(INGEST.name(prefix)), name="run_pipeline")
    async def run_pipeline(stream: faust.StreamT) -> None:
        async for events in stream.take_events(PIPELINE_BATCH, within=0.02):
            records = [
                IngestRecord(
                    e.message.topic, e.message.partition, e.message.offset,
                    e.message.key, e.message.value or b"", _headers(e.message.headers),
                )
                for e in events
            ]
            await until_done("a pipeline batch", runtime.pipeline.process_batch, records)

    @app.timer(SOURCE_SYNC_SECONDS)
    async def sync_sources() -> None:
        await runtime.sources.sync()

    @app.timer(settings.quota_release_seconds)
    async def release_quota_parked() -> None:
        await quota_release.release_parked(runtime.database, runtime.producer, prefix)

    @app.timer(retention.PURGE_INTERVAL_SECONDS)
    async def purge_expired() -> None:
        await retention.run_purge(runtime.database, runtime.db_writer)

    ingest_topic = INGEST.name(prefix)

    def retry_tier_agent(tier: TopicSpec, seconds: int) -> None:
        tier_topic = tier.name(prefix)

        async def release_when_due(stream: faust.StreamT) -> None:
            """Wait for each parked record's due time, then put it back on the ingest topic.
            Every record of a tier was parked with a delay no longer than the tier (longer
            ones go round in hops, see ``release_plan``), so waiting for the first holds
            back the others by at most the tier's length."""
            async for events in stream.take_events(PIPELINE_BATCH, within=0.05):
                await until_done(f"releasing from {tier_topic}", release, events)

        async def release(events: list[faust.types.EventT]) -> None:
            pending = []
            for e in events:
                headers = _headers(e.message.headers)
                due_ms = int(headers.get("ios-retry-at", b"0") or 0)
                wait, due = release_plan(due_ms, int((e.message.timestamp or 0) * 1000),
                                         seconds, int(time.time() * 1000))
                if wait > 0:
                    await asyncio.sleep(wait)
                if due:
                    pending.append(put_back(e.message.key, e.message.value or b"", headers))
                else:
                    pending.append(runtime.producer.produce(
                        tier_topic, e.message.key, e.message.value or b"",
                        list(headers.items())))
            await asyncio.gather(*pending)

        def put_back(key: bytes | None, value: bytes, headers: dict[str, bytes]
                     ) -> asyncio.Future[tuple[int, int]]:
            """Back on the ingest topic in a span of the trace the record carries: the next
            attempt's pass becomes its child, so the retry stays in the message's trace."""
            with tracing.span("retry.release", kind=SpanKind.PRODUCER,
                              parent=tracing.extract(headers) if tracing.enabled() else None,
                              attributes={"ios.retry.tier": tier_topic, "ios.attempt":
                                          headers.get("ios-attempt", b"1").decode("latin-1")}):
                return runtime.producer.produce(ingest_topic, key, value, tracing.inject(
                    [(k, v) for k, v in headers.items() if k != "ios-retry-at"]))

        app.agent(raw_topic(tier.name(prefix)), name=f"release_{tier.suffix}")(release_when_due)

    for tier, seconds in zip(RETRY_TIERS, RETRY_TIER_SECONDS, strict=True):
        retry_tier_agent(tier, seconds)

    if settings.worker_metrics_port:  # sampled only where someone can scrape it
        @app.timer(LAG_SAMPLE_SECONDS)
        async def sample_consumer_lag() -> None:
            """``ios_consumer_lag_records`` of the partitions this worker holds now; a
            partition that moved to another worker stops being reported here."""
            consumer = app.consumer
            lags = {}
            try:
                assigned = consumer.assignment()
                highwaters = await consumer.highwaters(*assigned) if assigned else {}
                for tp, highwater in highwaters.items():
                    position = await consumer.position(tp)
                    if position is not None and highwater is not None:
                        lags[tp.topic, str(tp.partition)] = max(highwater - position, 0)
            except Exception:  # e.g. mid-rebalance: a metric never stops the worker
                log.warning("could not sample the consumer lag", exc_info=True)
                return
            metrics.CONSUMER_LAG.clear()  # no await from here: a scrape sees all or none
            for labels, lag in lags.items():
                metrics.CONSUMER_LAG.labels(*labels).set(lag)

    ready_file = settings.data_dir / f"{settings.worker_id}.ready"

    @app.on_partitions_assigned.connect
    async def mark_ready(sender: faust.App, assigned: Any, **_: Any) -> None:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        ready_file.write_text(str(len(assigned)))

    @app.on_before_shutdown.connect
    async def release(sender: faust.App, **_: Any) -> None:
        ready_file.unlink(missing_ok=True)
        await runtime.close()

    return app, runtime
