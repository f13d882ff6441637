"""Transport through a vendor SDK client's ``call(action, params)`` (Tencent Cloud's SDK, for TRTC).

The SDK signs each request (TC3-HMAC-SHA256) and returns the raw answer body; every decision
stays where it is for HTTP services: retries in the shared tenacity loop (the SDK's own retryer
is never set), pacing by the connection's limiter, answers checked by ``protocol.check``, and
SDK exceptions turned into typed errors by the protocol's ``error_from_sdk``.

The SDK is synchronous. The async twin runs one attempt at a time in a bounded process-wide
thread pool, under its own timeout, so the triggerer's event loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.exceptions import AvatarBadResponseError, AvatarError, AvatarInputError
from airflow_provider_avatar.protocols.base import ApiResponse, RequestSpec
from airflow_provider_avatar.transport.aio import AsyncTransport
from airflow_provider_avatar.transport.endpoint import Endpoint
from airflow_provider_avatar.transport.sync import SyncTransport, _never_sent

#: Threads shared by every async SDK call of the process: bounded, so many waits queue instead
#: of starting a thread each (the limiter paces them anyway).
MAX_WORKERS = 8

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    """The process-wide pool for SDK calls, created on first use."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="avatar-sdk")
    return _pool


class SdkClient(Protocol):
    """What the transport uses of an SDK client (``AbstractClient.call`` of Tencent's SDK)."""

    def call(self, action: str, params: Mapping[str, Any]) -> bytes | str: ...


@runtime_checkable
class SdkErrors(Protocol):
    """What a protocol must offer to be used over an SDK: SDK failures → typed errors."""

    def error_from_sdk(
        self, spec: RequestSpec, code: str | None, message: str | None, request_id: str | None
    ) -> AvatarError: ...


def _errors(endpoint: Endpoint) -> SdkErrors:
    if not isinstance(endpoint.protocol, SdkErrors):
        raise TypeError(f"{type(endpoint.protocol).__name__} cannot be used over an SDK (no error_from_sdk)")
    return endpoint.protocol


def send_once(client: SdkClient, endpoint: Endpoint, spec: RequestSpec) -> bytes:
    """One SDK call, blocking: the raw body, or the typed error its failure stands for."""
    if not isinstance(spec.json, Mapping):
        raise AvatarInputError("an SDK request needs a parameter object", service=endpoint.service, action=spec.action)
    try:
        body = client.call(spec.action, dict(spec.json))
    except TencentCloudSDKException as exc:
        err = _errors(endpoint).error_from_sdk(spec, exc.code, exc.message, exc.requestId)
        # The SDK keeps the client library's error only as text; the chained one says whether a
        # connection was ever made (refused or connect timeout: the request never left).
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, requests.RequestException) and _never_sent(cause):
            err.sent = False
        raise err from None
    except requests.RequestException as exc:  # the SDK reads the body outside its own error wrapper
        raise endpoint.network_error(spec, exc, sent=True) from None
    except Exception as exc:  # the SDK parsing an answer that is not its JSON (KeyError, ValueError...)
        raise AvatarBadResponseError(
            f"the SDK could not read the answer ({type(exc).__name__})",
            service=endpoint.service,
            action=spec.action,
            remote_task_id=spec.remote_task_id,
        ) from None
    return body.encode() if isinstance(body, str) else bytes(body)


class SdkTransport(SyncTransport):
    """The sync transport's retry loop with one SDK call per attempt (workers, poke mode)."""

    def __init__(self, endpoint: Endpoint, client: SdkClient) -> None:  # no requests.Session of our own
        _errors(endpoint)
        self.endpoint = endpoint
        self.client = client

    def close(self) -> None:
        session = getattr(getattr(getattr(self.client, "request", None), "conn", None), "_session", None)
        if session is not None:
            session.close()

    def _attempt(self, spec: RequestSpec, check: bool) -> ApiResponse:
        endpoint = self.endpoint
        if not endpoint.limiter(spec).acquire(endpoint.policy.cap):
            raise endpoint.throttled(spec)
        body = send_once(self.client, endpoint, spec)
        # The SDK has already checked the HTTP status (only a 200 returns) and parsed the error
        # when the content type is exactly JSON; the protocol checks the body again either way.
        return endpoint.finish(spec, 200, {}, body, check=check)


class AsyncSdkTransport(AsyncTransport):
    """The async transport's retry loop with the SDK call in :func:`executor`, bounded by a timeout;
    the limiter is awaited on the loop."""

    def __init__(self, endpoint: Endpoint, client: SdkClient, *, timeout: float | None = None) -> None:
        _errors(endpoint)
        self.endpoint = endpoint
        self.client = client
        #: Longer than the SDK's own request timeout, which ends the thread's call first.
        self.timeout = timeout if timeout is not None else endpoint.connect_timeout + endpoint.read_timeout

    async def _attempt(self, spec: RequestSpec, check: bool) -> ApiResponse:
        endpoint = self.endpoint
        if not await endpoint.limiter(spec).acquire_async(endpoint.policy.cap):
            raise endpoint.throttled(spec)
        body = await run_in_pool(lambda: send_once(self.client, endpoint, spec), self.timeout, endpoint, spec)
        return endpoint.finish(spec, 200, {}, body, check=check)


async def run_in_pool(fn: Callable[[], Any], timeout: float, endpoint: Endpoint, spec: RequestSpec) -> Any:
    """Run blocking ``fn`` in the shared pool; a timeout is a transient error that may have been sent.

    A cancelled wait leaves the thread to finish its call (bounded by the SDK's own timeout).
    """
    loop = asyncio.get_running_loop()
    try:
        async with clock().timeout(timeout):
            return await loop.run_in_executor(executor(), fn)
    except TimeoutError as exc:
        raise endpoint.network_error(spec, exc, sent=True) from None
