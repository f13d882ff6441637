"""TrtcHook through the real Tencent Cloud SDK over requests-mock: signing, bodies, retries, stop
idempotency, connection forms, UserSig, secrets, and the async path off the event loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import requests_mock as rm
import urllib3

from airflow_provider_avatar.clock import use_clock
from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarError,
    AvatarInputError,
    AvatarInvalidRequestError,
    AvatarRateLimitedError,
    AvatarSubmitUnknownError,
    AvatarTransientError,
)
from airflow_provider_avatar.hooks.trtc import TrtcConfig, TrtcHook
from airflow_provider_avatar.protocols.trtc import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_DURATION
from airflow_provider_avatar.services import SERVICES
from airflow_provider_avatar.status import TaskState
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.transport.policy import RetryPolicy
from tests.conftest import SENTINELS

DEFAULT_URL = SERVICES["trtc"].default_base_url + "/"  # the SDK default host (named once, in the registry)
SECRET_ID = "AKIDtrtc-test-id"
SECRET_KEY = SENTINELS["trtc"]
SDK_SECRET_KEY = "SDK-SECRET-SENTINEL-5bd2850fff3e"
SESSION_TOKEN = "SESSION-TOKEN-SENTINEL-77"
APP_ID = 1400000001
SECRETS = (SECRET_KEY, SDK_SECRET_KEY, SESSION_TOKEN)


def set_conn(monkeypatch: pytest.MonkeyPatch, *, host: str = "", **extra: Any) -> None:
    fields: dict[str, Any] = {"region": "ap-singapore", "sdk_app_id": APP_ID, "sdk_secret_key": SDK_SECRET_KEY}
    fields.update(extra)
    conn = {"conn_type": "trtc", "host": host, "login": SECRET_ID, "password": SECRET_KEY, "extra": fields}
    for key in [k for k, v in fields.items() if v is None]:
        del conn["extra"][key]  # type: ignore[attr-defined]
    monkeypatch.setenv("AIRFLOW_CONN_TRTC_DEFAULT", json.dumps(conn))


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    set_conn(monkeypatch)


@pytest.fixture(autouse=True)
def clock() -> Iterator[FakeClock]:
    """Virtual time: retry pauses and limiter waits cost nothing."""
    fake = FakeClock()
    with use_clock(fake):
        yield fake


def ok(**response: Any) -> dict[str, Any]:
    return {"json": {"Response": {**response, "RequestId": "req-ok"}}}


def error(code: str, message: str = "error text", charset: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "json": {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": f"req-{code}"}}
    }
    if charset:  # the SDK does not parse errors under this content type: the protocol must
        answer["headers"] = {"Content-Type": "application/json; charset=utf-8"}
    return answer


class Trtc:
    """Answers by X-TC-Action, each a queue of requests-mock responses; records what was sent."""

    def __init__(self, mocker: rm.Mocker, url: str = DEFAULT_URL) -> None:
        self.answers: dict[str, list[dict[str, Any]]] = {}
        self.sent: list[tuple[str, dict[str, Any], dict[str, str], str]] = []
        self.threads: list[str] = []
        self.timeouts: list[Any] = []  # what the SDK handed requests as ``timeout``
        mocker.post(url, content=self._reply)

    def on(self, action: str, *answers: dict[str, Any]) -> None:
        self.answers.setdefault(action, []).extend(answers)

    def actions(self) -> list[str]:
        return [action for action, *_ in self.sent]

    def _reply(self, request: Any, context: Any) -> bytes:
        action = request.headers["X-TC-Action"]
        self.sent.append((action, json.loads(request.body), dict(request.headers), request.url))
        self.threads.append(threading.current_thread().name)
        self.timeouts.append(request.timeout)
        answer = self.answers[action].pop(0)
        if "exc" in answer:
            raise answer["exc"]
        context.status_code = answer.get("status_code", 200)
        context.headers["Content-Type"] = answer.get("headers", {}).get("Content-Type", "application/json")
        body = answer.get("body")
        return body if body is not None else json.dumps(answer["json"]).encode()


@pytest.fixture
def trtc() -> Iterator[Trtc]:
    with rm.Mocker() as mocker:
        yield Trtc(mocker)


# -- the wire ----------------------------------------------------------------------------------


def test_describe_is_signed_by_the_sdk_and_carries_the_sdk_app_id(trtc: Trtc) -> None:
    trtc.on("DescribeStreamIngest", ok(Status="InProgress"))
    status = TrtcHook().get_status("task-1")
    assert (status.state, status.raw_status, status.request_id) == (TaskState.STREAMING, "InProgress", "req-ok")
    action, body, headers, url = trtc.sent[0]
    assert (action, body, url) == ("DescribeStreamIngest", {"SdkAppId": APP_ID, "TaskId": "task-1"}, DEFAULT_URL)
    assert headers["Authorization"].startswith(f"TC3-HMAC-SHA256 Credential={SECRET_ID}/")
    assert "SignedHeaders=content-type;host, Signature=" in headers["Authorization"]
    assert (headers["X-TC-Version"], headers["X-TC-Region"], headers["X-TC-Language"]) == (
        "2019-07-22",
        "ap-singapore",
        "en-US",
    )
    assert headers["Content-Type"] == "application/json" and "X-TC-Timestamp" in headers


@pytest.mark.parametrize(
    ("extra", "timeout"),
    [({}, (10.0, 60.0)), ({"connect_timeout": 2, "read_timeout": 7.5}, (2.0, 7.5))],
    ids=["defaults", "set"],
)
def test_the_sdk_gets_both_timeouts(
    trtc: Trtc, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], timeout: Any
) -> None:
    """A host that never accepts the connection fails after connect_timeout, not after read_timeout."""
    set_conn(monkeypatch, **extra)
    trtc.on("DescribeStreamIngest", ok(Status="InProgress"))
    TrtcHook().get_status("task-1")
    assert trtc.timeouts == [timeout]


class _StallsInTheBody:
    """An answer whose headers came and whose body times out: the SDK reads it outside its wrapper."""

    closed = False

    def read(self, amt: int = -1) -> bytes:
        raise urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out.")  # type: ignore[arg-type]

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.mark.parametrize("action", ["DescribeStreamIngest", "StartStreamIngest"])
def test_a_body_that_times_out_is_a_network_error_that_may_have_been_sent(action: str) -> None:
    with rm.Mocker() as mocker:
        mocker.post(DEFAULT_URL, body=_StallsInTheBody(), headers={"Content-Type": "application/json"})
        hook = TrtcHook()
        with pytest.raises(AvatarError) as info:
            if action == "StartStreamIngest":
                hook.start_stream_ingest(room_id="1234", stream_url="https://media.example/a.mp4", user_id="robot_1")
            else:
                hook.get_status("task-1")
        sends = mocker.call_count
    assert "network error talking to the API" in str(info.value), info.value  # not "could not read the answer"
    if action == "StartStreamIngest":  # it may have started an ingest: sent once, never again
        assert (type(info.value), sends) == (AvatarSubmitUnknownError, 1)
    else:  # a read is retried like any transient error
        assert isinstance(info.value, AvatarTransientError) and sends > 1


def test_start_sends_the_documented_body_bounded_by_default(trtc: Trtc) -> None:
    trtc.on("StartStreamIngest", ok(TaskId="task-9"))
    task_id = TrtcHook().start_stream_ingest(
        room_id="room-1",
        stream_url="https://media.example.com/a.mp4",
        user_id="robot",
        user_sig="given-sig",
        repeat_num=-1,
    )
    assert task_id == "task-9"
    assert trtc.sent[0][1] == {
        "SdkAppId": APP_ID,
        "RoomId": "room-1",
        "RoomIdType": 0,
        "UserId": "robot",
        "UserSig": "given-sig",  # an explicit UserSig wins over the connection's key
        "StreamUrl": "https://media.example.com/a.mp4",
        "RepeatNum": -1,
        "MaxDuration": DEFAULT_MAX_DURATION,
        "IdleTimeout": DEFAULT_IDLE_TIMEOUT,
    }


def test_bad_input_fails_before_anything_is_sent_or_signed(trtc: Trtc, monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, sdk_secret_key=None)  # would fail on the UserSig if input were not checked first
    with pytest.raises(AvatarInputError, match="volume"):
        TrtcHook().start_stream_ingest(room_id="r", stream_url="https://h/a.mp4", user_id="robot", volume=500)
    assert trtc.sent == []


# -- retries: Start is sent once, Describe and Stop are retried ---------------------------------


@pytest.mark.parametrize(
    ("answers", "outcome", "sends"),
    [
        ([{"exc": requests.ReadTimeout("read timed out")}], AvatarSubmitUnknownError, 1),  # answer lost
        ([{"exc": requests.ConnectionError("connection reset by peer")}], AvatarSubmitUnknownError, 1),
        ([{"status_code": 502, "body": b"<html>bad gateway</html>"}], AvatarSubmitUnknownError, 1),
        ([error("InternalError")], AvatarSubmitUnknownError, 1),
        ([{"exc": requests.ConnectTimeout("connect timed out")}, ok(TaskId="t-2")], "t-2", 2),  # never left
        ([error("RequestLimitExceeded"), ok(TaskId="t-3")], "t-3", 2),  # refused
        ([error("InvalidParameter.StreamUrl")], AvatarInvalidRequestError, 1),
        ([error("AuthFailure.SignatureFailure")], AvatarAuthError, 1),
    ],
)
def test_start_is_retried_only_when_it_surely_did_not_act(
    trtc: Trtc, answers: list[dict[str, Any]], outcome: Any, sends: int
) -> None:
    trtc.on("StartStreamIngest", *answers)
    call = lambda: TrtcHook().start_stream_ingest(  # noqa: E731
        room_id="r", stream_url="https://h/a.mp4", user_id="robot", user_sig="s"
    )
    if isinstance(outcome, str):
        assert call() == outcome
    else:
        with pytest.raises(outcome):
            call()
    assert trtc.actions() == ["StartStreamIngest"] * sends


@pytest.mark.parametrize(
    "first",
    [
        error("InternalError"),
        error("InternalError.DBError", charset=True),
        error("FailedOperation.QueryTaskInfoFailed"),
        error("RequestLimitExceeded"),
        {"status_code": 500, "body": b"oops"},
        {"exc": requests.ReadTimeout("read timed out")},
    ],
)
def test_describe_is_retried_on_transient_errors(trtc: Trtc, first: dict[str, Any]) -> None:
    trtc.on("DescribeStreamIngest", first, ok(Status="InProgress"))
    assert TrtcHook().get_status("t-1").state is TaskState.STREAMING
    assert trtc.actions() == ["DescribeStreamIngest"] * 2


@pytest.mark.parametrize("charset", [False, True], ids=["sdk-parses-it", "sdk-misses-it"])
def test_an_error_body_is_a_typed_error_whatever_the_content_type(trtc: Trtc, charset: bool) -> None:
    trtc.on("DescribeStreamIngest", error("AuthFailure.SignatureExpire", "expired", charset=charset))
    with pytest.raises(AvatarAuthError) as info:
        TrtcHook().get_status("t-1")
    assert (info.value.code, info.value.request_id) == (
        "AuthFailure.SignatureExpire",
        "req-AuthFailure.SignatureExpire",
    )
    assert "clock" in str(info.value)
    assert trtc.actions() == ["DescribeStreamIngest"]


def test_a_describe_without_status_is_a_bad_response_never_a_state(trtc: Trtc) -> None:
    """What the SDK's own models return for an error they did not parse (Status None)."""
    trtc.on(
        "DescribeStreamIngest", {"json": {"Response": {"RequestId": "r"}}, "headers": {"Content-Type": "text/html"}}
    )
    with pytest.raises(AvatarError) as info:
        TrtcHook().get_status("t-1")
    assert (info.value.reason, info.value.transient) == ("bad_response", True)


