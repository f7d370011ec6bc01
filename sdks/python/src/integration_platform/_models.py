"""Typed responses: dataclasses with snake_case attributes built from the API's camelCase
JSON.

A field the API adds later lands in ``extra`` (keyed as the API spells it) instead of
failing, so an older SDK keeps working against a newer platform. Nested objects stay plain
dicts and lists: payloads are the user's own data and must come back exactly as sent.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar, Optional, TypeVar

M = TypeVar("M", bound="Model")

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(name: str) -> str:
    """``latencyMs`` -> ``latency_ms``; ``id`` stays ``id``."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


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
