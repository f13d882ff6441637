"""Waiting on ZEGO streams over real HTTP against the simulator: states, history, the 10 QPS limit."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_avatar.exceptions import AvatarError
from airflow_provider_avatar.hooks.zego import ZegoDigitalHumanHook
from airflow_provider_avatar.sensors.zego import ZegoDigitalHumanStreamSensor
from airflow_provider_avatar.testing.simulator import Simulator
from tests.conftest import SENTINEL_ZEGO_SECRET
from tests.helpers import collect_events, make_trigger

STREAM = {"target_states": ["STREAMING"], "failure_states": ["FAILED", "STOPPED"]}
END = {"target_states": ["STOPPED"], "failure_states": ["FAILED"]}


@pytest.fixture
def zsim(zego_conn: Simulator) -> Any:
    z = zego_conn.zego  # type: ignore[attr-defined]
    z.start_delay, z.stop_delay, z.linger = 0.4, 0.4, 0.4
    return z


def _trigger(task_id: str, states: dict[str, list[str]], **kwargs: Any) -> Any:
    return make_trigger(task_id, service="zego", poll_interval=0.1, timeout=10, **states, **kwargs)


async def test_waits_until_streaming(zsim: Any) -> None:
    task_id = zsim.add_stream()
    (event,) = await collect_events(_trigger(task_id, STREAM))
    assert (event["status"], event["task_status"]["state"]) == ("success", "STREAMING")
    assert event["task_status"]["result"]["room_id"] == "room1"


async def test_init_failure_fails_with_its_reason(zsim: Any) -> None:
    task_id = zsim.add_stream(outcome="init_failed")
    (event,) = await collect_events(_trigger(task_id, STREAM))
    assert (event["status"], event["task_status"]["state"]) == ("failed", "FAILED")
    assert "failed to initialize" in event["message"]


async def test_stream_that_stops_before_it_was_awaited_live_fails_the_streaming_wait(zsim: Any) -> None:
    task_id = zsim.add_stream()
    await asyncio.sleep(0.5)
    assert ZegoDigitalHumanHook().stop_stream(task_id) == "stopped"
    (event,) = await collect_events(_trigger(task_id, STREAM))
    assert event["status"] == "failed" and event["task_status"]["state"] == "STOPPED"


@pytest.mark.parametrize("wait_before", [0.0, 0.6, 2.0])
async def test_waiting_for_the_end_after_a_stop(zsim: Any, wait_before: float) -> None:
    """4 → 5 → "not found": each reads as STOPPED after a stop, even when the first poll is late."""
    task_id = zsim.add_stream()
    await asyncio.sleep(0.5)
    ZegoDigitalHumanHook().stop_stream(task_id)
    await asyncio.sleep(wait_before)  # 0: sees 4 then 5; 0.6: sees 5; 2.0: the task is already gone
    (event,) = await collect_events(_trigger(task_id, END, seen_states=["STOPPING"]))
    assert (event["status"], event["task_status"]["state"]) == ("success", "STOPPED")


async def test_gone_stream_seen_live_in_this_wait_is_stopped(zsim: Any) -> None:
    """A stream that ended on its own (here: a stop by someone else) after the wait saw it live."""
    task_id = zsim.add_stream()
    trigger = _trigger(task_id, END)
    wait = asyncio.ensure_future(collect_events(trigger))
    await asyncio.sleep(0.8)  # the wait has seen it STREAMING
    zsim.task(task_id).stop_at = time.time()
    (event,) = await wait
    assert (event["status"], event["task_status"]["state"]) == ("success", "STOPPED")


async def test_never_seen_stream_that_is_missing_fails_after_the_grace(zsim: Any) -> None:
    started = time.time()
    trigger = _trigger("no-such-task", END, not_found_grace_until=started + 0.5)
    (event,) = await collect_events(trigger)
    assert (event["status"], event["task_status"]["state"]) == ("failed", "FAILED")
    assert event["task_status"]["error_code"] == "400000005"
    assert time.time() - started >= 0.5  # retried during the grace


async def test_bad_signature_is_an_auth_error_event(zsim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(zsim.state.api_keys, "zego", "another-secret")
    (event,) = await collect_events(_trigger(zsim.add_stream(), STREAM))
    assert (event["status"], event["reason"], event["error"]["code"]) == ("error", "auth", "100000005")
    assert SENTINEL_ZEGO_SECRET not in repr(event)


async def test_200_concurrent_waits_on_one_connection_stay_within_10_requests_per_second(zego_conn: Simulator) -> None:
    z = zego_conn.zego  # type: ignore[attr-defined]
    z.start_delay = 3600.0  # they all stay STARTING: every wait keeps polling
    triggers = [_trigger(z.add_stream(), STREAM) for _ in range(200)]
    for trigger in triggers:
        trigger.poll_interval = 0.5  # 400 polls/s wanted; the connection allows 10
    zego_conn.state.requests.clear()
    tasks = [asyncio.ensure_future(collect_events(t)) for t in triggers]
    await asyncio.sleep(4.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    times = sorted(r.at for r in zego_conn.requests("zego"))
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 10, busiest
    assert len(times) >= 30  # the limiter paces, it does not starve
    assert z.throttled == 0  # the simulator never had to refuse one
    assert all(r.status == 200 for r in zego_conn.requests("zego"))


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
def test_sensor_defaults_wait_for_streaming(zsim: Any, deferrable: bool) -> None:
    task_id = zsim.add_stream()
    sensor = ZegoDigitalHumanStreamSensor(
        task_id="w", remote_task_id=task_id, poll_interval=0.1, timeout=10, deferrable=deferrable
    )
    kind, value = _run(sensor)
    assert (kind, value["state"]) == ("ok", "STREAMING")


@pytest.mark.parametrize("deferrable", [False, True])
def test_sensor_waits_for_the_end_after_stop_requested(zsim: Any, deferrable: bool) -> None:
    """``target_states={"STOPPED"}`` does not inherit STOPPED as a failure; "not found" counts as ended."""
    task_id = zsim.add_stream()
    time.sleep(0.5)
    ZegoDigitalHumanHook().stop_stream(task_id)
    time.sleep(1.0)  # past 4 and 5: only "not found" is left
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


def test_sensor_hands_what_it_saw_to_the_trigger(zsim: Any) -> None:
    task_id = zsim.add_stream()
    time.sleep(0.5)
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
