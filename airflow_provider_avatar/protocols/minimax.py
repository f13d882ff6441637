"""MiniMax Hailuo video generation (docs/services/minimax.md): request builders and answer parsing.

Two flavors of one API, chosen by the connection: ``direct`` (MiniMax's own ``/v1/...`` paths) and
``gateway`` (an aggregator such as api.gpt.ge: ``/task/minimax/v1/...`` and ``GET /task/{id}``).
Answers carry ``base_resp: {status_code, status_msg}``; an HTTP 200 with a non-zero code is an
error. A gateway may also wrap a query answer as ``{"code", "data": {"status", "video_url"}}``.
A finished task gives a ``file_id``; ``files/retrieve`` turns it into an expiring download URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar
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
from airflow_provider_avatar.inputs import checking, flag, mapping, optional_text, text
from airflow_provider_avatar.protocols.base import ApiResponse, RequestSpec, ServiceProtocol
from airflow_provider_avatar.status import NO_ARTIFACT, TaskState, TaskStatus

SERVICE = "minimax"
GATEWAY = "gateway"
DIRECT = "direct"
FLAVORS = (GATEWAY, DIRECT)
#: The form's "choose from the host" value of the ``flavor`` extra.
AUTO = "auto"
#: MiniMax's own international host, used for ``flavor=direct`` when the connection has no host.
DIRECT_BASE_URL = "https://api.minimax.io"
#: Hosts that are MiniMax itself (international, mainland, older names): their flavor is ``direct``.
DIRECT_HOSTS = frozenset({"api.minimax.io", "api.minimaxi.com", "api.minimax.chat", "api.minimaxi.chat"})

CREATE = "create_video"
GET_STATUS = "get_status"
RETRIEVE = "retrieve_file"

#: Creates are limited per minute (5 RPM free tier, 20 RPM paid): the conservative default is the
#: free tier's 5 per minute; the connection's ``action_max_qps`` extra raises it.
DEFAULT_CREATES_PER_MINUTE = 5
#: MiniMax's advice: poll about every 10 s.
POLL_INTERVAL = 10.0
#: Download URLs expire about 9 hours after files/retrieve issued them.
URL_TTL = 9 * 3600

MAX_PROMPT = 2000
DURATIONS = (6, 10)
#: MiniMax's limit for ``first_frame_image`` (a URL's image, or the bytes of a data URI).
MAX_IMAGE_BYTES = 20 * 1024 * 1024
DEFAULT_MODEL = "MiniMax-Hailuo-2.3"


@dataclass(frozen=True)
class ModelRule:
    """What a known model accepts: resolution → durations, and whether it needs a first frame."""

    resolutions: Mapping[str, tuple[int, ...]]
    default_resolution: str
    image_only: bool = False
    #: Resolutions allowed only with a first frame (image-to-video).
    image_only_resolutions: frozenset[str] = frozenset()


_HAILUO = {"768P": (6, 10), "1080P": (6,)}
_V01 = {"720P": (6,)}
#: The documented model/resolution/duration combinations (docs/services/minimax.md, "Fields").
MODELS: Mapping[str, ModelRule] = {
    "MiniMax-Hailuo-2.3": ModelRule(_HAILUO, "768P"),
    "MiniMax-Hailuo-2.3-Fast": ModelRule(_HAILUO, "768P", image_only=True),
    "MiniMax-Hailuo-02": ModelRule({"512P": (6, 10), **_HAILUO}, "768P", image_only_resolutions=frozenset({"512P"})),
    "T2V-01-Director": ModelRule(_V01, "720P"),
    "T2V-01": ModelRule(_V01, "720P"),
    "I2V-01-Director": ModelRule(_V01, "720P", image_only=True),
    "I2V-01-live": ModelRule(_V01, "720P", image_only=True),
    "I2V-01": ModelRule(_V01, "720P", image_only=True),
}

STATUSES: Mapping[str, TaskState] = {
    "preparing": TaskState.PENDING,
    "queueing": TaskState.PENDING,
    "processing": TaskState.RUNNING,
    "success": TaskState.SUCCEEDED,
    "fail": TaskState.FAILED,
    "failed": TaskState.FAILED,
}

#: ``base_resp.status_code`` → (error class, hint). Codes not listed are invalid requests.
CODES: Mapping[int, tuple[type[AvatarError], str]] = {
    1000: (AvatarTransientError, "unknown error"),
    1001: (AvatarTransientError, "timeout"),
    1002: (AvatarRateLimitedError, "rate limit"),
    1004: (AvatarAuthError, "not authorized: check the API key (and group_id, if set)"),
    1008: (AvatarInvalidRequestError, "insufficient balance"),
    1024: (AvatarTransientError, "internal error"),
    1026: (AvatarInvalidRequestError, "input flagged as sensitive"),
    1027: (AvatarInvalidRequestError, "output flagged as sensitive"),
    1033: (AvatarTransientError, "system error"),
    1039: (AvatarRateLimitedError, "token limit"),
    1041: (AvatarRateLimitedError, "connection limit"),
    1042: (AvatarInvalidRequestError, "too many invisible characters"),
    2013: (AvatarInvalidRequestError, "invalid parameters"),
    2045: (AvatarRateLimitedError, "request rate growing too fast"),
    2049: (AvatarAuthError, "invalid API key"),
    2056: (AvatarRateLimitedError, "usage limit: wait for the next 5-hour window"),
}
#: Codes of a content refusal: on a query they come with ``status`` Fail and end the task.
CONTENT_REFUSED = frozenset({1026, 1027})
#: Codes of a create MiniMax refused before acting: sending it again cannot create a second task.
REFUSED = frozenset({1002, 1039, 1041, 2045, 2056, 1008, 1026, 1042, 2013, 1004, 2049})
#: Wrapper ``code`` values meaning success (the gateway's generic envelope; 10000 in its examples).
_WRAPPER_OK = frozenset({"0", "200", "10000", "success"})


def flavor_for(host: str | None, flavor: str | None) -> str:
    """The connection's flavor: the ``flavor`` extra, else ``direct`` for MiniMax's own hosts, else gateway."""
    if flavor is not None and str(flavor).strip().lower() not in ("", AUTO):
        value = str(flavor).strip().lower()
        if value not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}; got {flavor!r}")
        return value
    hostname = urlsplit(host if host and "://" in host else f"//{host or ''}").hostname or ""
    return DIRECT if hostname in DIRECT_HOSTS else GATEWAY


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def data_uri_size(value: str) -> int:
    """Decoded size in bytes of a base64 data URI (without decoding it)."""
    payload = value.partition(",")[2]
    return len(payload) * 3 // 4 - payload[-2:].count("=")


#: Create fields the operator has parameters for: ``extra_body`` may not set them.
CREATE_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "duration",
        "resolution",
        "first_frame_image",
        "prompt_optimizer",
        "fast_pretreatment",
        "callback_url",
    }
)


def create_switches(prompt_optimizer: Any = None, fast_pretreatment: Any = None) -> dict[str, bool]:
    """The create's true/false options that were given; raises ``AvatarInputError`` (checked at DAG parse too)."""
    with checking(SERVICE, CREATE):
        given = {"prompt_optimizer": prompt_optimizer, "fast_pretreatment": fast_pretreatment}
        return {name: flag(name, value) for name, value in given.items() if value is not None}


