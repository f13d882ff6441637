"""Everything about one request attempt that is not I/O, shared by both transports."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.exceptions import AvatarRateLimitedError, AvatarTransientError
from airflow_provider_avatar.protocols.base import ApiResponse, Credentials, RequestSpec, ServiceProtocol
from airflow_provider_avatar.transport.policy import RetryPolicy
from airflow_provider_avatar.transport.ratelimit import RateLimiter, RateLimits


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    method: str
    url: str
    params: Mapping[str, str]
    json: Any
    #: Read-only: requests of an unsigned service share one headers dict.
    headers: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A service's API origin plus what it takes to talk to it (no I/O objects here).

    What does not change between requests is worked out once: the base URL to join paths to
    and, for a service whose authorisation does not sign each request (Bearer), its headers.
    """

    protocol: ServiceProtocol
    base_url: str
    credentials: Credentials = field(repr=False)
    limits: RateLimits
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    _root: str = field(init=False, repr=False, compare=False)
    #: What the protocol's authorisation adds to every request when it does not sign each one
    #: (Bearer), else ``None``; and the headers of a request that has none of its own.
    _auth_headers: Mapping[str, str] | None = field(init=False, repr=False, compare=False)
    _plain_headers: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_root", self.base_url.rstrip("/") + "/")
        auth: Mapping[str, str] | None = None
        if type(self.protocol).authorize is ServiceProtocol.authorize:
            # The default authorisation adds the same headers to every request (no time, no
            # nonce): ask it once, with an empty request, instead of on every poll.
            blank = RequestSpec(action="", method="GET", path="")
            auth = dict(self.protocol.authorize(blank, self.credentials, now=0.0, nonce="").headers)
        object.__setattr__(self, "_auth_headers", auth)
        object.__setattr__(self, "_plain_headers", {"Accept": "application/json", **(auth or {})})

    @property
    def service(self) -> str:
        return self.protocol.service

    def limiter(self, spec: RequestSpec) -> RateLimiter:
        """The budget this request draws from (see :class:`RateLimits`)."""
        return self.limits.for_action(spec.action)

    def prepare(self, spec: RequestSpec) -> PreparedRequest:
        """Sign one attempt: signed services need a fresh nonce and timestamp every time."""
        auth = self._auth_headers
        if auth is not None:
            signed = spec
            # The same merge as below: the request's own headers, then the credentials.
            headers = {"Accept": "application/json", **spec.headers, **auth} if spec.headers else self._plain_headers
        else:
            signed = self.protocol.authorize(spec, self.credentials, now=clock().time(), nonce=secrets.token_hex(8))
            headers = {"Accept": "application/json", **signed.headers}
        url = self._root + signed.path.lstrip("/") if signed.path else self.base_url
        return PreparedRequest(signed.method, url, signed.params, signed.json, headers)

    def throttled(self, spec: RequestSpec) -> AvatarRateLimitedError:
        """The error for a caller whose turn (rate limit or a 429 pause) is beyond the retry cap."""
        wait = self.limiter(spec).wait_needed(clock().monotonic())
        rate = self.limits.per_action.get(spec.action)
        budget = (
            "max_qps or a Retry-After"
            if rate is None
            else f"{spec.action} has its own budget of {rate * 60:g} per minute (action_max_qps) or a Retry-After"
        )
        err = AvatarRateLimitedError(
            f"connection is rate limited for another {wait:.0f}s ({budget})",
            service=self.service,
            action=spec.action,
            remote_task_id=spec.remote_task_id,
            retry_after=wait,
        )
        err.sent = False
        return err

    def finish(
        self, spec: RequestSpec, status: int, headers: Mapping[str, str], body: bytes, *, check: bool = True
    ) -> ApiResponse:
        """Classify an answer; a 429 pauses every caller of this connection for its Retry-After.

        ``headers`` is the client's case-insensitive mapping, kept as it is (no copy per poll).
        """
        response = ApiResponse(status=status, headers=headers, body=body)
        if not check:
            return response
        try:
            self.protocol.check(spec, response, now=clock().time())
        except AvatarRateLimitedError as exc:
            if exc.retry_after:
                self.limiter(spec).pause(clock().monotonic(), exc.retry_after)
            raise
        return response

    def network_error(self, spec: RequestSpec, exc: BaseException, *, sent: bool) -> AvatarTransientError:
        """Wrap a client library error. Only its class name is kept: its text can hold a signed URL."""
        err = AvatarTransientError(
            f"network error talking to the API ({type(exc).__name__})",
            service=self.service,
            action=spec.action,
            remote_task_id=spec.remote_task_id,
        )
        err.sent = sent
        return err
