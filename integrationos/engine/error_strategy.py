"""Parsing of an integration's ``errorStrategy`` string into what the pipeline does, and the
backoff between attempts (platform defaults, or the integration's own ``backoff``)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

_PATTERN = re.compile(
    r"^(?:RETRY_(?P<n>\d{1,2})(?P<dlq>_DLQ)?|(?P<only_dlq>DLQ)|(?P<ff>FAIL_FAST))$"
)
MAX_ATTEMPTS = 10
DEFAULT = "RETRY_3_DLQ"

JITTER = 0.2
"""Each delay is spread by ±20 % so messages that failed together do not retry together."""

MIN_DELAY_MS = 100
"""The shortest ``initialDelayMs``: below it a retry is a hammering loop, not a backoff."""
MAX_DELAY_MS = 3_600_000
"""The longest delay anything can ask for (``initialDelayMs``, ``maxDelayMs``, or a target's
Retry-After): one hour, far inside the delay tiers' 7-day retention."""
MIN_MULTIPLIER = 1.0
MAX_MULTIPLIER = 10.0


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt k (k ≥ 2): ``initial_ms`` * ``multiplier`` ** (k - 2), at most
    ``max_ms``. The defaults are what every integration without its own ``backoff`` gets."""

    initial_ms: int = 1000
    max_ms: int = 300_000
    multiplier: float = 2.0

    def clamped(self) -> Backoff:
        """The same backoff forced inside the limits. The API refuses values outside them;
        this guards the worker against an event written by anything else."""
        initial = min(max(self.initial_ms, MIN_DELAY_MS), MAX_DELAY_MS)
        return Backoff(initial, min(max(self.max_ms, initial), MAX_DELAY_MS),
                       min(max(self.multiplier, MIN_MULTIPLIER), MAX_MULTIPLIER))


DEFAULT_BACKOFF = Backoff()


@dataclass(frozen=True)
class ErrorStrategy:
    attempts: int
    dead_letter: bool
    fail_fast: bool = False
    backoff: Backoff = field(default=DEFAULT_BACKOFF)

    def delay_before(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before ``attempt`` (2, 3, ...): exponential with ±20 % jitter and
        at most ``maxDelayMs``; never shorter than the target's Retry-After (a target that
        says when it will be back is believed, up to the one-hour ceiling)."""
        b = self.backoff
        growth = b.multiplier ** max(attempt - 2, 0)
        base_ms = min(b.initial_ms * growth, b.max_ms)
        jittered_ms = min(base_ms * (1 + random.uniform(-JITTER, JITTER)), b.max_ms)
        asked_ms = (retry_after or 0.0) * 1000
        return min(max(jittered_ms, asked_ms), MAX_DELAY_MS) / 1000


def parse(text: str, backoff: Backoff = DEFAULT_BACKOFF) -> ErrorStrategy:
    """``RETRY_<n>_DLQ``, ``RETRY_<n>``, ``DLQ`` or ``FAIL_FAST``; raise ValueError otherwise."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"unknown error strategy {text!r}")
    if match["only_dlq"]:
        return ErrorStrategy(attempts=1, dead_letter=True, backoff=backoff)
    if match["ff"]:
        return ErrorStrategy(attempts=1, dead_letter=False, fail_fast=True, backoff=backoff)
    attempts = int(match["n"])
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"retry attempts must be 1..{MAX_ATTEMPTS}, got {attempts}")
    return ErrorStrategy(attempts=attempts, dead_letter=bool(match["dlq"]), backoff=backoff)
