"""The reliability suite's fixtures: one ``svc`` per row of the service registry, on virtual time.

Everything per service comes from the registry (``SERVICES``), the service's own modules (its hook,
its sensor in ``sensors/<key>.py``) and its simulator's declarations (``ServiceSim.script``,
``not_applicable``, ``create_call``, ``stop_method``): a service added to the registry is covered
without editing the suite. A cell that does not apply is skipped with the simulator's reason.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from airflow.sdk.bases.hook import BaseHook

from airflow_provider_avatar.clock import current
from airflow_provider_avatar.exceptions import AvatarError, AvatarNotFoundError
from airflow_provider_avatar.hooks.base import AvatarBaseHook
from airflow_provider_avatar.protocols.base import RequestSpec
from airflow_provider_avatar.sensors.base import AvatarTaskSensor
from airflow_provider_avatar.services import SERVICES, Service, hook_class
from airflow_provider_avatar.status import TaskState
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import NEVER_ISSUED_ID, RequestRecord, ServiceSim, Simulator
from airflow_provider_avatar.transport.sdk import SdkTransport
from airflow_provider_avatar.transport.sync import SyncTransport
from airflow_provider_avatar.triggers.task_status import AvatarTaskTrigger
from tests.conftest import SENTINELS

try:
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # pragma: no cover - Airflow < 3.2
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef,attr-defined,unused-ignore]

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", list(SERVICES))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "check(number): the reliability check (1-12, 0 = mode agreement) a test covers")


def sensor_class(key: str) -> type[AvatarTaskSensor]:
    """The sensor ``sensors/<key>.py`` defines (the one a DAG uses to wait for this service)."""
    module = importlib.import_module(SERVICES[key].module("sensors"))
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, AvatarTaskSensor) and cls.__module__ == module.__name__
    ]
    assert len(found) == 1, f"{module.__name__} should define one sensor, found {found}"
    return found[0]


@dataclass
class Svc:
    """One service under test: its row, simulator, hook, sensor and the histories it scripts."""

    key: str
    row: Service
    simulator: Simulator
    sim: ServiceSim
    clock: FakeClock
    monkeypatch: pytest.MonkeyPatch

    def connect(self, **extra: Any) -> None:
        """Point ``<key>_default`` at the simulator with these connection extras (read_timeout 2 s unless given)."""
        extra.setdefault("read_timeout", 2)
        for key, value in self.simulator.connection_env(self.key, **extra).items():
            self.monkeypatch.setenv(key, value)

    @property
    def secret(self) -> str:
        return SENTINELS[self.key]

    def skip_unless(self, what: str) -> None:
        """Skip (with the simulator's reason) when ``what`` (a history or ``check-N``) does not apply."""
        reason = self.sim.not_applicable.get(what)
        if reason is not None:
            pytest.skip(f"{self.key}: {reason}")

    def script(self, history: str, *, duration: float = 1.0) -> str:
        self.skip_unless(history)
        return self.sim.script(history, duration=duration)

    def hook(self) -> AvatarBaseHook:
        return hook_class(self.key)()

    @property
    def protocol(self) -> Any:
        return hook_class(self.key).protocol

    @property
    def target(self) -> TaskState:
        (state,) = self.protocol.default_target_states
        return state  # type: ignore[no-any-return]

    def sensor(self, remote_task_id: str, **kwargs: Any) -> AvatarTaskSensor:
        kwargs.setdefault("poll_interval", 0.2)
        kwargs.setdefault("timeout", 6)
        kwargs.setdefault("not_found_grace", 2)
        return sensor_class(self.key)(task_id="wait", remote_task_id=remote_task_id, **kwargs)

    def trigger(self, remote_task_id: str, *, timeout: float = 30.0, **kwargs: Any) -> AvatarTaskTrigger:
        """A trigger with the service's default states, rebuilt from ``serialize()`` like the triggerer does."""
        protocol = self.protocol
        now = current().time()
        kwargs.setdefault("target_states", [s.value for s in protocol.default_target_states])
        kwargs.setdefault("failure_states", [s.value for s in protocol.default_failure_states])
        kwargs.setdefault("poll_interval", 0.2)
        kwargs.setdefault("not_found_grace_until", now + 2)
        trigger = AvatarTaskTrigger(
            service=self.key,
            conn_id=self.row.default_conn_id,
            remote_task_id=remote_task_id,
            deadline=now + timeout,
            **kwargs,
        )
        return rebuild(trigger)

    def requests(self) -> list[RequestRecord]:
        return self.simulator.requests(self.key)

    def writes(self) -> list[RequestRecord]:
        """Requests that were not status reads: creates, drives, stops."""
        return [r for r in self.requests() if not r.read]

    def record_sends(self) -> list[RequestSpec]:
        """From now on, every request the sync hooks put on the wire (each attempt, SDK ones included).

        The client's side of a count: a request whose caller gave up before the simulator's loop
        reached it may never be seen there (aiohttp drops what a closed connection had sent), so a
        lower bound on "sent" is only deterministic here.
        """
        sent: list[RequestSpec] = []
        for cls in (SyncTransport, SdkTransport):
            original = cls.__dict__["_attempt"]

            def attempt(self: Any, spec: RequestSpec, check: bool, _original: Any = original) -> Any:
                sent.append(spec)
                return _original(self, spec, check)

            self.monkeypatch.setattr(cls, "_attempt", attempt)
        return sent

    def expected(self, history: str) -> tuple[str, Any]:
        """What a default wait ends in for ``history``: ``("ok", state)`` or ``("error", class name)``."""
        if history in ("succeeds", "unknown_then_succeeds", "not_listed_then_succeeds"):
            return "ok", self.target.value
        if history == "long_running":
            return "error", "timeout"
        if history == "never_exists":  # the service's own "not found", read the way the service reads it
            try:
                self.hook().get_status(NEVER_ISSUED_ID)
            except AvatarNotFoundError as exc:
                ends = self.protocol.status_when_never_found(exc)
                return "error", "AvatarNotFoundError" if ends is None else "failed"
            raise AssertionError(f"{self.key} found a task it never issued")
        return "error", "failed"


@pytest.fixture
def svc(service: str, sim: Simulator, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Svc:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # the Tencent SDK honours them; the simulator is on loopback
    svc = Svc(service, SERVICES[service], sim, sim.services[service], fake_clock, monkeypatch)
    svc.connect()
    return svc


def rebuild(trigger: AvatarTaskTrigger) -> AvatarTaskTrigger:
    """The trigger as the triggerer loads it: from its class path and ``serialize()`` kwargs."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    rebuilt: AvatarTaskTrigger = cls(**json.loads(json.dumps(kwargs)))
    return rebuilt


async def collect_events(trigger: AvatarTaskTrigger, limit: float = 120.0) -> list[dict[str, Any]]:
    """Every event ``run()`` yields until it returns (``limit``: real seconds, a hang guard)."""
    async with asyncio.timeout(limit):
        return [event.payload async for event in trigger.run()]


# -- the three sensor modes ---------------------------------------------------------------------------
class FakeTI:
    """What a sensor asks of its task instance: the first reschedule date and the try's start."""

    def __init__(self) -> None:
        self.first: datetime | None = None
        self.start_date: datetime | None = None

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", XCom value)`` or ``("error", (class, reason, code, detail))``; any sensor timeout is
    ``("error", "timeout")`` (poke mode's comes from Airflow's own loop, with its own wording)."""
    try:
        return "ok", fn()
    except AirflowSensorTimeout:
        return "error", "timeout"
    except AvatarError as exc:
        return "error", (type(exc).__name__, exc.reason, exc.code, exc.detail)


def comparable(value: Any, remote_task_id: str) -> Any:
    """An outcome as modes must agree on it: the task's id, request ids (one per answer) and the
    values of ``result`` (ids and times of the task scripted for each mode) are left out."""
    value = json.loads(json.dumps(value).replace(remote_task_id, "<id>"))
    if isinstance(value, dict):
        value.pop("request_id", None)
        if isinstance(value.get("result"), dict):
            value["result"] = sorted(value["result"])
    return value


def run_mode(mode: str, make: Callable[..., AvatarTaskSensor]) -> tuple[str, Any]:
    """Run a sensor built by ``make(**mode kwargs)`` to its end in ``mode``, like Airflow would."""
    if mode == "poke":
        return outcome(lambda: make(mode="poke", deferrable=False).execute({}))
    if mode == "reschedule":
        ti = FakeTI()

        def loop() -> Any:
            while True:  # every reschedule builds a new sensor instance, like Airflow does
                sensor = make(mode="reschedule", deferrable=False)
                try:
                    return sensor.execute({"ti": ti})  # type: ignore[typeddict-item]
                except AirflowRescheduleException:
                    ti.first = ti.first or datetime.fromtimestamp(current().time(), UTC)
                    current().sleep(sensor.poll_interval)

        return outcome(loop)
    sensor = make(deferrable=True)

    def flow() -> Any:
        try:
            return sensor.execute({})
        except TaskDeferred as deferred:
            events = asyncio.run(collect_events(rebuild(deferred.trigger)))
            assert len(events) == 1, events
            return getattr(sensor, deferred.method_name)({}, event=events[0])

    return outcome(flow)


MODES = ("poke", "reschedule", "deferrable")


# -- nothing blocks the event loop ------------------------------------------------------------------
#: Calls that block the thread they run on. In the trigger path they may only run in a worker thread.
BLOCKING_CALLS: dict[str, tuple[Any, str]] = {
    "time.sleep": (time, "sleep"),
    "requests.Session.send": (requests.Session, "send"),
    "BaseHook.get_connection": (BaseHook, "get_connection"),
    "socket.getaddrinfo": (__import__("socket"), "getaddrinfo"),
}


@pytest.fixture
def loop_thread_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make every blocking call fail when made on the thread running the event loop; record it.

    The trigger turns any exception into an error event, so the record, not the exception, is
    what the tests check.
    """
    loop_thread = threading.get_ident()  # pytest-asyncio runs the loop on the test's thread
    calls: list[str] = []

    def guard(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == loop_thread:
                calls.append(name)
                raise AssertionError(f"blocking call {name} on the event loop thread")
            return real(*args, **kwargs)

        return guarded

    for name, (owner, attr) in BLOCKING_CALLS.items():
        real = getattr(owner, attr)
        if isinstance(owner, type) and isinstance(owner.__dict__.get(attr), classmethod):
            func = owner.__dict__[attr].__func__
            monkeypatch.setattr(owner, attr, classmethod(guard(name, func)))
        else:
            monkeypatch.setattr(owner, attr, guard(name, real))
    yield calls
