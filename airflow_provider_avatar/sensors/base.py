"""``AvatarTaskSensor``: wait for a remote task in poke, reschedule or deferrable mode.

All three modes share :func:`~airflow_provider_avatar.status.judge` and the event functions in
:mod:`airflow_provider_avatar.waiting`, so they give the same answer for the same history.
Module import stays cheap: hooks, HTTP clients and the trigger load only when a task runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.exceptions import AvatarError, AvatarInputError
from airflow_provider_avatar.inputs import checking, flag, number
from airflow_provider_avatar.status import TaskState, Verdict, judge, state_set
from airflow_provider_avatar.waiting import ProgressLog

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_avatar.hooks.base import AvatarBaseHook


def _states_param(name: str, values: Iterable[TaskState | str] | None) -> frozenset[TaskState] | None:
    """A user's state names, normalised; an unknown name is an error naming the parameter."""
    if values is None:
        return None
    if not isinstance(values, str | TaskState | Iterable):
        raise ValueError(f"{name} must be a state name or a list of them; got {values!r}")
    try:
        return state_set(values)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def conn_id_alias(name: str) -> property:
    """A service sensor's ``<service>_conn_id``: the same value as ``conn_id``, templated under its own name."""
    return property(
        lambda self: self.conn_id,
        lambda self, value: setattr(self, "conn_id", value),
        doc=f"Airflow connection id (``{name}``), the same as ``conn_id``.",
    )