def test_not_exist_is_not_found_with_its_code(trtc: Trtc) -> None:
    trtc.on("DescribeStreamIngest", ok(Status="NotExist"))
    with pytest.raises(AvatarError) as info:
        TrtcHook().get_status("t-1")
    assert (info.value.reason, info.value.code) == ("not_found", "NotExist")


# -- stop --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "describe", "outcome", "actions"),
    [
        ([ok()], [], "stopped", ["Stop"]),
        ([error("FailedOperation.TaskFinished")], [], "already_stopped", ["Stop"]),
        ([error("FailedOperation.TaskNotExist")], [ok(Status="NotExist")], "not_found", ["Stop", "Describe"]),
        ([error("InvalidParameter.TaskId")], [ok(Status="NotExist")], "not_found", ["Stop", "Describe"]),
        (
            [error("FailedOperation.TaskNotExist"), ok()],
            [ok(Status="InProgress")],
            "stopped",
            ["Stop", "Describe", "Stop"],
        ),
        ([error("InternalError"), ok()], [], "stopped", ["Stop", "Stop"]),  # Stop is retried
        ([error("UnauthorizedOperation.SdkAppId")], [], AvatarAuthError, ["Stop"]),
    ],
)
def test_stop_is_idempotent(
    trtc: Trtc, stop: list[dict[str, Any]], describe: list[dict[str, Any]], outcome: Any, actions: list[str]
) -> None:
    trtc.on("StopStreamIngest", *stop)
    trtc.on("DescribeStreamIngest", *describe)
    if isinstance(outcome, str):
        assert TrtcHook().stop_stream_ingest("t-1") == outcome
    else:
        with pytest.raises(outcome):
            TrtcHook().stop_stream_ingest("t-1")
    assert [a.replace("StreamIngest", "") for a in trtc.actions()] == actions
    assert all(body == {"SdkAppId": APP_ID, "TaskId": "t-1"} for _, body, _, _ in trtc.sent)


