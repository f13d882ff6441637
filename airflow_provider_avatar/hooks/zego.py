"""ZEGOCLOUD Digital Human hook: create, drive, interrupt and stop real-time avatar streams (docs/services/zego.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal

from airflow_provider_avatar.exceptions import (
    AvatarError,
    AvatarInputError,
    AvatarInvalidRequestError,
    AvatarSubmitUnknownError,
)
from airflow_provider_avatar.hooks.base import AvatarBaseHook, HookConfig
from airflow_provider_avatar.protocols.zego import (
    ALREADY_STOPPED,
    CREATE,
    DEFAULT_MAX_IDLE,
    DEFAULT_TTL,
    DRIVE_BY_TEXT,
    INTERRUPT,
    STOP,
    STREAM_EXISTS,
    TASK_NOT_FOUND,
    StreamInfo,
    ZegoProtocol,
)
from airflow_provider_avatar.services import ZEGO_CONN_ID

StopOutcome = Literal["stopped", "already_stopped", "not_found"]


class ZegoDigitalHumanHook(AvatarBaseHook):
    """Talks to the ZEGOCLOUD Digital Human streaming API.

    Connection: login = AppId, password = ServerSecret, host = API base URL (optional; defaults to
    the mainland production host, ZEGO gives an overseas host on request). Extra ``max_qps``
    (default 10, ZEGO's documented limit per API) is each API's budget, shared by every task and
    trigger of a process.

    :param zego_conn_id: Airflow connection id (connection type ``zego``).
    """

    protocol: ClassVar[ZegoProtocol] = ZegoProtocol()
    zego_conn_id: str

    def __init__(self, zego_conn_id: str = ZEGO_CONN_ID, **kwargs: Any) -> None:
        super().__init__(zego_conn_id, **kwargs)

    def build_config(
        self,
        host: str | None,
        port: int | None,
        schema: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any],
    ) -> HookConfig:
        config = super().build_config(host, port, schema, login, password, extra)
        app_id = (config.credentials.login or "").strip()
        if not app_id.isdigit() or int(app_id) >= 2**32:
            raise AvatarInputError(
                f"connection {self.conn_id!r} login must be the numeric ZEGO AppId (uint32)",
                service=self.service,
                action="read_connection",
            )
        # The AppId is signed and sent as is: a stray space would fail every request.
        return replace(config, credentials=replace(config.credentials, login=app_id))

    # -- create --------------------------------------------------------------------------------
    def create_stream(
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
    ) -> str:
        """Start a stream and return its TaskId, creating at most one stream per StreamId.

        StreamId is unique per AppId, so it doubles as an idempotency key: when the create's
        answer is lost, or ZEGO says the StreamId exists (code 400000015, e.g. an Airflow retry
        of this task), the running task with that StreamId is looked up and returned instead.
        """
        spec = self.protocol.build_create_request(
            digital_human_id=digital_human_id,
            room_id=room_id,
            stream_id=stream_id,
            ttl=ttl,
            max_idle_time=max_idle_time,
            background_color=background_color,
            layout=layout,
            video_config=video_config,
            assets=assets,
        )
        for attempt in (1, 2):
            try:
                return self.submit(spec, self.protocol.parse_create)
            except AvatarSubmitUnknownError:
                found = self.find_stream(room_id, stream_id, "the create's answer was lost")
                if found is not None:
                    return found
                if attempt == 2:
                    raise
                # Safe to send again: if the first create did land, ZEGO refuses this one (400000015).
                self.log.warning("Sending the create again for StreamId %s", stream_id)
            except AvatarError as exc:
                if exc.code != str(STREAM_EXISTS):
                    raise
                found = self.find_stream(room_id, stream_id, "ZEGO says the StreamId is already in use")
                if found is not None:
                    return found
                raise AvatarInvalidRequestError(
                    f"StreamId {stream_id!r} is in use, but not by a running stream in room {room_id!r} (it may "
                    "stream into another room, be ending or have failed): use another StreamId",
                    service=self.service,
                    action=CREATE,
                    code=exc.code,
                    request_id=exc.request_id,
                ) from None
        raise AssertionError("unreachable")

    def find_stream(self, room_id: str, stream_id: str, why: str) -> str | None:
        """The TaskId of the running stream with this StreamId *and* RoomId, or ``None``.

        Both must match: re-attaching to a stream in another room would hand someone else's
        stream to this DAG, whose teardown would then stop it.
        """
        match = next((s for s in self.list_streams() if s.stream_id == stream_id and s.room_id == room_id), None)
        if match is not None:
            self.log.warning("%s; re-attached to the running task %s of StreamId %s", why, match.task_id, stream_id)
            return match.task_id
        self.log.warning("%s and no running task in room %s has StreamId %s", why, room_id, stream_id)
        return None

    def list_streams(self) -> list[StreamInfo]:
        """Running stream tasks of this AppId (``QueryDigitalHumanStreamTasks``: Status 1 or 3 only)."""
        return self.protocol.parse_query(self.call(self.protocol.build_query_request()))

    # -- drive ---------------------------------------------------------------------------------
    def drive_by_text(
        self,
        remote_task_id: str,
        *,
        text: str,
        timbre_id: str,
        speech_rate: int | None = None,
        pitch_rate: int | None = None,
        volume: int | None = None,
        interrupt_mode: int = 0,
    ) -> str:
        """Make the digital human speak ``text``; return the DriveId.

        Only refusals ("stream not started yet", rate limits) are retried: a drive whose answer
        was lost is not repeated, since the avatar would say the text twice.
        """
        task_id = self._require_id(remote_task_id, DRIVE_BY_TEXT)
        spec = self.protocol.build_drive_by_text_request(
            task_id,
            text=text,
            timbre_id=timbre_id,
            speech_rate=speech_rate,
            pitch_rate=pitch_rate,
            volume=volume,
            interrupt_mode=interrupt_mode,
        )
        return self.protocol.parse_drive(task_id, self.call(spec))

    def interrupt(self, remote_task_id: str) -> None:
        """Stop the current drive and drop the queued ones; the stream keeps running."""
        self.call(self.protocol.build_interrupt_request(self._require_id(remote_task_id, INTERRUPT)))

    # -- stop ----------------------------------------------------------------------------------
    def stop_stream(self, remote_task_id: str) -> StopOutcome:
        """Stop a stream. Idempotent: "already stopped" is success, and so is "not found" once the
        running-task list confirms the task is not running (it ended earlier, e.g. by its TTL)."""
        task_id = self._require_id(remote_task_id, STOP)
        for attempt in (1, 2):
            try:
                self.call(self.protocol.build_stop_request(task_id))
            except AvatarError as exc:
                if exc.code == str(ALREADY_STOPPED):
                    return "already_stopped"
                if exc.code != str(TASK_NOT_FOUND):
                    raise
                if attempt == 1 and any(s.task_id == task_id for s in self.list_streams()):
                    continue  # listed as running but not yet visible to Stop: ask once more
                if attempt == 2:
                    raise
                self.log.warning(
                    "ZEGO does not know stream task %s and it is not running: it ended earlier (TTL, idle time) "
                    "or belongs to another AppId",
                    task_id,
                )
                return "not_found"
            return "stopped"
        raise AssertionError("unreachable")
