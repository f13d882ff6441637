"""MiniMaxVideoHook: exact wire checks through requests-mock, and both flavors over HTTP against the
simulator on virtual time (create, wait, retrieve, refusals, the per-minute create budget)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
import requests_mock as rm
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_avatar.clock import current
from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarError,
    AvatarInputError,
    AvatarInvalidRequestError,
    AvatarRateLimitedError,
    AvatarSubmitUnknownError,
    AvatarTaskFailedError,
)
from airflow_provider_avatar.hooks.minimax import MiniMaxVideoHook
from airflow_provider_avatar.operators.minimax import MiniMaxCreateVideoOperator, first_frame_data
from airflow_provider_avatar.protocols.minimax import (
    DIRECT,
    DIRECT_BASE_URL,
    DIRECT_HOSTS,
    GATEWAY,
    MAX_IMAGE_BYTES,
    URL_TTL,
)
from airflow_provider_avatar.sensors.minimax import MiniMaxVideoSensor
from airflow_provider_avatar.services import SERVICES
from airflow_provider_avatar.status import TaskState
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.sim_minimax import MiniMaxSim
from airflow_provider_avatar.testing.simulator import Simulator
from tests.conftest import SENTINELS
from tests.helpers import collect_events, make_trigger

KEY = SENTINELS["minimax"]
GW = "https://gateway.test"
OK = {"status_code": 0, "status_msg": "success"}


def set_conn(monkeypatch: pytest.MonkeyPatch, host: str | None, **extra: Any) -> None:
    conn: dict[str, Any] = {"conn_type": "minimax", "password": KEY, "extra": {"max_attempts": 3, **extra}}
    if host is not None:
        conn["host"] = host
    monkeypatch.setenv("AIRFLOW_CONN_MINIMAX_DEFAULT", json.dumps(conn))


@pytest.fixture
def sleeps() -> Iterator[list[float]]:
    slept: list[float] = []
    with mock.patch("tenacity.nap.time.sleep", side_effect=slept.append):
        yield slept


# -- connection ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "extra", "base_url", "flavor"),
    [
        (None, {}, SERVICES["minimax"].default_base_url, GATEWAY),
        (None, {"flavor": "direct"}, DIRECT_BASE_URL, DIRECT),
        # MiniMax's own hosts (named once, in the protocol) pick the direct flavor
        *((f"https://{h}", {}, f"https://{h}", DIRECT) for h in sorted(DIRECT_HOSTS)),
        (DIRECT_BASE_URL, {"flavor": "auto"}, DIRECT_BASE_URL, DIRECT),
        (GW, {}, GW, GATEWAY),
        (GW, {"flavor": None}, GW, GATEWAY),
    ],
)
def test_flavor_and_default_host(
    monkeypatch: pytest.MonkeyPatch, host: str | None, extra: dict[str, Any], base_url: str, flavor: str
) -> None:
    set_conn(monkeypatch, host, **extra)
    hook = MiniMaxVideoHook()
    assert (hook.config.base_url, hook.wire.flavor) == (base_url, flavor)
    assert hook.config.action_max_qps == {"create_video": 5 / 60}


def test_bad_flavor_and_create_budget_override(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, GW, flavor="proxy")
    with pytest.raises(AvatarInputError, match="flavor"):
        MiniMaxVideoHook().config  # noqa: B018
    set_conn(monkeypatch, GW, action_max_qps='{"create_video": 0.3}')
    assert MiniMaxVideoHook().config.action_max_qps == {"create_video": 0.3}


# -- exact wire (requests-mock) -------------------------------------------------------------------------
def test_direct_create_query_retrieve_on_the_wire(monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker) -> None:
    set_conn(monkeypatch, DIRECT_BASE_URL, group_id="g-7")
    requests_mock.post(f"{DIRECT_BASE_URL}/v1/video_generation", json={"task_id": "t1", "base_resp": OK})
    requests_mock.get(
        f"{DIRECT_BASE_URL}/v1/query/video_generation",
        json={"task_id": "t1", "status": "Success", "file_id": "f1", "video_width": 1920, "video_height": 1080},
    )
    file = {"file_id": "f1", "download_url": "https://cdn.test/v.mp4?Signature=s"}
    requests_mock.get(f"{DIRECT_BASE_URL}/v1/files/retrieve", json={"file": file, "base_resp": OK})
    hook = MiniMaxVideoHook()
    assert hook.create_video(prompt="a cat", duration=6, resolution="1080P") == "t1"
    create = requests_mock.request_history[0]
    assert create.json() == {"model": "MiniMax-Hailuo-2.3", "prompt": "a cat", "duration": 6, "resolution": "1080P"}
    assert create.headers["Authorization"] == f"Bearer {KEY}" and create.qs == {"groupid": ["g-7"]}
    status = hook.get_status("t1")
    assert status.state is TaskState.SUCCEEDED and status.result == {"file_id": "f1", "width": 1920, "height": 1080}
    assert requests_mock.request_history[1].qs == {"task_id": ["t1"], "groupid": ["g-7"]}
    assert hook.fresh_video_url("t1") == file["download_url"]
    assert requests_mock.request_history[-1].qs == {"file_id": ["f1"], "groupid": ["g-7"]}


def test_gateway_paths_on_the_wire(monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker) -> None:
    set_conn(monkeypatch, GW, group_id="g-7")
    requests_mock.post(f"{GW}/task/minimax/v1/video_generation", json={"task_id": "t2", "base_resp": OK})
    requests_mock.get(f"{GW}/task/t2", json={"code": 10000, "data": {"status": "Processing"}})
    hook = MiniMaxVideoHook()
    assert hook.create_video(prompt="a dog") == "t2"
    assert hook.get_status("t2").state is TaskState.RUNNING
    assert all(not r.qs for r in requests_mock.request_history)  # GroupId is for direct calls only


def test_retrieve_returns_url_and_expiry(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker, fake_clock: FakeClock
) -> None:
    set_conn(monkeypatch, GW)
    file = {"file_id": "f1", "download_url": "https://cdn.test/v.mp4?Signature=s", "bytes": 42}
    requests_mock.get(f"{GW}/task/minimax/v1/files/retrieve", json={"file": file, "base_resp": OK})
    info = MiniMaxVideoHook().retrieve_file("f1")
    assert (info.download_url, info.expires_at, info.bytes) == (file["download_url"], fake_clock.time() + URL_TTL, 42)


@pytest.mark.parametrize(
    "answer",
    [
        {"status_code": 502, "text": "bad gateway"},
        {"exc": requests.exceptions.ReadTimeout},
        {"json": {"base_resp": {"status_code": 1000, "status_msg": "unknown error"}}},
    ],
)
def test_a_create_that_may_have_arrived_is_never_repeated(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker, sleeps: list[float], answer: dict[str, Any]
) -> None:
    set_conn(monkeypatch, GW)
    requests_mock.post(f"{GW}/task/minimax/v1/video_generation", **answer)
    with pytest.raises(AvatarSubmitUnknownError) as info:
        MiniMaxVideoHook().create_video(prompt="x")
    assert requests_mock.call_count == 1 and isinstance(info.value, AirflowFailException)


def test_a_refused_create_is_retried_with_the_minute_budget_named(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker, fake_clock: FakeClock
) -> None:
    set_conn(monkeypatch, GW)
    refused = {"json": {"base_resp": {"status_code": 1002, "status_msg": "rate limit exceeded(RPM)"}}}
    url = f"{GW}/task/minimax/v1/video_generation"
    requests_mock.post(url, [refused, {"json": {"task_id": "t3", "base_resp": OK}}])
    assert MiniMaxVideoHook().create_video(prompt="x") == "t3"
    assert requests_mock.call_count == 2
    requests_mock.post(url, **refused)
    with pytest.raises(AvatarRateLimitedError, match="per minute") as info:
        MiniMaxVideoHook().create_video(prompt="x")
    assert info.value.sent is False and KEY not in str(info.value)
    assert requests_mock.call_count <= 2 + 3  # at most max_attempts (3) more: refusals only


def test_bad_input_sends_nothing(monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker) -> None:
    set_conn(monkeypatch, GW)
    with pytest.raises(AvatarInputError, match="duration"):
        MiniMaxVideoHook().create_video(prompt="x", duration=7)
    assert requests_mock.call_count == 0


def test_unknown_model_is_sent_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker, logs: Callable[[], str]
) -> None:
    set_conn(monkeypatch, GW)
    requests_mock.post(f"{GW}/task/minimax/v1/video_generation", json={"task_id": "t4", "base_resp": OK})
    assert MiniMaxVideoHook().create_video(prompt="x", model="MiniMax-Hailuo-9", resolution="4K") == "t4"
    assert "'MiniMax-Hailuo-9' is not one this provider knows" in logs()


# -- first_frame_image ----------------------------------------------------------------------------------
def test_first_frame_from_a_local_path_or_object_storage_uri(tmp_path: Path) -> None:
    image = tmp_path / "frame.png"
    image.write_bytes(b"\x89PNG-bytes")
    expected = "data:image/png;base64," + base64.b64encode(b"\x89PNG-bytes").decode()
    assert first_frame_data(str(image)) == expected
    assert first_frame_data(f"file://{image}") == expected
    assert first_frame_data("https://img.test/a.png") == "https://img.test/a.png"
    assert first_frame_data("data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: "frame.png", "absolute local path"),
        (lambda p: str(p / "frame.gif"), ".jpg, .png or .webp"),
        (lambda p: str(p / "missing.png"), "cannot be read"),
        (lambda p: str(p / "big.jpg"), "at most"),
    ],
)
def test_bad_first_frame_is_refused_before_sending(tmp_path: Path, make: Callable[[Path], str], message: str) -> None:
    with open(tmp_path / "big.jpg", "wb") as handle:
        handle.truncate(MAX_IMAGE_BYTES + 1)  # sparse: checked by size before it is read
    with pytest.raises(AvatarInputError, match=message):
        first_frame_data(make(tmp_path))


# -- over HTTP against the simulator, both flavors ------------------------------------------------------
@pytest.fixture
def msim(use_connection: Callable[..., Simulator], fake_clock: FakeClock, request: pytest.FixtureRequest) -> Any:
    flavor = getattr(request, "param", GATEWAY)
    sim = use_connection("minimax", flavor=flavor)
    return sim.services["minimax"]


BOTH = pytest.mark.parametrize("msim", [GATEWAY, DIRECT], indirect=True)


def _wait(task_id: str, **kwargs: Any) -> dict[str, Any]:
    (event,) = asyncio.run(
        collect_events(make_trigger(task_id, service="minimax", poll_interval=0.5, timeout=60, **kwargs))
    )
    return event


@BOTH
def test_create_wait_retrieve_over_http(msim: MiniMaxSim) -> None:
    hook = MiniMaxVideoHook()
    task_id = hook.create_video(prompt="a cat", duration=10)
    assert msim.created_bodies == [{"model": "MiniMax-Hailuo-2.3", "prompt": "a cat", "duration": 10}]
    seen = []
    for _ in range(20):
        status = hook.get_status(task_id)
        seen.append(status.raw_status)
        if status.state in (TaskState.SUCCEEDED, TaskState.FAILED):
            break
        current().sleep(0.2)
    assert seen[0] == "Preparing" and "Queueing" in seen and "Processing" in seen and seen[-1] == "Success"
    assert status.result == {"file_id": f"file-{task_id}", "width": 1366, "height": 768}
    assert "/files/" in hook.fresh_video_url(task_id)
    event = _wait(task_id)
    assert (event["status"], event["task_status"]["result"]["file_id"]) == ("success", f"file-{task_id}")


@BOTH
def test_content_refusal_ends_the_wait_with_code_and_message(msim: MiniMaxSim) -> None:
    msim.next_outcome = "refused"
    task_id = MiniMaxVideoHook().create_video(prompt="a cat")
    event = _wait(task_id)
    assert event["status"] == "failed"
    assert (event["task_status"]["error_code"], event["task_status"]["error_message"]) == (
        "1027",
        "output new_sensitive",
    )


def test_wrapper_body_variant_over_http(msim: MiniMaxSim) -> None:
    msim.wrapper = True
    task_id = MiniMaxVideoHook().create_video(prompt="a cat")
    event = _wait(task_id)
    assert event["status"] == "success"
    assert event["task_status"]["result"]["file_id"] == f"file-{task_id}"
    assert "Signature" not in json.dumps(event)


@BOTH
@pytest.mark.parametrize(
    ("setup", "cls", "code"),
    [
        (lambda s: setattr(s, "refuse_creates_with", 1008), AvatarInvalidRequestError, "1008"),
        (lambda s: None, AvatarInvalidRequestError, "1026"),  # "sensitive" in the prompt
    ],
    ids=["balance", "sensitive-input"],
)
def test_create_refusals_over_http(msim: MiniMaxSim, setup: Any, cls: type[AvatarError], code: str) -> None:
    setup(msim)
    with pytest.raises(cls) as info:
        MiniMaxVideoHook().create_video(prompt="something sensitive")
    assert info.value.code == code and info.value.sent is False


def test_the_minute_budget_paces_creates_and_a_refusal_is_retried(msim: MiniMaxSim, fake_clock: FakeClock) -> None:
    """Two creates in a row on the default 5/min budget are spaced; the server's 1002 is retried."""
    hook = MiniMaxVideoHook()
    first = fake_clock.time()
    hook.create_video(prompt="one")
    hook.create_video(prompt="two")
    assert msim.create_times[1] - msim.create_times[0] >= 60 / 5 - 1e-6
    assert msim.create_times[0] >= first
    msim.rpm_limit = 2  # the server's minute window: the third create is refused until the first is a minute old
    third = hook.create_video(prompt="three")
    assert third in msim.tasks and len(msim.created_bodies) == 3
    refusals = [r for r in msim.state.requests if r.method == "POST"]
    assert len(refusals) > 3  # 1002 answers were retried, each within the connection's pacing
    assert msim.create_times[2] - msim.create_times[0] >= 60
    msim.rpm_limit = 0
    with pytest.raises(AvatarRateLimitedError, match="creates per minute") as info:
        hook.create_video(prompt="four")
    assert info.value.sent is False and len(msim.created_bodies) == 3


