"""Tencent Cloud TRTC stream ingest (docs/services/trtc.md): request bodies, validation, answers, error codes.

TRTC is called through Tencent's official SDK (``transport/sdk.py``), which signs each request
(TC3-HMAC-SHA256) and returns the raw answer ``{"Response": {...}}``. Every decision stays here:
the SDK only carries the bytes. No SDK import: this module is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarError,
    AvatarInputError,
    AvatarInvalidRequestError,
    AvatarNotFoundError,
    AvatarRateLimitedError,
    AvatarTransientError,
)
from airflow_provider_avatar.protocols.base import ApiResponse, RequestSpec, ServiceProtocol, gone_status
from airflow_provider_avatar.status import TaskState, TaskStatus

SERVICE = "trtc"
API_VERSION = "2019-07-22"

START = "StartStreamIngest"
DESCRIBE = "DescribeStreamIngest"
STOP = "StopStreamIngest"
UPDATE = "UpdateStreamIngest"

#: ``DescribeStreamIngest`` knows only these two values.
IN_PROGRESS = "InProgress"
NOT_EXIST = "NotExist"

#: Seconds without media before TRTC destroys the task: a dead source is not billed for long.
DEFAULT_IDLE_TIMEOUT = 60
#: Minutes a looping source (``RepeatNum=-1``) runs when no ``MaxDuration`` is given (TRTC allows 7 days).
DEFAULT_MAX_DURATION = 60

UINT32_MAX = 2**32 - 1
REPEAT_RANGE = (-1, 1000)
MAX_DURATION_RANGE = (1, 10080)
VOLUME_RANGE = (0, 200)
TEMPO_RANGE = (0.5, 2.0)
IDLE_TIMEOUT_RANGE = (0, 600)
#: Source URL schemes TRTC pulls from: files and HLS/FLV over http(s), live RTMP (rtmps accepted, not verified).
STREAM_URL_SCHEMES = frozenset({"http", "https", "rtmp", "rtmps"})

TASK_NOT_EXIST = "FailedOperation.TaskNotExist"
TASK_FINISHED = "FailedOperation.TaskFinished"
BAD_TASK_ID = "InvalidParameter.TaskId"
SIGNATURE_EXPIRE = "AuthFailure.SignatureExpire"
#: Codes saying the task does not exist (``NotExist`` is a Describe *status*, raised as this code).
NOT_FOUND_CODES = frozenset({NOT_EXIST, TASK_NOT_EXIST, BAD_TASK_ID})
#: The SDK's own codes for a request that failed on the way (no API code).
CLIENT_NETWORK_ERROR = "ClientNetworkError"
SERVER_NETWORK_ERROR = "ServerNetworkError"

#: Exact codes → (class, hint). Families (prefixes) follow in ``_FAMILIES``; anything else is in ``error_class``.
CODES: Mapping[str, tuple[type[AvatarError], str]] = {
    SIGNATURE_EXPIRE: (
        AvatarAuthError,
        "signature expired: this machine's clock is more than 5 minutes off (every attempt is signed afresh)",
    ),
    TASK_NOT_EXIST: (AvatarNotFoundError, "stream ingest task not found"),
    BAD_TASK_ID: (AvatarNotFoundError, "no such TaskId"),
    NOT_EXIST: (AvatarNotFoundError, "stream ingest task does not exist (ended, stopped, failed or never created)"),
    "FailedOperation.RestrictedFrequency": (AvatarRateLimitedError, "too many requests"),
    "FailedOperation.RestrictedConcurrency": (AvatarRateLimitedError, "too many concurrent tasks"),
    "LimitExceeded.ConcurrencyLimit": (AvatarRateLimitedError, "concurrent task limit reached"),
    "FailedOperation.QueryTaskInfoFailed": (AvatarTransientError, "task lookup failed on TRTC's side"),
    "ServiceUnavailable": (AvatarTransientError, "service temporarily unavailable"),
    CLIENT_NETWORK_ERROR: (AvatarTransientError, ""),
    SERVER_NETWORK_ERROR: (AvatarTransientError, ""),
    TASK_FINISHED: (AvatarInvalidRequestError, "task already finished"),
    "FailedOperation.TaskExist": (AvatarInvalidRequestError, "a task already runs for this robot user and room"),
    "FailedOperation.RoomNotExist": (AvatarInvalidRequestError, "room not found"),
    "FailedOperation.SdkAppIdNotExist": (AvatarInvalidRequestError, "SdkAppId not found: check the connection"),
    "FailedOperation.NotAbility": (AvatarInvalidRequestError, "stream ingest needs a TRTC Premium or Ultimate plan"),
}

#: Code families by prefix, first match wins (after the exact codes above).
_FAMILIES: tuple[tuple[str, type[AvatarError], str], ...] = (
    ("AuthFailure", AvatarAuthError, "credentials rejected: check SecretId, SecretKey and region"),
    ("UnauthorizedOperation", AvatarAuthError, "no permission: check the CAM policy and the SdkAppId"),
    ("ResourceNotFound", AvatarNotFoundError, ""),
    ("RequestLimitExceeded", AvatarRateLimitedError, "request rate limit"),
    ("InternalError", AvatarTransientError, "TRTC internal error"),
    ("InvalidParameter", AvatarInvalidRequestError, ""),
    ("MissingParameter", AvatarInvalidRequestError, ""),
    ("FailedOperation", AvatarInvalidRequestError, ""),
)


def error_class(code: str) -> tuple[type[AvatarError], str]:
    """The error class and hint of a TRTC (or SDK) error code.

    Unknown codes are permanent (:class:`AvatarInvalidRequestError`): a Tencent API error means
    the request was refused, and the transient families are all listed, so an unknown code
    ends the call at once with its code in the message instead of polling until the error window.
    """
    if code in CODES:
        return CODES[code]
    for prefix, cls, hint in _FAMILIES:
        if code == prefix or code.startswith(prefix + "."):
            return cls, hint
    return AvatarInvalidRequestError, ""


def _input_error(message: str, action: str, task_id: str | None = None) -> AvatarInputError:
    return AvatarInputError(message, service=SERVICE, action=action, remote_task_id=task_id)


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    return value


def _float_in(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}]; got {value!r}")
    return float(value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false; got {value!r}")
    return value


def _stream_url(value: Any) -> str:
    url = _text("stream_url (StreamUrl)", value).strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in STREAM_URL_SCHEMES or not parts.netloc:
        schemes = ", ".join(sorted(STREAM_URL_SCHEMES))
        raise ValueError(f"stream_url (StreamUrl) must be a {schemes} URL with a host; got scheme {parts.scheme!r}")
    return url


def start_options(
    *,
    user_sig: Any = None,
    room_id_type: Any = 0,
    repeat_num: Any = 1,
    max_duration: Any = None,
    idle_timeout: Any = DEFAULT_IDLE_TIMEOUT,
    volume: Any = None,
    tempo: Any = None,
    seek_second: Any = None,
    auto_push: Any = None,
    private_map_key: Any = None,
    enable_progress: Any = None,
) -> dict[str, Any]:
    """The start's settings that are not templated, as TRTC fields; raises ``AvatarInputError``.

    The start operator calls it when the DAG is parsed; the start request builds with it."""
    try:
        params: dict[str, Any] = {"RoomIdType": _int_in("room_id_type (RoomIdType)", room_id_type, 0, 1)}
        if user_sig is not None:
            _text("user_sig (UserSig)", user_sig)
        repeat = _int_in("repeat_num (RepeatNum)", repeat_num, *REPEAT_RANGE)
        if repeat == 0:
            raise ValueError("repeat_num (RepeatNum) must be -1 (loop) or 1..1000; got 0")
        params["RepeatNum"] = repeat
        if max_duration is not None:
            if repeat != -1:
                raise ValueError(
                    f"max_duration (MaxDuration) applies only with repeat_num -1 (loop); got repeat_num {repeat}"
                )
            params["MaxDuration"] = _int_in("max_duration (MaxDuration, minutes)", max_duration, *MAX_DURATION_RANGE)
        if idle_timeout is not None:
            params["IdleTimeout"] = _int_in("idle_timeout (IdleTimeout, seconds)", idle_timeout, *IDLE_TIMEOUT_RANGE)
        if volume is not None:
            params["Volume"] = _int_in("volume (Volume)", volume, *VOLUME_RANGE)
        if tempo is not None:
            params["Tempo"] = _float_in("tempo (Tempo)", tempo, *TEMPO_RANGE)
        if seek_second is not None:
            params["SeekSecond"] = _int_in("seek_second (SeekSecond)", seek_second, 0, UINT32_MAX)
        if auto_push is not None:
            params["AutoPush"] = _flag("auto_push (AutoPush)", auto_push)
        if private_map_key is not None:
            params["PrivateMapKey"] = _text("private_map_key (PrivateMapKey)", private_map_key)
        if enable_progress is not None:
            params["EnableProgress"] = _flag("enable_progress (EnableProgress)", enable_progress)
    except ValueError as exc:
        raise _input_error(str(exc), START) from None
    return params


def parse_sdk_app_id(value: Any) -> int:
    """``SdkAppId`` as TRTC takes it (an unsigned 32-bit integer), from an int or decimal text."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return _int_in("sdk_app_id (SdkAppId)", value, 1, UINT32_MAX)


