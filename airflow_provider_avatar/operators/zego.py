"""ZEGOCLOUD Digital Human operators: create a stream, drive it by text, stop it (as a teardown)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_avatar.inputs import checking, optional_text
from airflow_provider_avatar.protocols.zego import CREATE, DEFAULT_MAX_IDLE, DEFAULT_TTL, SERVICE, lifetime, speech
from airflow_provider_avatar.services import ZEGO_CONN_ID

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_avatar.hooks.zego import ZegoDigitalHumanHook


def default_stream_id(context: Context) -> str:
    """A StreamId stable across retries of one task instance (ZEGO keeps StreamIds unique per
    AppId, so a retry re-attaches to the stream its first try created instead of starting another)."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", None)
    key = f"{ti.dag_id}\n{ti.run_id}\n{ti.task_id}\n{-1 if map_index is None else map_index}"
    return "af_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _hook(conn_id: str) -> ZegoDigitalHumanHook:
    from airflow_provider_avatar.hooks.zego import ZegoDigitalHumanHook

    return ZegoDigitalHumanHook(conn_id)


class ZegoCreateDigitalHumanStreamOperator(BaseOperator):
    """Start a ZEGO digital-human stream into an RTC room and return its TaskId (XCom).

    Input is validated before anything is sent (id lengths and alphabets, TTL and idle ranges,
    video size). The create is sent at most once per StreamId: a lost answer, or an Airflow retry
    of this task, re-attaches to the running stream with the same StreamId (a try killed mid-create
    leaves a record the next try reads first: ``airflow_provider_avatar.submit_guard``).

    :param digital_human_id: the digital human to stream (templated).
    :param room_id: RTC room to push into, at most 128 bytes (templated).
    :param stream_id: StreamId, letters, digits, ``-``, ``_``, unique per AppId (templated). Default:
        derived from dag, run, task and map index, so it is stable across retries. (Clearing a run
        right after its stream stopped may meet "StreamId in use" while ZEGO still holds the ended
        stream: wait a moment or pass another ``stream_id``.)
    :param ttl: seconds until ZEGO ends the stream, 10..86400 (default 3600).
    :param max_idle_time: seconds without a drive before ZEGO ends the stream, 30..86400 (default 600).
    :param background_color: ``#RRGGBB`` (templated).
    :param layout: ``{"Top", "Left", "Width", "Height", "Layer"}`` of the digital human (templated).
    :param video_config: ``{"Width", "Height", "Bitrate"}`` (templated).
    :param assets: image assets ``[{"AssetType": 1, "AssetUrl", "Layout"}]`` (templated).
    :param zego_conn_id: Airflow connection id (type ``zego``, templated).
    """

    template_fields: Sequence[str] = (
        "digital_human_id",
        "room_id",
        "stream_id",
        "background_color",
        "layout",
        "video_config",
        "assets",
        "zego_conn_id",
    )
    template_fields_renderers = {"layout": "json", "video_config": "json", "assets": "json"}

    def __init__(
        self,
        *,
        digital_human_id: str,
        room_id: str,
        stream_id: str | None = None,
        ttl: int = DEFAULT_TTL,
        max_idle_time: int = DEFAULT_MAX_IDLE,
        background_color: str | None = None,
        layout: Mapping[str, Any] | None = None,
        video_config: Mapping[str, Any] | None = None,
        assets: Sequence[Mapping[str, Any]] | None = None,
        zego_conn_id: str = ZEGO_CONN_ID,
        **kwargs: Any,
    ) -> None:
        lifetime(ttl, max_idle_time)  # not templated: a bad value fails when the DAG is parsed
        super().__init__(**kwargs)
        self.digital_human_id = digital_human_id
        self.room_id = room_id
        self.stream_id = stream_id
        self.ttl = ttl
        self.max_idle_time = max_idle_time
        self.background_color = background_color
        self.layout = layout
        self.video_config = video_config
        self.assets = assets
        self.zego_conn_id = zego_conn_id

    def execute(self, context: Context) -> str:
        from airflow_provider_avatar.submit_guard import guarded_create

        with checking(SERVICE, CREATE):
            # None: derived; a template that rendered nothing is refused, not silently derived.
            stream_id = optional_text("stream_id", self.stream_id) or default_stream_id(context)
        hook = _hook(self.zego_conn_id)
        try:
            return guarded_create(
                context,
                hook,
                CREATE,
                lambda: hook.create_stream(
                    digital_human_id=self.digital_human_id,
                    room_id=self.room_id,
                    stream_id=stream_id,
                    ttl=self.ttl,
                    max_idle_time=self.max_idle_time,
                    background_color=self.background_color,
                    layout=self.layout,
                    video_config=self.video_config,
                    assets=self.assets,
                ),
                describe=lambda task_id: (
                    f"ZEGO stream task {task_id} pushes stream {stream_id} into room {self.room_id}"
                ),
                logger=self.log,
                # StreamId is an idempotency key: look the stream up; if none runs, ZEGO refuses a duplicate.
                find_existing=lambda: hook.find_stream(self.room_id, stream_id, "an earlier try may have created it"),
            )
        finally:
            hook.close()


