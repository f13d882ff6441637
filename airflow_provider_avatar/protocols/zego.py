"""ZEGOCLOUD Digital Human streaming API (docs/services/zego.md): signing, request builders, envelopes.

Every call is ``POST <base>/?Action=<name>&<signed common params>`` with a JSON body. Answers are
``{"Code", "Message", "RequestId", "Data"}``; an HTTP 200 with ``Code != 0`` is an error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from airflow_provider_avatar import inputs
from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarError,
    AvatarInputError,
    AvatarInvalidRequestError,
    AvatarNotFoundError,
    AvatarRateLimitedError,
    AvatarTransientError,
)
from airflow_provider_avatar.inputs import checking, mapping, text
from airflow_provider_avatar.protocols.base import ApiResponse, Credentials, RequestSpec, ServiceProtocol, gone_status
from airflow_provider_avatar.status import TaskState, TaskStatus

SERVICE = "zego"
SIGNATURE_VERSION = "2.0"

CREATE = "CreateDigitalHumanStreamTask"
GET_STATUS = "GetDigitalHumanStreamTaskStatus"
QUERY = "QueryDigitalHumanStreamTasks"
DRIVE_BY_TEXT = "DriveByText"
INTERRUPT = "InterruptDriveTask"
STOP = "StopDigitalHumanStreamTask"

#: ``Data.Status`` → state. 5 is in the Chinese docs and the callbacks, not the English status page.
STATUSES: Mapping[int, TaskState] = {
    1: TaskState.STARTING,
    2: TaskState.FAILED,
    3: TaskState.STREAMING,
    4: TaskState.STOPPING,
    5: TaskState.STOPPED,
}

TASK_NOT_FOUND = 400000005
ALREADY_STOPPED = 400000007
STREAM_EXISTS = 400000015

#: Return codes (docs/services/zego.md, "Return codes") → (error class, hint added to the service's message).
#: 100000004 is an auth error, not a retry: every attempt is signed afresh, so a stale
#: timestamp means this machine's clock is off by more than ZEGO's 10 minutes.
CODES: Mapping[int, tuple[type[AvatarError], str]] = {
    100000000: (AvatarInvalidRequestError, "wrong API host"),
    100000001: (AvatarAuthError, "AppId is malformed: check the connection's login"),
    100000002: (AvatarInvalidRequestError, "Timestamp missing"),
    100000003: (AvatarInvalidRequestError, "Timestamp malformed"),
    100000004: (AvatarAuthError, "signature expired: this machine's clock is more than 10 minutes off"),
    100000005: (AvatarAuthError, "signature rejected: check AppId and ServerSecret"),
    100000006: (AvatarInvalidRequestError, "Action missing"),
    100000007: (AvatarInvalidRequestError, "Action not supported"),
    100000008: (AvatarInvalidRequestError, "SignatureNonce missing"),
    100000009: (AvatarInvalidRequestError, "Signature missing"),
    100000010: (AvatarAuthError, "no ServerSecret for this AppId: check the connection's login"),
    100000011: (AvatarAuthError, "the app's configuration could not be read: check the AppId"),
    100000012: (AvatarInvalidRequestError, "request body unreadable"),
    100000013: (AvatarInvalidRequestError, "SignatureVersion missing"),
    100000014: (AvatarInvalidRequestError, "SignatureVersion not supported"),
    100000015: (AvatarTransientError, "gateway internal error"),
    100000017: (AvatarAuthError, "service not enabled for this AppId"),
    400000001: (AvatarInvalidRequestError, "invalid parameters"),
    400000002: (AvatarAuthError, "Digital Human API not enabled for this AppId"),
    400000003: (AvatarInvalidRequestError, "digital human not found"),
    400000004: (AvatarInvalidRequestError, "timbre not found"),
    TASK_NOT_FOUND: (AvatarNotFoundError, "stream task not found"),
    400000006: (AvatarTransientError, "stream not started yet"),
    ALREADY_STOPPED: (AvatarInvalidRequestError, "stream already stopped"),
    400000008: (AvatarRateLimitedError, "concurrent stream limit reached"),
    400000009: (AvatarInvalidRequestError, "the stream does not support this timbre"),
    400000010: (AvatarInvalidRequestError, "digital human misconfigured on ZEGO's side: contact ZEGO support"),
    STREAM_EXISTS: (AvatarInvalidRequestError, "StreamId already in use"),
    400000016: (AvatarInvalidRequestError, "digital human model version error: contact ZEGO support"),
    400010000: (AvatarTransientError, "ZEGO system error"),
    400010001: (AvatarAuthError, "no permission for this API"),
}

#: Codes whose request the service refused before acting: a retry cannot duplicate anything.
#: (100000015, a gateway internal error, is not among them: the backend may have acted.)
REFUSED = frozenset({100000004, 400000006, 400000008})

STREAM_ID = re.compile(r"[A-Za-z0-9_-]+")
#: ZEGO's room/stream id alphabet (ZEGO FAQ "How to define the streamID").
ROOM_ID = re.compile(r"[A-Za-z0-9~!@#$%^&*()_+=\-`;',.<>/\\]+")
COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
MAX_ID_BYTES = 128
MAX_TEXT = 1800
TTL_RANGE = (10, 86400)
IDLE_RANGE = (30, 86400)
#: Bounded by default so a crashed run cannot leave a paid stream up for ZEGO's default 24 h.
DEFAULT_TTL = 3600
DEFAULT_MAX_IDLE = 600


def state_of(raw: Any) -> TaskState:
    """``Status`` → state; anything unexpected is UNKNOWN (not terminal)."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        return TaskState.UNKNOWN
    return STATUSES.get(raw, TaskState.UNKNOWN)


