"""Check 5: triggers only read. Re-created from serialize() or running twice at once, a trigger
sends no write; each run() yields exactly one event and returns."""

from __future__ import annotations

import asyncio

import pytest

from tests.reliability.conftest import Svc, collect_events, rebuild

pytestmark = pytest.mark.check(5)


async def test_two_copies_and_a_restarted_one_only_read(svc: Svc) -> None:
    task_id = svc.script("succeeds")
    trigger = svc.trigger(task_id)
    killed = asyncio.ensure_future(collect_events(rebuild(trigger)))  # a triggerer that dies mid-wait
    await svc.clock.asleep(0.3)
    killed.cancel()
    await asyncio.gather(killed, return_exceptions=True)
    runs = await asyncio.gather(collect_events(rebuild(trigger)), collect_events(rebuild(trigger)))  # HA: two copies
    assert [len(events) for events in runs] == [1, 1]
    assert [events[0]["status"] for events in runs] == ["success", "success"]
    assert svc.writes() == [], "a trigger sent a write"
    assert all(r.read for r in svc.requests())
