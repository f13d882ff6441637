"""A real Airflow deployment for end-to-end tests: scheduler, dag-processor, triggerer(s), api-server on SQLite.

Every component runs in its own process group so a test can SIGKILL one (with its children, as a
pod kill would) and start it again; the deployment stops every group within a hard limit however the
test ends. Waits are bounded but generous (the machine may be busy) and never assert on timing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from airflow_env import (  # noqa: E402
    AIRFLOW,
    airflow_env,
    connection_env,
    free_port,
    kill_group,
    query,
    run_logged,
    start_logged,
    stop_groups,
    tail,
)
from airflow_env import (  # noqa: E402
    file_facts as file_facts,  # re-exported for the tests
)

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from airflow_provider_avatar.testing.simulator import Simulator

EXAMPLES = REPO / "dags_examples"
LOCAL_DAGS = Path(__file__).resolve().parent / "dags"
READY_LIMIT = 180.0  # api-server healthy and DAGs parsed
RUN_LIMIT = 300.0
STOP_GRACE = 20.0  # SIGTERM grace for all components together; then SIGKILL
CLI_LIMIT = 180.0


@dataclass
class Deployment:
    """A running Airflow deployment in a temp folder; components are named ``scheduler``, ``triggerer``,
    ``triggerer-2``, ... and may be killed and started again."""

    home: Path
    env: dict[str, str]
    logs: Path  # components' stdout/stderr, one file per component, appended across restarts
    videos: Path
    port: int
    commands: dict[str, list[str]] = field(default_factory=dict)
    #: Extra environment for one component (each triggerer needs its own log-server port).
    component_env: dict[str, dict[str, str]] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: Components the test killed on purpose (not reported as dead).
    killed: set[str] = field(default_factory=set)
    #: The ``job`` row id of each triggerer as last started (``trigger.triggerer_id`` points to it).
    job_ids: dict[str, int] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.home / "airflow.db"

    @property
    def triggerers(self) -> list[str]:
        return [name for name in self.commands if name.startswith("triggerer")]

    def start(self, name: str) -> None:
        """Start (or start again) one component in its own process group; for a triggerer, wait until its
        job row exists (so job ids map to triggerers even when several start)."""
        env = {**self.env, **self.component_env.get(name, {})}
        with (self.logs / f"{name}.log").open("ab") as log:
            log.write(f"\n===== harness: starting {name} =====\n".encode())
        before = set(self.triggerer_jobs())
        self.procs[name] = start_logged(self.commands[name], self.logs / f"{name}.log", env)
        self.killed.discard(name)
        if name in self.triggerers:
            wait_for(self, f"{name} registered", lambda: bool(set(self.triggerer_jobs()) - before), READY_LIMIT)
            (self.job_ids[name],) = set(self.triggerer_jobs()) - before

    def triggerer_jobs(self) -> list[int]:
        return [row[0] for row in self.query("SELECT id FROM job WHERE job_type = 'TriggererJob'")]

    def kill(self, name: str) -> None:
        """SIGKILL the component's whole process group (no graceful shutdown) and reap its leader."""
        self.killed.add(name)
        kill_group(self.procs[name])

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def stop_all(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL after ``STOP_GRACE``), then SIGKILL any process still
        running with this deployment's ``AIRFLOW_HOME`` (e.g. a task that outlived its killed supervisor)."""
        stop_groups(self.procs.values(), grace=STOP_GRACE)
        for pid in stragglers(self.home):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def dead(self) -> list[str]:
        return [
            f"{name} exited with {p.returncode}"
            for name, p in self.procs.items()
            if name not in self.killed and p.poll() is not None
        ]

    def check_alive(self, doing: str) -> None:
        assert not self.dead(), f"{self.dead()} {doing}{self.diagnostics()}"

    def diagnostics(self) -> str:
        """Tails of every component log and of every task/trigger log, for assertion messages."""
        parts = [f"\n--- {name}.log (tail) ---\n{tail(self.logs / f'{name}.log')}" for name in self.procs]
        for path in sorted((self.home / "logs").glob("dag_id=*/**/*.log")):
            parts.append(f"\n--- {path.relative_to(self.home)} (tail) ---\n{tail(path, 25)}")
        return "".join(parts)

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = query(self.db, sql, *params)
        return rows

    def airflow(self, *args: str, limit: float = CLI_LIMIT) -> None:
        """Run an ``airflow`` CLI command to completion; assert it succeeded."""
        log = self.logs / "cli.log"
        code = run_logged([*AIRFLOW, *args], log, self.env, limit)
        assert code == 0, f"airflow {' '.join(args)} exited {code}:\n{tail(log)}"

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any] | None = None) -> None:
        args = ["dags", "trigger", dag_id, "--run-id", run_id]
        self.airflow(*args, *(["--conf", json.dumps(conf)] if conf else []))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
        """``task_id[:map_index]`` -> (state, try_number) of one run."""
        rows = self.query(
            "SELECT task_id, map_index, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?",
            dag_id,
            run_id,
        )
        return {(t if m < 0 else f"{t}:{m}"): (s, n) for t, m, s, n in rows}

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def task_logs(self, dag_id: str, task_id: str) -> list[Path]:
        """Every log file (task tries and trigger logs) of one task, across runs and tries."""
        return sorted(
            p
            for p in (self.home / "logs").rglob("*.log")
            if f"dag_id={dag_id}" in p.parts and f"task_id={task_id}" in p.parts
        )


