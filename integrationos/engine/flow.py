"""The pure part of a flow: decode and validate the input, transform it, validate and encode
the output. No I/O beyond what a lookup in the expression does.

Shared by the pipeline (per message) and the API's sandbox and preview, so both show
exactly what the pipeline will do, short of delivering.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from integrationos.engine.functions import EvaluationContext
from integrationos.engine.transform import TransformError, transform
from integrationos.schemas.payloads import decode_payload, encode_output, validate_value
from integrationos.schemas.registry import ResolvedSchema

StepName = Literal["validate", "transform", "validateOutput"]
StepStatus = Literal["OK", "FAILED", "SKIPPED"]


@dataclass(frozen=True)
class FlowDefinition:
    """What a flow needs to process a payload: the expression and the resolved schemas.

    ``notes`` explain a schema that is named but cannot be applied yet (not registered):
    validation is then skipped, not failed, so flows can be built before their schemas.
    ``missing`` names something the flow refers to that the projections lack: every message
    fails with ``TRANSFORMATION_MISSING``.
    """

    expression: str | None
    source: ResolvedSchema | None = None
    target: ResolvedSchema | None = None
    source_note: str | None = None
    target_note: str | None = None
    missing: str | None = None


@dataclass(frozen=True)
class StepResult:
    name: StepName
    status: StepStatus
    duration_ms: float
    errors: list[dict[str, Any]] = field(default_factory=list)
    detail: str | None = None


@dataclass(frozen=True)
class FlowResult:
    status: Literal["SUCCESS", "FAILED"]
    output: Any
    steps: list[StepResult]
    duration_ms: float
    transform_us: int = 0
    body: bytes | None = None
    content_type: str = "application/json"
    retryable: bool = False

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [{"stage": s.name, **e} for s in self.steps for e in s.errors]


def _elapsed_ms(started: int) -> float:
    return round((time.perf_counter_ns() - started) / 1e6, 3)


def _violations(schema: ResolvedSchema, value: Any, code: str) -> list[dict[str, Any]]:
    try:
        found = validate_value(schema, value)
    except Exception as exc:  # a user's schema that cannot be applied: bad $ref, cycles
        return [{"code": "SCHEMA_UNUSABLE", "pointer": "",
                 "message": f"the schema cannot be applied: {type(exc).__name__}"}]
    return [{"code": code, **violation} for violation in found]


def _decode_and_validate(definition: FlowDefinition, payload: Any, raw: bytes | None,
                         content_type: str | None) -> tuple[Any, StepResult]:
    """The input as a JSON value, and the validate step's result."""
    started = time.perf_counter_ns()
    value, errors, checked = payload, [], False
    if raw is not None:
        decoded = decode_payload(raw, content_type, definition.source)
        if decoded.violations:
            errors = [{"code": "DECODE_FAILED", **v} for v in decoded.violations]
            return None, StepResult("validate", "FAILED", _elapsed_ms(started), errors)
        value = decoded.records if decoded.records is not None else decoded.value
        checked = decoded.validated
    if definition.source is None or checked:
        status: StepStatus = "OK" if checked else "SKIPPED"
        return value, StepResult("validate", status, _elapsed_ms(started),
                                 detail=definition.source_note)
    errors = _violations(definition.source, value, "SCHEMA_VIOLATION")
    return value, StepResult("validate", "FAILED" if errors else "OK", _elapsed_ms(started),
                             errors)


def _encode(definition: FlowDefinition, output: Any) -> tuple[bytes | None, str, StepResult]:
    started = time.perf_counter_ns()
    try:
        body, content_type, found = encode_output(definition.target, output)
    except Exception as exc:  # an unusable target schema fails the message, not the worker
        found = [{"pointer": "", "message": f"the target schema cannot be applied: "
                  f"{type(exc).__name__}"}]
        body, content_type = None, "application/json"
    errors = [{"code": "TARGET_SCHEMA_VIOLATION", **v} for v in found]
    if definition.target is None:
        step = StepResult("validateOutput", "SKIPPED", _elapsed_ms(started),
                          detail=definition.target_note)
    else:
        step = StepResult("validateOutput", "FAILED" if errors else "OK",
                          _elapsed_ms(started), errors)
    return (None if errors else body), content_type, step


def run_flow(definition: FlowDefinition, payload: Any = None,
             context: EvaluationContext | None = None, *, raw: bytes | None = None,
             content_type: str | None = None, bindings: dict[str, Any] | None = None,
             ) -> FlowResult:
    """Validate, transform, validate the output; a flow without an expression passes the
    input through. ``raw`` (with its ``content_type``) is decoded first; otherwise
    ``payload`` is the already-decoded JSON value."""
    started = time.perf_counter_ns()
    skipped_transform = StepResult("transform", "SKIPPED", 0.0)
    skipped_output = StepResult("validateOutput", "SKIPPED", 0.0)
    if definition.missing:
        error = {"code": "TRANSFORMATION_MISSING", "message": f"{definition.missing} not found"}
        failed = StepResult("transform", "FAILED", 0.0, [error])
        return FlowResult("FAILED", None, [StepResult("validate", "SKIPPED", 0.0), failed,
                                           skipped_output], _elapsed_ms(started))
    value, validation = _decode_and_validate(definition, payload, raw, content_type)
    if validation.status == "FAILED":
        return FlowResult("FAILED", None, [validation, skipped_transform, skipped_output],
                          _elapsed_ms(started))
    output, micros, transformation = value, 0, skipped_transform
    if definition.expression:
        step_started = time.perf_counter_ns()
        try:
            output, micros = transform(definition.expression, value, context, bindings)
        except TransformError as exc:
            failed = StepResult("transform", "FAILED", _elapsed_ms(step_started),
                                [exc.as_dict()])
            return FlowResult("FAILED", None, [validation, failed, skipped_output],
                              _elapsed_ms(started), retryable=exc.retryable)
        transformation = StepResult("transform", "OK", _elapsed_ms(step_started))
    steps = [validation, transformation]
    if output is None:  # the expression gave no value: nothing to validate or deliver
        return FlowResult("SUCCESS", None, [*steps, skipped_output], _elapsed_ms(started),
                          micros)
    body, out_type, encoding = _encode(definition, output)
    status: Literal["SUCCESS", "FAILED"] = "FAILED" if encoding.status == "FAILED" else "SUCCESS"
    return FlowResult(status, output if status == "SUCCESS" else None, [*steps, encoding],
                      _elapsed_ms(started), micros, body, out_type)
