"""End to end on real Airflow components: scheduler, dag-processor, triggerer and api-server on SQLite.

Runs ``dags_examples/example_scenext_video.py`` against the in-process simulator and checks that the
real triggerer did the waiting, the video arrived, and the API key never reached a log or the DB.
Takes about 40 s; run with ``make e2e`` or ``pytest -m e2e tests/e2e``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest

from .harness import EXAMPLES, Deployment, deploy, file_facts, release_after_defer_exit, wait_for_run, wait_until_ready

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_provider_avatar.testing.simulator import Simulator

pytestmark = pytest.mark.e2e

DAG_ID = "example_scenext_video"
#: The live-stream example runs beside it: a TRTC ingest relayed, awaited live and to its end, stopped.
TRTC_DAG_ID = "example_trtc_stream_ingest"
TRTC_CONF = {"stream_url": "https://media.test/intro.mp4"}
RUN_ID = "e2e_run"


@pytest.fixture
def deployment(tmp_path: Path, e2e_simulator: Simulator, api_key: str) -> Iterator[Deployment]:
    dag_files = [EXAMPLES / f"{DAG_ID}.py", EXAMPLES / f"{TRTC_DAG_ID}.py"]
    with deploy(tmp_path, e2e_simulator, api_key, dag_files) as dep:
        yield dep


def test_example_dag_on_real_airflow(deployment: Deployment, e2e_simulator: Simulator, api_key: str) -> None:
    dep = deployment
    wait_until_ready(dep, [DAG_ID, TRTC_DAG_ID])
    dep.trigger(DAG_ID, RUN_ID)
    dep.trigger(TRTC_DAG_ID, RUN_ID, TRTC_CONF)
    trtc: Any = e2e_simulator.services["trtc"]

    def go_live() -> None:
        (task,) = trtc.tasks.values()
        task.started_at = task.play_start = trtc.state.clock()
        task.play_seconds = math.inf  # and keep playing until the next wait has deferred too

    def end_playing() -> None:
        (task,) = trtc.tasks.values()
        task.play_seconds = trtc.state.clock() - task.play_start

    def finish_video() -> None:
        (task,) = scenext.tasks.values()
        task.duration = scenext.state.clock() - task.created_at

    scenext: Any = e2e_simulator.services["scenext"]
    release_after_defer_exit(dep, DAG_ID, "wait_for_video", finish_video)
    release_after_defer_exit(dep, TRTC_DAG_ID, "wait_until_live", go_live)
    release_after_defer_exit(dep, TRTC_DAG_ID, "wait_until_played", end_playing)

    state = wait_for_run(dep, DAG_ID, RUN_ID)
    tasks = dep.query("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", DAG_ID, RUN_ID)
    assert state == "success", f"run {RUN_ID} is {state}; tasks {tasks}{dep.diagnostics()}"

    # The real triggerer (not a worker, not dag.test) ran the wait.
    trigger_logs = [p for p in (dep.home / "logs").rglob("*.log.trigger.*.log") if "task_id=wait_for_video" in p.parts]
    assert trigger_logs, f"no triggerer log for wait_for_video{dep.diagnostics()}"

    videos = sorted(dep.videos.glob("*.mp4"))
    assert len(videos) == 1, f"expected one video in {dep.videos}, found {videos}{dep.diagnostics()}"
    size, _, is_mp4 = file_facts(videos[0])
    assert size > 0 and is_mp4, f"{videos[0]} ({size} bytes) does not start with an MP4 ftyp box"

    requests = e2e_simulator.requests("scenext")
    polls = [r for r in requests if r.method == "GET" and r.path.startswith("/scenext/api/get_status/")]
    creates = [r for r in requests if r.method == "POST" and r.path.startswith("/scenext/api/gen_video")]
    seen = [(r.method, r.path, r.status) for r in requests]
    assert len(polls) >= 2, f"expected status polling, saw {seen}"
    assert len(creates) == 1, f"expected exactly one gen_video, saw {seen}"
    assert all(r.authorization == f"Bearer {api_key}" for r in requests), "a request lacked the API key"

    # The stream example: one ingest started, waited for in the triggerer, and stopped by the teardown.
    state = wait_for_run(dep, TRTC_DAG_ID, RUN_ID)
    tasks = dep.query("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", TRTC_DAG_ID, RUN_ID)
    assert state == "success", f"run {RUN_ID} of {TRTC_DAG_ID} is {state}; tasks {tasks}{dep.diagnostics()}"
    assert len(trtc.start_bodies) == 1, f"expected exactly one StartStreamIngest, saw {trtc.start_bodies}"
    assert trtc.summary()["live"] == 0 and trtc.stop_calls == 1
    trtc_trigger_logs = [
        p for p in (dep.home / "logs").rglob("*.log.trigger.*.log") if f"dag_id={TRTC_DAG_ID}" in p.parts
    ]
    assert trtc_trigger_logs, f"no triggerer log for {TRTC_DAG_ID}{dep.diagnostics()}"

    # api_key is every service's secret here: Scenext's key, TRTC's SecretKey and SDK secret key.
    secret = api_key.encode()
    logs = [*(dep.home / "logs").rglob("*"), *dep.logs.rglob("*")]
    leaks = [p for p in logs if p.is_file() and secret in p.read_bytes()]
    assert not leaks, f"the API key appears in {leaks}"
    db_files = [p for p in dep.home.glob("airflow.db*") if secret in p.read_bytes()]
    assert not db_files, f"the API key is stored in the metadata DB ({db_files})"
