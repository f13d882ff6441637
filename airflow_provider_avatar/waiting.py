"""How a wait reacts to what it sees: the decisions shared by the trigger and poke-mode sensors.

Pure (times are passed in). The trigger builds events with these functions and the sensor turns
events back into a return value or a typed exception, so poke, reschedule and deferrable waits
give the same answer for the same remote history.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_avatar.exceptions import (
    AvatarError,
    AvatarNotFoundError,
    AvatarTaskFailedError,
    AvatarTimeoutError,
    error_from_dict,
)
from airflow_provider_avatar.status import TaskState, TaskStatus, Verdict

if TYPE_CHECKING:
    import logging

    from airflow_provider_avatar.protocols.base import ServiceProtocol

#: The closed set of trigger event statuses, checked when a deferred sensor resumes.
EVENT_STATUSES = frozenset({"success", "failed", "timeout", "error"})


def keep_waiting_after(
    exc: AvatarError, *, now: float, last_ok_at: float, error_window: float, not_found_grace_until: float | None
) -> bool:
    """Whether a wait survives this error: transient ones within the error window, and "not found"
    shortly after create (gateways may not have stored the task yet). Auth and input errors end it.
    """
    if isinstance(exc, AvatarNotFoundError):
        return not_found_grace_until is not None and now < not_found_grace_until
    return exc.transient and now - last_ok_at < error_window


def status_for_error(
    protocol: ServiceProtocol,
    exc: AvatarError,
    *,
    seen: frozenset[TaskState],
    now: float,
    not_found_grace_until: float | None,
) -> TaskStatus | None:
    """The end state a "not found" stands for, given what this wait saw (stream services drop
    ended tasks); ``None`` when the error stays an error."""
    if not isinstance(exc, AvatarNotFoundError):
        return None
    grace_over = not_found_grace_until is None or now >= not_found_grace_until
    return protocol.status_when_gone(exc, seen=seen, grace_over=grace_over)


def after_error(
    protocol: ServiceProtocol,
    exc: AvatarError,
    *,
    seen: frozenset[TaskState],
    now: float,
    last_ok_at: float,
    error_window: float,
    not_found_grace_until: float | None,
) -> TaskStatus | None:
    """What a failed status read means for a wait (shared by the trigger and poke mode).

    Returns the end state the error stands for, or ``None`` to poll again; re-raises ``exc``
    when it ends the wait.
    """
    gone = status_for_error(protocol, exc, seen=seen, now=now, not_found_grace_until=not_found_grace_until)
    if gone is not None:
        return gone
    if keep_waiting_after(
        exc, now=now, last_ok_at=last_ok_at, error_window=error_window, not_found_grace_until=not_found_grace_until
    ):
        return None
    raise exc


class ProgressLog:
    """Logs a wait's progress when it changes, and an unmapped raw status once per wait."""

    #: Seconds between two lines that only report progress (a state change is logged at once).
    #: A line per progress tick cost as much CPU as the poll itself with thousands of waits.
    progress_every = 60.0

    def __init__(self, log: logging.Logger | Any) -> None:
        self.log = log
        self._last: tuple[Any, ...] | None = None
        self._logged_at = 0.0
        self._warned_unknown = False

    def observe(self, status: TaskStatus) -> None:
        if status.state is TaskState.UNKNOWN and not self._warned_unknown:
            self._warned_unknown = True
            self.log.warning(
                "%s task %s has unmapped status %r; still waiting",
                status.service,
                status.remote_task_id,
                status.raw_status,
            )
        seen = (status.state, status.progress, status.result.get("preview_frames"))
        if seen == self._last:
            return
        now = time.monotonic()
        if self._last is not None and seen[0] is self._last[0] and now - self._logged_at < self.progress_every:
            return  # progress only, and reported less than a minute ago: the next line shows the latest
        self._last, self._logged_at = seen, now
        self.log.info(
            "%s task %s is %s (progress %s, preview frames %s)",
            status.service,
            status.remote_task_id,
            status.state.value,
            status.progress,
            seen[2],
        )


def outcome_event(status: TaskStatus, verdict: Verdict) -> dict[str, Any]:
    """The event for a status that ended the wait (``verdict`` is DONE or FAILED)."""
    if verdict is Verdict.DONE:
        return {
            "status": "success",
            "reason": "target_state",
            "service": status.service,
            "remote_task_id": status.remote_task_id,
            "message": f"remote task reached {status.state.value}",
            "task_status": status.to_dict(),
        }
    detail = status.error_message or status.error_code or status.raw_status or status.state.value
    return {
        "status": "failed",
        "reason": "failure_state",
        "service": status.service,
        "remote_task_id": status.remote_task_id,
        "message": f"remote task ended in {status.state.value}: {detail}",
        "task_status": status.to_dict(),
    }


def timeout_event(service: str, remote_task_id: str, last: TaskStatus | None, timeout_at: float) -> dict[str, Any]:
    seen = last.state.value if last else "no successful poll"
    return {
        "status": "timeout",
        "reason": "timeout",
        "service": service,
        "remote_task_id": remote_task_id,
        "message": f"deadline passed (epoch {timeout_at:.0f}); last state: {seen}",
        "task_status": last.to_dict() if last else None,
    }


def error_event(exc: AvatarError) -> dict[str, Any]:
    return {
        "status": "error",
        "reason": exc.reason,
        "service": exc.service,
        "remote_task_id": exc.remote_task_id,
        "message": exc.detail,
        "error": exc.to_dict(),
    }


def result_from_event(event: Any, *, service: str, remote_task_id: str) -> dict[str, Any]:
    """Validate an event and return the TaskStatus dict for XCom, or raise the typed error.

    The exception class is chosen from the event's ``status``/``reason``, never its message.
    """
    if not isinstance(event, Mapping) or event.get("status") not in EVENT_STATUSES:
        raise AvatarError(
            f"invalid trigger event: {event!r:.200}", service=service, action="wait", remote_task_id=remote_task_id
        )
    kind = event["status"]
    task_status = event.get("task_status")
    if kind == "success":
        if not isinstance(task_status, Mapping):
            raise AvatarError(
                "success event without task_status", service=service, action="wait", remote_task_id=remote_task_id
            )
        return dict(task_status)
    if kind == "error":
        error = event.get("error")
        raise error_from_dict(
            dict(error)
            if isinstance(error, Mapping)
            else {
                "reason": event.get("reason"),
                "message": event.get("message"),
                "service": service,
                "action": "wait",
                "remote_task_id": remote_task_id,
            }
        )
    status = task_status if isinstance(task_status, Mapping) else {}
    cls = AvatarTimeoutError if kind == "timeout" else AvatarTaskFailedError
    raise cls(
        str(event.get("message") or kind),
        service=service,
        action="wait",
        remote_task_id=remote_task_id,
        code=status.get("error_code"),
        request_id=status.get("request_id"),
    )
