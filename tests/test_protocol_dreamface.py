"""The pure DreamFace (new-api gateway) protocol, from the documented example (docs/services/dreamface.md)."""

from __future__ import annotations

import copy
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
from airflow_provider_avatar.protocols.dreamface import DreamFaceProtocol, parse_progress
from airflow_provider_avatar.status import NO_ARTIFACT, TaskState
from tests.fixtures import payload

P = DreamFaceProtocol()
TASK = "57b9ba07db5e4ed5bf18ebb4179a826d"
NO_WM = "https://cdn.example.test/cdn/20250114/45qy7bqdRCShyfgIK4CO7JVl4GYU0u.mp4"


def _resp(body: Any, status: int = 200, **headers: str) -> ApiResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ApiResponse(status=status, headers={k.lower().replace("_", "-"): v for k, v in headers.items()}, body=raw)


def _doc(**task: Any) -> dict[str, Any]:
    """The documented answer with task fields replaced (``data=...`` replaces the work record)."""
    body: dict[str, Any] = copy.deepcopy(payload("dreamface", "documented_success"))
    body["data"].update(task)
    return body


def test_the_documented_example_succeeds_with_the_unwatermarked_video() -> None:
    status = P.parse_status(TASK, _resp(payload("dreamface", "documented_success"), x_request_id="req-1"))
    assert (status.state, status.raw_status, status.progress, status.video_url) == (
        TaskState.SUCCEEDED,
        "SUCCESS",
        1.0,
        NO_WM,
    )
    assert status.remote_task_id == TASK and status.request_id == "req-1"
    assert status.result["video_field"] == "no_wm_work_video_path"
    assert status.result["work_webp_path"].endswith("BweUV4tS8Zifuc05TWna06jAl1ZE3y.jpg")
    assert status.result["finish_time"] == 1736868794 and status.result["web_work_status"] == 200


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("NOT_START", TaskState.PENDING),
        ("SUBMITTED", TaskState.PENDING),
        ("QUEUED", TaskState.PENDING),
        ("IN_PROGRESS", TaskState.RUNNING),
        ("in_progress", TaskState.RUNNING),
        ("SUCCESS", TaskState.SUCCEEDED),
        ("FAILURE", TaskState.FAILED),
        ("UNKNOWN", TaskState.UNKNOWN),
        ("REVIEWING", TaskState.UNKNOWN),  # a value new-api may add later
        ("", TaskState.UNKNOWN),
        (None, TaskState.UNKNOWN),
    ],
)
def test_every_status(raw: str | None, state: TaskState) -> None:
    status = P.parse_status(TASK, _resp(_doc(status=raw, progress="37%")))
    assert status.state is state
    assert status.raw_status == (None if raw is None else raw)


@pytest.mark.parametrize(
    ("present", "expected_field"),
    [
        (("no_wm_work_video_path", "work_video_path", "wm_work_video_path"), "no_wm_work_video_path"),
        (("work_video_path", "wm_work_video_path"), "work_video_path"),
        (("wm_work_video_path",), "wm_work_video_path"),
    ],
)
def test_video_path_preference(present: tuple[str, ...], expected_field: str) -> None:
    work = {name: f"https://cdn.test/{name}.mp4" for name in present}
    status = P.parse_status(TASK, _resp(_doc(data=work)))
    assert status.state is TaskState.SUCCEEDED
    assert (status.video_url, status.result["video_field"]) == (
        f"https://cdn.test/{expected_field}.mp4",
        expected_field,
    )


@pytest.mark.parametrize(
    "work",
    [
        {},
        {"work_webp_path": "https://cdn.test/cover.jpg"},
        {"no_wm_work_video_path": "", "work_video_path": None, "wm_work_video_path": "server/relative.mp4"},
        None,
        "not an object",
    ],
)
def test_success_without_a_video_path_is_no_artifact(work: Any) -> None:
    status = P.parse_status(TASK, _resp(_doc(data=work)))
    assert (status.state, status.error_code, status.video_url) == (TaskState.FAILED, NO_ARTIFACT, None)
    assert "no_wm_work_video_path" in (status.error_message or "")


def test_failure_carries_fail_reason() -> None:
    status = P.parse_status(TASK, _resp(_doc(status="FAILURE", fail_reason="face not detected", data={})))
    assert (status.state, status.error_message) == (TaskState.FAILED, "face not detected")


