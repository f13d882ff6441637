"""The shared task vocabulary: every service's raw status is normalised into these types.

Pure data: no Airflow, no I/O. Sensors return ``TaskStatus.to_dict()`` through XCom and the
download operator accepts it back with ``TaskStatus.from_dict()``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class TaskState(enum.StrEnum):
    """Normalised remote task state (see docs/architecture.md, "Shared vocabulary")."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTING = "STARTING"
    STREAMING = "STREAMING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def coerce(cls, value: TaskState | str) -> TaskState:
        """Accept a member or its name in any case; raise ``ValueError`` naming the choices."""
        if isinstance(value, TaskState):
            return value
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown task state {value!r}; expected one of: {choices}") from None


def state_set(values: Iterable[TaskState | str] | TaskState | str | None) -> frozenset[TaskState]:
    """Normalise a user-given state, list of states or ``None`` to a frozenset."""
    if values is None:
        return frozenset()
    if isinstance(values, (str, TaskState)):
        values = [values]
    states = frozenset(TaskState.coerce(v) for v in values)
    # Thousands of waiting triggers hold the same few sets: share one object per distinct set
    # (at most 2**len(TaskState) of them) instead of keeping ~200 bytes per wait.
    return _STATE_SETS.setdefault(states, states)


_STATE_SETS: dict[frozenset[TaskState], frozenset[TaskState]] = {}


def redact_url(url: str | None) -> str | None:
    """Drop query string, fragment and userinfo, which is where URL signatures and tokens live."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_URL = re.compile(r"https?://[^\s\"'<>]+")
#: A query string left after URL redaction, e.g. a relative ``/?Action=...&Signature=...`` echoed
#: by a proxy's error page: request signatures live there too.
_QUERY = re.compile(r"\?[^\s\"'<>?=&]+=[^\s\"'<>]*")


def redact_urls_in(text: str) -> str:
    """``text`` with every http(s) URL redacted and every other query string dropped (for error
    messages quoting a body)."""
    return _QUERY.sub("", _URL.sub(lambda m: redact_url(m.group(0)) or "", text))


def _redact_urls(value: Any) -> Any:
    if isinstance(value, str):
        return redact_urls_in(value)
    if isinstance(value, Mapping):
        return {k: _redact_urls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_urls(v) for v in value]
    return value


# Reason codes for a FAILED status that the service itself did not name.
NO_ARTIFACT = "no_artifact"


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """One observation of a remote task, normalised; JSON-able through :meth:`to_dict`."""

    service: str
    remote_task_id: str
    state: TaskState
    raw_status: str | None = None
    progress: float | None = None
    video_url: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives for XCom and trigger events.

        The video URL loses its query string: signed URLs are bearer credentials that would
        otherwise sit in plain text in the metadata DB. Downloads re-resolve a fresh URL.
        """
        data = asdict(self)
        data["state"] = self.state.value
        data["result"] = {k: _redact_urls(v) for k, v in self.result.items()}
        data["video_url"] = redact_url(self.video_url)
        if self.error_message:  # a service's failure reason may quote a signed input URL
            data["error_message"] = redact_urls_in(self.error_message)[:1000]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskStatus:
        """Rebuild from :meth:`to_dict` output; unknown keys are ignored for forward compatibility."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        missing = {"service", "remote_task_id", "state"} - kwargs.keys()
        if missing:
            raise ValueError(f"not a TaskStatus dict: missing {sorted(missing)}")
        kwargs["state"] = TaskState.coerce(kwargs["state"])
        kwargs["result"] = dict(kwargs.get("result") or {})
        return cls(**kwargs)


class Verdict(enum.StrEnum):
    """What a waiter does with one observed status."""

    DONE = "done"
    FAILED = "failed"
    WAIT = "wait"


def judge(status: TaskStatus, target_states: frozenset[TaskState], failure_states: frozenset[TaskState]) -> Verdict:
    """The single decision shared by poke, reschedule and deferrable waits.

    Failure states win over target states so a misconfigured overlap cannot report success
    for a failed task. UNKNOWN is never terminal.
    """
    if status.state in failure_states:
        return Verdict.FAILED
    if status.state in target_states:
        return Verdict.DONE
    return Verdict.WAIT
