"""``AvatarTaskTrigger``: one generic wait for every service, polled by its connection's poller.

It serializes only JSON primitives (service key, conn id, remote task id, states, interval and
an absolute deadline), never a secret. It only reads: it never creates, drives or stops. It
yields exactly one event and returns.
"""

from __future__ import annotations

import asyncio
import importlib
import weakref
from collections.abc import AsyncIterator, Iterable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.exceptions import AvatarError
from airflow_provider_avatar.services import hook_class
from airflow_provider_avatar.status import TaskState, TaskStatus, Verdict, judge, state_set
from airflow_provider_avatar.transport.policy import RetryPolicy
from airflow_provider_avatar.triggers.poller import poller_for
from airflow_provider_avatar.waiting import (
    ProgressLog,
    after_error,
    error_event,
    not_listed_yet,
    outcome_event,
    timeout_event,
)

_imported: set[str] = set()
#: The import in progress per event loop and service: the waits that start meanwhile share it.
_importing: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future[None]]]
_importing = weakref.WeakKeyDictionary()


def _import_poll_modules(service: str) -> None:
    for module in hook_class(service).async_modules:
        importlib.import_module(module)


async def import_off_loop(service: str) -> None:
    """Import what a poll of ``service`` needs (its hook, aiohttp, ...) in a worker thread, once per process.

    The triggerer imports a trigger's module on its event loop, and these imports took 0.25-0.6 s
    on a busy machine: every trigger of the triggerer stalled on the first one of this provider.
    Triggers that start while the import runs wait for that one import (not a thread each), and
    all resume together, so they reach the poller in the same turn of the loop.
    """
    if service in _imported:
        return
    pending = _importing.setdefault(asyncio.get_running_loop(), {})
    task = pending.get(service)
    if task is None:
        task = pending[service] = asyncio.ensure_future(asyncio.to_thread(_import_poll_modules, service))
    try:
        await asyncio.shield(task)  # a cancelled wait leaves the import to the others
    finally:
        if task.done() and pending.get(service) is task:
            del pending[service]  # done, or failed: the next wait tries again
    _imported.add(service)


