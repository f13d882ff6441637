"""AvatarTaskTrigger against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import Faults, Simulator
from airflow_provider_avatar.triggers import poller
from airflow_provider_avatar.triggers.task_status import AvatarTaskTrigger
from tests.conftest import connection_env
from tests.helpers import collect_events, make_trigger


@pytest.fixture(autouse=True)
def _virtual_time(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


@pytest.fixture(autouse=True)
def _no_blocking_calls() -> Iterator[None]:
    """Any blocking call in the trigger (requests, time.sleep) fails the test."""
    with (
        mock.patch("requests.Session.send", side_effect=AssertionError("blocking HTTP in trigger")),
        mock.patch("time.sleep", side_effect=AssertionError("time.sleep in trigger")),
    ):
        yield


async def test_past_deadline_times_out_after_one_final_poll(scenext_conn: Simulator) -> None:
    task_id = scenext_conn.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    events = await collect_events(make_trigger(task_id, timeout=-5))
    assert [e["status"] for e in events] == ["timeout"]
    assert events[0]["task_status"]["state"] == "RUNNING"
    assert len(scenext_conn.requests("scenext")) == 1


async def test_timeout_message_names_the_utc_deadline_and_the_elapsed_wait(
    scenext_conn: Simulator, fake_clock: FakeClock
) -> None:
    """Not an epoch number: the deadline in UTC and how long the wait took."""
    task_id = scenext_conn.scenext.add_task(duration=7200)  # type: ignore[attr-defined]
    started = fake_clock.time()  # 2026-01-01 00:00:00 UTC
    trigger = make_trigger(task_id, timeout=3605, poll_interval=60, started_at=started)
    (event,) = await collect_events(trigger)
    assert event["message"] == (
        "timed out after 1h00m05s waiting (deadline 2026-01-01 01:00:05 UTC); last state: RUNNING"
    )


def test_old_serialized_kwargs_without_started_at_still_load() -> None:
    _, kwargs = make_trigger("42").serialize()
    del kwargs["started_at"]
    assert AvatarTaskTrigger(**kwargs).started_at is None


async def test_a_task_never_seen_is_retried_within_the_grace_then_never_found(
    scenext_conn: Simulator, fake_clock: FakeClock
) -> None:
    started = fake_clock.time()
    events = await collect_events(make_trigger("no-such-task", not_found_grace_until=started + 0.7))
    assert (events[0]["status"], events[0]["reason"]) == ("error", "not_found")
    assert "never found: check the remote task id" in events[0]["message"]
    times = [r.at - started for r in scenext_conn.requests("scenext")]
    assert times[-2] < 0.7 <= times[-1]  # retried through the grace; the first read past it decides


async def test_a_task_seen_and_then_gone_is_decided_at_once(scenext_conn: Simulator, fake_clock: FakeClock) -> None:
    """No grace for a task that existed: the first "not found" after it was seen ends the wait."""
    task_id = scenext_conn.scenext.add_task(duration=60, gone_after=1.0)  # type: ignore[attr-defined]
    started = fake_clock.time()
    (event,) = await collect_events(make_trigger(task_id, poll_interval=0.5, not_found_grace_until=started + 600))
    assert (event["status"], event["task_status"]["state"]) == ("failed", "FAILED")
    assert event["task_status"]["error_message"] == "task was no longer found after it was seen RUNNING"
    assert fake_clock.time() - started == pytest.approx(1.0, abs=1e-5)


async def test_not_found_then_visible_succeeds(scenext_conn: Simulator, fake_clock: FakeClock) -> None:
    """A gateway may not list a task right after create: the wait survives that."""
    trigger = make_trigger("late-1", not_found_grace_until=fake_clock.time() + 10)

    async def create_later() -> None:
        await fake_clock.asleep(0.5)
        scenext_conn.scenext.add_task(task_id="late-1", duration=0.2)  # type: ignore[attr-defined]

    events, _ = await asyncio.gather(collect_events(trigger), create_later())
    assert events[0]["status"] == "success"


async def test_error_window_bounds_an_outage(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in connection_env(sim, "scenext").items():
        monkeypatch.setenv(key, value)
    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("503",)))
    task_id = sim.scenext.add_task(duration=30)  # type: ignore[attr-defined]
    events = await collect_events(make_trigger(task_id, error_window=1.0))
    assert (events[0]["status"], events[0]["reason"]) == ("error", "transient")
    assert events[0]["error"]["http_status"] == 503


async def test_missing_connection_is_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SCENEXT_DEFAULT", raising=False)
    events = await collect_events(make_trigger("1"))
    assert events[0]["status"] == "error"


@pytest.fixture
def connection_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the async connection lookups (the real ones still run)."""
    import airflow.providers.common.compat.connection as compat

    reads: list[str] = []
    real = compat.get_async_connection

    async def counting(conn_id: str, **kwargs: Any) -> Any:
        reads.append(conn_id)
        await asyncio.sleep(0.05)  # a slow lookup: concurrent first callers overlap
        return await real(conn_id, **kwargs)

    monkeypatch.setattr(compat, "get_async_connection", counting)
    return reads


async def test_the_waits_of_one_loop_share_one_connection_read(
    scenext_conn: Simulator, connection_reads: list[str]
) -> None:
    ids = [scenext_conn.scenext.add_task(duration=0.3) for _ in range(50)]  # type: ignore[attr-defined]
    events = await asyncio.gather(*(collect_events(make_trigger(i, poll_interval=0.1)) for i in ids))
    assert [e[0]["status"] for e in events] == ["success"] * 50
    assert connection_reads == ["scenext_default"]


async def test_a_shared_hook_is_rebuilt_after_its_ttl(
    scenext_conn: Simulator, connection_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """So an edited connection (a rotated key) reaches waits that are already running."""
    monkeypatch.setattr(poller, "HOOK_TTL", 0.35)
    task_id = scenext_conn.scenext.add_task(duration=1.2)  # type: ignore[attr-defined]
    (event,) = await collect_events(make_trigger(task_id, poll_interval=0.1))
    assert event["status"] == "success"
    assert len(connection_reads) == 4  # read at 0, 0.4, 0.8 and 1.2 s


async def test_a_failed_connection_read_is_not_cached(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SCENEXT_DEFAULT", raising=False)
    first = await collect_events(make_trigger("1"))
    assert first[0]["status"] == "error"
    for key, value in connection_env(sim, "scenext").items():
        monkeypatch.setenv(key, value)
    task_id = sim.scenext.add_task(duration=0)  # type: ignore[attr-defined]
    (event,) = await collect_events(make_trigger(task_id))
    assert event["status"] == "success"  # same loop, same shared hook: the read is tried again
