"""The base of every service hook: connection → endpoint, sync and async calls, status reads.

A hook reads its Connection once per instance, through the sync API in workers and the async
API in triggers, into one cache slot. Service hooks add only their own calls (create, stop…);
status reads, retries, rate limiting and error mapping live here and below.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

from airflow_provider_avatar.connection_form import (
    DEFAULT_ALLOW_PRIVATE_HOSTS,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_SCHEME,
    SCHEMES,
)
from airflow_provider_avatar.exceptions import (
    AvatarError,
    AvatarInputError,
    AvatarRateLimitedError,
    AvatarSubmitUnknownError,
    AvatarTaskFailedError,
    AvatarTransientError,
)
from airflow_provider_avatar.protocols.base import ApiResponse, Credentials, RequestSpec, ServiceProtocol
from airflow_provider_avatar.services import Service, service_info
from airflow_provider_avatar.status import TaskStatus, redact_url
from airflow_provider_avatar.transport.policy import RetryPolicy

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_avatar.transport.aio import AsyncTransport
    from airflow_provider_avatar.transport.endpoint import Endpoint
    from airflow_provider_avatar.transport.sync import SyncTransport

T = TypeVar("T")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _as_float(name: str, value: Any, default: float | None) -> float | None:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"connection extra {name!r} must be a number; got {value!r}") from None
    if number <= 0:
        raise ValueError(f"connection extra {name!r} must be positive; got {value!r}")
    return number


def _rates(name: str, value: Any) -> dict[str, float]:
    """``{"action": requests per second}`` from a connection extra (a dict, or JSON text from a form)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"connection extra {name!r} must be a JSON object; got {value!r}") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"connection extra {name!r} must map action names to requests per second; got {value!r}")
    rates = {str(action): _as_float(f"{name}.{action}", rate, None) for action, rate in value.items()}
    unset = sorted(action for action, rate in rates.items() if rate is None)
    if unset:
        raise ValueError(f"connection extra {name!r} has no rate for {unset}")
    return {action: rate for action, rate in rates.items() if rate is not None}


@dataclass(frozen=True, slots=True)
class HookConfig:
    """Everything read from a Connection, validated. ``repr`` hides the credentials."""

    base_url: str
    credentials: Credentials = field(repr=False)
    max_qps: float | None
    #: Rates of actions with a budget of their own (action name → requests/s).
    action_max_qps: Mapping[str, float]
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    allow_private_hosts: bool
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)


