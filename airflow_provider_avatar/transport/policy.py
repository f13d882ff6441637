"""The retry policy shared by both transports: which errors to retry, and how long to wait.

Pure: tenacity drives it, both transports and the trigger use the same numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tenacity import RetryCallState

from airflow_provider_avatar.exceptions import AvatarError, AvatarRateLimitedError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; ``Retry-After`` is a floor, never shortened."""

    max_attempts: int = 4
    base: float = 0.5
    cap: float = 30.0

    def backoff(self, attempt: int, retry_after: float | None = None, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        jittered = (rng or random).uniform(ceiling / 2, ceiling)
        return max(jittered, retry_after or 0.0)


def should_retry(exc: BaseException, *, idempotent: bool, max_wait: float = float("inf")) -> bool:
    """Retry transient errors; a non-idempotent call only if the server surely did not act on it.

    A 429 means the request was refused, and an error raised before the request was written
    means it never arrived: both are safe to repeat even for a create. A ``Retry-After`` longer
    than ``max_wait`` is not slept out in a worker: the caller gets the error at once.
    """
    if not isinstance(exc, AvatarError) or not exc.transient:
        return False
    if exc.retry_after is not None and exc.retry_after > max_wait:
        return False
    return idempotent or isinstance(exc, AvatarRateLimitedError) or not exc.sent


class TenacityAdapter:
    """Makes a :class:`RetryPolicy` usable as tenacity's ``retry`` and ``wait`` callbacks."""

    def __init__(self, policy: RetryPolicy, *, idempotent: bool) -> None:
        self.policy = policy
        self.idempotent = idempotent

    def retry(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return exc is not None and should_retry(exc, idempotent=self.idempotent, max_wait=self.policy.cap)

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return self.policy.backoff(state.attempt_number, retry_after)
