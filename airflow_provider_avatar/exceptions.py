"""Typed errors. Every message names service, action, remote task id, service code and request id.

None of them ever carries a secret: messages are built only from the structured fields below,
which callers fill from response envelopes, never from credentials or signed URLs.
"""

from __future__ import annotations

from typing import Any, TypeVar

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, AirflowSensorTimeout

from airflow_provider_avatar.status import redact_urls_in

E = TypeVar("E", bound="AvatarError")

#: Characters of a message kept: a service's error body can be long, and it goes to XCom and logs.
MAX_DETAIL = 1000


class AvatarError(AirflowException):
    """Base class of every error this provider raises about a remote service."""

    #: Machine-readable reason used in trigger events; maps back to the class (see ``error_for_reason``).
    reason = "error"
    #: Whether waiting (polling again later) can make this error go away.
    transient = False
    #: False only when the service surely did not act on the request: it never arrived
    #: (connection refused) or the service refused it outright (e.g. "not ready yet, retry").
    sent = True

    def __init__(
        self,
        message: str,
        *,
        service: str,
        action: str,
        remote_task_id: str | None = None,
        code: str | int | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        # A service's own message may quote a signed URL (an input it echoes): never keep its query.
        self.detail = redact_urls_in(message)[:MAX_DETAIL]
        self.service = service
        self.action = action
        self.remote_task_id = remote_task_id
        self.code = None if code is None else str(code)
        self.request_id = request_id
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"service={self.service}", f"action={self.action}"]
        if self.remote_task_id:
            parts.append(f"remote_task_id={self.remote_task_id}")
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return f"{self.detail} [{', '.join(parts)}]"

    def restated(self, cls: type[E], message: str) -> E:
        """This error's context (service, action, remote task id, code, request id, HTTP status)
        under another class and message: what the error means for the caller."""
        return cls(
            message,
            service=self.service,
            action=self.action,
            remote_task_id=self.remote_task_id,
            code=self.code,
            request_id=self.request_id,
            http_status=self.http_status,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives for trigger events; rebuilt by :func:`error_from_dict`."""
        return {
            "reason": self.reason,
            "message": self.detail,
            "service": self.service,
            "action": self.action,
            "remote_task_id": self.remote_task_id,
            "code": self.code,
            "request_id": self.request_id,
            "http_status": self.http_status,
            "retry_after": self.retry_after,
        }


class AvatarAuthError(AvatarError):
    """Credentials rejected or permission missing: fails at the first answer."""

    reason = "auth"


class AvatarNotFoundError(AvatarError):
    """The remote task (or resource) does not exist for these credentials."""

    reason = "not_found"


class AvatarInvalidRequestError(AvatarError):
    """The service rejected the request as invalid (permanent input or content error)."""

    reason = "invalid_request"


class AvatarInputError(AvatarError, ValueError):
    """Bad input caught locally, before anything was sent."""

    reason = "invalid_input"


class AvatarRateLimitedError(AvatarError):
    """HTTP 429 or a service quota/concurrency code; ``retry_after`` holds the server's hint."""

    reason = "rate_limited"
    transient = True


class AvatarTransientError(AvatarError):
    """5xx, connection reset, read timeout, gateway error page: polling again may succeed."""

    reason = "transient"
    transient = True


class AvatarBadResponseError(AvatarError):
    """The answer could not be understood (not JSON, wrong envelope)."""

    reason = "bad_response"
    transient = True


class AvatarTaskFailedError(AvatarError):
    """The remote task reached a failure state (or succeeded without a result)."""

    reason = "failed"


class AvatarSubmitUnknownError(AvatarError, AirflowFailException):
    """A create may have reached the service but its answer was lost.

    Subclasses ``AirflowFailException`` so Airflow does not retry the task: a retry would send a
    second create and could bill a second remote task. Check the service before re-running.
    """

    reason = "submit_unknown"


class AvatarTimeoutError(AvatarError, AirflowSensorTimeout):
    """The wait's deadline passed before the remote task reached a target state.

    Subclasses ``AirflowSensorTimeout`` so ``soft_fail`` and retries treat it as a sensor timeout.
    """

    reason = "timeout"


class AvatarDownloadError(AvatarError):
    """A download could not be completed and verified; nothing was published."""

    reason = "download"


class AvatarDestinationError(AvatarInputError, AvatarDownloadError):
    """A download destination refused before anything was fetched: it exists (without ``overwrite``),
    is a directory, cannot be written or needs a filesystem package the worker lacks.

    An input error (nothing was sent or written), and a download error for code that catches those.
    """


class AvatarUnsafeURLError(AvatarError):
    """A URL was refused: not http(s), or a private/loopback host not allowed by the connection."""

    reason = "unsafe_url"


_BY_REASON: dict[str, type[AvatarError]] = {
    cls.reason: cls
    for cls in (
        AvatarError,
        AvatarAuthError,
        AvatarNotFoundError,
        AvatarInvalidRequestError,
        AvatarInputError,
        AvatarRateLimitedError,
        AvatarTransientError,
        AvatarBadResponseError,
        AvatarTaskFailedError,
        AvatarTimeoutError,
        AvatarSubmitUnknownError,
        AvatarDownloadError,
        AvatarUnsafeURLError,
    )
}


def error_for_reason(reason: str | None) -> type[AvatarError]:
    """The exception class for a machine-readable reason; unknown reasons get the base class."""
    return _BY_REASON.get(reason or "", AvatarError)


def error_from_dict(data: dict[str, Any]) -> AvatarError:
    """Rebuild an error serialized by :meth:`AvatarError.to_dict` (e.g. from a trigger event)."""
    cls = error_for_reason(data.get("reason"))
    return cls(
        str(data.get("message") or "remote task error"),
        service=str(data.get("service") or "unknown"),
        action=str(data.get("action") or "unknown"),
        remote_task_id=data.get("remote_task_id"),
        code=data.get("code"),
        request_id=data.get("request_id"),
        http_status=data.get("http_status"),
        retry_after=data.get("retry_after"),
    )