def test_update_sends_only_what_changes(trtc: Trtc) -> None:
    trtc.on("UpdateStreamIngest", ok())
    TrtcHook().update_stream_ingest("t-1", is_pause=True)
    assert trtc.sent[0][1] == {"SdkAppId": APP_ID, "TaskId": "t-1", "IsPause": True}


# -- connection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("", DEFAULT_URL),
        ("trtc.intl.api.test", "https://trtc.intl.api.test/"),  # a bare host, like trtc.intl.<Tencent's domain>
        ("https://trtc.intl.api.test", "https://trtc.intl.api.test/"),
        ("http://127.0.0.1:8999", "http://127.0.0.1:8999/"),
        ("http://127.0.0.1:8999/", "http://127.0.0.1:8999/"),
    ],
)
def test_host_forms(monkeypatch: pytest.MonkeyPatch, host: str, url: str) -> None:
    set_conn(monkeypatch, host=host)
    with rm.Mocker() as mocker:
        fake = Trtc(mocker, url)
        fake.on("DescribeStreamIngest", ok(Status="InProgress"))
        TrtcHook().get_status("t-1")
    assert fake.sent[0][3] == url


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"extra": {"sdk_app_id": APP_ID}}, "region"),
        ({"extra": {"region": "ap-singapore"}}, "sdk_app_id"),
        ({"extra": {"region": "ap-singapore", "sdk_app_id": "abc"}}, "has sdk_app_id 'abc'"),
        ({"extra": {"region": "ap-singapore", "sdk_app_id": 2**32}}, "sdk_app_id"),
        ({"extra": {"region": "ap-singapore", "sdk_app_id": APP_ID, "language": "fr-FR"}}, "language"),
        ({"login": ""}, "SecretId"),
        ({"password": ""}, "SecretKey"),
        ({"password": f" {SECRET_KEY}"}, "spaces"),
        ({"host": "https://trtc.api.test/v3"}, "no path"),
        ({"host": "ftp://trtc.api.test"}, "invalid API base URL"),
    ],
)
def test_connection_errors_are_clear(monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], names: str) -> None:
    conn = {"conn_type": "trtc", "host": "", "login": SECRET_ID, "password": SECRET_KEY, **change}
    monkeypatch.setenv("AIRFLOW_CONN_TRTC_DEFAULT", json.dumps(conn))
    with pytest.raises(AvatarInputError) as info:
        TrtcHook().config  # noqa: B018
    assert names in str(info.value)
    assert SECRET_KEY not in str(info.value)
    ok_, message = TrtcHook().test_connection()
    assert not ok_ and names in message


