"""The message pipeline: ingest record -> validate -> transform -> deliver -> events.

Every step leaves an event on the message-events topic. A batch is acknowledged (its
offsets committed by Faust) only after every event and dead-letter record it produced is
durably in Kafka, so a crash re-processes rather than loses: delivery is at-least-once, and
targets see a stable idempotency key (the message id) to suppress duplicates.

Ordering: records with the same partition and key are processed one after another; other
keys run concurrently, so one slow target call does not hold up unrelated messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy.exc import OperationalError

from integrationos import logs, metrics, tracing
from integrationos.connectors.base import ConnectorError, OutboundMessage
from integrationos.engine.catalog import FlowCatalog, IntegrationView
from integrationos.engine.flow import FlowResult, StepResult, run_flow
from integrationos.engine.functions import EvaluationContext
from integrationos.engine.lookups import LookupService
from integrationos.engine.targets import TargetPool
from integrationos.observe import timed
from integrationos.quota import MessageQuota
from integrationos.schemas.payloads import JSON_TYPES, media_type
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG, DEAD_LETTER, MESSAGE_EVENTS, retry_tier_for
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer

log = logging.getLogger(__name__)

_MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c7a52-3b7e-4c55-9a55-6b0d0f0c1e01")
FIRST_BACKOFF_S = 0.1
MAX_DB_WAIT_S = 30.0


@dataclass(frozen=True)
class IngestRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes]

    def header(self, name: str) -> str | None:
        raw = self.headers.get(name)
        return raw.decode("utf-8", "replace") if raw is not None else None

    @property
    def attempt(self) -> int:
        """Which attempt this pass is: 1, or what a retry tier put back (``ios-attempt``)."""
        given = self.header("ios-attempt")
        return int(given) if given and given.isdigit() and 0 < int(given) < 100 else 1

    @property
    def message_id(self) -> str:
        """The producer's id, or one derived from the record's position (stable on re-read)."""
        given = self.header("ios-message-id")
        if given:
            return given[:64]
        position = f"{self.topic}/{self.partition}/{self.offset}"
        return "msg_" + uuid.uuid5(_MESSAGE_ID_NAMESPACE, position).hex[:24]


def release_plan(due_ms: int, parked_ms: int, tier_seconds: int, now_ms: int
                 ) -> tuple[float, bool]:
    """(seconds to wait, then due?) for a record a delay tier's agent reads.

    The agent waits on its tier's records in order, so none may hold the tier longer than
    the tier's length after it was parked (``parked_ms``, the record's timestamp), or it
    would delay the records behind it. A retry due later than that (a backoff longer than
    the largest tier, up to an hour) waits one tier length and goes round the tier again
    (False): served in hops, it never blocks the others for longer than a hop."""
    hop_end_ms = min(due_ms, parked_ms + tier_seconds * 1000)
    return max(hop_end_ms - now_ms, 0) / 1000, hop_end_ms >= due_ms


@dataclass(frozen=True)
class Failure:
    stage: str
    code: str
    message: str
    retryable: bool
    excerpt: str = ""
    retry_after: float | None = None


_PAUSED = Failure("ingest", "INTEGRATION_PAUSED", "the integration is paused", False)


def _with_excerpt(failure: Failure) -> str:
    return failure.message + (f" | {failure.excerpt}" if failure.excerpt else "")


class Pipeline:
    def __init__(
        self,
        producer: LogProducer,
        catalog: FlowCatalog,
        targets: TargetPool,
        lookups: LookupService,
        topic_prefix: str,
        quota: MessageQuota | None = None,
    ) -> None:
        self._producer = producer
        self._quota = quota
        self._catalog = catalog
        self._targets = targets
        self._lookups = lookups
        self._prefix = topic_prefix
        self._events_topic = MESSAGE_EVENTS.name(topic_prefix)
        self._dlq_topic = DEAD_LETTER.name(topic_prefix)
        self._config_topic = CONFIG.name(topic_prefix)

    async def process_batch(self, records: list[IngestRecord]) -> None:
        """Process a batch; return only when everything it produced is durable."""
        pending: list[asyncio.Future[tuple[int, int]]] = []
        groups: dict[tuple[int, bytes | None], list[IngestRecord]] = defaultdict(list)
        for record in records:
            groups[(record.partition, record.key)].append(record)
        # Every group ends before this returns or raises: none may go on writing after the
        # caller gave up on the batch (an exactly-once runner aborts and re-runs it).
        outcomes = await asyncio.gather(
            *(self._process_in_order(g, pending) for g in groups.values()),
            return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        await asyncio.gather(*pending)

    async def _process_in_order(
        self, records: list[IngestRecord], pending: list[asyncio.Future[tuple[int, int]]]
    ) -> None:
        for record in records:
            await _MessageRun(self, record, pending).run()

    def context_for(self, view: IntegrationView) -> EvaluationContext:
        """What ``$env`` and ``$lookup`` see for this integration's tenant and environment."""
        return EvaluationContext(
            tenant=view.tenant, environment=view.environment,
            variables=self._lookups.variables(view.tenant, view.environment),
            lookup=self._lookups.resolver(view.tenant),
        )

    def emit(self, event: Event, pending: list[asyncio.Future[tuple[int, int]]]) -> None:
        pending.append(self._producer.append(self._events_topic, event))

    def schedule_retry(
        self, record: IngestRecord, message_id: str, attempt: int, delay_s: float,
        pending: list[asyncio.Future[tuple[int, int]]],
    ) -> None:
        """Park the record on the delay tier that fits ``delay_s``; the tier's agent puts it
        back on the ingest topic when due. Nothing waits meanwhile."""
        due_ms = int((time.time() + delay_s) * 1000)
        headers = [(k, v) for k, v in record.headers.items()
                   if k not in ("ios-attempt", "ios-retry-at", "ios-message-id")]
        headers += [
            ("ios-attempt", str(attempt).encode()),
            ("ios-retry-at", str(due_ms).encode()),
            ("ios-message-id", message_id.encode()),
        ]
        tier = retry_tier_for(delay_s).name(self._prefix)
        pending.append(self._producer.produce(tier, record.key, record.value,
                                              tracing.inject(headers)))

    def pause_integration(
        self, view: IntegrationView, message_id: str, failure: Failure, causation_id: str | None,
        pending: list[asyncio.Future[tuple[int, int]]],
    ) -> None:
        """FAIL_FAST: stop the integration. This worker treats it as paused at once; the
        ``integration.paused`` event (reason FAIL_FAST, the failed message and its error) is
        what the projection, the API and an alert engine see. Appended once per worker
        however many messages fail together; more (from other workers) are harmless."""
        event = Event(
            type=t.INTEGRATION_PAUSED, tenant=view.tenant, aggregate_id=view.id,
            data={"id": view.id, "reason": "FAIL_FAST", "messageId": message_id,
                  "code": failure.code, "message": failure.message[:1000],
                  "changedBy": "worker"},
            causation_id=causation_id, correlation_id=message_id,
        )
        if not self._catalog.pause_locally(view.tenant, view.id, event.occurred_at_ms):
            return
        log.error("integration %s of tenant %s paused by FAIL_FAST: message %s failed at %s "
                  "with %s", view.id, view.tenant, message_id, failure.stage, failure.code)
        pending.append(self._producer.append(self._config_topic, event))

    def dead_letter(
        self, record: IngestRecord, message_id: str, failure: Failure,
        pending: list[asyncio.Future[tuple[int, int]]],
    ) -> None:
        headers = [(k, v) for k, v in record.headers.items() if not k.startswith("ios-dlq-")]
        headers += [
            ("ios-dlq-code", failure.code.encode()),
            ("ios-dlq-message", failure.message[:1000].encode()),
            ("ios-dlq-stage", failure.stage.encode()),
            ("ios-message-id", message_id.encode()),
        ]
        pending.append(self._producer.produce(self._dlq_topic, record.key, record.value,
                                              tracing.inject(headers)))


