"""Tencent Cloud TRTC stream-ingest operators: relay a media URL into a room, stop it (as a teardown)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_avatar.inputs import checking, optional_text
from airflow_provider_avatar.protocols.trtc import DEFAULT_IDLE_TIMEOUT, SERVICE, START, start_options
from airflow_provider_avatar.services import TRTC_CONN_ID

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_avatar.hooks.trtc import TrtcHook


def default_user_id(context: Context) -> str:
    """The robot user's id, stable across retries of one task instance (letters, digits, ``_``; 30 chars)."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", None)
    key = f"{ti.dag_id}\n{ti.run_id}\n{ti.task_id}\n{-1 if map_index is None else map_index}"
    return "af_ingest_" + hashlib.sha256(key.encode()).hexdigest()[:20]


def _hook(conn_id: str) -> TrtcHook:
    from airflow_provider_avatar.hooks.trtc import TrtcHook

    return TrtcHook(conn_id)


class TrtcStartStreamIngestOperator(BaseOperator):
    """Relay an online video file or live stream into a TRTC room (``StartStreamIngest``); returns the TaskId (XCom).

    A robot user joins the room and publishes the media. Its UserSig is generated from the
    connection's SDK secret key (extra ``sdk_secret_key``, the application's key from the TRTC
    console) unless ``user_sig`` is given; neither is ever logged or stored in XCom.

    Bounded by default, so nothing billed runs for days unnoticed: ``idle_timeout`` defaults to
    ``DEFAULT_IDLE_TIMEOUT`` seconds (TRTC destroys a task whose source stalls that long), and a
    looping source (``repeat_num=-1``) gets ``max_duration`` ``DEFAULT_MAX_DURATION`` minutes unless
    given. A live source with ``repeat_num=1`` runs until it ends, stalls or is stopped: pair this
    operator with ``TrtcStopStreamIngestOperator(...).as_teardown(setups=start)``.

    Input is validated before anything is sent. The start is sent once: if its answer is lost, the
    task fails with ``AvatarSubmitUnknownError`` and is not retried (TRTC cannot list ingest tasks,
    so a retry could start a second, billed one); a later try after a killed one re-attaches to the
    recorded TaskId or fails the same way before sending (``airflow_provider_avatar.submit_guard``).

    :param room_id: the room to publish into (templated); a 32-bit integer with ``room_id_type=1``.
    :param stream_url: the media: an http(s) video file or an RTMP/HLS/FLV live stream (templated).
    :param user_id: the robot user's id (templated); default derived from dag, run, task and map
        index, so a retry joins as the same user.
    :param user_sig: the robot's UserSig, if you do not want it generated from the connection. Not
        templated on purpose, like ``private_map_key``: Airflow stores rendered fields in its
        metadata DB and shows them in the UI, and these are credentials.
    :param room_id_type: 0 (string room id, default) or 1 (integer room id).
    :param repeat_num: times to play the media, 1..1000, or -1 to loop until ``max_duration``/a stop.
    :param max_duration: minutes a looping ingest runs (1..10080; only with ``repeat_num=-1``).
    :param idle_timeout: seconds without media before TRTC ends the task (0..600).
    :param volume: 0..200 (100 is unchanged).
    :param tempo: playback speed 0.5..2.0.
    :param seek_second: start this many seconds into a file.
    :param auto_push: also relay to CDN (must be enabled in the TRTC console).
    :param private_map_key: room permission key, if advanced permission control is on.
    :param enable_progress: send playback progress to the room's players.
    :param trtc_conn_id: Airflow connection id (type ``trtc``, templated).
    """

    template_fields: Sequence[str] = ("room_id", "stream_url", "user_id", "trtc_conn_id")

    def __init__(
        self,
        *,
        room_id: str,
        stream_url: str,
        user_id: str | None = None,
        user_sig: str | None = None,
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
        trtc_conn_id: str = TRTC_CONN_ID,
        **kwargs: Any,
    ) -> None:
        # Not templated: a bad value fails when the DAG is parsed.
        start_options(
            user_sig=user_sig,
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
        )
        super().__init__(**kwargs)
        self.room_id = room_id
        self.stream_url = stream_url
        self.user_id = user_id
        self.user_sig = user_sig
        self.room_id_type = room_id_type
        self.repeat_num = repeat_num
        self.max_duration = max_duration
        self.idle_timeout = idle_timeout
        self.volume = volume
        self.tempo = tempo
        self.seek_second = seek_second
        self.auto_push = auto_push
        self.private_map_key = private_map_key
        self.enable_progress = enable_progress
        self.trtc_conn_id = trtc_conn_id

    def execute(self, context: Context) -> str:
        from airflow_provider_avatar.submit_guard import guarded_create

        room_id = self.room_id
        with checking(SERVICE, START):
            # None: derived; a template that rendered nothing is refused, not silently derived.
            user_id = optional_text("user_id", self.user_id) or default_user_id(context)
            if isinstance(room_id, int) and not isinstance(room_id, bool):
                room_id = str(room_id)  # an integer room id (room_id_type=1) may be given as a number
        hook = _hook(self.trtc_conn_id)
        try:
            return guarded_create(
                context,
                hook,
                START,
                lambda: hook.start_stream_ingest(
                    room_id=room_id,
                    stream_url=self.stream_url,
                    user_id=user_id,
                    user_sig=self.user_sig,
                    room_id_type=self.room_id_type,
                    repeat_num=self.repeat_num,
                    max_duration=self.max_duration,
                    idle_timeout=self.idle_timeout,
                    volume=self.volume,
                    tempo=self.tempo,
                    seek_second=self.seek_second,
                    auto_push=self.auto_push,
                    private_map_key=self.private_map_key,
                    enable_progress=self.enable_progress,
                ),
                describe=lambda task_id: f"TRTC ingest task {task_id} relays into room {room_id} as user {user_id}",
                logger=self.log,
            )
        finally:
            hook.close()


class TrtcStopStreamIngestOperator(BaseOperator):
    """Stop a TRTC ingest task (``StopStreamIngest``); meant for ``.as_teardown()`` so a failed run stops it too.

    Idempotent: a task that already ended (media finished, ``MaxDuration``, ``IdleTimeout``, an
    earlier stop) counts as stopped. Returns ``{"remote_task_id", "outcome"}`` with outcome
    ``stopped``, ``already_stopped`` or ``not_found``.

    :param remote_task_id: the TaskId (templated).
    :param trtc_conn_id: Airflow connection id (type ``trtc``, templated).
    """

    template_fields: Sequence[str] = ("remote_task_id", "trtc_conn_id")

    def __init__(self, *, remote_task_id: str, trtc_conn_id: str = TRTC_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote_task_id = remote_task_id
        self.trtc_conn_id = trtc_conn_id

    def execute(self, context: Context) -> dict[str, str]:
        hook = _hook(self.trtc_conn_id)
        try:
            outcome = hook.stop_stream_ingest(self.remote_task_id)
        finally:
            hook.close()
        self.log.info("TRTC ingest task %s: %s", self.remote_task_id, outcome.replace("_", " "))
        return {"remote_task_id": self.remote_task_id, "outcome": outcome}
