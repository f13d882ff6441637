"""``FakeClock``: virtual time for tests of waits, deadlines, backoff and rate limits.

Install it with :func:`airflow_provider_avatar.clock.use_clock` (and hand ``clock.time`` to the
simulator, ``Simulator(clock=...)`` or ``sim.state.clock = ...``, so its task timelines run on
the same time). Then a test asserts exact times and counts, and gets the same history on every
run however busy the machine is::

    clock = FakeClock()
    with use_clock(clock):
        events = asyncio.run(collect(trigger))

Sleeping costs no real time. ``sleep`` advances the clock at once. ``asleep`` parks the caller;
the clock then jumps to the earliest parked wake-up, but only once every task of the loop is
parked on the clock or waiting for another task: a task in the middle of an HTTP exchange (or
any other real I/O) holds virtual time still until it has its answer. So time passes only in
sleeps, in a fixed order, and over real HTTP a request arrives at the virtual time it was sent.
Timeouts (``timeout``) fire on virtual time the same way.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

from airflow_provider_avatar.clock import Clock

log = logging.getLogger(__name__)

#: What ``asyncio.gather`` returns: a task waiting on it waits on other tasks.
_GATHER = "_GatheringFuture"

#: 2026-01-01 00:00:00 UTC: a fixed start, so messages that show times are the same every run.
DEFAULT_START = 1_767_225_600.0


class _Entry:
    __slots__ = ("at", "cancelled", "fire", "seq")

    def __init__(self, at: float, seq: int, fire: Callable[[], None]) -> None:
        self.at, self.seq, self.fire, self.cancelled = at, seq, fire, False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _Entry) -> bool:
        return (self.at, self.seq) < (other.at, other.seq)


class FakeClock(Clock):
    """A clock that moves only when something sleeps on it (see the module docstring).

    :param start: the initial epoch time.
    :param stall_after: real seconds a loop may stay busy (a task waiting on something that is
        neither the clock nor another task) before virtual time moves anyway, with a warning;
        a safety net against a hung test, never reached by a test that only waits on the clock,
        on tasks and on I/O that completes.
    """

    def __init__(self, start: float = DEFAULT_START, *, stall_after: float = 10.0) -> None:
        self._start = float(start)
        #: Virtual seconds since the start: kept apart from the epoch so intervals stay exact.
        self._elapsed = 0.0
        self.stall_after = stall_after
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Entry]] = weakref.WeakKeyDictionary()
        self._armed: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        self._futures: weakref.WeakSet[asyncio.Future[Any]] = weakref.WeakSet()

    # -- reads -------------------------------------------------------------------------------
    def time(self) -> float:
        return self._start + self._elapsed

    def monotonic(self) -> float:
        return 1000.0 + self._elapsed

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was made."""
        return self._elapsed

    # -- moving time -------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (parked async sleepers due by then wake next)."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        with self._lock:
            self._elapsed += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        if seconds <= 0:
            await asyncio.sleep(0)  # still a switch point, like asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = loop.create_future()
        self._futures.add(fut)

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        entry = self._schedule(loop, seconds, wake)
        try:
            await fut
        finally:
            entry.cancelled = True

    def timeout(self, seconds: float) -> _FakeTimeout:
        return _FakeTimeout(self, seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> _Entry:
        return self._schedule(asyncio.get_running_loop(), seconds, callback)

    def future(self) -> asyncio.Future[object]:
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._futures.add(fut)
        return fut

    # -- scheduler ---------------------------------------------------------------------------
    def _schedule(self, loop: asyncio.AbstractEventLoop, seconds: float, fire: Callable[[], None]) -> _Entry:
        entry = _Entry(self._elapsed + max(0.0, seconds), next(self._seq), fire)
        heapq.heappush(self._queues.setdefault(loop, []), entry)
        if loop not in self._armed:
            self._armed.add(loop)
            loop.call_soon(self._advance, loop, None)
        return entry

    def _advance(self, loop: asyncio.AbstractEventLoop, busy_since: float | None) -> None:
        """Wake the earliest sleeper once the loop is quiet; re-arm while sleepers remain."""
        queue = self._queues.get(loop, [])
        while queue and queue[0].cancelled:
            heapq.heappop(queue)
        if not queue or loop.is_closed():
            self._armed.discard(loop)
            return
        busy = self._busy(loop)
        if busy is not None:
            started = busy_since if busy_since is not None else time.monotonic()
            if time.monotonic() - started < self.stall_after:
                # A ready task runs at the next turn; real I/O needs a moment of real time.
                if busy == "ready":
                    loop.call_soon(self._advance, loop, started)
                else:
                    loop.call_later(0.0005, self._advance, loop, started)
                return
            log.warning("FakeClock: the loop stayed busy for %.0fs of real time; moving time anyway", self.stall_after)
        entry = heapq.heappop(queue)
        with self._lock:
            self._elapsed = max(self._elapsed, entry.at)
        entry.fire()
        loop.call_soon(self._advance, loop, None)

    def _busy(self, loop: asyncio.AbstractEventLoop) -> str | None:
        """``"ready"`` if a task is about to run, ``"io"`` if one waits on something other than
        the clock or another task, ``None`` when every task is parked."""
        io = False
        for task in asyncio.all_tasks(loop):
            waiter: Any = getattr(task, "_fut_waiter", None)
            if waiter is None or waiter.done():
                return "ready"
            if waiter in self._futures or isinstance(waiter, asyncio.Task) or type(waiter).__name__ == _GATHER:
                continue
            io = True
        return "io" if io else None


class _FakeTimeout:
    """``asyncio.timeout`` on virtual time: cancels the task when the clock passes the limit."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self._fired = False
        self._entry: _Entry | None = None
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> None:
        self._task = asyncio.current_task()
        if self._task is None:
            raise RuntimeError("FakeClock.timeout() must be used inside a task")
        self._entry = self._clock._schedule(asyncio.get_running_loop(), self._seconds, self._fire)

    def _fire(self) -> None:
        if self._task is not None and not self._task.done():
            self._fired = True
            self._task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._entry is not None:
            self._entry.cancelled = True
        if self._fired and exc_type is asyncio.CancelledError and self._task is not None:
            self._task.uncancel()
            raise TimeoutError from exc
