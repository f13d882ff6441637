"""Synchronous transport for operators and poke-mode sensors: one ``requests.Session`` per hook."""

from __future__ import annotations

import requests
from tenacity import Retrying, stop_after_attempt
from urllib3.exceptions import NewConnectionError

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.protocols.base import ApiResponse, RequestSpec
from airflow_provider_avatar.transport.endpoint import Endpoint
from airflow_provider_avatar.transport.policy import RetryPolicy, TenacityAdapter


def _never_sent(exc: requests.RequestException) -> bool:
    """True when no connection was made, so the server cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    # requests wraps urllib3's MaxRetryError, whose ``reason`` says why the connection failed.
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _sleep(seconds: float) -> None:
    """Tenacity's pause between attempts, on the injectable clock."""
    clock().sleep(seconds)


class SyncTransport:
    def __init__(self, endpoint: Endpoint, session: requests.Session | None = None) -> None:
        self.endpoint = endpoint
        self.session = session or requests.Session()

    def close(self) -> None:
        self.session.close()

    def call(self, spec: RequestSpec, *, policy: RetryPolicy | None = None, check: bool = True) -> ApiResponse:
        """Send ``spec`` with retries; raise a typed :class:`AvatarError` when it cannot succeed."""
        adapter = TenacityAdapter(policy or self.endpoint.policy, idempotent=spec.idempotent)
        retrying = Retrying(
            stop=stop_after_attempt(adapter.policy.max_attempts),
            wait=adapter.wait,
            retry=adapter.retry,
            reraise=True,
            sleep=_sleep,
        )
        return retrying(self._attempt, spec, check)

    def _attempt(self, spec: RequestSpec, check: bool) -> ApiResponse:
        endpoint = self.endpoint
        if not endpoint.limiter(spec).acquire(endpoint.policy.cap):
            raise endpoint.throttled(spec)
        req = endpoint.prepare(spec)
        try:
            resp = self.session.request(
                req.method,
                req.url,
                params=req.params or None,
                json=req.json,
                headers=req.headers,
                timeout=(endpoint.connect_timeout, endpoint.read_timeout),
                allow_redirects=False,
            )
            body = resp.content
        except requests.RequestException as exc:
            raise endpoint.network_error(spec, exc, sent=not _never_sent(exc)) from None
        return endpoint.finish(spec, resp.status_code, resp.headers, body, check=check)
