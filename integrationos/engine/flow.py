"""The pure part of a flow: validate the input, then transform it. No I/O.

Shared by the pipeline (per message) and the API's sandbox, so the sandbox shows exactly
what the pipeline will do, short of delivering.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from integrationos.engine.transform import TransformError, transform
from integrationos.schemas.json_schema import violations


@dataclass(frozen=True)
class FlowDefinition:
    """What a flow needs to process a payload: an optional schema and expression."""

    expression: str | None
    source_schema_json: str | None = None
    missing: str | None = None  # what the flow refers to but the projections lack


@dataclass(frozen=True)
class StepResult:
    name: Literal["validate", "transform"]
    status: Literal["OK", "FAILED", "SKIPPED"]
    duration_ms: float
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FlowResult:
    status: Literal["SUCCESS", "FAILED"]
    output: Any
    steps: list[StepResult]
    duration_ms: float
    transform_us: int = 0

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [{"stage": s.name, **e} for s in self.steps for e in s.errors]


def _elapsed_ms(started: int) -> float:
    return round((time.perf_counter_ns() - started) / 1e6, 3)


def _validate(definition: FlowDefinition, payload: Any) -> StepResult:
    started = time.perf_counter_ns()
    schema = definition.source_schema_json
    if schema is None or not isinstance(json.loads(schema), dict):
        return StepResult("validate", "SKIPPED", _elapsed_ms(started))
    try:
        found = violations(schema, payload)
    except Exception as exc:  # a user's schema that cannot be applied: bad $ref, cycles
        error = {"code": "SCHEMA_UNUSABLE", "pointer": "",
                 "message": f"the source schema cannot be applied: {type(exc).__name__}"}
        return StepResult("validate", "FAILED", _elapsed_ms(started), [error])
    errors = [{"code": "SCHEMA_VIOLATION", **violation} for violation in found]
    return StepResult("validate", "FAILED" if errors else "OK", _elapsed_ms(started), errors)


def run_flow(definition: FlowDefinition, payload: Any) -> FlowResult:
    """Validate then transform; a payload without an expression passes through unchanged."""
    started = time.perf_counter_ns()
    if definition.missing:
        error = {"code": "TRANSFORMATION_MISSING", "message": f"{definition.missing} not found"}
        step = StepResult("transform", "FAILED", 0.0, [error])
        return FlowResult("FAILED", None, [StepResult("validate", "SKIPPED", 0.0), step],
                          _elapsed_ms(started))
    validation = _validate(definition, payload)
    if validation.status == "FAILED":
        skipped = StepResult("transform", "SKIPPED", 0.0)
        return FlowResult("FAILED", None, [validation, skipped], _elapsed_ms(started))
    if not definition.expression:
        step = StepResult("transform", "SKIPPED", 0.0)
        return FlowResult("SUCCESS", payload, [validation, step], _elapsed_ms(started))
    step_started = time.perf_counter_ns()
    try:
        output, micros = transform(definition.expression, payload)
    except TransformError as exc:
        step = StepResult("transform", "FAILED", _elapsed_ms(step_started), [exc.as_dict()])
        return FlowResult("FAILED", None, [validation, step], _elapsed_ms(started))
    step = StepResult("transform", "OK", _elapsed_ms(step_started))
    return FlowResult("SUCCESS", output, [validation, step], _elapsed_ms(started), micros)
