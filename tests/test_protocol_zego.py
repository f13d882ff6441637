"""The pure ZEGO protocol: signature, request builders, envelopes, statuses and return codes (docs/services/zego.md)."""

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
from airflow_provider_avatar.protocols.base import ApiResponse, Credentials
from airflow_provider_avatar.protocols.zego import CODES, ZegoProtocol, signature
from airflow_provider_avatar.status import TaskState

P = ZegoProtocol()
SECRET = "0123456789abcdef0123456789abcdef"


def _resp(body: Any, status: int = 200) -> ApiResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ApiResponse(status=status, headers={"content-type": "application/json"}, body=raw)


def _envelope(code: int = 0, data: Any = None, message: str = "success") -> dict[str, Any]:
    body: dict[str, Any] = {"Code": code, "Message": message, "RequestId": "req-7"}
    if data is not None:
        body["Data"] = data
    return body


def test_signature_matches_the_documented_formula_and_vector() -> None:
    assert signature("1234567890", "15215528852396", SECRET, 1700000000) == "f650dea5bece00500004f5841f2609c1"


def test_every_attempt_is_signed_with_its_own_nonce_and_timestamp() -> None:
    spec = P.build_status_request("task-1")
    creds = Credentials(secret=SECRET, login="1234567890")
    first = P.authorize(spec, creds, now=1700000000.9, nonce="aaaa")
    second = P.authorize(spec, creds, now=1700000060.0, nonce="bbbb")
    assert first.params == {
        "Action": "GetDigitalHumanStreamTaskStatus",
        "AppId": "1234567890",
        "SignatureNonce": "aaaa",
        "Timestamp": "1700000000",
        "SignatureVersion": "2.0",
        "Signature": signature("1234567890", "aaaa", SECRET, 1700000000),
    }
    assert second.params["Signature"] != first.params["Signature"]
    assert SECRET not in json.dumps([first.params, second.params, first.json, dict(first.headers)])
    assert spec.params == {"Action": "GetDigitalHumanStreamTaskStatus"}  # the unsigned spec is untouched


@pytest.mark.parametrize(
    ("raw", "state"),
    [(1, TaskState.STARTING), (2, TaskState.FAILED), (3, TaskState.STREAMING), (4, TaskState.STOPPING),
     (5, TaskState.STOPPED), (6, TaskState.UNKNOWN), ("3", TaskState.UNKNOWN), (True, TaskState.UNKNOWN),
     (None, TaskState.UNKNOWN)],
)  # fmt: skip
def test_every_status_is_mapped(raw: Any, state: TaskState) -> None:
    data = {"Status": raw, "RoomId": "r", "StreamId": "s", "CreateTime": 1749541482, "FailReason": "no GPU"}
    status = P.parse_status("task-1", _resp(_envelope(data=data)))
    assert status.state is state
    assert status.result == {"room_id": "r", "stream_id": "s", "create_time": 1749541482}
    assert status.request_id == "req-7"
    # FailReason is only meaningful with Status 2
    assert status.error_message == ("no GPU" if state is TaskState.FAILED else None)


def test_the_documented_example_parses() -> None:
    documented = {
        "Code": 0,
        "Message": "success",
        "RequestId": "f0a9bf1d-167c-4c0e-af69-96d4e1cf6686",
        "Data": {
            "RoomId": "digital_room_1749541482",
            "StreamId": "digital_stream_1749541482",
            "Status": 3,
            "CreateTime": 1749541482,
        },
    }
    response = _resp(documented)
    spec = P.build_status_request("f06d1f5d-c0d1-4845-9a2c-f0a45ee037fd")
    P.check(spec, response)
    status = P.parse_status("f06d1f5d-c0d1-4845-9a2c-f0a45ee037fd", response)
    assert status.state is TaskState.STREAMING and status.request_id == "f0a9bf1d-167c-4c0e-af69-96d4e1cf6686"