def signature(app_id: str, nonce: str, secret: str, timestamp: int) -> str:
    """``md5(AppId + SignatureNonce + ServerSecret + Timestamp)`` as 32 lowercase hex characters."""
    return hashlib.md5(f"{app_id}{nonce}{secret}{timestamp}".encode()).hexdigest()


@dataclass(frozen=True)
class StreamInfo:
    """One entry of ``QueryDigitalHumanStreamTasks`` (running tasks only)."""

    task_id: str
    room_id: str
    stream_id: str
    state: TaskState
    create_time: int | None
    #: ``Status`` as sent (as text, like :attr:`TaskStatus.raw_status`).
    raw_status: str | None = None


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    return value


def _layout(name: str, value: Mapping[str, Any]) -> dict[str, int]:
    value = mapping(name, value)
    known = {"Top", "Left", "Width", "Height", "Layer"}
    unknown = set(value) - known
    if unknown:
        raise ValueError(f"{name} has unknown keys {sorted(unknown)}; expected {sorted(known)}")
    return {k: _int_in(f"{name}.{k}", v, 0, 10000) for k, v in value.items()}


def _video_config(value: Mapping[str, Any]) -> dict[str, int]:
    value = mapping("video_config", value)
    width = _int_in("video_config.Width", value.get("Width"), 2, 1920)
    height = _int_in("video_config.Height", value.get("Height"), 2, 2560)
    if width * height > 1920 * 1080:
        raise ValueError(f"video_config Width x Height must be at most 1920x1080 pixels; got {width}x{height}")
    config = {"Width": width, "Height": height}
    if "Bitrate" in value:
        config["Bitrate"] = _int_in("video_config.Bitrate", value["Bitrate"], 100_000, 3_000_000)
    return config


def _assets(values: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Sequence):
        raise ValueError(f"assets must be a list of objects; got {type(values).__name__} {str(values)[:60]!r}")
    assets = []
    for n, given in enumerate(values):
        asset = mapping(f"assets[{n}]", given)
        url = asset.get("AssetUrl")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"assets[{n}].AssetUrl must be an http(s) URL")
        item: dict[str, Any] = {"AssetType": _int_in(f"assets[{n}].AssetType", asset.get("AssetType", 1), 1, 1)}
        item["AssetUrl"] = url
        if "Layout" in asset:
            item["Layout"] = _layout(f"assets[{n}].Layout", asset["Layout"])
        assets.append(item)
    return assets


def lifetime(ttl: Any, max_idle_time: Any) -> dict[str, int]:
    """``TTL`` and ``MaxIdleTime`` of a create; raises ``AvatarInputError`` (operators call it at DAG parse)."""
    with checking(SERVICE, CREATE):
        return {
            "TTL": _int_in("ttl", ttl, *TTL_RANGE),
            "MaxIdleTime": _int_in("max_idle_time", max_idle_time, *IDLE_RANGE),
        }


