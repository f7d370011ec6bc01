"""Structured logs: one JSON object per line, with the trace and the tenant in each.

``IOS_LOG_FORMAT=json`` makes the API and the workers write lines like
``{"timestamp": "2026-12-05T02:10:00.123Z", "level": "WARNING", "logger": "...",
"message": "...", "trace_id": "...", "span_id": "...", "tenant": "acme",
"integration": "int_1", "message_id": "msg_..."}``: ``trace_id``/``span_id`` when the line is
written inside a span (or a propagated trace context), ``tenant``/``integration``/
``message_id`` when the code bound them (``bound``). The default, ``text``, keeps the
human-readable lines a developer reads in the terminal of ``make up``; a deployment that
ships logs to a collector sets ``json`` (docker-compose.yml does).

What is logged is the platform's business, never a payload: no module logs a message body
or a credential at INFO or above (payloads travel in events, secrets only sealed).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from integrationos import tracing

FORMATS = ("text", "json")
_FIELDS: ContextVar[Mapping[str, str]] = ContextVar(
    "ios_log_fields", default=MappingProxyType({}))


def log_format(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    chosen = env.get("IOS_LOG_FORMAT", "").strip().lower() or "text"
    if chosen not in FORMATS:
        raise ValueError(f"IOS_LOG_FORMAT must be one of {', '.join(FORMATS)}, got {chosen!r}")
    return chosen


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Add ``fields`` (the ones not None) to every line logged inside the block."""
    token = _FIELDS.set({**_FIELDS.get(), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def bind(**fields: str | None) -> None:
    """Like ``bound``, until the current task ends (an API request runs in its own task)."""
    _FIELDS.set({**_FIELDS.get(), **{k: v for k, v in fields.items() if v}})


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = tracing.current_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        line.update(_FIELDS.get())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def dict_config(level: str, env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """A ``logging.config.dictConfig`` for JSON lines on standard error at ``level``, or
    None for the text format (each server keeps its own: Faust's, uvicorn's)."""
    if log_format(env) != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }
