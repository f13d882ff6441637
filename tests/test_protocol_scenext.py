"""The pure Scenext protocol, driven by the documented examples (docs/services/scenext.md)."""

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
from airflow_provider_avatar.protocols.scenext import ScenextProtocol
from airflow_provider_avatar.status import NO_ARTIFACT, TaskState
from tests.fixtures import payload

P = ScenextProtocol()


def _resp(body: Any, status: int = 200, **headers: str) -> ApiResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ApiResponse(status=status, headers={k.lower().replace("_", "-"): v for k, v in headers.items()}, body=raw)


@pytest.mark.parametrize(
    ("fixture", "state", "video_url", "error_code"),
    [
        ("documented_in_progress", TaskState.RUNNING, None, None),
        ("completed_dict", TaskState.SUCCEEDED, "https://oss.scenext.test/v/12345.mp4?Expires=1&Signature=abc", None),
        ("completed_list_of_dicts", TaskState.SUCCEEDED, "https://oss.scenext.test/v/12345.mp4", None),
        ("completed_list_of_strings", TaskState.SUCCEEDED, "https://oss.scenext.test/v/12345.MP4?x=1", None),
        ("completed_lowercase", TaskState.SUCCEEDED, "https://oss.scenext.test/v/12345.mp4", None),
        ("completed_without_url", TaskState.FAILED, None, NO_ARTIFACT),
        ("completed_unparseable_result", TaskState.FAILED, None, NO_ARTIFACT),
        ("failed_with_result_error", TaskState.FAILED, None, None),
        ("failed_bare", TaskState.FAILED, None, None),
        ("unknown_status", TaskState.UNKNOWN, None, None),
        ("missing_status", TaskState.UNKNOWN, None, None),
    ],
)
def test_parse_status(fixture: str, state: TaskState, video_url: str | None, error_code: str | None) -> None:
    status = P.parse_status("12345", _resp(payload("scenext", fixture), x_request_id="req-1"))
    assert (status.state, status.video_url, status.error_code) == (state, video_url, error_code)
    assert status.service == "scenext" and status.remote_task_id == "12345" and status.request_id == "req-1"


def test_progress_frames_are_counted_not_copied() -> None:
    status = P.parse_status("12345", _resp(payload("scenext", "documented_in_progress")))
    assert status.result["preview_frames"] == 2
    assert status.raw_status == "IN_PROGRESS"
    assert "Signature" not in json.dumps(status.to_dict())


def test_failure_reason_is_carried() -> None:
    status = P.parse_status("12345", _resp(payload("scenext", "failed_with_result_error")))
    assert status.error_message == "content rejected"


@pytest.mark.parametrize(
    ("http_status", "body", "headers", "error"),
    [
        (401, payload("scenext", "unauthorized"), {}, AvatarAuthError),
        (403, b"forbidden", {}, AvatarAuthError),
        (404, payload("scenext", "error_envelope"), {}, AvatarNotFoundError),
        (429, b"{}", {"retry-after": "7"}, AvatarRateLimitedError),
        (500, b"oops", {}, AvatarTransientError),
        (502, b"<html><body>Bad Gateway</body></html>", {}, AvatarTransientError),
        (503, b"", {}, AvatarTransientError),
        (504, b"", {}, AvatarTransientError),
        (400, payload("scenext", "error_envelope"), {}, AvatarInvalidRequestError),
    ],
)
def test_http_errors_are_classified(http_status: int, body: Any, headers: dict[str, str], error: type) -> None:
    spec = P.build_status_request("12345")
    response = _resp(body, http_status)
    response = ApiResponse(response.status, headers, response.body)
    with pytest.raises(error) as info:
        P.check(spec, response)
    assert info.value.service == "scenext" and info.value.action == "get_status"
    assert info.value.remote_task_id == "12345" and info.value.http_status == http_status
    if http_status == 429:
        assert info.value.retry_after == 7
    if http_status == 401:
        assert "Unauthorized: Invalid API key" in str(info.value)


@pytest.mark.parametrize(
    ("action", "body", "error"),
    [
        ("status", payload("scenext", "error_envelope"), AvatarNotFoundError),
        ("create", payload("scenext", "error_envelope"), AvatarInvalidRequestError),
        ("status", b"<html>gateway</html>", AvatarBadResponseError),
        ("status", [1, 2], AvatarBadResponseError),
        ("status", {"status": "success", "data": "nope"}, AvatarBadResponseError),
        ("create", {"status": "success", "data": {}}, AvatarBadResponseError),
    ],
)
def test_http_200_envelope_errors(action: str, body: Any, error: type[AvatarError]) -> None:
    with pytest.raises(error):
        if action == "status":
            P.parse_status("12345", _resp(body))
        else:
            P.parse_create(_resp(body))


def test_parse_create() -> None:
    assert P.parse_create(_resp(payload("scenext", "create_ok"))) == "12345"


def test_create_request_body_and_safety() -> None:
    spec = P.build_create_request(
        question="Why?",
        question_images=["https://i/1.png"],
        answer="Because",
        quality="h",
        notify_url="https://hook.example/cb",
    )
    assert (spec.method, spec.path, spec.idempotent) == ("POST", "gen_video", False)
    assert spec.json == {
        "question": "Why?",
        "questionImages": ["https://i/1.png"],
        "answer": "Because",
        "quality": "h",
        "notify_url": "https://hook.example/cb",
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "question or question_images is required"),
        ({"question": "   "}, "question or question_images is required"),
        ({"question": "q", "quality": "x"}, "quality must be one of l, m, h"),
        ({"question": "q", "quality": "M"}, "quality must be one of"),
        ({"question_images": [""]}, "non-empty strings"),
        ({"question": "q", "notify_url": "ftp://x/y"}, "notify_url must be a full http"),
    ],
)
def test_create_input_is_validated_before_sending(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(AvatarInputError, match=match):
        P.build_create_request(**kwargs)


def test_status_path_escapes_the_id() -> None:
    assert P.build_status_request("a/b?c").path == "get_status/a%2Fb%3Fc"


def test_bearer_authorization() -> None:
    spec = P.authorize(P.build_status_request("1"), Credentials(secret="k"), now=0, nonce="n")
    assert spec.headers["Authorization"] == "Bearer k"
    assert "k" not in repr(Credentials(secret="k"))


def test_signed_urls_never_reach_xcom_or_error_text() -> None:
    status = P.parse_status("12345", _resp(payload("scenext", "completed_dict")))
    assert status.result["thumbnail_url"].endswith("Signature=THUMBSIG")  # usable in memory
    assert "THUMBSIG" not in json.dumps(status.to_dict())
    assert status.to_dict()["result"]["thumbnail_url"] == "https://oss.scenext.test/t.png"
    with pytest.raises(AvatarBadResponseError) as info:
        P.parse_status("12345", _resp(payload("scenext", "odd_envelope_with_signed_urls")))
    assert "FRAMESIG" not in str(info.value) and "AKID" not in str(info.value)
    assert "https://oss.scenext.test/f1.png" in str(info.value)
