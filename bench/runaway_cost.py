"""What one runaway expression costs the other messages of the same worker, against what
the heaviest legitimate evaluation needs: the two sides of the default time limit.

    IOS_JSONATA_TIMEOUT_MS=250 .venv/bin/python -m bench.runaway_cost [--out FILE]

A task on the event loop evaluates the seed mapping in a loop (yielding after each, as the
pipeline's concurrent groups do). Meanwhile the runaway ``($f := function($x){ $f($x) };
$f(1))`` is evaluated until the time limit stops it (D1012), either on the event loop (as
the pipeline calls ``run_flow`` today) or in a thread (``asyncio.to_thread``). The seed
evaluations completed while it ran are compared with the same window without it; the
longest gap between two completions is the delay one of the other messages saw.

The heaviest legitimate evaluation: the four heavier mappings of ``bench.jsonata_engines``
on an order with as many line items as fit in the largest accepted payload (1 MiB,
``IOS_MAX_PAYLOAD_BYTES``), timed through ``transform`` with no time limit in the way.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.jsonata_engines import CONTEXT, MAPPINGS, ORDER, SEED, SEED_PAYLOAD
from integrationos.engine.transform import TransformError, evaluation_timeout_ms, transform

MAX_PAYLOAD_BYTES = 1024 * 1024
RUNAWAY = "($f := function($x){ $f($x) }; $f(1))"
REPEATS = 5


async def _seed_loop(stop: asyncio.Event, done: list[float]) -> None:
    while not stop.is_set():
        transform(SEED, SEED_PAYLOAD)
        done.append(time.perf_counter())
        await asyncio.sleep(0)


def _runaway() -> str:
    try:
        transform(RUNAWAY, {})
    except TransformError as exc:
        return exc.code
    return "no error"


async def _window(mode: str, length_s: float) -> dict[str, Any]:
    """Seed evaluations completed within one window, with the runaway in ``mode``."""
    stop, done = asyncio.Event(), []
    loop_task = asyncio.create_task(_seed_loop(stop, done))
    await asyncio.sleep(0.05)  # the loop is warm and running before the window opens
    started = time.perf_counter()
    code = None
    if mode == "on the event loop":
        code = _runaway()
    elif mode == "in a thread":
        code = await asyncio.to_thread(_runaway)
    ended = time.perf_counter()
    if mode == "none":
        await asyncio.sleep(length_s)
        ended = time.perf_counter()
    stop.set()
    await loop_task
    inside = [t for t in done if started <= t <= ended]
    edges = [started, *inside, ended]
    return {"window_ms": (ended - started) * 1000, "seed_evaluations": len(inside),
            "longest_gap_ms": max(b - a for a, b in pairwise(edges)) * 1000,
            "runaway_code": code}


async def measure() -> dict[str, Any]:
    timeout_s = evaluation_timeout_ms() / 1000
    transform(SEED, SEED_PAYLOAD)
    results: dict[str, Any] = {"timeout_ms": evaluation_timeout_ms()}
    baseline = [await _window("none", timeout_s) for _ in range(REPEATS)]
    per_ms = statistics.median(w["seed_evaluations"] / w["window_ms"] for w in baseline)
    results["baseline_seed_evaluations_per_ms"] = round(per_ms, 1)
    for mode in ("on the event loop", "in a thread"):
        windows = [await _window(mode, timeout_s) for _ in range(REPEATS)]
        window_ms = statistics.median(w["window_ms"] for w in windows)
        during = statistics.median(w["seed_evaluations"] for w in windows)
        expected = per_ms * window_ms
        results[mode] = {
            "runaway_ms": round(window_ms, 1),
            "runaway_code": windows[0]["runaway_code"],
            "seed_evaluations_during": during,
            "seed_evaluations_same_window_without": round(expected),
            "share_of_normal_throughput_pct": round(100 * during / expected, 2),
            "longest_gap_ms": round(statistics.median(w["longest_gap_ms"] for w in windows), 1),
        }
        print(f"runaway {mode}: ran {window_ms:.0f} ms ({windows[0]['runaway_code']}); "
              f"{during:.0f} seed evaluations vs {expected:.0f} without it "
              f"({100 * during / expected:.2f} %); longest wait "
              f"{results[mode]['longest_gap_ms']} ms")
    results["largest_legitimate_ms"] = largest_legitimate()
    for name, ms in results["largest_legitimate_ms"].items():
        print(f"a 1 MiB order ({name}): {ms} ms")
    return results


def largest_legitimate() -> dict[str, float | str]:
    """ms per evaluation of the heavier mappings on a 1 MiB order (the largest accepted)."""
    order = copy.deepcopy(ORDER)
    lines = order["order"]["lines"]
    while len(json.dumps(order).encode()) < MAX_PAYLOAD_BYTES:
        lines.extend(copy.deepcopy(lines[:20]))
    timings: dict[str, float | str] = {}
    for name, (expression, _) in MAPPINGS.items():
        if name == "seed":
            continue
        runs = []
        try:
            for _ in range(5):
                started = time.perf_counter()
                transform(expression, order, CONTEXT)
                runs.append((time.perf_counter() - started) * 1000)
        except TransformError as exc:
            timings[name] = f"{exc.code}: over the limit"
            continue
        timings[name] = round(statistics.median(runs), 1)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/runaway_cost.json"))
    out = parser.parse_args().out
    results = asyncio.run(measure())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
