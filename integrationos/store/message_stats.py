"""What the message projections say about a window of traffic: outcome counts, error
rate, and latency percentiles by stage. One computation serves the metrics endpoint and
the error-rate alert, so the two never disagree.

Counts are SQL ``COUNT``s, exact for any window. Latencies need each message's events:
they are read for the newest ``SAMPLE_LIMIT`` messages of the window only, and the
percentiles are computed here (nearest rank), because SQLite has no percentile function and
a portable SQL formulation would sort the whole window anyway. The response says how many
messages were sampled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, select

from integrationos.store.tables import message_events, messages
from integrationos.topics import event_types as t

SAMPLE_LIMIT = 10_000
ERRORED = ("DEAD_LETTERED", "FAILED")
STAGES = ("receivedToTransformed", "transformedToDelivered", "endToEnd")


@dataclass(frozen=True)
class Counts:
    """Messages received in a window, by what they are now."""

    by_status: dict[str, int]

    @property
    def received(self) -> int:
        return sum(self.by_status.values())

    def of(self, *statuses: str) -> int:
        return sum(self.by_status.get(status, 0) for status in statuses)

    @property
    def errored(self) -> int:
        return self.of(*ERRORED)

    @property
    def finished(self) -> int:
        """Delivered or errored: the messages an error rate is a rate of."""
        return self.of("DELIVERED") + self.errored

    @property
    def error_rate(self) -> float | None:
        """Errored / finished (FAILED includes messages waiting for their next attempt);
        None when nothing finished."""
        return self.errored / self.finished if self.finished else None


@dataclass
class Latencies:
    """Milliseconds each sampled message spent in each stage."""

    samples: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in STAGES})
    sampled: int = 0


def _scope(tenant: str, integration_id: str | None, since_ms: int, until_ms: int) -> list:
    where = [messages.c.tenant_id == tenant, messages.c.received_at >= since_ms,
             messages.c.received_at < until_ms]
    if integration_id is not None:
        where.append(messages.c.integration_id == integration_id)
    return where


def counts(conn: Connection, tenant: str, integration_id: str | None, since_ms: int,
           until_ms: int) -> Counts:
    rows = conn.execute(select(messages.c.status, func.count()).where(
        *_scope(tenant, integration_id, since_ms, until_ms)).group_by(messages.c.status))
    return Counts({status: int(n) for status, n in rows})


def latencies(conn: Connection, tenant: str, integration_id: str | None, since_ms: int,
              until_ms: int, limit: int = SAMPLE_LIMIT) -> Latencies:
    """Stage durations of the newest ``limit`` messages received in the window."""
    newest = (select(messages.c.id).where(*_scope(tenant, integration_id, since_ms, until_ms))
              .order_by(messages.c.received_at.desc()).limit(limit))
    ids = conn.execute(newest).scalars().all()
    result = Latencies(sampled=len(ids))
    firsts: dict[str, dict[str, int]] = {}
    for chunk in _chunks(ids, 900):  # SQLite allows 999 bound parameters by default
        rows = conn.execute(select(
            message_events.c.message_id, message_events.c.event_type,
            func.min(message_events.c.occurred_at)).where(
            message_events.c.message_id.in_(chunk),
            message_events.c.event_type.in_((t.MESSAGE_RECEIVED, t.MESSAGE_TRANSFORMED,
                                             t.MESSAGE_DELIVERED)),
        ).group_by(message_events.c.message_id, message_events.c.event_type))
        for message_id, event_type, at in rows:
            firsts.setdefault(message_id, {})[event_type] = int(at)
    for first in firsts.values():
        received = first.get(t.MESSAGE_RECEIVED)
        transformed = first.get(t.MESSAGE_TRANSFORMED)
        delivered = first.get(t.MESSAGE_DELIVERED)
        if received is not None and transformed is not None:
            result.samples["receivedToTransformed"].append(transformed - received)
        if transformed is not None and delivered is not None:
            result.samples["transformedToDelivered"].append(delivered - transformed)
        if received is not None and delivered is not None:
            result.samples["endToEnd"].append(delivered - received)
    return result


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def percentile(values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile of ``values`` (0 < p <= 100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]
