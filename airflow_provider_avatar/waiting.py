"""How a wait reacts to what it sees: the decisions shared by the trigger and poke-mode sensors.

Pure (times are passed in). The trigger builds events with these functions and the sensor turns
events back into a return value or a typed exception, so poke, reschedule and deferrable waits
give the same answer for the same remote history.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_avatar.clock import current as clock
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
    exc: AvatarError,
    *,
    seen: frozenset[TaskState],
    now: float,
    last_ok_at: float,
    error_window: float,
    not_found_grace_until: float | None,
) -> bool:
    """Whether a wait survives this error: transient ones within the error window, and "not found"
    for a task never seen, within the not-found grace (a gateway may not list a task right after
    create). A task that was seen is never waited for again once it is gone. Auth and input
    errors end the wait.
    """
    if isinstance(exc, AvatarNotFoundError):
        return not seen and not_found_grace_until is not None and now < not_found_grace_until
    return exc.transient and now - last_ok_at < error_window


def status_for_error(protocol: ServiceProtocol, exc: AvatarError, *, seen: frozenset[TaskState]) -> TaskStatus | None:
    """The end state a "not found" stands for once the task was seen (in any state): the
    service's history rules decide it at once. ``None`` when the error stays an error."""
    if not isinstance(exc, AvatarNotFoundError) or not seen:
        return None
    return protocol.status_when_gone(exc, seen=seen)


def never_found(exc: AvatarNotFoundError) -> AvatarNotFoundError:
    """The error for a task that was not found during the whole grace and never seen: most
    often a wrong id (another connection's or environment's task, a typo)."""
    return exc.restated(
        AvatarNotFoundError,
        "task was never found: check the remote task id (and that the connection is the account that "
        f"created it); the service said: {exc.detail}",
    )


def not_listed_yet(exc: AvatarError) -> bool:
    """A "not found" the wait survived: a task not yet seen, inside its not-found grace (a service
    may list a task only moments after create). Polled at the normal pace and logged as info."""
    return isinstance(exc, AvatarNotFoundError)


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

    Returns the end state the error stands for, or ``None`` to poll again; raises the error
    that ends the wait (``exc`` itself, or :func:`never_found` for a task never seen, unless the
    service reads that as an end state: ``ServiceProtocol.status_when_never_found``).
    """
    gone = status_for_error(protocol, exc, seen=seen)
    if gone is not None:
        return gone
    if keep_waiting_after(
        exc,
        seen=seen,
        now=now,
        last_ok_at=last_ok_at,
        error_window=error_window,
        not_found_grace_until=not_found_grace_until,
    ):
        return None
    if isinstance(exc, AvatarNotFoundError) and not seen:
        ended = protocol.status_when_never_found(exc)
        if ended is not None:
            return ended
        raise never_found(exc) from exc
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
        now = clock().monotonic()
        if self._last is not None and seen[0] is self._last[0] and now - self._logged_at < self.progress_every:
            return  # progress only, and reported less than a minute ago: the next line shows the latest
        self._last, self._logged_at = seen, now
        details = [] if status.progress is None else [f"{status.progress:.0%} done"]
        if seen[2] is not None:
            details.append(f"{seen[2]} preview frames")
        self.log.info(
            "%s task %s is %s%s",
            status.service,
            status.remote_task_id,
            status.state.value,
            f" ({', '.join(details)})" if details else "",
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


def format_duration(seconds: float) -> str:
    """``1h00m05s``, ``4m30s``, ``12s``, ``0.4s``: how long a wait took, for messages."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def timeout_event(
    service: str,
    remote_task_id: str,
    last: TaskStatus | None,
    timeout_at: float,
    *,
    started_at: float | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The event of a wait whose deadline passed (after its final poll)."""
    seen = last.state.value if last else "no successful poll"
    waited = ""
    if started_at is not None:
        waited = f" after {format_duration((clock().time() if now is None else now) - started_at)}"
    return {
        "status": "timeout",
        "reason": "timeout",
        "service": service,
        "remote_task_id": remote_task_id,
        "message": f"timed out{waited} waiting (deadline {format_utc(timeout_at)}); last state: {seen}",
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