# Every documented return code (docs/services/zego.md, "Return codes") with its class. 100000004 was first
# read as "retry with a fresh signature", but every attempt is already signed afresh,
# so a stale timestamp means the clock is off, which a retry cannot fix: an auth error naming the clock.
DOCUMENTED = {
    100000000: AvatarInvalidRequestError, 100000001: AvatarAuthError, 100000002: AvatarInvalidRequestError,
    100000003: AvatarInvalidRequestError, 100000004: AvatarAuthError, 100000005: AvatarAuthError,
    100000006: AvatarInvalidRequestError, 100000007: AvatarInvalidRequestError,
    100000008: AvatarInvalidRequestError, 100000009: AvatarInvalidRequestError, 100000010: AvatarAuthError,
    100000011: AvatarAuthError, 100000012: AvatarInvalidRequestError, 100000013: AvatarInvalidRequestError,
    100000014: AvatarInvalidRequestError, 100000015: AvatarTransientError, 100000017: AvatarAuthError,
    400000001: AvatarInvalidRequestError, 400000002: AvatarAuthError, 400000003: AvatarInvalidRequestError,
    400000004: AvatarInvalidRequestError, 400000005: AvatarNotFoundError, 400000006: AvatarTransientError,
    400000007: AvatarInvalidRequestError, 400000008: AvatarRateLimitedError, 400000009: AvatarInvalidRequestError,
    400000010: AvatarInvalidRequestError, 400000015: AvatarInvalidRequestError,
    400000016: AvatarInvalidRequestError, 400010000: AvatarTransientError, 400010001: AvatarAuthError,
    # not in the tables: unknown gateway codes are retried, unknown business codes are not
    100000099: AvatarTransientError, 400000099: AvatarInvalidRequestError,
}  # fmt: skip


def test_the_code_table_covers_every_documented_code() -> None:
    assert set(CODES) == {code for code in DOCUMENTED if code not in (100000099, 400000099)}


@pytest.mark.parametrize(("code", "cls"), sorted(DOCUMENTED.items()))
def test_every_return_code_maps_to_its_class(code: int, cls: type[AvatarError]) -> None:
    spec = P.build_status_request("task-1")
    with pytest.raises(AvatarError) as info:
        P.check(spec, _resp(_envelope(code, message="something went wrong")))  # HTTP 200 with Code != 0
    err = info.value
    assert type(err) is cls
    assert (err.code, err.request_id, err.remote_task_id, err.action) == (
        str(code),
        "req-7",
        "task-1",
        "GetDigitalHumanStreamTaskStatus",
    )
    assert "something went wrong" in str(err)


@pytest.mark.parametrize("http_status", [200, 400, 500])
def test_the_envelope_code_decides_whatever_the_http_status(http_status: int) -> None:
    with pytest.raises(AvatarNotFoundError) as info:
        P.check(P.build_status_request("t"), _resp(_envelope(400000005, message="task not found"), http_status))
    assert info.value.http_status == http_status


def test_a_string_zero_code_is_success() -> None:
    P.check(P.build_query_request(), _resp({"Code": "0", "Message": "success", "RequestId": "r"}))


@pytest.mark.parametrize("http_status", [200, 404, 502])
def test_an_echoed_request_line_does_not_leak_the_signature(http_status: int) -> None:
    """A proxy page quoting the request path must not put a replayable signature into errors."""
    sig = signature("1234567890", "n0nce", SECRET, 1700000000)
    page = f"<html>cannot route POST /?Action=StopDigitalHumanStreamTask&AppId=1234567890&Signature={sig} </html>"
    with pytest.raises(AvatarError) as info:
        P.check(P.build_stop_request("t"), _resp(page.encode(), http_status))
    assert sig not in str(info.value) and "Signature=" not in str(info.value)
    assert "cannot route POST /" in str(info.value)


