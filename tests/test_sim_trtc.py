"""The simulated TRTC stream-ingest API, driven by the real Tencent Cloud SDK over HTTP on a fake clock."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests
import TLSSigAPIv2 as tls_module
from tencentcloud.common import abstract_client
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models
from tencentcloud.trtc.v20190722.trtc_client import TrtcClient

from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.sim_trtc import (
    DEFAULT_REGION,
    DEFAULT_SDK_APP_ID,
    DEFAULT_SECRET_ID,
    TrtcSim,
    tc3_signature,
)
from airflow_provider_avatar.testing.simulator import Faults, Simulator, connection_env

APP = DEFAULT_SDK_APP_ID
START = 1_767_225_600  # FakeClock's default start (an integer, so X-TC-Timestamp is exact)


def trtc(simulator: Simulator) -> TrtcSim:
    return cast(TrtcSim, simulator.services["trtc"])


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK sends through HTTP(S)_PROXY when set: the simulator is on loopback."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """One virtual clock for the simulator, the SDK's X-TC-Timestamp and TLSSigAPIv2's TLS.time."""
    fake = FakeClock()
    monkeypatch.setattr(sim.state, "clock", fake.time)
    monkeypatch.setattr(abstract_client, "time", SimpleNamespace(time=fake.time))
    monkeypatch.setattr(tls_module, "time", SimpleNamespace(time=fake.time))
    yield fake


def client(
    simulator: Simulator,
    *,
    secret_id: str | None = None,
    secret_key: str | None = None,
    region: str = DEFAULT_REGION,
    token: str | None = None,
) -> TrtcClient:
    endpoint = simulator.url("trtc").removeprefix("http://")
    credential = Credential(secret_id or DEFAULT_SECRET_ID, secret_key or simulator.state.key_for("trtc"), token)
    return TrtcClient(credential, region, ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint)))


def call(simulator: Simulator, action: str, body: dict[str, Any], **client_args: Any) -> dict[str, Any]:
    """One SDK call; the response model as a dict."""
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(body))
    answer = getattr(client(simulator, **client_args), action)(request)
    return cast(dict[str, Any], json.loads(answer.to_json_string()))


def error(simulator: Simulator, action: str, body: dict[str, Any], **client_args: Any) -> str:
    """The error code the SDK raises for one call."""
    with pytest.raises(TencentCloudSDKException) as raised:
        call(simulator, action, body, **client_args)
    assert raised.value.requestId, "API errors carry a RequestId"
    return str(raised.value.code)


def user_sig(
    simulator: Simulator, user_id: str = "robot_1", *, app: int = APP, key: str | None = None, expire: int = 86400
) -> str:
    return str(tls_module.TLSSigAPIv2(app, key or simulator.state.key_for("trtc")).gen_sig(user_id, expire))


def start_body(simulator: Simulator, url: str = "https://media.example/a.mp4", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "SdkAppId": APP,
        "RoomId": "1234",
        "RoomIdType": 1,
        "UserId": "robot_1",
        "UserSig": user_sig(simulator),
        "StreamUrl": url,
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def start(simulator: Simulator, url: str = "https://media.example/a.mp4", **fields: Any) -> str:
    return str(call(simulator, "StartStreamIngest", start_body(simulator, url, **fields))["TaskId"])


def status(simulator: Simulator, task_id: str) -> str:
    return str(call(simulator, "DescribeStreamIngest", {"SdkAppId": APP, "TaskId": task_id})["Status"])


def raw_post(simulator: Simulator, payload: bytes, **headers: str) -> requests.Response:
    """A request signed here (to see the raw answer the SDK hides); ``headers`` override the signed ones."""
    host = simulator.url("trtc").removeprefix("http://")
    timestamp = int(simulator.state.clock())
    signature = tc3_signature(
        simulator.state.key_for("trtc"),
        method="POST",
        path="/",
        query="",
        headers={"content-type": "application/json", "host": host},
        signed_headers=["content-type", "host"],
        payload=payload,
        timestamp=timestamp,
    )
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    sent = {
        "Content-Type": "application/json",
        "X-TC-Action": "DescribeStreamIngest",
        "X-TC-Version": "2019-07-22",
        "X-TC-Region": DEFAULT_REGION,
        "X-TC-Timestamp": str(timestamp),
        "Authorization": f"TC3-HMAC-SHA256 Credential={DEFAULT_SECRET_ID}/{date}/trtc/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}",
    }
    sent.update(headers)
    return requests.post(simulator.url("trtc"), data=payload, headers=sent, timeout=30)


# -- signature and gateway -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_args", "skew", "code"),
    [
        ({}, 0, None),
        ({}, 300, None),
        ({}, -300, None),
        ({"secret_key": "not-the-key"}, 0, "AuthFailure.SignatureFailure"),
        ({"secret_id": "AKIDunknown0000000000000000000000000"}, 0, "AuthFailure.SecretIdNotFound"),
        ({}, 301, "AuthFailure.SignatureExpire"),
        ({}, -301, "AuthFailure.SignatureExpire"),
        ({"token": "temporary-token"}, 0, "AuthFailure.TokenFailure"),
        # the timestamp is checked before the key: a stale request with a wrong key is "expired"
        ({"secret_key": "not-the-key"}, 301, "AuthFailure.SignatureExpire"),
    ],
)
def test_tc3_signature_checks(
    sim: Simulator,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    client_args: dict[str, Any],
    skew: int,
    code: str | None,
) -> None:
    """``skew``: how far the simulator's clock is ahead of the SDK's when it checks the request."""
    monkeypatch.setattr(abstract_client, "time", SimpleNamespace(time=lambda: clock.time() - skew))
    body = {"SdkAppId": APP, "TaskId": "t-1"}
    if code is None:
        assert call(sim, "DescribeStreamIngest", body, **client_args)["Status"] == "NotExist"
    else:
        assert error(sim, "DescribeStreamIngest", body, **client_args) == code


def test_session_token_is_accepted_when_the_simulator_issued_it(sim: Simulator, clock: FakeClock) -> None:
    trtc(sim).session_token = "temporary-token"
    assert call(sim, "DescribeStreamIngest", {"SdkAppId": APP, "TaskId": "t"}, token="temporary-token")
    assert error(sim, "DescribeStreamIngest", {"SdkAppId": APP, "TaskId": "t"}, token="other") == (
        "AuthFailure.TokenFailure"
    )


def test_stale_against_a_fake_simulator_clock_unless_client_times_use_the_real_clock(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK signs with the real time: a simulator on a FakeClock (at 2026-01-01) refuses it, unless
    ``client_clock`` checks the client's own times (X-TC-Timestamp, UserSig) against the real clock."""
    fake = FakeClock(start=time.time() - 86400)
    monkeypatch.setattr(sim.state, "clock", fake.time)
    assert error(sim, "DescribeStreamIngest", {"SdkAppId": APP, "TaskId": "t"}) == "AuthFailure.SignatureExpire"
    trtc(sim).client_clock = time.time
    task_id = start(sim)  # the UserSig's TLS.time is real time too
    assert status(sim, task_id) == "NotExist"
    fake.advance(0.5)
    assert status(sim, task_id) == "InProgress"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Authorization": ""}, "AuthFailure.InvalidAuthorization"),
        ({"Authorization": "Bearer sim-api-key"}, "AuthFailure.InvalidAuthorization"),
        (
            {"Authorization": "TC3-HMAC-SHA256 Credential=AKID/2026-01-01/trtc/tc3_request"},
            "AuthFailure.InvalidAuthorization",
        ),
        (
            {
                "Authorization": f"TC3-HMAC-SHA256 Credential={DEFAULT_SECRET_ID}/2026-01-01/trtc/tc3_request, "
                f"SignedHeaders=content-type, Signature={'0' * 64}"
            },
            "AuthFailure.InvalidAuthorization",
        ),
        ({"X-TC-Timestamp": ""}, "MissingParameter"),
        ({"X-TC-Timestamp": "17e8"}, "InvalidParameter"),
        ({"Content-Type": "application/json; charset=utf-8"}, "AuthFailure.SignatureFailure"),  # signed header changed
        ({"X-TC-Version": ""}, "MissingParameter"),
        ({"X-TC-Version": "2020-01-01"}, "NoSuchVersion"),
        ({"X-TC-Action": "DescribeCloudRecording"}, "InvalidAction"),
        ({"X-TC-Action": ""}, "InvalidAction"),
        ({"X-TC-Region": ""}, "MissingParameter.Region"),
        ({"X-TC-Region": "eu-frankfurt"}, "UnsupportedRegion"),
    ],
)
def test_gateway_errors(sim: Simulator, clock: FakeClock, headers: dict[str, str], code: str) -> None:
    answer = raw_post(sim, json.dumps({"SdkAppId": APP, "TaskId": "t"}).encode(), **headers)
    assert answer.status_code == 200
    assert answer.json()["Response"]["Error"]["Code"] == code


