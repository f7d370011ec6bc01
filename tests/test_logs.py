"""JSON log lines: every field, the trace of the span they were written in, bound ids."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from integrationos import logs, tracing


def _line(record_message: str, exc: bool = False) -> dict:
    record = logging.LogRecord("integrationos.engine.pipeline", logging.WARNING, __file__, 1,
                               record_message, (), None)
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys

            record.exc_info = sys.exc_info()
    return json.loads(logs.JsonFormatter().format(record))


def test_a_line_outside_any_span_has_the_base_fields_only():
    line = _line("hello")
    assert set(line) == {"timestamp", "level", "logger", "message"}
    assert line["level"] == "WARNING" and line["message"] == "hello"
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]


def test_a_line_in_a_span_names_it_and_the_bound_ids():
    tracing.use(TracerProvider())
    try:
        with tracing.span("pipeline.message") as span, logs.bound(
                tenant="acme", integration="int_1", message_id=None):
            line = _line("attempt 1 failed", exc=True)
        context = span.get_span_context()
    finally:
        tracing.use(None)
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert line["tenant"] == "acme" and line["integration"] == "int_1"
    assert "message_id" not in line  # None is not bound
    assert "RuntimeError: boom" in line["exception"]
    assert "tenant" not in _line("after the block")


def test_the_format_is_chosen_by_ios_log_format():
    assert logs.dict_config("info", {}) is None  # text: the servers' own
    config = logs.dict_config("info", {"IOS_LOG_FORMAT": "JSON"})
    assert config["root"]["level"] == "INFO"
    with pytest.raises(ValueError, match="IOS_LOG_FORMAT"):
        logs.log_format({"IOS_LOG_FORMAT": "xml"})