class AvatarBaseHook(BaseHook):
    """Base hook. Subclasses set ``protocol``; Airflow's class attributes (``conn_type``,
    ``hook_name``, ``default_conn_name``, ``conn_name_attr``) come from the service's row in
    :mod:`airflow_provider_avatar.services`.

    The connection id is accepted as ``conn_id`` or as the service's ``<service>_conn_id``
    (``conn_name_attr``, what Airflow's "Test connection" passes), and kept under both names.
    """

    conn_name_attr: ClassVar[str] = "conn_id"
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    protocol: ClassVar[ServiceProtocol]
    #: Modules the async path (triggers) imports lazily; a trigger imports them in a worker thread
    #: before its first poll, so the triggerer's event loop never waits for an import.
    async_modules: ClassVar[tuple[str, ...]] = ("airflow_provider_avatar.transport.aio",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        protocol = cls.__dict__.get("protocol")
        if protocol is not None:
            row = service_info(protocol.service)
            cls.conn_type, cls.hook_name = row.key, row.name
            cls.default_conn_name, cls.conn_name_attr = row.default_conn_id, row.conn_id_param

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        named = kwargs.pop(self.conn_name_attr, None)
        conn_id = conn_id if named is None else named
        super().__init__(**kwargs)
        if conn_id is not None and (not isinstance(conn_id, str) or not conn_id.strip()):
            # A template that rendered nothing must not fall back to the default connection (another account).
            raise AvatarInputError(
                f"{self._conn_param} is empty; give an Airflow connection id, or leave it unset for "
                f"{self.default_conn_name!r}; got {conn_id!r}",
                service=self.service,
                action="read_connection",
            )
        self.conn_id = conn_id.strip() if conn_id is not None else self.default_conn_name
        if self.conn_name_attr != "conn_id":
            setattr(self, self.conn_name_attr, self.conn_id)
        self._config: HookConfig | None = None
        self._config_read: asyncio.Future[HookConfig] | None = None
        self._endpoint: Endpoint | None = None
        self._sync: SyncTransport | None = None
        #: The async transport of the session last used (a triggerer's poller passes the same one).
        self._async: AsyncTransport | None = None
        #: Called with the action just before a create leaves (after its input was checked): the
        #: operators' submit guard records there that this try may have sent it.
        self.before_submit: Callable[[str], None] | None = None

    @property
    def service(self) -> str:
        return self.protocol.service

    @property
    def _conn_param(self) -> str:
        """How operators and sensors name the connection id: ``<key>_conn_id`` (``conn_id`` in generic ones)."""
        return f"{self.conn_name_attr} (conn_id)" if self.conn_name_attr != "conn_id" else "conn_id"

    def _undefined(self) -> AvatarInputError:
        return AvatarInputError(
            f"connection {self.conn_id!r} is not defined ({self._conn_param}): create it, or fix the id",
            service=self.service,
            action="read_connection",
        )

    @property
    def info(self) -> Service:
        """The service's registry row: connection form, defaults."""
        return service_info(self.service)

    # -- connection ----------------------------------------------------------------------------
    def build_config(
        self,
        host: str | None,
        port: int | None,
        schema: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any],
    ) -> HookConfig:
        """Turn connection fields into a validated config (no I/O; shared by sync and async)."""

        def missing(what: str) -> AvatarInputError:
            return AvatarInputError(
                f"connection {self.conn_id!r} has no {what}", service=self.service, action="read_connection"
            )

        form = self.info.form
        if not password:
            raise missing(f"{form.secret_label} in its password field")
        if form.login_required and not login:
            raise missing(f"{form.relabel.get('login', 'login')} in its login field")
        base_url = (host or "").strip()
        if not base_url:
            if self.info.default_base_url is None:  # no public host (e.g. a gateway): the connection names one
                raise missing(f"{form.relabel.get('host', 'host')} in its host field (there is no default host)")
            base_url = self.info.default_base_url
        elif "://" not in base_url:
            scheme = str(extra.get("scheme") or DEFAULT_SCHEME)
            base_url = f"{scheme}://{base_url}{f':{port}' if port else ''}"
            if schema:
                base_url = f"{base_url}/{schema.strip('/')}"
        parts = urlsplit(base_url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise AvatarInputError(
                f"connection {self.conn_id!r} has an invalid API base URL {redact_url(base_url)!r}; "
                "expected http(s)://host[:port]/path",
                service=self.service,
                action="read_connection",
            )
        try:
            max_qps = _as_float("max_qps", extra.get("max_qps"), self.info.default_max_qps)
            action_max_qps = {
                **self.protocol.default_action_max_qps,
                **_rates("action_max_qps", extra.get("action_max_qps")),
            }
            connect_timeout = _as_float("connect_timeout", extra.get("connect_timeout"), DEFAULT_CONNECT_TIMEOUT)
            read_timeout = _as_float("read_timeout", extra.get("read_timeout"), DEFAULT_READ_TIMEOUT)
            attempts = float(_as_float("max_attempts", extra.get("max_attempts"), DEFAULT_MAX_ATTEMPTS) or 0.0)
            if not attempts.is_integer():
                raise ValueError(f"connection extra 'max_attempts' must be a whole number; got {attempts:g}")
            max_attempts = int(attempts)
        except ValueError as exc:
            raise AvatarInputError(str(exc), service=self.service, action="read_connection") from None
        return HookConfig(
            base_url=base_url.rstrip("/"),
            credentials=Credentials(secret=password, login=login),
            max_qps=max_qps,
            action_max_qps=action_max_qps,
            connect_timeout=connect_timeout or DEFAULT_CONNECT_TIMEOUT,
            read_timeout=read_timeout or DEFAULT_READ_TIMEOUT,
            max_attempts=max_attempts,
            allow_private_hosts=_as_bool(extra.get("allow_private_hosts", DEFAULT_ALLOW_PRIVATE_HOSTS)),
            extra=dict(extra),
        )

    @property
    def config(self) -> HookConfig:
        """The connection, read once (sync API: workers and poke-mode sensors)."""
        if self._config is None:
            try:
                conn = self.get_connection(self.conn_id)
            except AirflowNotFoundException:
                raise self._undefined() from None
            self._config = self.build_config(
                conn.host, conn.port, conn.schema, conn.login, conn.password, conn.extra_dejson
            )
        return self._config

    async def aconfig(self) -> HookConfig:
        """The connection, read once through Airflow's async API (triggers).

        Concurrent first callers (many triggers sharing this hook) wait for one read; a failed
        read is not cached, so the next caller tries again.
        """
        if self._config is None:
            if self._config_read is None:
                self._config_read = asyncio.ensure_future(self._read_config())
            read = self._config_read
            try:
                self._config = await asyncio.shield(read)
            except BaseException:
                if read.done() and self._config_read is read:
                    self._config_read = None
                raise
        return self._config

    async def _read_config(self) -> HookConfig:
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        try:
            conn = await get_async_connection(self.conn_id, hook=self)
            extra = await get_async_extra_dejson(conn)
        except AirflowNotFoundException:
            raise self._undefined() from None
        except Exception as exc:
            # A triggerer re-reads connections (shared hooks are rebuilt every few minutes): an API
            # server hiccup or a connection being edited must not end every wait polling just then.
            err = AvatarTransientError(
                f"could not read connection {self.conn_id!r} ({type(exc).__name__}: {exc})",
                service=self.service,
                action="read_connection",
            )
            err.sent = False
            raise err from exc
        return self.build_config(conn.host, conn.port, conn.schema, conn.login, conn.password, extra)

    def _endpoint_for(self, config: HookConfig) -> Endpoint:
        if self._endpoint is None:
            from airflow_provider_avatar.transport.endpoint import Endpoint
            from airflow_provider_avatar.transport.ratelimit import RateLimits

            self._endpoint = Endpoint(
                protocol=self.protocol,
                base_url=config.base_url,
                credentials=config.credentials,
                limits=RateLimits(self.conn_id, config.max_qps, self.protocol.rate_scope, dict(config.action_max_qps)),
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
                policy=RetryPolicy(max_attempts=config.max_attempts),
            )
        return self._endpoint

    # -- calls ---------------------------------------------------------------------------------
    def call(self, spec: RequestSpec, *, policy: RetryPolicy | None = None, check: bool = True) -> ApiResponse:
        """Send a request synchronously (one ``requests.Session`` per hook)."""
        if self._sync is None:
            from airflow_provider_avatar.transport.sync import SyncTransport

            self._sync = SyncTransport(self._endpoint_for(self.config))
        return self._sync.call(spec, policy=policy, check=check)

    def submit(self, spec: RequestSpec, parse: Callable[[ApiResponse], T]) -> T:
        """Send a create (non-idempotent) call and parse its answer.

        When its outcome is unknown (the request may have arrived but the answer was lost or
        unreadable) the error becomes :class:`AvatarSubmitUnknownError`, which Airflow does not
        retry, so a task retry cannot create (and bill) a second remote task.
        """
        if self.before_submit is not None:
            self.config  # noqa: B018 - a connection error is raised here, before the guard records a send
            self.before_submit(spec.action)
        try:
            return parse(self.call(spec))
        except AvatarError as exc:
            if not exc.transient or not exc.sent or isinstance(exc, AvatarRateLimitedError):
                raise
            raise exc.restated(
                AvatarSubmitUnknownError,
                f"the {spec.action} request may have reached {self.service} but its answer was lost "
                f"({exc.detail}); not retried so no second task is created: check the service before re-running",
            ) from exc

    def acall(
        self, spec: RequestSpec, *, session: aiohttp.ClientSession | None = None, policy: RetryPolicy | None = None
    ) -> Awaitable[ApiResponse]:
        """Send a request from a coroutine (``await hook.acall(...)``) over ``session``, or else the
        loop's shared aiohttp session.

        Not a coroutine function itself: a poller's read (its session, the transport built) goes
        straight to the transport's coroutine, one coroutine less on every poll.
        """
        transport = self._async
        if session is not None and transport is not None and transport.session is session:
            return transport.call(spec, policy=policy)
        return self._acall(spec, session, policy)

    async def _acall(
        self, spec: RequestSpec, session: aiohttp.ClientSession | None, policy: RetryPolicy | None
    ) -> ApiResponse:
        from airflow_provider_avatar.transport.aio import AsyncTransport, shared_session

        endpoint = self._endpoint_for(await self.aconfig())
        if session is not None:
            transport = self._async = AsyncTransport(endpoint, session)
            return await transport.call(spec, policy=policy)
        async with shared_session() as leased:
            return await AsyncTransport(endpoint, leased).call(spec, policy=policy)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    # -- status (shared by every service) ------------------------------------------------------
    def get_status(self, remote_task_id: str) -> TaskStatus:
        spec = self.protocol.build_status_request(self._require_id(remote_task_id))
        return self.protocol.parse_status(remote_task_id, self.call(spec))

    async def aget_status(
        self, remote_task_id: str, *, session: aiohttp.ClientSession | None = None, policy: RetryPolicy | None = None
    ) -> TaskStatus:
        spec = self.protocol.build_status_request(self._require_id(remote_task_id))
        return self.protocol.parse_status(remote_task_id, await self.acall(spec, session=session, policy=policy))

    def fresh_video_url(self, remote_task_id: str) -> str:
        """A download URL for a finished task, signed now (statuses in XCom carry it without its query).

        The default reads the status and returns its ``video_url``. A service that needs a second
        call to turn the result into a URL (e.g. a file id) overrides this; the download operator
        calls it for every service.
        """
        status = self.get_status(remote_task_id)
        if not status.video_url:
            raise AvatarTaskFailedError(
                f"task is {status.state.value} and has no video to download",
                service=self.service,
                action="fresh_video_url",
                remote_task_id=remote_task_id,
                code=status.error_code,
                request_id=status.request_id,
            )
        return status.video_url

    def _require_id(self, remote_task_id: str, action: str = "get_status") -> str:
        if not isinstance(remote_task_id, str) or not remote_task_id.strip():
            raise AvatarInputError(
                f"remote_task_id must be a non-empty string; got {remote_task_id!r}",
                service=self.service,
                action=action,
            )
        return remote_task_id.strip()

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call; it passes only when the service itself accepts the key."""
        try:
            response = self.call(self.protocol.build_test_request(), policy=RetryPolicy(max_attempts=1), check=False)
        except AvatarError as exc:
            return False, str(exc)
        return self.protocol.judge_test_answer(response)