def test_refusals_are_marked_as_not_acted_on_so_non_idempotent_calls_may_retry() -> None:
    spec = P.build_drive_by_text_request("task-1", text="hi", timbre_id="t")
    refusals = ((400000006, False), (400000008, False), (100000004, False), (400010000, True), (100000015, True))
    for code, acted in refusals:
        with pytest.raises(AvatarError) as info:
            P.check(spec, _resp(_envelope(code)))
        assert info.value.sent is acted, code


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (429, {"Message": "QPS limit exceeded"}, AvatarRateLimitedError),
        (502, b"<html>bad gateway</html>", AvatarTransientError),
        (200, b"<html>captive portal</html>", AvatarBadResponseError),
        (200, {"status": "ok"}, AvatarBadResponseError),
        (200, {"Code": "x"}, AvatarBadResponseError),
    ],
)
def test_http_and_envelope_failures(status: int, body: Any, cls: type[AvatarError]) -> None:
    with pytest.raises(cls):
        P.check(P.build_query_request(), _resp(body, status))


def test_query_lists_running_tasks() -> None:
    data = {
        "TaskList": [
            {"TaskId": "a", "RoomId": "r1", "StreamId": "s1", "Status": 1, "CreateTime": 1},
            {"TaskId": "b", "RoomId": "r2", "StreamId": "s2", "Status": 3, "CreateTime": 2},
            {"RoomId": "no id"},
        ]
    }
    streams = P.parse_query(_resp(_envelope(data=data)))
    assert [(s.task_id, s.stream_id, s.state) for s in streams] == [
        ("a", "s1", TaskState.STARTING),
        ("b", "s2", TaskState.STREAMING),
    ]
    assert P.parse_query(_resp(_envelope(data={"TaskList": []}))) == []


def test_create_body_is_built_from_valid_input() -> None:
    spec = P.build_create_request(
        digital_human_id="dh-1",
        room_id="room#1",
        stream_id="stream_1-a",
        background_color="#00ff00",
        layout={"Top": 0, "Left": 0, "Width": 1080, "Height": 1920, "Layer": 1},
        video_config={"Width": 1080, "Height": 1920, "Bitrate": 2_000_000},
        assets=[{"AssetUrl": "https://cdn.example.test/bg.png"}],
    )
    assert spec.params == {"Action": "CreateDigitalHumanStreamTask"} and spec.idempotent is False
    assert spec.json == {
        "DigitalHumanConfig": {
            "DigitalHumanId": "dh-1",
            "BackgroundColor": "#00ff00",
            "Layout": {"Top": 0, "Left": 0, "Width": 1080, "Height": 1920, "Layer": 1},
        },
        "RTCConfig": {"RoomId": "room#1", "StreamId": "stream_1-a"},
        "TTL": 3600,  # bounded defaults: never ZEGO's 24 h
        "MaxIdleTime": 600,
        "VideoConfig": {"Width": 1080, "Height": 1920, "Bitrate": 2_000_000},
        "Assets": [{"AssetType": 1, "AssetUrl": "https://cdn.example.test/bg.png"}],
    }


BASE: dict[str, Any] = {"digital_human_id": "dh-1", "room_id": "room1", "stream_id": "stream1"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"digital_human_id": " "}, "digital_human_id"),
        ({"room_id": ""}, "room_id"),
        ({"room_id": "room 1"}, "room_id"),
        ({"room_id": "r" * 129}, "room_id"),
        ({"stream_id": "s" * 129}, "stream_id"),
        ({"stream_id": "stream.1"}, "stream_id"),
        ({"stream_id": "stréam"}, "stream_id"),
        ({"ttl": 9}, "ttl"),
        ({"ttl": 86401}, "ttl"),
        ({"ttl": "3600"}, "ttl"),
        ({"max_idle_time": 29}, "max_idle_time"),
        ({"background_color": "green"}, "background_color"),
        ({"video_config": {"Width": 1920, "Height": 1920}}, "1920x1080"),
        ({"video_config": {"Width": 1080, "Height": 1920, "Bitrate": 50}}, "Bitrate"),
        ({"layout": {"Top": 0, "Depth": 1}}, "Depth"),
        ({"assets": [{"AssetUrl": "file:///etc/passwd"}]}, "AssetUrl"),
    ],
)
def test_bad_create_input_fails_before_sending(change: dict[str, Any], words: str) -> None:
    with pytest.raises(AvatarInputError, match=words) as info:
        P.build_create_request(**{**BASE, **change})
    assert info.value.action == "CreateDigitalHumanStreamTask"


