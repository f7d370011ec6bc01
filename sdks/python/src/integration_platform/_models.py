"""Typed responses: dataclasses with snake_case attributes built from the API's camelCase
JSON.

A field the API adds later lands in ``extra`` (keyed as the API spells it) instead of
failing, so an older SDK keeps working against a newer platform. Nested objects stay plain
dicts and lists: payloads are the user's own data and must come back exactly as sent.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from typing import Any, ClassVar, Optional, TypeVar

M = TypeVar("M", bound="Model")

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(name: str) -> str:
    """``latencyMs`` -> ``latency_ms``; ``id`` stays ``id``; a Python keyword gets a
    trailing underscore (``from`` -> ``from_``), as the SDK's arguments spell it, so it can
    be an attribute."""
    attribute = _CAMEL_BOUNDARY.sub("_", name).lower()
    return attribute + "_" if keyword.iskeyword(attribute) else attribute


@dataclasses.dataclass
class Model:
    """Base of every response type: ``from_json`` maps known fields, keeps the rest."""

    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    _skip: ClassVar[frozenset[str]] = frozenset({"extra"})

    @classmethod
    def from_json(cls: type[M], data: dict[str, Any]) -> M:
        known = {f.name for f in dataclasses.fields(cls)} - cls._skip
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            attribute = snake_case(key)
            if attribute in known:
                kwargs[attribute] = value
            else:
                extra[key] = value
        return cls(extra=extra, **kwargs)


@dataclasses.dataclass
class Connector(Model):
    id: str = ""
    name: str = ""
    type: str = ""
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    credentials: Optional[dict[str, Any]] = None
    has_credentials: bool = False
    version: int = 0
    created_at: Optional[str] = None
    updated_at: Optional[str] = None


@dataclasses.dataclass
class HealthReport(Model):
    """``connectors.test``: ``status`` is ``UP`` or ``DOWN`` (never an exception)."""

    status: str = ""
    latency_ms: int = 0
    detail: str = ""


@dataclasses.dataclass
class Transformation(Model):
    id: str = ""
    name: str = ""
    expression: str = ""
    source_schema: Any = None
    target_schema: Any = None
    version: int = 0
    created_at: Optional[str] = None
    updated_at: Optional[str] = None


@dataclasses.dataclass
class PreviewResult(Model):
    result: Any = None
    duration_ms: float = 0.0
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    validation: Any = None


@dataclasses.dataclass
class Integration(Model):
    id: str = ""
    name: str = ""
    environment: str = ""
    status: str = ""
    source_connector_id: str = ""
    target_connector_id: str = ""
    transformation_id: Optional[str] = None
    transformation_version: Optional[int] = None
    expression: Optional[str] = None
    error_strategy: str = ""
    backoff: Optional[dict[str, Any]] = None
    version: int = 0
    created_at: Optional[str] = None
    updated_at: Optional[str] = None


@dataclasses.dataclass
class IntegrationStatus(Model):
    integration_id: str = ""
    status: str = ""
    received: int = 0
    transformed: int = 0
    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    discarded: int = 0
    parked: int = 0
    total: int = 0
    paused_reason: Optional[dict[str, Any]] = None


@dataclasses.dataclass
class SandboxResult(Model):
    """``status`` is ``SUCCESS`` or ``FAILED``; ``output_payload`` the transformed payload."""

    status: str = ""
    duration_ms: float = 0.0
    output_payload: Any = None
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class MessageAccepted(Model):
    """``messages.send``: in the log, not yet processed (follow it with ``messages.get``)."""

    message_id: str = ""
    status: str = ""


@dataclasses.dataclass
class StreamResult(Model):
    """``messages.send_stream``: every accepted message id, in the order of the input."""

    message_ids: list[str] = dataclasses.field(default_factory=list)
    count: int = 0
    requests: int = 0


@dataclasses.dataclass
class Message(Model):
    id: str = ""
    integration_id: str = ""
    status: str = ""
    attempts: int = 0
    received_at: Optional[str] = None
    updated_at: Optional[str] = None
    payload: Any = None
    output: Any = None
    last_error: Optional[dict[str, Any]] = None
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class MessageTrace(Model):
    """``messages.trace``: the message's lineage. ``events`` in lifecycle order, each
    ``{type, occurredAt, sincePreviousMs, traceId, spanId, detail}`` (``detail`` by type:
    the transform's output, each attempt's error, the dead letter, the replay);
    ``trace_ids`` every OpenTelemetry trace they belong to (a replay has its own)."""

    message_id: str = ""
    integration_id: str = ""
    status: str = ""
    trace_id: Optional[str] = None
    trace_ids: list[str] = dataclasses.field(default_factory=list)
    total_duration_ms: int = 0
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def event_types(self) -> list[str]:
        """``["message.received", "message.transformed", ...]``, in order."""
        return [event["type"] for event in self.events]


@dataclasses.dataclass
class IntegrationMetrics(Model):
    """``integrations.metrics``: the messages received in the last ``window`` (``from_`` to
    ``to``). ``throughput`` has the counts (``received``, ``delivered``, ``deadLettered``,
    ``failed``, ``parked``, ``inFlight``) and per-minute rates; ``error_rate`` is 0..1, or
    ``None`` while nothing finished; ``latency_ms`` has ``{count, p50, p95, p99}`` for
    ``receivedToTransformed``, ``transformedToDelivered`` and ``endToEnd``, from the
    window's newest ``sample_limit`` messages (``sampled_messages`` used)."""

    integration_id: str = ""
    window: str = ""
    from_: Optional[str] = None
    to: Optional[str] = None
    throughput: dict[str, Any] = dataclasses.field(default_factory=dict)
    error_rate: Optional[float] = None
    latency_ms: dict[str, Any] = dataclasses.field(default_factory=dict)
    sampled_messages: int = 0
    sample_limit: int = 0