def test_config_reads_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, sdk_app_id="1400000001", language="zh-CN", session_token=SESSION_TOKEN, max_qps=5)
    config = TrtcHook(trtc_conn_id="trtc_default").config
    assert isinstance(config, TrtcConfig)
    assert (config.region, config.sdk_app_id, config.language, config.max_qps, config.endpoint, config.scheme) == (
        "ap-singapore",
        APP_ID,
        "zh-CN",
        5.0,
        None,
        "https",
    )
    assert (config.session_token, config.sdk_secret_key) == (SESSION_TOKEN, SDK_SECRET_KEY)
    assert TrtcHook().sdk_app_id == APP_ID
    set_conn(monkeypatch)
    assert TrtcHook().config.max_qps == 20.0  # the row's default: TRTC's 20 requests/s per API


@pytest.mark.parametrize(
    ("answer", "ok_", "says"),
    [
        (ok(Status="NotExist"), True, "SdkAppId 1400000001 in region ap-singapore"),
        (error("InvalidParameter.TaskId"), True, "Connection works"),
        (error("AuthFailure.SecretIdNotFound", "SecretId not found"), False, "Check the SecretId (login)"),
        (error("AuthFailure.SignatureFailure", charset=True), False, "region"),
        (error("FailedOperation.SdkAppIdNotExist"), False, "SdkAppId not found"),
        ({"status_code": 404, "body": b"<html>not here</html>"}, False, "ServerNetworkError"),
    ],
)
def test_test_connection(trtc: Trtc, answer: dict[str, Any], ok_: bool, says: str) -> None:
    trtc.on("DescribeStreamIngest", answer)
    result, message = TrtcHook().test_connection()
    assert (result, says in message) == (ok_, True), message
    assert trtc.actions() == ["DescribeStreamIngest"]  # one call, never retried


