"""The one envelope every event travels in."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from integrationos.topics.schemas import CURRENT_VERSION


@dataclass(frozen=True)
class Event:
    """A fact, as written to the log. ``data`` follows the type's Avro schema."""

    type: str
    tenant: str
    aggregate_id: str
    data: dict[str, Any]
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
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