def speech(
    speech_rate: Any = None, pitch_rate: Any = None, volume: Any = None, interrupt_mode: Any = 0
) -> tuple[dict[str, int], int]:
    """A drive's TTS settings and interrupt mode; raises ``AvatarInputError`` (checked at DAG parse too)."""
    with checking(SERVICE, DRIVE_BY_TEXT):
        tts: dict[str, int] = {}
        for name, key, value, low, high in (
            ("speech_rate", "SpeechRate", speech_rate, -500, 500),
            ("pitch_rate", "PitchRate", pitch_rate, -500, 500),
            ("volume", "Volume", volume, 1, 100),
        ):
            if value is not None:
                tts[key] = _int_in(f"{name} ({key})", value, low, high)
        return tts, _int_in("interrupt_mode", interrupt_mode, 0, 1)


class ZegoProtocol(ServiceProtocol):
    service: ClassVar[str] = SERVICE
    default_target_states: ClassVar[frozenset[TaskState]] = frozenset({TaskState.STREAMING})
    default_failure_states: ClassVar[frozenset[TaskState]] = frozenset({TaskState.FAILED, TaskState.STOPPED})

    def rate_scope(self, action: str) -> str:
        """ZEGO counts its 10 requests/s per API: each action has a budget of its own."""
        return action

    # -- signing -------------------------------------------------------------------------------
    def authorize(self, spec: RequestSpec, creds: Credentials, *, now: float, nonce: str) -> RequestSpec:
        app_id = creds.login or ""
        timestamp = int(now)
        params = {
            **spec.params,
            "AppId": app_id,
            "SignatureNonce": nonce,
            "Timestamp": str(timestamp),
            "SignatureVersion": SIGNATURE_VERSION,
            "Signature": signature(app_id, nonce, creds.secret, timestamp),
        }
        return replace(spec, params=params)

    def _spec(
        self, action: str, body: Mapping[str, Any], *, task_id: str | None = None, idempotent: bool = True
    ) -> RequestSpec:
        return RequestSpec(
            action=action,
            method="POST",
            path="",
            params={"Action": action},
            json=dict(body),
            idempotent=idempotent,
            remote_task_id=task_id,
        )

    # -- requests ------------------------------------------------------------------------------
    def build_create_request(
        self,
        *,
        digital_human_id: str,
        room_id: str,
        stream_id: str,
        ttl: int = DEFAULT_TTL,
        max_idle_time: int = DEFAULT_MAX_IDLE,
        background_color: str | None = None,
        layout: Mapping[str, Any] | None = None,
        video_config: Mapping[str, Any] | None = None,
        assets: Sequence[Mapping[str, Any]] | None = None,
    ) -> RequestSpec:
        """Validate the inputs and build the create call; raises before anything is sent."""
        try:
            text("digital_human_id", digital_human_id)
            text("room_id", room_id)
            text("stream_id", stream_id)
            for name, value, pattern, alphabet in (
                ("room_id", room_id, ROOM_ID, "letters, digits and ~!@#$%^&*()_+=-`;',.<>/\\"),
                ("stream_id", stream_id, STREAM_ID, "letters, digits, '-' and '_'"),
            ):
                if not isinstance(value, str) or not pattern.fullmatch(value):
                    raise ValueError(f"{name} must be 1 to {MAX_ID_BYTES} of {alphabet}; got {value!r}")
                if len(value.encode()) > MAX_ID_BYTES:
                    raise ValueError(f"{name} must be at most {MAX_ID_BYTES} bytes; got {len(value.encode())}")
            human: dict[str, Any] = {"DigitalHumanId": digital_human_id.strip()}
            if background_color is not None:
                if not isinstance(background_color, str) or not COLOR.fullmatch(background_color):
                    raise ValueError(f"background_color must look like #RRGGBB; got {background_color!r}")
                human["BackgroundColor"] = background_color
            if layout is not None:
                human["Layout"] = _layout("layout", layout)
            body: dict[str, Any] = {
                "DigitalHumanConfig": human,
                "RTCConfig": {"RoomId": room_id, "StreamId": stream_id},
                **lifetime(ttl, max_idle_time),
            }
            if video_config is not None:
                body["VideoConfig"] = _video_config(video_config)
            if assets is not None and (checked := _assets(assets)):  # an empty list means no assets
                body["Assets"] = checked
        except AvatarInputError:
            raise
        except ValueError as exc:
            raise AvatarInputError(str(exc), service=SERVICE, action=CREATE) from None
        return self._spec(CREATE, body, idempotent=False)

    def build_status_request(self, remote_task_id: str) -> RequestSpec:
        return self._spec(GET_STATUS, {"TaskId": remote_task_id}, task_id=remote_task_id)

    def build_query_request(self) -> RequestSpec:
        return self._spec(QUERY, {})

    def build_test_request(self) -> RequestSpec:
        return self.build_query_request()

    def build_list_request(self) -> RequestSpec | None:
        """``QueryDigitalHumanStreamTasks`` answers for every running stream of the AppId at once."""
        return self.build_query_request()

    def build_drive_by_text_request(
        self,
        remote_task_id: str,
        *,
        text: str,
        timbre_id: str,
        speech_rate: int | None = None,
        pitch_rate: int | None = None,
        volume: int | None = None,
        interrupt_mode: int = 0,
    ) -> RequestSpec:
        """A text drive. Not idempotent (a repeat would speak twice), so only refusals are retried."""
        try:
            inputs.text("text", text)
            if len(text) > MAX_TEXT:
                raise ValueError(f"text must be at most {MAX_TEXT} characters; got {len(text)}")
            settings, mode = speech(speech_rate, pitch_rate, volume, interrupt_mode)
            tts: dict[str, Any] = {"TimbreId": inputs.text("timbre_id", timbre_id), **settings}
        except AvatarInputError:
            raise
        except ValueError as exc:
            raise AvatarInputError(
                str(exc), service=SERVICE, action=DRIVE_BY_TEXT, remote_task_id=remote_task_id
            ) from None
        body = {"TaskId": remote_task_id, "Text": text, "InterruptMode": mode, "TTSConfig": tts}
        return self._spec(DRIVE_BY_TEXT, body, task_id=remote_task_id, idempotent=False)

    def build_interrupt_request(self, remote_task_id: str) -> RequestSpec:
        return self._spec(INTERRUPT, {"TaskId": remote_task_id}, task_id=remote_task_id)

    def build_stop_request(self, remote_task_id: str) -> RequestSpec:
        # Idempotent on the wire: a repeated stop answers "already stopped", which is success.
        return self._spec(STOP, {"TaskId": remote_task_id}, task_id=remote_task_id)

    # -- responses -----------------------------------------------------------------------------
    def _envelope(self, response: ApiResponse) -> Mapping[str, Any] | None:
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, Mapping) and "Code" in body else None

    def request_id(self, response: ApiResponse) -> str | None:
        envelope = self._envelope(response)
        if envelope is not None and envelope.get("RequestId"):
            return str(envelope["RequestId"])
        return super().request_id(response)

    def error_message(self, response: ApiResponse) -> str:
        envelope = self._envelope(response)
        if envelope is not None and envelope.get("Message"):
            return str(envelope["Message"])[:200]
        return super().error_message(response)

    def is_own_answer(self, response: ApiResponse) -> bool:
        return self._envelope(response) is not None

    def error_for_code(self, spec: RequestSpec, code: int, response: ApiResponse) -> AvatarError:
        """The typed error for a non-zero ``Code``. Unknown gateway codes are retried, others are not."""
        cls, hint = CODES.get(
            code, (AvatarTransientError if code // 1_000_000 == 100 else AvatarInvalidRequestError, "")
        )
        message = self.error_message(response)
        return self.coded_error(cls, spec, response, code, message, hint, refused=code in REFUSED)

    def check(self, spec: RequestSpec, response: ApiResponse, *, now: float | None = None) -> None:
        """A ZEGO envelope's ``Code`` decides, whatever the HTTP status; without one, the HTTP status
        does (429, 5xx, a proxy's page), and a 2xx without an envelope is a bad response."""
        envelope = self._envelope(response)
        if envelope is None:
            super().check(spec, response, now=now)
            raise self.bad_response(spec.action, response, spec.remote_task_id, "answer has no ZEGO envelope")
        try:
            code = int(str(envelope.get("Code")))
        except ValueError:
            raise self.bad_response(spec.action, response, spec.remote_task_id, "Code is not a number") from None
        if code != 0:
            raise self.error_for_code(spec, code, response)
        super().check(spec, response, now=now)

    def judge_test_answer(self, response: ApiResponse) -> tuple[bool, str]:
        ok, message = super().judge_test_answer(response)
        if not ok:
            return ok, message
        envelope = self._envelope(response) or {}
        if str(envelope.get("Code")) != "0":
            return False, f"ZEGO refused the request: {self.error_message(response)} (Code {envelope.get('Code')})"
        return True, "Connection works: ZEGO accepted the AppId and ServerSecret."

    def data(self, spec: RequestSpec, response: ApiResponse) -> Mapping[str, Any]:
        """``Data`` of a successful answer (``{}`` when absent)."""
        envelope = self._envelope(response)
        if envelope is None:
            raise self.bad_response(spec.action, response, spec.remote_task_id, "answer has no ZEGO envelope")
        data = envelope.get("Data")
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise self.bad_response(spec.action, response, spec.remote_task_id, "Data is not an object")
        return data

    def parse_create(self, response: ApiResponse) -> str:
        spec = self._spec(CREATE, {})
        task_id = self.data(spec, response).get("TaskId")
        if not isinstance(task_id, str) or not task_id.strip():
            raise self.bad_response(CREATE, response, None, "no TaskId in the answer")
        return task_id

    def parse_drive(self, remote_task_id: str, response: ApiResponse) -> str:
        spec = self._spec(DRIVE_BY_TEXT, {}, task_id=remote_task_id)
        drive_id = self.data(spec, response).get("DriveId")
        if not isinstance(drive_id, str) or not drive_id.strip():
            raise self.bad_response(DRIVE_BY_TEXT, response, remote_task_id, "no DriveId in the answer")
        return drive_id

    def parse_status(self, remote_task_id: str, response: ApiResponse) -> TaskStatus:
        data = self.data(self.build_status_request(remote_task_id), response)
        raw = data.get("Status")
        state = state_of(raw)
        fields = (("room_id", "RoomId"), ("stream_id", "StreamId"), ("create_time", "CreateTime"))
        extras = {key: data[name] for key, name in fields if name in data}
        fail_reason = data.get("FailReason") if state is TaskState.FAILED else None
        return TaskStatus(
            service=SERVICE,
            remote_task_id=remote_task_id,
            state=state,
            raw_status=None if raw is None else str(raw),
            result=extras,
            error_message=str(fail_reason) if fail_reason else None,
            request_id=self.request_id(response),
        )

    def parse_query(self, response: ApiResponse) -> list[StreamInfo]:
        spec = self.build_query_request()
        tasks = self.data(spec, response).get("TaskList") or []
        if not isinstance(tasks, list):
            raise self.bad_response(QUERY, response, None, "TaskList is not a list")
        streams = []
        for item in tasks:
            if not isinstance(item, Mapping) or not item.get("TaskId"):
                continue
            streams.append(
                StreamInfo(
                    task_id=str(item["TaskId"]),
                    room_id=str(item.get("RoomId", "")),
                    stream_id=str(item.get("StreamId", "")),
                    state=state_of(item.get("Status")),
                    create_time=item.get("CreateTime") if isinstance(item.get("CreateTime"), int) else None,
                    raw_status=None if item.get("Status") is None else str(item.get("Status")),
                )
            )
        return streams

    def parse_list(self, response: ApiResponse) -> dict[str, TaskStatus]:
        """Running streams (STARTING or STREAMING) by TaskId; an ended one is not listed and needs
        ``GetDigitalHumanStreamTaskStatus`` (it may be STOPPING, FAILED or gone)."""
        request_id = self.request_id(response)
        return {
            stream.task_id: TaskStatus(
                service=SERVICE,
                remote_task_id=stream.task_id,
                state=stream.state,
                raw_status=stream.raw_status,
                result={
                    "room_id": stream.room_id,
                    "stream_id": stream.stream_id,
                    **({} if stream.create_time is None else {"create_time": stream.create_time}),
                },
                request_id=request_id,
            )
            for stream in self.parse_query(response)
        }

    # -- history ---------------------------------------------------------------------------------
    def status_when_gone(self, exc: AvatarNotFoundError, *, seen: frozenset[TaskState]) -> TaskStatus | None:
        """ZEGO lists only running tasks, so an ended stream answers "task not found" instead of
        Status 5. It ended (STOPPED) if it was seen live or a stop was requested; a stream seen only
        before it went live (STARTING) and then gone failed. Decided at once, with no grace."""
        if exc.code != str(TASK_NOT_FOUND):
            return None
        if seen & {TaskState.STREAMING, TaskState.STOPPING, TaskState.STOPPED}:
            return gone_status(exc, TaskState.STOPPED, "stream ended and is no longer listed")
        states = ", ".join(sorted(s.value for s in seen))
        return gone_status(exc, TaskState.FAILED, f"stream task ended before it was seen streaming (seen: {states})")