@pytest.mark.parametrize("payload", [b"[]", b"{not json", b'"a string"', b"\xff\xfe"])
def test_body_must_be_a_json_object(sim: Simulator, clock: FakeClock, payload: bytes) -> None:
    answer = raw_post(sim, payload).json()["Response"]
    assert answer["Error"]["Code"] == "InvalidParameter.BodyParamsError"


def test_region_list_can_be_lifted_and_api_errors_reach_the_sdk(sim: Simulator, clock: FakeClock) -> None:
    body = {"SdkAppId": APP, "TaskId": "t"}
    assert error(sim, "DescribeStreamIngest", body, region="eu-frankfurt") == "UnsupportedRegion"
    trtc(sim).regions = None
    assert call(sim, "DescribeStreamIngest", body, region="eu-frankfurt")["Status"] == "NotExist"
    sdk = client(sim)
    sdk._apiVersion = "2020-01-01"
    with pytest.raises(TencentCloudSDKException) as raised:
        sdk.call_json("DescribeStreamIngest", body)
    assert raised.value.code == "NoSuchVersion"
    with pytest.raises(TencentCloudSDKException) as raised:
        client(sim).call_json("DescribeNothing", body)
    assert raised.value.code == "InvalidAction"


# -- wire format ---------------------------------------------------------------------------------


