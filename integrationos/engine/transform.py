"""JSONata transformation with jsonatapy (Rust core): compile once, evaluate many, bounded.

Compiled expressions are cached by the SHA-256 of their text, so every version of every
expression is compiled once per thread: jsonatapy's compiled objects must not cross threads
(using one from another thread panics in its Rust core), so each thread keeps its own cache.
Each evaluation is bounded in time and depth:
a runaway expression fails that message with a JSONata error code instead of hanging the
worker. jsonatapy holds the GIL while it evaluates, so the time limit is also the longest a
hostile expression can stall the worker's event loop; it is kept short on purpose.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jsonatapy

EVALUATION_TIMEOUT_MS = 250
MAX_STACK_DEPTH = 500
MAX_SEQUENCE_LENGTH = 1_000_000
_CACHE_SIZE = 2048

_CODE = re.compile(r"\b([A-Z]\d{4})\b")
_POSITION = re.compile(r"position:? (\d+)", re.IGNORECASE)


class TransformError(Exception):
    """A JSONata compile or evaluation error, with the JSONata code and position if known."""

    def __init__(self, code: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "position": self.position}


def _error_from(exc: Exception, default_code: str) -> TransformError:
    text = str(exc)
    code = _CODE.search(text)
    position = _POSITION.search(text)
    return TransformError(
        code.group(1) if code else default_code,
        text,
        int(position.group(1)) if position else None,
    )


@dataclass(frozen=True)
class CompiledExpression:
    digest: str
    _compiled: Any

    def evaluate(self, payload: Any) -> Any:
        """Evaluate against a JSON value; the result is a JSON value (None if undefined)."""
        try:
            if payload is None:
                out = self._compiled.evaluate_json_or_none(None, None)
                return None if out is None else json.loads(out)
            return self._compiled.evaluate(payload, None)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise _error_from(exc, "D0000") from None


_local = threading.local()


def _thread_cache() -> OrderedDict[str, CompiledExpression]:
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    return cache


def compile_expression(expression: str) -> CompiledExpression:
    """Compile (or fetch from the cache) an expression; raise ``TransformError`` on syntax."""
    digest = hashlib.sha256(expression.encode()).hexdigest()
    _cache = _thread_cache()
    cached = _cache.get(digest)
    if cached is not None:
        _cache.move_to_end(digest)
        return cached
    try:
        compiled = jsonatapy.compile(
            expression,
            timeout=EVALUATION_TIMEOUT_MS,
            max_stack_depth=MAX_STACK_DEPTH,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
        )
    except (ValueError, RuntimeError, TypeError) as exc:
        raise _error_from(exc, "S0000") from None
    entry = CompiledExpression(digest, compiled)
    _cache[digest] = entry
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return entry


def transform(expression: str, payload: Any) -> tuple[Any, int]:
    """Apply ``expression`` to ``payload``; return the output and the time taken in µs.

    An output JSON cannot carry (Infinity or NaN, e.g. from ``1/0``) is an error here, so
    nothing downstream has to cope with it.
    """
    compiled = compile_expression(expression)
    started = time.perf_counter_ns()
    output = compiled.evaluate(payload)
    elapsed = (time.perf_counter_ns() - started) // 1000
    try:
        json.dumps(output, allow_nan=False)
    except ValueError:
        raise TransformError(
            "D1001", "D1001: the output holds a number JSON cannot represent (Infinity/NaN)"
        ) from None
    return output, elapsed
