"""Scenext video sensor."""

from __future__ import annotations

from typing import Any

from airflow_provider_avatar.sensors.base import AvatarTaskSensor


class ScenextVideoSensor(AvatarTaskSensor):
    """Wait until a Scenext video task is COMPLETED (SUCCEEDED); fail when it FAILED.

    Scenext advises polling every 30 s, which is the default ``poll_interval``.

    :param remote_task_id: the task id returned by ``ScenextCreateVideoOperator`` (templated).
    :param scenext_conn_id: Airflow connection id (type ``scenext``).
    """

    def __init__(
        self,
        *,
        remote_task_id: str,
        scenext_conn_id: str = "scenext_default",
        poll_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            service="scenext",
            remote_task_id=remote_task_id,
            conn_id=scenext_conn_id,
            poll_interval=poll_interval,
            **kwargs,
        )
