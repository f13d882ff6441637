"""Reliability of the trigger path on virtual time (docs/architecture.md, "Reliability checks"):
nothing blocks the loop, rate limits and Retry-After hold, deadlines hold. Every assertion is exact;
real-load figures are in benchmarks/."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from airflow.sdk.bases.hook import BaseHook

from airflow_provider_avatar.clock import current, use_clock
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import Faults, Simulator
from airflow_provider_avatar.transport.ratelimit import HEADROOM, RateLimiter
from airflow_provider_avatar.triggers.poller import Poller
from tests.conftest import connection_env
from tests.helpers import collect_events, make_trigger


@pytest.fixture(autouse=True)
def _virtual_time(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


def _use_conn(sim: Simulator, monkeypatch: pytest.MonkeyPatch, service: str = "scenext", **extra: object) -> None:
    for key, value in connection_env(sim, service, **extra).items():
        monkeypatch.setenv(key, value)


# -- nothing blocks the event loop ------------------------------------------------------------------
#: Calls that block the thread they run on. In the trigger path they may only run in a worker thread.
BLOCKING_CALLS: dict[str, tuple[Any, str]] = {
    "time.sleep": (time, "sleep"),
    "requests.Session.send": (requests.Session, "send"),
    "BaseHook.get_connection": (BaseHook, "get_connection"),
    "socket.getaddrinfo": (__import__("socket"), "getaddrinfo"),
}


@pytest.fixture
def loop_thread_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make every blocking call fail when made on the thread running the event loop; record it.

    The trigger turns any exception into an error event, so the record, not the exception, is
    what the tests check.
    """
    loop_thread = threading.get_ident()  # pytest-asyncio runs the loop on the test's thread
    calls: list[str] = []

    def guard(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == loop_thread:
                calls.append(name)
                raise AssertionError(f"blocking call {name} on the event loop thread")
            return real(*args, **kwargs)

        return guarded

    for name, (owner, attr) in BLOCKING_CALLS.items():
        real = getattr(owner, attr)
        if isinstance(owner, type) and isinstance(owner.__dict__.get(attr), classmethod):
            func = owner.__dict__[attr].__func__
            monkeypatch.setattr(owner, attr, classmethod(guard(name, func)))
        else:
            monkeypatch.setattr(owner, attr, guard(name, real))
    yield calls


async def test_no_blocking_call_on_the_loop_thread_while_many_waits_run(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, loop_thread_calls: list[str]
) -> None:
    """Connection reads, 5xx/429/resets/HTML errors, Retry-After pauses, rate limiting, not found,
    signed (ZEGO) and Bearer (Scenext) requests: all on the loop without one blocking call."""
    _use_conn(sim, monkeypatch, "scenext", max_qps=20)
    _use_conn(sim, monkeypatch, "zego")
    sim.set_faults("scenext", Faults(error_rate=0.3, kinds=("503", "429", "reset", "html"), retry_after=0.5, seed=1))
    outcomes = ["completed", "failed", "no_artifact"] * 10
    scenext = [sim.scenext.add_task(duration=2.0, outcome=o) for o in outcomes]  # type: ignore[attr-defined]
    zego = [sim.zego.add_stream() for _ in range(10)]  # type: ignore[attr-defined]
    triggers = [make_trigger(i, poll_interval=0.5) for i in scenext]
    triggers += [
        make_trigger(i, service="zego", poll_interval=0.5, target_states=["STREAMING"], failure_states=["FAILED"])
        for i in zego
    ]
    triggers.append(make_trigger("no-such-task", poll_interval=0.5, not_found_grace_until=current().time() + 1))
    events = await asyncio.gather(*(collect_events(t) for t in triggers))
    expected = {"completed": "success", "failed": "failed", "no_artifact": "failed"}
    assert [e[0]["status"] for e in events] == [expected[o] for o in outcomes] + ["success"] * 10 + ["error"]
    assert loop_thread_calls == []
    assert any(r.status == 429 for r in sim.requests("scenext"))  # the error paths did run


@pytest.mark.parametrize("inserted", ["time.sleep", "requests.Session.send", "BaseHook.get_connection"])
async def test_the_guard_catches_a_blocking_call_put_in_the_trigger_path(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, loop_thread_calls: list[str], inserted: str
) -> None:
    """The check above is not vacuous: one blocking call inserted in the poll is caught."""
    _use_conn(sim, monkeypatch)
    real_read = Poller._read

    async def read_with_a_blocking_call(self: Poller, *args: Any) -> Any:
        if inserted == "time.sleep":
            time.sleep(0)
        elif inserted == "requests.Session.send":
            requests.Session().get(sim.url("scenext"))
        else:
            BaseHook.get_connection("scenext_default")
        return await real_read(self, *args)

    monkeypatch.setattr(Poller, "_read", read_with_a_blocking_call)
    task_id = sim.scenext.add_task(duration=0)  # type: ignore[attr-defined]
    (event,) = await collect_events(make_trigger(task_id))
    assert event["status"] == "error"
    assert loop_thread_calls == [inserted]


# -- the rate limiter -------------------------------------------------------------------------------
def _busiest_window(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


def test_200_concurrent_async_acquirers_are_paced_below_max_qps() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10)
    granted: list[float] = []

    async def acquire() -> None:
        assert await limiter.acquire_async()
        granted.append(clock.monotonic())

    async def main() -> None:
        await asyncio.gather(*(acquire() for _ in range(200)))

    with use_clock(clock):
        asyncio.run(main())
    assert len(granted) == 200
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert gaps == pytest.approx([1 / (10 * HEADROOM)] * 199)  # one slot after another, none skipped
    assert _busiest_window(granted) <= 10
    assert 199 / (granted[-1] - granted[0]) == pytest.approx(9.0)  # it keeps pacing: 9 per second


async def test_200_waits_on_one_connection_arrive_one_slot_apart(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    """Over HTTP: 200 waits on 200 tasks want 400 polls/s; a connection with max_qps=10 sends them
    one slot apart, never more than 10 in a second. (ZEGO's 200 streams would share one list call
    per interval instead: tests/test_poller.py.)"""
    _use_conn(sim, monkeypatch, max_qps=10)
    ids = [sim.scenext.add_task(duration=3600) for _ in range(200)]  # type: ignore[attr-defined]
    triggers = [make_trigger(i, poll_interval=0.5) for i in ids]
    sim.state.requests.clear()
    started = fake_clock.time()
    tasks = [asyncio.ensure_future(collect_events(t)) for t in triggers]
    await fake_clock.asleep(4.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    times = [r.at - started for r in sim.requests("scenext")]
    assert times == pytest.approx([k / (10 * HEADROOM) for k in range(37)], abs=1e-5)
    assert _busiest_window(times) <= 10
    assert all(r.status == 200 for r in sim.requests("scenext"))


def test_sync_calls_share_the_connection_rate_limit(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_avatar.hooks.scenext import ScenextHook

    _use_conn(sim, monkeypatch, max_qps=5)
    task_id = sim.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    hooks = [ScenextHook(), ScenextHook()]  # two tasks of one worker process share the limiter
    for n in range(10):
        hooks[n % 2].get_status(task_id)
    times = [r.at for r in sim.requests("scenext")]
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([1 / (5 * HEADROOM)] * 9, abs=1e-5)


# -- Retry-After, deadlines, outages ------------------------------------------------------------------
async def test_retry_after_holds_the_next_call_back(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    _use_conn(sim, monkeypatch)
    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("429",), retry_after=0.6))
    task_id = sim.scenext.add_task(duration=0)  # type: ignore[attr-defined]
    started = fake_clock.time()
    wait = asyncio.ensure_future(collect_events(make_trigger(task_id, poll_interval=0.05)))
    await fake_clock.asleep(1.5)
    sim.set_faults("scenext", None)
    (event,) = await wait
    assert event["status"] == "success"
    times = [r.at - started for r in sim.requests("scenext")]
    assert times == pytest.approx([0.0, 0.6, 1.2, 1.8], abs=1e-5)  # every call waited out the 0.6 s
    assert [r.status for r in sim.requests("scenext")] == [429, 429, 429, 200]


async def test_a_connection_pause_cannot_move_a_waits_deadline(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    """Another wait's 429 pauses the connection for 8 s: a wait due in 1 s still ends at 1 s plus
    one poll interval (its final poll gives up waiting for the connection)."""
    _use_conn(sim, monkeypatch)
    task_id = sim.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("429",), retry_after=8))
    first = await collect_events(make_trigger(task_id, timeout=-1))  # gets the 429: pauses the connection
    assert first[0]["status"] == "timeout"
    started = fake_clock.time()
    (event,) = await collect_events(make_trigger(task_id, timeout=1.0, poll_interval=0.3))
    assert event["status"] == "timeout"
    assert fake_clock.time() - started == pytest.approx(1.3, abs=1e-5)
    assert len(sim.requests("scenext")) == 1  # the paused connection sent nothing more


async def test_an_outage_is_polled_with_backoff_from_the_poll_interval(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under errors, retry n waits between P*2^(n-1)/2 and P*2^(n-1), capped at 4P: never faster
    than normal polling. The error window is measured from the last good answer."""
    _use_conn(sim, monkeypatch)
    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("503",)))
    task_id = sim.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    poll = 0.4
    (event,) = await collect_events(make_trigger(task_id, poll_interval=poll, error_window=2.5))
    assert event["reason"] == "transient"
    times = [r.at for r in sim.requests("scenext")]
    for n, gap in enumerate((b - a for a, b in itertools.pairwise(times)), start=1):
        ceiling = min(4 * poll, poll * 2 ** (n - 1))
        assert ceiling / 2 - 1e-6 <= gap <= ceiling + 1e-6, (n, gap)
    assert times[-2] - times[0] < 2.5 <= times[-1] - times[0]  # the first poll past the window ends it