class AvatarTaskTrigger(BaseTrigger):
    """Poll a remote task until a target or failure state, an error, or the absolute deadline.

    :param service: service key (``scenext``, ...).
    :param conn_id: Airflow connection id for that service.
    :param remote_task_id: the service's task id.
    :param target_states: states that end the wait successfully.
    :param failure_states: states that end the wait as failed.
    :param poll_interval: seconds between polls.
    :param deadline: epoch seconds; after it, one last poll, then a ``timeout`` event.
    :param not_found_grace_until: epoch seconds before which "not found" is retried.
    :param error_window: seconds of consecutive transient errors tolerated.
    :param seen_states: states observed before deferring (or implied, e.g. STOPPING after a stop
        request): how stream services read a task that is no longer listed.
    :param started_at: epoch seconds the wait began (the sensor's first check), for the elapsed
        time in a timeout message; optional, so kwargs serialized without it still load.

    Its reads are made by the connection's shared poller (:mod:`.poller`), which calls
    :meth:`after` with each outcome; the wait's state between polls lives here. Time is read
    through :mod:`airflow_provider_avatar.clock` (never serialized), so tests run waits on a fake
    clock.
    """

    # The wait's state between polls (set when run() starts; never serialized).
    _targets: frozenset[TaskState]
    _failures: frozenset[TaskState]
    _seen: frozenset[TaskState]
    _last: TaskStatus | None
    _last_ok_at: float
    _errors: int
    _progress: ProgressLog | None

    def __init__(
        self,
        *,
        service: str,
        conn_id: str,
        remote_task_id: str,
        target_states: Iterable[str],
        failure_states: Iterable[str],
        poll_interval: float,
        deadline: float,
        not_found_grace_until: float | None = None,
        error_window: float = 300.0,
        seen_states: Iterable[str] = (),
        started_at: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.service = str(service)
        self.conn_id = str(conn_id)
        self.remote_task_id = str(remote_task_id)
        # Tuples of strings: the garbage collector stops tracking them, lists it would walk per wait.
        self.target_states = tuple(sorted(s.value for s in state_set(target_states)))
        self.failure_states = tuple(sorted(s.value for s in state_set(failure_states)))
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline)
        self.not_found_grace_until = None if not_found_grace_until is None else float(not_found_grace_until)
        self.error_window = float(error_window)
        self.seen_states = tuple(sorted(s.value for s in state_set(seen_states)))
        self.started_at = None if started_at is None else float(started_at)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "service": self.service,
                "conn_id": self.conn_id,
                "remote_task_id": self.remote_task_id,
                "target_states": list(self.target_states),
                "failure_states": list(self.failure_states),
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "not_found_grace_until": self.not_found_grace_until,
                "error_window": self.error_window,
                "seen_states": list(self.seen_states),
                "started_at": self.started_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait()
        except AvatarError as exc:  # e.g. the connection is missing its key
            event = error_event(exc)
        except Exception as exc:  # never let a bug surface as an opaque "Trigger failure"
            self.log.exception("Polling %s task %s failed unexpectedly", self.service, self.remote_task_id)
            event = {
                "status": "error",
                "reason": "polling_error",
                "service": self.service,
                "remote_task_id": self.remote_task_id,
                "message": f"unexpected {type(exc).__name__} while polling",
                "error_type": type(exc).__name__,
            }
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        """Register with the connection's poller and await the one event; the poller forgets the
        wait however this ends (its event, or cancellation by the triggerer)."""
        self._targets, self._failures = state_set(self.target_states), state_set(self.failure_states)
        self._seen = state_set(self.seen_states)
        self._last: TaskStatus | None = None
        self._last_ok_at = clock().time()
        self._errors = 0
        self._progress: ProgressLog | None = None
        await import_off_loop(self.service)
        poller = poller_for(self.service, self.conn_id)
        event = poller.add(self)
        try:
            outcome = await event
        finally:
            poller.discard(event, self.remote_task_id)
        if isinstance(outcome, BaseException):
            raise outcome
        result: dict[str, Any] = outcome
        return result

    def after(self, outcome: TaskStatus | Exception, now: float) -> dict[str, Any] | float:
        """What one status read means for this wait: the event that ends it, or seconds until the
        next poll. Called by the poller, in this trigger's context, after every read."""
        delay = self.poll_interval
        status: TaskStatus | None = None
        if isinstance(outcome, AvatarError):
            try:
                status = after_error(
                    hook_class(self.service).protocol,
                    outcome,
                    seen=self._seen,
                    now=now,
                    last_ok_at=self._last_ok_at,
                    error_window=self.error_window,
                    not_found_grace_until=self.not_found_grace_until,
                )
            except AvatarError as final:  # ``outcome``, or what it means here (e.g. never found)
                return error_event(final)
            if status is None and not_listed_yet(outcome):
                # Expected right after a create: poll at the normal pace, no alarm.
                self.log.info("%s task %s is not listed yet; polling again", self.service, self.remote_task_id)
            elif status is None:
                self._errors += 1
                # Under errors, back off from the poll interval upwards: thousands of waits must
                # not poll faster during an outage than they do in normal operation.
                backoff = RetryPolicy(base=self.poll_interval, cap=4 * self.poll_interval)
                delay = backoff.backoff(self._errors, outcome.retry_after)
                self.log.warning(
                    "Poll %d of %s task %s failed, retrying in %.1fs: %s",
                    self._errors,
                    self.service,
                    self.remote_task_id,
                    delay,
                    outcome,
                )
        elif isinstance(outcome, Exception):
            raise outcome  # a bug: run() reports it
        else:
            status = outcome
        if status is not None:
            self._errors, self._last_ok_at, self._last = 0, now, status
            if status.state not in self._seen:  # shared sets: thousands of waits hold a few
                self._seen = state_set([*self._seen, status.state])
            verdict = judge(status, self._targets, self._failures)
            if verdict is not Verdict.WAIT:
                return outcome_event(status, verdict)
            if self._progress is None:
                self._progress = ProgressLog(self.log)
            self._progress.observe(status)
        # A poll at or after the deadline was the final one (timers may fire a little early).
        if now >= self.deadline - 0.01:
            return self._timeout()
        return float(max(0.0, min(delay, self.deadline - now)))

    def _timeout(self) -> dict[str, Any]:
        return timeout_event(self.service, self.remote_task_id, self._last, self.deadline, started_at=self.started_at)


# One logger for every wait (log lines reach each trigger's log through its context, not the
# logger object): a logger per trigger was three more objects per wait for the GC to walk.
AvatarTaskTrigger.logger()
