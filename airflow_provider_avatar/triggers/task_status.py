"""``AvatarTaskTrigger``: one generic async poll loop for every service.

It serializes only JSON primitives (service key, conn id, remote task id, states, interval and
an absolute deadline), never a secret. It only reads: it never creates, drives or stops. It
yields exactly one event and returns.
"""

from __future__ import annotations

import asyncio
import importlib
import weakref
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.exceptions import AvatarError, AvatarTransientError
from airflow_provider_avatar.services import hook_class, make_hook
from airflow_provider_avatar.status import TaskStatus, Verdict, judge, state_set
from airflow_provider_avatar.transport.policy import RetryPolicy
from airflow_provider_avatar.waiting import (
    ProgressLog,
    after_error,
    error_event,
    not_listed_yet,
    outcome_event,
    timeout_event,
)

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_avatar.hooks.base import AvatarBaseHook

#: Each poll is one attempt: the loop itself backs off and polls again.
_ONE_ATTEMPT = RetryPolicy(max_attempts=1)

#: Seconds a shared hook serves before the next poll builds a fresh one (re-reading the
#: connection), so an edited connection, e.g. a rotated key, reaches running waits.
HOOK_TTL = 300.0

_HOOKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], tuple[float, AvatarBaseHook]]]
_HOOKS = weakref.WeakKeyDictionary()


_imported: set[str] = set()


def _import_poll_modules(service: str) -> None:
    for module in hook_class(service).async_modules:
        importlib.import_module(module)


async def import_off_loop(service: str) -> None:
    """Import what a poll of ``service`` needs (its hook, aiohttp, ...) in a worker thread, once per process.

    The triggerer imports a trigger's module on its event loop, and these imports took 0.25-0.6 s
    on a busy machine: every trigger of the triggerer stalled on the first one of this provider.
    """
    if service not in _imported:
        await asyncio.to_thread(_import_poll_modules, service)
        _imported.add(service)


def shared_hook(service: str, conn_id: str) -> AvatarBaseHook:
    """The hook every trigger of this event loop uses for ``(service, conn_id)``.

    One connection read and one set of request objects serve thousands of waits instead of one
    each: less start-up time, less memory per wait, and less for the garbage collector to walk.
    """
    hooks = _HOOKS.setdefault(asyncio.get_running_loop(), {})
    now = clock().monotonic()
    entry = hooks.get((service, conn_id))
    if entry is None or now - entry[0] > HOOK_TTL:
        entry = hooks[(service, conn_id)] = (now, make_hook(service, conn_id))
    return entry[1]


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

    Time is read and slept through :mod:`airflow_provider_avatar.clock` (never serialized), so
    tests run this loop on a fake clock.
    """

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
        self.target_states = sorted(s.value for s in state_set(target_states))
        self.failure_states = sorted(s.value for s in state_set(failure_states))
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline)
        self.not_found_grace_until = None if not_found_grace_until is None else float(not_found_grace_until)
        self.error_window = float(error_window)
        self.seen_states = sorted(s.value for s in state_set(seen_states))
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
        await import_off_loop(self.service)
        from airflow_provider_avatar.transport.aio import shared_session

        targets, failures = state_set(self.target_states), state_set(self.failure_states)
        # Under errors, back off from the poll interval upwards: thousands of waits must not
        # poll faster during an outage than they do in normal operation.
        error_backoff = RetryPolicy(base=self.poll_interval, cap=4 * self.poll_interval)
        progress = ProgressLog(self.log)
        last = None
        last_ok_at = clock().time()
        errors = 0
        seen = set(state_set(self.seen_states))
        async with shared_session() as session:
            while True:
                now = clock().time()
                delay = self.poll_interval
                status: TaskStatus | None = None
                hook = shared_hook(self.service, self.conn_id)
                try:
                    status = await self._poll(hook, session, now)
                except AvatarError as exc:
                    try:
                        status = after_error(
                            hook.protocol,
                            exc,
                            seen=frozenset(seen),
                            now=now,
                            last_ok_at=last_ok_at,
                            error_window=self.error_window,
                            not_found_grace_until=self.not_found_grace_until,
                        )
                    except AvatarError as final:  # ``exc``, or what it means here (e.g. never found)
                        return error_event(final)
                    if status is None and not_listed_yet(exc):
                        # Expected right after a create: poll at the normal pace, no alarm.
                        self.log.info("%s task %s is not listed yet; polling again", self.service, self.remote_task_id)
                    elif status is None:
                        errors += 1
                        delay = error_backoff.backoff(errors, exc.retry_after)
                        self.log.warning(
                            "Poll %d of %s task %s failed, retrying in %.1fs: %s",
                            errors,
                            self.service,
                            self.remote_task_id,
                            delay,
                            exc,
                        )
                if status is not None:
                    errors, last_ok_at, last = 0, now, status
                    seen.add(status.state)
                    verdict = judge(status, targets, failures)
                    if verdict is not Verdict.WAIT:
                        return outcome_event(status, verdict)
                    progress.observe(status)
                # A poll that ended at or after the deadline was the final one (asyncio may wake early).
                if clock().time() >= self.deadline - 0.01:
                    return timeout_event(
                        self.service, self.remote_task_id, last, self.deadline, started_at=self.started_at
                    )
                await clock().asleep(max(0.0, min(delay, self.deadline - clock().time())))

    async def _poll(self, hook: AvatarBaseHook, session: aiohttp.ClientSession, now: float) -> TaskStatus:
        """One status read, bounded so that no rate-limit queue or slow answer moves the deadline."""
        budget = max(0.0, self.deadline - now) + self.poll_interval
        try:
            async with clock().timeout(budget):
                return await hook.aget_status(self.remote_task_id, session=session, policy=_ONE_ATTEMPT)
        except TimeoutError:
            raise AvatarTransientError(
                f"no answer within {budget:.1f}s",
                service=self.service,
                action="get_status",
                remote_task_id=self.remote_task_id,
            ) from None
