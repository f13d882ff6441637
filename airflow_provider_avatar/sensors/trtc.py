"""Tencent Cloud TRTC stream-ingest sensor."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_avatar.sensors.base import AvatarStreamSensor, conn_id_alias
from airflow_provider_avatar.services import TRTC_CONN_ID
from airflow_provider_avatar.status import TaskState


class TrtcStreamIngestSensor(AvatarStreamSensor):
    """Wait until a TRTC ingest task is live (STREAMING); fail if it FAILED or STOPPED first.

    TRTC's ``DescribeStreamIngest`` knows two answers: ``InProgress`` (STREAMING) and ``NotExist``.
    ``NotExist`` is read with this wait's history: STOPPED once the task was seen live or a stop was
    requested; a task never seen live is retried within ``not_found_grace`` (TRTC may not list a task
    right after the start) and then FAILED: TRTC has no failed state, a start that fails (an
    unreachable ``StreamUrl``, a bad UserSig) simply never becomes ``InProgress``.

    With ``target_states={"STOPPED"}`` it waits for the ingest to end instead: the media ran out
    (``RepeatNum``), ``MaxDuration`` or ``IdleTimeout`` passed, or someone stopped it. Reschedule mode
    forgets between pokes that the task was live, so such a wait needs ``stop_requested=True`` there.

    :param remote_task_id: the TaskId returned by ``TrtcStartStreamIngestOperator`` (templated).
    :param trtc_conn_id: Airflow connection id (type ``trtc``, templated).
    :param stop_requested: a stop was sent for this task (or it is known to have been live), so
        ``NotExist`` means it has ended.
    :param poll_interval: seconds between status checks (default 5; TRTC allows 20 requests/s per API).
    """

    template_fields: Sequence[str] = ("remote_task_id", "trtc_conn_id")
    default_poll_interval = 5.0
    trtc_conn_id = conn_id_alias("trtc_conn_id")

    def __init__(
        self,
        *,
        remote_task_id: str,
        trtc_conn_id: str = TRTC_CONN_ID,
        stop_requested: bool = False,
        poll_interval: float | None = None,
        target_states: Iterable[TaskState | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            service="trtc",
            remote_task_id=remote_task_id,
            conn_id=trtc_conn_id,
            stop_requested=stop_requested,
            poll_interval=poll_interval,
            target_states=target_states,
            **kwargs,
        )