@dataclasses.dataclass
class AlertRule(Model):
    """An alert rule. ``webhook_secret`` (the key of its webhooks' ``X-Signature``) is set
    only on the object ``alerts.rules.create`` returns: the platform shows it that once and
    never again (not in ``get``, ``list`` or ``update``). It is left out of ``repr``."""

    id: str = ""
    name: str = ""
    severity: str = ""
    enabled: bool = True
    condition: dict[str, Any] = dataclasses.field(default_factory=dict)
    channels: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    repeat_interval_seconds: int = 0
    version: int = 0
    created_at: Optional[str] = None
    updated_at: Optional[str] = None
    webhook_secret: Optional[str] = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass
class Alert(Model):
    """A firing (``state`` ``FIRING``) or past (``RESOLVED``) alert of a rule.
    ``notifications`` (``{kind, channel, outcome, attempts, error, at}``) is filled by
    ``alerts.get`` only; listed alerts leave it empty."""

    id: str = ""
    rule_id: str = ""
    rule_name: str = ""
    severity: str = ""
    state: str = ""
    condition_type: str = ""
    integration_id: Optional[str] = None
    connector_id: Optional[str] = None
    value: Optional[float] = None
    threshold: Optional[float] = None
    summary: str = ""
    resolved_summary: Optional[str] = None
    fired_at: Optional[str] = None
    resolved_at: Optional[str] = None
    last_notified_at: Optional[str] = None
    notifications: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class DlqEntry(Model):
    message_id: str = ""
    integration_id: str = ""
    code: Optional[str] = None
    message: Optional[str] = None
    stage: Optional[str] = None
    attempts: int = 0
    dead_lettered_at: Optional[str] = None


@dataclasses.dataclass
class Replay(Model):
    replay_id: str = ""
    kind: str = ""
    integration_id: Optional[str] = None
    status: str = ""
    total: int = 0
    sent: int = 0
    skipped: int = 0
    outcome: dict[str, Any] = dataclasses.field(default_factory=dict)
    requested_at: Optional[str] = None
    completed_at: Optional[str] = None
    error: Optional[str] = None


@dataclasses.dataclass
class Usage(Model):
    plan: str = ""
    month: str = ""
    messages: dict[str, Any] = dataclasses.field(default_factory=dict)
    requests_per_minute: dict[str, Any] = dataclasses.field(default_factory=dict)
    connectors: dict[str, Any] = dataclasses.field(default_factory=dict)
    retention_days: Optional[int] = None


@dataclasses.dataclass
class Record(Model):
    """Any other object of the API (histories, versions, promotions, api keys...): its
    fields are in ``extra`` (as the API spells them) and readable as attributes in
    snake_case, so new endpoints need no new class to be usable."""

    def __getattr__(self, name: str) -> Any:
        for key, value in self.__dict__.get("extra", {}).items():
            if snake_case(key) == name:
                return value
        raise AttributeError(name)

    def __getitem__(self, key: str) -> Any:
        return self.extra[key]

    def __repr__(self) -> str:
        return f"Record({self.extra!r})"
