"""The submit guard: a later try of a task instance never sends a second create.

Most tests drive the five create operators against the simulator with an in-memory store (injected
with ``submit_guard.use_store``); the last ones run real DAGs with ``dag.test()`` through Airflow's
own store (the task state store).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_avatar import submit_guard
from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarInvalidRequestError,
    AvatarSubmitUnknownError,
    AvatarTransientError,
)
from airflow_provider_avatar.submit_guard import GuardRecord, TaskIdentity
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import Simulator
from tests.conftest import SENTINELS, connection_env

IDENTITY = TaskIdentity("d", "manual__1", "create", -1)


class MemoryStore:
    """A dict-backed store that remembers every operation, in order."""

    where = "the test store"

    def __init__(self, value: Any = None) -> None:
        self.value = value
        self.ops: list[tuple[str, Any]] = []

    def read(self) -> Any:
        self.ops.append(("read", None))
        return self.value

    def write(self, record: dict[str, Any]) -> None:
        self.ops.append(("write", json.loads(json.dumps(record))))
        self.value = record

    def remove(self) -> None:
        self.ops.append(("remove", None))
        self.value = None

    @property
    def writes(self) -> list[dict[str, Any]]:
        return [arg for op, arg in self.ops if op == "write"]


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    memory = MemoryStore()
    with submit_guard.use_store(lambda context, identity: memory):
        yield memory


def _context(try_number: int = 1) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id=IDENTITY.dag_id, run_id=IDENTITY.run_id, task_id=IDENTITY.task_id)
    return {"ti": SimpleNamespace(**vars(ti), map_index=-1, try_number=try_number)}


@dataclass(frozen=True)
class Case:
    service: str
    action: str
    build: Callable[[], Any]


def _scenext() -> Any:
    from airflow_provider_avatar.operators.scenext import ScenextCreateVideoOperator

    return ScenextCreateVideoOperator(task_id="create", question="Why is the sky blue?")


def _minimax(prompt: str = "a cat walks on a beach") -> Any:
    from airflow_provider_avatar.operators.minimax import MiniMaxCreateVideoOperator

    return MiniMaxCreateVideoOperator(task_id="create", prompt=prompt)


def _dreamface() -> Any:
    from airflow_provider_avatar.operators.dreamface import DreamFaceCreateAvatarOperator

    return DreamFaceCreateAvatarOperator(task_id="create", body={"image_url": "https://media.test/face.png"})


def _trtc() -> Any:
    from airflow_provider_avatar.operators.trtc import TrtcStartStreamIngestOperator

    return TrtcStartStreamIngestOperator(task_id="create", room_id="room-1", stream_url="https://media.test/a.mp4")


def _zego() -> Any:
    from airflow_provider_avatar.operators.zego import ZegoCreateDigitalHumanStreamOperator

    return ZegoCreateDigitalHumanStreamOperator(task_id="create", digital_human_id="dh-1", room_id="room-1")


CASES = [
    Case("scenext", "create_video", _scenext),
    Case("minimax", "create_video", _minimax),
    Case("dreamface", "create_avatar", _dreamface),
    Case("trtc", "StartStreamIngest", _trtc),
    Case("zego", "CreateDigitalHumanStreamTask", _zego),
]
#: Services whose create has no idempotency key: a record without a remote task id stops the try.
NO_KEY = [case for case in CASES if case.service != "zego"]


@pytest.fixture
def service_sim(request: pytest.FixtureRequest, use_connection: Callable[..., Simulator]) -> Simulator:
    case: Case = request.param
    if case.service == "trtc":
        request.getfixturevalue("trtc_conn")
    return use_connection(case.service)


def _record(case: Case, try_number: int = 1, remote_task_id: str | None = None) -> dict[str, Any]:
    return {
        "dag_id": IDENTITY.dag_id,
        "run_id": IDENTITY.run_id,
        "task_id": IDENTITY.task_id,
        "map_index": -1,
        "try_number": try_number,
        "service": case.service,
        "action": case.action,
        "sent_at": "2026-11-30T12:00:00Z",
        "remote_task_id": remote_task_id,
    }


def _params(cases: list[Case]) -> Any:
    return pytest.mark.parametrize(
        ("case", "service_sim"), [(c, c) for c in cases], ids=[c.service for c in cases], indirect=["service_sim"]
    )


@_params(CASES)
def test_a_first_try_records_before_sending_adds_the_id_and_removes_the_record_on_success(
    case: Case, service_sim: Simulator, store: MemoryStore
) -> None:
    remote_task_id = case.build().execute(_context())
    assert len(service_sim.requests(case.service)) == 1  # one create, nothing else
    first, second = store.writes
    assert first == _record(case) | {"sent_at": first["sent_at"]}  # written before the answer: no id yet
    assert second == first | {"remote_task_id": remote_task_id}
    assert store.ops[0] == ("read", None) and store.ops[-1] == ("remove", None) and store.value is None
    everything = json.dumps(store.writes)
    assert SENTINELS[case.service] not in everything
    for typed in ("sky blue", "beach", "face.png", "a.mp4", "dh-1"):  # the request body is not stored
        assert typed not in everything


@_params(NO_KEY)
def test_a_record_without_id_fails_the_next_try_before_anything_is_sent(
    case: Case, service_sim: Simulator, store: MemoryStore
) -> None:
    store.value = _record(case)
    with pytest.raises(AvatarSubmitUnknownError) as info:
        case.build().execute(_context(try_number=2))
    assert service_sim.requests(case.service) == []
    message = str(info.value)
    assert "try 1 of this task instance may have sent" in message and "try 2 sends nothing" in message
    assert "2026-11-30T12:00:00Z" in message and "delete the test store" in message
    assert store.value == _record(case)  # kept until a person decides


@_params(CASES)
def test_a_record_with_an_id_reattaches_without_sending(case: Case, service_sim: Simulator, store: MemoryStore) -> None:
    store.value = _record(case, remote_task_id="remote-42")
    assert case.build().execute(_context(try_number=2)) == "remote-42"
    assert service_sim.requests(case.service) == []
    assert store.value is None  # the task succeeded: a deliberate clear creates anew


@pytest.mark.parametrize(("case", "service_sim"), [(CASES[-1], CASES[-1])], ids=["zego"], indirect=["service_sim"])
def test_zego_looks_its_stream_up_by_stream_id_instead_of_failing(
    case: Case, service_sim: Simulator, store: MemoryStore
) -> None:
    first_id = case.build().execute(_context())  # try 1's create landed; pretend its answer was never recorded
    store.value = _record(case)
    before = len(service_sim.requests("zego"))
    assert case.build().execute(_context(try_number=2)) == first_id
    actions = [r.path.split("Action=")[1].split("&")[0] for r in service_sim.requests("zego")[before:]]
    assert actions == ["QueryDigitalHumanStreamTasks"]  # found by StreamId and RoomId: no second create
    assert store.value is None


@pytest.mark.parametrize(("case", "service_sim"), [(CASES[-1], CASES[-1])], ids=["zego"], indirect=["service_sim"])
def test_zego_creates_when_no_stream_runs_under_its_stream_id(
    case: Case, service_sim: Simulator, store: MemoryStore
) -> None:
    store.value = _record(case)
    remote_task_id = case.build().execute(_context(try_number=2))
    actions = [r.path.split("Action=")[1].split("&")[0] for r in service_sim.requests("zego")]
    assert actions == ["QueryDigitalHumanStreamTasks", "CreateDigitalHumanStreamTask"]
    assert store.writes[-1]["remote_task_id"] == remote_task_id and store.value is None


@_params(CASES)
def test_a_refused_create_removes_the_record_and_the_next_try_creates(
    case: Case, service_sim: Simulator, store: MemoryStore, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    good = connection_env(service_sim, case.service)
    bad = {name: json.dumps(json.loads(value) | {"password": "wrong-key"}) for name, value in good.items()}
    monkeypatch.setenv(*next(iter(bad.items())))
    with pytest.raises(AvatarAuthError):
        case.build().execute(_context())
    assert [op for op, _ in store.ops] == ["read", "write", "remove"] and store.value is None
    monkeypatch.setenv(*next(iter(good.items())))
    assert case.build().execute(_context(try_number=2))
    assert len(store.writes) == 3 and store.value is None


def test_a_content_refusal_400_removes_the_record(
    use_connection: Callable[..., Simulator], store: MemoryStore, fake_clock: FakeClock
) -> None:
    sim = use_connection("minimax")
    with pytest.raises(AvatarInvalidRequestError):
        _minimax("something sensitive").execute(_context())
    assert [op for op, _ in store.ops] == ["read", "write", "remove"]
    assert _minimax().execute(_context(try_number=2)) in sim.services["minimax"].tasks  # type: ignore[attr-defined]


def test_bad_input_writes_no_record(use_connection: Callable[..., Simulator], store: MemoryStore) -> None:
    sim = use_connection("minimax")
    with pytest.raises(ValueError, match="prompt"):
        _minimax("x" * 2001).execute(_context())
    assert [op for op, _ in store.ops] == ["read"] and sim.requests("minimax") == []


def test_a_lost_answer_keeps_the_record(use_connection: Callable[..., Simulator], store: MemoryStore) -> None:
    sim = use_connection("scenext")
    from airflow_provider_avatar.testing.simulator import Faults

    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("reset",)))
    with pytest.raises(AvatarSubmitUnknownError):
        _scenext().execute(_context())
    assert store.value is not None and store.value["remote_task_id"] is None
    sim.set_faults("scenext", None)
    with pytest.raises(AvatarSubmitUnknownError, match="try 1 of this task instance"):
        _scenext().execute(_context(try_number=2))
    assert len(sim.requests("scenext")) == 1


class _Died(BaseException):
    """The process dying (SIGKILL of its supervisor) at a chosen point."""


def test_a_try_that_dies_after_the_answer_leaves_an_id_the_next_try_reattaches_to(
    use_connection: Callable[..., Simulator], store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = use_connection("scenext")

    def die(self: Any) -> None:
        raise _Died

    with monkeypatch.context() as patch:
        patch.setattr(submit_guard.SubmitGuard, "clear", die)
        with pytest.raises(_Died):
            _scenext().execute(_context())
    created = store.value["remote_task_id"]
    assert created and _scenext().execute(_context(try_number=2)) == created
    assert len(sim.requests("scenext")) == 1 and store.value is None


def test_a_dead_supervisor_does_not_hide_the_created_id(
    use_connection: Callable[..., Simulator], store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Updates after the answer are best effort: the task still returns the id it created (and logs it)."""
    use_connection("scenext")
    original = store.write

    def write(record: dict[str, Any]) -> None:
        if record["remote_task_id"] is not None:
            raise BrokenPipeError("supervisor gone")
        original(record)

    monkeypatch.setattr(store, "write", write)
    monkeypatch.setattr(store, "remove", lambda: (_ for _ in ()).throw(BrokenPipeError("supervisor gone")))
    assert _scenext().execute(_context())
    assert store.value is not None and store.value["remote_task_id"] is None  # the next try stops, safely


