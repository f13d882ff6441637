"""Poke, reschedule and deferrable modes give the same answer for the same remote history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred
from airflow.sdk.exceptions import AirflowRescheduleException

from airflow_provider_avatar.clock import current
from airflow_provider_avatar.exceptions import AvatarAuthError, AvatarError, AvatarTaskFailedError, AvatarTimeoutError
from airflow_provider_avatar.sensors.base import AvatarTaskSensor
from airflow_provider_avatar.sensors.scenext import ScenextVideoSensor
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import Simulator
from tests.helpers import collect_events


@pytest.fixture(autouse=True)
def _virtual_time(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


def _now() -> datetime:
    return datetime.fromtimestamp(current().time(), UTC)


class _FakeTI:
    """What the sensor asks of the task instance: when the first reschedule happened, and when
    this try started (``execution_timeout`` counts from it)."""

    def __init__(self, start_date: datetime | None = None) -> None:
        self.first: datetime | None = None
        self.start_date = start_date

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first


def _sensor(task_id: str, **kwargs: Any) -> ScenextVideoSensor:
    kwargs.setdefault("not_found_grace", 5)
    return ScenextVideoSensor(task_id="wait", remote_task_id=task_id, poll_interval=0.2, timeout=20, **kwargs)


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except AvatarError as exc:
        return "error", (type(exc).__name__, exc.reason, exc.remote_task_id, exc.code, exc.detail)


def run_poke(task_id: str) -> tuple[str, Any]:
    return _outcome(lambda: _sensor(task_id, mode="poke", deferrable=False).execute({}))


def run_reschedule(task_id: str) -> tuple[str, Any]:
    ti = _FakeTI()

    def loop() -> Any:
        while True:  # every reschedule builds a new sensor instance, like Airflow does
            sensor = _sensor(task_id, mode="reschedule", deferrable=False)
            try:
                return sensor.execute({"ti": ti})
            except AirflowRescheduleException:
                ti.first = ti.first or _now()
                current().sleep(0.2)

    return _outcome(loop)


def run_deferrable(task_id: str) -> tuple[str, Any]:
    sensor = _sensor(task_id, deferrable=True)

    def flow() -> Any:
        try:
            return sensor.execute({})
        except TaskDeferred as deferred:
            events = asyncio.run(collect_events(deferred.trigger))
            assert len(events) == 1
            return getattr(sensor, deferred.method_name)({}, event=events[0])

    return _outcome(flow)


#: Remote histories (a scripted Scenext task, or an id that never existed) and the one answer
#: every mode must give for it. "gone" = not found after 5 s, when the wait has seen it RUNNING.
HISTORIES: dict[str, tuple[dict[str, Any] | None, tuple[str, Any]]] = {
    "completed": ({"duration": 0.6, "outcome": "completed"}, ("ok", "SUCCEEDED")),
    "completed_list": ({"duration": 0.6, "outcome": "completed_list"}, ("ok", "SUCCEEDED")),
    "failed": (
        {"duration": 0.6, "outcome": "failed"},
        ("error", ["AvatarTaskFailedError", "failed", "<id>", None, "remote task ended in FAILED: rendering failed"]),
    ),
    "no_artifact": (
        {"duration": 0.6, "outcome": "no_artifact"},
        (
            "error",
            [
                "AvatarTaskFailedError",
                "failed",
                "<id>",
                "no_artifact",
                "remote task ended in FAILED: task COMPLETED but its result holds no video URL",
            ],
        ),
    ),
    "never_existed": (
        None,
        (
            "error",
            [
                "AvatarNotFoundError",
                "not_found",
                "<id>",
                None,
                "task was never found: check the remote task id (and that the connection is the account that "
                "created it); the service said: task not found",
            ],
        ),
    ),
    "seen_then_gone": (
        {"duration": 60, "gone_after": 5.0},
        (
            "error",
            [
                "AvatarTaskFailedError",
                "failed",
                "<id>",
                None,
                "remote task ended in FAILED: task was no longer found after it was seen RUNNING",
            ],
        ),
    ),
}
#: Reschedule mode starts every poke afresh: it cannot know a gone task was seen by an earlier poke.
RESCHEDULE_FORGETS = {"seen_then_gone"}


def test_deferrable_checks_once_before_deferring(scenext_conn: Simulator) -> None:
    done = scenext_conn.scenext.add_task(duration=0)  # type: ignore[attr-defined]
    assert _sensor(done, deferrable=True).execute({})["state"] == "SUCCEEDED"  # no deferral
    running = scenext_conn.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    with pytest.raises(TaskDeferred) as info:
        _sensor(running, deferrable=True).execute({})
    kwargs = info.value.trigger.serialize()[1]
    assert kwargs["remote_task_id"] == running and kwargs["poll_interval"] == 0.2
    assert kwargs["deadline"] == current().time() + 20
    assert kwargs["started_at"] == current().time()
    assert info.value.timeout is not None and info.value.timeout.total_seconds() > 20


@pytest.mark.parametrize(
    ("execution_timeout", "task_started_ago", "deadline_in"),
    [
        (None, 0, 3600),  # no execution_timeout: the sensor timeout
        (timedelta(hours=2), 0, 3600),  # a longer execution_timeout changes nothing
        (timedelta(seconds=30), 10, 20),  # counted from the start of the try, not of the wait
    ],
)
def test_execution_timeout_bounds_the_trigger_deadline(
    scenext_conn: Simulator, execution_timeout: timedelta | None, task_started_ago: float, deadline_in: float
) -> None:
    task_id = scenext_conn.scenext.add_task(duration=7200)  # type: ignore[attr-defined]
    sensor = ScenextVideoSensor(
        task_id="w",
        remote_task_id=task_id,
        poll_interval=5,
        timeout=3600,
        execution_timeout=execution_timeout,
        deferrable=True,
    )
    ti = _FakeTI(start_date=datetime.fromtimestamp(current().time() - task_started_ago, UTC))
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({"ti": ti})
    assert info.value.trigger.serialize()[1]["deadline"] == current().time() + deadline_in
    assert info.value.timeout == timedelta(seconds=deadline_in + 2 * 5 + 60)  # Airflow's backstop, after ours


def test_a_wait_cut_by_execution_timeout_ends_with_a_clear_timeout(scenext_conn: Simulator) -> None:
    """Airflow does not apply execution_timeout to a deferred task: the wait ends at it with our
    timeout (deadline and elapsed wait named), not killed later by the trigger timeout."""
    task_id = scenext_conn.scenext.add_task(duration=7200)  # type: ignore[attr-defined]
    sensor = ScenextVideoSensor(
        task_id="w",
        remote_task_id=task_id,
        poll_interval=5,
        timeout=3600,
        execution_timeout=timedelta(seconds=125),
        deferrable=True,
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({"ti": _FakeTI(start_date=_now())})
    (event,) = asyncio.run(collect_events(info.value.trigger))
    with pytest.raises(AvatarTimeoutError) as err:
        sensor.execute_complete({}, event)
    assert err.value.detail == "timed out after 2m05s waiting (deadline 2026-01-01 00:02:05 UTC); last state: RUNNING"


def test_deferrable_timeout_is_a_sensor_timeout(scenext_conn: Simulator) -> None:
    task_id = scenext_conn.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    sensor = ScenextVideoSensor(task_id="w", remote_task_id=task_id, poll_interval=0.2, timeout=0.5, deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    event = asyncio.run(collect_events(info.value.trigger))[0]
    with pytest.raises(AvatarTimeoutError) as err:
        sensor.execute_complete({}, event)
    assert isinstance(err.value, AirflowSensorTimeout)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (None, AvatarError),
        ({"status": "weird"}, AvatarError),
        ({"status": "success"}, AvatarError),
        ({"status": "failed", "message": "m", "task_status": {"error_code": "x"}}, AvatarTaskFailedError),
        ({"status": "timeout"}, AvatarTimeoutError),
        (
            {
                "status": "error",
                "reason": "auth",
                "error": {"reason": "auth", "message": "no", "service": "scenext", "action": "get_status"},
            },
            AvatarAuthError,
        ),
        ({"status": "error", "reason": "polling_error", "message": "boom"}, AvatarError),
    ],
)
def test_execute_complete_validates_events_and_picks_error_by_reason(event: Any, error: type) -> None:
    with pytest.raises(error) as info:
        _sensor("1").execute_complete({}, event)
    assert type(info.value) is error


def test_generic_sensor_and_defaults() -> None:
    sensor = AvatarTaskSensor(task_id="w", service="scenext", remote_task_id="1", target_states=["succeeded"])
    assert sensor.conn_id == "scenext_default"
    assert sensor.template_fields == ("remote_task_id", "conn_id")
    with pytest.raises(ValueError, match="unknown service"):
        AvatarTaskSensor(task_id="w", service="nope", remote_task_id="1")
    with pytest.raises(ValueError, match="unknown task state"):
        AvatarTaskSensor(task_id="w", service="scenext", remote_task_id="1", target_states=["DONE"])


@pytest.mark.parametrize("flag", ["soft_fail", "never_fail"])
def test_pre_deferral_check_honours_skip_flags(scenext_conn: Simulator, flag: str) -> None:
    from airflow.providers.common.compat.sdk import AirflowSkipException

    task_id = scenext_conn.scenext.add_task(duration=0, outcome="failed")  # type: ignore[attr-defined]
    sensor = _sensor(task_id, deferrable=True, **{flag: True})
    with pytest.raises(AirflowSkipException, match=flag):
        sensor.execute({})


def test_poke_interval_is_respected_and_scenext_defaults_to_30s() -> None:
    assert ScenextVideoSensor(task_id="a", remote_task_id="1", poke_interval=5).poll_interval == 5
    assert ScenextVideoSensor(task_id="b", remote_task_id="1", poll_interval=7).poll_interval == 7
    assert ScenextVideoSensor(task_id="c", remote_task_id="1").poll_interval == 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_states": {"DONE"}}, "target_states: unknown task state 'DONE'"),
        ({"failure_states": ["BROKEN"]}, "failure_states: unknown task state 'BROKEN'"),
        ({"target_states": set()}, "target_states must not be empty"),
    ],
)
def test_bad_state_names_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AvatarTaskSensor(task_id="w", service="scenext", remote_task_id="1", **kwargs)


def test_progress_lines_read_as_percentages() -> None:
    from airflow_provider_avatar.status import TaskState, TaskStatus
    from airflow_provider_avatar.waiting import ProgressLog

    lines: list[str] = []

    class Log:
        def info(self, fmt: str, *args: Any) -> None:
            lines.append(fmt % args)

        def warning(self, fmt: str, *args: Any) -> None:
            lines.append(fmt % args)

    ProgressLog(Log()).observe(TaskStatus("dreamface", "t", TaskState.RUNNING, progress=0.37))
    ProgressLog(Log()).observe(TaskStatus("scenext", "u", TaskState.RUNNING, result={"preview_frames": 3}))
    assert lines == ["dreamface task t is RUNNING (37% done)", "scenext task u is RUNNING (3 preview frames)"]
