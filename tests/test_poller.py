"""The shared poller on virtual time: shared reads, ZEGO's list call, cancellation, ordering, faults."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import Faults, Simulator
from airflow_provider_avatar.triggers import poller
from tests.helpers import collect_events, make_trigger


@pytest.fixture(autouse=True)
def _virtual_time(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


def _reads(sim: Simulator, started: float) -> list[tuple[float, str]]:
    """(time, remote task id) of every Scenext status read."""
    return [(round(r.at - started, 6), r.path.rsplit("/", 1)[-1]) for r in sim.requests("scenext")]


def _pollers() -> dict[tuple[str, str], poller.Poller]:
    return poller._POLLERS.get(asyncio.get_running_loop(), {})


async def test_waits_on_one_task_share_each_read(scenext_conn: Simulator, fake_clock: FakeClock) -> None:
    task_id = scenext_conn.scenext.add_task(duration=3.0)  # type: ignore[attr-defined]
    started = fake_clock.time()
    events = await asyncio.gather(*(collect_events(make_trigger(task_id, poll_interval=0.5)) for _ in range(20)))
    assert [len(e) for e in events] == [1] * 20  # exactly one event each
    assert {e[0]["status"] for e in events} == {"success"}
    times = [t for t, _ in _reads(scenext_conn, started)]
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])  # one read per interval, not twenty


async def test_waits_that_start_apart_fall_into_step(scenext_conn: Simulator, fake_clock: FakeClock) -> None:
    """A wait may be served in the later half of its delay when its task is read anyway."""
    task_id = scenext_conn.scenext.add_task(duration=3.5)  # type: ignore[attr-defined]
    started = fake_clock.time()

    async def wait_from(offset: float) -> list[dict[str, Any]]:
        await fake_clock.asleep(offset)
        return await collect_events(make_trigger(task_id, poll_interval=1.0))

    events = await asyncio.gather(wait_from(0.0), wait_from(0.1), wait_from(0.2))
    assert [e[0]["status"] for e in events] == ["success"] * 3
    times = [t for t, _ in _reads(scenext_conn, started)]
    assert times == pytest.approx([0.0, 0.1, 0.2, 1.0, 2.0, 3.0, 4.0])


async def test_many_waits_on_few_tasks_cost_reads_per_task(scenext_conn: Simulator, fake_clock: FakeClock) -> None:
    ids = [scenext_conn.scenext.add_task(duration=2.0) for _ in range(4)]  # type: ignore[attr-defined]
    started = fake_clock.time()
    triggers = [make_trigger(task_id, poll_interval=0.5) for task_id in ids for _ in range(50)]
    events = await asyncio.gather(*(collect_events(t) for t in triggers))
    assert Counter(e[0]["status"] for e in events) == {"success": 200}
    assert Counter(task_id for _, task_id in _reads(scenext_conn, started)) == {task_id: 5 for task_id in ids}


async def test_mixed_intervals_and_deadlines_keep_their_own_schedules(
    scenext_conn: Simulator, fake_clock: FakeClock
) -> None:
    fast, slow, short = (scenext_conn.scenext.add_task(duration=60) for _ in range(3))  # type: ignore[attr-defined]
    started = fake_clock.time()
    runs = [
        asyncio.ensure_future(collect_events(make_trigger(fast, poll_interval=0.3, timeout=1.0))),
        asyncio.ensure_future(collect_events(make_trigger(slow, poll_interval=0.7, timeout=2.0))),
        asyncio.ensure_future(collect_events(make_trigger(short, poll_interval=0.4, timeout=0.5))),
    ]
    events = await asyncio.gather(*runs)
    assert [e[0]["status"] for e in events] == ["timeout"] * 3
    reads = _reads(scenext_conn, started)
    assert [t for t, i in reads if i == fast] == pytest.approx([0.0, 0.3, 0.6, 0.9, 1.0])
    assert [t for t, i in reads if i == slow] == pytest.approx([0.0, 0.7, 1.4, 2.0])
    assert [t for t, i in reads if i == short] == pytest.approx([0.0, 0.4, 0.5])  # the last read at the deadline
    assert [t for t, _ in reads] == sorted(t for t, _ in reads)  # sent in time order


async def test_a_cancelled_wait_is_forgotten(scenext_conn: Simulator, fake_clock: FakeClock) -> None:
    ids = [scenext_conn.scenext.add_task(duration=60) for _ in range(5)]  # type: ignore[attr-defined]
    runs = [asyncio.ensure_future(collect_events(make_trigger(i, poll_interval=0.5))) for i in ids]
    await fake_clock.asleep(0.75)
    (shared,) = _pollers().values()
    assert shared.waiting == 5
    for run in runs[:3]:
        run.cancel()  # the triggerer cancels a trigger (its task was cleared, or the triggerer stops)
    await asyncio.gather(*runs[:3], return_exceptions=True)
    assert shared.waiting == 2
    scenext_conn.state.requests.clear()
    await fake_clock.asleep(1.0)
    assert {r.path.rsplit("/", 1)[-1] for r in scenext_conn.requests("scenext")} == set(ids[3:])
    for run in runs[3:]:
        run.cancel()
    await asyncio.gather(*runs[3:], return_exceptions=True)
    assert shared.waiting == 0
    assert shared._task is not None
    await shared._task  # the scheduler ends with its last wait (and returns its session lease)
    assert _pollers() == {}  # nothing left running: the next wait starts a new poller


async def test_a_fault_on_a_shared_read_meets_each_wait_s_own_error_window(
    scenext_conn: Simulator, fake_clock: FakeClock
) -> None:
    task_id = scenext_conn.scenext.add_task(duration=3.0)  # type: ignore[attr-defined]
    scenext_conn.set_faults("scenext", Faults(error_rate=1.0, kinds=("503",), status_reads_only=True))

    async def outage_ends() -> None:
        await fake_clock.asleep(1.5)
        scenext_conn.set_faults("scenext", None)

    impatient, patient, _ = await asyncio.gather(
        collect_events(make_trigger(task_id, poll_interval=0.2, error_window=0.5)),
        collect_events(make_trigger(task_id, poll_interval=0.2, error_window=60)),
        outage_ends(),
    )
    assert (impatient[0]["status"], impatient[0]["reason"]) == ("error", "transient")
    assert impatient[0]["remote_task_id"] == task_id
    assert patient[0]["status"] == "success" and len(patient) == 1


# -- ZEGO: QueryDigitalHumanStreamTasks serves every running stream of the AppId -------------------
@pytest.fixture
def zego_actions(zego_conn: Simulator) -> Counter[str]:
    """Requests the ZEGO simulator answered, by Action."""
    z = zego_conn.zego  # type: ignore[attr-defined]
    z.start_delay, z.stop_delay, z.linger = 0.4, 0.4, 0.4
    answered: Counter[str] = z.answered
    return answered


def _stream_wait(task_id: str, **kwargs: Any) -> Any:
    return make_trigger(
        task_id, service="zego", poll_interval=0.5, target_states=["STOPPED"], failure_states=["FAILED"], **kwargs
    )


async def test_zego_streaming_waits_share_one_list_call_per_interval(
    zego_conn: Simulator, zego_actions: Counter[str], fake_clock: FakeClock
) -> None:
    z = zego_conn.zego  # type: ignore[attr-defined]
    ids = [z.add_stream(created_at=fake_clock.time() - 5) for _ in range(50)]
    runs = [asyncio.ensure_future(collect_events(_stream_wait(i))) for i in ids]
    await fake_clock.asleep(2.25)
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    assert zego_actions == {"QueryDigitalHumanStreamTasks": 5}  # at 0, 0.5, 1, 1.5 and 2 s


async def test_a_stream_the_list_no_longer_names_gets_its_own_read(
    zego_conn: Simulator, zego_actions: Counter[str], fake_clock: FakeClock
) -> None:
    z = zego_conn.zego  # type: ignore[attr-defined]
    live = [z.add_stream(created_at=fake_clock.time() - 5) for _ in range(10)]
    ending = z.add_stream(created_at=fake_clock.time() - 5, ttl=5.6)  # stops 0.6 s from now
    runs = [asyncio.ensure_future(collect_events(_stream_wait(i))) for i in live]
    (event,) = await collect_events(_stream_wait(ending))
    assert (event["status"], event["task_status"]["state"]) == ("success", "STOPPED")
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    # Listed at 0 and 0.5 s; at 1.0 s it is not (STOPPED since 1.0 s): asked alone, it ends the wait.
    assert zego_actions == {"QueryDigitalHumanStreamTasks": 3, "GetDigitalHumanStreamTaskStatus": 1}


async def test_a_failed_list_call_names_each_wait_s_task(
    zego_conn: Simulator, zego_actions: Counter[str], fake_clock: FakeClock
) -> None:
    z = zego_conn.zego  # type: ignore[attr-defined]
    ids = [z.add_stream(created_at=fake_clock.time() - 5) for _ in range(3)]
    zego_conn.set_faults("zego", Faults(error_rate=1.0, kinds=("503",), status_reads_only=True))
    events = await asyncio.gather(*(collect_events(_stream_wait(i, error_window=0.6)) for i in ids))
    assert [(e[0]["status"], e[0]["reason"], e[0]["remote_task_id"]) for e in events] == [
        ("error", "transient", i) for i in ids
    ]


async def test_a_poller_that_cannot_start_ends_its_waits_instead_of_hanging(
    scenext_conn: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_avatar.transport import aio

    def broken() -> Any:
        raise RuntimeError("no session")

    monkeypatch.setattr(aio, "shared_session", broken)
    task_id = scenext_conn.scenext.add_task(duration=1.0)  # type: ignore[attr-defined]
    (event,) = await collect_events(make_trigger(task_id), limit=5.0)
    assert (event["status"], event["reason"], event["error_type"]) == ("error", "polling_error", "RuntimeError")
    assert _pollers() == {}


async def test_a_read_without_an_answer_ends_at_its_budget(
    scenext_conn: Simulator, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status read that never answers is given up one interval after the wait's deadline; the
    wait then ends with its timeout, and the same poller's other waits go on being read."""
    from airflow_provider_avatar.hooks.scenext import ScenextHook

    hung, fine = (scenext_conn.scenext.add_task(duration=60) for _ in range(2))  # type: ignore[attr-defined]
    real = ScenextHook.aget_status

    async def hangs_for_one(self: ScenextHook, remote_task_id: str, **kwargs: Any) -> Any:
        if remote_task_id == hung:
            await fake_clock.asleep(10_000)  # a server that never answers (and a read timeout that never fires)
        return await real(self, remote_task_id, **kwargs)

    monkeypatch.setattr(ScenextHook, "aget_status", hangs_for_one)
    started = fake_clock.time()
    other = asyncio.ensure_future(collect_events(make_trigger(fine, poll_interval=0.5, timeout=3.0)))
    (event,) = await collect_events(make_trigger(hung, poll_interval=0.5, timeout=1.0))
    assert event["status"] == "timeout"
    assert fake_clock.time() - started == pytest.approx(1.5)  # the deadline plus one interval
    (late,) = await other
    assert late["status"] == "timeout"
    assert [t for t, i in _reads(scenext_conn, started) if i == fine][-1] == pytest.approx(3.0)
