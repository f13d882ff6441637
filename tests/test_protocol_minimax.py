"""MiniMax protocol: both flavors, both query body shapes, every status spelling, code and input rule."""

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
from airflow_provider_avatar.protocols.base import ApiResponse, RequestSpec
from airflow_provider_avatar.protocols.minimax import (
    CREATE,
    DIRECT,
    DIRECT_BASE_URL,
    GATEWAY,
    GET_STATUS,
    MAX_IMAGE_BYTES,
    RETRIEVE,
    URL_TTL,
    MiniMaxProtocol,
    flavor_for,
)
from airflow_provider_avatar.status import NO_ARTIFACT, TaskState

GW, DI = MiniMaxProtocol(GATEWAY), MiniMaxProtocol(DIRECT, group_id="g-1")
TASK = "106916112212032"


def answer(body: Any, status: int = 200) -> ApiResponse:
    return ApiResponse(status=status, headers={}, body=json.dumps(body).encode())


def base(code: int = 0, msg: str = "success", **body: Any) -> dict[str, Any]:
    return {**body, "base_resp": {"status_code": code, "status_msg": msg}}


# -- flavors and wire -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "extra", "flavor"),
    [
        (DIRECT_BASE_URL, None, DIRECT),  # MiniMax's own hosts are named once, in the protocol
        ("api.minimaxi.com", None, DIRECT),  # a bare host
        (DIRECT_BASE_URL + "/", "", DIRECT),
        ("https://api.gpt.ge", None, GATEWAY),
        ("", None, GATEWAY),
        (None, "auto", GATEWAY),
        (DIRECT_BASE_URL, "gateway", GATEWAY),
        ("https://my-proxy.test", "Direct", DIRECT),
    ],
)
def test_flavor_from_extra_else_host(host: str | None, extra: str | None, flavor: str) -> None:
    assert flavor_for(host, extra) == flavor


def test_unknown_flavor_is_refused() -> None:
    with pytest.raises(ValueError, match="gateway, direct"):
        flavor_for("https://api.gpt.ge", "proxy")


@pytest.mark.parametrize(
    ("proto", "build", "method", "path", "params"),
    [
        (GW, lambda p: p.build_create_request(prompt="a cat"), "POST", "task/minimax/v1/video_generation", {}),
        (DI, lambda p: p.build_create_request(prompt="a cat"), "POST", "v1/video_generation", {"GroupId": "g-1"}),
        (GW, lambda p: p.build_status_request(TASK), "GET", f"task/{TASK}", {}),
        (
            DI,
            lambda p: p.build_status_request(TASK),
            "GET",
            "v1/query/video_generation",
            {"task_id": TASK, "GroupId": "g-1"},
        ),
        (GW, lambda p: p.build_retrieve_request("f1"), "GET", "task/minimax/v1/files/retrieve", {"file_id": "f1"}),
        (
            DI,
            lambda p: p.build_retrieve_request("f1"),
            "GET",
            "v1/files/retrieve",
            {"file_id": "f1", "GroupId": "g-1"},
        ),
    ],
    ids=["gw-create", "direct-create", "gw-query", "direct-query", "gw-retrieve", "direct-retrieve"],
)
def test_paths_per_flavor(proto: MiniMaxProtocol, build: Any, method: str, path: str, params: dict[str, str]) -> None:
    spec = build(proto)
    assert (spec.method, spec.path, dict(spec.params)) == (method, path, params)


def test_group_id_is_sent_only_on_direct_calls() -> None:
    assert "GroupId" not in MiniMaxProtocol(GATEWAY, group_id="g-1").build_status_request(TASK).params


def test_create_is_not_idempotent_and_body_is_passed_through() -> None:
    spec = GW.build_create_request(
        prompt=" a cat [Pan left] ",
        model="MiniMax-Hailuo-02",
        duration=10,
        resolution="768p",
        prompt_optimizer=False,
        callback_url="https://hooks.test/cb",
        extra={"aigc_watermark": False},
    )
    assert not spec.idempotent
    assert spec.json == {
        "aigc_watermark": False,
        "model": "MiniMax-Hailuo-02",
        "prompt": "a cat [Pan left]",
        "duration": 10,
        "resolution": "768P",
        "prompt_optimizer": False,
        "callback_url": "https://hooks.test/cb",
    }


