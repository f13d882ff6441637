"""What every service protocol shares: request/response descriptions and the HTTP error classes.

Pure code (the h11 "sans-I/O" idea applied to REST): a protocol builds :class:`RequestSpec`
values and turns :class:`ApiResponse` values into a :class:`TaskStatus` or a typed exception.
The sync and async transports execute the specs, so both paths share every decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar

from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarBadResponseError,
    AvatarError,
    AvatarInvalidRequestError,
    AvatarNotFoundError,
    AvatarRateLimitedError,
    AvatarTransientError,
)
from airflow_provider_avatar.status import TaskState, TaskStatus, redact_urls_in

#: The budget every action shares unless a protocol splits it (see :meth:`ServiceProtocol.rate_scope`).
ALL_ACTIONS = "*"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a protocol needs to authorise a request. ``repr`` never shows the secret."""

    secret: str = field(repr=False)
    login: str | None = None


#: The empty ``params``/``headers`` of a request: one shared read-only mapping, so the thousands
#: of status requests a triggerer builds per second do not each allocate two empty dicts.
_NONE: Mapping[str, str] = MappingProxyType({})


def _none() -> Mapping[str, str]:
    return _NONE


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A request to send, relative to the connection's base URL."""

    action: str
    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=_none)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=_none)
    #: Safe to send twice. A create is not: it is retried only when it surely never arrived.
    idempotent: bool = True
    remote_task_id: str | None = None

    def with_headers(self, **headers: str) -> RequestSpec:
        return replace(self, headers={**self.headers, **headers})


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """An answer as bytes plus its headers, so protocols can parse it without I/O.

    ``headers`` is a case-insensitive mapping (what the HTTP clients return) or a dict with
    lower-cased keys; read it with :meth:`header`.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped at 1 h."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if now is None:
            return None
        seconds = when.timestamp() - now
    return max(0.0, min(seconds, 3600.0))


def http_error_class(status: int) -> type[AvatarError] | None:
    """Default classification of an HTTP status; ``None`` means success."""
    if status < 400:
        return None
    if status in (401, 403):
        return AvatarAuthError
    if status in (404, 410):
        return AvatarNotFoundError
    if status == 429:
        return AvatarRateLimitedError
    if status in (408, 425) or status >= 500:
        return AvatarTransientError
    return AvatarInvalidRequestError


def _snippet(body: bytes, limit: int = 200) -> str:
    """A short, single-line, printable excerpt of a body for error messages."""
    text = " ".join(body[: limit * 4].decode("utf-8", "replace").split())
    return redact_urls_in(text)[:limit]


class ServiceProtocol:
    """Base class of the per-service pure protocols. Subclasses override the ``build_*``/``parse_*``."""

    service: ClassVar[str]
    #: Sensor defaults: generation jobs wait for SUCCEEDED; stream services override these.
    default_target_states: ClassVar[frozenset[TaskState]] = frozenset({TaskState.SUCCEEDED})
    default_failure_states: ClassVar[frozenset[TaskState]] = frozenset({TaskState.FAILED})
    #: Documented rates (requests/s) of single actions with a budget of their own, e.g. creates
    #: limited per minute while status reads are not. The connection's ``action_max_qps`` wins.
    default_action_max_qps: ClassVar[Mapping[str, float]] = {}

    # -- authorisation -------------------------------------------------------------------------
    def authorize(self, spec: RequestSpec, creds: Credentials, *, now: float, nonce: str) -> RequestSpec:
        """Attach credentials to one attempt. Bearer by default; signed services override it."""
        return spec.with_headers(Authorization=f"Bearer {creds.secret}")

    def rate_scope(self, action: str) -> str:
        """Which request budget of a connection ``action`` draws from: one shared by all actions,
        unless the service counts some separately (then override)."""
        return ALL_ACTIONS

    # -- requests ------------------------------------------------------------------------------
    def build_status_request(self, remote_task_id: str) -> RequestSpec:
        raise NotImplementedError

    def build_test_request(self) -> RequestSpec:
        """A cheap authenticated call for ``test_connection``."""
        raise NotImplementedError

    def build_list_request(self) -> RequestSpec | None:
        """One request that reads the status of many of the account's tasks at once, or ``None``
        when the service has none. Waits of one connection then share it (see :meth:`parse_list`)."""
        return None

    # -- responses -----------------------------------------------------------------------------
    def parse_status(self, remote_task_id: str, response: ApiResponse) -> TaskStatus:
        raise NotImplementedError

    def parse_list(self, response: ApiResponse) -> dict[str, TaskStatus]:
        """The statuses a list answer gives, by remote task id. A task it does not name is not
        thereby gone or ended: it needs its own status read."""
        raise NotImplementedError

    def request_id(self, response: ApiResponse) -> str | None:
        return response.header("x-request-id")

    def status_when_gone(self, exc: AvatarNotFoundError, *, seen: frozenset[TaskState]) -> TaskStatus | None:
        """What "task not found" means for a task this wait already saw (``seen`` is never empty).

        It is decided at once, with no grace: a task that existed and is gone will not come back.
        By default it FAILED (a generation job that vanished has no result); stream services,
        which drop ended tasks, override this to read it as STOPPED after a live stream. ``None``
        keeps it an error (the wait ends with it).
        """
        states = ", ".join(sorted(s.value for s in seen))
        return gone_status(exc, TaskState.FAILED, f"task was no longer found after it was seen {states}")

    def status_when_never_found(self, exc: AvatarNotFoundError) -> TaskStatus | None:
        """What "task not found" means for a task this wait never saw, once the not-found grace is over.

        ``None`` (the default) keeps it the "task was never found" error: most often a wrong id.
        A service whose failed tasks simply vanish (TRTC: a start that fails becomes ``NotExist``)
        returns an end state instead.
        """
        return None

    def error_message(self, response: ApiResponse) -> str:
        """The service's own error text from a body; subclasses read their envelope."""
        return _snippet(response.body) or f"HTTP {response.status}"

    def is_own_answer(self, response: ApiResponse) -> bool:
        """Does this body come from the service itself (not a proxy's or wrong host's error page)?"""
        try:
            response.json()
        except ValueError:
            return False
        return True

    def judge_test_answer(self, response: ApiResponse) -> tuple[bool, str]:
        """``test_connection``'s verdict: the service answered and did not reject the credentials."""
        cls = http_error_class(response.status)
        if cls is not None and (issubclass(cls, AvatarAuthError) or cls.transient):
            return False, f"{self.service} answered HTTP {response.status}: {self.error_message(response)}"
        if not self.is_own_answer(response):
            return False, (
                f"the host answered HTTP {response.status} but not like the {self.service} API: "
                f"check the API base URL ({_snippet(response.body, 80)!r})"
            )
        return True, f"Connection works: the {self.service} API accepted the credentials."

    def check(self, spec: RequestSpec, response: ApiResponse, *, now: float | None = None) -> None:
        """Raise the typed error a response stands for; return quietly on success.

        A 404/410 counts as "not found" only when the service itself says so: a proxy's or load
        balancer's error page during a deploy is transient, or a wait would end on a running task.
        """
        cls = http_error_class(response.status)
        if cls is None:
            return
        if cls is AvatarNotFoundError and not self.is_own_answer(response):
            cls = AvatarTransientError
        retry_after = parse_retry_after(response.header("retry-after"), now=now)
        raise cls(
            self.error_message(response),
            service=self.service,
            action=spec.action,
            remote_task_id=spec.remote_task_id,
            request_id=self.request_id(response),
            http_status=response.status,
            retry_after=retry_after,
        )

    def coded_error(
        self,
        cls: type[AvatarError],
        spec: RequestSpec,
        response: ApiResponse,
        code: str | int,
        message: str,
        hint: str = "",
        *,
        refused: bool = False,
    ) -> AvatarError:
        """The typed error for one of the service's own error codes: its message (plus a hint the
        message does not already say), the code and request id. ``refused`` marks an answer the
        service surely did not act on, so even a create may be sent again."""
        err = cls(
            f"{message} ({hint})" if hint and hint.lower() not in message.lower() else message,
            service=self.service,
            action=spec.action,
            remote_task_id=spec.remote_task_id,
            code=code,
            request_id=self.request_id(response),
            http_status=response.status,
        )
        if refused:
            err.sent = False
        return err

    def json_body(self, spec_action: str, response: ApiResponse, remote_task_id: str | None) -> Any:
        """Decode JSON or raise :class:`AvatarBadResponseError` with a short excerpt."""
        try:
            return response.json()
        except ValueError:
            raise AvatarBadResponseError(
                f"answer is not JSON: {_snippet(response.body)!r}",
                service=self.service,
                action=spec_action,
                remote_task_id=remote_task_id,
                request_id=self.request_id(response),
                http_status=response.status,
            ) from None

    def bad_response(
        self, action: str, response: ApiResponse, remote_task_id: str | None, why: str
    ) -> AvatarBadResponseError:
        return AvatarBadResponseError(
            f"{why}: {_snippet(response.body)!r}",
            service=self.service,
            action=action,
            remote_task_id=remote_task_id,
            request_id=self.request_id(response),
            http_status=response.status,
        )


def gone_status(exc: AvatarNotFoundError, state: TaskState, why: str) -> TaskStatus:
    """The end state a "not found" stands for, carrying the service's code and request id."""
    return TaskStatus(
        service=exc.service,
        remote_task_id=exc.remote_task_id or "",
        state=state,
        raw_status=exc.code,
        error_code=exc.code,
        error_message=why,
        request_id=exc.request_id,
    )