class AvatarTaskSensor(BaseSensorOperator):
    """Wait until a remote task reaches one of ``target_states``; fail on ``failure_states``.

    Returns (XCom) the final ``TaskStatus`` as a dict. Its ``video_url`` has no query string;
    :class:`~airflow_provider_avatar.operators.download.AvatarVideoDownloadOperator` fetches a
    fresh signed URL from it.

    :param service: service key (``scenext``, ...).
    :param remote_task_id: the service's task id (templated).
    :param conn_id: Airflow connection id (templated); defaults to ``<service>_default``. Service
        sensors take it as ``<service>_conn_id``.
    :param poll_interval: seconds between status checks (alias of ``poke_interval``).
    :param target_states: states that end the wait successfully (service default if omitted).
    :param failure_states: states that fail the task (service default minus ``target_states`` if
        omitted, so waiting for a stream's STOPPED does not fail on it).
    :param not_found_grace: seconds during which "task not found" is retried for a task this wait
        has not seen yet (a service may not list a task right after create); after it, the wait
        fails with "task was never found: check the remote task id". A task that was seen (in any
        state) and is then not found is decided at once: FAILED, or STOPPED for a stream that was live.
    :param timeout: seconds the wait may take; in deferrable mode the task's ``execution_timeout``
        bounds the trigger's deadline too, and the wait ends with a timeout naming the deadline.
    :param error_window: seconds of consecutive transient errors tolerated before failing. In
        reschedule mode each poke is a new task attempt that keeps no memory of earlier errors:
        an outage is retried within each poke and then bounded by ``timeout`` instead.
    :param deferrable: wait in the triggerer instead of a worker slot. Default from
        ``[operators] default_deferrable`` (false in a stock Airflow config, so a deployment
        without a triggerer never hangs); pass ``deferrable=True`` to defer.
    """

    template_fields: Sequence[str] = ("remote_task_id", "conn_id")
    #: Seconds between checks when neither ``poll_interval`` nor ``poke_interval`` is given
    #: (``None``: Airflow's own default); service sensors set the service's advised interval.
    default_poll_interval: ClassVar[float | None] = None
    ui_color = "#e8f4ff"

    def __init__(
        self,
        *,
        service: str,
        remote_task_id: str,
        conn_id: str | None = None,
        poll_interval: float | None = None,
        target_states: Iterable[TaskState | str] | None = None,
        failure_states: Iterable[TaskState | str] | None = None,
        not_found_grace: float = 60.0,
        error_window: float = 300.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        **kwargs: Any,
    ) -> None:
        from airflow_provider_avatar.services import SERVICES, service_info

        # Everything here is checked when the DAG is parsed: none of it is templated.
        with checking(service if service in SERVICES else "unknown", "wait"):
            if service not in SERVICES:
                service_info(str(service))  # raises, naming the known services
            if poll_interval is not None:
                number("poll_interval", poll_interval, positive=True)
            targets = _states_param("target_states", target_states)
            failures = _states_param("failure_states", failure_states)
            if targets is not None and not targets:
                raise ValueError("target_states must not be empty: the wait could never succeed")
            number("not_found_grace", not_found_grace, minimum=0)
            number("error_window", error_window, minimum=0)
            flag("deferrable", deferrable)
        if poll_interval is None and "poke_interval" not in kwargs:
            poll_interval = self.default_poll_interval
        if poll_interval is not None:
            kwargs["poke_interval"] = poll_interval
        super().__init__(**kwargs)
        info = service_info(service)
        self.service = service
        self.remote_task_id = remote_task_id
        self.conn_id = info.default_conn_id if conn_id is None else conn_id
        self.target_states = targets
        self.failure_states = failures
        self.not_found_grace = not_found_grace
        self.error_window = error_window
        self.deferrable = deferrable
        self._hook: AvatarBaseHook | None = None
        self._first_check_at: float | None = None
        self._last_ok_at: float | None = None
        self._progress = ProgressLog(self.log)
        #: States this wait observed (or that are implied, e.g. by a stop request); handed to the trigger.
        self._seen: set[TaskState] = set()

    @property
    def poll_interval(self) -> float:
        return float(self.poke_interval)

    @property
    def hook(self) -> AvatarBaseHook:
        if self._hook is None:
            from airflow_provider_avatar.services import make_hook

            self._hook = make_hook(self.service, self.conn_id)
        return self._hook

    def _states(self) -> tuple[frozenset[TaskState], frozenset[TaskState]]:
        protocol = self.hook.protocol
        targets = self.target_states if self.target_states is not None else protocol.default_target_states
        # Default failures never include a chosen target: waiting for STOPPED must not fail on it.
        failures = self.failure_states if self.failure_states is not None else protocol.default_failure_states - targets
        if not targets:
            raise ValueError("target_states must not be empty")
        return targets, failures

    # -- poke and reschedule -------------------------------------------------------------------
    def poke(self, context: Context) -> bool | PokeReturnValue:
        from airflow_provider_avatar.waiting import after_error, not_listed_yet, outcome_event, result_from_event

        now = clock().time()
        if self._first_check_at is None:
            self._first_check_at = self._wait_started_at(context, now)
            self._last_ok_at = now
        targets, failures = self._states()
        try:
            status = self.hook.get_status(self.remote_task_id)
        except AvatarError as exc:
            gone = after_error(
                self.hook.protocol,
                exc,
                seen=frozenset(self._seen),
                now=now,
                last_ok_at=self._last_ok_at or now,
                error_window=self.error_window,
                not_found_grace_until=self._first_check_at + self.not_found_grace,
            )
            if gone is None:
                if not_listed_yet(exc):
                    self.log.info("%s task %s is not listed yet; checking again", self.service, self.remote_task_id)
                else:
                    self.log.warning("Status check failed, will check again: %s", exc)
                return False
            status = gone
        self._last_ok_at = now
        self._seen.add(status.state)
        verdict = judge(status, targets, failures)
        if verdict is Verdict.WAIT:
            self._progress.observe(status)
            return False
        value = result_from_event(
            outcome_event(status, verdict), service=self.service, remote_task_id=self.remote_task_id
        )
        return PokeReturnValue(is_done=True, xcom_value=value)

    def _wait_started_at(self, context: Context, now: float) -> float:
        """In reschedule mode each poke is a new instance: the wait began at the first reschedule."""
        if self.reschedule:
            first = context["ti"].get_first_reschedule_date(context)
            if first is not None:
                return first.timestamp()
        return now

    # -- deferrable ----------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        started = clock().time()
        try:
            result = self.poke(context)  # one check first: no deferral for a task that already ended
        except AirflowException as exc:
            # The same policy BaseSensorOperator.resume_execution applies to the deferred half.
            if self.soft_fail or getattr(self, "never_fail", False):
                flag = "soft_fail" if self.soft_fail else "never_fail"
                raise AirflowSkipException(f"Skipping because {flag} is set: {exc}") from exc
            raise
        if isinstance(result, PokeReturnValue):
            return result.xcom_value
        self._defer(context, started)
        return None

    def _deadline(self, context: Context, started: float) -> float:
        """``started + timeout``, or the end of the task's ``execution_timeout`` when that comes first.

        Airflow does not apply ``execution_timeout`` to the deferred part of a task: without this
        bound the wait would outlive it, then be cut by the trigger timeout with no clear event.
        """
        deadline = started + self.timeout
        if self.execution_timeout is not None:
            ti_start = getattr(context.get("ti"), "start_date", None)
            task_start = ti_start.timestamp() if isinstance(ti_start, datetime) else started
            ends = task_start + self.execution_timeout.total_seconds()
            if ends < deadline:
                self.log.info("The wait ends with the task's execution_timeout, before its sensor timeout")
                deadline = ends
        return deadline

    def _defer(self, context: Context, started: float) -> None:
        from airflow_provider_avatar.triggers.task_status import AvatarTaskTrigger

        targets, failures = self._states()
        deadline = self._deadline(context, started)
        self.defer(
            trigger=AvatarTaskTrigger(
                service=self.service,
                conn_id=self.conn_id,
                remote_task_id=self.remote_task_id,
                target_states=[s.value for s in targets],
                failure_states=[s.value for s in failures],
                poll_interval=self.poll_interval,
                deadline=deadline,
                not_found_grace_until=started + self.not_found_grace,
                error_window=self.error_window,
                seen_states=[s.value for s in self._seen],
                started_at=self._first_check_at if self._first_check_at is not None else started,
            ),
            method_name="execute_complete",
            # A backstop only: the trigger's own deadline (with its final poll) ends the wait first.
            timeout=timedelta(seconds=max(0.0, deadline - started) + 2 * self.poll_interval + 60),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow_provider_avatar.waiting import result_from_event

        value = result_from_event(event, service=self.service, remote_task_id=self.remote_task_id)
        self.log.info("%s task %s reached %s", self.service, self.remote_task_id, value.get("state"))
        return value


class AvatarStreamSensor(AvatarTaskSensor):
    """Base of the live-stream sensors (ZEGO, TRTC): wait until a stream is live (STREAMING) by
    default, or with ``target_states={"STOPPED"}`` until it has ended.

    Stream services drop ended tasks, so "not found" is read with this wait's history: STOPPED
    once the stream was seen live (or ``stop_requested`` is set), FAILED if it was seen only
    before going live. Reschedule mode forgets what earlier pokes saw, so it is refused for a
    STOPPED wait unless ``stop_requested`` says the stream was stopped or is known to have been live.

    :param stop_requested: a stop was sent for this stream (or it is known to have been live), so
        "not found" means it has ended.
    """

    def __init__(self, *, service: str, stop_requested: bool = False, **kwargs: Any) -> None:
        with checking(service, "wait"):
            flag("stop_requested", stop_requested)
        super().__init__(service=service, **kwargs)
        self.stop_requested = stop_requested
        if stop_requested:
            self._seen.add(TaskState.STOPPING)
        elif self.mode == "reschedule" and TaskState.STOPPED in (self.target_states or ()):
            raise AvatarInputError(
                "target_states with STOPPED in reschedule mode: reschedule mode cannot remember between pokes "
                "that the stream was live, so a gone stream would read as FAILED: set stop_requested=True (the "
                "stream was stopped or is known to have been live), or use poke or deferrable mode",
                service=service,
                action="wait",
            )
