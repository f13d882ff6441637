"""TRTC stream ingest protocol: validation, request bodies, answers, error codes and the wait's history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarBadResponseError,
    AvatarError,
    AvatarInputError,
    AvatarInvalidRequestError,
    AvatarNotFoundError,
    AvatarRateLimitedError,
    AvatarTransientError,
)
from airflow_provider_avatar.protocols.base import ApiResponse
from airflow_provider_avatar.protocols.scenext import ScenextProtocol
from airflow_provider_avatar.protocols.trtc import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_DURATION,
    DESCRIBE,
    START,
    STOP,
    UPDATE,
    TrtcProtocol,
    parse_sdk_app_id,
)
from airflow_provider_avatar.protocols.zego import ZegoProtocol
from airflow_provider_avatar.status import TaskState
from airflow_provider_avatar.waiting import after_error

P = TrtcProtocol()
GOOD: dict[str, Any] = {
    "room_id": "room-1",
    "stream_url": "https://media.example.com/clip.mp4",
    "user_id": "robot-1",
    "user_sig": "sig",
}


def _answer(body: Any, status: int = 200) -> ApiResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ApiResponse(status=status, headers={"content-type": "application/json; charset=utf-8"}, body=raw)


def _error(code: str, message: str = "something", request_id: str = "req-1") -> ApiResponse:
    return _answer({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}})


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"RepeatNum": 1, "IdleTimeout": DEFAULT_IDLE_TIMEOUT}),
        ({"room_id_type": 1, "room_id": "1234"}, {"RoomIdType": 1, "RoomId": "1234"}),
        ({"room_id_type": 1, "room_id": str(2**32 - 1)}, {"RoomIdType": 1}),
        ({"stream_url": "http://h/x.flv"}, {"StreamUrl": "http://h/x.flv"}),
        ({"stream_url": "rtmp://live.example.com/app/s"}, {"StreamUrl": "rtmp://live.example.com/app/s"}),
        ({"stream_url": "rtmps://live.example.com/app/s"}, {}),
        ({"stream_url": "HTTPS://h/x.m3u8"}, {}),
        ({"repeat_num": -1, "max_duration": 1}, {"RepeatNum": -1, "MaxDuration": 1}),
        ({"repeat_num": -1, "max_duration": 10080}, {"MaxDuration": 10080}),
        ({"repeat_num": -1}, {"RepeatNum": -1}),  # the hook adds DEFAULT_MAX_DURATION; the protocol allows none
        ({"repeat_num": 1000}, {"RepeatNum": 1000}),
        ({"volume": 0}, {"Volume": 0}),
        ({"volume": 200}, {"Volume": 200}),
        ({"tempo": 0.5}, {"Tempo": 0.5}),
        ({"tempo": 2}, {"Tempo": 2.0}),
        ({"idle_timeout": 0}, {"IdleTimeout": 0}),
        ({"idle_timeout": 600}, {"IdleTimeout": 600}),
        ({"idle_timeout": None}, {}),
        ({"seek_second": 30}, {"SeekSecond": 30}),
        ({"auto_push": True, "enable_progress": False}, {"AutoPush": True, "EnableProgress": False}),
        ({"private_map_key": "pmk"}, {"PrivateMapKey": "pmk"}),
    ],
)
def test_good_start_inputs_build_the_documented_body(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    spec = P.build_start_request(**{**GOOD, **overrides})
    assert (spec.action, spec.method, spec.path, spec.idempotent, spec.remote_task_id) == (
        START,
        "POST",
        "",
        False,
        None,
    )
    for key, value in expected.items():
        assert spec.json[key] == value, key
    assert {"RoomId", "RoomIdType", "UserId", "UserSig", "StreamUrl", "RepeatNum"} <= set(spec.json)
    if overrides.get("idle_timeout", 1) is None:
        assert "IdleTimeout" not in spec.json


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"room_id": ""}, "room_id (RoomId)"),
        ({"room_id": "  "}, "room_id (RoomId)"),
        ({"room_id": None}, "room_id (RoomId)"),
        ({"room_id_type": 2}, "room_id_type (RoomIdType)"),
        ({"room_id_type": True}, "room_id_type (RoomIdType)"),
        ({"room_id_type": 1, "room_id": "abc"}, "32-bit unsigned integer"),
        ({"room_id_type": 1, "room_id": "0"}, "32-bit unsigned integer"),
        ({"room_id_type": 1, "room_id": str(2**32)}, "32-bit unsigned integer"),
        ({"room_id_type": 1, "room_id": "-5"}, "32-bit unsigned integer"),
        ({"room_id_type": 1, "room_id": "١٢"}, "32-bit unsigned integer"),  # non-ASCII digits
        ({"user_id": ""}, "user_id (UserId)"),
        ({"user_sig": ""}, "user_sig (UserSig)"),
        ({"stream_url": ""}, "stream_url (StreamUrl)"),
        ({"stream_url": "ftp://h/x.mp4"}, "stream_url (StreamUrl)"),
        ({"stream_url": "file:///etc/passwd"}, "stream_url (StreamUrl)"),
        ({"stream_url": "https:///x.mp4"}, "stream_url (StreamUrl)"),
        ({"stream_url": "clip.mp4"}, "stream_url (StreamUrl)"),
        ({"repeat_num": -2}, "repeat_num (RepeatNum)"),
        ({"repeat_num": 0}, "repeat_num (RepeatNum)"),  # TRTC: [-1, 1000], 0 excluded
        ({"repeat_num": 1001}, "repeat_num (RepeatNum)"),
        ({"repeat_num": 1.5}, "repeat_num (RepeatNum)"),
        ({"repeat_num": -1, "max_duration": 0}, "max_duration (MaxDuration"),
        ({"repeat_num": -1, "max_duration": 10081}, "max_duration (MaxDuration"),
        ({"repeat_num": 1, "max_duration": 60}, "only with repeat_num -1"),
        ({"volume": -1}, "volume (Volume)"),
        ({"volume": 201}, "volume (Volume)"),
        ({"tempo": 0.49}, "tempo (Tempo)"),
        ({"tempo": 2.01}, "tempo (Tempo)"),
        ({"tempo": "1"}, "tempo (Tempo)"),
        ({"idle_timeout": -1}, "idle_timeout (IdleTimeout"),
        ({"idle_timeout": 601}, "idle_timeout (IdleTimeout"),
        ({"seek_second": -1}, "seek_second (SeekSecond)"),
        ({"auto_push": "yes"}, "auto_push (AutoPush)"),
        ({"enable_progress": 1}, "enable_progress (EnableProgress)"),
        ({"private_map_key": ""}, "private_map_key (PrivateMapKey)"),
    ],
)
def test_bad_start_inputs_fail_before_sending_and_name_the_parameter(overrides: dict[str, Any], names: str) -> None:
    with pytest.raises(AvatarInputError) as info:
        P.build_start_request(**{**GOOD, **overrides})
    assert names in info.value.detail
    assert (info.value.service, info.value.action) == ("trtc", START)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1400000000, 1400000000), ("1400000000", 1400000000), (" 7 ", 7), (2**32 - 1, 2**32 - 1)],
)
def test_sdk_app_id_is_a_uint32(value: Any, expected: int) -> None:
    assert parse_sdk_app_id(value) == expected


@pytest.mark.parametrize("value", [0, -1, 2**32, "", "abc", "1e9", None, True, 1.5])
def test_bad_sdk_app_ids_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="sdk_app_id"):
        parse_sdk_app_id(value)


def test_bind_puts_the_sdk_app_id_first_and_refuses_a_bad_one() -> None:
    spec = P.bind(P.build_stop_request("t-1"), "1400000000")
    assert spec.json == {"SdkAppId": 1400000000, "TaskId": "t-1"}
    assert list(spec.json) == ["SdkAppId", "TaskId"]
    assert (spec.action, spec.remote_task_id, spec.idempotent) == (STOP, "t-1", True)
    with pytest.raises(AvatarInputError, match="sdk_app_id"):
        P.bind(spec, 0)


@pytest.mark.parametrize(
    ("build", "action", "body"),
    [
        (lambda: P.build_status_request(" t-1 "), DESCRIBE, {"TaskId": "t-1"}),
        (lambda: P.build_stop_request("t-1"), STOP, {"TaskId": "t-1"}),
        (
            lambda: P.build_update_request("t-1", volume=50, is_pause=True, tempo=1.5),
            UPDATE,
            {"TaskId": "t-1", "Volume": 50, "IsPause": True, "Tempo": 1.5},
        ),
        (
            lambda: P.build_update_request("t-1", stream_url="rtmp://h/a", enable_progress=True),
            UPDATE,
            {"TaskId": "t-1", "StreamUrl": "rtmp://h/a", "EnableProgress": True},
        ),
    ],
)
def test_task_requests(build: Any, action: str, body: dict[str, Any]) -> None:
    spec = build()
    assert (spec.action, spec.json, spec.remote_task_id, spec.idempotent) == (action, body, "t-1", True)


@pytest.mark.parametrize(
    "build",
    [
        lambda: P.build_status_request(""),
        lambda: P.build_stop_request("   "),
        lambda: P.build_update_request("t-1"),
        lambda: P.build_update_request("t-1", volume=300),
        lambda: P.build_update_request("t-1", stream_url="ftp://h/x"),
    ],
)
def test_bad_task_requests_are_refused(build: Any) -> None:
    with pytest.raises(AvatarInputError):
        build()


def test_defaults_bound_a_paid_run() -> None:
    assert DEFAULT_IDLE_TIMEOUT == 60 and DEFAULT_MAX_DURATION == 60
    assert P.rate_scope(START) == START and P.rate_scope(DESCRIBE) == DESCRIBE  # 20 QPS per API
    assert P.default_target_states == {TaskState.STREAMING}
    assert P.default_failure_states == {TaskState.FAILED, TaskState.STOPPED}


# -- error codes -----------------------------------------------------------------------------

#: Every listed code → (class, sent). ``sent`` is False only when TRTC refused the request.
ERRORS: list[tuple[str, type[AvatarError], bool]] = [
    ("AuthFailure.SignatureFailure", AvatarAuthError, True),
    ("AuthFailure.SignatureExpire", AvatarAuthError, True),
    ("AuthFailure.SecretIdNotFound", AvatarAuthError, True),
    ("AuthFailure.InvalidSecretId", AvatarAuthError, True),
    ("AuthFailure.InvalidAuthorization", AvatarAuthError, True),
    ("AuthFailure.TokenFailure", AvatarAuthError, True),
    ("AuthFailure.MFAFailure", AvatarAuthError, True),
    ("AuthFailure.UnRealNameAuthenticated", AvatarAuthError, True),
    ("AuthFailure.UnauthorizedOperation", AvatarAuthError, True),
    ("UnauthorizedOperation", AvatarAuthError, True),
    ("UnauthorizedOperation.SdkAppId", AvatarAuthError, True),
    ("FailedOperation.TaskNotExist", AvatarNotFoundError, True),
    ("ResourceNotFound", AvatarNotFoundError, True),
    ("ResourceNotFound.Task", AvatarNotFoundError, True),
    ("InvalidParameter.TaskId", AvatarNotFoundError, True),
    ("RequestLimitExceeded", AvatarRateLimitedError, False),
    ("RequestLimitExceeded.UinLimitExceeded", AvatarRateLimitedError, False),
    ("RequestLimitExceeded.GlobalRegionUinLimitExceeded", AvatarRateLimitedError, False),
    ("FailedOperation.RestrictedFrequency", AvatarRateLimitedError, False),
    ("FailedOperation.RestrictedConcurrency", AvatarRateLimitedError, False),
    ("LimitExceeded.ConcurrencyLimit", AvatarRateLimitedError, False),
    ("InternalError", AvatarTransientError, True),
    ("InternalError.DBError", AvatarTransientError, True),
    ("FailedOperation.QueryTaskInfoFailed", AvatarTransientError, True),
    ("ServiceUnavailable", AvatarTransientError, True),
    ("ClientNetworkError", AvatarTransientError, True),
    ("ServerNetworkError", AvatarTransientError, True),
    ("InvalidParameter", AvatarInvalidRequestError, True),
    ("InvalidParameter.StreamUrl", AvatarInvalidRequestError, True),
    ("InvalidParameterValue", AvatarInvalidRequestError, True),
    ("MissingParameter", AvatarInvalidRequestError, True),
    ("MissingParameter.SdkAppId", AvatarInvalidRequestError, True),
    ("MissingParameter.TaskId", AvatarInvalidRequestError, True),
    ("FailedOperation", AvatarInvalidRequestError, True),
    ("FailedOperation.TaskFinished", AvatarInvalidRequestError, True),
    ("FailedOperation.TaskExist", AvatarInvalidRequestError, True),
    ("FailedOperation.RoomNotExist", AvatarInvalidRequestError, True),
    ("FailedOperation.SdkAppIdNotExist", AvatarInvalidRequestError, True),
    ("FailedOperation.NotAbility", AvatarInvalidRequestError, True),
    ("FailedOperation.RequestRejection", AvatarInvalidRequestError, True),
    ("ActionOffline", AvatarInvalidRequestError, True),  # unknown codes are permanent (documented)
    ("SomethingNew.Entirely", AvatarInvalidRequestError, True),
]


@pytest.mark.parametrize(("code", "cls", "sent"), ERRORS, ids=[e[0] for e in ERRORS])
def test_every_code_maps_to_its_class(code: str, cls: type[AvatarError], sent: bool) -> None:
    spec = P.build_status_request("t-1")
    err = P.error_from_sdk(spec, code, "the message", "req-9")
    assert type(err) is cls
    assert (err.sent, err.code, err.request_id, err.remote_task_id, err.action) == (
        sent,
        code,
        "req-9",
        "t-1",
        DESCRIBE,
    )
    assert err.transient == (cls in (AvatarRateLimitedError, AvatarTransientError))
    # the same code in an HTTP 200 body (what the SDK misses when the content type has a charset)
    with pytest.raises(cls) as info:
        P.check(spec, _error(code, "the message", "req-2"))
    assert (info.value.code, info.value.request_id, info.value.sent) == (code, "req-2", sent)


def test_signature_expired_names_the_clock() -> None:
    err = P.error_from_sdk(P.build_status_request("t"), "AuthFailure.SignatureExpire", "expired", None)
    assert "clock" in err.detail


def test_auth_errors_say_what_to_check() -> None:
    err = P.error_from_sdk(P.build_status_request("t"), "AuthFailure.SignatureFailure", "bad sig", None)
    assert "SecretId" in err.detail and "SecretKey" in err.detail


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ServerNetworkError", "<html>proxy error http://user:pass@proxy:3128</html>"),
        ("ClientNetworkError", "HTTPSConnectionPool: ProxyError http://user:p4ss@proxy:3128"),
    ],
)
def test_sdk_network_messages_are_not_repeated(code: str, message: str) -> None:
    err = P.error_from_sdk(P.build_status_request("t"), code, message, None)
    assert "pass" not in str(err) and "p4ss" not in str(err) and "proxy" not in str(err)


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (200, b"<html>oops</html>", AvatarBadResponseError),
        (200, {"Response": "x"}, AvatarBadResponseError),
        (200, {"Response": {"Error": "x", "RequestId": "r"}}, AvatarBadResponseError),
        (502, b"<html>bad gateway</html>", AvatarTransientError),
        (429, b"slow down", AvatarRateLimitedError),
        (403, b"forbidden", AvatarAuthError),
    ],
)
def test_answers_without_a_trtc_envelope(status: int, body: Any, cls: type[AvatarError]) -> None:
    with pytest.raises(cls):
        P.check(P.build_status_request("t"), _answer(body, status))


def test_a_success_passes_the_check() -> None:
    P.check(P.build_status_request("t"), _answer({"Response": {"Status": "InProgress", "RequestId": "r"}}))


# -- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        ({"Status": "InProgress", "RequestId": "r1"}, TaskState.STREAMING),
        ({"Status": "inprogress", "RequestId": "r1"}, TaskState.STREAMING),
        ({"Status": "Paused", "RequestId": "r1"}, TaskState.UNKNOWN),  # never terminal, keeps polling
        ({"Status": "NotExist", "RequestId": "r1"}, AvatarNotFoundError),
        ({"RequestId": "r1"}, AvatarBadResponseError),
        ({"Status": None, "RequestId": "r1"}, AvatarBadResponseError),
        ({"Status": "", "RequestId": "r1"}, AvatarBadResponseError),
        ({"Status": 3, "RequestId": "r1"}, AvatarBadResponseError),
        ({"Error": {"Code": "InternalError.DBError", "Message": "db"}, "RequestId": "r1"}, AvatarTransientError),
        ({"Error": {"Code": "InvalidParameter.TaskId", "Message": "bad"}, "RequestId": "r1"}, AvatarNotFoundError),
    ],
)
def test_describe_answers(response: dict[str, Any], outcome: Any) -> None:
    answer = _answer({"Response": response})
    if isinstance(outcome, TaskState):
        status = P.parse_status("t-1", answer)
        assert (status.state, status.raw_status, status.request_id, status.remote_task_id) == (
            outcome,
            response["Status"],
            "r1",
            "t-1",
        )
        return
    with pytest.raises(outcome) as info:
        P.parse_status("t-1", answer)
    assert (info.value.request_id, info.value.remote_task_id) == ("r1", "t-1")
    if response.get("Status") == "NotExist":
        assert info.value.code == "NotExist"


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        ({"TaskId": "task-abc", "RequestId": "r"}, "task-abc"),
        ({"RequestId": "r"}, AvatarBadResponseError),
        ({"TaskId": "", "RequestId": "r"}, AvatarBadResponseError),
        (
            {"Error": {"Code": "FailedOperation.NotAbility", "Message": "plan"}, "RequestId": "r"},
            AvatarInvalidRequestError,
        ),
    ],
)
def test_start_answers(response: dict[str, Any], outcome: Any) -> None:
    answer = _answer({"Response": response})
    if isinstance(outcome, str):
        assert P.parse_start(answer) == outcome
    else:
        with pytest.raises(outcome):
            P.parse_start(answer)


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"Response": {"Status": "NotExist", "RequestId": "r"}}, True),
        ({"Response": {"Error": {"Code": "InvalidParameter.TaskId", "Message": "x"}, "RequestId": "r"}}, True),
        ({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "x"}, "RequestId": "r"}}, False),
        (b"<html>wrong host</html>", False),
    ],
)
def test_test_connection_verdicts(body: Any, ok: bool) -> None:
    assert P.judge_test_answer(_answer(body))[0] is ok


# -- history ---------------------------------------------------------------------------------


def _gone(code: str | None = "NotExist") -> AvatarNotFoundError:
    return AvatarNotFoundError("gone", service="trtc", action=DESCRIBE, remote_task_id="t", code=code, request_id="r")


@pytest.mark.parametrize(
    ("seen", "grace_over", "outcome"),
    [
        ({TaskState.STREAMING}, False, TaskState.STOPPED),  # seen live: decided at once, grace or not
        ({TaskState.STREAMING}, True, TaskState.STOPPED),
        ({TaskState.STOPPING}, False, TaskState.STOPPED),  # a stop was requested
        ({TaskState.STARTING, TaskState.STOPPING}, False, TaskState.STOPPED),
        ({TaskState.STOPPED}, False, TaskState.STOPPED),
        ({TaskState.STARTING}, False, TaskState.FAILED),  # only STARTING: ended before it went live
        ({TaskState.STARTING}, True, TaskState.FAILED),
        ({TaskState.UNKNOWN}, False, TaskState.FAILED),
        (set(), False, "retry"),  # never seen: TRTC may not know it yet, within the grace
        (set(), True, TaskState.FAILED),  # never seen after the grace: the start failed (or a wrong id)
    ],
)
@pytest.mark.parametrize("code", ["NotExist", "FailedOperation.TaskNotExist", "InvalidParameter.TaskId"])
def test_not_exist_is_read_with_the_history(seen: set[TaskState], grace_over: bool, outcome: Any, code: str) -> None:
    now = 1000.0
    status = after_error(
        P,
        _gone(code),
        seen=frozenset(seen),
        now=now,
        last_ok_at=now,
        error_window=300,
        not_found_grace_until=now - 1 if grace_over else now + 60,
    )
    assert (status.state if status else "retry") == outcome
    if status is not None:
        assert (status.error_code, status.request_id, status.remote_task_id, status.service) == (code, "r", "t", "trtc")
        if not seen:
            assert "failed to start" in (status.error_message or "")


def test_other_not_found_errors_stay_errors() -> None:
    http_404 = _gone(code=None)
    assert P.status_when_gone(http_404, seen=frozenset({TaskState.STREAMING})) is None
    assert P.status_when_never_found(http_404) is None
    with pytest.raises(AvatarNotFoundError, match="never found"):
        after_error(P, http_404, seen=frozenset(), now=1, last_ok_at=1, error_window=300, not_found_grace_until=0)


@pytest.mark.parametrize("protocol", [ScenextProtocol(), ZegoProtocol()], ids=["scenext", "zego"])
def test_other_services_still_say_never_found(protocol: Any) -> None:
    """The seam's default keeps today's answer for services whose failed tasks do not vanish."""
    exc = AvatarNotFoundError("no task", service=protocol.service, action="get", remote_task_id="t", code="404")
    assert protocol.status_when_never_found(exc) is None
    with pytest.raises(AvatarNotFoundError, match="never found"):
        after_error(protocol, exc, seen=frozenset(), now=1, last_ok_at=1, error_window=300, not_found_grace_until=0)
