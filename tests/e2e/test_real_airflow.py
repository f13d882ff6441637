"""End to end on real Airflow components: scheduler, dag-processor, triggerer and api-server on SQLite.

Runs ``dags_examples/example_scenext_video.py`` against the in-process simulator and checks that the
real triggerer did the waiting, the video arrived, and the API key never reached a log or the DB.
Takes about 40 s; run with ``make e2e`` or ``pytest -m e2e tests/e2e``.
"""

from __future__ import annotations

import math
import secrets
import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_avatar.services import SERVICES
from airflow_provider_avatar.testing.simulator import Simulator

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from airflow_env import (  # noqa: E402
    AIRFLOW,
    airflow_env,
    connection_env,
    file_facts,
    free_port,
    query,
    run_logged,
    start_logged,
    stop_groups,
    tail,
)

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.e2e

DAG_FILE = REPO / "dags_examples" / "example_scenext_video.py"
DAG_ID = "example_scenext_video"
#: The live-stream example runs beside it: a TRTC ingest relayed, awaited live and to its end, stopped.
TRTC_DAG_FILE = REPO / "dags_examples" / "example_trtc_stream_ingest.py"
TRTC_DAG_ID = "example_trtc_stream_ingest"
TRTC_CONF = '{"stream_url": "https://media.test/intro.mp4"}'
RUN_ID = "e2e_run"
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
#: Remote tasks finish only when the test releases them (see release_after_defer_exit), so every
#: wait is sure to defer first.
SIM_TASK_SECONDS = 3600.0
READY_LIMIT = 120.0  # api-server healthy and DAG parsed
RUN_LIMIT = 180.0
STOP_GRACE = 20.0


@dataclass
class Deployment:
    """A running Airflow deployment in a temp folder."""

    home: Path
    env: dict[str, str]
    logs: Path  # components' stdout/stderr
    videos: Path
    port: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.home / "airflow.db"

    def dead(self) -> list[str]:
        return [f"{name} exited with {p.returncode}" for name, p in self.procs.items() if p.poll() is not None]

    def diagnostics(self) -> str:
        """Tails of every component log and of every task/trigger log, for assertion messages."""
        parts = [f"\n--- {name}.log (tail) ---\n{tail(self.logs / f'{name}.log')}" for name in self.procs]
        for path in sorted((self.home / "logs").glob("dag_id=*/**/*.log")):
            parts.append(f"\n--- {path.relative_to(self.home)} (tail) ---\n{tail(path, 25)}")
        return "".join(parts)


@pytest.fixture
def api_key() -> str:
    return f"sk-e2e-sentinel-{secrets.token_hex(8)}"


@pytest.fixture
def e2e_simulator(api_key: str) -> Iterator[Simulator]:
    """The simulator in a thread of this process (so its request log can be inspected)."""
    sim = Simulator(api_keys=dict.fromkeys(SERVICES, api_key), task_duration=SIM_TASK_SECONDS).start()
    # The ingest goes live only when the test says so (see release_after_defer_exit).
    sim.services["trtc"].start_delay = 3600.0  # type: ignore[attr-defined]
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def deployment(tmp_path: Path, e2e_simulator: Simulator, api_key: str) -> Iterator[Deployment]:
    """Migrate a SQLite DB, start the four components; stop every one of them afterwards."""
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags)
    shutil.copy(TRTC_DAG_FILE, dags)
    port = free_port()
    dep = Deployment(
        home=tmp_path / "airflow-home", env={}, logs=tmp_path / "component-logs", videos=tmp_path / "videos", port=port
    )
    dep.env = airflow_env(
        dep.home,
        dags,
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        # the scheduler's and triggerer's log servers default to fixed ports 8793/8794
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        AVATAR_EXAMPLE_POLL_INTERVAL="1",
        AVATAR_EXAMPLE_OUTPUT_DIR=str(dep.videos),
        **connection_env(e2e_simulator.info(), api_key),
    )
    code = run_logged([*AIRFLOW, "db", "migrate"], dep.logs / "db-migrate.log", dep.env, 180)
    assert code == 0, f"airflow db migrate exited {code}:\n{tail(dep.logs / 'db-migrate.log')}"
    try:
        for name in COMPONENTS:
            args = ["--host", "127.0.0.1", "--port", str(port)] if name == "api-server" else []
            dep.procs[name] = start_logged([*AIRFLOW, name, *args], dep.logs / f"{name}.log", dep.env)
        yield dep
    finally:
        stop_groups(dep.procs.values(), grace=STOP_GRACE)