class ZegoDriveByTextOperator(BaseOperator):
    """Make a live digital human speak a text; returns the DriveId (XCom).

    Text is at most 1,800 characters; ``speech_rate`` and ``pitch_rate`` are in [-500, 500],
    ``volume`` in [1, 100]. ``interrupt_mode`` 0 queues behind the current speech, 1 cuts it off.
    A drive whose answer is lost is not repeated (the avatar would say it twice).

    :param remote_task_id: the stream's TaskId (templated).
    :param text: what to say (templated).
    :param timbre_id: the voice (templated).
    :param zego_conn_id: Airflow connection id (type ``zego``, templated).
    """

    template_fields: Sequence[str] = ("remote_task_id", "text", "timbre_id", "zego_conn_id")

    def __init__(
        self,
        *,
        remote_task_id: str,
        text: str,
        timbre_id: str,
        speech_rate: int | None = None,
        pitch_rate: int | None = None,
        volume: int | None = None,
        interrupt_mode: int = 0,
        zego_conn_id: str = ZEGO_CONN_ID,
        **kwargs: Any,
    ) -> None:
        speech(speech_rate, pitch_rate, volume, interrupt_mode)  # not templated: checked when the DAG is parsed
        super().__init__(**kwargs)
        self.remote_task_id = remote_task_id
        self.text = text
        self.timbre_id = timbre_id
        self.speech_rate = speech_rate
        self.pitch_rate = pitch_rate
        self.volume = volume
        self.interrupt_mode = interrupt_mode
        self.zego_conn_id = zego_conn_id

    def execute(self, context: Context) -> str:
        hook = _hook(self.zego_conn_id)
        try:
            drive_id = hook.drive_by_text(
                self.remote_task_id,
                text=self.text,
                timbre_id=self.timbre_id,
                speech_rate=self.speech_rate,
                pitch_rate=self.pitch_rate,
                volume=self.volume,
                interrupt_mode=self.interrupt_mode,
            )
        finally:
            hook.close()
        self.log.info("ZEGO stream %s speaks %d characters (drive %s)", self.remote_task_id, len(self.text), drive_id)
        return drive_id


class ZegoStopDigitalHumanStreamOperator(BaseOperator):
    """Stop a digital-human stream; meant for ``.as_teardown()`` so a failed run stops it too.

    Idempotent: a stream that is already stopped, or ended and gone (TTL, idle timeout), counts
    as stopped. Returns ``{"remote_task_id", "outcome"}`` with outcome ``stopped``,
    ``already_stopped`` or ``not_found``.

    :param remote_task_id: the stream's TaskId (templated).
    :param zego_conn_id: Airflow connection id (type ``zego``, templated).
    """

    template_fields: Sequence[str] = ("remote_task_id", "zego_conn_id")

    def __init__(self, *, remote_task_id: str, zego_conn_id: str = ZEGO_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote_task_id = remote_task_id
        self.zego_conn_id = zego_conn_id

    def execute(self, context: Context) -> dict[str, str]:
        hook = _hook(self.zego_conn_id)
        try:
            outcome = hook.stop_stream(self.remote_task_id)
        finally:
            hook.close()
        self.log.info("ZEGO stream task %s: %s", self.remote_task_id, outcome.replace("_", " "))
        return {"remote_task_id": self.remote_task_id, "outcome": outcome}
