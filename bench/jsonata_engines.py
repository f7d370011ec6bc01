"""µs per evaluation: the project's engine (``transform``) against jsonata-python, same run.

    .venv/bin/python -m bench.jsonata_engines [--out bench/results/jsonata.json]

Five mappings: the seed mapping on the seed payload, and four heavier ones on an order of
20 line items (a 2.2 KB message): line items with ``$sum``, a filter, string building, and
``$lookup`` against a static in-memory resolver (for jsonata-python, the same resolver
registered as its ``$lookup``). Each engine compiles once, warms up, then n is calibrated so
a repetition takes ≥ 0.2 s; the figure is the median of 7 repetitions. Inputs cycle through
100 equal copies, as every message is a new object. "bare jsonatapy" is jsonatapy without
the project's functions, prelude and output check: the difference is what those cost.
jsonata-python is optional (``pip install jsonata-python``); without it, only ours is measured.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonatapy

from integrationos.engine.functions import MISSING, EvaluationContext
from integrationos.engine.transform import evaluation_timeout_ms, transform

SEED = ('{"FirstName": $substringBefore($.nome_completo, " "), '
        '"LastName": $substringAfter($.nome_completo, " "), "Email": $.email, '
        '"Phone": $.telefone, "IsActive__c": $.ativo}')
SEED_PAYLOAD = {"nome_completo": "João Silva", "email": "j@ex.pt"}
SEED_OUTPUT = {"FirstName": "João", "LastName": "Silva", "Email": "j@ex.pt"}
CATEGORIES = ("software", "services", "hardware", "consumables", "hardware")
TABLES = {
    "countries": {"gb": "United Kingdom", "pt": "Portugal", "de": "Germany", "fr": "France"},
    "categories": {"software": "SW", "services": "SRV", "hardware": "HW", "consumables": "CONS"},
}
ORDER = {"order": {
    "id": "ORD-2024-000123", "created": "2024-03-15T10:22:05Z", "currency": "EUR",
    "customer": {"fullName": "Jane Doe", "email": "jane.doe@example.com", "country": "gb"},
    "lines": [{"sku": f"sku-{i:04d}", "name": f"Item {i} {CATEGORIES[i % 5].title()}",
               "category": CATEGORIES[i % 5], "qty": i % 5 + 1,
               "unitPrice": round(5 + (i * 37) % 70 + 0.25 * (i % 4), 2)}
              for i in range(1, 21)],
}}
MAPPINGS = {
    "seed": (SEED, SEED_PAYLOAD),
    "lines+sum": ('{"lines": order.lines.{"sku": sku, "qty": qty, "amount": qty * unitPrice},'
                  ' "total": $sum(order.lines.(qty * unitPrice))}', ORDER),
    "filter": ('order.lines[category = "hardware" and qty >= 2 and unitPrice < 50].sku', ORDER),
    "string building": ('order.lines.($uppercase(sku) & " | " & name & " x" & $string(qty)'
                        ' & " @ " & $string(unitPrice))', ORDER),
    "lookup": ('{"country": $lookup("countries", order.customer.country),'
               ' "lines": order.lines.{"sku": sku, "group": $lookup("categories", category)}}',
               ORDER),
}


def static_resolver(table: str, key: Any) -> Any:
    return TABLES[table].get(key, MISSING)


CONTEXT = EvaluationContext("bench", "bench", {}, static_resolver)


def per_call_us(call: Callable[[Any], Any], payload: Any) -> float:
    inputs = [copy.deepcopy(payload) for _ in range(100)]
    for item in inputs[:20]:
        call(item)
    n, elapsed = 1, 0.0
    while elapsed < 0.2:
        n *= 2
        started = time.perf_counter()
        for i in range(n):
            call(inputs[i % 100])
        elapsed = time.perf_counter() - started
    runs = []
    for _ in range(7):
        started = time.perf_counter()
        for i in range(n):
            call(inputs[i % 100])
        runs.append((time.perf_counter() - started) / n * 1e6)
    return round(statistics.median(runs), 2)


def _ours(expression: str) -> Callable[[Any], Any]:
    return lambda payload: transform(expression, payload, CONTEXT)[0]


def _bare(expression: str) -> Callable[[Any], Any] | None:
    if "$lookup(\"" in expression:  # a table lookup needs the project's functions
        return None
    return jsonatapy.compile(expression).evaluate


def _jsonata_python(expression: str) -> Callable[[Any], Any] | None:
    try:
        import jsonata
    except ImportError:
        return None
    compiled = jsonata.Jsonata(expression)
    compiled.register_lambda(
        "lookup", lambda table, key: static_resolver(table, key) if isinstance(table, str)
        else table.get(key))
    return compiled.evaluate


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                 .splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0]}


def run() -> dict[str, Any]:
    if transform(SEED, SEED_PAYLOAD)[0] != SEED_OUTPUT:
        raise SystemExit("the seed mapping does not give the seed contact")
    rows = []
    for name, (expression, payload) in MAPPINGS.items():
        ours, bare, theirs = _ours(expression), _bare(expression), _jsonata_python(expression)
        if theirs is not None and json.dumps(theirs(payload), sort_keys=True) != json.dumps(
                ours(payload), sort_keys=True):
            raise SystemExit(f"{name}: the two engines disagree; the timings would mean nothing")
        row = {"mapping": name, "ours_us": per_call_us(ours, payload),
               "bare_jsonatapy_us": per_call_us(bare, payload) if bare else None,
               "jsonata_python_us": per_call_us(theirs, payload) if theirs else None}
        row["ratio"] = (round(row["jsonata_python_us"] / row["ours_us"], 1)
                        if row["jsonata_python_us"] else None)
        rows.append(row)
        print(f"{name:16} ours {row['ours_us']:9.2f} µs   bare jsonatapy "
              f"{row['bare_jsonatapy_us'] or float('nan'):9.2f} µs   jsonata-python "
              f"{row['jsonata_python_us'] or float('nan'):10.2f} µs   ratio {row['ratio']}")
    if _version("jsonata-python") is None:
        print("jsonata-python is not installed: measured the project engine only")
    return {"machine": machine(), "timeout_ms": evaluation_timeout_ms(),
            "versions": {"jsonatapy": _version("jsonatapy"),
                         "jsonata-python": _version("jsonata-python")},
            "mappings": {name: expression for name, (expression, _) in MAPPINGS.items()},
            "results": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/jsonata.json"))
    out = parser.parse_args().out
    report = run()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
