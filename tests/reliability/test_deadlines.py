"""Check 4: a wait's deadline is absolute: it ends between T and T + one poll interval after its
first start, also across a triggerer restart, after one last poll."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_avatar.triggers.task_status import AvatarTaskTrigger
from tests.reliability.conftest import Svc, collect_events, rebuild

pytestmark = pytest.mark.check(4)


def _long_wait(svc: Svc, **kwargs: Any) -> AvatarTaskTrigger:
    # A long grace: a TRTC start that is not listed yet is still a running wait.
    return svc.trigger(svc.script("long_running"), not_found_grace_until=svc.clock.time() + 3600, **kwargs)


async def test_the_deadline_ends_the_wait_after_a_last_poll(svc: Svc) -> None:
    started = svc.clock.time()
    (event,) = await collect_events(_long_wait(svc, timeout=1.0, poll_interval=0.4))
    assert event["status"] == "timeout"
    assert svc.clock.time() - started == pytest.approx(1.0, abs=1e-5)
    times = [r.at - started for r in svc.requests()]
    assert times == pytest.approx([0.0, 0.4, 0.8, 1.0], abs=1e-5)  # the last poll is at the deadline


async def test_a_restart_keeps_the_original_deadline(svc: Svc) -> None:
    """The triggerer dies mid-wait and rebuilds the trigger from serialize(): the deadline does not move."""
    started = svc.clock.time()
    first = _long_wait(svc, timeout=1.5, poll_interval=0.3)
    run = asyncio.ensure_future(collect_events(first))
    await svc.clock.asleep(0.8)
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    (event,) = await collect_events(rebuild(first))
    assert event["status"] == "timeout"
    assert 1.5 <= svc.clock.time() - started <= 1.5 + 0.3 + 1e-5


def test_a_deferred_sensor_hands_the_trigger_an_absolute_deadline(svc: Svc) -> None:
    sensor = svc.sensor(svc.script("long_running"), timeout=600, not_found_grace=3600, deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    assert info.value.trigger.serialize()[1]["deadline"] == svc.clock.time() + 600
