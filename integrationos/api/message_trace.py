"""A message's lineage (``GET /v1/messages/{id}/trace``): every event of the message in
order, what each one says (the output of the transform, each attempt's error, where it was
dead-lettered, which replay sent it again), the time between consecutive events, and the
trace id of the OpenTelemetry trace the events belong to.

Everything comes from the ``message_events`` projection, itself rebuilt from the
message-events topic, so the log stays the source of truth: each event's trace id is the
``traceparent`` of its envelope. A replayed pass may belong to another trace (the replay's);
``traceIds`` lists every trace, ``traceId`` is the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Row

from integrationos.api.serializers import iso
from integrationos.topics import event_types as t
from integrationos.tracing import trace_id_of


def _error(data: dict[str, Any]) -> dict[str, Any]:
    return {"code": data.get("code"), "message": data.get("message")}


def _output(data: dict[str, Any]) -> Any:
    text = data.get("outputJson")
    return None if text is None else json.loads(text)


_DETAILS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    t.MESSAGE_RECEIVED: lambda d: {"source": d.get("source"), "key": d.get("key"),
                                   "contentType": d.get("contentType")},
    t.MESSAGE_TRANSFORMED: lambda d: {"output": _output(d), "transformUs": d.get("durationUs")},
    t.MESSAGE_FAILED: lambda d: {"attempt": d.get("attempt"), "stage": d.get("stage"),
                                 "errorClass": d.get("errorClass"), "error": _error(d)},
    t.MESSAGE_DELIVERED: lambda d: {"attempt": d.get("attempt"), "target": d.get("target"),
                                    "result": d.get("detail")},
    t.MESSAGE_DEAD_LETTERED: lambda d: {"stage": d.get("stage"), "error": _error(d),
                                        "dlqTopic": d.get("dlqTopic")},
    t.MESSAGE_PARKED: lambda d: {"reason": d.get("reason"), "error": _error(d)},
    t.MESSAGE_REPLAYED: lambda d: {"replayId": d.get("replayId"),
                                   "payloadEdited": d.get("payloadJson") is not None},
    t.MESSAGE_DISCARDED: lambda d: {"reason": d.get("reason")},
}


def _span_id_of(traceparent: str | None) -> str | None:
    return traceparent.split("-")[2] if trace_id_of(traceparent) else None  # type: ignore[union-attr]


def lineage(message: Row, events: list[Row]) -> dict[str, Any]:
    """``events`` already in lifecycle order."""
    entries: list[dict[str, Any]] = []
    trace_ids: list[str] = []
    previous: int | None = None
    for event in events:
        data = json.loads(event.data_json)
        trace_id = trace_id_of(event.traceparent)
        if trace_id is not None and trace_id not in trace_ids:
            trace_ids.append(trace_id)
        detail = _DETAILS.get(event.event_type)
        entries.append({
            "type": event.event_type,
            "occurredAt": iso(event.occurred_at),
            "sincePreviousMs": None if previous is None else event.occurred_at - previous,
            "traceId": trace_id,
            "spanId": _span_id_of(event.traceparent),
            "detail": detail(data) if detail else {},
        })
        previous = event.occurred_at
    return {
        "messageId": message.id,
        "integrationId": message.integration_id,
        "status": message.status,
        "traceId": trace_ids[0] if trace_ids else None,
        "traceIds": trace_ids,
        "totalDurationMs": events[-1].occurred_at - events[0].occurred_at if events else 0,
        "events": entries,
    }
