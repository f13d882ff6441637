"""DreamFaceHook and DreamFaceAvatarSensor over HTTP against the simulated new-api gateway, on virtual time."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarError,
    AvatarInputError,
    AvatarNotFoundError,
    AvatarSubmitUnknownError,
    AvatarTaskFailedError,
)
from airflow_provider_avatar.hooks.dreamface import DreamFaceHook
from airflow_provider_avatar.sensors.dreamface import DreamFaceAvatarSensor
from airflow_provider_avatar.status import NO_ARTIFACT, TaskState
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.sim_dreamface import DEMO_TASK_ID, DreamFaceSim
from airflow_provider_avatar.testing.simulator import Faults, Simulator
from tests.conftest import SENTINELS
from tests.helpers import collect_events

KEY = SENTINELS["dreamface"]
BODY = {"image_url": "https://media.test/face.png", "audio_url": "https://media.test/hello.mp3"}


@pytest.fixture
def gw(use_connection: Callable[..., Simulator], fake_clock: FakeClock) -> DreamFaceSim:
    """``dreamface_default`` on the simulator (with its ``create_path``), on virtual time."""
    sim: DreamFaceSim = use_connection("dreamface").services["dreamface"]  # type: ignore[assignment]
    return sim


def _set_conn(monkeypatch: pytest.MonkeyPatch, **conn: Any) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DREAMFACE_DEFAULT", json.dumps({"conn_type": "dreamface", **conn}))


def test_status_walks_the_documented_states_with_progress(gw: DreamFaceSim, fake_clock: FakeClock) -> None:
    task_id = gw.add_task(duration=10, phases=[("NOT_START", 1), ("QUEUED", 1)])
    hook = DreamFaceHook()
    seen = []
    for _ in range(14):
        status = hook.get_status(task_id)
        seen.append((status.raw_status, status.state, status.progress))
        fake_clock.sleep(1)
    assert seen[0] == ("NOT_START", TaskState.PENDING, 0.0)
    assert seen[1] == ("QUEUED", TaskState.PENDING, 0.0)
    assert seen[2] == ("IN_PROGRESS", TaskState.RUNNING, 0.0)
    assert seen[5] == ("IN_PROGRESS", TaskState.RUNNING, 0.3)
    assert seen[-1] == ("SUCCESS", TaskState.SUCCEEDED, 1.0)
    final = hook.get_status(task_id)
    assert final.video_url and "Signature=" in final.video_url
    assert final.result["video_field"] == "no_wm_work_video_path"
    assert ".png?" in final.result["work_webp_path"]  # the cover, kept (redacted in to_dict)
    assert "Signature=" not in json.dumps(final.to_dict())
    sent = [r for r in gw.state.requests if r.service == "dreamface"]
    assert {r.authorization for r in sent} == {f"Bearer {KEY}"}
    assert sent[0].path == f"/dreamface/avatar/task/{task_id}"


@pytest.mark.parametrize(
    ("outcome", "state", "error_code"),
    [
        ("failure", TaskState.FAILED, None),
        ("no_artifact", TaskState.FAILED, NO_ARTIFACT),
        ("watermarked_only", TaskState.SUCCEEDED, None),
        ("unknown", TaskState.UNKNOWN, None),
    ],
)
def test_outcomes(gw: DreamFaceSim, outcome: str, state: TaskState, error_code: str | None) -> None:
    status = DreamFaceHook().get_status(gw.add_task(duration=0, outcome=outcome))
    assert (status.state, status.error_code) == (state, error_code)
    if outcome == "watermarked_only":
        assert status.result["video_field"] == "wm_work_video_path"


def test_async_status_reads_the_same(gw: DreamFaceSim) -> None:
    task_id = gw.add_task(duration=0)
    status = asyncio.run(DreamFaceHook().aget_status(task_id))
    assert status.state is TaskState.SUCCEEDED and status.video_url


def test_unknown_task_is_not_found(gw: DreamFaceSim) -> None:
    with pytest.raises(AvatarNotFoundError) as info:
        DreamFaceHook().get_status("no-such-task")
    assert (info.value.code, info.value.http_status) == ("task_not_exist", 400)


def test_transient_faults_are_retried(gw: DreamFaceSim, sim: Simulator) -> None:
    task_id = gw.add_task(duration=0)
    sim.set_faults("dreamface", Faults(error_rate=0.5, kinds=("502", "503", "429", "html"), seed=3))
    for _ in range(5):
        assert DreamFaceHook().get_status(task_id).state is TaskState.SUCCEEDED


def test_fresh_video_url(gw: DreamFaceSim) -> None:
    hook = DreamFaceHook()
    assert "Signature=" in hook.fresh_video_url(gw.add_task(duration=0))
    with pytest.raises(AvatarTaskFailedError):
        hook.fresh_video_url(gw.add_task(duration=0, outcome="no_artifact"))


# -- create ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["data", "data.task_id", "task_id", "id"])
def test_create_posts_the_body_to_create_path(gw: DreamFaceSim, shape: str) -> None:
    gw.answer_shape = shape
    task_id = DreamFaceHook().create_avatar(BODY)
    assert task_id in gw.tasks and gw.created_bodies == [BODY]
    (post,) = [r for r in gw.state.requests if r.method == "POST"]
    assert post.path == "/dreamface/avatar/submit" and post.authorization == f"Bearer {KEY}"


def test_create_path_argument_wins(gw: DreamFaceSim) -> None:
    gw.submit_path = "v1/avatar/generate"
    assert DreamFaceHook().create_avatar(json.dumps(BODY), create_path="/v1/avatar/generate") in gw.tasks


def test_an_unreadable_create_answer_is_never_resent_and_shows_the_body(gw: DreamFaceSim) -> None:
    gw.answer_shape = "odd"
    with pytest.raises(AvatarSubmitUnknownError) as info:
        DreamFaceHook().create_avatar(BODY)
    assert '"job"' in str(info.value) and "expected data as a string" in str(info.value)
    assert [r.method for r in gw.state.requests].count("POST") == 1
    assert KEY not in str(info.value)


def test_create_on_a_wrong_route_says_what_the_gateway_said(gw: DreamFaceSim) -> None:
    with pytest.raises(AvatarError, match="Invalid URL"):
        DreamFaceHook().create_avatar(BODY, create_path="avatar/nope")


def test_create_without_create_path_sends_nothing(
    gw: DreamFaceSim, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_conn(monkeypatch, host=sim.url("dreamface"), password=KEY)
    with pytest.raises(AvatarInputError, match="create_path"):
        DreamFaceHook().create_avatar(BODY)
    assert not gw.state.requests


# -- connection ------------------------------------------------------------------------------
@pytest.mark.parametrize("host", [None, "", "  "])
def test_the_host_is_required(monkeypatch: pytest.MonkeyPatch, host: str | None) -> None:
    _set_conn(monkeypatch, host=host, password=KEY)
    with pytest.raises(AvatarInputError, match="no Gateway base URL in its host field"):
        _ = DreamFaceHook().config
    ok, message = DreamFaceHook().test_connection()
    assert not ok and "no Gateway base URL" in message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("where", "key", "ok", "says"),
    [
        ("gateway", KEY, True, "Connection works"),
        ("gateway", "wrong-key", False, "rejected the API key"),
        ("closed", KEY, False, "could not reach the gateway"),
        ("files", KEY, False, "not like a new-api gateway"),
        ("scenext", KEY, False, "not like a new-api gateway"),
    ],
)
def test_test_connection_tells_bad_key_from_wrong_or_unreachable_host(
    gw: DreamFaceSim, sim: Simulator, monkeypatch: pytest.MonkeyPatch, where: str, key: str, ok: bool, says: str
) -> None:
    host = {
        "gateway": sim.url("dreamface"),
        "closed": f"http://127.0.0.1:{_closed_port()}",
        "files": sim.state.file_base_url,
        "scenext": sim.url("scenext"),
    }[where]
    _set_conn(monkeypatch, host=host, password=key)
    result, message = DreamFaceHook().test_connection()
    assert result is ok and says in message, message
    assert KEY not in message


# -- waiting ---------------------------------------------------------------------------------
def _sensor(task_id: str, **kwargs: Any) -> DreamFaceAvatarSensor:
    return DreamFaceAvatarSensor(
        task_id="wait", remote_task_id=task_id, poll_interval=0.5, timeout=60, not_found_grace=3, **kwargs
    )


def _deferred(sensor: DreamFaceAvatarSensor) -> Any:
    try:
        return sensor.execute({})
    except TaskDeferred as deferred:
        (event,) = asyncio.run(collect_events(deferred.trigger))
        return getattr(sensor, deferred.method_name)({}, event=event)


@pytest.mark.parametrize("deferrable", [False, True])
def test_unknown_warns_once_progress_is_logged_and_the_wait_goes_on(
    gw: DreamFaceSim, logs: Callable[[], str], deferrable: bool
) -> None:
    task_id = gw.add_task(duration=4, phases=[("UNKNOWN", 2), ("SUBMITTED", 1)])
    sensor = _sensor(task_id, deferrable=deferrable, mode="poke")
    result = _deferred(sensor) if deferrable else sensor.execute({})
    assert result["state"] == "SUCCEEDED" and result["progress"] == 1.0
    lines = logs().splitlines()
    warned = [line for line in lines if "unmapped status 'UNKNOWN'" in line]
    # once per wait: the poke loop, or the pre-deferral check and the trigger (each its own process)
    assert len(warned) == (2 if deferrable else 1)
    if deferrable:
        assert sum("AvatarTaskTrigger" in line for line in warned) == 1
    assert any("is RUNNING (" in line and "% done)" in line for line in lines)
    assert KEY not in "\n".join(lines)


@pytest.mark.parametrize("deferrable", [False, True])
def test_an_id_never_found_fails_after_the_grace(gw: DreamFaceSim, deferrable: bool) -> None:
    """``task_not_exist`` for the whole grace is FAILED, saying the gateway never knew the task."""
    sensor = _sensor("no-such-task", deferrable=deferrable, mode="poke")
    with pytest.raises(AvatarTaskFailedError, match="never knew this task") as info:
        _deferred(sensor) if deferrable else sensor.execute({})
    assert info.value.code == "task_not_exist"


def test_the_demo_task_starts_at_its_first_read(gw: DreamFaceSim, fake_clock: FakeClock) -> None:
    fake_clock.sleep(3600)  # long after the simulator started
    hook = DreamFaceHook()
    assert hook.get_status(DEMO_TASK_ID).state is TaskState.PENDING
    fake_clock.sleep(gw.default_duration * 2)
    assert hook.get_status(DEMO_TASK_ID).state is TaskState.SUCCEEDED


def test_auth_error_ends_the_wait_at_once(gw: DreamFaceSim, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, host=sim.url("dreamface"), password="wrong-key")
    with pytest.raises(AvatarAuthError, match="invalid token"):
        _sensor(gw.add_task(duration=0), mode="poke").execute({})
    assert len(gw.state.requests) == 1


def test_trigger_kwargs_hold_no_secret(gw: DreamFaceSim) -> None:
    sensor = _sensor(gw.add_task(duration=5), deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    _, kwargs = info.value.trigger.serialize()
    assert kwargs["service"] == "dreamface" and kwargs["conn_id"] == "dreamface_default"
    assert KEY not in json.dumps(kwargs, default=str)


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_wait_through_30_percent_faults_ends_right(gw: DreamFaceSim, sim: Simulator, deferrable: bool) -> None:
    done, failed = gw.add_task(duration=3), gw.add_task(duration=3, outcome="failure")
    sim.set_faults("dreamface", Faults(error_rate=0.3, kinds=("502", "503", "504", "429", "reset", "html"), seed=7))
    sensor = _sensor(done, deferrable=deferrable, mode="poke")
    assert (_deferred(sensor) if deferrable else sensor.execute({}))["state"] == "SUCCEEDED"
    sensor = _sensor(failed, deferrable=deferrable, mode="poke")
    with pytest.raises(AvatarTaskFailedError, match="face not detected"):
        _deferred(sensor) if deferrable else sensor.execute({})
    assert any(r.fault for r in sim.requests("dreamface"))