def test_a_store_that_cannot_be_written_stops_the_create_before_it_is_sent(
    use_connection: Callable[..., Simulator], store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = use_connection("scenext")
    monkeypatch.setattr(store, "write", lambda record: (_ for _ in ()).throw(OSError("API server down")))
    with pytest.raises(AvatarTransientError, match="nothing was sent") as info:
        _scenext().execute(_context())
    assert info.value.sent is False and sim.requests("scenext") == []


@pytest.mark.parametrize(
    "context",
    [{}, {"ti": None}, {"ti": SimpleNamespace(dag_id="d")}],
    ids=["no-ti", "ti-none", "ti-incomplete"],
)
def test_outside_a_real_task_the_guard_does_nothing(
    context: dict[str, Any], use_connection: Callable[..., Simulator]
) -> None:
    sim = use_connection("scenext")
    assert _scenext().execute(context)
    assert _scenext().execute(context)  # no record anywhere: each call creates
    assert len(sim.requests("scenext")) == 2


def test_a_full_context_without_a_supervisor_is_not_guarded(use_connection: Callable[..., Simulator]) -> None:
    """``execute()`` from a unit test with a fake ti: no Task SDK supervisor, so no store is touched."""
    sim = use_connection("scenext")
    assert submit_guard.default_store(_context(), IDENTITY) is None
    assert _scenext().execute(_context()) and _scenext().execute(_context(try_number=2))
    assert len(sim.requests("scenext")) == 2


def test_unreadable_records_are_ignored() -> None:
    assert GuardRecord.from_json("not json") is None and GuardRecord.from_json({"dag_id": "d"}) is None
    assert GuardRecord.from_json(json.dumps(_record(CASES[0]))) == GuardRecord(**_record(CASES[0]))


# -- Airflow's own stores, through dag.test() -------------------------------------------------------------------

GUARD_DAG = """
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_avatar.operators.scenext import ScenextCreateVideoOperator

with DAG("guard_check", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    ScenextCreateVideoOperator(task_id="create", question="Why?", retries=1, retry_delay=timedelta(0))
"""


@pytest.fixture
def guard_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Any:
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "guard_check.py").write_text(GUARD_DAG)
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(tmp_path))  # dag.test() re-parses the dags folder
    return DagBag(dag_folder=str(tmp_path)).get_dag("guard_check")


