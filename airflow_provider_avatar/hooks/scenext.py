"""Scenext hook: create an explainer video and read its status (docs/services/scenext.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from airflow_provider_avatar.hooks.base import AvatarBaseHook
from airflow_provider_avatar.protocols.scenext import ScenextProtocol
from airflow_provider_avatar.services import SCENEXT_CONN_ID


class ScenextHook(AvatarBaseHook):
    """Talks to the Scenext API. Connection: password = API key, host = API base URL (optional).

    :param scenext_conn_id: Airflow connection id (connection type ``scenext``).
    """

    protocol: ClassVar[ScenextProtocol] = ScenextProtocol()
    scenext_conn_id: str

    def __init__(self, scenext_conn_id: str = SCENEXT_CONN_ID, **kwargs: object) -> None:
        super().__init__(scenext_conn_id, **kwargs)

    def create_video(
        self,
        *,
        question: str | None = None,
        question_images: Sequence[str] | None = None,
        answer: str | None = None,
        answer_images: Sequence[str] | None = None,
        quality: str = "m",
        notify_url: str | None = None,
    ) -> str:
        """Submit a video task; return its remote task id. Never retried once it may have arrived."""
        spec = self.protocol.build_create_request(
            question=question,
            question_images=question_images,
            answer=answer,
            answer_images=answer_images,
            quality=quality,
            notify_url=notify_url,
        )
        return self.submit(spec, self.protocol.parse_create)
