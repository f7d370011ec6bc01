"""Carrying out replays: each ``message.replay_requested`` event is worked through here.

For every chunk of selected messages the runner first appends ``message.replayed`` events
(keyed by message id, so they precede whatever the pipeline appends for the new pass), waits
until they are durable, then puts the records back on the ingest topic, then reports
progress. The pipeline then runs them against the integration's current version.

Idempotent by construction: before selecting, the runner waits until the message-events
projection has caught up with the log (a barrier event on every partition), so a message
an earlier replay (or this one, before a crash) already sent is no longer
``DEAD_LETTERED``/``PARKED`` and is not sent again.
Replays run one at a time (their topic has one partition).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka.admin import AdminClient
from opentelemetry.trace import SpanKind
from sqlalchemy import Engine, select

from integrationos import logs, tracing
from integrationos.engine.replay_sources import (
    CHUNK,
    Resend,
    Selection,
    StreamStart,
    load_resends,
    read_stream,
    select_dead_lettered,
    select_parked,
)
from integrationos.store.dlq_queries import DlqFilter
from integrationos.store.projector import applied_through
from integrationos.store.tables import replays
from integrationos.topics import event_types as t
from integrationos.topics.catalog import INGEST, MESSAGE_EVENTS, REPLAYS
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT_S = 60.0
CATALOG_SETTLE_S = 2.0
"""Every worker's catalog (a 1 s cache) sees the integration as it was when the replay was
requested after this long: sent sooner, a message could meet the version it failed with
(or a resumed integration still paused) and end as before."""


class ReplayRunner:
    def __init__(self, engine: Engine, producer: LogProducer, bootstrap: str,
                 topic_prefix: str) -> None:
        self._engine = engine
        self._producer = producer
        self._bootstrap = bootstrap
        self._events_topic = MESSAGE_EVENTS.name(topic_prefix)
        self._ingest_topic = INGEST.name(topic_prefix)
        self._replays_topic = REPLAYS.name(topic_prefix)
        self._metadata = AdminClient({"bootstrap.servers": bootstrap})

    async def handle(self, request: Event) -> None:
        """Carry out one replay request; any failure ends it as FAILED, never the worker."""
        if request.type != t.MESSAGE_REPLAY_REQUESTED:
            return
        if await asyncio.to_thread(self._finished, request.data["replayId"]):
            return  # seen again after a crash or rebalance: it already ran to the end
        progress = _Progress()
        parent = (tracing.extract([("traceparent", request.traceparent.encode())])
                  if tracing.enabled() and request.traceparent else None)
        with tracing.span("replay.run", parent=parent, kind=SpanKind.CONSUMER, attributes={
                "ios.tenant": request.tenant, "ios.replay.id": request.data["replayId"],
                "ios.replay.kind": request.data["kind"]}), \
                logs.bound(tenant=request.tenant, replay_id=request.data["replayId"]):
            await self._run(request, progress)

    async def _run(self, request: Event, progress: _Progress) -> None:
        try:
            settle = CATALOG_SETTLE_S - (time.time() * 1000 - request.data["requestedAt"]) / 1000
            await asyncio.sleep(max(settle, 0.0))
            await self._wait_for_projection(request)
            if request.data["kind"] == "STREAM":
                await self._replay_stream(request, progress)
            else:
                await self._replay_selected(request, progress)
        except Exception as exc:  # a replay that cannot go on must not stop the worker
            log.exception("replay %s failed", request.data["replayId"])
            await self._report(request, t.REPLAY_COMPLETED, progress.counts(
                status="FAILED", error=f"{type(exc).__name__}: {exc}"[:500]))
            return
        await self._report(request, t.REPLAY_COMPLETED, progress.counts(status="COMPLETED"))

    async def _replay_selected(self, request: Event, progress: _Progress) -> None:
        d = request.data
        selection = await asyncio.to_thread(self._select, request)
        progress.start(selection)
        await self._report(request, t.REPLAY_PROGRESSED, progress.counts())
        for start in range(0, len(selection.to_send), CHUNK):
            ids = selection.to_send[start:start + CHUNK]
            resends = await asyncio.to_thread(load_resends, self._engine, request.tenant,
                                              d["replayId"], ids, d.get("payloadJson"))
            await self._send(request, resends)
            progress.sent_chunk(len(resends), len(ids) - len(resends))
            await self._report(request, t.REPLAY_PROGRESSED, progress.counts())

    def _select(self, request: Event) -> Selection:
        d = request.data
        if d["kind"] == "PARKED":
            return select_parked(self._engine, request.tenant, d["replayId"], d["integrationId"],
                                 d.get("messageIds") or [])
        wanted = DlqFilter.from_json(json.loads(d["filterJson"])) if d.get("filterJson") else None
        return select_dead_lettered(self._engine, request.tenant, d["replayId"],
                                    d.get("messageIds") or [], wanted, d["requestedAt"])

    async def _replay_stream(self, request: Event, progress: _Progress) -> None:
        d = request.data
        window = json.loads(d["fromJson"])
        chunks: Iterator[list[Resend]] = read_stream(
            self._bootstrap, self._ingest_topic, request.tenant, d["integrationId"],
            d["replayId"], StreamStart.from_json(window["from"]), window.get("to"))
        progress.start(Selection([], 0, 0))
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            await self._send(request, chunk)
            progress.found(len(chunk))
            await self._report(request, t.REPLAY_PROGRESSED, progress.counts())

    async def _send(self, request: Event, resends: list[Resend]) -> None:
        """``message.replayed`` first and durable, then the records: the projection must see
        the message leave its old end state before it sees the new pass's events."""
        await asyncio.gather(*(self._producer.append(self._events_topic, request.caused(
            t.MESSAGE_REPLAYED, r.message_id, {
                "messageId": r.message_id, "integrationId": r.integration_id,
                "replayId": request.data["replayId"], "payloadJson": r.edited_payload_json,
            })) for r in resends))
        # Each record carries the replay's span: the messages' new passes are its children.
        await asyncio.gather(*(self._producer.produce(self._ingest_topic, r.key, r.value,
                                                      tracing.inject(list(r.headers)))
                               for r in resends))

    async def _report(self, request: Event, type_: str, counts: dict[str, Any]) -> None:
        data = {"replayId": request.data["replayId"], **counts}
        await self._producer.append(self._replays_topic,
                                    request.caused(type_, request.data["replayId"], data))

    def _finished(self, replay_id: str) -> bool:
        with self._engine.connect() as conn:
            status = conn.execute(select(replays.c.status).where(
                replays.c.id == replay_id)).scalar_one_or_none()
        return status in ("COMPLETED", "FAILED")

    async def _wait_for_projection(self, request: Event) -> None:
        """Until the message-events projection has applied everything in the log now.

        A ``replay.barrier`` event goes to every partition; once the projection has passed
        each one, everything before it is applied. (Comparing with the partitions' end
        offsets would wait forever behind a transaction marker, which takes an offset but
        is never a record the projection sees.)"""
        partitions = await asyncio.to_thread(self._event_partitions)
        barrier = request.caused(t.REPLAY_BARRIER, request.data["replayId"],
                                 {"replayId": request.data["replayId"]})
        placed = await asyncio.gather(*(self._producer.append(self._events_topic, barrier, p)
                                        for p in partitions))
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while not await asyncio.to_thread(self._projected, dict(placed)):
            if time.monotonic() > deadline:
                raise TimeoutError("the message-events projection did not catch up within "
                                   f"{CATCH_UP_TIMEOUT_S:g} s")
            await asyncio.sleep(0.1)

    def _event_partitions(self) -> list[int]:
        topic = self._events_topic
        return list(self._metadata.list_topics(topic, timeout=30).topics[topic].partitions)

    def _projected(self, barriers: dict[int, int]) -> bool:
        return all(applied_through(self._engine, self._events_topic, p) > offset
                   for p, offset in barriers.items())


class _Progress:
    """Counts as the ``replay.progressed`` events report them."""

    def __init__(self) -> None:
        self._total = 0
        self._sent = 0
        self._skipped = 0

    def start(self, selection: Selection) -> None:
        self._sent = selection.already_sent
        self._skipped = selection.skipped
        self._total = len(selection.to_send) + selection.already_sent + selection.skipped

    def sent_chunk(self, sent: int, skipped: int) -> None:
        self._sent += sent
        self._skipped += skipped

    def found(self, sent: int) -> None:
        self._total += sent
        self._sent += sent

    def counts(self, **extra: Any) -> dict[str, Any]:
        return {"total": self._total, "sent": self._sent, "skipped": self._skipped, **extra}