class _MessageRun:
    """One message's way through the pipeline, emitting an event at each step."""

    def __init__(
        self, pipeline: Pipeline, record: IngestRecord,
        pending: list[asyncio.Future[tuple[int, int]]],
    ) -> None:
        self.p = pipeline
        self.record = record
        self.pending = pending
        self.message_id = record.message_id
        tenant = record.header("ios-tenant") or "unknown"
        self.integration_id = record.header("ios-integration")
        self.tenant = tenant
        self.traceparent = record.header("traceparent")
        self.last_event_id: str | None = None
        # Metric labels: the integration's once it is known to exist (bounded label sets)
        self.labels = ("unknown", "unknown")

    def _emit(self, type_: str, data: dict[str, Any]) -> None:
        event = Event(
            type=type_, tenant=self.tenant, aggregate_id=self.message_id,
            data={"messageId": self.message_id, **data},
            causation_id=self.last_event_id, correlation_id=self.message_id,
            traceparent=self.traceparent,
        )
        self.last_event_id = event.event_id
        self.p.emit(event, self.pending)
        metrics.count_message_event(type_, *self.labels, data.get("stage", ""))

    def _dead_letter(self, failure: Failure) -> None:
        self._emit(t.MESSAGE_DEAD_LETTERED, {
            "integrationId": self.integration_id, "stage": failure.stage, "code": failure.code,
            "message": failure.message, "dlqTopic": self.p._dlq_topic,
        })
        self.p.dead_letter(self.record, self.message_id, failure, self.pending)

    def _park(self, reason: str, failure: Failure) -> None:
        """Hold the message, neither delivered nor dead-lettered, for when its integration
        runs again; its payload stays in its ``message.received`` event."""
        self._emit(t.MESSAGE_PARKED, {
            "integrationId": self.integration_id, "reason": reason, "code": failure.code,
            "message": failure.message[:2000],
        })

    def _failed(self, attempt: int, failure: Failure) -> None:
        self._emit(t.MESSAGE_FAILED, {
            "integrationId": self.integration_id, "attempt": attempt, "stage": failure.stage,
            "errorClass": "RETRYABLE" if failure.retryable else "PERMANENT",
            "code": failure.code,
            "message": _with_excerpt(failure)[:2000],
        })

    async def run(self) -> None:
        """Process the message in its span, a child of the context its record carries (the
        API's produce, or a retry tier's release), with its ids bound to every log line."""
        record = self.record
        parent, attributes = None, None
        if tracing.enabled():  # nothing to build for a span nobody records
            parent = tracing.extract(record.headers)
            attributes = {
                "ios.tenant": self.tenant, "ios.integration": self.integration_id or "",
                "ios.message.id": self.message_id, "ios.attempt": record.attempt,
                "messaging.system": "kafka", "messaging.destination.name": record.topic,
                "messaging.kafka.partition": record.partition,
                "messaging.kafka.offset": record.offset,
            }
        with timed("pipeline.message", metrics.STAGE_SECONDS, ("message",), parent=parent,
                   kind=SpanKind.CONSUMER, attributes=attributes) as span, \
                logs.bound(tenant=self.tenant, integration=self.integration_id,
                           message_id=self.message_id,
                           # tracing off: the propagated trace still names the lines
                           trace_id=None if parent is not None
                           else tracing.trace_id_of(self.traceparent)):
            if span.is_recording():  # the message's events name this pass's span
                self.traceparent = tracing.current_traceparent()
            await self._run_guarded()

    async def _run_guarded(self) -> None:
        """The read-model database being unreachable is the platform's fault, not the
        message's: wait for it (holding this key's order) rather than dead-letter. Anything
        else unexpected dead-letters this message only."""
        wait = FIRST_BACKOFF_S
        while True:
            try:
                await self._run()
                return
            except OperationalError as exc:
                log.warning("read models unavailable (%s); retrying message %s in %.1fs",
                            type(exc.orig).__name__, self.message_id, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, MAX_DB_WAIT_S)
            except Exception as exc:  # a bad record must never kill the worker
                log.exception("unexpected error on message %s", self.message_id)
                self._dead_letter(Failure("pipeline", "INTERNAL_ERROR", repr(exc)[:500],
                                          False))
                return

    async def _run(self) -> None:
        if not self.integration_id or self.tenant == "unknown":
            self._dead_letter(Failure("ingest", "MISSING_ROUTING",
                                      "record lacks ios-tenant or ios-integration header", False))
            return
        found, view = self.p._catalog.cached(self.tenant, self.integration_id)
        if not found:  # a database read: off the event loop
            view = await asyncio.to_thread(self.p._catalog.lookup, self.tenant,
                                           self.integration_id)
        if view is None:
            self._dead_letter(Failure("ingest", "UNKNOWN_INTEGRATION",
                                      f"integration {self.integration_id} not found", False))
            return
        self.labels = (view.tenant, view.id)
        source_error = self.record.header("ios-source-error")
        if source_error:  # the source could not parse this record (e.g. a malformed CSV row)
            self._dead_letter(Failure("ingest", "SOURCE_RECORD_MALFORMED", source_error, False))
            return
        content_type = self.record.header("ios-content-type") or "application/json"
        is_json = media_type(content_type)[0] in JSON_TYPES
        if is_json:
            try:
                payload = json.loads(self.record.value)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                self._dead_letter(Failure("ingest", "MALFORMED_JSON", f"not JSON: {exc}", False))
                return
            payload_json = json.dumps(payload, ensure_ascii=False)
        else:  # decoded by the flow against its schema; kept as text in the event
            payload = None
            payload_json = json.dumps(self.record.value.decode("utf-8", "replace"))
        replayed = self.record.header("ios-replay-id") is not None
        if self.record.attempt == 1 and not replayed:  # a retry or replay: already received
            self._emit(t.MESSAGE_RECEIVED, {
                "integrationId": view.id,
                "key": self.record.key.decode("utf-8", "replace") if self.record.key else None,
                "payloadJson": payload_json, "contentType": content_type,
                "source": self.record.header("ios-source") or "kafka",
            })
        if await self._over_quota(replayed):
            return
        if view.status != "ACTIVE":
            self._park("INTEGRATION_PAUSED", _PAUSED)
            return
        raw = None if is_json else self.record.value
        result = await self._run_flow(view, payload, raw, content_type)
        if result is None:
            return
        self._emit(t.MESSAGE_TRANSFORMED, {
            "integrationId": view.id, "outputJson": json.dumps(result.output, ensure_ascii=False),
            "durationUs": result.transform_us,
        })
        await self._deliver(view, result)

    async def _over_quota(self, replayed: bool) -> bool:
        """Park a source's message while its tenant is over its monthly quota, to be sent
        again when the quota allows (engine/quota_release.py). Only a source's first pass
        is checked: HTTP messages were checked when the API accepted them (it answers 429
        instead), retries and replays were counted when first received, and a release sends
        only as many as the quota has room for."""
        first_pass = self.record.attempt == 1 and not replayed
        if (self.p._quota is None or not first_pass
                or self.record.header("ios-source") == "http"):
            return False
        refused = await self.p._quota.admit(self.tenant)
        if refused is None:
            return False
        self._park("QUOTA_EXCEEDED", Failure(
            "ingest", "QUOTA_EXCEEDED", f"the tenant's monthly quota of {refused.limit} "
            f"messages is used up ({refused.used}); parked until the quota allows", False))
        return True

    async def _run_flow(self, view: IntegrationView, payload: Any, raw: bytes | None,
                        content_type: str) -> FlowResult | None:
        """Run the flow once; a failure that may pass later (a lookup source that is down)
        is retried through the delay tiers like a delivery.

        A flow that looks tables up may wait on their sources, so it runs on a thread: the
        event loop keeps serving other messages meanwhile."""
        context = self.p.context_for(view)
        started_ns = time.time_ns()
        if "$lookup" in (view.flow.expression or ""):
            result = await asyncio.to_thread(run_flow, view.flow, payload, context,
                                             raw=raw, content_type=content_type)
        else:
            result = run_flow(view.flow, payload, context, raw=raw, content_type=content_type)
        _record_steps(result.steps, started_ns)
        if result.status == "SUCCESS":
            return result
        first = result.errors[0]
        self._attempt_failed(view, Failure(
            first["stage"], first["code"], json.dumps(result.errors, ensure_ascii=False)[:2000],
            result.retryable))
        return None

    async def _deliver(self, view: IntegrationView, result: FlowResult) -> None:
        output = result.output
        if output is None:
            self._emit(t.MESSAGE_DELIVERED, {"integrationId": view.id, "attempt": 0,
                                             "target": "none",
                                             "detail": "filtered: the expression gave no value"})
            return
        if view.target is None:
            self._end(view, 1, Failure("deliver", "TARGET_MISSING",
                                       "the integration has no (existing) target connector", False))
            return
        message = OutboundMessage(
            message_id=self.message_id, idempotency_key=self.message_id, tenant=self.tenant,
            integration_id=view.id,
            key=self.record.key.decode("utf-8", "replace") if self.record.key else None,
            payload=output, content_type=result.content_type, body=result.body,
        )
        target = view.target
        up = metrics.CONNECTOR_UP.labels(view.tenant, target.connector_id,
                                         target.connector_type)
        with timed("pipeline.deliver", metrics.STAGE_SECONDS, ("deliver",), attributes={
                "ios.attempt": self.record.attempt,
                "ios.connector.id": target.connector_id}) as span:
            try:
                connector = await self.p._targets.get(target)
                delivery = await connector.write(message)
            except ConnectorError as exc:
                tracing.mark_error(span, exc.code, exc.message)
                # reached, but refused: the connector is up; timeouts, refusals, 5xx: down
                up.set(0 if exc.retryable else 1)
                self._attempt_failed(view, Failure("deliver", exc.code, exc.message,
                                                   exc.retryable, exc.excerpt, exc.retry_after))
                return
            except NotImplementedError as exc:
                tracing.mark_error(span, "TARGET_UNSUPPORTED", str(exc))
                self._attempt_failed(view, Failure("deliver", "TARGET_UNSUPPORTED", str(exc),
                                                   False))
                return
            up.set(1)
            self._emit(t.MESSAGE_DELIVERED, {"integrationId": view.id,
                                             "attempt": self.record.attempt,
                                             "target": delivery.target,
                                             "detail": delivery.detail})

    def _attempt_failed(self, view: IntegrationView, failure: Failure) -> None:
        """Retry later through a delay tier, or end here, as the error strategy says."""
        attempt = self.record.attempt
        if not failure.retryable or attempt >= view.strategy.attempts:
            self._end(view, attempt, failure)
            return
        self._failed(attempt, failure)
        delay = view.strategy.delay_before(attempt + 1, failure.retry_after)
        log.info("attempt %d failed at %s with %s; attempt %d in %.1f s", attempt,
                 failure.stage, failure.code, attempt + 1, delay)
        self.p.schedule_retry(self.record, self.message_id, attempt + 1, delay, self.pending)

    def _end(self, view: IntegrationView, attempt: int, failure: Failure) -> None:
        """The last failed attempt: record it, then dead-letter if the strategy says so, or
        under FAIL_FAST park the message and stop the integration."""
        self._failed(attempt, failure)
        if view.strategy.fail_fast:
            self._park("FAIL_FAST", failure)
            self.p.pause_integration(view, self.message_id, failure, self.last_event_id,
                                     self.pending)
        elif view.strategy.dead_letter:
            self._dead_letter(failure)


def _record_steps(steps: list[StepResult], started_ns: int) -> None:
    """The flow's steps (validate, transform, validateOutput) as spans and stage latencies.

    The flow is pure and may run on a thread, so it is not traced from inside: its steps are
    recorded afterwards from the durations it measured, laid end to end from its start."""
    at_ns = started_ns
    for step in steps:  # a skipped step (no schema to validate against) is traced as such
        duration_ns = int(step.duration_ms * 1_000_000)
        if step.status != "SKIPPED":
            metrics.STAGE_SECONDS.labels(step.name).observe(duration_ns / 1e9)
        tracing.record_span(f"pipeline.{step.name}", at_ns, at_ns + duration_ns,
                            {"ios.step.status": step.status},
                            error=step.errors[0].get("code") if step.errors else None)
        at_ns += duration_ns
