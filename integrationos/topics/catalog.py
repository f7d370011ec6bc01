"""Every topic the platform owns: name, partitions, retention, what its records are.

Topics are declared here and created from this list at start-up
(`integrationos.topics.admin.ensure_topics`); the broker never auto-creates them.
The prefix (``IOS_TOPIC_PREFIX``) lets several platforms, or test runs, share a broker.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 60 * 60 * 1000
LONGEST_RETENTION_DAYS = 90
"""The longest retention of any plan (integrationos/plans.py caps Enterprise's "custom" at
it): message events and dead letters are kept this long, so the read models purged at each
tenant's retention can always be rebuilt from the log."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic declaration; ``retention_ms=-1`` keeps records forever."""

    suffix: str
    partitions: int
    retention_ms: int
    record: str
    compacted: bool = False

    def name(self, prefix: str) -> str:
        return f"{prefix}.{self.suffix}"


CONFIG = TopicSpec(
    suffix="config.v1",
    partitions=1,
    retention_ms=-1,
    record=(
        "Avro envelope (topics/schemas.py) of tenant, connector, transformation and "
        "integration events; key = aggregate id. One partition: configuration changes are "
        "few and a single total order keeps references (integration -> connector) valid. "
        "The source of truth for every configuration table."
    ),
)

INGEST = TopicSpec(
    suffix="ingest.v1",
    partitions=6,
    retention_ms=7 * DAY_MS,
    record=(
        "Raw message payload as UTF-8 JSON; key = ordering key (messages with the same key "
        "are processed in order); headers: ios-tenant, ios-integration (required), "
        "ios-message-id (optional, derived from partition and offset otherwise), traceparent."
    ),
)

MESSAGE_EVENTS = TopicSpec(
    suffix="message-events.v1",
    partitions=6,
    retention_ms=LONGEST_RETENTION_DAYS * DAY_MS,
    record=(
        "Avro envelope of MessageReceived/Transformed/Delivered/Failed/DeadLettered/"
        "Discarded/Parked; "
        "key = message id, so one message's events stay in order."
    ),
)

DEAD_LETTER = TopicSpec(
    suffix="dlq.v1",
    partitions=6,
    retention_ms=LONGEST_RETENTION_DAYS * DAY_MS,
    record=(
        "The original ingest record (key, value, headers) plus headers ios-dlq-code, "
        "ios-dlq-message, ios-dlq-stage, ios-message-id."
    ),
)

SOURCE_CHECKPOINTS = TopicSpec(
    suffix="source-checkpoints.v1",
    partitions=3,
    retention_ms=-1,
    compacted=True,
    record=(
        "Avro envelope of source.checkpointed; key = integration id. Compacted: only the "
        "latest checkpoint of each pull-based source matters, and it is kept forever."
    ),
)

REPLAYS = TopicSpec(
    suffix="replays.v1",
    partitions=1,
    retention_ms=-1,
    record=(
        "Avro envelope of message.replay_requested, replay.progressed and replay.completed; "
        "key = replay id. One partition: replays run one after another, so a message two "
        "replays select is sent by the first only. Kept forever: replays are an audit trail."
    ),
)

ALERTS = TopicSpec(
    suffix="alerts.v1",
    partitions=1,
    retention_ms=LONGEST_RETENTION_DAYS * DAY_MS,
    record=(
        "Avro envelope of alert.fired, alert.resolved and alert.notified; key = rule id. "
        "One partition: the worker assigned it is the one that evaluates alert rules "
        "(engine/alerts.py), so several workers never fire the same alert twice."
    ),
)

RETRY_TIER_SECONDS = (1, 5, 30, 300)
"""Delay tiers of non-blocking retries: a retry waits in the smallest tier not shorter than
its backoff (the last tier for longer ones), so later messages never wait behind it."""


def _retry_tier(seconds: int) -> TopicSpec:
    return TopicSpec(
        suffix=f"retry-{seconds}s.v1",
        partitions=6,
        retention_ms=7 * DAY_MS,
        record=(
            f"A message waiting up to {seconds} s for its next attempt: the ingest record "
            "(key, value, headers) with ios-attempt (the next attempt's number) and "
            "ios-retry-at (epoch ms when it is due); put back on the ingest topic when due."
        ),
    )


RETRY_TIERS: tuple[TopicSpec, ...] = tuple(_retry_tier(s) for s in RETRY_TIER_SECONDS)


def retry_tier_for(delay_s: float) -> TopicSpec:
    for seconds, spec in zip(RETRY_TIER_SECONDS, RETRY_TIERS, strict=True):
        if delay_s <= seconds:
            return spec
    return RETRY_TIERS[-1]


ALL_TOPICS: tuple[TopicSpec, ...] = (CONFIG, INGEST, MESSAGE_EVENTS, DEAD_LETTER,
                                     SOURCE_CHECKPOINTS, REPLAYS, ALERTS, *RETRY_TIERS)

PROJECTED_TOPICS: tuple[TopicSpec, ...] = (CONFIG, MESSAGE_EVENTS, SOURCE_CHECKPOINTS, REPLAYS,
                                           ALERTS)
"""The topics whose events the read models are built from (and rebuilt from)."""
