"""DreamFace hook: avatar tasks behind a new-api gateway (docs/services/dreamface.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from airflow_provider_avatar.exceptions import AvatarError, AvatarInputError
from airflow_provider_avatar.hooks.base import AvatarBaseHook
from airflow_provider_avatar.inputs import checking, optional_text
from airflow_provider_avatar.protocols.dreamface import CREATE, DreamFaceProtocol
from airflow_provider_avatar.services import DREAMFACE_CONN_ID
from airflow_provider_avatar.status import redact_url
from airflow_provider_avatar.transport.policy import RetryPolicy


class DreamFaceHook(AvatarBaseHook):
    """Talks to a new-api gateway that serves DreamFace avatar tasks.

    Connection (type ``dreamface``): password = the gateway's API key; host = the gateway's base URL
    (required: there is no public host); extra ``create_path`` = the gateway's submit route (only
    for :meth:`create_avatar`), ``max_qps`` = a client-side rate limit (none is published).

    :param dreamface_conn_id: Airflow connection id (connection type ``dreamface``).
    """

    protocol: ClassVar[DreamFaceProtocol] = DreamFaceProtocol()
    dreamface_conn_id: str

    def __init__(self, dreamface_conn_id: str = DREAMFACE_CONN_ID, **kwargs: Any) -> None:
        super().__init__(dreamface_conn_id, **kwargs)

    def create_avatar(self, body: Mapping[str, Any] | str, *, create_path: str | None = None) -> str:
        """Post ``body`` to the gateway's submit route and return the new task id.

        The route is ``create_path``, else the connection extra ``create_path``. Never re-sent once it
        may have arrived (no second, billed task).
        """
        with checking(self.service, CREATE):
            # None: the connection's route; a template that rendered nothing is refused, not replaced.
            path = optional_text("create_path", create_path)
        path = path or str(self.config.extra.get("create_path") or "")
        spec = self.protocol.build_create_request(path, body)
        return self.submit(spec, self.protocol.parse_create)

    def test_connection(self) -> tuple[bool, str]:
        """One status read of a made-up id: ``task_not_exist`` means the key works; 401 a bad key;
        no answer an unreachable host; an answer unlike new-api's the wrong host."""
        try:
            base_url = redact_url(self.config.base_url)
        except AvatarInputError as exc:
            return False, str(exc)
        try:
            response = self.call(self.protocol.build_test_request(), policy=RetryPolicy(max_attempts=1), check=False)
        except AvatarError as exc:
            if exc.http_status is None:
                return False, f"could not reach the gateway at {base_url}: {exc}"
            return False, str(exc)
        ok, message = self.protocol.judge_test_answer(response)
        return ok, message if ok else f"{message} [{base_url}]"
