"""The retry policy and rate limiter are pure: tested as tables, no network, no clock."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from airflow_provider_avatar.clock import use_clock
from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarBadResponseError,
    AvatarError,
    AvatarInvalidRequestError,
    AvatarNotFoundError,
    AvatarRateLimitedError,
    AvatarTransientError,
)
from airflow_provider_avatar.protocols.base import parse_retry_after
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.transport.policy import RetryPolicy, should_retry
from airflow_provider_avatar.transport.ratelimit import HEADROOM, RateLimiter


def _err(cls: type[AvatarError], *, sent: bool = True) -> AvatarError:
    exc = cls("x", service="s", action="a")
    exc.sent = sent
    return exc


@pytest.mark.parametrize(
    ("exc", "idempotent", "retry"),
    [
        (_err(AvatarTransientError), True, True),
        (_err(AvatarRateLimitedError), True, True),
        (_err(AvatarBadResponseError), True, True),
        (_err(AvatarAuthError), True, False),
        (_err(AvatarNotFoundError), True, False),
        (_err(AvatarInvalidRequestError), True, False),
        # a create is repeated only when the server surely did not act on it
        (_err(AvatarTransientError), False, False),
        (_err(AvatarTransientError, sent=False), False, True),
        (_err(AvatarRateLimitedError), False, True),
        (_err(AvatarBadResponseError), False, False),
        (ValueError("bug"), True, False),
    ],
)
def test_should_retry(exc: BaseException, idempotent: bool, retry: bool) -> None:
    assert should_retry(exc, idempotent=idempotent) is retry


def test_backoff_is_capped_jittered_and_honours_retry_after() -> None:
    policy = RetryPolicy(base=1.0, cap=8.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)]:
        delays = {policy.backoff(attempt, rng=rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter
    assert policy.backoff(1, retry_after=20, rng=rng) == 20


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("99999", 3600.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=1445412480.0) == expected


def test_rate_limiter_spaces_requests_and_pauses_on_retry_after() -> None:
    limiter = RateLimiter(10)
    delays = [limiter.reserve(100.0) for _ in range(11)]
    step = 1 / (10 * HEADROOM)  # a little under 10/s, so arrival jitter cannot fit 11 into a second
    assert delays == pytest.approx([n * step for n in range(11)])
    assert delays[10] > 1.0
    assert limiter.reserve(200.0) == 0.0  # idle time does not bank a burst
    limiter.pause(200.0, 5.0)
    assert limiter.reserve(200.0) == pytest.approx(5.0)
    unlimited = RateLimiter(None)
    assert [unlimited.reserve(1.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        RateLimiter(0)


async def test_callers_woken_late_take_new_slots_instead_of_sending_in_a_burst() -> None:
    """A stalled loop (GC, a loaded machine) must not release every overdue caller at once."""
    clock = FakeClock()
    with use_clock(clock):
        limiter = RateLimiter(10)
        sent: list[float] = []

        async def caller() -> None:
            assert await limiter.acquire_async()
            sent.append(clock.monotonic())

        callers = [asyncio.ensure_future(caller()) for _ in range(5)]
        await asyncio.sleep(0)  # every caller has reserved its slot; the first one has sent
        clock.advance(0.6)  # the loop stalls past all of them
        await asyncio.gather(*callers)
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    # after the stall, one send per interval: the overdue callers queue up instead of bursting
    assert gaps == [pytest.approx(0.6)] + [pytest.approx(limiter.interval)] * 3
