"""DreamFace avatar tasks behind a new-api gateway (docs/services/dreamface.md): pure requests and parsing.

The host is the user's gateway (no public default); Bearer key. Status reads are
``GET avatar/task/{id}`` answering new-api's envelope ``{"code": "success" | number, "message",
"data": task}`` with the DreamFace work record in ``data.data``. The create route is not published:
the user names it (``create_path``) and supplies the body; the task id is read from the answer
shapes new-api gateways use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, TypeGuard
from urllib.parse import quote, urlsplit

from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarError,
    AvatarInputError,
    AvatarInvalidRequestError,
    AvatarNotFoundError,
    AvatarRateLimitedError,
    AvatarTransientError,
)
from airflow_provider_avatar.protocols.base import (
    ApiResponse,
    RequestSpec,
    ServiceProtocol,
    gone_status,
    http_error_class,
)
from airflow_provider_avatar.status import NO_ARTIFACT, TaskState, TaskStatus

SERVICE = "dreamface"
STATUS = "get_status"
CREATE = "create_avatar"
TEST = "test_connection"
#: new-api's code for an unknown task (or another key's task), sent with HTTP 400.
TASK_NOT_EXIST = "task_not_exist"
#: The id ``test_connection`` asks for: a good key gets ``task_not_exist``, a bad one 401.
TEST_TASK_ID = "airflow-connection-test"
#: Success codes: new-api's string, and the numbers a gateway whose schema says "number" may send
#: (0 and 200 by HTTP/REST habit, 1 by midjourney-proxy's). Inferred, see the service page.
SUCCESS_CODES = frozenset({"success", "0", "1", "200"})
#: Where the video is, best first: without watermark, then the plain and watermarked paths.
VIDEO_FIELDS = ("no_wm_work_video_path", "work_video_path", "wm_work_video_path")
COVER_FIELD = "work_webp_path"

_STATES: Mapping[str, TaskState] = {
    "NOT_START": TaskState.PENDING,
    "SUBMITTED": TaskState.PENDING,
    "QUEUED": TaskState.PENDING,
    "IN_PROGRESS": TaskState.RUNNING,
    "SUCCESS": TaskState.SUCCEEDED,
    "FAILURE": TaskState.FAILED,
}
#: Classes a non-success ``code`` or message stands for, first match wins; anything else is transient.
#: Rate limits come first ("too many requests for this API key" is not a bad key) and keys before
#: tasks ("API key not found" is not a missing task).
_MESSAGE_CLASSES: tuple[tuple[re.Pattern[str], type[AvatarError]], ...] = (
    (re.compile(r"rate.?limit|too many requests|请求过于频繁", re.I), AvatarRateLimitedError),
    (re.compile(r"unauthori[sz]ed|invalid (api )?(key|token)|令牌|api key", re.I), AvatarAuthError),
    (re.compile(r"task_not_exist|task not exist|not[ _]found", re.I), AvatarNotFoundError),
)
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")


def parse_progress(value: Any) -> float | None:
    """``"37%"`` → 0.37 (clamped to 0..1); empty, missing or unreadable → ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _PERCENT.match(str(value))
        if match is None:
            return None
        number = float(match.group(1))
    return max(0.0, min(number / 100.0, 1.0))


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def pick_video(work: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(field, url)`` of the preferred video path in a DreamFace work record, or ``None``."""
    for name in VIDEO_FIELDS:
        value = work.get(name)
        if _is_http_url(value):
            return name, str(value).strip()
    return None


def envelope_code(body: Any) -> str | None:
    """The envelope's ``code`` as text (``200.0`` → ``"200"``), or ``None`` when there is none."""
    code = body.get("code") if isinstance(body, Mapping) else None
    if code is None or isinstance(code, bool):
        return None
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    return str(code).strip()


def is_failure_code(code: str | None) -> TypeGuard[str]:
    """A ``code`` that is present and is not one of the success spellings."""
    return code is not None and code.lower() not in SUCCESS_CODES


def extract_task_id(body: Any) -> str | None:
    """The task id from the create-answer shapes new-api gateways return, or ``None``.

    ``{"data": "<id>"}``, ``{"data": {"task_id": "<id>"}}``, ``{"task_id": "<id>"}``, ``{"id": "<id>"}``.
    """
    if not isinstance(body, Mapping):
        return None
    data = body.get("data")
    candidates = [data, data.get("task_id") if isinstance(data, Mapping) else None, body.get("task_id"), body.get("id")]
    for value in candidates:
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


class DreamFaceProtocol(ServiceProtocol):
    service: ClassVar[str] = SERVICE

    def status_when_never_found(self, exc: AvatarNotFoundError) -> TaskStatus | None:
        """``task_not_exist`` during the whole not-found grace: the wait ends FAILED (the task never
        reached the gateway's store, or the id is not this gateway's), with that said in its message."""
        return gone_status(
            exc,
            TaskState.FAILED,
            "task_not_exist during the whole not-found grace: the gateway never knew this task "
            "(check the task id and that the connection is the gateway that created it)",
        )

    # -- requests ------------------------------------------------------------------------------
    def build_status_request(self, remote_task_id: str) -> RequestSpec:
        return RequestSpec(
            action=STATUS,
            method="GET",
            path=f"avatar/task/{quote(remote_task_id, safe='')}",
            remote_task_id=remote_task_id,
        )

    def build_test_request(self) -> RequestSpec:
        # No cheap listing exists: an unknown id answers 400 task_not_exist for a good key, 401 for a bad one.
        return RequestSpec(action=TEST, method="GET", path=f"avatar/task/{TEST_TASK_ID}")

    def build_create_request(self, create_path: str | None, body: Any) -> RequestSpec:
        """``POST <create_path>`` with the user's JSON object; raises before anything is sent."""

        def bad(message: str) -> AvatarInputError:
            return AvatarInputError(message, service=SERVICE, action=CREATE)

        path = (create_path or "").strip()
        if not path:
            raise bad(
                "no create path: DreamFace gateways publish no standard submit route; set the connection "
                "extra 'create_path' (or the operator's create_path) to your gateway's route"
            )
        if "://" in path or "?" in path or "#" in path:
            raise bad(f"create_path must be a path relative to the gateway's base URL; got {path!r}")
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                raise bad("body must be a JSON object; the text given is not JSON") from None
        if not isinstance(body, Mapping) or not body:
            raise bad(f"body must be a non-empty JSON object; got {type(body).__name__}")
        try:
            payload = json.loads(json.dumps(body))
        except (TypeError, ValueError) as exc:
            raise bad(f"body is not JSON-serializable ({exc})") from None
        return RequestSpec(action=CREATE, method="POST", path=path.lstrip("/"), json=payload, idempotent=False)

    # -- responses -----------------------------------------------------------------------------
    def parse_create(self, response: ApiResponse) -> str:
        body = self.json_body(CREATE, response, None)
        task_id = extract_task_id(body)
        code = envelope_code(body)
        if task_id is None and is_failure_code(code):
            # The gateway answered and refused (quota, bad input): not a lost answer.
            raise self._error_for(CREATE, response, None, code)
        if task_id is None:
            raise self.bad_response(
                CREATE,
                response,
                None,
                "no task id in the gateway's answer (expected data as a string, data.task_id, task_id or id)",
            )
        return task_id

    def parse_status(self, remote_task_id: str, response: ApiResponse) -> TaskStatus:
        task = self._task(remote_task_id, response)
        raw = task.get("status")
        raw_text = None if raw is None else str(raw)
        state = _STATES.get((raw_text or "").strip().upper(), TaskState.UNKNOWN)
        work = task.get("data")
        work = work if isinstance(work, Mapping) else {}
        progress = parse_progress(task.get("progress"))
        result: dict[str, Any] = {
            key: task[key] for key in ("action", "submit_time", "start_time", "finish_time") if key in task
        }
        if _is_http_url(work.get(COVER_FIELD)):
            result[COVER_FIELD] = str(work[COVER_FIELD]).strip()
        for key in ("id", "work_name", "file_type", "web_work_status"):
            if key in work:
                result[f"work_{key}" if key == "id" else key] = work[key]
        video_url = error_code = error_message = None
        if state is TaskState.SUCCEEDED:
            picked = pick_video(work)
            if picked is None:
                state, error_code = TaskState.FAILED, NO_ARTIFACT
                error_message = f"task is SUCCESS but its work has none of {', '.join(VIDEO_FIELDS)}"
            else:
                result["video_field"], video_url = picked
                progress = 1.0
        elif state is TaskState.FAILED:
            reason = task.get("fail_reason")
            error_message = str(reason) if reason else "task FAILURE without a fail_reason"
        return TaskStatus(
            service=SERVICE,
            remote_task_id=str(task.get("task_id") or remote_task_id),
            state=state,
            raw_status=raw_text,
            progress=progress,
            video_url=video_url,
            result=result,
            error_code=error_code,
            error_message=error_message,
            request_id=self.request_id(response),
        )

    # -- envelope and errors -------------------------------------------------------------------
    def _envelope(self, response: ApiResponse) -> Mapping[str, Any] | None:
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, Mapping) else None

    def _task(self, remote_task_id: str, response: ApiResponse) -> Mapping[str, Any]:
        body = self.json_body(STATUS, response, remote_task_id)
        if not isinstance(body, Mapping):
            raise self.bad_response(STATUS, response, remote_task_id, "answer is not a JSON object")
        code = envelope_code(body)
        if is_failure_code(code):
            raise self._error_for(STATUS, response, remote_task_id, code)
        data = body.get("data")
        if not isinstance(data, Mapping) or "status" not in data:
            raise self.bad_response(STATUS, response, remote_task_id, "answer has no task object in data")
        return data

    def error_message(self, response: ApiResponse) -> str:
        body = self._envelope(response)
        if body is not None:
            error = body.get("error")
            if isinstance(error, Mapping) and error.get("message"):
                return str(error["message"])  # OpenAI-style error object (new-api's 401)
            if body.get("message"):
                return str(body["message"])
        return super().error_message(response)

    def _error_for(self, action: str, response: ApiResponse, remote_task_id: str | None, code: str) -> AvatarError:
        """The error a non-success ``code`` stands for (HTTP 200 or 4xx): by its code and message."""
        message = self.error_message(response)
        cls: type[AvatarError] = AvatarTransientError
        for pattern, candidate in _MESSAGE_CLASSES:
            if pattern.search(code) or pattern.search(message):
                cls = candidate
                break
        if action == CREATE and cls is AvatarTransientError:
            # The gateway answered and refused: not a lost answer, and nothing to repeat blindly.
            cls = AvatarInvalidRequestError
        return cls(
            message,
            service=SERVICE,
            action=action,
            remote_task_id=remote_task_id,
            code=code,
            request_id=self.request_id(response),
            http_status=response.status,
        )

    def check(self, spec: RequestSpec, response: ApiResponse, *, now: float | None = None) -> None:
        """HTTP 400 ``task_not_exist`` is not found; a non-success ``code`` in a 200 is an error."""
        body = self._envelope(response)
        code = envelope_code(body)
        if response.status == 400 and code is not None:
            # new-api answers an unknown task with 400 {"code": "task_not_exist", ...}.
            cls = self._error_for(spec.action, response, spec.remote_task_id, code)
            if isinstance(cls, AvatarNotFoundError):
                raise cls
        if response.status < 400 and spec.action != CREATE and is_failure_code(code):
            raise self._error_for(spec.action, response, spec.remote_task_id, code)
        super().check(spec, response, now=now)

    def is_own_answer(self, response: ApiResponse) -> bool:
        """new-api's envelope (a ``code``) or its OpenAI-style ``error`` object."""
        body = self._envelope(response)
        return body is not None and ("code" in body or isinstance(body.get("error"), Mapping))

    def judge_test_answer(self, response: ApiResponse) -> tuple[bool, str]:
        """A good key reads the probe id as ``task_not_exist``; 401/403 is a bad key; anything
        that does not look like new-api is the wrong host."""
        cls = http_error_class(response.status)
        if cls is AvatarAuthError:
            return False, (
                f"the gateway rejected the API key (HTTP {response.status}: {self.error_message(response)}); "
                "check the connection's password"
            )
        body = self._envelope(response)
        code = envelope_code(body)
        if code == TASK_NOT_EXIST or (response.status < 400 and code is not None and not is_failure_code(code)):
            return True, "Connection works: the gateway accepted the API key and answers like new-api."
        if cls is not None and cls.transient:
            return False, f"the gateway answered HTTP {response.status}: {self.error_message(response)}; try again"
        return False, (
            f"the host answered HTTP {response.status} but not like a new-api gateway's avatar/task route: "
            f"check the API base URL ({self.error_message(response)[:80]!r})"
        )
