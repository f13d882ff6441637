"""Scenext video sensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_avatar.sensors.base import AvatarTaskSensor, conn_id_alias
from airflow_provider_avatar.services import SCENEXT_CONN_ID


class ScenextVideoSensor(AvatarTaskSensor):
    """Wait until a Scenext video task is COMPLETED (SUCCEEDED); fail when it FAILED.

    Scenext advises polling every 30 s, the default when neither ``poll_interval`` nor
    ``poke_interval`` is given.

    :param remote_task_id: the task id returned by ``ScenextCreateVideoOperator`` (templated).
    :param scenext_conn_id: Airflow connection id (type ``scenext``, templated).
    """

    template_fields: Sequence[str] = ("remote_task_id", "scenext_conn_id")
    default_poll_interval = 30.0
    scenext_conn_id = conn_id_alias("scenext_conn_id")

    def __init__(
        self,
        *,
        remote_task_id: str,
        scenext_conn_id: str = SCENEXT_CONN_ID,
        poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            service="scenext",
            remote_task_id=remote_task_id,
            conn_id=scenext_conn_id,
            poll_interval=poll_interval,
            **kwargs,
        )