@pytest.mark.parametrize(
    ("value", "progress"),
    [("0%", 0.0), ("37%", 0.37), ("100%", 1.0), ("", None), (None, None), ("37", 0.37), ("abc", None), ("250%", 1.0)],
)
def test_progress_strings(value: Any, progress: float | None) -> None:
    assert parse_progress(value) == progress
    status = P.parse_status(TASK, _resp(_doc(status="IN_PROGRESS", progress=value)))
    assert status.progress == progress


def test_missing_progress_is_none() -> None:
    body = _doc(status="QUEUED")
    del body["data"]["progress"]
    assert P.parse_status(TASK, _resp(body)).progress is None


@pytest.mark.parametrize("code", ["success", "SUCCESS", 0, 1, 200, 200.0, None])
def test_both_code_spellings_are_success(code: Any) -> None:
    body = _doc()
    if code is None:
        del body["code"]
    else:
        body["code"] = code
    assert P.parse_status(TASK, _resp(body)).state is TaskState.SUCCEEDED


@pytest.mark.parametrize(
    ("code", "message", "cls"),
    [
        ("fail", "upstream busy", AvatarTransientError),
        (500, "internal error", AvatarTransientError),
        ("task_not_exist", "task_not_exist", AvatarNotFoundError),
        (404, "task not found", AvatarNotFoundError),
        ("error", "无效的令牌", AvatarAuthError),
        (401, "Unauthorized", AvatarAuthError),
        ("error", "rate limit exceeded", AvatarRateLimitedError),
        ("error", "Too many requests for this API key, retry later", AvatarRateLimitedError),
        ("error", "令牌请求过于频繁", AvatarRateLimitedError),
        ("error", "API key not found", AvatarAuthError),
    ],
)
def test_non_success_codes(code: Any, message: str, cls: type[AvatarError]) -> None:
    response = _resp({"code": code, "message": message, "data": None}, x_request_id="req-2")
    spec = P.build_status_request(TASK)
    for raise_it in (lambda: P.check(spec, response), lambda: P.parse_status(TASK, response)):
        with pytest.raises(cls) as info:
            raise_it()
        assert type(info.value) is cls
        assert (info.value.code, info.value.request_id, info.value.remote_task_id) == (str(code), "req-2", TASK)


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, payload("dreamface", "task_not_exist"), AvatarNotFoundError),
        (401, payload("dreamface", "unauthorized"), AvatarAuthError),
        (403, payload("dreamface", "unauthorized"), AvatarAuthError),
        (429, {"error": {"message": "too many"}}, AvatarRateLimitedError),
        (500, {"error": {"message": "oops"}}, AvatarTransientError),
        (502, b"<html>bad gateway</html>", AvatarTransientError),
        (400, {"code": "invalid_request", "message": "bad id"}, AvatarInvalidRequestError),
        (404, payload("dreamface", "invalid_url"), AvatarNotFoundError),
    ],
)
def test_http_errors(status: int, body: Any, cls: type[AvatarError]) -> None:
    with pytest.raises(cls) as info:
        P.check(P.build_status_request(TASK), _resp(body, status=status))
    assert type(info.value) is cls and info.value.http_status == status


def test_task_not_exist_names_the_code_and_task() -> None:
    with pytest.raises(AvatarNotFoundError) as info:
        P.check(P.build_status_request(TASK), _resp(payload("dreamface", "task_not_exist"), status=400))
    assert info.value.code == "task_not_exist" and TASK in str(info.value)


def test_a_401_shows_the_gateways_message() -> None:
    with pytest.raises(AvatarAuthError, match="invalid token"):
        P.check(P.build_status_request(TASK), _resp(payload("dreamface", "unauthorized"), status=401))


@pytest.mark.parametrize(
    "body",
    [b"<html>hello</html>", [1, 2], {"code": "success", "data": None}, {"code": "success", "data": {"x": 1}}],
)
def test_answers_without_a_task_are_bad_responses(body: Any) -> None:
    with pytest.raises(AvatarBadResponseError):
        P.parse_status(TASK, _resp(body))


def test_status_request() -> None:
    spec = P.build_status_request("a/b c")
    assert (spec.method, spec.path, spec.idempotent, spec.remote_task_id) == (
        "GET",
        "avatar/task/a%2Fb%20c",
        True,
        "a/b c",
    )