def stragglers(home: Path) -> list[int]:
    """Processes of this user whose environment has ``AIRFLOW_HOME=home``."""
    needle = f"AIRFLOW_HOME={home}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
    return found


@contextlib.contextmanager
def deploy(
    tmp_path: Path,
    simulator: Simulator,
    api_key: str,
    dag_files: Iterable[Path],
    *,
    triggerers: int = 1,
    settings: Mapping[str, str] | None = None,
    args: Mapping[str, list[str]] | None = None,
    later: Iterable[str] = (),
    parallelism: int = 4,
) -> Iterator[Deployment]:
    """Migrate a SQLite DB and start the scheduler, dag-processor, ``triggerers`` triggerers (``triggerer``,
    ``triggerer-2``, ...) and the api-server with ``dag_files`` in the DAGs folder; stop every component
    on exit (hard limit).

    :param settings: extra environment for every component (``AIRFLOW__SECTION__KEY``).
    :param args: extra command-line arguments per component, e.g. ``{"triggerer": ["--capacity", "2"]}``.
    :param later: components the test starts itself (``dep.start(name)``).
    """
    dags = tmp_path / "dags"
    dags.mkdir()
    for path in dag_files:
        shutil.copy(path, dags)
    port = free_port()
    dep = Deployment(
        home=tmp_path / "airflow-home", env={}, logs=tmp_path / "component-logs", videos=tmp_path / "videos", port=port
    )
    dep.logs.mkdir(parents=True)
    dep.env = airflow_env(
        dep.home,
        dags,
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM=str(parallelism),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        # the scheduler's and triggerer's log servers default to fixed ports 8793/8794
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AVATAR_EXAMPLE_POLL_INTERVAL="1",
        AVATAR_EXAMPLE_OUTPUT_DIR=str(dep.videos),
        **connection_env(simulator.info(), api_key),
        **(settings or {}),
    )
    dep.commands = {
        "scheduler": [*AIRFLOW, "scheduler"],
        "dag-processor": [*AIRFLOW, "dag-processor"],
        "api-server": [*AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        **{("triggerer" if i == 0 else f"triggerer-{i + 1}"): [*AIRFLOW, "triggerer"] for i in range(triggerers)},
    }
    for name, extra in (args or {}).items():
        dep.commands[name] = [*dep.commands[name], *extra]
    later = set(later)
    for name in dep.triggerers:
        dep.component_env[name] = {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
    code = run_logged([*AIRFLOW, "db", "migrate"], dep.logs / "db-migrate.log", dep.env, CLI_LIMIT)
    assert code == 0, f"airflow db migrate exited {code}:\n{tail(dep.logs / 'db-migrate.log')}"
    try:
        for name in dep.commands:
            if name not in later:
                dep.start(name)
        yield dep
    finally:
        dep.stop_all()


def wait_for(
    dep: Deployment, what: str, done: Callable[[], bool], limit: float = RUN_LIMIT, every: float = 0.5
) -> None:
    """Bounded wait until ``done()``; fails with diagnostics if a component died or ``limit`` passed."""
    deadline = time.monotonic() + limit
    while not done():
        dep.check_alive(f"while waiting for {what}")
        assert time.monotonic() < deadline, f"not {what} after {limit:.0f}s{dep.diagnostics()}"
        time.sleep(every)


def wait_until_ready(dep: Deployment, dag_ids: Iterable[str]) -> None:
    """Bounded wait until the api-server answers and the DAGs are parsed and unpaused."""
    dag_ids = list(dag_ids)

    def healthy() -> bool:
        try:
            url = f"http://127.0.0.1:{dep.port}/api/v2/monitor/health"
            with urllib.request.urlopen(url, timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def parsed() -> bool:
        sql = "SELECT 1 FROM dag JOIN serialized_dag USING (dag_id) WHERE dag_id = ? AND NOT is_paused"
        return all(dep.query(sql, dag_id) for dag_id in dag_ids)

    wait_for(dep, f"ready (api healthy, {dag_ids} parsed)", lambda: parsed() and healthy(), READY_LIMIT, 1.0)


def run_state(dep: Deployment, dag_id: str, run_id: str) -> str | None:
    rows = dep.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
    return str(rows[0][0]) if rows else None


def wait_for_run(dep: Deployment, dag_id: str, run_id: str, limit: float = RUN_LIMIT) -> str:
    """Bounded wait for the run to finish; returns its state (or a description if it did not finish)."""
    deadline = time.monotonic() + limit
    state: str | None = None
    while time.monotonic() < deadline:
        dep.check_alive("during the run")
        state = run_state(dep, dag_id, run_id)
        if state in ("success", "failed"):
            return state
        time.sleep(1)
    return f"{state} after {limit:.0f}s"


def defer_exit_processed(dep: Deployment, dag_id: str, task_id: str, run_id: str | None = None) -> bool:
    """Has the scheduler processed the executor's event for the worker that exited on ``defer()``?"""
    needle = f"Received executor event with state success for task instance TaskInstanceKey(dag_id='{dag_id}', "
    needle += f"task_id='{task_id}'"
    if run_id is not None:
        needle += f", run_id='{run_id}'"
    return needle in dep.log_text("scheduler")


def deferred_exits(dep: Deployment, dag_id: str, task_id: str) -> int:
    """How many deferring-worker exits of ``task_id`` (any run, any map index) the scheduler has processed."""
    needle = (
        "Received executor event with state success for task instance "
        f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}'"
    )
    return dep.log_text("scheduler").count(needle)


def release_after_defer_exit(
    dep: Deployment, dag_id: str, task_id: str, release: Callable[[], None], run_id: str | None = None
) -> None:
    """Let the remote task move on only after the scheduler has seen the deferring worker exit.

    Airflow 3.3.2 fails a resumed task when the trigger fires before the scheduler has processed
    that exit event (apache/airflow#67287, #72716: the stale "success" reads as a killed task). A
    real service is rarely that fast; the simulator is, so the test orders the two explicitly
    instead of hoping the scheduler keeps up on a busy machine.
    """
    wait_for(dep, f"{task_id} deferred", lambda: defer_exit_processed(dep, dag_id, task_id, run_id))
    release()
