"""DreamFace avatar-task sensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_avatar.sensors.base import AvatarTaskSensor, conn_id_alias
from airflow_provider_avatar.services import DREAMFACE_CONN_ID


class DreamFaceAvatarSensor(AvatarTaskSensor):
    """Wait until a DreamFace avatar task behind a new-api gateway is SUCCESS with a video (SUCCEEDED);
    fail on FAILURE, or on SUCCESS without any video path (``no_artifact``).

    This is the verified path: it needs only the documented ``GET avatar/task/{id}``, so tasks started
    elsewhere (an app, a script, ``DreamFaceCreateAvatarOperator``) can be waited for and downloaded.
    Progress (``"37%"``) is logged as it changes; ``UNKNOWN`` and statuses the gateway adds later are
    logged once and polled on under the deadline. An unknown id (``task_not_exist``) is retried within
    ``not_found_grace`` and then fails as never found.

    :param remote_task_id: the gateway's task id (templated).
    :param dreamface_conn_id: Airflow connection id (type ``dreamface``, templated).
    :param poll_interval: seconds between status reads (default 15, the pace at which new-api itself
        refreshes its tasks from upstream).
    """

    template_fields: Sequence[str] = ("remote_task_id", "dreamface_conn_id")
    default_poll_interval = 15.0
    dreamface_conn_id = conn_id_alias("dreamface_conn_id")

    def __init__(
        self,
        *,
        remote_task_id: str,
        dreamface_conn_id: str = DREAMFACE_CONN_ID,
        poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            service="dreamface",
            remote_task_id=remote_task_id,
            conn_id=dreamface_conn_id,
            poll_interval=poll_interval,
            **kwargs,
        )