def test_answers_are_http_200_with_the_bare_json_content_type(sim: Simulator, clock: FakeClock) -> None:
    ok = raw_post(sim, json.dumps({"SdkAppId": APP, "TaskId": "t"}).encode())
    failed = raw_post(sim, json.dumps({"SdkAppId": 1, "TaskId": "t"}).encode())
    for answer in (ok, failed):
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/json"
    assert set(ok.json()) == {"Response"} and set(ok.json()["Response"]) == {"Status", "RequestId"}
    error_body = failed.json()["Response"]
    assert set(error_body) == {"Error", "RequestId"}
    assert error_body["Error"]["Code"] == "FailedOperation.SdkAppIdNotExist" and error_body["Error"]["Message"]


def test_charset_content_type_makes_the_sdk_swallow_errors(sim: Simulator, clock: FakeClock) -> None:
    """The switch for testing a provider against the SDK's silent failure: ``Status`` None, no exception."""
    trtc(sim).content_type = "application/json; charset=utf-8"
    assert raw_post(sim, b"{}").headers["Content-Type"] == "application/json; charset=utf-8"
    assert call(sim, "DescribeStreamIngest", {"SdkAppId": 1, "TaskId": "t"})["Status"] is None


def test_routing_url_request_log_and_other_services(sim: Simulator, clock: FakeClock) -> None:
    assert sim.url("trtc") == sim.base_url
    assert sim.url("zego") == f"{sim.base_url}/zego" and sim.url("scenext") == f"{sim.base_url}/scenext/api"
    status(sim, "t")
    assert requests.post(sim.base_url, json={}, timeout=30).status_code == 404  # no X-TC-Action: not TRTC
    assert [(r.service, r.method, r.path, r.status) for r in sim.requests()] == [
        ("trtc", "POST", "/", 200),
        ("root", "POST", "/", 404),
    ]
    assert sim.state.counts["trtc"] == 1


def test_common_faults_apply(sim: Simulator, clock: FakeClock) -> None:
    sim.set_faults("trtc", Faults(error_rate=1.0, kinds=("503",)))
    assert error_without_request_id(lambda: status(sim, "t")) == "ServerNetworkError"
    assert [(r.service, r.status, r.fault) for r in sim.requests("trtc")] == [("trtc", 503, "503")]


def error_without_request_id(fn: Callable[[], object]) -> str:
    with pytest.raises(TencentCloudSDKException) as raised:
        fn()
    return str(raised.value.code)


