"""µs per evaluation: the project's engine (``transform``) against jsonata-python, same run.

    python -m bench.jsonata_engines

Five mappings: the seed mapping on the seed payload, and four heavier ones on an order of
20 line items (a 2.2 KB message): line items with ``$sum``, a filter, string building, and
``$lookup`` against a static in-memory table (for jsonata-python, the same resolver
registered as its ``$lookup``). Each engine compiles once, warms up, then n is calibrated so
a repetition takes at least ``min_seconds``; the figure is the median of ``repetitions``.
Inputs cycle through 100 equal copies, as every message is a new object. "bare jsonatapy" is
jsonatapy without the project's functions, prelude and output check: the difference is what
those cost. jsonata-python comes with the ``bench`` extra (``pip install -e '.[bench]'``);
without it only ours is measured, and the notes say so.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import jsonatapy

from integrationos.engine.functions import MISSING, EvaluationContext
from integrationos.engine.transform import evaluation_timeout_ms, transform

NAME = "jsonata_engines"
SIZES = {"tiny": {"min_seconds": 0.01, "repetitions": 3},
         "full": {"min_seconds": 0.2, "repetitions": 7}}

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


def per_call_us(call: Callable[[Any], Any], payload: Any, min_seconds: float = 0.2,
                repetitions: int = 7) -> float:
    """Median µs per call over ``repetitions`` runs of a calibrated n calls each."""
    inputs = [copy.deepcopy(payload) for _ in range(100)]
    for item in inputs[:20]:
        call(item)
    n, elapsed = 1, 0.0
    while elapsed < min_seconds:
        n *= 2
        started = time.perf_counter()
        for i in range(n):
            call(inputs[i % 100])
        elapsed = time.perf_counter() - started
    runs = []
    for _ in range(repetitions):
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


def _row(name: str, expression: str, payload: Any, params: dict[str, Any]) -> dict[str, Any]:
    ours, bare, theirs = _ours(expression), _bare(expression), _jsonata_python(expression)
    if theirs is not None and json.dumps(theirs(payload), sort_keys=True) != json.dumps(
            ours(payload), sort_keys=True):
        raise RuntimeError(f"{name}: the two engines disagree; the timings would mean nothing")
    row = {"mapping": name, "ours_us": per_call_us(ours, payload, **params),
           "bare_jsonatapy_us": per_call_us(bare, payload, **params) if bare else None,
           "jsonata_python_us": per_call_us(theirs, payload, **params) if theirs else None}
    row["jsonata_python_vs_ours"] = (round(row["jsonata_python_us"] / row["ours_us"], 1)
                                     if row["jsonata_python_us"] else None)
    return row


def run(size: str) -> dict[str, Any]:
    """Every mapping on every engine at ``size`` ("tiny" or "full")."""
    params = SIZES[size]
    if transform(SEED, SEED_PAYLOAD)[0] != SEED_OUTPUT:
        raise RuntimeError("the seed mapping does not give the seed contact")
    rows = [_row(name, expression, payload, params)
            for name, (expression, payload) in MAPPINGS.items()]
    theirs = _version("jsonata-python")
    ratios = [r["jsonata_python_vs_ours"] for r in rows if r["jsonata_python_vs_ours"]]
    summary = (f"ours is {min(ratios)}x to {max(ratios)}x faster than jsonata-python "
               f"(seed mapping: {rows[0]['ours_us']} µs vs {rows[0]['jsonata_python_us']} µs)"
               if ratios else f"seed mapping: {rows[0]['ours_us']} µs (jsonata-python absent)")
    notes = ["µs per evaluation, the median of the repetitions; both engines run in the same "
             "process one after the other, so machine noise hits both alike.",
             f"time limit in force for ours: {evaluation_timeout_ms()} ms per evaluation."]
    if theirs is None:
        notes.append("jsonata-python is not installed (pip install -e '.[bench]'): "
                     "only the project's engine was measured")
    return {"name": NAME,
            "parameters": {**params, "inputs": "100 equal copies, cycled",
                           "versions": {"jsonatapy": _version("jsonatapy"),
                                        "jsonata-python": theirs},
                           "mappings": {name: expression
                                        for name, (expression, _) in MAPPINGS.items()}},
            "rows": rows, "summary": summary, "notes": notes}


if __name__ == "__main__":
    result = run("full")
    for row in result["rows"]:
        print(row)
    print(result["summary"])
