"""The benchmarks keep working: each registered one runs at its tiny size on the real
broker and returns a well-formed result. Nothing here times anything (benchmarks are not
tests); the numbers are only checked to be numbers."""

from __future__ import annotations

import json
import numbers
import re
from pathlib import Path
from typing import Any

import pytest

from bench import common
from bench.__main__ import REGISTRY, run_one


def _numbers(rows: list[dict[str, Any]]) -> list[float]:
    return [v for row in rows for v in row.values()
            if isinstance(v, numbers.Real) and not isinstance(v, bool)]


@pytest.mark.parametrize("name", REGISTRY)
def test_tiny_run_is_well_formed(name: str, kafka_bootstrap: str,
                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IOS_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("IOS_DATA_DIR", str(tmp_path / "data"))
    result = run_one(name, "tiny")
    if result is None:
        pytest.skip(f"bench/{name}.py is not there (yet)")
    assert result["name"] == name
    assert result["rows"], "no rows"
    values = _numbers(result["rows"])
    assert values and all(v >= 0 for v in values), values
    assert any(v > 0 for v in values)
    assert re.search(r"\d\.\d", result["summary"]), "the summary states no ratio"
    if name == "pipeline_throughput":  # the headline: every row next to the raw copy
        assert result["rows"][0]["setup"] == "raw passthrough"
        assert all(row["vs raw"] > 0 for row in result["rows"])
    assert isinstance(result["parameters"], dict) and result["parameters"]["size"] == "tiny"


def test_results_and_markdown(tmp_path: Path) -> None:
    """What the runner writes: the JSON with machine and date, and a BENCHMARKS.md section
    per result with its parameters, table and summary."""
    result = {"name": "demo", "parameters": {"size": "tiny", "messages": 2000},
              "rows": [{"setup": "raw", "msg/s": 1234.5}, {"setup": "platform", "msg/s": 99.0,
                                                           "p99 ms": None}],
              "summary": "platform / raw: 0.08", "notes": ["shared machine"]}
    machine = common.machine_facts()
    assert machine["cores"] >= 1 and machine["python"]
    path = common.write_result(result, machine, tmp_path)
    stored = json.loads(path.read_text())
    assert stored["machine"] == machine and stored["date"]
    markdown = common.write_markdown(["demo"], tmp_path, tmp_path / "BENCHMARKS.md").read_text()
    assert "## demo" in markdown and "**platform / raw: 0.08**" in markdown
    assert "| setup | msg/s | p99 ms |" in markdown
    assert "| platform | 99.00 | - |" in markdown
    assert "messages = 2,000" in markdown and "- shared machine" in markdown


def test_percentile() -> None:
    assert common.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert common.percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    assert common.percentile([5.0], 99) == 5.0
