"""The connector contract: every connector type is one module implementing this.

A type declares its config spec (JSON Schema; the API validates against it and a UI can
render it as a form), which credentials it takes, and which roles it can play. Targets
implement ``write``; sources implement ``poll`` and ``commit`` (pull-based) or are fed by
the ingest endpoint/topic (push-based). The engine only ever talks to this interface.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from integrationos.observe import instrument_connector

Role = Literal["source", "target"]
JsonValue = Any


class ConnectorError(Exception):
    """A failed connector call, classified so the error strategy can act on it.

    ``retryable`` is True for transient faults (timeouts, refused, 5xx, 429) and False for
    permanent ones (auth, other 4xx, bad config). ``excerpt`` is a short, secret-free piece
    of the remote answer, kept for the operator.
    """

    def __init__(self, code: str, message: str, *, retryable: bool, excerpt: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.excerpt = excerpt
        self.retry_after = retry_after  # seconds the remote asked us to wait (Retry-After)


@dataclass(frozen=True)
class HealthReport:
    status: Literal["UP", "DOWN"]
    latency_ms: int
    detail: str


@dataclass(frozen=True)
class OutboundMessage:
    """What a target receives: the transformed payload and the identity of the message.

    ``idempotency_key`` is stable across retries and re-deliveries of the same message, so
    targets can suppress duplicates (HTTP ``Idempotency-Key`` header, Kafka record key).
    ``body`` is the payload already encoded as ``content_type`` (JSON, or XML when the flow
    has an XSD target schema); targets send it as is.
    """

    message_id: str
    idempotency_key: str
    tenant: str
    integration_id: str
    key: str | None
    payload: JsonValue
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    body: bytes | None = None

    def encoded(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SourceRecord:
    """One record read by a source connector.

    ``position`` identifies it in its source for good (e.g. ``topic/partition/offset``):
    the engine derives the message id from it, so a record read twice after a crash keeps
    its idempotency key. ``checkpoint``, for sources that do not keep their own position
    (a SQL cursor, a file listing), is what the engine stores in a ``source.checkpointed``
    event once the record is durable, and gives back to ``restore`` after a restart.
    """

    key: bytes | None
    value: bytes
    position: str
    headers: dict[str, bytes] = field(default_factory=dict)
    checkpoint: str | None = None  # the source's state after this record (opaque text)


@dataclass(frozen=True)
class Delivery:
    """A successful write; ``detail`` says what the target answered (e.g. ``HTTP 201``)."""

    target: str
    detail: str


class Connector(ABC):
    """One configured connection. Instances are reused across messages and closed once."""

    type_name: ClassVar[str]
    display_name: ClassVar[str]
    roles: ClassVar[frozenset[Role]]
    config_spec: ClassVar[dict[str, Any]]
    credentials_spec: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every type's calls are timed, counted and traced (observe.py) without each module
        having to remember to."""
        super().__init_subclass__(**kwargs)
        instrument_connector(cls)

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        self.config = config
        self._credentials = credentials

    @abstractmethod
    async def test(self, timeout: float = 10.0) -> HealthReport:
        """Really connect (and authenticate) within ``timeout`` seconds; never raise."""

    async def write(self, message: OutboundMessage) -> Delivery:
        """Deliver one message; raise ``ConnectorError`` on failure."""
        raise NotImplementedError(f"{self.type_name} cannot be a target")

    async def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        """Read up to ``max_records`` new records, waiting at most ``timeout`` seconds."""
        raise NotImplementedError(f"{self.type_name} cannot be a polled source")

    async def commit(self, records: list[SourceRecord]) -> None:
        """Called once ``records`` are durably in the log (and their checkpoint stored):
        commit consumer offsets, archive or delete consumed files."""
        raise NotImplementedError(f"{self.type_name} cannot be a polled source")

    def restore(self, checkpoint: str | None) -> None:
        """Resume after the last stored checkpoint (None: from the configured start)."""
        return None

    async def close(self) -> None:
        """Release pooled resources."""
        return None
