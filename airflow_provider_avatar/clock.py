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
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Timer(Protocol):
    """A pending :meth:`Clock.call_later` callback."""

    def cancel(self) -> None: ...


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

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` on the running loop after ``seconds`` (like ``loop.call_later``)."""
        return asyncio.get_running_loop().call_later(seconds, callback)

    def future(self) -> asyncio.Future[object]:
        """A future that another task of the running loop resolves (a test clock then knows that a
        task awaiting it waits for the loop, not for I/O)."""
        return asyncio.get_running_loop().create_future()


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