def test_wrong_key_is_an_auth_error_without_the_key(msim: MiniMaxSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(msim.state.api_keys, "minimax", "another-key")
    with pytest.raises(AvatarAuthError) as info:
        MiniMaxVideoHook().create_video(prompt="x")
    assert info.value.code == "1004" and KEY not in str(info.value)
    assert MiniMaxVideoHook().test_connection()[0] is False


@BOTH
def test_test_connection_over_http(msim: MiniMaxSim) -> None:
    ok, message = MiniMaxVideoHook().test_connection()
    assert ok, message


@BOTH
def test_no_artifact_fails_and_fresh_url_refuses(msim: MiniMaxSim) -> None:
    msim.next_outcome = "no_artifact"
    hook = MiniMaxVideoHook()
    task_id = hook.create_video(prompt="x")
    event = _wait(task_id)
    assert (event["status"], event["task_status"]["error_code"]) == ("failed", "no_artifact")
    with pytest.raises(AvatarTaskFailedError):
        hook.fresh_video_url(task_id)


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_sensor_fails_a_refused_task_without_retries(msim: MiniMaxSim, deferrable: bool) -> None:
    msim.next_outcome = "refused"
    task_id = MiniMaxVideoHook().create_video(prompt="x")
    sensor = MiniMaxVideoSensor(task_id="w", remote_task_id=task_id, poll_interval=0.5, deferrable=deferrable)
    assert sensor.poke_interval == 0.5 and MiniMaxVideoSensor(task_id="d", remote_task_id="t").poke_interval == 10
    with pytest.raises(AvatarTaskFailedError, match="output new_sensitive") as info:
        try:
            sensor.execute({})
        except TaskDeferred as deferred:
            assert KEY not in json.dumps(deferred.trigger.serialize()[1])
            (event,) = asyncio.run(collect_events(deferred.trigger))
            getattr(sensor, deferred.method_name)({}, event=event)
    assert info.value.code == "1027"
    assert isinstance(info.value, AvatarTaskFailedError) and not info.value.transient


def test_operator_sends_a_local_first_frame_as_a_data_uri(msim: MiniMaxSim, tmp_path: Path) -> None:
    image = tmp_path / "frame.jpg"
    image.write_bytes(b"jpeg-bytes")
    op = MiniMaxCreateVideoOperator(
        task_id="c", prompt="zoom in", model="I2V-01", first_frame_image=str(image), prompt_optimizer=False
    )
    task_id = op.execute({})
    assert task_id in msim.tasks
    (body,) = msim.created_bodies
    assert body["first_frame_image"] == "data:image/jpeg;base64," + base64.b64encode(b"jpeg-bytes").decode()
    assert body["prompt_optimizer"] is False


def test_a_worker_paced_beyond_the_retry_cap_is_told_the_minute_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, GW)
    hook = MiniMaxVideoHook()
    spec = hook.wire.build_create_request(prompt="x")
    err = hook._endpoint_for(hook.config).throttled(spec)
    assert "create_video has its own budget of 5 per minute (action_max_qps)" in str(err)
    assert err.sent is False


@BOTH
def test_waits_end_right_under_injected_faults(msim: MiniMaxSim, sim: Simulator) -> None:
    """30% 5xx/429/resets/HTML pages on status reads: every wait still ends in its own outcome."""
    from airflow_provider_avatar.testing.simulator import Faults

    outcomes = ["success", "refused", "failed", "no_artifact"] * 3
    ids = [msim.add_task(outcome=o, duration=2.0) for o in outcomes]
    sim.set_faults("minimax", Faults(error_rate=0.3, kinds=("503", "429", "reset", "html"), retry_after=0.5, seed=3))

    async def wait_all() -> list[list[dict[str, Any]]]:
        triggers = [make_trigger(i, service="minimax", poll_interval=0.5, timeout=120) for i in ids]
        return await asyncio.gather(*(collect_events(t) for t in triggers))

    events = asyncio.run(wait_all())
    expected = {"success": "success", "refused": "failed", "failed": "failed", "no_artifact": "failed"}
    assert [e[0]["status"] for e in events] == [expected[o] for o in outcomes]
    assert any(r.status == 429 for r in sim.requests("minimax"))  # the error paths did run
