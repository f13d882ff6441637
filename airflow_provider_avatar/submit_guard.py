"""A durable "this task instance may have sent a create" record, so a later try never sends a second one.

An Airflow try can die after its create reached the service but before the task's success was
recorded (a worker or the scheduler killed mid-call); Airflow then runs the task again as a new try,
which would create, and bill, a second remote task. XCom cannot warn that try (a new try clears it),
so the record lives in a store that outlives tries:

the task instance's own *task state store* (``context["task_state_store"]``, Airflow 3.3+), made for
exactly this: scoped to dag, run, task and map index, shared by every try, deleted with the run. It
is written through the task's supervisor to the API server. Lifecycle (:func:`guarded_create`): a try
that finds no record writes one just before the create leaves (after input checks), adds the remote
task id when the answer arrives, removes it when the create was refused (nothing was created), and
removes it as the last step of a successful ``execute`` (so clearing the task on purpose creates
anew). A try that finds a record re-attaches to its remote task id, or, without an id, fails with
:class:`AvatarSubmitUnknownError` before sending anything (a service that can look its task up by an
idempotency key, as ZEGO can, looks it up instead). Outside a real task (no ``ti``, no supervisor:
``execute()`` called from a unit test) the guard does nothing. See docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_avatar import clock
from airflow_provider_avatar.exceptions import AvatarError, AvatarSubmitUnknownError, AvatarTransientError

if TYPE_CHECKING:
    from airflow_provider_avatar.hooks.base import AvatarBaseHook

log = logging.getLogger(__name__)

#: The task state store key (Airflow 3.3+), one per task instance.
STATE_KEY = "avatar_submit_guard"


@dataclass(frozen=True, slots=True)
class TaskIdentity:
    """What stays the same across tries of one task instance."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int

    def describe(self) -> str:
        index = "" if self.map_index < 0 else f", map_index={self.map_index}"
        return f"dag_id={self.dag_id}, run_id={self.run_id}, task_id={self.task_id}{index}"


