"""The one place the wait logic reads time and sleeps, so tests can run it on a fake clock.

The trigger, the sensor, the wait decisions and the rate limiter call :func:`current` on every
read instead of ``time``/``asyncio`` directly. Production always runs on :data:`SYSTEM_CLOCK`;
tests swap in :class:`airflow_provider_avatar.testing.clock.FakeClock` with :func:`use_clock`,
which makes every timing assertion exact. The clock is never serialized with a trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager


class Clock:
    """The system clock: wall time, monotonic time, a blocking and an async sleep, an async timeout."""

    def time(self) -> float:
        """Epoch seconds (deadlines, grace periods, signatures)."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds for measuring intervals (rate limits, hook age)."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block the calling thread (worker code only, never the event loop)."""
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """Cancel the enclosed block after ``seconds`` and raise ``TimeoutError`` (like ``asyncio.timeout``)."""
        return asyncio.timeout(seconds)


SYSTEM_CLOCK = Clock()
_active: Clock = SYSTEM_CLOCK


def current() -> Clock:
    """The clock in use (the system clock unless a test swapped it)."""
    return _active


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Run the enclosed block (and everything it starts) on ``clock``; restores the previous one."""
    global _active
    previous, _active = _active, clock
    try:
        yield clock
    finally:
        _active = previous
