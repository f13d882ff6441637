"""Waiting on ZEGO streams over real HTTP against the simulator: states, history, the 10 QPS limit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_avatar.exceptions import AvatarError
from airflow_provider_avatar.hooks.zego import ZegoDigitalHumanHook
from airflow_provider_avatar.sensors.zego import ZegoDigitalHumanStreamSensor
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import Simulator
from tests.conftest import SENTINEL_ZEGO_SECRET
from tests.helpers import collect_events, make_trigger

STREAM = {"target_states": ["STREAMING"], "failure_states": ["FAILED", "STOPPED"]}
END = {"target_states": ["STOPPED"], "failure_states": ["FAILED"]}


@pytest.fixture(autouse=True)
def _virtual_time(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


@pytest.fixture
def zsim(zego_conn: Simulator) -> Any:
    z = zego_conn.zego  # type: ignore[attr-defined]
    z.start_delay, z.stop_delay, z.linger = 0.4, 0.4, 0.4
    return z


def _trigger(task_id: str, states: dict[str, list[str]], **kwargs: Any) -> Any:
    return make_trigger(task_id, service="zego", poll_interval=0.25, timeout=10, **states, **kwargs)


async def test_waits_until_streaming(zsim: Any, fake_clock: FakeClock) -> None:
    task_id = zsim.add_stream()
    (event,) = await collect_events(_trigger(task_id, STREAM))
    assert (event["status"], event["task_status"]["state"]) == ("success", "STREAMING")
    assert event["task_status"]["result"]["room_id"] == "room1"
    assert fake_clock.elapsed == pytest.approx(0.5, abs=1e-6)  # polls at 0 and 0.25 s saw it STARTING


async def test_init_failure_fails_with_its_reason(zsim: Any) -> None:
    task_id = zsim.add_stream(outcome="init_failed")
    (event,) = await collect_events(_trigger(task_id, STREAM))
    assert (event["status"], event["task_status"]["state"]) == ("failed", "FAILED")
    assert "failed to initialize" in event["message"]


async def test_stream_that_stops_before_it_was_awaited_live_fails_the_streaming_wait(
    zsim: Any, fake_clock: FakeClock
) -> None:
    task_id = zsim.add_stream()
    fake_clock.advance(0.5)
    assert ZegoDigitalHumanHook().stop_stream(task_id) == "stopped"
    (event,) = await collect_events(_trigger(task_id, STREAM))
    assert event["status"] == "failed" and event["task_status"]["state"] == "STOPPED"


@pytest.mark.parametrize(("wait_before", "seen"), [(0.0, "5"), (0.6, "5"), (2.0, "400000005")])
async def test_waiting_for_the_end_after_a_stop(
    zsim: Any, fake_clock: FakeClock, wait_before: float, seen: str
) -> None:
    """4 → 5 → "not found": each reads as STOPPED after a stop, even when the first poll is late."""
    task_id = zsim.add_stream()
    fake_clock.advance(0.5)
    ZegoDigitalHumanHook().stop_stream(task_id)
    fake_clock.advance(wait_before)  # 0: sees 4 then 5; 0.6: sees 5; 2.0: the task is already gone
    (event,) = await collect_events(_trigger(task_id, END, seen_states=["STOPPING"]))
    assert (event["status"], event["task_status"]["state"]) == ("success", "STOPPED")
    assert event["task_status"]["raw_status"] == seen


async def test_gone_stream_seen_live_in_this_wait_is_stopped_at_once(zsim: Any, fake_clock: FakeClock) -> None:
    """A stream that ended (here: stopped by someone else) after the wait saw it live: STOPPED at the
    first "not found", with no grace."""
    zsim.stop_delay = zsim.linger = 0.0  # 3 → gone at once: the wait never sees 4 or 5
    task_id = zsim.add_stream()
    zsim.task(task_id).stop_at = fake_clock.time() + 0.9
    trigger = _trigger(task_id, END, not_found_grace_until=fake_clock.time() + 600)
    (event,) = await collect_events(trigger)
    assert (event["status"], event["task_status"]["state"]) == ("success", "STOPPED")
    assert fake_clock.elapsed == pytest.approx(1.0, abs=1e-6)  # the first poll after the end


async def test_stream_seen_starting_and_then_gone_fails_at_once(zsim: Any, fake_clock: FakeClock) -> None:
    """Seen STARTING, then not found (an init failure dropped at once): FAILED at the first "not
    found", not after the not-found grace."""
    zsim.linger = 0.0  # 1 → gone: the wait never sees Status 2
    task_id = zsim.add_stream(outcome="init_failed")
    trigger = _trigger(task_id, STREAM, not_found_grace_until=fake_clock.time() + 600)
    (event,) = await collect_events(trigger)
    assert (event["status"], event["task_status"]["state"]) == ("failed", "FAILED")
    assert event["task_status"]["error_message"] == "stream task ended before it was seen streaming (seen: STARTING)"
    assert fake_clock.elapsed == pytest.approx(0.5, abs=1e-6)  # the first poll after it was dropped at 0.4 s