class TrtcProtocol(ServiceProtocol):
    service: ClassVar[str] = SERVICE
    default_target_states: ClassVar[frozenset[TaskState]] = frozenset({TaskState.STREAMING})
    default_failure_states: ClassVar[frozenset[TaskState]] = frozenset({TaskState.FAILED, TaskState.STOPPED})

    def rate_scope(self, action: str) -> str:
        """TRTC allows 20 requests/s per API: each action has a budget of its own."""
        return action

    # -- requests ------------------------------------------------------------------------------
    def _spec(
        self, action: str, params: Mapping[str, Any], *, task_id: str | None = None, idempotent: bool = True
    ) -> RequestSpec:
        return RequestSpec(
            action=action, method="POST", path="", json=dict(params), idempotent=idempotent, remote_task_id=task_id
        )

    def bind(self, spec: RequestSpec, sdk_app_id: Any) -> RequestSpec:
        """The request with the connection's ``SdkAppId`` first, as every TRTC action takes it.

        The builders leave it out because it belongs to the connection, like a signing key;
        the hook binds it to every call in one place.
        """
        try:
            app_id = parse_sdk_app_id(sdk_app_id)
        except ValueError as exc:
            raise _input_error(str(exc), spec.action, spec.remote_task_id) from None
        body = {"SdkAppId": app_id, **{k: v for k, v in (spec.json or {}).items() if k != "SdkAppId"}}
        return RequestSpec(
            action=spec.action,
            method=spec.method,
            path=spec.path,
            params=spec.params,
            json=body,
            headers=spec.headers,
            idempotent=spec.idempotent,
            remote_task_id=spec.remote_task_id,
        )

    def build_start_request(
        self,
        *,
        room_id: str,
        stream_url: str,
        user_id: str,
        user_sig: str,
        room_id_type: int = 0,
        repeat_num: int = 1,
        max_duration: int | None = None,
        idle_timeout: int | None = DEFAULT_IDLE_TIMEOUT,
        volume: int | None = None,
        tempo: float | None = None,
        seek_second: int | None = None,
        auto_push: bool | None = None,
        private_map_key: str | None = None,
        enable_progress: bool | None = None,
    ) -> RequestSpec:
        """Validate the inputs and build ``StartStreamIngest`` (not idempotent: TRTC has no
        idempotency key and no list to look a task up). Raises before anything is sent."""
        try:
            room_type = _int_in("room_id_type (RoomIdType)", room_id_type, 0, 1)
            room = _text("room_id (RoomId)", room_id)
            if room_type == 1 and not (room.isdigit() and room.isascii() and 1 <= int(room) <= UINT32_MAX):
                raise ValueError(
                    f"room_id (RoomId) must be a 32-bit unsigned integer (1..{UINT32_MAX}) when room_id_type is 1; "
                    f"got {room!r}"
                )
            params: dict[str, Any] = {
                "RoomId": room,
                "UserId": _text("user_id (UserId)", user_id),
                "UserSig": _text("user_sig (UserSig)", user_sig),
                "StreamUrl": _stream_url(stream_url),
                **start_options(
                    room_id_type=room_id_type,
                    repeat_num=repeat_num,
                    max_duration=max_duration,
                    idle_timeout=idle_timeout,
                    volume=volume,
                    tempo=tempo,
                    seek_second=seek_second,
                    auto_push=auto_push,
                    private_map_key=private_map_key,
                    enable_progress=enable_progress,
                ),
            }
        except AvatarInputError:
            raise
        except ValueError as exc:
            raise _input_error(str(exc), START) from None
        return self._spec(START, params, idempotent=False)

    def _task_spec(self, action: str, remote_task_id: str, **params: Any) -> RequestSpec:
        try:
            task_id = _text("remote_task_id (TaskId)", remote_task_id).strip()
        except ValueError as exc:
            raise _input_error(str(exc), action) from None
        return self._spec(action, {"TaskId": task_id, **params}, task_id=task_id)

    def build_status_request(self, remote_task_id: str) -> RequestSpec:
        return self._task_spec(DESCRIBE, remote_task_id)

    def build_test_request(self) -> RequestSpec:
        """A Describe of an id that cannot exist: any answer but an auth error means the keys work."""
        return self.build_status_request("airflow-connection-test")

    def build_stop_request(self, remote_task_id: str) -> RequestSpec:
        # Idempotent in effect: a repeated stop answers "task not exist", which the hook reads as stopped.
        return self._task_spec(STOP, remote_task_id)

    def build_update_request(
        self,
        remote_task_id: str,
        *,
        stream_url: str | None = None,
        volume: int | None = None,
        is_pause: bool | None = None,
        enable_progress: bool | None = None,
        tempo: float | None = None,
    ) -> RequestSpec:
        """``UpdateStreamIngest``: change the source, volume, tempo or pause a running task.
        Setting values is idempotent. A paused task is still billed (and destroyed after 12 h)."""
        try:
            params: dict[str, Any] = {}
            if stream_url is not None:
                params["StreamUrl"] = _stream_url(stream_url)
            if volume is not None:
                params["Volume"] = _int_in("volume (Volume)", volume, *VOLUME_RANGE)
            if is_pause is not None:
                params["IsPause"] = _flag("is_pause (IsPause)", is_pause)
            if enable_progress is not None:
                params["EnableProgress"] = _flag("enable_progress (EnableProgress)", enable_progress)
            if tempo is not None:
                params["Tempo"] = _float_in("tempo (Tempo)", tempo, *TEMPO_RANGE)
            if not params:
                raise ValueError("nothing to update: give stream_url, volume, is_pause, enable_progress or tempo")
        except ValueError as exc:
            raise _input_error(str(exc), UPDATE, remote_task_id) from None
        return self._task_spec(UPDATE, remote_task_id, **params)

    # -- answers ---------------------------------------------------------------------------------
    def _envelope(self, response: ApiResponse) -> Mapping[str, Any] | None:
        """``Response`` of a TRTC answer, or ``None`` when the body is not one."""
        try:
            body = response.json()
        except ValueError:
            return None
        inner = body.get("Response") if isinstance(body, Mapping) else None
        return inner if isinstance(inner, Mapping) else None

    def request_id(self, response: ApiResponse) -> str | None:
        envelope = self._envelope(response)
        if envelope is not None and envelope.get("RequestId"):
            return str(envelope["RequestId"])
        return super().request_id(response)

    def error_message(self, response: ApiResponse) -> str:
        error = (self._envelope(response) or {}).get("Error")
        if isinstance(error, Mapping) and error.get("Message"):
            return str(error["Message"])[:200]
        return super().error_message(response)

    def is_own_answer(self, response: ApiResponse) -> bool:
        return self._envelope(response) is not None

    def error_from_sdk(
        self, spec: RequestSpec, code: str | None, message: str | None, request_id: str | None
    ) -> AvatarError:
        """The typed error for a failure the SDK reports (an API error code, or its own network codes).

        The SDK's message is kept only for API codes: for ``ServerNetworkError`` it is the raw
        body of an error page, for ``ClientNetworkError`` a client library's text (which can
        hold a proxy URL with its password). A refused request (rate limits) has ``sent=False``.
        """
        code = str(code or "UnknownError")
        cls, hint = error_class(code)
        if code == CLIENT_NETWORK_ERROR:
            text = "network error talking to the TRTC API (no answer: refused, reset or timed out)"
        elif code == SERVER_NETWORK_ERROR:
            text = "the TRTC API host answered with an HTTP error status (body not shown)"
        else:
            text = " ".join(str(message or "").split())[:200] or code
            if hint and hint.lower() not in text.lower():
                text = f"{text} ({hint})"
        err = cls(
            text,
            service=SERVICE,
            action=spec.action,
            remote_task_id=spec.remote_task_id,
            code=code,
            request_id=request_id,
        )
        if cls is AvatarRateLimitedError:
            err.sent = False
        return err

    def check(self, spec: RequestSpec, response: ApiResponse, *, now: float | None = None) -> None:
        """``Response.Error`` decides, also in an HTTP 200 (the SDK misses it when the content type
        carries a charset); without a TRTC envelope, the HTTP status does, and a 200 is a bad response."""
        envelope = self._envelope(response)
        if envelope is None:
            super().check(spec, response, now=now)
            raise self.bad_response(spec.action, response, spec.remote_task_id, "answer has no TRTC Response")
        error = envelope.get("Error")
        if error is not None:
            if not isinstance(error, Mapping):
                raise self.bad_response(spec.action, response, spec.remote_task_id, "Response.Error is not an object")
            raise self.error_from_sdk(spec, error.get("Code"), error.get("Message"), self.request_id(response))
        super().check(spec, response, now=now)

    def _response(self, spec: RequestSpec, response: ApiResponse) -> Mapping[str, Any]:
        envelope = self._envelope(response)
        if envelope is None:
            raise self.bad_response(spec.action, response, spec.remote_task_id, "answer has no TRTC Response")
        if envelope.get("Error") is not None:
            self.check(spec, response)
        return envelope

    def parse_start(self, response: ApiResponse) -> str:
        """The new task's ``TaskId``."""
        task_id = self._response(self._spec(START, {}), response).get("TaskId")
        if not isinstance(task_id, str) or not task_id.strip():
            raise self.bad_response(START, response, None, "no TaskId in the answer")
        return task_id.strip()

    def parse_status(self, remote_task_id: str, response: ApiResponse) -> TaskStatus:
        """``InProgress`` is STREAMING. ``NotExist`` raises :class:`AvatarNotFoundError` (code
        ``NotExist``) so the wait reads it with its history; no ``Status`` is a bad response."""
        spec = self.build_status_request(remote_task_id)
        envelope = self._response(spec, response)
        raw = envelope.get("Status")
        if not isinstance(raw, str) or not raw.strip():
            # What the SDK returns for an error it did not parse: never a state.
            raise self.bad_response(DESCRIBE, response, remote_task_id, "answer has no Status")
        if raw.strip().lower() == NOT_EXIST.lower():
            hint = CODES[NOT_EXIST][1]
            raise AvatarNotFoundError(
                hint,
                service=SERVICE,
                action=DESCRIBE,
                remote_task_id=remote_task_id,
                code=NOT_EXIST,
                request_id=self.request_id(response),
                http_status=response.status,
            )
        state = TaskState.STREAMING if raw.strip().lower() == IN_PROGRESS.lower() else TaskState.UNKNOWN
        return TaskStatus(
            service=SERVICE,
            remote_task_id=remote_task_id,
            state=state,
            raw_status=raw,
            request_id=self.request_id(response),
        )

    def judge_test_answer(self, response: ApiResponse) -> tuple[bool, str]:
        ok, message = super().judge_test_answer(response)
        if not ok:
            return ok, message
        error = (self._envelope(response) or {}).get("Error")
        if isinstance(error, Mapping) and error.get("Code"):
            err = self.error_from_sdk(self.build_test_request(), str(error["Code"]), error.get("Message"), None)
            if not isinstance(err, AvatarNotFoundError):
                return False, f"TRTC refused the request: {err.detail} (code {err.code})"
        return True, "Connection works: TRTC accepted the SecretId and SecretKey."

    # -- history ---------------------------------------------------------------------------------
    def status_when_gone(self, exc: AvatarNotFoundError, *, seen: frozenset[TaskState]) -> TaskStatus | None:
        """TRTC has no ended state: a task that ended for any reason answers ``NotExist``. Seen
        live (or a stop requested, STOPPING) it STOPPED; seen only STARTING it ended before it
        went live, so it FAILED. Decided at once, with no grace."""
        if exc.code not in NOT_FOUND_CODES:
            return None
        if seen & {TaskState.STREAMING, TaskState.STOPPING, TaskState.STOPPED}:
            return gone_status(exc, TaskState.STOPPED, "stream ingest ended (NotExist after it was live or stopped)")
        states = ", ".join(sorted(s.value for s in seen))
        return gone_status(exc, TaskState.FAILED, f"stream ingest ended before it went live (seen: {states})")

    def status_when_never_found(self, exc: AvatarNotFoundError) -> TaskStatus | None:
        """A start that fails just becomes ``NotExist`` (TRTC has no failed state), so a task
        never seen InProgress during the whole grace FAILED rather than "was never found"."""
        if exc.code not in NOT_FOUND_CODES:
            return None
        return gone_status(
            exc,
            TaskState.FAILED,
            "NotExist and never seen InProgress: the ingest failed to start (check StreamUrl, RoomId, "
            "UserSig), the TaskId is wrong, or the media was shorter than the poll interval",
        )
