"""DreamFace operators (new-api gateway)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_avatar.services import DREAMFACE_CONN_ID

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class DreamFaceCreateAvatarOperator(BaseOperator):
    """Start a DreamFace avatar task through your gateway's submit route; return its task id (XCom).

    For gateways that expose a submit route: DreamFace gateways publish none, so the route
    (``create_path``, else the connection extra ``create_path``) and the ``body`` are yours, sent as
    given. The task id is read from the answers new-api gateways give (``data`` as a string,
    ``data.task_id``, ``task_id``, ``id``); any other answer fails showing the gateway's body (URL
    signatures removed). The request is never re-sent once it may have arrived, so a lost answer
    cannot start (and bill) a second task, nor can a later try of this task instance
    (``airflow_provider_avatar.submit_guard``). Waiting (``DreamFaceAvatarSensor``) is the verified part.

    :param body: the JSON object to post (templated; a dict whose values may be templates, or JSON text).
    :param create_path: the submit route relative to the gateway's base URL (templated; default: the
        connection extra ``create_path``).
    :param dreamface_conn_id: Airflow connection id (type ``dreamface``, templated).
    """

    template_fields: Sequence[str] = ("body", "create_path", "dreamface_conn_id")
    template_fields_renderers = {"body": "json"}

    def __init__(
        self,
        *,
        body: Mapping[str, Any] | str,
        create_path: str | None = None,
        dreamface_conn_id: str = DREAMFACE_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.body = body
        self.create_path = create_path
        self.dreamface_conn_id = dreamface_conn_id

    def execute(self, context: Context) -> str:
        from airflow_provider_avatar.hooks.dreamface import DreamFaceHook
        from airflow_provider_avatar.protocols.dreamface import CREATE
        from airflow_provider_avatar.submit_guard import guarded_create

        hook = DreamFaceHook(self.dreamface_conn_id)
        try:
            return guarded_create(
                context,
                hook,
                CREATE,
                lambda: hook.create_avatar(self.body, create_path=self.create_path),
                describe=lambda remote_task_id: f"Created DreamFace avatar task {remote_task_id}",
                logger=self.log,
            )
        finally:
            hook.close()
