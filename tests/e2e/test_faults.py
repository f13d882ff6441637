"""Real Airflow on its worst day: a triggerer killed, two triggerers with one killed, the scheduler killed
while a create is in flight, and 30% of status polls failing for the whole run.

The simulator runs in this process; its request log is the truth about what reached the service.
Slow (minutes); run with ``make e2e-faults`` or ``pytest -m e2e_faults tests/e2e``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_avatar.testing.simulator import Faults

from .harness import (
    EXAMPLES,
    LOCAL_DAGS,
    Deployment,
    defer_exit_processed,
    deferred_exits,
    deploy,
    release_after_defer_exit,
    wait_for,
    wait_for_run,
    wait_until_ready,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_avatar.testing.simulator import Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.e2e_faults]

SCENEXT_DAG = "example_scenext_video"
MAPPED_DAG = "e2e_scenext_mapped"
TRTC_DAG = "example_trtc_stream_ingest"
TRTC_CONF = {"stream_url": "https://media.test/intro.mp4"}
#: A killed triggerer's triggers are adopted once its heartbeat is this many seconds old (default 30).
FAST_ADOPTION = {
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "8",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
}
#: A killed scheduler's running tasks are reset by its successor soon (defaults 30 s and 300 s).
FAST_ORPHAN_RESET = {
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "8",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
}


# -- what the DB and the simulator say ---------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Airflow's serialized form (``{"__var": ..., "__type": ...}``) as plain JSON values."""
    if isinstance(value, dict):
        if "__var" in value and "__type" in value:
            return _plain(value["__var"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def triggers(dep: Deployment) -> dict[int, tuple[int | None, dict[str, Any]]]:
    """Trigger id -> (triggerer job id, kwargs) of this provider's triggers."""
    rows = dep.query("SELECT id, triggerer_id, kwargs FROM trigger WHERE classpath LIKE 'airflow_provider_avatar.%'")
    return {tid: (owner, _plain(json.loads(kwargs))) for tid, owner, kwargs in rows}


def status_polls(sim: Simulator) -> int:
    return sum(1 for r in sim.requests("scenext") if r.method == "GET" and "/get_status/" in r.path)


def scenext_creates(sim: Simulator) -> list[str]:
    return [r.path for r in sim.requests("scenext") if r.method == "POST" and r.path.endswith("/gen_video")]


def finish_scenext(sim: Simulator) -> None:
    """Every Scenext task created so far completes now."""
    scenext: Any = sim.services["scenext"]
    for task in scenext.tasks.values():
        task.duration = scenext.state.clock() - task.created_at


def tries(dep: Deployment, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
    return dep.task_instances(dag_id, run_id)


def assert_run_succeeded_without_retries(dep: Deployment, dag_id: str, run_id: str) -> None:
    state = wait_for_run(dep, dag_id, run_id)
    tis = tries(dep, dag_id, run_id)
    assert state == "success", f"run {run_id} of {dag_id} is {state}; tasks {tis}{dep.diagnostics()}"
    retried = {task: ti for task, ti in tis.items() if ti != ("success", 1)}
    assert not retried, f"task instances not succeeded on their first try: {retried}{dep.diagnostics()}"


def events_handled(dep: Deployment, dag_id: str, task_id: str, run_id: str) -> dict[str, int]:
    """Per task instance (``map_index=N`` or the task id): how many trigger events its resumed try handled
    (the sensor's ``execute_complete`` logs "<service> task <id> reached <state>" once per event)."""
    counts: dict[str, int] = {}
    for path in dep.task_logs(dag_id, task_id):
        if f"run_id={run_id}" not in path.parts or ".log.trigger." in path.name:
            continue
        key = next((part for part in path.parts if part.startswith("map_index=")), task_id)
        counts[key] = counts.get(key, 0) + path.read_text(errors="replace").count(" reached ")
    return counts


# -- 1. the triggerer is SIGKILLed while a wait is deferred -----------------------------------------
def test_triggerer_killed_while_waiting(tmp_path: Path, e2e_simulator: Simulator, api_key: str) -> None:
    sim, run = e2e_simulator, "killed_triggerer"
    with deploy(tmp_path, sim, api_key, [EXAMPLES / f"{SCENEXT_DAG}.py"], settings=FAST_ADOPTION) as dep:
        wait_until_ready(dep, [SCENEXT_DAG])
        dep.trigger(SCENEXT_DAG, run)
        wait_for(dep, "wait_for_video deferred", lambda: defer_exit_processed(dep, SCENEXT_DAG, "wait_for_video"))
        first = dep.job_ids["triggerer"]
        polls = status_polls(sim)
        wait_for(dep, "the first triggerer polling", lambda: owners(dep) == [first] and status_polls(sim) > polls + 1)
        ((deadline, timeout_before),) = deadlines(dep, SCENEXT_DAG, run)

        dep.kill("triggerer")
        dep.start("triggerer")
        second, polls = dep.job_ids["triggerer"], status_polls(sim)
        wait_for(dep, "the new triggerer polling", lambda: owners(dep) == [second] and status_polls(sim) > polls + 1)
        assert deadlines(dep, SCENEXT_DAG, run) == [(deadline, timeout_before)], "the restart moved the deadline"

        finish_scenext(sim)
        assert_run_succeeded_without_retries(dep, SCENEXT_DAG, run)
        assert len(scenext_creates(sim)) == 1, f"creates: {scenext_creates(sim)}"
        assert events_handled(dep, SCENEXT_DAG, "wait_for_video", run) == {"wait_for_video": 1}
        trigger_logs = [p.name for p in dep.task_logs(SCENEXT_DAG, "wait_for_video") if ".log.trigger." in p.name]
        assert any(name.endswith(f".trigger.{second}.log") for name in trigger_logs), trigger_logs


def owners(dep: Deployment) -> list[int | None]:
    return sorted({owner for owner, _ in triggers(dep).values()}, key=lambda o: o or 0)


def deadlines(dep: Deployment, dag_id: str, run_id: str) -> list[tuple[float, str | None]]:
    """(the trigger's absolute deadline from its stored kwargs, the task instance's trigger_timeout)."""
    rows = dep.query(
        "SELECT trigger_id, trigger_timeout FROM task_instance"
        " WHERE dag_id = ? AND run_id = ? AND trigger_id IS NOT NULL",
        dag_id,
        run_id,
    )
    stored = triggers(dep)
    return [(float(stored[tid][1]["deadline"]), timeout) for tid, timeout in rows]


# -- 2. two triggerers, one SIGKILLed: the other adopts its triggers ---------------------------------
def test_triggerer_ha_adopts_a_killed_triggerers_waits(tmp_path: Path, e2e_simulator: Simulator, api_key: str) -> None:
    sim, run, videos = e2e_simulator, "triggerer_ha", 4
    with deploy(
        tmp_path,
        sim,
        api_key,
        [LOCAL_DAGS / f"{MAPPED_DAG}.py"],
        triggerers=2,
        # The first triggerer takes two waits; the second, started once it is full, takes the rest.
        args={"triggerer": ["--capacity", "2"]},
        later=["triggerer-2"],
        settings={**FAST_ADOPTION, "AVATAR_E2E_VIDEOS": str(videos)},
    ) as dep:
        wait_until_ready(dep, [MAPPED_DAG])
        dep.trigger(MAPPED_DAG, run)
        wait_for(dep, "every wait deferred", lambda: deferred_exits(dep, MAPPED_DAG, "wait_for_video") >= videos)
        first = dep.job_ids["triggerer"]
        wait_for(dep, "the first triggerer full", lambda: owned(dep).get(first, 0) == 2)
        dep.start("triggerer-2")
        second = dep.job_ids["triggerer-2"]
        wait_for(dep, "the waits spread over both", lambda: owned(dep) == {first: 2, second: videos - 2})

        dep.kill("triggerer")
        wait_for(dep, "the survivor adopting every wait", lambda: owned(dep) == {second: videos})
        finish_scenext(sim)

        assert_run_succeeded_without_retries(dep, MAPPED_DAG, run)
        handled = events_handled(dep, MAPPED_DAG, "wait_for_video", run)
        assert handled == {f"map_index={i}": 1 for i in range(videos)}, f"events handled: {handled}"
        assert len(scenext_creates(sim)) == videos, f"creates: {scenext_creates(sim)}"


def owned(dep: Deployment) -> dict[int | None, int]:
    """Triggerer job id -> how many of this provider's triggers it holds."""
    counts: dict[int | None, int] = {}
    for owner, _ in triggers(dep).values():
        counts[owner] = counts.get(owner, 0) + 1
    return counts


# -- 3. the scheduler is SIGKILLed while a create is in flight ---------------------------------------
def test_scheduler_killed_during_a_create_creates_once(tmp_path: Path, e2e_simulator: Simulator, api_key: str) -> None:
    """The create landed at the service but its answer is held when the scheduler's process group (with
    its LocalExecutor workers) is killed; the restarted scheduler resets the orphaned task instance.

    The later try must not create again: it either re-attaches or fails with AvatarSubmitUnknownError.
    """
    sim, run = e2e_simulator, "killed_scheduler"
    scenext: Any = sim.services["scenext"]
    with deploy(tmp_path, sim, api_key, [EXAMPLES / f"{SCENEXT_DAG}.py"], settings=FAST_ORPHAN_RESET) as dep:
        wait_until_ready(dep, [SCENEXT_DAG])
        sim.hold_create_answers("scenext", 3600.0)
        dep.trigger(SCENEXT_DAG, run)
        wait_for(dep, "the create landed", lambda: len(scenext.tasks) == 1)

        dep.kill("scheduler")
        sim.hold_create_answers("scenext", None)  # a task that outlived its supervisor hears the id now
        # Every video is ready from now on, so a wait succeeds on its first check without deferring (and
        # a second create, the bug this test catches, does not leave the run waiting for an hour).
        finish_scenext(sim)
        scenext.default_duration = 0.0
        dep.start("scheduler")

        state = wait_for_run(dep, SCENEXT_DAG, run)
        tis = tries(dep, SCENEXT_DAG, run)
        assert state in ("success", "failed"), f"run {run} is {state}; tasks {tis}{dep.diagnostics()}"
        created = len(scenext.created_bodies)
        assert created == 1, f"the service received {created} creates for one run; tasks {tis}{dep.diagnostics()}"
        if tis["create_video"][0] == "failed":
            logs = "".join(p.read_text(errors="replace") for p in dep.task_logs(SCENEXT_DAG, "create_video"))
            assert "AvatarSubmitUnknownError" in logs, f"create_video failed otherwise{dep.diagnostics()}"


# -- 4. 30% of status polls fail for the whole run --------------------------------------------------
def test_faulty_status_polls_cost_no_retries(tmp_path: Path, e2e_simulator: Simulator, api_key: str) -> None:
    sim, runs = e2e_simulator, ["faulty_1", "faulty_2", "faulty_3"]
    for service in ("scenext", "trtc"):
        sim.set_faults(service, Faults(error_rate=0.3, status_reads_only=True))
    trtc: Any = sim.services["trtc"]
    dag_files = [EXAMPLES / f"{SCENEXT_DAG}.py", EXAMPLES / f"{TRTC_DAG}.py"]
    with deploy(tmp_path, sim, api_key, dag_files) as dep:
        wait_until_ready(dep, [SCENEXT_DAG, TRTC_DAG])
        for run in runs:
            dep.trigger(SCENEXT_DAG, run)
        dep.trigger(TRTC_DAG, runs[0], TRTC_CONF)

        def go_live() -> None:
            (task,) = trtc.tasks.values()
            task.started_at = task.play_start = trtc.state.clock()
            task.play_seconds = float("inf")

        def end_playing() -> None:
            (task,) = trtc.tasks.values()
            task.play_seconds = trtc.state.clock() - task.play_start

        for run in runs:
            release_after_defer_exit(dep, SCENEXT_DAG, "wait_for_video", lambda: None, run)
        finish_scenext(sim)
        release_after_defer_exit(dep, TRTC_DAG, "wait_until_live", go_live)
        release_after_defer_exit(dep, TRTC_DAG, "wait_until_played", end_playing)

        for run in runs:
            assert_run_succeeded_without_retries(dep, SCENEXT_DAG, run)
        assert_run_succeeded_without_retries(dep, TRTC_DAG, runs[0])
        assert len(scenext_creates(sim)) == len(runs), f"creates: {scenext_creates(sim)}"
        assert len(trtc.start_bodies) == 1, f"ingest starts: {trtc.start_bodies}"
        assert any(r.fault for r in sim.requests("scenext")), "no fault was injected"
        assert len(list(dep.videos.glob("*.mp4"))) == len(runs)
