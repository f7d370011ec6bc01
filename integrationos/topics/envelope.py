"""The one envelope every event travels in."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from integrationos.topics.schemas import CURRENT_VERSION

# Event ids need to be unique, not secret: 128 bits from a generator seeded from the OS
# once per process (and again in a forked child) cost a seventh of ``uuid4``, which asks the
# kernel for every id (6 % of a loaded worker's samples: docs/performance.md). A private
# generator, so nothing that seeds the ``random`` module can make ids repeat.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def new_event_id() -> str:
    """32 random hex digits (the shape of a UUID's hex form)."""
    return f"{_ids.getrandbits(128):032x}"


@dataclass(frozen=True)
class Event:
    """A fact, as written to the log. ``data`` follows the type's Avro schema."""

    type: str
    tenant: str
    aggregate_id: str
    data: dict[str, Any]
    event_id: str = field(default_factory=new_event_id)
    schema_version: int = 0
    occurred_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    causation_id: str | None = None
    correlation_id: str | None = None
    traceparent: str | None = None

    def __post_init__(self) -> None:
        if self.type not in CURRENT_VERSION:
            raise ValueError(f"unknown event type {self.type!r}")
        if self.schema_version == 0:
            object.__setattr__(self, "schema_version", CURRENT_VERSION[self.type])

    def caused(self, type_: str, aggregate_id: str, data: dict[str, Any]) -> Event:
        """A follow-up event of the same tenant, chained by causation and correlation ids."""
        return Event(
            type=type_,
            tenant=self.tenant,
            aggregate_id=aggregate_id,
            data=data,
            causation_id=self.event_id,
            correlation_id=self.correlation_id or self.event_id,
            traceparent=self.traceparent,
        )