def test_scripted_errors_answer_the_next_calls(sim: Simulator, clock: FakeClock) -> None:
    trtc(sim).fail_next("DescribeStreamIngest", "InternalError.DBError", times=2)
    task_id = start(sim)
    assert error(sim, "DescribeStreamIngest", {"SdkAppId": APP, "TaskId": task_id}) == "InternalError.DBError"
    assert error(sim, "DescribeStreamIngest", {"SdkAppId": APP, "TaskId": task_id}) == "InternalError.DBError"
    assert status(sim, task_id) == "NotExist"
    with pytest.raises(ValueError, match="unknown action"):
        trtc(sim).fail_next("Nope", "InternalError")


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"SdkAppId": None}, "MissingParameter.SdkAppId"),
        ({"SdkAppId": "1400000001"}, "InvalidParameter.SdkAppId"),
        ({"SdkAppId": 0}, "InvalidParameter.SdkAppId"),
        ({"SdkAppId": 1400000002}, "FailedOperation.SdkAppIdNotExist"),
        ({"RoomId": None}, "MissingParameter.RoomId"),
        ({"RoomId": ""}, "MissingParameter.RoomId"),
        ({"RoomIdType": None}, "MissingParameter"),
        ({"RoomIdType": 2}, "InvalidParameter.OutOfRange"),
        ({"RoomId": "room-a"}, "InvalidParameter.RoomId"),
        ({"RoomId": "4294967295"}, "InvalidParameter.RoomId"),
        ({"RoomId": "x" * 65, "RoomIdType": 0}, "InvalidParameter.StrRoomId"),
        ({"UserId": None}, "MissingParameter.UserId"),
        ({"UserId": "robot 1"}, "InvalidParameter.UserId"),
        ({"UserSig": None}, "MissingParameter.UserSig"),
        ({"StreamUrl": None}, "MissingParameter"),
        ({"StreamUrl": "ftp://media.example/a.mp4"}, "InvalidParameter.StreamUrl"),
        ({"StreamUrl": "media.example/a.mp4"}, "InvalidParameter.StreamUrl"),
        ({"RepeatNum": -2}, "InvalidParameter.OutOfRange"),
        ({"RepeatNum": 0}, "InvalidParameter.OutOfRange"),
        ({"RepeatNum": 1001}, "InvalidParameter.OutOfRange"),
        ({"RepeatNum": -1, "MaxDuration": 0}, "InvalidParameter.OutOfRange"),
        ({"RepeatNum": -1, "MaxDuration": 10081}, "InvalidParameter.OutOfRange"),
        ({"Volume": -1}, "InvalidParameter.Volume"),
        ({"Volume": 201}, "InvalidParameter.Volume"),
        ({"Tempo": 0.4}, "InvalidParameter.OutOfRange"),
        ({"Tempo": 2.1}, "InvalidParameter.OutOfRange"),
        ({"IdleTimeout": -1}, "InvalidParameter.OutOfRange"),
        ({"IdleTimeout": 601}, "InvalidParameter.OutOfRange"),
    ],
)
def test_start_validation(sim: Simulator, clock: FakeClock, fields: dict[str, Any], code: str) -> None:
    body = start_body(sim)
    for key, value in fields.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    assert error(sim, "StartStreamIngest", body) == code
    assert not trtc(sim).tasks


@pytest.mark.parametrize(
    "fields",
    [
        {"RepeatNum": -1, "MaxDuration": 1},
        {"RepeatNum": 1000, "Volume": 0, "Tempo": 0.5, "IdleTimeout": 0},
        {"RepeatNum": -1, "MaxDuration": 10080, "Volume": 200, "Tempo": 2.0, "IdleTimeout": 600},
        {"RoomId": "room-a", "RoomIdType": 0, "StreamUrl": "rtmp://live.example/app/stream"},
    ],
)
def test_start_accepts_the_documented_bounds(sim: Simulator, clock: FakeClock, fields: dict[str, Any]) -> None:
    assert start(sim, **fields).startswith("sim-")