def wait_until_ready(dep: Deployment) -> None:
    """Bounded wait until the api-server answers and the DAG is parsed and unpaused."""
    deadline = time.monotonic() + READY_LIMIT
    healthy = parsed = False
    while time.monotonic() < deadline and not (healthy and parsed):
        assert not dep.dead(), f"{dep.dead()} while starting{dep.diagnostics()}"
        if not healthy:
            try:
                url = f"http://127.0.0.1:{dep.port}/api/v2/monitor/health"
                with urllib.request.urlopen(url, timeout=5) as response:
                    healthy = response.status == 200
            except OSError:
                pass
        parsed = all(
            query(
                dep.db,
                "SELECT 1 FROM dag JOIN serialized_dag USING (dag_id) WHERE dag_id = ? AND NOT is_paused",
                dag_id,
            )
            for dag_id in (DAG_ID, TRTC_DAG_ID)
        )
        time.sleep(1)
    assert healthy and parsed, (
        f"not ready after {READY_LIMIT:.0f}s (api healthy={healthy}, DAG parsed={parsed}){dep.diagnostics()}"
    )


def wait_for_run(dep: Deployment, dag_id: str = DAG_ID) -> str:
    """Bounded wait for the run to finish; returns its state."""
    deadline = time.monotonic() + RUN_LIMIT
    state = "missing"
    while time.monotonic() < deadline:
        assert not dep.dead(), f"{dep.dead()} during the run{dep.diagnostics()}"
        rows = query(dep.db, "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, RUN_ID)
        state = rows[0][0] if rows else state
        if state in ("success", "failed"):
            return str(state)
        time.sleep(1)
    return f"{state} after {RUN_LIMIT:.0f}s"


def defer_exit_processed(dep: Deployment, dag_id: str, task_id: str) -> bool:
    """Has the scheduler processed the executor's event for the worker that exited on ``defer()``?"""
    needle = f"Received executor event with state success for task instance TaskInstanceKey(dag_id='{dag_id}', "
    log = (dep.logs / "scheduler.log").read_text(errors="replace")
    return f"{needle}task_id='{task_id}'" in log


def release_after_defer_exit(dep: Deployment, dag_id: str, task_id: str, release: Callable[[], None]) -> None:
    """Let the remote ingest move on only after the scheduler has seen the deferring worker exit.

    Airflow 3.3.2 fails a resumed task when the trigger fires before the scheduler has processed
    that exit event (apache/airflow#67287, #72716: the stale "success" reads as a killed task). A
    real service is rarely that fast; the simulator is, so the test orders the two explicitly
    instead of hoping the scheduler keeps up on a busy machine.
    """
    deadline = time.monotonic() + RUN_LIMIT
    while not defer_exit_processed(dep, dag_id, task_id):
        assert not dep.dead(), f"{dep.dead()} during the run{dep.diagnostics()}"
        assert time.monotonic() < deadline, f"{task_id} never deferred{dep.diagnostics()}"
        time.sleep(0.5)
    release()


def test_example_dag_on_real_airflow(deployment: Deployment, e2e_simulator: Simulator, api_key: str) -> None:
    dep = deployment
    wait_until_ready(dep)
    trigger_log = dep.logs / "dags-trigger.log"
    code = run_logged([*AIRFLOW, "dags", "trigger", DAG_ID, "--run-id", RUN_ID], trigger_log, dep.env, 120)
    assert code == 0, f"airflow dags trigger exited {code}:\n{tail(trigger_log)}"
    trtc_trigger = [*AIRFLOW, "dags", "trigger", TRTC_DAG_ID, "--run-id", RUN_ID, "--conf", TRTC_CONF]
    code = run_logged(trtc_trigger, trigger_log, dep.env, 120)
    assert code == 0, f"airflow dags trigger exited {code}:\n{tail(trigger_log)}"
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

    state = wait_for_run(dep)
    tasks = query(dep.db, "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", DAG_ID, RUN_ID)
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
    state = wait_for_run(dep, TRTC_DAG_ID)
    tasks = query(
        dep.db, "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", TRTC_DAG_ID, RUN_ID
    )
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
