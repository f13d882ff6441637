"""Tencent Cloud TRTC hook: start, read, update and stop stream ingest tasks (docs/services/trtc.md).

Calls go through Tencent's official SDK (``TrtcClient.call``, which signs each request), executed
by :mod:`airflow_provider_avatar.transport.sdk` so retries, pacing and error mapping are the same
as for every other service. The SDK is imported on first use (the client's models take a while
to import, so the async path builds the client in the SDK thread pool).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from airflow_provider_avatar.exceptions import AvatarAuthError, AvatarError, AvatarInputError, AvatarNotFoundError
from airflow_provider_avatar.hooks.base import AvatarBaseHook, HookConfig
from airflow_provider_avatar.protocols.base import ApiResponse, RequestSpec
from airflow_provider_avatar.protocols.trtc import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_DURATION,
    NOT_FOUND_CODES,
    STOP,
    TASK_FINISHED,
    UPDATE,
    TrtcProtocol,
    parse_sdk_app_id,
)
from airflow_provider_avatar.services import TRTC_CONN_ID
from airflow_provider_avatar.status import TaskState
from airflow_provider_avatar.transport.policy import RetryPolicy
from airflow_provider_avatar.usersig import DEFAULT_EXPIRE

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_avatar.transport.sdk import SdkClient

StopOutcome = Literal["stopped", "already_stopped", "not_found"]

#: Languages of TRTC's error messages.
LANGUAGES = ("en-US", "zh-CN")
DEFAULT_LANGUAGE = "en-US"
#: Tencent's SDK logs whole requests at DEBUG, session token header included.
SDK_LOGGER = "tencentcloud_sdk_common"


@dataclass(frozen=True, slots=True)
class TrtcConfig(HookConfig):
    """The connection plus TRTC's own settings. ``repr`` hides every secret."""

    region: str = ""
    sdk_app_id: int = 0
    scheme: str = "https"
    #: ``host[:port]`` for the SDK, or ``None`` for its default host (``trtc.tencentcloudapi.com``).
    endpoint: str | None = None
    language: str = DEFAULT_LANGUAGE
    session_token: str | None = field(default=None, repr=False)
    sdk_secret_key: str | None = field(default=None, repr=False)