@dataclass(frozen=True, slots=True)
class GuardRecord:
    """One record: who may have sent what, when, and the remote task id once known. Never a secret
    or the request body (the store is readable by anyone who can see the task)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    service: str
    action: str
    sent_at: str
    remote_task_id: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> GuardRecord | None:
        """Parse a stored value; ``None`` if it is not a record this module wrote."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, Mapping):
            return None
        try:
            return cls(
                dag_id=str(value["dag_id"]),
                run_id=str(value["run_id"]),
                task_id=str(value["task_id"]),
                map_index=int(value["map_index"]),
                try_number=int(value["try_number"]),
                service=str(value["service"]),
                action=str(value["action"]),
                sent_at=str(value["sent_at"]),
                remote_task_id=None if value.get("remote_task_id") is None else str(value["remote_task_id"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


class Log(Protocol):
    """What the guard logs through: a stdlib logger or an operator's ``self.log``."""

    def debug(self, msg: Any, /, *args: Any) -> Any: ...

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


class GuardStore(Protocol):
    """Where records live. ``read`` returns what ``write`` stored (a JSON object), or ``None``."""

    #: How a person finds and deletes the record (used in error messages).
    where: str

    def read(self) -> Any: ...

    def write(self, record: dict[str, Any]) -> None: ...

    def remove(self) -> None: ...


class TaskStateStore:
    """The task instance's task state store (Airflow 3.3+), shared by all its tries."""

    def __init__(self, accessor: Any, identity: TaskIdentity) -> None:
        self._accessor = accessor
        index = "" if identity.map_index < 0 else f"?map_index={identity.map_index}"
        self.where = (
            f"the task state store key {STATE_KEY!r} of this task instance (Airflow UI: the task instance's "
            f"Task State Store tab; REST: DELETE /api/v2/dags/{identity.dag_id}/dagRuns/{identity.run_id}"
            f"/taskInstances/{identity.task_id}/state-store/{STATE_KEY}{index})"
        )

    def read(self) -> Any:
        return self._accessor.get(STATE_KEY)

    def write(self, record: dict[str, Any]) -> None:
        self._accessor.set(STATE_KEY, record)

    def remove(self) -> None:
        self._accessor.delete(STATE_KEY)


StoreFactory = Callable[[Mapping[str, Any], TaskIdentity], "GuardStore | None"]


def _in_supervised_task() -> bool:
    """Whether a Task SDK supervisor is there to reach the API server (as Airflow itself checks)."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return runner is not None and getattr(runner, "SUPERVISOR_COMMS", None) is not None


def default_store(context: Mapping[str, Any], identity: TaskIdentity) -> GuardStore | None:
    """The task instance's task state store; ``None`` outside a supervised task (or a context without one)."""
    accessor = context.get("task_state_store")
    if accessor is None or not _in_supervised_task():
        return None
    return TaskStateStore(accessor, identity)


_store_factory: StoreFactory = default_store


@contextlib.contextmanager
def use_store(factory: StoreFactory) -> Iterator[StoreFactory]:
    """Use ``factory`` to pick the store inside the block (tests); restores the previous one."""
    global _store_factory
    previous, _store_factory = _store_factory, factory
    try:
        yield factory
    finally:
        _store_factory = previous


def _identity(context: Mapping[str, Any]) -> tuple[TaskIdentity, int] | None:
    ti = context.get("ti")
    if ti is None:
        return None
    dag_id, run_id, task_id = (getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id"))
    map_index, try_number = getattr(ti, "map_index", None), getattr(ti, "try_number", None)
    if not all(isinstance(v, str) and v for v in (dag_id, run_id, task_id)) or not isinstance(try_number, int):
        return None
    index = map_index if isinstance(map_index, int) else -1
    return TaskIdentity(str(dag_id), str(run_id), str(task_id), index), try_number


class SubmitGuard:
    """The record of one try's create; every store error is reported with service and action."""

    def __init__(
        self,
        store: GuardStore | None,
        identity: TaskIdentity | None,
        try_number: int,
        service: str,
        action: str,
        logger: Log = log,
    ) -> None:
        self.store, self.identity, self.try_number = store, identity, try_number
        self.service, self.action = service, action
        self.log = logger
        #: Whether this try wrote its record (the create may have left since).
        self.marked = False
        self._record: GuardRecord | None = None

    @classmethod
    def for_context(
        cls,
        context: Mapping[str, Any],
        service: str,
        action: str,
        logger: Log = log,
    ) -> SubmitGuard:
        """The guard for the task instance running ``context``; inactive outside a real task."""
        found = _identity(context)
        store = None if found is None else _store_factory(context, found[0])
        if found is None or store is None:
            logger.debug("No Airflow task instance or supervisor here: the %s %s is not guarded", service, action)
            return cls(None, None, 0, service, action, logger)
        return cls(store, found[0], found[1], service, action, logger)

    @property
    def active(self) -> bool:
        return self.store is not None

    def _store_error(self, what: str, exc: Exception) -> AvatarTransientError:
        err = AvatarTransientError(
            f"could not {what} the submit guard in {self.store.where if self.store else 'its store'} "
            f"({type(exc).__name__}: {exc}); nothing was sent, so a retry of this task is safe",
            service=self.service,
            action=self.action,
        )
        err.sent = False
        return err

    def previous(self) -> GuardRecord | None:
        """The record an earlier try left, if any (a store that cannot be read fails before sending)."""
        if self.store is None:
            return None
        try:
            value = self.store.read()
        except Exception as exc:
            raise self._store_error("read", exc) from exc
        if value is None:
            return None
        record = GuardRecord.from_json(value)
        if record is None:
            self.log.warning("Ignoring an unreadable submit guard record in %s", self.store.where)
        return record

    def mark_sending(self, action: str | None = None) -> None:
        """Record "this try may send the create" (durably, before it leaves); once per try."""
        if self.store is None or self.marked or self.identity is None:
            return
        sent_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.current().time()))
        record = GuardRecord(
            **asdict(self.identity),
            try_number=self.try_number,
            service=self.service,
            action=action or self.action,
            sent_at=sent_at,
        )
        try:
            self.store.write(asdict(record))
        except Exception as exc:
            raise self._store_error("write", exc) from exc
        self.marked = True
        self._record = record

    def created(self, remote_task_id: str) -> None:
        """Add the remote task id to the record. Best effort: the supervisor may be gone by now."""
        if self.store is None or self._record is None:
            return
        try:
            self.store.write(asdict(replace(self._record, remote_task_id=remote_task_id)))
        except Exception as exc:
            self.log.warning(
                "Could not add remote task id %s to the submit guard (%s: %s)", remote_task_id, type(exc).__name__, exc
            )

    def clear(self) -> None:
        """Remove the record (nothing was created, or the task is done). Best effort."""
        if self.store is None:
            return
        try:
            self.store.remove()
        except Exception as exc:
            self.log.warning(
                "Could not remove the submit guard; remove %s before clearing this task for a new %s (%s: %s)",
                self.store.where,
                self.action,
                type(exc).__name__,
                exc,
            )

    def unknown(self, record: GuardRecord) -> AvatarSubmitUnknownError:
        """The error for a record without a remote task id: an earlier try may have created one."""
        where = self.store.where if self.store else "the guard record"
        return AvatarSubmitUnknownError(
            f"try {record.try_number} of this task instance may have sent a {record.service} {record.action} at "
            f"{record.sent_at} and no answer was recorded (its worker or the scheduler probably died mid-call); "
            f"try {self.try_number} sends nothing, so no second remote task is created and billed. Check "
            f"{record.service} for a task created around {record.sent_at} and use it if it exists; to allow a new "
            f"{record.action}, delete {where} and clear this task",
            service=self.service,
            action=self.action,
        )


def _nothing_created(exc: BaseException, action: str) -> bool:
    """Whether ``exc`` from a guarded create proves nothing was created: the service's own answer to the
    create (a refusal, an input or auth error). An unknown outcome, an error of another call made
    after the create, or anything that is not the provider's error keeps the record."""
    return isinstance(exc, AvatarError) and not isinstance(exc, AvatarSubmitUnknownError) and exc.action == action


def guarded_create(
    context: Mapping[str, Any],
    hook: AvatarBaseHook,
    action: str,
    create: Callable[[], str],
    *,
    describe: Callable[[str], str],
    logger: Log = log,
    find_existing: Callable[[], str | None] | None = None,
) -> str:
    """Run ``create`` (which sends ``action`` through ``hook.submit``) at most once per task instance.

    ``describe(remote_task_id)`` is the success line logged. ``find_existing`` is for services whose
    create carries an idempotency key: it looks the remote task up (re-attach without sending) and,
    when nothing is found, a new create is safe because the service refuses a duplicate key.
    """
    guard = SubmitGuard.for_context(context, hook.service, action, logger)
    record = guard.previous()
    if record is not None:
        if record.remote_task_id:
            logger.warning(
                "Re-attaching to %s task %s created by try %s of this task instance; nothing is sent",
                record.service,
                record.remote_task_id,
                record.try_number,
            )
            guard.clear()
            return record.remote_task_id
        if find_existing is None:
            raise guard.unknown(record)
        found = find_existing()
        if found is not None:
            logger.warning(
                "Re-attaching to %s task %s (try %s may have created it)", hook.service, found, record.try_number
            )
            guard.clear()
            return found
        logger.warning(
            "Try %s may have sent a %s and no such task is running; sending it again is safe (idempotency key)",
            record.try_number,
            action,
        )
    hook.before_submit = guard.mark_sending
    try:
        remote_task_id = create()
    except BaseException as exc:
        if guard.marked and _nothing_created(exc, action):
            guard.clear()
        raise
    finally:
        hook.before_submit = None
    guard.created(remote_task_id)
    logger.info("%s", describe(remote_task_id))
    guard.clear()  # the last step: a task cleared on purpose later creates anew
    return remote_task_id