@pytest.mark.parametrize(
    ("sig", "why"),
    [
        (lambda s: user_sig(s, "robot_2"), "another UserId"),
        (lambda s: user_sig(s, app=1400000002), "another SdkAppId"),
        (lambda s: user_sig(s, key="another-sdk-secret-key"), "does not match"),
        (lambda s: user_sig(s, expire=100), "expired"),
        (lambda s: "abc", "not a UserSig"),
        (lambda s: tls_module.base64_encode_url(zlib.compress(b"[1]")), "not a JSON object"),
    ],
)
def test_user_sig_checks(sim: Simulator, clock: FakeClock, sig: Callable[[Simulator], str], why: str) -> None:
    made = sig(sim)
    clock.advance(100)  # a UserSig made with expire=100 is now expired
    with pytest.raises(TencentCloudSDKException) as raised:
        call(sim, "StartStreamIngest", start_body(sim, UserSig=made))
    assert raised.value.code == "InvalidParameter.UserSig"
    assert why in str(raised.value.message)


def test_user_sig_valid_until_its_expiry(sim: Simulator, clock: FakeClock) -> None:
    made = user_sig(sim, expire=100)
    clock.advance(99)
    assert start(sim, UserSig=made)


# -- lifecycle -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fields", "timeline", "reason"),
    [
        # default media 2 s once, after the 0.5 s start delay
        (
            "https://m.example/a.mp4",
            {},
            [(0, "NotExist"), (0.49, "NotExist"), (0.5, "InProgress"), (2.49, "InProgress"), (2.5, "NotExist")],
            "media",
        ),
        (
            "https://m.example/a.mp4?sim_seconds=5",
            {"RepeatNum": 3},
            [(15.49, "InProgress"), (15.5, "NotExist")],
            "media",
        ),
        (
            "https://m.example/a.mp4",
            {"RepeatNum": -1, "MaxDuration": 2},
            [(120.49, "InProgress"), (120.5, "NotExist")],
            "max_duration",
        ),
        # MaxDuration takes effect only when looping
        (
            "https://m.example/a.mp4",
            {"RepeatNum": 2, "MaxDuration": 1},
            [(4.49, "InProgress"), (4.5, "NotExist")],
            "media",
        ),
        ("https://m.example/a.mp4", {"RepeatNum": -1}, [(7 * 86400.0, "InProgress")], None),
        ("https://m.example/live/stall.flv", {"IdleTimeout": 30}, [(32.49, "InProgress"), (32.5, "NotExist")], "idle"),
        ("https://m.example/live/stall.flv", {"IdleTimeout": 0}, [(2.49, "InProgress"), (2.5, "NotExist")], "idle"),
        ("https://m.example/live/stall.flv", {"RepeatNum": -1}, [(62.49, "InProgress"), (62.5, "NotExist")], "idle"),
        ("https://m.example/broken.mp4", {}, [(0, "NotExist"), (0.5, "NotExist"), (1.0, "NotExist")], "broken"),
    ],
)
def test_lifecycle(
    sim: Simulator,
    clock: FakeClock,
    url: str,
    fields: dict[str, Any],
    timeline: list[tuple[float, str]],
    reason: str | None,
) -> None:
    task_id = start(sim, url, **fields)
    for at, expected in timeline:
        clock.advance(at - clock.elapsed)
        assert (at, status(sim, task_id)) == (at, expected)
    assert trtc(sim).task(task_id).end_reason == reason


def test_sim_reads_plays_until_that_many_reads_saw_it_live_however_long_they_take(
    sim: Simulator, clock: FakeClock
) -> None:
    """What a test running in real time uses: no read can miss the live window on a slow machine."""
    task_id = start(sim, "https://m.example/a.mp4?sim_reads=2&sim_seconds=1")
    assert status(sim, task_id) == "NotExist"  # still starting: does not count
    clock.advance(3600)
    assert [status(sim, task_id) for _ in range(3)] == ["InProgress", "InProgress", "NotExist"]
    assert trtc(sim).task(task_id).end_reason == "media"
    assert error(sim, "StopStreamIngest", {"SdkAppId": APP, "TaskId": task_id}) == "FailedOperation.TaskFinished"


