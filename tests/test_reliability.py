"""Reliability checks (docs/architecture.md, "Reliability checks") for the trigger path, against the simulator."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time

import pytest

from airflow_provider_avatar.testing.simulator import Faults, Simulator
from tests.conftest import connection_env
from tests.helpers import collect_events, make_trigger


def _use_conn(sim: Simulator, monkeypatch: pytest.MonkeyPatch, **extra: object) -> None:
    for key, value in connection_env(sim, "scenext", **extra).items():
        monkeypatch.setenv(key, value)


async def test_event_loop_is_never_blocked(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio debug mode reports any callback over 0.1 s: 300 waits on a slow API cause none.

    The heap is frozen first: a full GC pass over Airflow's ~160k objects takes ~80 ms here and
    would be billed to whichever callback it interrupts, which is not what this test is about.
    """
    _use_conn(sim, monkeypatch)
    gc.collect()
    gc.freeze()
    sim.set_faults("scenext", Faults(latency=0.5))
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.1
    ids = [sim.scenext.add_task(duration=0.8) for _ in range(300)]  # type: ignore[attr-defined]
    try:
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            events = await asyncio.gather(*(collect_events(make_trigger(i, poll_interval=0.5)) for i in ids))
    finally:
        loop.set_debug(False)
        gc.unfreeze()
    assert [e[0]["status"] for e in events] == ["success"] * 300
    slow = [r.getMessage() for r in caplog.records if r.name == "asyncio" and "took" in r.getMessage()]
    assert slow == []


async def test_many_waits_on_one_connection_respect_max_qps(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_conn(sim, monkeypatch, max_qps=10)
    ids = [sim.scenext.add_task(duration=60) for _ in range(200)]  # type: ignore[attr-defined]
    waits = [asyncio.create_task(collect_events(make_trigger(i, poll_interval=0.1))) for i in ids]
    await asyncio.sleep(3.0)
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    times = sorted(r.at for r in sim.requests("scenext"))
    assert len(times) >= 20  # it did poll
    for i in range(len(times)):  # no sliding 1-second window holds more than max_qps (+1 at the edge)
        in_window = sum(1 for t in times[i:] if t - times[i] < 1.0)
        assert in_window <= 11


async def test_retry_after_holds_the_next_call_back(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_conn(sim, monkeypatch)
    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("429",), retry_after=0.6))
    task_id = sim.scenext.add_task(duration=0)  # type: ignore[attr-defined]
    wait = asyncio.create_task(collect_events(make_trigger(task_id, poll_interval=0.05)))
    await asyncio.sleep(1.5)
    sim.set_faults("scenext", None)
    events = await wait
    assert events[0]["status"] == "success"
    times = [r.at for r in sim.requests("scenext")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) >= 3 and min(gaps) >= 0.55


def test_sync_calls_share_the_connection_rate_limit(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_avatar.hooks.scenext import ScenextHook

    _use_conn(sim, monkeypatch, max_qps=5)
    task_id = sim.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    hooks = [ScenextHook(), ScenextHook()]  # two tasks of one worker process share the limiter
    for n in range(10):
        hooks[n % 2].get_status(task_id)
    times = [r.at for r in sim.requests("scenext")]
    assert len(times) == 10
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / 5 - 0.02


async def test_deadline_holds_while_the_connection_is_paused(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another wait's 429 pauses the connection for 8 s: a wait due in 1 s still ends on time."""
    _use_conn(sim, monkeypatch)
    task_id = sim.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("429",), retry_after=8))
    first = await collect_events(make_trigger(task_id, timeout=-1))  # gets the 429: pauses the connection
    assert first[0]["status"] == "timeout"
    started = time.time()
    events = await collect_events(make_trigger(task_id, timeout=1.0, poll_interval=0.3))
    assert events[0]["status"] == "timeout"
    assert time.time() - started < 1.0 + 0.3 + 0.5


async def test_an_outage_is_not_polled_faster_than_the_poll_interval(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_conn(sim, monkeypatch)
    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("503",)))
    task_id = sim.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    events = await collect_events(make_trigger(task_id, poll_interval=0.4, error_window=2.5))
    assert events[0]["reason"] == "transient"
    times = [r.at for r in sim.requests("scenext")]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.4 / 2 - 0.02  # full jitter: never below P/2