def check_first_frame(value: str, *, action: str = CREATE) -> None:
    """``first_frame_image`` must be an http(s) URL or a base64 image data URI within the size limit."""
    if _is_http_url(value):
        return
    head = value[:64].lower()
    if not (head.startswith("data:image/") and ";base64," in head):
        raise AvatarInputError(
            "first_frame_image must be an http(s) URL or a data:image/...;base64, URI "
            "(the operator also reads a local path or an object storage URI)",
            service=SERVICE,
            action=action,
        )
    size = data_uri_size(value)
    if size > MAX_IMAGE_BYTES:
        raise AvatarInputError(
            f"first_frame_image is {size} bytes; MiniMax accepts at most {MAX_IMAGE_BYTES}",
            service=SERVICE,
            action=action,
        )


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class FileInfo:
    """A retrieved file: its download URL (signed, expiring) and when it expires (epoch seconds)."""

    file_id: str
    download_url: str
    expires_at: float
    bytes: int | None = None
    filename: str | None = None


class MiniMaxProtocol(ServiceProtocol):
    """MiniMax's v1 video API in one flavor. ``group_id`` (direct) is sent as ``GroupId`` when set."""

    service: ClassVar[str] = SERVICE
    default_action_max_qps: ClassVar[Mapping[str, float]] = {CREATE: DEFAULT_CREATES_PER_MINUTE / 60.0}

    def __init__(self, flavor: str = GATEWAY, group_id: str | None = None) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}; got {flavor!r}")
        self.flavor = flavor
        self.group_id = (group_id or "").strip() or None

    def __repr__(self) -> str:
        return f"MiniMaxProtocol(flavor={self.flavor!r})"

    def _params(self, **params: str) -> dict[str, str]:
        if self.group_id and self.flavor == DIRECT:
            params["GroupId"] = self.group_id
        return params

    def _prefix(self) -> str:
        return "task/minimax/v1" if self.flavor == GATEWAY else "v1"

    # -- create --------------------------------------------------------------------------------
    def build_create_request(
        self,
        *,
        prompt: str | None = None,
        model: str = DEFAULT_MODEL,
        duration: int | str | None = None,
        resolution: str | None = None,
        first_frame_image: str | None = None,
        prompt_optimizer: bool | None = None,
        fast_pretreatment: bool | None = None,
        callback_url: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> RequestSpec:
        """Validate the inputs and build the create call; raises before anything is sent.

        An unknown ``model`` is passed through unchecked (new models appear often); the caller
        warns about it (:func:`is_known_model`).
        """

        def bad(message: str) -> AvatarInputError:
            return AvatarInputError(message, service=SERVICE, action=CREATE)

        if not isinstance(model, str) or not model.strip():
            raise bad("model must be a non-empty string, e.g. MiniMax-Hailuo-2.3")
        model = model.strip()
        if prompt is not None and not isinstance(prompt, str):
            raise bad(f"prompt must be text; got {type(prompt).__name__} {prompt!r}")
        prompt = (prompt or "").strip() or None
        if prompt is not None and len(prompt) > MAX_PROMPT:
            raise bad(f"prompt is {len(prompt)} characters; MiniMax accepts at most {MAX_PROMPT}")
        with checking(SERVICE, CREATE):
            first_frame_image = optional_text("first_frame_image", first_frame_image)
            switches = create_switches(prompt_optimizer, fast_pretreatment)
            body: dict[str, Any] = {**mapping("extra_body", extra)} if extra is not None else {}
            named = sorted(set(body) & CREATE_FIELDS)
            if named:
                raise ValueError(f"extra_body sets {', '.join(named)}, which have their own parameters: use those")
            if isinstance(duration, str) and not duration.strip():
                raise ValueError("duration is empty (a template rendered nothing?); give 6 or 10, or leave it unset")
            if resolution is not None:
                resolution = text("resolution", str(resolution)).upper()
        if first_frame_image is not None:
            check_first_frame(first_frame_image)
        if prompt is None and first_frame_image is None:
            raise bad("prompt or first_frame_image is required")
        seconds: int | None = None
        if duration is not None:
            seconds = _int(duration)  # a templated value arrives as text
            if seconds not in DURATIONS:
                raise bad(f"duration must be one of {', '.join(map(str, DURATIONS))} seconds; got {duration!r}")
        rule = MODELS.get(model)
        if rule is not None:
            if rule.image_only and first_frame_image is None:
                raise bad(f"{model} makes videos from an image only: first_frame_image is required")
            res = resolution or rule.default_resolution
            if res not in rule.resolutions:
                raise bad(f"{model} supports resolution {', '.join(rule.resolutions)}; got {res!r}")
            if res in rule.image_only_resolutions and first_frame_image is None:
                raise bad(f"{model} supports {res} only for image-to-video (first_frame_image)")
            allowed = rule.resolutions[res]
            if (seconds or 6) not in allowed:
                raise bad(f"{model} at {res} supports duration {', '.join(map(str, allowed))} s; got {seconds}")
        if callback_url is not None and not _is_http_url(callback_url):
            raise bad("callback_url must be a full http(s) URL")
        body["model"] = model
        if prompt is not None:
            body["prompt"] = prompt
        if first_frame_image is not None:
            body["first_frame_image"] = first_frame_image
        if seconds is not None:
            body["duration"] = seconds
        if resolution is not None:
            body["resolution"] = resolution
        body.update(switches)
        if callback_url:
            body["callback_url"] = callback_url
        return RequestSpec(
            action=CREATE,
            method="POST",
            path=f"{self._prefix()}/video_generation",
            params=self._params(),
            json=body,
            idempotent=False,
        )

    def parse_create(self, response: ApiResponse) -> str:
        body = self._object(CREATE, response, None)
        task_id = body.get("task_id")
        if task_id is None or str(task_id).strip() == "":
            raise self.bad_response(CREATE, response, None, "no task_id in the answer")
        return str(task_id)

    # -- status --------------------------------------------------------------------------------
    def build_status_request(self, remote_task_id: str) -> RequestSpec:
        if self.flavor == GATEWAY:
            path, params = f"task/{quote(remote_task_id, safe='')}", self._params()
        else:
            path, params = "v1/query/video_generation", self._params(task_id=remote_task_id)
        return RequestSpec(action=GET_STATUS, method="GET", path=path, params=params, remote_task_id=remote_task_id)

    def build_test_request(self) -> RequestSpec:
        # No cheap read exists: querying an id that cannot exist answers an auth error for a bad
        # key and a "not found"/invalid-parameter answer for a good one.
        return replace(self.build_status_request("connection-test"), action="test_connection")

    def parse_status(self, remote_task_id: str, response: ApiResponse) -> TaskStatus:
        body = self._object(GET_STATUS, response, remote_task_id)
        data = body.get("data") if "data" in body and "status" not in body else None
        task: Mapping[str, Any] = data if isinstance(data, Mapping) else body
        extras = _nested(task)
        raw = task.get("status")
        raw_text = None if raw is None else str(raw)
        state = STATUSES.get((raw_text or "").strip().lower(), TaskState.UNKNOWN)
        file_id = task.get("file_id") or extras.get("file_id")
        video_url = task.get("video_url") or extras.get("video_url")
        video_url = str(video_url) if isinstance(video_url, str) and _is_http_url(video_url) else None
        result: dict[str, Any] = {}
        if file_id not in (None, ""):
            result["file_id"] = str(file_id)
        for key, name in (("width", "video_width"), ("height", "video_height")):
            value = _int(task.get(name, extras.get(name)))
            if value is not None:
                result[key] = value
        code, message = self.base_resp(body if data is None else {**body, **task})
        error_code = error_message = None
        if state is TaskState.SUCCEEDED and "file_id" not in result and not video_url:
            state, error_code = TaskState.FAILED, NO_ARTIFACT
            error_message = "task reported Success but gave no file_id"
        elif state is TaskState.FAILED:
            error_code = str(code) if code else None
            reason = task.get("error_message") or task.get("fail_reason") or message
            error_message = str(reason) if reason else None
        return TaskStatus(
            service=SERVICE,
            remote_task_id=str(task.get("task_id") or remote_task_id),
            state=state,
            raw_status=raw_text,
            progress=1.0 if state is TaskState.SUCCEEDED else None,
            video_url=video_url,
            result=result,
            error_code=error_code,
            error_message=error_message,
            request_id=self.request_id(response),
        )

    # -- files ---------------------------------------------------------------------------------
    def build_retrieve_request(self, file_id: str, *, remote_task_id: str | None = None) -> RequestSpec:
        return RequestSpec(
            action=RETRIEVE,
            method="GET",
            path=f"{self._prefix()}/files/retrieve",
            params=self._params(file_id=file_id),
            remote_task_id=remote_task_id,
        )

    def parse_retrieve(self, file_id: str, response: ApiResponse, *, now: float) -> FileInfo:
        body = self._object(RETRIEVE, response, None)
        file = body.get("file")
        if not isinstance(file, Mapping):
            raise self.bad_response(RETRIEVE, response, None, "no file object in the answer")
        url = file.get("download_url") or file.get("backup_download_url")
        if not isinstance(url, str) or not _is_http_url(url):
            raise self.bad_response(RETRIEVE, response, None, "no download_url in the file object")
        return FileInfo(
            file_id=str(file.get("file_id") or file_id),
            download_url=url,
            expires_at=now + URL_TTL,
            bytes=_int(file.get("bytes")),
            filename=str(file["filename"]) if file.get("filename") else None,
        )

    # -- envelope ------------------------------------------------------------------------------
    @staticmethod
    def _body(response: ApiResponse) -> Mapping[str, Any] | None:
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, Mapping) else None

    @staticmethod
    def base_resp(body: Mapping[str, Any]) -> tuple[int, str | None]:
        """``(status_code, status_msg)`` of an answer: ``base_resp``, or a wrapper's ``code``/``message``."""
        resp = body.get("base_resp")
        if isinstance(resp, Mapping):
            code = _int(resp.get("status_code")) or 0
            msg = resp.get("status_msg")
            return code, None if msg is None else str(msg)
        if "code" in body and str(body.get("code")).strip().lower() not in _WRAPPER_OK:
            msg = body.get("message") or body.get("msg")
            return _int(body.get("code")) or -1, None if msg is None else str(msg)
        return 0, None

    def request_id(self, response: ApiResponse) -> str | None:
        body = self._body(response)
        if body is not None:
            for key in ("request_id", "trace_id"):
                if body.get(key):
                    return str(body[key])
        return response.header("trace-id") or super().request_id(response)

    def error_message(self, response: ApiResponse) -> str:
        body = self._body(response)
        if body is not None:
            _, message = self.base_resp(body)
            if message:
                return message[:200]
        return super().error_message(response)

    def is_own_answer(self, response: ApiResponse) -> bool:
        body = self._body(response)
        return body is not None and ("base_resp" in body or "code" in body or "task_id" in body)

    def error_for_code(self, spec: RequestSpec, code: int, response: ApiResponse) -> AvatarError:
        """The typed error for a non-zero ``base_resp.status_code``."""
        cls, hint = CODES.get(code, (AvatarInvalidRequestError, ""))
        if spec.action == GET_STATUS and (code == 2013 or response.status in (404, 410)):
            # An id the account cannot see is refused as an invalid parameter (direct) or with the
            # gateway's own HTTP 404 envelope: "not found", read with the wait's grace and history.
            cls, hint = AvatarNotFoundError, "no such task for this API key"
        message = self.error_message(response)
        if spec.action == CREATE and cls is AvatarRateLimitedError and code in (1002, 2045):
            hint = (
                f"{hint}: MiniMax limits video creates per minute (5-20 per account); lower the connection's "
                f"action_max_qps for {CREATE} or spread the runs"
            )
        return self.coded_error(cls, spec, response, code, message, hint, refused=code in REFUSED)

    def check(self, spec: RequestSpec, response: ApiResponse, *, now: float | None = None) -> None:
        """A non-zero ``base_resp`` code decides, whatever the HTTP status; without one the HTTP status
        does. A query whose body names the task's ``status`` is left to :meth:`parse_status` (a
        content refusal comes back as ``Fail`` with code 1026/1027: the task failed, the read did not)."""
        body = self._body(response)
        if body is not None:
            code, _ = self.base_resp(body)
            task_failed = spec.action == GET_STATUS and _raw_status(body).lower() in ("fail", "failed")
            if code and not task_failed:
                raise self.error_for_code(spec, code, response)
        super().check(spec, response, now=now)

    def judge_test_answer(self, response: ApiResponse) -> tuple[bool, str]:
        ok, message = super().judge_test_answer(response)
        if not ok:
            return ok, message
        code, msg = self.base_resp(self._body(response) or {})
        cls = CODES.get(code, (None, ""))[0]
        if cls is not None and (issubclass(cls, AvatarAuthError) or cls.transient):
            return False, f"MiniMax refused the request: {msg} (code {code})"
        return True, f"Connection works: the MiniMax API ({self.flavor}) accepted the API key."

    def _object(self, action: str, response: ApiResponse, remote_task_id: str | None) -> Mapping[str, Any]:
        body = self.json_body(action, response, remote_task_id)
        if not isinstance(body, Mapping):
            raise self.bad_response(action, response, remote_task_id, "answer is not a JSON object")
        return body


def _raw_status(body: Mapping[str, Any]) -> str:
    """The task's status in a query answer, raw or inside a gateway wrapper's ``data``."""
    data = body.get("data")
    task = data if "status" not in body and isinstance(data, Mapping) else body
    return str(task.get("status") or "").strip()


def _nested(task: Mapping[str, Any]) -> Mapping[str, Any]:
    """The raw MiniMax answer a gateway wrapper may carry in ``resp_data`` (an object or JSON text)."""
    value = task.get("resp_data")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def is_known_model(model: str) -> bool:
    return model.strip() in MODELS
