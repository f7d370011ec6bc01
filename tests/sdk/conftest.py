"""The SDK's tests import ``integration_platform`` from this checkout's ``sdks/python/src``
(not an installed copy, which could be stale): the SDK is a separate distribution with its
own pyproject, and the project's venv does not install it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sdk.fake_api import FakeApi

SDK_SRC = Path(__file__).resolve().parents[2] / "sdks" / "python" / "src"
if str(SDK_SRC) not in sys.path:
    sys.path.insert(0, str(SDK_SRC))


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    api = FakeApi().start()
    yield api
    api.stop()


class Sleeps(list[float]):
    """Records the SDK's waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake: FakeApi, sleeps: Sleeps) -> Iterator[Any]:
    """The blocking client on the fake API, waiting for nothing."""
    from integration_platform import IntegrationPlatform

    with IntegrationPlatform(api_key="ip_test_k", tenant_id="acme", base_url=fake.url,
                             sleep=sleeps) as sdk:
        yield sdk