# -- UserSig -----------------------------------------------------------------------------------


def _decode_user_sig(sig: str) -> dict[str, Any]:
    raw = base64.b64decode(sig.replace("*", "+").replace("-", "/").replace("_", "="))
    return dict(json.loads(zlib.decompress(raw)))


def _expected_hmac(key: str, fields: dict[str, Any]) -> str:
    content = "".join(f"TLS.{name}:{fields[f'TLS.{name}']}\n" for name in ("identifier", "sdkappid", "time", "expire"))
    return base64.b64encode(hmac.new(key.encode(), content.encode(), hashlib.sha256).digest()).decode()


def test_user_sig_follows_tlssigapiv2(trtc: Trtc) -> None:
    trtc.on("StartStreamIngest", ok(TaskId="t-1"))
    hook = TrtcHook()
    hook.start_stream_ingest(room_id="r", stream_url="rtmp://live.example.com/a/b", user_id="robot-7")
    sig = trtc.sent[0][1]["UserSig"]
    fields = _decode_user_sig(sig)
    assert (fields["TLS.ver"], fields["TLS.identifier"], fields["TLS.sdkappid"], fields["TLS.expire"]) == (
        "2.0",
        "robot-7",
        APP_ID,
        86400,
    )
    assert fields["TLS.sig"] == _expected_hmac(SDK_SECRET_KEY, fields)
    assert fields["TLS.sig"] != _expected_hmac("another key", fields)
    longer = _decode_user_sig(hook.user_sig("robot-7", expire=600))
    assert longer["TLS.expire"] == 600 and longer["TLS.sig"] == _expected_hmac(SDK_SECRET_KEY, longer)


def test_user_sig_needs_the_sdk_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, sdk_secret_key=None)
    with pytest.raises(AvatarInputError, match="sdk_secret_key"):
        TrtcHook().start_stream_ingest(room_id="r", stream_url="https://h/a.mp4", user_id="robot")
    set_conn(monkeypatch)
    with pytest.raises(AvatarInputError, match="user_id"):
        TrtcHook(trtc_conn_id="trtc_default").user_sig("")


# -- secrets -----------------------------------------------------------------------------------


