"""Run the benchmarks: ``python -m bench [--size tiny|full] [--only NAME ...]``.

Each benchmark is a module of this package with ``NAME`` and ``run(size) -> dict`` (name,
parameters, rows, summary, notes). The runner adds the machine and the date, writes
``bench/results/<name>.json`` and regenerates ``BENCHMARKS.md`` from every stored result.
Modules are imported by name only when they run, so one that is missing (or fails) is
reported and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from typing import Any

from bench.common import machine_facts, write_markdown, write_result

REGISTRY: tuple[str, ...] = (
    "pipeline_throughput",
    "footprint",
    "exactly_once",
    "poison_pill",
    # The other benchmarks of issue #6 (HTTP pipeline, API latency, transformation engines,
    # replay and rebuild) go here:
    "http_pipeline", "api_latency", "jsonata_engines", "replay_rebuild",
)
REQUIRED_KEYS = ("name", "parameters", "rows", "summary", "notes")


def _load(name: str) -> Any | None:
    """The benchmark module, or None if it does not exist (yet): skipped, not an error."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return None
        raise
    return module if hasattr(module, "run") and hasattr(module, "NAME") else None


def run_one(name: str, size: str) -> dict[str, Any] | None:
    """Run one benchmark; None if it is not there or does not follow the interface."""
    module = _load(name)
    if module is None:
        return None
    result = module.run(size)
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing:
        raise ValueError(f"{name}: result lacks {', '.join(missing)}")
    result["parameters"] = {"size": size, **result["parameters"]}  # every table says which
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "full"), default="full")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=REGISTRY,
                        help="run only these benchmarks")
    args = parser.parse_args(argv)
    machine = machine_facts()
    failed, skipped = [], []
    for name in args.only or REGISTRY:
        print(f"== {name} ({args.size})", flush=True)
        started = time.monotonic()
        try:
            result = run_one(name, args.size)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        if result is None:
            print(f"   skipped: bench/{name}.py is not there or has no NAME/run", flush=True)
            skipped.append(name)
            continue
        path = write_result(result, machine)
        print(f"   {result['summary']}\n   ({time.monotonic() - started:.0f} s; {path})",
              flush=True)
    print(f"BENCHMARKS.md regenerated: {write_markdown(REGISTRY)}")
    if skipped:
        print("skipped: " + ", ".join(skipped))
    if failed:
        print("FAILED: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