def test_stop_ends_at_once_and_a_second_stop_is_task_not_exist(sim: Simulator, clock: FakeClock) -> None:
    task_id = start(sim, RepeatNum=-1)
    clock.advance(1)
    assert status(sim, task_id) == "InProgress"
    assert set(call(sim, "StopStreamIngest", {"SdkAppId": APP, "TaskId": task_id})) == {"RequestId"}
    assert status(sim, task_id) == "NotExist"
    assert error(sim, "StopStreamIngest", {"SdkAppId": APP, "TaskId": task_id}) == "FailedOperation.TaskNotExist"
    assert trtc(sim).task(task_id).end_reason == "stop"


def test_stop_during_the_start_delay_means_never_in_progress(sim: Simulator, clock: FakeClock) -> None:
    task_id = start(sim)
    call(sim, "StopStreamIngest", {"SdkAppId": APP, "TaskId": task_id})
    clock.advance(1)
    assert status(sim, task_id) == "NotExist"


@pytest.mark.parametrize(
    ("url", "wait", "code"),
    [
        ("https://m.example/a.mp4", 3.0, "FailedOperation.TaskFinished"),  # ended on its own
        ("https://m.example/broken.mp4", 1.0, "FailedOperation.TaskNotExist"),  # never ingested
    ],
)
def test_stop_of_an_ended_task(sim: Simulator, clock: FakeClock, url: str, wait: float, code: str) -> None:
    task_id = start(sim, url)
    clock.advance(wait)
    assert error(sim, "StopStreamIngest", {"SdkAppId": APP, "TaskId": task_id}) == code


@pytest.mark.parametrize(
    ("action", "body", "expected"),
    [
        ("DescribeStreamIngest", {"SdkAppId": APP, "TaskId": "sim-unknown"}, "NotExist"),
        ("DescribeStreamIngest", {"SdkAppId": APP}, "MissingParameter.TaskId"),
        ("DescribeStreamIngest", {"SdkAppId": APP, "TaskId": "a b"}, "InvalidParameter.TaskId"),
        ("DescribeStreamIngest", {"TaskId": "t"}, "MissingParameter.SdkAppId"),
        ("StopStreamIngest", {"SdkAppId": APP, "TaskId": "sim-unknown"}, "FailedOperation.TaskNotExist"),
        ("StopStreamIngest", {"SdkAppId": APP, "TaskId": 42}, "InvalidParameter.TaskId"),
        ("StopStreamIngest", {"SdkAppId": APP, "TaskId": ""}, "MissingParameter.TaskId"),
        ("StopStreamIngest", {"SdkAppId": 1400000002, "TaskId": "t"}, "FailedOperation.SdkAppIdNotExist"),
    ],
)
def test_describe_and_stop_of_unknown_or_malformed_ids(
    sim: Simulator, clock: FakeClock, action: str, body: dict[str, Any], expected: str
) -> None:
    if expected == "NotExist":
        assert call(sim, action, body)["Status"] == "NotExist"
    else:
        assert error(sim, action, body) == expected


def test_update_pauses_resumes_and_replaces_the_source(sim: Simulator, clock: FakeClock) -> None:
    task_id = start(sim)  # media 0.5 → 2.5
    clock.advance(1.5)
    call(sim, "UpdateStreamIngest", {"SdkAppId": APP, "TaskId": task_id, "IsPause": True, "Volume": 50})
    clock.advance(100)
    assert status(sim, task_id) == "InProgress"  # paused: still held (and billed)
    call(sim, "UpdateStreamIngest", {"SdkAppId": APP, "TaskId": task_id, "IsPause": False})
    clock.advance(0.5)
    assert status(sim, task_id) == "InProgress"
    clock.advance(0.5)
    assert status(sim, task_id) == "NotExist"  # 1 s of media was left
    assert trtc(sim).task(task_id).volume == 50
    assert error(sim, "UpdateStreamIngest", {"SdkAppId": APP, "TaskId": task_id}) == "FailedOperation.TaskFinished"

    other = start(sim)
    clock.advance(1)
    update = {"SdkAppId": APP, "TaskId": other, "StreamUrl": "https://m.example/b.mp4?sim_seconds=10"}
    call(sim, "UpdateStreamIngest", update)
    clock.advance(9.99)
    assert status(sim, other) == "InProgress"
    assert error(sim, "UpdateStreamIngest", {**update, "StreamUrl": None, "Volume": 300}) == "InvalidParameter.Volume"


