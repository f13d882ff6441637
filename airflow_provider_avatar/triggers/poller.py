"""One poller per (service, connection) per event loop: the status reads of every waiting trigger.

A trigger registers its wait and awaits one future. The poller keeps the waits in a heap of due
times and, when one is due, reads its status and hands the outcome (a ``TaskStatus`` or the
error of the read) to the wait's :meth:`Waiter.after`, which decides (with the functions of
:mod:`airflow_provider_avatar.waiting`) whether the wait ends, and with which event, or when it
polls next. The decision runs in the context the wait registered from, so its log lines belong
to that trigger's task. The poller decides nothing itself; it only reads, and shares reads:

* waits on the same remote task share one request;
* where the service lists many tasks in one answer (``ServiceProtocol.build_list_request``,
  e.g. ZEGO's running streams), the waits due together share that request, and a task the list
  does not name gets its own read;
* a wait may be served in the later half of its delay when a read for it happens anyway, so
  waits that started apart fall into step; a final poll at a deadline is never served early.

Reads go through the connection's hook like any other call, so the connection's rate limiter
paces them and a ``Retry-After`` pauses them all. Per wait the poller keeps one small entry and
no coroutine: thousands of waits cost the garbage collector little.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.exceptions import AvatarError, AvatarTransientError
from airflow_provider_avatar.services import make_hook
from airflow_provider_avatar.transport.policy import RetryPolicy

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_avatar.clock import Timer
    from airflow_provider_avatar.hooks.base import AvatarBaseHook

#: Each read is one attempt: a wait that sees an error backs off and polls again.
_ONE_ATTEMPT = RetryPolicy(max_attempts=1)

#: Seconds a shared hook serves before the next read builds a fresh one (re-reading the
#: connection), so an edited connection, e.g. a rotated key, reaches running waits.
HOOK_TTL = 300.0

#: Reads one poller has in flight at most (the shared session's connection pool).
MAX_IN_FLIGHT = 256

_HOOKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], tuple[float, AvatarBaseHook]]]
_HOOKS = weakref.WeakKeyDictionary()
_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], Poller]]
_POLLERS = weakref.WeakKeyDictionary()


def shared_hook(service: str, conn_id: str) -> AvatarBaseHook:
    """The hook every read of this event loop uses for ``(service, conn_id)``: one connection
    read and one set of request objects for thousands of waits."""
    return _shared_hook_entry(service, conn_id)[1]


def _shared_hook_entry(service: str, conn_id: str) -> tuple[float, AvatarBaseHook]:
    """:func:`shared_hook` with the monotonic time it was built."""
    hooks = _HOOKS.setdefault(asyncio.get_running_loop(), {})
    now = clock().monotonic()
    entry = hooks.get((service, conn_id))
    if entry is None or now - entry[0] > HOOK_TTL:
        entry = hooks[(service, conn_id)] = (now, make_hook(service, conn_id))
    return entry


def poller_for(service: str, conn_id: str) -> Poller:
    """The running loop's poller for ``(service, conn_id)`` (created on first use; it ends, and
    is forgotten, when its last wait does)."""
    pollers = _POLLERS.setdefault(asyncio.get_running_loop(), {})
    poller = pollers.get((service, conn_id))
    if poller is None:
        poller = pollers[(service, conn_id)] = Poller(service, conn_id)
    return poller


class Waiter(Protocol):
    """What the poller needs from a wait (``AvatarTaskTrigger`` is one)."""

    remote_task_id: str
    deadline: float
    poll_interval: float

    def after(self, outcome: Any, now: float) -> dict[str, Any] | float:
        """The event that ends the wait, or seconds until its next poll, after one read's
        ``outcome`` (a ``TaskStatus`` or the ``AvatarError`` of the read)."""
        ...


class _Entry:
    """One registered wait: when it is due, how early it may be served, where its event goes."""

    __slots__ = ("context", "due", "early", "future", "key", "queued", "waiter")

    def __init__(self, waiter: Waiter, future: asyncio.Future[Any], due: float) -> None:
        self.waiter = waiter
        self.future = future
        self.context = contextvars.copy_context()
        self.due = due  # inf while a read for it is in flight, or once it is forgotten
        self.early = 0.0
        #: Its place in the heap (the due time it was queued with) and whether it is queued: an
        #: entry is queued at most once and re-queued lazily, so a poll allocates nothing that
        #: outlives it (objects that survive to the next poll are what make full GC passes come).
        self.key = due
        self.queued = False

    def __lt__(self, other: _Entry) -> bool:
        return self.key < other.key


class Poller:
    """The reads of one connection's waits (see the module docstring)."""

    def __init__(self, service: str, conn_id: str) -> None:
        self.service, self.conn_id = service, conn_id
        self.lists = make_hook(service, conn_id).protocol.build_list_request() is not None
        self._waits: dict[str, list[_Entry]] = {}
        self._heap: list[_Entry] = []
        #: Reads to send: (remote task id, entries), or (None, {id: entries}) for a list read.
        self._ready: deque[tuple[str | None, Any]] = deque()
        self._workers: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references
        #: Wake-up futures of workers waiting for reads. Workers live as long as the poller: a
        #: task per read cost ~4% of a poll's CPU.
        self._idle: list[asyncio.Future[Any]] = []
        self._closing = False
        self._hook: tuple[float, AvatarBaseHook] | None = None  # (built at, hook): see hook()
        #: Reads in flight (worker task -> the time its budget ends) and one timer for all of
        #: them, at the earliest end: a timeout per read cost ~5% of a poll's CPU (see _expire).
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._overdue: set[asyncio.Task[Any]] = set()
        self._expiry: Timer | None = None
        self._expiry_at = float("inf")
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        #: The scheduler is a timer, not a task: it fires at the earliest due time (``_wake_at``;
        #: -inf while it dispatches) and queues the reads (a task woken per due time cost a
        #: future and a task switch more per read). ``_done`` ends ``_run`` with the last wait.
        self._timer: Timer | None = None
        self._wake_at = float("inf")
        self._done: asyncio.Future[Any] | None = None

    # -- waits -----------------------------------------------------------------------------------
    def add(self, waiter: Waiter) -> asyncio.Future[Any]:
        """Register a wait, due now; its future gets the wait's event (or the error of a bug)."""
        entry = _Entry(waiter, clock().future(), clock().time())
        self._waits.setdefault(waiter.remote_task_id, []).append(entry)
        self._push(entry)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return entry.future

    def discard(self, future: asyncio.Future[Any], remote_task_id: str) -> None:
        """Forget the wait whose future this is (it ended, or its trigger was cancelled); idempotent."""
        entries = self._waits.get(remote_task_id, [])
        for entry in entries:
            if entry.future is future:
                entries.remove(entry)
                entry.due = float("inf")  # its heap entries are stale now
                break
        if not entries:
            self._waits.pop(remote_task_id, None)
        if not future.done():
            future.cancel()
        if not self._waits and self._done is not None and not self._done.done():
            self._done.set_result(None)  # the poller ends

    @property
    def waiting(self) -> int:
        return sum(len(entries) for entries in self._waits.values())

    def _push(self, entry: _Entry) -> None:
        if entry.queued and entry.key > entry.due:  # rare: re-armed earlier than where it is queued
            self._heap.remove(entry)
            heapq.heapify(self._heap)
            entry.queued = False
        if not entry.queued:
            entry.key, entry.queued = entry.due, True
            heapq.heappush(self._heap, entry)
        if entry.due < self._wake_at:
            self._arm(entry.due)

    def _pop(self) -> _Entry:
        entry = heapq.heappop(self._heap)
        entry.queued = False
        return entry

    def _arm(self, at: float) -> None:
        """Set the scheduler's timer to fire at ``at``."""
        if self._timer is not None:
            self._timer.cancel()
        self._wake_at = at
        self._timer = clock().call_later(max(0.0, at - clock().time()), self._tick)

    # -- scheduling --------------------------------------------------------------------------------
    async def _run(self) -> None:
        """Hold the session while there are waits; the timer (:meth:`_tick`) does the scheduling."""
        from airflow_provider_avatar.transport.aio import shared_session

        try:
            async with shared_session() as session:
                self._session = session
                while self._waits:  # again if a wait came between the last one's end and now
                    self._done = clock().future()
                    self._tick()
                    if self._waits:
                        await self._done
                self._forget()  # before the session closes: a wait that comes now makes a new poller
        except Exception as exc:
            self._fail_all(exc)
        finally:
            self._forget()
            self._closing = True
            for timer in (self._timer, self._expiry):
                if timer is not None:
                    timer.cancel()
            for wake in self._idle:
                if not wake.done():
                    wake.set_result(None)
            self._idle.clear()

    def _forget(self) -> None:
        pollers = _POLLERS.get(asyncio.get_running_loop(), {})
        if pollers.get((self.service, self.conn_id)) is self:
            del pollers[(self.service, self.conn_id)]

    def _fail_all(self, exc: Exception) -> None:
        for entries in list(self._waits.values()):
            self._resolve(list(entries), exc)

    def _tick(self) -> None:
        """The scheduler: queue a read for every due wait, then set the timer to the next due time."""
        if self._timer is not None:
            self._timer.cancel()  # called directly (the first time) rather than by the timer
        self._timer, self._wake_at = None, float("-inf")  # waits queued meanwhile do not re-arm it
        if self._session is None or self._closing:
            self._wake_at = float("inf")  # not started yet: _run ticks once it has the session
            return
        try:
            self._dispatch(clock().time())
        except Exception as exc:  # a bug: end every wait with it rather than hang them
            self._fail_all(exc)
        heap = self._heap
        while heap and heap[0].key != heap[0].due:  # queued earlier than it is now due, or not at all
            entry = self._pop()
            if entry.due != float("inf"):
                self._push(entry)
        self._wake_at = float("inf")
        if heap and self._waits:
            self._arm(heap[0].key)

    def _dispatch(self, now: float) -> None:
        """Queue a read for every due wait; waits of the same task (of any listed task) ride along."""
        heap, due_ids = self._heap, []
        while heap and heap[0].key <= now:
            entry = self._pop()
            if entry.due <= now:
                due_ids.append(entry.waiter.remote_task_id)
            elif entry.due != float("inf"):
                self._push(entry)  # re-armed since it was queued: queue it at its new due time
        if not due_ids:
            return
        if self.lists:
            # Every wait that may be served now rides along; one list call if they name two tasks or more.
            batch = {tid: taken for tid in list(self._waits) if (taken := self._take(tid, now))}
            if len(batch) > 1:
                self._ready.append((None, batch))
            else:
                self._ready.extend(batch.items())
        else:
            for tid in dict.fromkeys(due_ids):
                taken = self._take(tid, now)
                if taken:
                    self._ready.append((tid, taken))
        self._spawn()

    def _take(self, remote_task_id: str, now: float) -> list[_Entry]:
        """The waits on this task that a read now serves (marked in flight)."""
        taken = []
        for entry in self._waits.get(remote_task_id, ()):
            if entry.due - entry.early <= now:
                entry.due = float("inf")
                taken.append(entry)
        return taken

    def _spawn(self) -> None:
        """Put a worker on each queued read: idle ones first, then new ones up to MAX_IN_FLIGHT."""
        wanted = len(self._ready)
        while wanted and self._idle:
            wake = self._idle.pop()
            if not wake.done():
                wake.set_result(None)
                wanted -= 1
        loop = asyncio.get_running_loop()
        while wanted and len(self._workers) < MAX_IN_FLIGHT:
            worker = loop.create_task(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
            wanted -= 1

    def hook(self) -> AvatarBaseHook:
        """The loop's shared hook for this connection (:func:`shared_hook`), looked up again only
        once it may have expired."""
        entry = self._hook
        if entry is None or clock().monotonic() - entry[0] > HOOK_TTL:
            entry = self._hook = _shared_hook_entry(self.service, self.conn_id)
        return entry[1]

    # -- reading -------------------------------------------------------------------------------
    async def _work(self) -> None:
        """Send queued reads one after the other; between them, wait idle until the poller ends."""
        me = asyncio.current_task()
        assert me is not None
        while not self._closing:
            while self._ready:
                remote_task_id, job = self._ready.popleft()
                try:
                    if remote_task_id is None:
                        await self._read_list(job, me)
                    else:
                        await self._read(remote_task_id, job, me)
                except Exception as exc:  # a bug: end the waits of this read with it rather than hang them
                    for entries in job.values() if remote_task_id is None else [job]:
                        self._resolve(entries, exc)
            if self._closing:
                return
            wake = clock().future()
            self._idle.append(wake)
            await wake

    async def _read(self, remote_task_id: str, entries: list[_Entry], task: asyncio.Task[Any]) -> None:
        budget = _budget(entries)
        self._start_read(task, budget)
        try:
            hook = self.hook()
            outcome: Any = await hook.aget_status(remote_task_id, session=self._session, policy=_ONE_ATTEMPT)
        except asyncio.CancelledError:
            if not self._timed_out(task):
                raise
            outcome = AvatarTransientError(
                f"no answer within {budget:.1f}s",
                service=self.service,
                action="get_status",
                remote_task_id=remote_task_id,
            )
        except Exception as exc:  # AvatarError: each wait decides; anything else ends them as a bug
            outcome = exc
        finally:
            del self._reading[task]
        self._resolve(entries, outcome)

    async def _read_list(self, batch: dict[str, list[_Entry]], task: asyncio.Task[Any]) -> None:
        self._start_read(task, min(_budget(entries) for entries in batch.values()))
        try:
            hook = self.hook()
            spec = hook.protocol.build_list_request()
            assert spec is not None  # self.lists
            answer = await hook.acall(spec, session=self._session, policy=_ONE_ATTEMPT)
            listed = hook.protocol.parse_list(answer)
        except asyncio.CancelledError:
            if not self._timed_out(task):
                raise
            listed = {}  # each task is asked on its own, within its own budget
        except Exception as exc:
            for remote_task_id, entries in batch.items():
                self._resolve(entries, _for_task(exc, remote_task_id))
            return
        finally:
            del self._reading[task]
        for remote_task_id, entries in batch.items():
            status = listed.get(remote_task_id)
            if status is None:
                self._ready.append((remote_task_id, entries))  # not running, or not listed yet: ask it
            else:
                self._resolve(entries, status)
        self._spawn()

    # -- read budgets ------------------------------------------------------------------------------
    def _start_read(self, task: asyncio.Task[Any], budget: float) -> None:
        """Note that the read of this worker (``task``) must end within ``budget`` seconds; it is
        cancelled (and the read fails with "no answer") if it has not."""
        end = clock().time() + budget
        self._reading[task] = end
        if end < self._expiry_at:
            if self._expiry is not None:
                self._expiry.cancel()
            self._expiry, self._expiry_at = clock().call_later(budget, self._expire), end

    def _expire(self) -> None:
        """Cancel every read past its budget, then sleep until the next budget of a read in flight
        ends. Reads normally end long before their budget, so this timer seldom fires."""
        now, self._expiry, self._expiry_at = clock().time(), None, float("inf")
        for task, end in self._reading.items():
            if end <= now:
                if task not in self._overdue:
                    self._overdue.add(task)
                    task.cancel()  # the worker is suspended inside its read: the read gets the error
            elif end < self._expiry_at:
                self._expiry_at = end
        if self._reading and self._expiry_at != float("inf"):
            self._expiry = clock().call_later(self._expiry_at - now, self._expire)

    def _timed_out(self, task: asyncio.Task[Any]) -> bool:
        """Was this cancellation of a read its budget's (not the poller's or the loop's)?"""
        if task not in self._overdue:
            return False
        self._overdue.discard(task)
        return task.uncancel() == 0

    def _resolve(self, entries: list[_Entry], outcome: Any) -> None:
        """Hand one read's outcome to each wait; end it or schedule its next poll."""
        now = clock().time()
        for entry in entries:
            if entry.future.done():  # the wait was cancelled meanwhile
                continue
            result: dict[str, Any] | float | Exception
            try:
                result = entry.context.run(entry.waiter.after, outcome, now)
            except Exception as exc:
                result = exc
            if isinstance(result, float):
                entry.due = now + result
                # A poll not at the deadline may be served up to half its delay early.
                entry.early = 0.0 if entry.due >= entry.waiter.deadline - 0.01 else result / 2
                self._push(entry)
            else:
                entry.future.set_result(result)
                self.discard(entry.future, entry.waiter.remote_task_id)


def _budget(entries: list[_Entry]) -> float:
    """Seconds a read may take: until the earliest deadline among its waits, plus one interval,
    so that no rate-limit queue or slow answer moves a deadline by more than that."""
    now, budget = clock().time(), float("inf")
    for entry in entries:  # a loop, not min() over a generator: this runs for every read
        waiter = entry.waiter
        budget = min(budget, max(0.0, waiter.deadline - now) + waiter.poll_interval)
    return budget


def _for_task(exc: Exception, remote_task_id: str) -> Exception:
    """A list read's error as each wait reports it: naming its own task."""
    if not isinstance(exc, AvatarError):
        return exc
    named = exc.restated(type(exc), exc.detail)
    named.remote_task_id, named.retry_after, named.sent = remote_task_id, exc.retry_after, exc.sent
    return named
