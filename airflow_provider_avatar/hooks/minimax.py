"""MiniMax Hailuo video hook: create a video, read its status, turn its file id into a download URL
(docs/services/minimax.md). One hook for both flavors (MiniMax direct, or a gateway in front of it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.exceptions import AvatarError, AvatarInputError, AvatarTaskFailedError
from airflow_provider_avatar.hooks.base import AvatarBaseHook, HookConfig
from airflow_provider_avatar.protocols.minimax import (
    DEFAULT_MODEL,
    DIRECT,
    DIRECT_BASE_URL,
    FileInfo,
    MiniMaxProtocol,
    flavor_for,
    is_known_model,
)
from airflow_provider_avatar.services import MINIMAX_CONN_ID
from airflow_provider_avatar.status import TaskState, TaskStatus
from airflow_provider_avatar.transport.policy import RetryPolicy

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True, slots=True)
class MiniMaxConfig(HookConfig):
    """The connection plus MiniMax's own settings."""

    flavor: str = "gateway"
    group_id: str | None = None


class MiniMaxVideoHook(AvatarBaseHook):
    """Talks to MiniMax's video generation API, directly or through a gateway.

    Connection (type ``minimax``): password = API key; host = API base URL (optional: the gateway's
    ``https://api.gpt.ge``, or ``https://api.minimax.io`` for ``flavor=direct``). Extra: ``flavor``
    (``gateway`` | ``direct``; by default ``direct`` for MiniMax's own hosts, else ``gateway``),
    ``group_id`` (sent as ``GroupId`` on direct calls when set), ``max_qps``, ``action_max_qps``
    (default ``{"create_video": 5/60}``: MiniMax limits creates per minute).

    :param minimax_conn_id: Airflow connection id (connection type ``minimax``).
    """

    protocol: ClassVar[MiniMaxProtocol] = MiniMaxProtocol()
    minimax_conn_id: str

    def __init__(self, minimax_conn_id: str = MINIMAX_CONN_ID, **kwargs: Any) -> None:
        super().__init__(minimax_conn_id, **kwargs)
        self._wire: MiniMaxProtocol | None = None

    # -- connection ----------------------------------------------------------------------------
    def build_config(
        self,
        host: str | None,
        port: int | None,
        schema: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any],
    ) -> MiniMaxConfig:
        try:
            flavor = flavor_for(host, extra.get("flavor"))
        except ValueError as exc:
            raise AvatarInputError(
                f"connection {self.conn_id!r} extra {exc}", service=self.service, action="read_connection"
            ) from None
        if not (host or "").strip() and flavor == DIRECT:
            host = DIRECT_BASE_URL
        config = super().build_config(host, port, schema, login, password, extra)
        group_id = str(extra.get("group_id") or "").strip() or None
        return MiniMaxConfig(
            **{f.name: getattr(config, f.name) for f in fields(HookConfig)},
            flavor=flavor,
            group_id=group_id,
        )

    def wire_for(self, config: HookConfig) -> MiniMaxProtocol:
        """The protocol in the connection's flavor (paths, ``GroupId``)."""
        if self._wire is None:
            assert isinstance(config, MiniMaxConfig)
            self._wire = MiniMaxProtocol(config.flavor, config.group_id)
        return self._wire

    @property
    def wire(self) -> MiniMaxProtocol:
        return self.wire_for(self.config)

    # -- calls ---------------------------------------------------------------------------------
    def create_video(
        self,
        *,
        prompt: str | None = None,
        model: str = DEFAULT_MODEL,
        duration: int | str | None = None,
        resolution: str | None = None,
        first_frame_image: str | None = None,
        prompt_optimizer: bool | None = None,
        fast_pretreatment: bool | None = None,
        callback_url: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Submit a video task; return its remote task id.

        Refusals (the per-minute create limit, invalid input) were never acted on and may be retried;
        a create whose answer was lost is never re-sent (:class:`AvatarSubmitUnknownError`).
        """
        spec = self.wire.build_create_request(
            prompt=prompt,
            model=model,
            duration=duration,
            resolution=resolution,
            first_frame_image=first_frame_image,
            prompt_optimizer=prompt_optimizer,
            fast_pretreatment=fast_pretreatment,
            callback_url=callback_url,
            extra=extra,
        )
        if not is_known_model(model):
            self.log.warning("MiniMax model %r is not one this provider knows; its options are not checked", model)
        return self.submit(spec, self.wire.parse_create)

    def get_status(self, remote_task_id: str) -> TaskStatus:
        spec = self.wire.build_status_request(self._require_id(remote_task_id))
        return self.wire.parse_status(remote_task_id, self.call(spec))

    async def aget_status(
        self, remote_task_id: str, *, session: aiohttp.ClientSession | None = None, policy: RetryPolicy | None = None
    ) -> TaskStatus:
        wire = self.wire_for(await self.aconfig())
        spec = wire.build_status_request(self._require_id(remote_task_id))
        return wire.parse_status(remote_task_id, await self.acall(spec, session=session, policy=policy))

    def retrieve_file(self, file_id: str, *, remote_task_id: str | None = None) -> FileInfo:
        """The download URL of a file (signed, expires about 9 h after this call) and its expiry."""
        file_id = self._require_id(file_id, action="retrieve_file")
        spec = self.wire.build_retrieve_request(file_id, remote_task_id=remote_task_id)
        return self.wire.parse_retrieve(file_id, self.call(spec), now=clock().time())

    def fresh_video_url(self, remote_task_id: str) -> str:
        """Read the task's ``file_id`` and ask files/retrieve for a download URL issued now."""
        status = self.get_status(remote_task_id)
        file_id = status.result.get("file_id") if status.state is TaskState.SUCCEEDED else None
        if file_id:
            return self.retrieve_file(str(file_id), remote_task_id=remote_task_id).download_url
        if status.state is TaskState.SUCCEEDED and status.video_url:
            return status.video_url  # a gateway that answers with a URL instead of a file id
        raise AvatarTaskFailedError(
            f"task is {status.state.value} and has no video file to download",
            service=self.service,
            action="fresh_video_url",
            remote_task_id=remote_task_id,
            code=status.error_code,
            request_id=status.request_id,
        )

    def test_connection(self) -> tuple[bool, str]:
        try:
            wire = self.wire
            response = self.call(wire.build_test_request(), policy=RetryPolicy(max_attempts=1), check=False)
        except AvatarError as exc:
            return False, str(exc)
        return wire.judge_test_answer(response)
