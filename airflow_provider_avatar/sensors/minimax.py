"""MiniMax Hailuo video sensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_avatar.sensors.base import AvatarTaskSensor, conn_id_alias
from airflow_provider_avatar.services import MINIMAX_CONN_ID


class MiniMaxVideoSensor(AvatarTaskSensor):
    """Wait until a MiniMax video task is ``Success`` with a file (SUCCEEDED); fail when it failed.

    The pushed status carries ``file_id``, ``width`` and ``height`` in ``result`` (never a download
    URL: ``AvatarVideoDownloadOperator`` asks files/retrieve for one just before the download).
    A content refusal (codes 1026/1027) fails the wait with MiniMax's code and message.
    MiniMax advises polling about every 10 s, the default when neither ``poll_interval`` nor
    ``poke_interval`` is given.

    :param remote_task_id: the task id returned by ``MiniMaxCreateVideoOperator`` (templated).
    :param minimax_conn_id: Airflow connection id (type ``minimax``, templated).
    """

    template_fields: Sequence[str] = ("remote_task_id", "minimax_conn_id")
    default_poll_interval = 10.0
    minimax_conn_id = conn_id_alias("minimax_conn_id")

    def __init__(
        self,
        *,
        remote_task_id: str,
        minimax_conn_id: str = MINIMAX_CONN_ID,
        poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            service="minimax",
            remote_task_id=remote_task_id,
            conn_id=minimax_conn_id,
            poll_interval=poll_interval,
            **kwargs,
        )