def test_secrets_never_show(trtc: Trtc, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    set_conn(monkeypatch, session_token=SESSION_TOKEN)
    trtc.on(
        "DescribeStreamIngest",
        error("AuthFailure.SignatureFailure"),
        {"status_code": 500, "body": f"<html>{SECRET_KEY}</html>".encode()},
        *[{"exc": requests.ConnectionError(f"proxy http://u:{SECRET_KEY}@proxy")}] * 4,
    )
    trtc.on("StartStreamIngest", ok(TaskId="t-1"))
    hook = TrtcHook()
    texts = [repr(hook), repr(hook.config), str(hook.config)]
    for _ in range(2):
        with pytest.raises(AvatarError) as info:
            hook.get_status("t-1")
        texts += [str(info.value), repr(info.value), json.dumps(info.value.to_dict())]
    texts.append(hook.test_connection()[1])
    hook.start_stream_ingest(room_id="r", stream_url="https://h/a.mp4", user_id="robot")
    sig = trtc.sent[-1][1]["UserSig"]
    texts.append(caplog.text)
    assert trtc.sent[-1][2]["X-TC-Token"] == SESSION_TOKEN  # it is sent, as the API needs
    for secret in (*SECRETS, sig):
        assert all(secret not in text for text in texts), secret


# -- async -------------------------------------------------------------------------------------


async def test_aget_status_runs_the_sdk_off_the_loop(trtc: Trtc) -> None:
    trtc.on("DescribeStreamIngest", error("InternalError"), ok(Status="InProgress"), ok(Status="NotExist"))
    hook = TrtcHook()
    loop_thread = threading.current_thread().name
    status = await hook.aget_status("t-1")
    assert status.state is TaskState.STREAMING
    assert trtc.actions() == ["DescribeStreamIngest"] * 2  # retried through the project's policy
    assert all(name.startswith("avatar-sdk") and name != loop_thread for name in trtc.threads)
    with pytest.raises(AvatarError) as info:
        await hook.aget_status("t-1")
    assert info.value.code == "NotExist"


async def test_the_async_path_never_blocks_the_loop(trtc: Trtc, monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread = threading.get_ident()
    real_request = requests.Session.request

    def off_loop_only(self: requests.Session, *args: Any, **kwargs: Any) -> Any:
        assert threading.get_ident() != loop_thread, "requests ran on the event loop's thread"
        return real_request(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", off_loop_only)
    trtc.on("DescribeStreamIngest", *[ok(Status="InProgress")] * 5)
    hook = TrtcHook()
    statuses = await asyncio.gather(*(hook.aget_status(f"t-{n}") for n in range(5)))
    assert {s.state for s in statuses} == {TaskState.STREAMING}
    assert len(trtc.sent) == 5


async def test_an_async_call_is_bounded_by_its_own_timeout(trtc: Trtc) -> None:
    """A hung SDK call ends the attempt at the transport's timeout; the thread is left to finish.
    (The fake clock holds time while a call is in flight; ``stall_after`` lets it move on.)"""
    release = threading.Event()
    trtc.on("DescribeStreamIngest", *[{"exc": requests.ReadTimeout("late")}] * 4)
    hook = TrtcHook()
    client = hook._client_for(hook.config)  # type: ignore[arg-type]

    def hung(action: str, params: Any) -> Any:
        release.wait(30)
        raise RuntimeError("released")  # never a real request once the mock is gone

    client.call = hung  # type: ignore[method-assign]
    clock = FakeClock(stall_after=0.05)
    try:
        with use_clock(clock), pytest.raises(AvatarTransientError) as info:
            await hook.aget_status("t-1", policy=RetryPolicy(max_attempts=1))
    finally:
        release.set()
    assert "TimeoutError" in info.value.detail
    assert clock.elapsed >= hook.config.read_timeout


async def test_a_rate_limited_describe_is_retried_async(trtc: Trtc) -> None:
    trtc.on("DescribeStreamIngest", error("RequestLimitExceeded"), ok(Status="InProgress"))
    assert (await TrtcHook().aget_status("t-1")).state is TaskState.STREAMING
    with pytest.raises(AvatarRateLimitedError):
        trtc.on("DescribeStreamIngest", *[error("RequestLimitExceeded")] * 4)
        await TrtcHook().aget_status("t-1")
