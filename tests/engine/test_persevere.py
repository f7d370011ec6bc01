"""A failing batch is tried again until it succeeds, never skipped (Faust would commit it)."""

from __future__ import annotations

import asyncio

import pytest

from integrationos.engine import persevere


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persevere, "FIRST_WAIT_S", 0.01)


def test_a_batch_that_fails_twice_is_done_on_the_third_try(caplog):
    tries: list[str] = []

    async def flaky(batch: str) -> str:
        tries.append(batch)
        if len(tries) < 3:
            raise ConnectionError("broker unreachable")
        return f"{batch} done"

    assert asyncio.run(persevere.until_done("a batch", flaky, "b1")) == "b1 done"
    assert tries == ["b1", "b1", "b1"]  # the same batch each time
    assert caplog.text.count("trying the same batch again") == 2


def test_shutdown_still_stops_it():
    async def scenario() -> None:
        async def never(_: str) -> None:
            raise OSError("database down")
        task = asyncio.create_task(persevere.until_done("a batch", never, "b"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
