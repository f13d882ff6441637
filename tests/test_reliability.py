"""Edges of the rate limiter, connection pauses and outage backoff on virtual time. The reliability
checks over every service are in tests/reliability/ (docs/architecture.md, "Reliability checks");
real-load figures are in benchmarks/."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from airflow_provider_avatar.clock import use_clock
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import Faults, Simulator
from airflow_provider_avatar.transport.ratelimit import HEADROOM, RateLimiter
from tests.conftest import connection_env
from tests.helpers import collect_events, make_trigger


@pytest.fixture(autouse=True)
def _virtual_time(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


def _use_conn(sim: Simulator, monkeypatch: pytest.MonkeyPatch, service: str = "scenext", **extra: object) -> None:
    for key, value in connection_env(sim, service, **extra).items():
        monkeypatch.setenv(key, value)


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