def _record_left(run: Any) -> str | None:
    """The record as stored in the task instance's task state store."""
    from airflow._shared.state import TaskScope
    from airflow.state import get_state_backend
    from airflow.utils.session import create_session

    scope = TaskScope(dag_id=run.dag_id, run_id=run.run_id, task_id="create", map_index=-1)
    with create_session() as session:
        stored: str | None = get_state_backend().get(scope, submit_guard.STATE_KEY, session=session)
        return stored


def _die_after_create(monkeypatch: pytest.MonkeyPatch, *, when: str) -> list[int]:
    """Make try 1 die after its create landed: before the answer is recorded, or just before success."""
    from airflow_provider_avatar.hooks.scenext import ScenextHook

    tries: list[int] = []
    create, clear = ScenextHook.create_video, submit_guard.SubmitGuard.clear

    def create_then_die(self: ScenextHook, **kwargs: Any) -> str:
        remote_task_id = create(self, **kwargs)
        tries.append(1)
        if when == "before_id" and len(tries) == 1:
            raise RuntimeError("the worker died before the answer was recorded")
        return remote_task_id

    def clear_or_die(self: submit_guard.SubmitGuard) -> None:
        if when == "before_success" and len(tries) == 1 and self.marked:
            raise RuntimeError("the worker died before its success was recorded")
        clear(self)

    monkeypatch.setattr(ScenextHook, "create_video", create_then_die)
    monkeypatch.setattr(submit_guard.SubmitGuard, "clear", clear_or_die)
    return tries