def test_ids_at_the_documented_limit_are_accepted() -> None:
    spec = P.build_create_request(**{**BASE, "room_id": "r" * 128, "stream_id": "s" * 128, "ttl": 10})
    assert spec.json["RTCConfig"] == {"RoomId": "r" * 128, "StreamId": "s" * 128}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 1801}, "1800"),
        ({"timbre_id": ""}, "timbre_id"),
        ({"speech_rate": 501}, "SpeechRate"),
        ({"pitch_rate": -501}, "PitchRate"),
        ({"volume": 0}, "Volume"),
        ({"volume": 101}, "Volume"),
        ({"interrupt_mode": 2}, "interrupt_mode"),
    ],
)
def test_bad_drive_input_fails_before_sending(change: dict[str, Any], words: str) -> None:
    args: dict[str, Any] = {"text": "hello", "timbre_id": "t1", **change}
    with pytest.raises(AvatarInputError, match=words):
        P.build_drive_by_text_request("task-1", **args)


def test_drive_body_at_the_limits() -> None:
    spec = P.build_drive_by_text_request(
        "task-1", text="x" * 1800, timbre_id="t1", speech_rate=-500, pitch_rate=500, volume=100, interrupt_mode=1
    )
    assert spec.json == {
        "TaskId": "task-1",
        "Text": "x" * 1800,
        "InterruptMode": 1,
        "TTSConfig": {"TimbreId": "t1", "SpeechRate": -500, "PitchRate": 500, "Volume": 100},
    }
    assert spec.idempotent is False  # a repeat would speak twice


def _not_found() -> AvatarNotFoundError:
    return AvatarNotFoundError("task not found", service="zego", action="get", remote_task_id="t", code=400000005)


@pytest.mark.parametrize(
    ("seen", "grace_over", "outcome"),
    [
        ({TaskState.STREAMING}, False, TaskState.STOPPED),  # seen: decided at once, grace or not
        ({TaskState.STOPPING}, False, TaskState.STOPPED),  # also what a stop request implies
        ({TaskState.STOPPED}, True, TaskState.STOPPED),
        ({TaskState.STARTING}, False, TaskState.FAILED),  # seen only before going live: failed, at once
        ({TaskState.STARTING}, True, TaskState.FAILED),
        (set(), False, "retry"),  # never seen: maybe not listed yet, within the grace
        (set(), True, "never found"),
    ],
)
def test_task_not_found_is_read_with_the_history(seen: set[TaskState], grace_over: bool, outcome: Any) -> None:
    """The one shared decision (poke, reschedule and the trigger all call it)."""
    from airflow_provider_avatar.waiting import after_error

    now = 1000.0
    try:
        status = after_error(
            P,
            _not_found(),
            seen=frozenset(seen),
            now=now,
            last_ok_at=now,
            error_window=300,
            not_found_grace_until=now - 1 if grace_over else now + 60,
        )
    except AvatarNotFoundError as exc:
        assert outcome == "never found" and "never found: check the remote task id" in exc.detail
        assert exc.code == "400000005"
        return
    assert (status.state if status else "retry") == outcome
    if status:
        assert status.error_code == "400000005" and status.remote_task_id == "t"


def test_other_not_found_errors_are_not_reinterpreted() -> None:
    http_404 = AvatarNotFoundError("no route", service="zego", action="get", remote_task_id="t", http_status=404)
    assert P.status_when_gone(http_404, seen=frozenset({TaskState.STREAMING})) is None


@pytest.mark.parametrize(
    ("status", "body", "ok"),
    [
        (200, _envelope(data={"TaskList": []}), True),
        (200, _envelope(100000005, message="signature error"), False),
        (200, _envelope(400000002, message="not enabled"), False),
        (401, {"Message": "no"}, False),
        (200, b"<html>not zego</html>", False),
        (404, b"Not Found", False),
    ],
)
def test_test_connection_verdict(status: int, body: Any, ok: bool) -> None:
    assert P.judge_test_answer(_resp(body, status))[0] is ok