def test_a_paused_task_is_destroyed_after_twelve_hours(sim: Simulator, clock: FakeClock) -> None:
    task_id = start(sim)
    clock.advance(1)
    call(sim, "UpdateStreamIngest", {"SdkAppId": APP, "TaskId": task_id, "IsPause": True})
    clock.advance(12 * 3600)
    assert status(sim, task_id) == "NotExist"
    assert trtc(sim).task(task_id).end_reason == "paused"


# -- rate limit, summary, connections ------------------------------------------------------------


def test_twenty_requests_per_second_per_action_and_sdk_app_id(sim: Simulator, clock: FakeClock) -> None:
    task_id = start(sim)
    body = {"SdkAppId": APP, "TaskId": task_id}
    for _ in range(20):
        assert call(sim, "DescribeStreamIngest", body)["Status"] == "NotExist"
    assert error(sim, "DescribeStreamIngest", body) == "RequestLimitExceeded"
    # other actions and other SdkAppIds have windows of their own; a refused request does not count
    assert error(sim, "StopStreamIngest", {**body, "TaskId": "sim-unknown"}) == "FailedOperation.TaskNotExist"
    assert error(sim, "DescribeStreamIngest", {**body, "SdkAppId": 1400000002}) == "FailedOperation.SdkAppIdNotExist"
    assert trtc(sim).throttled == 1
    clock.advance(0.5)
    assert error(sim, "DescribeStreamIngest", body) == "RequestLimitExceeded"
    assert trtc(sim).throttled == 2
    clock.advance(0.5)
    assert call(sim, "DescribeStreamIngest", body)["Status"] == "InProgress"


def test_summary_counts_held_and_live_tasks(sim: Simulator, clock: FakeClock) -> None:
    sim_trtc = trtc(sim)
    assert sim_trtc.summary() == {"tasks": 0, "live": 0}
    looping = start(sim, RepeatNum=-1)
    start(sim)
    start(sim, "https://m.example/broken.mp4")
    assert sim_trtc.summary() == {"tasks": 2, "live": 0}  # starting
    clock.advance(1)
    assert sim_trtc.summary() == {"tasks": 2, "live": 2}
    clock.advance(2)
    assert sim_trtc.summary() == {"tasks": 1, "live": 1}
    call(sim, "StopStreamIngest", {"SdkAppId": APP, "TaskId": looping})
    assert sim.info()["summary"]["trtc"] == {"tasks": 0, "live": 0}
    sim_trtc.add_task(repeat_num=-1, max_duration=1)
    clock.advance(1)
    assert sim_trtc.summary() == {"tasks": 1, "live": 1}


def test_connection_from_the_ready_line_equals_the_simulators(sim: Simulator) -> None:
    info = json.loads(json.dumps(sim.info()))  # what another process reads
    key = sim.state.key_for("trtc")
    assert info["services"]["trtc"] == sim.base_url
    assert info["logins"]["trtc"] == DEFAULT_SECRET_ID
    assert info["extras"]["trtc"] == {"region": DEFAULT_REGION, "sdk_app_id": APP}
    assert info["secret_extras"] == {"trtc": ["sdk_secret_key"]}
    assert key not in json.dumps(info)
    from_line = connection_env(
        info["services"], key, info["logins"], extras=info["extras"], secret_extras=info["secret_extras"]
    )
    assert from_line["AIRFLOW_CONN_TRTC_DEFAULT"] == sim.connection_env("trtc")["AIRFLOW_CONN_TRTC_DEFAULT"]
    conn = json.loads(from_line["AIRFLOW_CONN_TRTC_DEFAULT"])
    assert conn == {
        "conn_type": "trtc",
        "host": sim.base_url,
        "login": DEFAULT_SECRET_ID,
        "password": key,
        "extra": {"allow_private_hosts": True, "region": DEFAULT_REGION, "sdk_app_id": APP, "sdk_secret_key": key},
    }
    assert trtc(sim).connection_extra(key) == {k: v for k, v in conn["extra"].items() if k != "allow_private_hosts"}
    # services without extras are unchanged
    zego = json.loads(sim.connection_env("zego", read_timeout=2)["AIRFLOW_CONN_ZEGO_DEFAULT"])
    assert zego["extra"] == {"allow_private_hosts": True, "read_timeout": 2}