class TrtcHook(AvatarBaseHook):
    """Talks to the Tencent Cloud TRTC stream ingest API ("input online media stream").

    Connection (type ``trtc``): login = SecretId, password = SecretKey, host = API endpoint
    (optional: empty for the SDK's default ``trtc.tencentcloudapi.com``, a bare host such as
    ``trtc.intl.tencentcloudapi.com`` for https, or a URL with scheme and port). Extra:
    ``region`` (required, e.g. ``ap-singapore``), ``sdk_app_id`` (required), ``session_token``,
    ``language`` (``en-US`` or ``zh-CN``), ``max_qps`` (default 20, TRTC's limit per API),
    ``sdk_secret_key`` (the application's key, to generate the robot's UserSig).

    :param trtc_conn_id: Airflow connection id (connection type ``trtc``).
    """

    protocol: ClassVar[TrtcProtocol] = TrtcProtocol()
    #: The SDK transport (requests, the SDK's exceptions); the client itself is built in a worker thread.
    async_modules: ClassVar[tuple[str, ...]] = (
        "airflow_provider_avatar.transport.aio",
        "airflow_provider_avatar.transport.sdk",
    )
    trtc_conn_id: str

    def __init__(self, trtc_conn_id: str = TRTC_CONN_ID, **kwargs: Any) -> None:
        super().__init__(trtc_conn_id, **kwargs)
        self._client: SdkClient | None = None
        self._client_lock = threading.Lock()

    # -- connection ----------------------------------------------------------------------------
    def build_config(
        self,
        host: str | None,
        port: int | None,
        schema: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any],
    ) -> TrtcConfig:
        config = super().build_config(host, port, schema, login, password, extra)

        def bad(message: str) -> AvatarInputError:
            return AvatarInputError(
                f"connection {self.conn_id!r} {message}", service=self.service, action="read_connection"
            )

        if (login or "") != (login or "").strip() or (password or "") != (password or "").strip():
            raise bad("has spaces around its SecretId (login) or SecretKey (password)")
        parts = urlsplit(config.base_url)
        if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
            raise bad("API endpoint must be a host or a scheme://host[:port] URL, with no path, query or user")
        region = str(extra.get("region") or "").strip()
        if not region:
            raise bad("has no region in its extra (e.g. ap-singapore; the regions are listed on TRTC's API pages)")
        raw_app_id = extra.get("sdk_app_id")
        try:
            sdk_app_id = parse_sdk_app_id(raw_app_id)
        except ValueError:
            what = "needs sdk_app_id in its extra" if raw_app_id in (None, "") else f"has sdk_app_id {raw_app_id!r}"
            raise bad(f"{what}: it must be the application's numeric SdkAppId from the TRTC console") from None
        language = str(extra.get("language") or DEFAULT_LANGUAGE).strip()
        if language not in LANGUAGES:
            raise bad(f"extra 'language' must be one of {', '.join(LANGUAGES)}; got {language!r}")
        default_host = not (host or "").strip()
        return TrtcConfig(
            **{f.name: getattr(config, f.name) for f in fields(HookConfig)},
            region=region,
            sdk_app_id=sdk_app_id,
            scheme=parts.scheme,
            endpoint=None if default_host else parts.netloc,
            language=language,
            session_token=str(extra.get("session_token") or "") or None,
            sdk_secret_key=str(extra.get("sdk_secret_key") or "") or None,
        )

    @property
    def trtc_config(self) -> TrtcConfig:
        config = self.config
        assert isinstance(config, TrtcConfig)
        return config

    @property
    def sdk_app_id(self) -> int:
        """The connection's TRTC application id."""
        return self.trtc_config.sdk_app_id

    def _client_for(self, config: TrtcConfig) -> SdkClient:
        """One SDK client per hook (keep-alive session; the SDK's own retryer is never set)."""
        with self._client_lock:
            if self._client is None:
                from tencentcloud.common.credential import Credential
                from tencentcloud.common.profile.client_profile import ClientProfile
                from tencentcloud.common.profile.http_profile import HttpProfile
                from tencentcloud.trtc.v20190722.trtc_client import TrtcClient

                sdk_log = logging.getLogger(SDK_LOGGER)
                if sdk_log.level == logging.NOTSET:
                    sdk_log.setLevel(logging.INFO)  # its DEBUG lines carry the session token
                # The SDK hands reqTimeout to requests as is, so a (connect, read) pair keeps both limits.
                timeouts = (config.connect_timeout, config.read_timeout)
                http = HttpProfile(
                    protocol=config.scheme, endpoint=config.endpoint, reqTimeout=timeouts, keepAlive=True
                )
                credential = Credential(config.credentials.login, config.credentials.secret, config.session_token)
                profile = ClientProfile(httpProfile=http, language=config.language)
                self._client = TrtcClient(credential, config.region, profile)
            return self._client

    # -- calls ---------------------------------------------------------------------------------
    def call(self, spec: RequestSpec, *, policy: RetryPolicy | None = None, check: bool = True) -> ApiResponse:
        """Send a request through the SDK (sync: workers and poke mode), with the SdkAppId bound."""
        from airflow_provider_avatar.transport.sdk import SdkTransport

        config = self.trtc_config
        if self._sync is None:
            self._sync = SdkTransport(self._endpoint_for(config), self._client_for(config))
        return self._sync.call(self.protocol.bind(spec, config.sdk_app_id), policy=policy, check=check)

    async def acall(
        self, spec: RequestSpec, *, session: aiohttp.ClientSession | None = None, policy: RetryPolicy | None = None
    ) -> ApiResponse:
        """Send a request from a coroutine: the SDK runs in a bounded thread pool (``session`` is unused)."""
        from airflow_provider_avatar.transport.sdk import AsyncSdkTransport

        config = await self.aconfig()
        assert isinstance(config, TrtcConfig)
        endpoint = self._endpoint_for(config)
        bound = self.protocol.bind(spec, config.sdk_app_id)
        transport = AsyncSdkTransport(endpoint, self._client or await self._aclient(config, endpoint, bound))
        return await transport.call(bound, policy=policy)

    async def _aclient(self, config: TrtcConfig, endpoint: Any, spec: RequestSpec) -> SdkClient:
        """The client, built off the loop the first time (importing the SDK's models takes a while)."""
        from airflow_provider_avatar.transport.sdk import run_in_pool

        client: SdkClient = await run_in_pool(
            lambda: self._client_for(config), endpoint.connect_timeout + endpoint.read_timeout, endpoint, spec
        )
        return client

    def close(self) -> None:
        super().close()
        self._client = None

    # -- actions -------------------------------------------------------------------------------
    def user_sig(self, user_id: str, expire: int = DEFAULT_EXPIRE) -> str:
        """A UserSig for ``user_id`` from the connection's ``sdk_secret_key`` (TLSSigAPIv2)."""
        from airflow_provider_avatar.usersig import gen_user_sig

        config = self.trtc_config
        if not config.sdk_secret_key:
            raise AvatarInputError(
                f"connection {self.conn_id!r} has no sdk_secret_key in its extra: pass user_sig, or add the "
                "application's SDK secret key (TRTC console, application info) to generate one",
                service=self.service,
                action="user_sig",
            )
        try:
            return gen_user_sig(config.sdk_app_id, config.sdk_secret_key, user_id, expire)
        except ValueError as exc:
            raise AvatarInputError(str(exc), service=self.service, action="user_sig") from None

    def start_stream_ingest(
        self,
        *,
        room_id: str,
        stream_url: str,
        user_id: str,
        user_sig: str | None = None,
        room_id_type: int = 0,
        repeat_num: int = 1,
        max_duration: int | None = None,
        idle_timeout: int | None = DEFAULT_IDLE_TIMEOUT,
        volume: int | None = None,
        tempo: float | None = None,
        seek_second: int | None = None,
        auto_push: bool | None = None,
        private_map_key: str | None = None,
        enable_progress: bool | None = None,
    ) -> str:
        """Start relaying ``stream_url`` into the room as robot ``user_id``; return the TaskId.

        Bounded by default: ``idle_timeout`` is 60 s, and a looping source (``repeat_num=-1``)
        gets ``max_duration`` 60 minutes unless given. Without ``user_sig`` one is generated
        from the connection's ``sdk_secret_key``. Sent once: TRTC has no idempotency key and no
        task list, so a start whose answer is lost raises :class:`AvatarSubmitUnknownError`.
        """
        if repeat_num == -1 and max_duration is None:
            max_duration = DEFAULT_MAX_DURATION
        params: dict[str, Any] = {
            "room_id": room_id,
            "stream_url": stream_url,
            "user_id": user_id,
            "room_id_type": room_id_type,
            "repeat_num": repeat_num,
            "max_duration": max_duration,
            "idle_timeout": idle_timeout,
            "volume": volume,
            "tempo": tempo,
            "seek_second": seek_second,
            "auto_push": auto_push,
            "private_map_key": private_map_key,
            "enable_progress": enable_progress,
        }
        self.protocol.build_start_request(**params, user_sig="-")  # bad input fails before a UserSig is made
        sig = user_sig if user_sig is not None else self.user_sig(user_id)
        spec = self.protocol.build_start_request(**params, user_sig=sig)
        task_id = self.submit(spec, self.protocol.parse_start)
        self.log.info("Started TRTC stream ingest task %s into room %s as %s", task_id, room_id, user_id)
        return task_id

    def update_stream_ingest(
        self,
        remote_task_id: str,
        *,
        stream_url: str | None = None,
        volume: int | None = None,
        is_pause: bool | None = None,
        enable_progress: bool | None = None,
        tempo: float | None = None,
    ) -> None:
        """Change a running task's source, volume, tempo or pause state (a paused task is still billed)."""
        task_id = self._require_id(remote_task_id, UPDATE)
        spec = self.protocol.build_update_request(
            task_id,
            stream_url=stream_url,
            volume=volume,
            is_pause=is_pause,
            enable_progress=enable_progress,
            tempo=tempo,
        )
        self.call(spec)

    def stop_stream_ingest(self, task_id: str) -> StopOutcome:
        """Stop a task. Idempotent: "task finished" is ``already_stopped``; "task not exist" (or
        an unknown TaskId) is ``not_found`` once Describe confirms it is not running (it ended on
        its own, by RepeatNum, MaxDuration or IdleTimeout, or an earlier stop)."""
        task_id = self._require_id(task_id, STOP)
        for attempt in (1, 2):
            try:
                self.call(self.protocol.build_stop_request(task_id))
            except AvatarError as exc:
                if exc.code == TASK_FINISHED:
                    return "already_stopped"
                if exc.code not in NOT_FOUND_CODES:
                    raise
                if attempt == 1 and self._running(task_id):
                    continue  # Describe sees it running but Stop did not: ask once more
                if attempt == 2:
                    raise
                self.log.warning(
                    "TRTC does not know stream ingest task %s and it is not running: it ended earlier "
                    "(RepeatNum, MaxDuration, IdleTimeout, a stop) or belongs to another SdkAppId",
                    task_id,
                )
                return "not_found"
            return "stopped"
        raise AssertionError("unreachable")

    def _running(self, task_id: str) -> bool:
        try:
            return self.get_status(task_id).state is TaskState.STREAMING
        except AvatarNotFoundError:
            return False

    def test_connection(self) -> tuple[bool, str]:
        """One Describe of a TaskId that cannot exist: "not exist" means the keys and SdkAppId work."""
        try:
            config = self.trtc_config
            spec = self.protocol.build_test_request()
            self.protocol.parse_status(spec.remote_task_id or "", self.call(spec, policy=RetryPolicy(max_attempts=1)))
        except AvatarNotFoundError:
            pass
        except AvatarAuthError as exc:
            return False, (
                f"TRTC rejected the credentials: {exc.detail} (code {exc.code}). Check the SecretId (login), "
                "the SecretKey (password), the region and that the key may call TRTC for this SdkAppId."
            )
        except AvatarError as exc:
            return False, str(exc)
        return True, (
            f"Connection works: TRTC accepted the SecretId and SecretKey for SdkAppId {config.sdk_app_id} "
            f"in region {config.region}."
        )
