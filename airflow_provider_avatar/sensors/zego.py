"""ZEGOCLOUD Digital Human stream sensor."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_avatar.sensors.base import AvatarStreamSensor, conn_id_alias
from airflow_provider_avatar.services import ZEGO_CONN_ID
from airflow_provider_avatar.status import TaskState


class ZegoDigitalHumanStreamSensor(AvatarStreamSensor):
    """Wait until a digital-human stream is live (STREAMING); fail if it FAILED or STOPPED first.

    With ``target_states={"STOPPED"}`` it waits for the stream to end instead (a stop, its TTL
    or its idle timeout). ZEGO lists only running tasks, so an ended stream may answer "task not
    found" rather than Status 5: that reads at once as STOPPED once this wait saw it live (or
    ``stop_requested`` is set), and as FAILED if it was seen only before going live (STARTING).
    A task id never seen at all is retried within ``not_found_grace``, then fails as never found.

    The wait's memory has limits: a deferred wait remembers what it saw before deferring, but a
    triggerer restart forgets what the trigger saw since; reschedule mode forgets between pokes
    (so it is refused for a STOPPED wait without ``stop_requested``). When waiting for the end of
    a stream you know went live, set ``stop_requested=True``.

    :param remote_task_id: the TaskId returned by ``ZegoCreateDigitalHumanStreamOperator`` (templated).
    :param zego_conn_id: Airflow connection id (type ``zego``, templated).
    :param stop_requested: a stop was sent for this stream (or it is known to have been live), so
        "not found" means it has ended.
    :param poll_interval: seconds between status checks (default 5; ZEGO allows 10 requests/s per API).
    """

    template_fields: Sequence[str] = ("remote_task_id", "zego_conn_id")
    default_poll_interval = 5.0
    zego_conn_id = conn_id_alias("zego_conn_id")

    def __init__(
        self,
        *,
        remote_task_id: str,
        zego_conn_id: str = ZEGO_CONN_ID,
        stop_requested: bool = False,
        poll_interval: float | None = None,
        target_states: Iterable[TaskState | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            service="zego",
            remote_task_id=remote_task_id,
            conn_id=zego_conn_id,
            stop_requested=stop_requested,
            poll_interval=poll_interval,
            target_states=target_states,
            **kwargs,
        )
