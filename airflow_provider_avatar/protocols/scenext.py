"""Scenext explainer-video API (docs/services/scenext.md): pure request builders and response parsing.

Base URL ``https://api.scenext.cn/api``; Bearer key; envelope ``{"status": "success"|"error",
"data": {...}}`` where the envelope status reports the *request*, not the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from airflow_provider_avatar.exceptions import (
    AvatarInputError,
    AvatarInvalidRequestError,
    AvatarNotFoundError,
)
from airflow_provider_avatar.inputs import checking, optional_text, text_list
from airflow_provider_avatar.protocols.base import ApiResponse, RequestSpec, ServiceProtocol
from airflow_provider_avatar.status import NO_ARTIFACT, TaskState, TaskStatus

SERVICE = "scenext"
CREATE = "create_video"
QUALITIES = ("l", "m", "h")

_STATES: Mapping[str, TaskState] = {
    "IN_PROGRESS": TaskState.RUNNING,
    "COMPLETED": TaskState.SUCCEEDED,
    "FAILED": TaskState.FAILED,
}


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def extract_video_url(result: Any) -> str | None:
    """Find the video URL in ``result``, which the docs show both as a dict and as a list."""
    if isinstance(result, Mapping):
        for key in ("video_url", "url"):
            value = result.get(key)
            if isinstance(value, str) and _is_http_url(value):
                return value
        return None
    if isinstance(result, Sequence) and not isinstance(result, (str, bytes)):
        for item in result:
            if isinstance(item, Mapping):
                found = extract_video_url(item)
                if found:
                    return found
            elif isinstance(item, str) and _is_http_url(item) and urlsplit(item).path.lower().endswith(".mp4"):
                return item
    return None


def _result_error(result: Any) -> str | None:
    if isinstance(result, Mapping):
        value = result.get("error") or result.get("message")
        return str(value) if value else None
    if isinstance(result, Sequence) and not isinstance(result, (str, bytes)):
        for item in result:
            found = _result_error(item)
            if found:
                return found
    return None


class ScenextProtocol(ServiceProtocol):
    service: ClassVar[str] = SERVICE

    # -- create --------------------------------------------------------------------------------
    def build_create_request(
        self,
        *,
        question: str | None = None,
        question_images: Sequence[str] | None = None,
        answer: str | None = None,
        answer_images: Sequence[str] | None = None,
        quality: str = "m",
        notify_url: str | None = None,
    ) -> RequestSpec:
        """Validate the inputs and build ``POST /gen_video``; raises before anything is sent."""
        action = CREATE

        def bad(message: str) -> AvatarInputError:
            return AvatarInputError(message, service=SERVICE, action=action)

        with checking(SERVICE, action):
            if question is not None and not isinstance(question, str):
                raise ValueError(f"question must be text; got {type(question).__name__} {question!r}")
            question = (question or "").strip() or None
            images = [] if question_images is None else text_list("question_images", question_images)
            answer = optional_text("answer", answer)
            answer_images = None if answer_images is None else text_list("answer_images", answer_images)
        if not question and not images:
            raise bad("question or question_images is required")
        if quality not in QUALITIES:
            raise bad(f"quality must be one of {', '.join(QUALITIES)}; got {quality!r}")
        if notify_url is not None and not _is_http_url(notify_url):
            raise bad("notify_url must be a full http(s) URL")
        body: dict[str, Any] = {"quality": quality}
        if question:
            body["question"] = question
        if images:
            body["questionImages"] = images
        if answer:
            body["answer"] = answer
        if answer_images:
            body["answerImages"] = list(answer_images)
        if notify_url:
            body["notify_url"] = notify_url
        return RequestSpec(action=action, method="POST", path="gen_video", json=body, idempotent=False)

    def parse_create(self, response: ApiResponse) -> str:
        data = self._data(CREATE, response, None)
        task_id = data.get("task_id")
        if task_id is None or str(task_id).strip() == "":
            raise self.bad_response(CREATE, response, None, "no task_id in the answer")
        return str(task_id)

    # -- status --------------------------------------------------------------------------------
    def build_status_request(self, remote_task_id: str) -> RequestSpec:
        return RequestSpec(
            action="get_status",
            method="GET",
            path=f"get_status/{quote(remote_task_id, safe='')}",
            remote_task_id=remote_task_id,
        )

    def build_test_request(self) -> RequestSpec:
        # No list endpoint exists: an unknown id answers 401 for a bad key and a
        # not-found/error envelope for a good one, which is enough to test the key.
        return RequestSpec(action="test_connection", method="GET", path="get_status/connection-test")

    def parse_status(self, remote_task_id: str, response: ApiResponse) -> TaskStatus:
        data = self._data("get_status", response, remote_task_id)
        raw = data.get("status")
        raw_text = None if raw is None else str(raw)
        state = _STATES.get((raw_text or "").strip().upper(), TaskState.UNKNOWN)
        frames = data.get("progress")
        frame_count = len(frames) if isinstance(frames, list) else 0
        result = data.get("result")
        extras: dict[str, Any] = {"preview_frames": frame_count}
        video_url = extract_video_url(result) if result is not None else None
        error_code = error_message = None
        if state is TaskState.SUCCEEDED and not video_url:
            state, error_code = TaskState.FAILED, NO_ARTIFACT
            error_message = "task COMPLETED but its result holds no video URL"
        elif state is TaskState.FAILED:
            error_message = _result_error(result) or data.get("error") or data.get("message")
            error_message = None if error_message is None else str(error_message)
        if isinstance(result, Mapping):
            for key in ("thumbnail_url", "duration"):
                if key in result:
                    extras[key] = result[key]
        return TaskStatus(
            service=SERVICE,
            remote_task_id=str(data.get("task_id") or remote_task_id),
            state=state,
            raw_status=raw_text,
            progress=1.0 if state is TaskState.SUCCEEDED else None,
            video_url=video_url,
            result=extras,
            error_code=error_code,
            error_message=error_message,
            request_id=self.request_id(response),
        )

    # -- envelope ------------------------------------------------------------------------------
    def is_own_answer(self, response: ApiResponse) -> bool:
        try:
            body = response.json()
        except ValueError:
            return False
        return isinstance(body, Mapping) and str(body.get("status", "")).lower() in ("success", "error")

    def error_message(self, response: ApiResponse) -> str:
        try:
            body = response.json()
        except ValueError:
            return super().error_message(response)
        if isinstance(body, Mapping):
            data = body.get("data")
            if isinstance(data, Mapping) and data.get("messages"):
                return str(data["messages"])
        return super().error_message(response)

    def _data(self, action: str, response: ApiResponse, remote_task_id: str | None) -> Mapping[str, Any]:
        body = self.json_body(action, response, remote_task_id)
        if not isinstance(body, Mapping):
            raise self.bad_response(action, response, remote_task_id, "answer is not a JSON object")
        envelope = str(body.get("status", "")).lower()
        if envelope == "error":
            # HTTP 200 with an error envelope is an API error, not a task failure. On a status
            # query the likely cause is an unknown id (docs/services/scenext.md, "Errors"), so it reads as not found.
            cls = AvatarNotFoundError if action == "get_status" else AvatarInvalidRequestError
            raise cls(
                self.error_message(response),
                service=SERVICE,
                action=action,
                remote_task_id=remote_task_id,
                request_id=self.request_id(response),
                http_status=response.status,
            )
        data = body.get("data")
        if envelope != "success" or not isinstance(data, Mapping):
            raise self.bad_response(action, response, remote_task_id, "unexpected envelope")
        return data
