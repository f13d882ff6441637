"""Poke, reschedule and deferrable modes give the same answer for the same remote history."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred

from airflow_provider_avatar.exceptions import AvatarAuthError, AvatarError, AvatarTaskFailedError, AvatarTimeoutError
from airflow_provider_avatar.sensors.base import AvatarTaskSensor
from airflow_provider_avatar.sensors.scenext import ScenextVideoSensor
from airflow_provider_avatar.testing.simulator import Faults, Simulator
from tests.conftest import connection_env
from tests.helpers import collect_events

try:
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # pragma: no cover - Airflow < 3.2
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef,attr-defined]


class _FakeTI:
    """What reschedule mode asks of the task instance: when the first reschedule happened."""

    def __init__(self) -> None:
        self.first: datetime | None = None

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first


def _sensor(task_id: str, **kwargs: Any) -> ScenextVideoSensor:
    return ScenextVideoSensor(task_id="wait", remote_task_id=task_id, poll_interval=0.2, timeout=20, **kwargs)


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except AvatarError as exc:
        return "error", (type(exc).__name__, exc.reason, exc.remote_task_id, exc.code)


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
                ti.first = ti.first or datetime.now(UTC)
                time.sleep(0.2)

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


@pytest.mark.parametrize("faulty", [False, True], ids=["clean", "30pct-faults"])
@pytest.mark.parametrize("outcome", ["completed", "completed_list", "failed", "no_artifact"])
def test_modes_agree(scenext_conn: Simulator, outcome: str, faulty: bool) -> None:
    if faulty:  # 5xx, 429, resets and HTML pages on 30% of calls: the answer must not change
        kinds = ("502", "503", "504", "429", "reset", "html")
        scenext_conn.set_faults("scenext", Faults(error_rate=0.3, kinds=kinds, retry_after=0.1, seed=3))
    results = {}
    for mode, run in {"poke": run_poke, "reschedule": run_reschedule, "deferrable": run_deferrable}.items():
        task_id = scenext_conn.scenext.add_task(duration=0.6, outcome=outcome)  # type: ignore[attr-defined]
        kind, value = run(task_id)
        results[mode] = (kind, json.loads(json.dumps(value).replace(task_id, "<id>")))
    assert results["poke"] == results["reschedule"] == results["deferrable"], results
    kind, value = results["poke"]
    if outcome.startswith("completed"):
        assert kind == "ok" and value["state"] == "SUCCEEDED" and value["video_url"].endswith(".mp4")
        assert "Signature" not in str(value)
    else:
        assert value[:3] == ["AvatarTaskFailedError", "failed", "<id>"]
        assert value[3] == ("no_artifact" if outcome == "no_artifact" else None)


def test_deferrable_checks_once_before_deferring(scenext_conn: Simulator) -> None:
    done = scenext_conn.scenext.add_task(duration=0)  # type: ignore[attr-defined]
    assert _sensor(done, deferrable=True).execute({})["state"] == "SUCCEEDED"  # no deferral
    running = scenext_conn.scenext.add_task(duration=60)  # type: ignore[attr-defined]
    with pytest.raises(TaskDeferred) as info:
        _sensor(running, deferrable=True).execute({})
    kwargs = info.value.trigger.serialize()[1]
    assert kwargs["remote_task_id"] == running and kwargs["poll_interval"] == 0.2
    assert kwargs["deadline"] == pytest.approx(time.time() + 20, abs=2)
    assert info.value.timeout is not None and info.value.timeout.total_seconds() > 20


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


def test_poke_tolerates_transient_errors(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in connection_env(sim, "scenext", max_attempts=1).items():
        monkeypatch.setenv(key, value)
    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("503",)))
    sensor = _sensor(sim.scenext.add_task(duration=0), mode="poke", deferrable=False)  # type: ignore[attr-defined]
    assert sensor.poke({}) is False
    sim.set_faults("scenext", None)
    assert sensor.poke({}).xcom_value["state"] == "SUCCEEDED"  # type: ignore[union-attr]


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
