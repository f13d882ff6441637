"""A per-connection request-rate limiter shared by the sync and async transports.

One limiter per connection id (and budget scope) per process: in a triggerer, every trigger
waiting on the same connection shares it, so N waits together stay within the connection's
``max_qps``. A 429's ``Retry-After`` pauses the whole budget, not only the caller that saw it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.protocols.base import ALL_ACTIONS

#: Pace this far below ``max_qps``: servers count requests on arrival, in windows, and network
#: jitter can squeeze one more into a window than were sent in it. 10% absorbs ~100 ms at 10/s.
HEADROOM = 0.9


class RateLimiter:
    """Hands out send times at most ``rate`` per second (a GCRA-style schedule, burst 1).

    ``reserve`` does the bookkeeping under a lock and returns the delay; callers sleep
    themselves (the clock's ``sleep`` or ``asleep``), so the limiter never blocks a loop.
    """

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("max_qps must be positive")
        self.interval = 0.0 if rate is None else 1.0 / (rate * HEADROOM)
        self._next = 0.0
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def reserve(self, now: float, max_wait: float = float("inf")) -> float | None:
        """Claim the next send slot and return the wait before it, or ``None`` (nothing claimed)
        when that wait would exceed ``max_wait``."""
        if not self.interval and now >= self._paused_until:
            return 0.0  # no rate and no pause: nothing to book (thousands of polls a second)
        with self._lock:
            slot = max(now, self._next, self._paused_until)
            if slot - now > max_wait:
                return None
            self._next = slot + self.interval
            return slot - now

    def pause(self, now: float, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (a server-sent ``Retry-After``)."""
        with self._lock:
            self._paused_until = max(self._paused_until, now + seconds)

    def wait_needed(self, now: float) -> float:
        """How long a caller arriving now would wait (for error messages)."""
        with self._lock:
            return max(now, self._next, self._paused_until) - now

    def late(self, slot: float, now: float) -> bool:
        """Did a caller wake too long after its slot? Then it must take a new one: callers woken
        together after a stall (a busy loop, GC, a loaded machine) would otherwise send in a burst."""
        return self.interval > 0 and now - slot > min(0.05, self.interval / 2)

    def acquire(self, max_wait: float = float("inf")) -> bool:
        """Sleep until this caller's slot; False (no sleep) if that is more than ``max_wait`` away."""
        while True:
            now = clock().monotonic()
            delay = self.reserve(now, max_wait)
            if delay is None:
                return False
            if delay > 0:
                clock().sleep(delay)
            if not self.late(now + delay, clock().monotonic()):
                return True

    async def acquire_async(self, max_wait: float = float("inf")) -> bool:
        while True:
            now = clock().monotonic()
            delay = self.reserve(now, max_wait)
            if delay is None:
                return False
            if delay > 0:
                await clock().asleep(delay)
            if not self.late(now + delay, clock().monotonic()):
                return True


_limiters: dict[tuple[str, str, float | None], RateLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(conn_id: str, max_qps: float | None, scope: str = ALL_ACTIONS) -> RateLimiter:
    """The process-wide limiter of a connection's budget ``scope`` (created on first use)."""
    key = (conn_id, scope, max_qps)
    limiter = _limiters.get(key)  # the common case takes no lock: one lookup per request
    if limiter is None:
        with _registry_lock:
            limiter = _limiters.setdefault(key, RateLimiter(max_qps))
    return limiter


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The budgets of one connection, by action.

    Every action draws from one shared budget of ``max_qps`` unless ``scope_of`` gives it a
    budget of its own (ZEGO counts each API separately) or ``per_action`` names a rate for it
    (the service's documented limit on creates, or the connection's ``action_max_qps`` extra).
    """

    conn_id: str
    max_qps: float | None
    scope_of: Callable[[str], str] = field(default=lambda action: ALL_ACTIONS)
    per_action: Mapping[str, float] = field(default_factory=dict)

    def for_action(self, action: str) -> RateLimiter:
        rate = self.per_action.get(action)
        if rate is not None:
            return limiter_for(self.conn_id, rate, action)
        return limiter_for(self.conn_id, self.max_qps, self.scope_of(action))


def reset_limiters() -> None:
    """Forget every limiter (tests: each test starts with unpaused connections)."""
    with _registry_lock:
        _limiters.clear()
