"""The delay between attempts: defaults, an integration's own backoff, jitter, bounds,
Retry-After; and how a delay tier serves a delay longer than itself."""

from __future__ import annotations

import pytest

from integrationos.engine import error_strategy
from integrationos.engine.error_strategy import (
    DEFAULT_BACKOFF,
    MAX_DELAY_MS,
    Backoff,
    ErrorStrategy,
    parse,
)
from integrationos.engine.pipeline import release_plan
from integrationos.topics.catalog import RETRY_TIER_SECONDS, retry_tier_for


def _strategy(backoff: Backoff = DEFAULT_BACKOFF) -> ErrorStrategy:
    return parse("RETRY_10_DLQ", backoff)


@pytest.fixture
def jitter_at(monkeypatch: pytest.MonkeyPatch):
    """Pin the jitter draw to one end of its range, to check the exact bounds."""
    def pin(value: float) -> None:
        monkeypatch.setattr(error_strategy.random, "uniform", lambda low, high: value)
    return pin


@pytest.mark.parametrize(("attempt", "base"), [(2, 1.0), (3, 2.0), (4, 4.0), (9, 128.0)])
def test_defaults_double_from_one_second(jitter_at, attempt: int, base: float):
    for draw, factor in ((-0.2, 0.8), (0.0, 1.0), (0.2, 1.2)):
        jitter_at(draw)
        assert _strategy().delay_before(attempt) == pytest.approx(base * factor)


def test_jitter_spreads_delays_within_twenty_percent():
    delays = [_strategy().delay_before(3) for _ in range(2000)]
    assert all(1.6 <= d <= 2.4 for d in delays)
    assert min(delays) < 1.7 and max(delays) > 2.3  # spread over the range, not one value


def test_a_backoff_of_its_own_spans_a_thirty_second_outage(jitter_at):
    jitter_at(0.0)
    strategy = _strategy(Backoff(initial_ms=4000, max_ms=60_000, multiplier=2))
    assert [strategy.delay_before(k) for k in (2, 3, 4, 5)] == [4, 8, 16, 32]
    assert strategy.delay_before(6) == 60  # 64 s, capped by maxDelayMs


def test_a_fractional_multiplier_and_a_constant_one(jitter_at):
    jitter_at(0.0)
    growing = _strategy(Backoff(initial_ms=100, max_ms=10_000, multiplier=1.5))
    assert [growing.delay_before(k) for k in (2, 3, 4)] == pytest.approx([0.1, 0.15, 0.225])
    constant = _strategy(Backoff(initial_ms=2500, max_ms=2500, multiplier=1))
    assert {constant.delay_before(k) for k in range(2, 11)} == {2.5}


def test_jitter_never_goes_above_the_maximum(jitter_at):
    jitter_at(0.2)
    capped = _strategy(Backoff(initial_ms=1000, max_ms=5000, multiplier=10))
    assert capped.delay_before(3) == 5  # 10 s, capped
    jitter_at(-0.2)
    assert capped.delay_before(3) == 4  # at the cap, jitter only shortens


def test_retry_after_lengthens_a_delay_even_past_the_maximum_up_to_an_hour(jitter_at):
    jitter_at(0.0)
    short = _strategy(Backoff(initial_ms=1000, max_ms=5000, multiplier=2))
    assert short.delay_before(2, retry_after=120) == 120
    assert short.delay_before(2, retry_after=0.5) == 1  # a shorter Retry-After changes nothing
    assert short.delay_before(2, retry_after=86_400) == MAX_DELAY_MS / 1000


def test_the_largest_delays_stay_finite_and_bounded():
    widest = _strategy(Backoff(initial_ms=MAX_DELAY_MS, max_ms=MAX_DELAY_MS, multiplier=10))
    assert widest.delay_before(99) <= MAX_DELAY_MS / 1000


def test_values_from_outside_the_api_are_forced_inside_the_limits():
    assert Backoff(1, 10, 0.5).clamped() == Backoff(100, 100, 1.0)
    assert Backoff(10**9, 10**10, 99).clamped() == Backoff(MAX_DELAY_MS, MAX_DELAY_MS, 10.0)
    assert Backoff(5000, 1000, 2).clamped() == Backoff(5000, 5000, 2)


def test_every_strategy_carries_the_integrations_backoff():
    own = Backoff(4000, 60_000, 3)
    for text in ("RETRY_5_DLQ", "RETRY_2", "DLQ", "FAIL_FAST"):
        assert parse(text, own).backoff == own
    assert parse("FAIL_FAST") == ErrorStrategy(attempts=1, dead_letter=False, fail_fast=True)


def test_a_delay_within_its_tier_is_released_when_due():
    assert release_plan(due_ms=13_000, parked_ms=10_000, tier_seconds=5, now_ms=10_500) == (
        2.5, True)
    assert release_plan(due_ms=13_000, parked_ms=10_000, tier_seconds=5, now_ms=14_000) == (
        0, True)


def test_a_delay_beyond_the_largest_tier_goes_round_it_in_hops():
    largest = RETRY_TIER_SECONDS[-1]
    assert retry_tier_for(MAX_DELAY_MS / 1000).suffix == f"retry-{largest}s.v1"
    parked, due = 0, MAX_DELAY_MS  # one hour after it was parked
    wait, released = release_plan(due, parked, largest, now_ms=1000)
    assert (wait, released) == (largest - 1, False)  # never holds the tier past one hop
    hops = 0
    while not released:  # each hop is parked again when the previous one ends
        parked = parked + largest * 1000
        wait, released = release_plan(due, parked, largest, now_ms=parked)
        hops += 1
    assert hops == MAX_DELAY_MS // (largest * 1000) - 1 and wait == largest


def test_a_record_without_a_timestamp_goes_round_at_once_rather_than_block():
    assert release_plan(due_ms=10**13, parked_ms=0, tier_seconds=300, now_ms=10**12) == (
        0, False)