# -- validation -------------------------------------------------------------------------------------
IMG = "https://img.test/frame.png"
DATA = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "prompt or first_frame_image is required"),
        ({"prompt": "x" * 2001}, "at most 2000"),
        ({"prompt": "x", "duration": 8}, "duration must be one of 6, 10"),
        ({"prompt": "x", "model": ""}, "model must be"),
        ({"prompt": "x", "resolution": "4K"}, "supports resolution 768P, 1080P"),
        ({"prompt": "x", "resolution": "1080P", "duration": 10}, "at 1080P supports duration 6"),
        ({"prompt": "x", "model": "MiniMax-Hailuo-02", "resolution": "512P"}, "512P only for image-to-video"),
        ({"prompt": "x", "model": "MiniMax-Hailuo-2.3-Fast"}, "first_frame_image is required"),
        ({"prompt": "x", "model": "I2V-01"}, "first_frame_image is required"),
        ({"prompt": "x", "model": "T2V-01", "duration": 10}, "at 720P supports duration 6"),
        ({"prompt": "x", "model": "T2V-01", "resolution": "768P"}, "supports resolution 720P"),
        ({"prompt": "x", "first_frame_image": "/tmp/a.png"}, "http(s) URL or a data:image"),
        ({"prompt": "x", "first_frame_image": "data:text/plain;base64,AAAA"}, "http(s) URL or a data:image"),
        (
            {"prompt": "x", "first_frame_image": "data:image/png;base64," + "A" * (MAX_IMAGE_BYTES // 3 * 4 + 8)},
            "at most",
        ),
        ({"prompt": "x", "callback_url": "hooks.test/cb"}, "callback_url must be"),
    ],
)
def test_bad_input_is_refused_before_sending(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(AvatarInputError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        GW.build_create_request(**kwargs)
    assert info.value.action == CREATE


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": "x" * 2000},
        {"prompt": "x", "duration": 10},
        {"prompt": "x", "resolution": "1080P", "duration": 6},
        {"first_frame_image": IMG, "model": "MiniMax-Hailuo-2.3-Fast", "duration": 10},
        {"first_frame_image": DATA, "model": "MiniMax-Hailuo-02", "resolution": "512P", "duration": 10},
        {"prompt": "x", "model": "T2V-01-Director"},
        {"first_frame_image": IMG, "model": "I2V-01-live", "resolution": "720P"},
        # unknown models are passed through unchecked: new ones appear often
        {"prompt": "x", "model": "MiniMax-Hailuo-9", "resolution": "4K", "duration": 6},
    ],
)
def test_documented_combinations_pass(kwargs: dict[str, Any]) -> None:
    assert GW.build_create_request(**kwargs).json["model"]


# -- statuses ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("Preparing", TaskState.PENDING),
        ("Queueing", TaskState.PENDING),
        ("Processing", TaskState.RUNNING),
        ("processing", TaskState.RUNNING),
        ("Success", TaskState.SUCCEEDED),
        ("success", TaskState.SUCCEEDED),
        ("Fail", TaskState.FAILED),
        ("Failed", TaskState.FAILED),
        ("failed", TaskState.FAILED),
        ("Reviewing", TaskState.UNKNOWN),
        (None, TaskState.UNKNOWN),
    ],
)
@pytest.mark.parametrize("shape", ["raw", "wrapper"])
def test_every_status_spelling_in_both_shapes(raw: str | None, state: TaskState, shape: str) -> None:
    task = {"task_id": TASK, "status": raw, "file_id": "f1", "video_width": 1366, "video_height": 768}
    body = base(**task) if shape == "raw" else {"code": 10000, "message": "Success", "data": task}
    status = GW.parse_status(TASK, answer(body))
    assert status.state is state
    assert status.raw_status == raw
    if state is TaskState.SUCCEEDED:
        assert status.result == {"file_id": "f1", "width": 1366, "height": 768}


@pytest.mark.parametrize("shape", ["raw", "wrapper"])
def test_success_without_file_id_is_no_artifact(shape: str) -> None:
    task = {"task_id": TASK, "status": "Success", "file_id": ""}
    body = base(**task) if shape == "raw" else {"code": 0, "data": task}
    status = DI.parse_status(TASK, answer(body))
    assert (status.state, status.error_code) == (TaskState.FAILED, NO_ARTIFACT)


def test_wrapper_with_a_video_url_and_no_file_id_succeeds() -> None:
    body = {"code": 10000, "data": {"status": "Success", "video_url": "https://cdn.test/v.mp4?sig=secret"}}
    status = GW.parse_status(TASK, answer(body))
    assert status.state is TaskState.SUCCEEDED
    assert status.to_dict()["video_url"] == "https://cdn.test/v.mp4"


def test_wrapper_resp_data_carries_the_raw_answer() -> None:
    raw = json.dumps(base(status="Success", file_id="f9", video_width=720, video_height=1280))
    status = GW.parse_status(TASK, answer({"code": 10000, "data": {"status": "Success", "resp_data": raw}}))
    assert status.result == {"file_id": "f9", "width": 720, "height": 1280}


@pytest.mark.parametrize("code", [1026, 1027])
@pytest.mark.parametrize("proto", [GW, DI], ids=["gateway", "direct"])
def test_content_refusal_on_a_query_is_a_failed_task(code: int, proto: MiniMaxProtocol) -> None:
    response = answer(base(code, "output new_sensitive", task_id=TASK, status="Fail", file_id=""))
    proto.check(proto.build_status_request(TASK), response)  # the read succeeded
    status = proto.parse_status(TASK, response)
    assert (status.state, status.error_code, status.error_message) == (
        TaskState.FAILED,
        str(code),
        "output new_sensitive",
    )


