"""Waiting on TRTC ingest tasks through the real SDK against the simulator, on virtual time:
every InProgress/NotExist history, the three sensor modes, the 20 QPS limit, nothing blocking the loop."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_avatar.clock import current
from airflow_provider_avatar.exceptions import AvatarError
from airflow_provider_avatar.hooks.trtc import TrtcHook
from airflow_provider_avatar.sensors.trtc import TrtcStreamIngestSensor
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import Simulator
from tests.conftest import SENTINELS
from tests.helpers import collect_events, make_trigger

LIVE = {"target_states": ["STREAMING"], "failure_states": ["FAILED", "STOPPED"]}
END = {"target_states": ["STOPPED"], "failure_states": ["FAILED"]}
SECRET = SENTINELS["trtc"]


@pytest.fixture(autouse=True)
def _virtual_time(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


@pytest.fixture
def tsim(trtc_conn: Simulator) -> Any:
    return trtc_conn.services["trtc"]


def _start(url: str = "https://media.test/intro.mp4?sim_seconds=3", **kwargs: Any) -> str:
    return TrtcHook().start_stream_ingest(room_id="room-1", stream_url=url, user_id="robot_1", **kwargs)


def _trigger(task_id: str, states: dict[str, list[str]], poll_interval: float = 0.25, **kwargs: Any) -> Any:
    """A wait as the sensor defers it: TRTC lists a new task only after a moment, hence the grace."""
    kwargs.setdefault("not_found_grace_until", current().time() + 60)
    return make_trigger(task_id, service="trtc", poll_interval=poll_interval, timeout=30, **states, **kwargs)


# -- the trigger over HTTP, one row per history -------------------------------------------------------
async def test_a_start_that_never_goes_live_fails_after_the_grace(tsim: Any, fake_clock: FakeClock) -> None:
    """TRTC has no failed state: a broken source is NotExist from the start."""
    task_id = _start("https://media.test/broken.mp4")
    grace_until = fake_clock.time() + 5
    (event,) = await collect_events(_trigger(task_id, LIVE, not_found_grace_until=grace_until))
    assert (event["status"], event["task_status"]["state"]) == ("failed", "FAILED")
    assert "failed to start" in event["message"]
    assert fake_clock.time() >= grace_until  # NotExist was retried during the grace


async def test_an_ingest_seen_live_that_ends_is_stopped_at_once(tsim: Any, fake_clock: FakeClock) -> None:
    task_id = _start()  # 3 s of media, played once
    started = fake_clock.time()
    (event,) = await collect_events(_trigger(task_id, END, not_found_grace_until=started + 60))
    assert (event["status"], event["task_status"]["state"]) == ("success", "STOPPED")
    assert fake_clock.time() - started < 0.5 + 3 + 0.5  # decided at the first NotExist, no grace waited


async def test_an_ingest_that_ends_before_it_was_seen_live_fails_the_live_wait(tsim: Any) -> None:
    task_id = _start()
    assert TrtcHook().stop_stream_ingest(task_id) == "stopped"
    (event,) = await collect_events(_trigger(task_id, LIVE, seen_states=["STOPPING"]))
    assert (event["status"], event["task_status"]["state"]) == ("failed", "STOPPED")


@pytest.mark.parametrize("outcome", ["stopped", "already_stopped"])
async def test_waiting_for_the_end_after_a_stop(tsim: Any, fake_clock: FakeClock, outcome: str) -> None:
    task_id = _start()
    if outcome == "already_stopped":
        await fake_clock.asleep(10)  # the media ran out: Stop answers TaskFinished
    assert TrtcHook().stop_stream_ingest(task_id) == outcome
    (event,) = await collect_events(_trigger(task_id, END, seen_states=["STOPPING"]))
    assert (event["status"], event["task_status"]["state"]) == ("success", "STOPPED")


# -- the sensor: poke, reschedule and deferrable agree ------------------------------------------------
def _run(sensor: TrtcStreamIngestSensor) -> tuple[str, Any]:
    try:
        try:
            return "ok", sensor.execute({})["state"]
        except TaskDeferred as deferred:
            assert SECRET not in json.dumps(deferred.trigger.serialize()[1])
            (event,) = asyncio.run(collect_events(deferred.trigger))
            return "ok", getattr(sensor, deferred.method_name)({}, event=event)["state"]
    except AvatarError as exc:
        return "error", (type(exc).__name__, exc.code)


#: Going live and never going live are in tests/reliability (mode agreement over every service);
#: waiting for the end of an ingest is TRTC's own.
HISTORIES: dict[str, tuple[str, dict[str, Any], tuple[str, Any]]] = {
    "plays to the end": ("https://media.test/a.mp4?sim_seconds=2", {"target_states": {"STOPPED"}}, ("ok", "STOPPED")),
}


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
@pytest.mark.parametrize("history", list(HISTORIES))
def test_sensor_modes_agree(tsim: Any, history: str, deferrable: bool) -> None:
    url, options, expected = HISTORIES[history]
    sensor = TrtcStreamIngestSensor(
        task_id="w", remote_task_id=_start(url), poll_interval=0.25, timeout=30, deferrable=deferrable, **options
    )
    assert _run(sensor) == expected


def test_reschedule_mode_needs_stop_requested_to_wait_for_the_end() -> None:
    with pytest.raises(ValueError, match="stop_requested"):
        TrtcStreamIngestSensor(task_id="w", remote_task_id="t", target_states={"STOPPED"}, mode="reschedule")
    TrtcStreamIngestSensor(
        task_id="w", remote_task_id="t", target_states={"STOPPED"}, mode="reschedule", stop_requested=True
    )


# -- many waits on one connection ---------------------------------------------------------------------
async def test_a_task_not_listed_yet_is_polled_at_the_normal_pace(
    tsim: Any, trtc_conn: Simulator, fake_clock: FakeClock
) -> None:
    """Right after a start TRTC answers NotExist for a moment: that is expected, not an error to back
    off from (backing off could miss a short clip entirely)."""
    tsim.start_delay = 3.0
    task_id = _start()
    trtc_conn.state.requests.clear()
    (event,) = await collect_events(_trigger(task_id, LIVE, poll_interval=0.5))
    assert event["status"] == "success"
    times = [r.at for r in trtc_conn.requests("trtc")]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert len(times) >= 6 and set(gaps) == {0.5}