# -- create ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "task_id"),
    [
        ({"code": "success", "message": "", "data": "task-1"}, "task-1"),
        ({"code": "success", "data": {"task_id": "task-2", "status": "SUBMITTED"}}, "task-2"),
        ({"task_id": "task-3", "status": "queued"}, "task-3"),
        ({"id": "task-4", "object": "video"}, "task-4"),
        ({"code": 1, "data": 12345}, "12345"),
        ({"data": "  task-5 "}, "task-5"),
    ],
)
def test_create_answer_shapes(body: Any, task_id: str) -> None:
    assert P.parse_create(_resp(body)) == task_id


@pytest.mark.parametrize(
    "body",
    [
        {"code": "success", "data": {"result": "x"}},
        {"code": "success", "data": ""},
        {"result": "task-6", "note": "https://cdn.test/a.mp4?Signature=SECRET"},
        [{"task_id": "x"}],
        {"data": True},
    ],
)
def test_other_create_answers_fail_with_the_raw_body_redacted(body: Any) -> None:
    with pytest.raises(AvatarBadResponseError) as info:
        P.parse_create(_resp(body))
    text = str(info.value)
    assert "expected data as a string, data.task_id, task_id or id" in text
    assert "SECRET" not in text
    if isinstance(body, dict) and "result" in body:
        assert "task-6" in text  # the user sees what the gateway answered


def test_create_request() -> None:
    spec = P.build_create_request("/avatar/submit/video", {"image_url": "https://x.test/a.png", "n": 1})
    assert (spec.method, spec.path, spec.json, spec.idempotent) == (
        "POST",
        "avatar/submit/video",
        {"image_url": "https://x.test/a.png", "n": 1},
        False,
    )
    assert P.build_create_request("avatar/submit", '{"a": 1}').json == {"a": 1}


@pytest.mark.parametrize(
    ("path", "body", "match"),
    [
        ("", {"a": 1}, "no create path"),
        (None, {"a": 1}, "create_path"),
        ("https://gw.test/avatar/submit", {"a": 1}, "relative"),
        ("avatar/submit", {}, "non-empty JSON object"),
        ("avatar/submit", [1], "non-empty JSON object"),
        ("avatar/submit", "not json", "not JSON"),
        ("avatar/submit", {"a": object()}, "JSON-serializable"),
    ],
)
def test_bad_create_input_is_refused_before_sending(path: str | None, body: Any, match: str) -> None:
    with pytest.raises(AvatarInputError, match=match):
        P.build_create_request(path, body)


def test_a_refused_create_is_not_transient() -> None:
    """A 200 with a failure code on create: the gateway answered and refused, so it is no lost answer."""
    spec = RequestSpec(action="create_avatar", method="POST", path="avatar/submit", idempotent=False)
    response = _resp({"code": "quota_not_enough", "message": "quota not enough", "data": None})
    P.check(spec, response)  # the answer is read by parse_create, which shows the body
    with pytest.raises(AvatarInvalidRequestError, match="quota not enough") as info:
        P.parse_create(response)
    assert not info.value.transient and info.value.code == "quota_not_enough"


# -- test_connection -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "ok", "says"),
    [
        (400, payload("dreamface", "task_not_exist"), True, "Connection works"),
        (401, payload("dreamface", "unauthorized"), False, "rejected the API key"),
        (403, payload("dreamface", "unauthorized"), False, "rejected the API key"),
        (200, b"<html>welcome to nginx</html>", False, "not like a new-api gateway"),
        (404, b"404 page not found", False, "not like a new-api gateway"),
        (404, {"detail": "Not Found"}, False, "not like a new-api gateway"),
        (503, b"<html>busy</html>", False, "try again"),
    ],
)
def test_judge_test_answer(status: int, body: Any, ok: bool, says: str) -> None:
    result, message = P.judge_test_answer(_resp(body, status=status))
    assert result is ok and says in message


def test_a_task_never_found_during_the_grace_is_failed_naming_the_id_check() -> None:
    """The shared wait asks this once the not-found grace is over for a task it never saw."""
    try:
        P.check(P.build_status_request(TASK), _resp(payload("dreamface", "task_not_exist"), status=400))
    except AvatarNotFoundError as exc:
        status = P.status_when_never_found(exc)
    assert status is not None
    assert (status.state, status.error_code, status.remote_task_id) == (TaskState.FAILED, "task_not_exist", TASK)
    assert "check the task id" in (status.error_message or "")
