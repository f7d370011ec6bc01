"""What every benchmark shares: the facts of the machine it ran on, a percentile, and the
results on disk (``bench/results/<name>.json``, then ``BENCHMARKS.md`` regenerated from all
of them).

Machines here are shared and noisy, so a result is only readable next to the machine,
the versions and the parameters it was measured with; they are written with every result.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
MARKDOWN = ROOT / "BENCHMARKS.md"
LIBRARIES = ("faust-streaming", "aiokafka", "confluent-kafka", "jsonatapy", "SQLAlchemy",
             "starlette", "uvicorn", "psycopg")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; a
    run's latencies are not sorted, and ``statistics.quantiles`` needs two or more."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict[str, Any]:
    """Cores, memory, CPU, OS and the versions that decide the numbers (the broker's is
    the dev launcher's, ``IOS_KAFKA_VERSION``: Kafka's protocol does not report it)."""
    from confluent_kafka import libversion

    from integrationos.cli.devbroker import KAFKA_VERSION

    return {
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "kafka_broker": KAFKA_VERSION,
        "librdkafka": libversion()[0],
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def write_result(result: dict[str, Any], machine: dict[str, Any],
                 results_dir: Path = RESULTS_DIR) -> Path:
    """Store one benchmark's result with the machine and the time it ran."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamped = {**result, "machine": machine,
               "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    path = results_dir / f"{result['name']}.json"
    path.write_text(json.dumps(stamped, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_results(order: Iterable[str], results_dir: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    """Every stored result: those named in ``order`` first, in that order, then the rest
    by name (results of benchmarks no longer registered are still shown, never lost)."""
    found = {p.stem: p for p in sorted(results_dir.glob("*.json"))} if results_dir.is_dir() else {}
    names = [n for n in order if n in found] + [n for n in found if n not in order]
    results = []
    for name in names:
        data = json.loads(found[name].read_text(encoding="utf-8"))
        if isinstance(data, dict) and "rows" in data:  # older, free-form files are left out
            results.append(data)
    return results


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _table(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def _machine_line(machine: dict[str, Any]) -> str:
    libraries = ", ".join(f"{k} {v}" for k, v in machine.get("libraries", {}).items() if v)
    return (f"{machine.get('cores')} cores, {machine.get('memory_gib')} GiB, "
            f"{machine.get('cpu')}, {machine.get('os')}; Python {machine.get('python')}, "
            f"Kafka {machine.get('kafka_broker')} (librdkafka {machine.get('librdkafka')}); "
            f"{libraries}")


def render_markdown(results: list[dict[str, Any]]) -> str:
    """BENCHMARKS.md: how to reproduce, then one section per result."""
    out = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench` (or `make bench`) from `bench/results/*.json`; do not",
        "edit by hand. Every benchmark measures a baseline in the same run: the machines are",
        "shared and noisy, so read the ratios, not the absolute times. `--size tiny` runs are",
        "for keeping the code working and say so in their parameters.",
        "",
    ]
    for result in results:
        out += [f"## {result['name']}", "",
                f"Run {result.get('date', '?')} on: {_machine_line(result.get('machine', {}))}.",
                "", "Parameters: " + ", ".join(
                    f"{k} = {_cell(v)}" for k, v in result.get("parameters", {}).items()) + ".",
                ""]
        out += _table(result["rows"]) if result["rows"] else ["(no rows)"]
        out += ["", f"**{result.get('summary', '')}**", ""]
        out += [f"- {note}" for note in result.get("notes", [])]
        out += [""] if result.get("notes") else []
    return "\n".join(out).rstrip() + "\n"


def write_markdown(order: Iterable[str], results_dir: Path = RESULTS_DIR,
                   markdown: Path = MARKDOWN) -> Path:
    markdown.write_text(render_markdown(load_results(order, results_dir)), encoding="utf-8")
    return markdown
