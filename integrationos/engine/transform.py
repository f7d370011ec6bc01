"""JSONata transformation with jsonatapy (Rust core): compile once, evaluate many, bounded.

Compiled expressions are cached by the SHA-256 of their text, so every version of every
expression is compiled once per thread: jsonatapy's compiled objects must not cross threads
(using one from another thread panics in its Rust core), so each thread keeps its own cache.
Each evaluation is bounded in time, depth and sequence length (and ``$pad`` in width, see
``functions.py``): a runaway expression fails that message with a JSONata error code
instead of hanging the worker. jsonatapy holds the GIL while it evaluates, so the time limit
is also the longest a hostile expression can stall the worker's event loop; it is kept short
on purpose (``IOS_JSONATA_TIMEOUT_MS``; docs/transformations.md has the measurements).
The custom functions (``engine/functions.py``) are registered on every compiled expression.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonatapy

from integrationos.engine.functions import (
    HOST_FUNCTIONS,
    Evaluation,
    EvaluationContext,
    with_prelude,
)
from integrationos.metrics import JSONATA_SECONDS

DEFAULT_TIMEOUT_MS = 250
MAX_TIMEOUT_MS = 10_000
MAX_STACK_DEPTH = 500
MAX_SEQUENCE_LENGTH = 1_000_000
_CACHE_SIZE = 2048

_CODE = re.compile(r"\b([A-Z]\d{4})\b")
_POSITION = re.compile(r"position:? (\d+)", re.IGNORECASE)
_HOST_RAISED = "host function raised"
# jsonatapy errors that come without the code JSONata gives them
_UNCODED = {"Unclosed comment": "S0106"}


class TransformError(Exception):
    """A JSONata compile or evaluation error, with the code, the position if known, and
    whether retrying can help (only a lookup source that is down, so far)."""

    def __init__(self, code: str, message: str, position: int | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position
        self.retryable = retryable

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "position": self.position,
                "retryable": self.retryable}


@cache
def evaluation_timeout_ms() -> int:
    """``IOS_JSONATA_TIMEOUT_MS``, read once: compiled expressions carry it from then on."""
    text = os.environ.get("IOS_JSONATA_TIMEOUT_MS", "").strip()
    if not text:
        return DEFAULT_TIMEOUT_MS
    if not re.fullmatch(r"[0-9]+", text) or not 1 <= int(text) <= MAX_TIMEOUT_MS:
        raise ValueError(
            f"IOS_JSONATA_TIMEOUT_MS must be a whole number of ms from 1 to {MAX_TIMEOUT_MS}, "
            f"got {text!r}")
    return int(text)


def _error_from(exc: Exception, default_code: str) -> TransformError:
    text = str(exc)
    code = _CODE.search(text)
    position = _POSITION.search(text)
    known = next((c for phrase, c in _UNCODED.items() if phrase in text), default_code)
    return TransformError(
        code.group(1) if code else known,
        text,
        int(position.group(1)) if position else None,
    )


def _call_position(expression: str, function: str) -> int | None:
    """Just past ``$function`` (JSONata's convention) when the expression calls it once."""
    calls = [m.start() + 1 + len(function)
             for m in re.finditer(rf"\${re.escape(function)}\s*\(", expression)]
    return calls[0] if len(calls) == 1 else None


@dataclass(frozen=True)
class CompiledExpression:
    digest: str
    expression: str
    _compiled: Any

    def evaluate(self, payload: Any, bindings: dict[str, Any] | None = None,
                 context: EvaluationContext | None = None) -> Any:
        """Evaluate against a JSON value; the result is a JSON value (None if undefined)."""
        with Evaluation(context) as evaluation:
            started = time.perf_counter_ns()
            try:
                if payload is None:
                    out = self._compiled.evaluate_json_or_none(None, bindings)
                    return None if out is None else json.loads(out)
                return self._compiled.evaluate(payload, bindings)
            except (ValueError, RuntimeError, TypeError) as exc:
                elapsed_ns = time.perf_counter_ns() - started
                raise self._error(exc, evaluation, elapsed_ns) from None

    def _error(self, exc: Exception, evaluation: Evaluation, elapsed_ns: int) -> TransformError:
        failure = evaluation.failure
        if str(exc).startswith(_HOST_RAISED):
            if failure is None:  # a host function bug, or a value it returned that is not JSON
                return TransformError("FUNCTION_FAILED", str(exc))
            error = failure.error
            return TransformError(error.code, f"${failure.function}: {error.message}",
                                  _call_position(self.expression, failure.function),
                                  error.retryable)
        error = _error_from(exc, "D0000")
        limit_ns = evaluation_timeout_ms() * 1_000_000
        waited = evaluation.lookup_ns
        if error.code == "D1012" and waited and elapsed_ns - waited < limit_ns:
            # lookups ate part of the limit: with their answers cached a retry can pass,
            # while a runaway expression fails again, then with D1012
            return TransformError(
                "LOOKUP_SLOW", f"the {limit_ns // 1_000_000} ms time limit ran out, "
                f"{waited // 1_000_000} ms of it waiting for lookups",
                retryable=True)
        return error


_local = threading.local()


def _thread_cache() -> OrderedDict[str, CompiledExpression]:
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    return cache


def _compile(expression: str) -> Any:
    """Compile with the limits and the custom functions.

    The expression is compiled on its own first, so a syntax error is reported against the
    text the user wrote rather than against the prelude around it.
    """
    limits = {"timeout": evaluation_timeout_ms(), "max_stack_depth": MAX_STACK_DEPTH,
              "max_sequence_length": MAX_SEQUENCE_LENGTH}
    compiled = jsonatapy.compile(expression, **limits)
    wrapped = with_prelude(expression)
    if wrapped != expression:
        compiled = jsonatapy.compile(wrapped, **limits)
    for name, function in HOST_FUNCTIONS.items():
        compiled.register(name, function)
    return compiled


def compile_expression(expression: str) -> CompiledExpression:
    """Compile (or fetch from the cache) an expression; raise ``TransformError`` on syntax."""
    # surrogatepass: a JSON body can carry a lone surrogate ("\ud800"); it must still hash
    digest = hashlib.sha256(expression.encode("utf-8", "surrogatepass")).hexdigest()
    _cache = _thread_cache()
    cached = _cache.get(digest)
    if cached is not None:
        _cache.move_to_end(digest)
        return cached
    try:
        compiled = _compile(expression)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise _error_from(exc, "S0000") from None
    entry = CompiledExpression(digest, expression, compiled)
    _cache[digest] = entry
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return entry


def transform(expression: str, payload: Any, context: EvaluationContext | None = None,
              bindings: dict[str, Any] | None = None) -> tuple[Any, int]:
    """Apply ``expression`` to ``payload``; return the output and the time taken in µs.

    ``context`` is what ``$env`` and ``$lookup`` read; ``bindings`` are extra ``$variables``
    (JSON values). An output JSON cannot carry (Infinity or NaN, e.g. from ``1/0``) is an
    error here, so nothing downstream has to cope with it.
    """
    compiled = compile_expression(expression)
    started = time.perf_counter_ns()
    try:
        output = compiled.evaluate(payload, bindings, context)
    finally:
        elapsed = (time.perf_counter_ns() - started) // 1000
        JSONATA_SECONDS.observe(elapsed / 1e6)
    if not _finite(output):
        raise TransformError(
            "D1001", "D1001: the output holds a number JSON cannot represent (Infinity/NaN)")
    return output, elapsed


def _finite(output: Any) -> bool:
    """No Infinity/NaN anywhere in ``output`` (a walk: ~3x faster than ``json.dumps``)."""
    pending = [output]
    while pending:
        value = pending.pop()
        if type(value) is float and not math.isfinite(value):
            return False
        if type(value) is dict:
            pending.extend(value.values())
        elif type(value) is list:
            pending.extend(value)
    return True
