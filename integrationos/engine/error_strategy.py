"""Parsing of an integration's ``errorStrategy`` string into what the pipeline does."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_PATTERN = re.compile(
    r"^(?:RETRY_(?P<n>\d{1,2})(?P<dlq>_DLQ)?|(?P<only_dlq>DLQ)|(?P<ff>FAIL_FAST))$"
)
MAX_ATTEMPTS = 10
DEFAULT = "RETRY_3_DLQ"


INITIAL_DELAY_S = 1.0
MAX_DELAY_S = 300.0
MULTIPLIER = 2.0
JITTER = 0.2


@dataclass(frozen=True)
class ErrorStrategy:
    attempts: int
    dead_letter: bool
    fail_fast: bool = False

    def delay_before(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before ``attempt`` (2, 3, ...): exponential with ±20% jitter,
        never shorter than the target's Retry-After, never longer than the maximum."""
        base = min(INITIAL_DELAY_S * MULTIPLIER ** (attempt - 2), MAX_DELAY_S)
        jittered = base * (1 + random.uniform(-JITTER, JITTER))
        return min(max(jittered, retry_after or 0.0), MAX_DELAY_S)


def parse(text: str) -> ErrorStrategy:
    """``RETRY_<n>_DLQ``, ``RETRY_<n>``, ``DLQ`` or ``FAIL_FAST``; raise ValueError otherwise."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"unknown error strategy {text!r}")
    if match["only_dlq"]:
        return ErrorStrategy(attempts=1, dead_letter=True)
    if match["ff"]:
        return ErrorStrategy(attempts=1, dead_letter=False, fail_fast=True)
    attempts = int(match["n"])
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"retry attempts must be 1..{MAX_ATTEMPTS}, got {attempts}")
    return ErrorStrategy(attempts=attempts, dead_letter=bool(match["dlq"]))
