"""The promotion gate: an integration's saved test cases run on the version being promoted,
through the sandbox's runner (the pipeline's own ``run_flow``), before it reaches PROD.

A case passes when the flow succeeds and its output matches ``expected``:
``EXACT`` — equal as JSON values; ``SUBSET`` (the default) — every field ``expected``
names is in the output with a matching value (recursively for objects; arrays must have
the same length and match item by item; other values must be equal), extra output fields
are allowed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from integrationos.api.context import Platform
from integrationos.api.routes.sandbox import run_payload
from integrationos.engine.flow import FlowDefinition

MATCH_MODES = ("SUBSET", "EXACT")
MAX_MISMATCHES = 20


def mismatches(expected: Any, actual: Any, mode: str, at: str = "") -> list[dict[str, str]]:
    """Where ``actual`` departs from ``expected`` (JSON pointers); empty when it matches.
    ``True`` never equals ``1`` here: JSON booleans and numbers are different things."""
    if mode == "EXACT" or not isinstance(expected, dict | list):
        return [] if _same(expected, actual) else [
            {"pointer": at or "/", "message": "differs from the expected value"}]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [{"pointer": at or "/", "message": "expected an object"}]
        found: list[dict[str, str]] = []
        for key, value in expected.items():
            pointer = f"{at}/{_escape(key)}"
            if key not in actual:
                found.append({"pointer": pointer, "message": "is missing from the output"})
            else:
                found += mismatches(value, actual[key], mode, pointer)
        return found
    if not isinstance(actual, list) or len(actual) != len(expected):
        return [{"pointer": at or "/", "message": f"expected an array of {len(expected)} items"}]
    return [m for n, item in enumerate(expected)
            for m in mismatches(item, actual[n], mode, f"{at}/{n}")]


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: 1 equals 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


async def run_cases(p: Platform, tenant_id: str, cases: Sequence[Row], flow: FlowDefinition,
                    environment: str) -> list[dict[str, Any]]:
    """Each case's result: ``PASSED`` or ``FAILED`` with the flow's errors and the
    mismatches, in the cases' order."""
    results = []
    for case in cases:
        result = await run_payload(p, tenant_id, flow, environment, json.loads(case.payload_json))
        found = [] if result.status != "SUCCESS" else mismatches(
            json.loads(case.expected_json), result.output, case.match)
        passed = result.status == "SUCCESS" and not found
        results.append({
            "testCaseId": case.id, "name": case.name,
            "status": "PASSED" if passed else "FAILED",
            "durationMs": round(result.duration_ms, 3), "errors": result.errors,
            "mismatches": found[:MAX_MISMATCHES], "output": result.output,
        })
    return results
