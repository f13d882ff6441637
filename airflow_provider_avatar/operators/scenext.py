"""Scenext operators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_avatar.services import SCENEXT_CONN_ID

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class ScenextCreateVideoOperator(BaseOperator):
    """Submit a Scenext explainer-video task and return its remote task id (XCom).

    Input is checked before anything is sent: ``question`` or ``question_images`` is required and
    ``quality`` is one of ``l``, ``m``, ``h``. The create call is never retried once it may have
    reached Scenext, so a lost answer cannot bill a second video; a later try of this task instance
    re-attaches to the task an earlier try created, or fails before sending if one may have been
    created (``airflow_provider_avatar.submit_guard``).

    :param question: the question to explain (templated).
    :param question_images: image URLs or base64 strings of the question (templated).
    :param answer: optional reference answer (templated).
    :param answer_images: optional images of the answer (templated).
    :param quality: ``l``, ``m`` (default) or ``h``.
    :param notify_url: optional http(s) URL Scenext calls when the task completes.
    :param scenext_conn_id: Airflow connection id (type ``scenext``, templated).
    """

    template_fields: Sequence[str] = (
        "question",
        "question_images",
        "answer",
        "answer_images",
        "quality",
        "notify_url",
        "scenext_conn_id",
    )
    template_fields_renderers = {"question_images": "json", "answer_images": "json"}

    def __init__(
        self,
        *,
        question: str | None = None,
        question_images: list[str] | None = None,
        answer: str | None = None,
        answer_images: list[str] | None = None,
        quality: str = "m",
        notify_url: str | None = None,
        scenext_conn_id: str = SCENEXT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.question = question
        self.question_images = question_images
        self.answer = answer
        self.answer_images = answer_images
        self.quality = quality
        self.notify_url = notify_url
        self.scenext_conn_id = scenext_conn_id

    def execute(self, context: Context) -> str:
        from airflow_provider_avatar.hooks.scenext import ScenextHook
        from airflow_provider_avatar.protocols.scenext import CREATE
        from airflow_provider_avatar.submit_guard import guarded_create

        hook = ScenextHook(self.scenext_conn_id)
        try:
            return guarded_create(
                context,
                hook,
                CREATE,
                lambda: hook.create_video(
                    question=self.question,
                    question_images=self.question_images,
                    answer=self.answer,
                    answer_images=self.answer_images,
                    quality=self.quality,
                    notify_url=self.notify_url,
                ),
                describe=lambda remote_task_id: f"Created Scenext video task {remote_task_id}",
                logger=self.log,
            )
        finally:
            hook.close()
