"""Async transport for triggers: one shared ``aiohttp.ClientSession`` per event loop.

Every trigger of a loop leases the same keep-alive pool (docs/architecture.md, "Decisions": ~0.33 ms CPU
per poll at 5,000 waits). The session closes when its last lease is returned, so nothing is
left open between test loops or after the last trigger of a triggerer finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING

import aiohttp
from tenacity import AsyncRetrying, stop_after_attempt

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.protocols.base import ApiResponse, RequestSpec
from airflow_provider_avatar.transport.policy import RetryPolicy, TenacityAdapter

if TYPE_CHECKING:
    from airflow_provider_avatar.transport.endpoint import Endpoint


class _Lease:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.count = 0


_leases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lease] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def shared_session() -> AsyncIterator[aiohttp.ClientSession]:
    """Lease the running loop's shared session (created on first use, closed after the last)."""
    loop = asyncio.get_running_loop()
    lease = _leases.get(loop)
    if lease is None or lease.session.closed:
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=0, ttl_dns_cache=300)
        lease = _leases[loop] = _Lease(aiohttp.ClientSession(connector=connector, raise_for_status=False))
    lease.count += 1
    try:
        yield lease.session
    finally:
        lease.count -= 1
        if lease.count == 0 and _leases.get(loop) is lease:
            del _leases[loop]
            await lease.session.close()


@functools.lru_cache(maxsize=64)
def _timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """Connect and read (inactivity) timeouts, the same pair the sync path gives ``requests``.

    No ``total``: aiohttp arms a second timer and a task-bound context for it on every
    request, and the trigger already bounds each poll by its deadline.
    """
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


async def _asleep(seconds: float) -> None:
    """Tenacity's pause between attempts, on the injectable clock."""
    await clock().asleep(seconds)


class AsyncTransport:
    """Sends an endpoint's requests over one session. A hook keeps one per session, so a read
    builds nothing here but the request itself."""

    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession) -> None:
        self.endpoint = endpoint
        self.session = session
        self._timeout = _timeout(endpoint.connect_timeout, endpoint.read_timeout)

    def call(
        self, spec: RequestSpec, *, policy: RetryPolicy | None = None, check: bool = True
    ) -> Awaitable[ApiResponse]:
        """Send ``spec`` (``await transport.call(...)``); not a coroutine itself, so a single attempt
        is the attempt's own coroutine, without one around it."""
        policy = policy or self.endpoint.policy
        if policy.max_attempts <= 1:
            # A trigger's poll: its loop does the backing off. Building tenacity's retry state
            # for a single attempt cost ~10% of the CPU per poll at 5,000 waits (benchmarks/).
            return self._attempt(spec, check)
        return self._retried(spec, policy, check)

    async def _retried(self, spec: RequestSpec, policy: RetryPolicy, check: bool) -> ApiResponse:
        adapter = TenacityAdapter(policy, idempotent=spec.idempotent)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(adapter.policy.max_attempts),
            wait=adapter.wait,
            retry=adapter.retry,
            reraise=True,
            sleep=_asleep,
        )
        return await retrying(self._attempt, spec, check)

    async def _attempt(self, spec: RequestSpec, check: bool) -> ApiResponse:
        endpoint = self.endpoint
        limiter = endpoint.limiter(spec)
        # A free slot is taken without a coroutine (the common case: no rate, or not throttled).
        if limiter.reserve(clock().monotonic(), 0.0) != 0.0 and not await limiter.acquire_async(endpoint.policy.cap):
            raise endpoint.throttled(spec)
        req = endpoint.prepare(spec)
        try:
            async with self.session.request(
                req.method,
                req.url,
                params=req.params or None,
                json=req.json,
                headers=req.headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
        except aiohttp.ClientConnectorError as exc:
            raise endpoint.network_error(spec, exc, sent=False) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise endpoint.network_error(spec, exc, sent=True) from None
        return endpoint.finish(spec, resp.status, resp.headers, body, check=check)