# -- codes ------------------------------------------------------------------------------------------
CODE_TABLE = [
    (1000, AvatarTransientError),
    (1001, AvatarTransientError),
    (1024, AvatarTransientError),
    (1033, AvatarTransientError),
    (1002, AvatarRateLimitedError),
    (1039, AvatarRateLimitedError),
    (1041, AvatarRateLimitedError),
    (2045, AvatarRateLimitedError),
    (2056, AvatarRateLimitedError),
    (1004, AvatarAuthError),
    (2049, AvatarAuthError),
    (1008, AvatarInvalidRequestError),
    (1026, AvatarInvalidRequestError),
    (1027, AvatarInvalidRequestError),
    (1042, AvatarInvalidRequestError),
    (2013, AvatarInvalidRequestError),
    (9999, AvatarInvalidRequestError),
]
NOT_SENT = {1002, 1039, 1041, 2045, 2056, 1008, 1026, 1042, 2013, 1004, 2049}


@pytest.mark.parametrize(("code", "cls"), CODE_TABLE)
@pytest.mark.parametrize("http", [200, 400])
def test_every_code_on_create(code: int, cls: type[AvatarError], http: int) -> None:
    spec = GW.build_create_request(prompt="x")
    with pytest.raises(cls) as info:
        GW.check(spec, answer(base(code, "boom", trace_id="tr-1"), status=http))
    err = info.value
    assert type(err) is cls
    assert (err.code, err.request_id, err.action) == (str(code), "tr-1", CREATE)
    assert err.sent is (code not in NOT_SENT)


def test_rate_limited_create_names_the_minute_budget() -> None:
    with pytest.raises(AvatarRateLimitedError, match="per minute") as info:
        DI.check(DI.build_create_request(prompt="x"), answer(base(1002, "rate limit exceeded(RPM)")))
    assert info.value.sent is False and info.value.transient


@pytest.mark.parametrize(("code", "cls"), [(c, k) for c, k in CODE_TABLE if c not in (2013, 1026, 1027)])
def test_codes_on_a_query_without_a_task_status(code: int, cls: type[AvatarError]) -> None:
    with pytest.raises(cls):
        DI.check(DI.build_status_request(TASK), answer(base(code, "boom")))


def test_invalid_task_id_on_a_query_is_not_found() -> None:
    with pytest.raises(AvatarNotFoundError):
        DI.check(DI.build_status_request(TASK), answer(base(2013, "invalid params")))


def test_wrapper_error_code_is_an_error() -> None:
    with pytest.raises(AvatarRateLimitedError):
        GW.check(GW.build_status_request(TASK), answer({"code": 1002, "message": "slow down"}))


@pytest.mark.parametrize(
    ("status", "cls"), [(401, AvatarAuthError), (403, AvatarAuthError), (429, AvatarRateLimitedError)]
)
def test_http_statuses_without_a_code(status: int, cls: type[AvatarError]) -> None:
    with pytest.raises(cls):
        GW.check(GW.build_status_request(TASK), ApiResponse(status, {}, b"<html>no</html>"))


# -- create and retrieve answers --------------------------------------------------------------------
def test_parse_create() -> None:
    assert GW.parse_create(answer(base(task_id=TASK))) == TASK
    with pytest.raises(AvatarBadResponseError):
        GW.parse_create(answer(base()))


def test_parse_retrieve_gives_url_and_expiry() -> None:
    file = {"file_id": "f1", "bytes": 10, "filename": "v.mp4", "download_url": "https://cdn.test/v.mp4?sig=x"}
    info = DI.parse_retrieve("f1", answer(base(file=file)), now=1000.0)
    assert (info.download_url, info.expires_at, info.bytes) == (file["download_url"], 1000.0 + URL_TTL, 10)
    backup = {"file_id": "f1", "backup_download_url": "https://cdn2.test/v.mp4"}
    assert DI.parse_retrieve("f1", answer(base(file=backup)), now=0).download_url == "https://cdn2.test/v.mp4"
    with pytest.raises(AvatarBadResponseError):
        DI.parse_retrieve("f1", answer(base(file={"file_id": "f1"})), now=0)


def test_retrieve_codes_are_errors() -> None:
    spec = DI.build_retrieve_request("f1")
    assert spec.action == RETRIEVE and spec.idempotent
    with pytest.raises(AvatarAuthError):
        DI.check(spec, answer(base(2049, "invalid api key")))


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (base(2013, "invalid params"), True),
        (base(1004, "login fail"), False),
        (base(2049, "invalid api key"), False),
        (base(1033, "system error"), False),
    ],
)
def test_test_connection_verdict(body: dict[str, Any], ok: bool) -> None:
    assert DI.judge_test_answer(answer(body))[0] is ok
    assert isinstance(DI.build_test_request(), RequestSpec)
    assert DI.build_test_request().action != GET_STATUS