async def test_never_seen_stream_is_retried_through_the_grace_then_never_found(
    zsim: Any, zego_conn: Simulator, fake_clock: FakeClock
) -> None:
    started = fake_clock.time()
    trigger = _trigger("no-such-task", END, not_found_grace_until=started + 0.5)
    (event,) = await collect_events(trigger)
    assert (event["status"], event["reason"], event["error"]["code"]) == ("error", "not_found", "400000005")
    assert "never found: check the remote task id" in event["message"]
    times = [r.at - started for r in zego_conn.requests("zego")]
    assert times[-2] < 0.5 <= times[-1]  # retried during the grace


# -- the sensor in its three modes ---------------------------------------------------------------
def _run(sensor: ZegoDigitalHumanStreamSensor) -> tuple[str, Any]:
    try:
        try:
            return "ok", sensor.execute({})
        except TaskDeferred as deferred:
            (event,) = asyncio.run(collect_events(deferred.trigger))
            return "ok", getattr(sensor, deferred.method_name)({}, event=event)
    except AvatarError as exc:
        return "error", (type(exc).__name__, exc.code)


@pytest.mark.parametrize("deferrable", [False, True])
def test_sensor_waits_for_the_end_after_stop_requested(zsim: Any, fake_clock: FakeClock, deferrable: bool) -> None:
    """``target_states={"STOPPED"}`` does not inherit STOPPED as a failure; "not found" counts as ended."""
    task_id = zsim.add_stream()
    fake_clock.advance(0.5)
    ZegoDigitalHumanHook().stop_stream(task_id)
    fake_clock.advance(1.0)  # past 4 and 5: only "not found" is left
    sensor = ZegoDigitalHumanStreamSensor(
        task_id="w",
        remote_task_id=task_id,
        target_states={"STOPPED"},
        stop_requested=True,
        poll_interval=0.1,
        timeout=10,
        deferrable=deferrable,
    )
    kind, value = _run(sensor)
    assert (kind, value["state"], value["error_code"]) == ("ok", "STOPPED", "400000005")


def test_sensor_hands_what_it_saw_to_the_trigger(zsim: Any, fake_clock: FakeClock) -> None:
    task_id = zsim.add_stream()
    fake_clock.advance(0.5)
    sensor = ZegoDigitalHumanStreamSensor(
        task_id="w", remote_task_id=task_id, target_states={"STOPPED"}, poll_interval=0.1, timeout=10, deferrable=True
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["seen_states"] == ["STREAMING"]
    assert SENTINEL_ZEGO_SECRET not in json.dumps(kwargs)


def test_reschedule_mode_cannot_wait_for_the_end_without_knowing_the_stream_was_live() -> None:
    with pytest.raises(ValueError, match="stop_requested"):
        ZegoDigitalHumanStreamSensor(task_id="w", remote_task_id="t", target_states={"STOPPED"}, mode="reschedule")
    ZegoDigitalHumanStreamSensor(
        task_id="w", remote_task_id="t", target_states={"STOPPED"}, mode="reschedule", stop_requested=True
    )
    ZegoDigitalHumanStreamSensor(task_id="w", remote_task_id="t", mode="reschedule")  # STREAMING needs no memory
