"""A bounded schemathesis run against our own OpenAPI document: every operation, generated
inputs (valid and not), as a tenant admin; no answer may be a 5xx.

Writes go to an in-process log applied by the real projector, so they succeed instead of
answering 503 for want of a broker. Skipped when schemathesis is not installed (it is not a
runtime dependency): ``pip install schemathesis``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from integrationos.api.app import create_app
from integrationos.api.openapi import document
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.auth_support import InProcessLog
from tests.api.conftest import ACME

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

EXAMPLES_PER_OPERATION = 25
# Reaches out over the network with generated connector configs: slow, not our 5xx to find.
SKIPPED = {"testConnector"}


def _with_log(app: Any, log: InProcessLog) -> Any:
    """The app, its writes going to ``log`` (the platform is shared by every request)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["state"]["platform"].producer = log
        await app(scope, receive, send)

    return wrapped


def test_no_generated_request_gets_a_5xx(settings, seed):
    from schemathesis.checks import not_a_server_error

    seed.apply(Event(t.TENANT_PLAN_CHANGED, "acme", "acme", {  # no rate limit in the way
        "id": "acme", "plan": "enterprise", "messagesPerMonth": None,
        "requestsPerMinute": 100_000, "connectors": None, "retentionDays": None}))
    app = _with_log(create_app(settings), InProcessLog(seed))
    schema = schemathesis.openapi.from_dict(document())
    counted: dict[str, int] = {}
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw["operationId"] in SKIPPED:
            continue

        @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
                             derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=operation.as_strategy())
        def run(case: Any) -> None:
            # generated bearer tokens beside the key would make every request ambiguous (401)
            case.headers = {k: v for k, v in (case.headers or {}).items()
                            if k.lower() != "authorization"}
            response = case.call(app=app, headers=ACME)
            counted[case.operation.label] = counted.get(case.operation.label, 0) + 1
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code} {response.text[:200]}")
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except Exception as exc:  # collected, reported together below
            failures.append(f"{operation.label}: {str(exc)[:500]}")
    print(f"schemathesis: {sum(counted.values())} cases over {len(counted)} operations; "
          f"statuses {dict(sorted(statuses.items()))}")
    assert not failures, "\n".join(failures)
    # authenticated, and inputs good enough to get past validation often: a real run
    assert sum(n for status, n in statuses.items() if status < 300) > len(counted)
    assert len(counted) == len(list(schema.get_all_operations())) - len(SKIPPED)
