"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.triggers.task_status import AvatarTaskTrigger


def make_trigger(
    remote_task_id: str,
    *,
    timeout: float = 30.0,
    poll_interval: float = 0.2,
    service: str = "scenext",
    **kwargs: Any,
) -> AvatarTaskTrigger:
    """A trigger (Scenext unless told) rebuilt from ``serialize()``, exactly like the triggerer does."""
    trigger = AvatarTaskTrigger(
        service=service,
        conn_id=f"{service}_default",
        remote_task_id=remote_task_id,
        target_states=kwargs.pop("target_states", ["SUCCEEDED"]),
        failure_states=kwargs.pop("failure_states", ["FAILED"]),
        poll_interval=poll_interval,
        deadline=clock().time() + timeout,
        **kwargs,
    )
    classpath, trigger_kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt: AvatarTaskTrigger = getattr(importlib.import_module(module), name)(**trigger_kwargs)
    return rebuilt


async def collect_events(trigger: AvatarTaskTrigger, limit: float = 60.0) -> list[dict[str, Any]]:
    """Every event the trigger yields until its generator returns (``limit``: real seconds, a hang guard).

    ``asyncio.timeout`` rather than ``wait_for``: it runs the trigger in this task, so a
    :class:`~airflow_provider_avatar.testing.clock.FakeClock` sees what the trigger waits on.
    """
    async with asyncio.timeout(limit):
        return [event.payload async for event in trigger.run()]