def test_dag_test_a_retry_after_a_lost_answer_fails_without_a_second_create(
    guard_dag: Any, scenext_conn: Simulator, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    _die_after_create(monkeypatch, when="before_id")
    run = guard_dag.test()
    (ti,) = run.get_task_instances()
    assert (ti.state, ti.try_number) == ("failed", 2), logs()[-3000:]
    assert [r.method for r in scenext_conn.requests("scenext")] == ["POST"]  # one create across both tries
    assert "try 1 of this task instance may have sent a scenext create_video" in logs()
    record = _record_left(run)
    assert record is not None
    assert json.loads(record)["remote_task_id"] is None and SENTINELS["scenext"] not in record


def test_dag_test_a_retry_reattaches_to_the_recorded_id_and_clears_the_record(
    guard_dag: Any, scenext_conn: Simulator, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    _die_after_create(monkeypatch, when="before_success")
    run = guard_dag.test()
    (ti,) = run.get_task_instances()
    assert (ti.state, ti.try_number) == ("success", 2), logs()[-3000:]
    assert [r.method for r in scenext_conn.requests("scenext")] == ["POST"]
    assert str(ti.xcom_pull(task_ids="create")) in scenext_conn.services["scenext"].tasks  # type: ignore[attr-defined]
    assert _record_left(run) is None
