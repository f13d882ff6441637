"""A real Airflow deployment on SQLite: scheduler, dag-processor, triggerer(s) and api-server.

One implementation for everything that runs real components against the simulator: the end-to-end
tests (``tests/e2e/harness.py`` adds their defaults) and the soak benchmark (``benchmarks/soak.py``).
Every component runs in its own process group so a caller can SIGKILL one (with its children, as a
pod kill would) and start it again; the deployment stops every group within a hard limit however the
caller ends. Waits are bounded but generous (the machine may be busy) and never judge timing.

Standard library only (no pytest), like ``airflow_env``; import it with ``scripts/`` on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_env import AIRFLOW, airflow_env, free_port, kill_group, query, run_logged, start_logged, stop_groups, tail

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterable, Iterator, Mapping

READY_LIMIT = 180.0  # api-server healthy and DAGs parsed; a triggerer registered
RUN_LIMIT = 300.0
STOP_GRACE = 20.0  # SIGTERM grace for all components together; then SIGKILL
CLI_LIMIT = 180.0

#: The scheduler's line for a worker that exited with success; for a deferrable task, its ``defer()``.
_EXECUTOR_SUCCESS = re.compile(
    r"Received executor event with state success for task instance TaskInstanceKey\("
    r"dag_id='(?P<dag_id>[^']*)', task_id='(?P<task_id>[^']*)', run_id='(?P<run_id>[^']*)', "
    r"try_number=\d+, map_index=(?P<map_index>-?\d+)\)"
)


class DeploymentError(RuntimeError):
    """A component died, a bounded wait ran out or an ``airflow`` command failed; the message has the
    components' log tails."""


@dataclass
class Deployment:
    """A running Airflow deployment under ``root``; components are named ``scheduler``, ``dag-processor``,
    ``api-server``, ``triggerer``, ``triggerer-2``, ... and may be killed and started again."""

    root: Path
    env: dict[str, str]
    port: int  # the api-server's
    commands: dict[str, list[str]] = field(default_factory=dict)
    #: Extra environment for one component (each triggerer needs its own log-server port).
    component_env: dict[str, dict[str, str]] = field(default_factory=dict)
    ready_limit: float = READY_LIMIT
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: Components killed on purpose (not reported as dead).
    killed: set[str] = field(default_factory=set)
    #: The ``job`` row id of each triggerer as last started (``trigger.triggerer_id`` points to it).
    job_ids: dict[str, int] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        """``AIRFLOW_HOME``: the SQLite DB and the task and trigger logs."""
        return self.root / "airflow-home"

    @property
    def logs(self) -> Path:
        """Components' stdout/stderr, one file per component, appended across restarts."""
        return self.root / "component-logs"

    @property
    def videos(self) -> Path:
        """A folder for the DAGs' downloads (the caller points its DAGs here)."""
        return self.root / "videos"

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
            wait_for(self, f"{name} registered", lambda: bool(set(self.triggerer_jobs()) - before), self.ready_limit)
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
        """Raise with diagnostics if a component not killed on purpose has exited."""
        if dead := self.dead():
            raise DeploymentError(f"{dead} {doing}{self.diagnostics()}")

    def diagnostics(self) -> str:
        """Tails of every component log and of every task/trigger log, for error messages."""
        parts = [f"\n--- {name}.log (tail) ---\n{tail(self.logs / f'{name}.log')}" for name in self.procs]
        for path in sorted((self.home / "logs").glob("dag_id=*/**/*.log")):
            parts.append(f"\n--- {path.relative_to(self.home)} (tail) ---\n{tail(path, 25)}")
        return "".join(parts)

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = query(self.db, sql, *params)
        return rows

    def airflow(self, *args: str, limit: float = CLI_LIMIT) -> None:
        """Run an ``airflow`` CLI command to completion (output in ``cli.log``); raise if it failed."""
        log = self.logs / "cli.log"
        code = run_logged([*AIRFLOW, *args], log, self.env, limit)
        if code != 0:
            raise DeploymentError(f"airflow {' '.join(args)} exited {code}:\n{tail(log)}")

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
    root: Path,
    dag_files: Iterable[Path],
    *,
    triggerers: int = 1,
    settings: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    args: Mapping[str, list[str]] | None = None,
    later: Iterable[str] = (),
    parallelism: int = 4,
    migrate_limit: float = CLI_LIMIT,
    ready_limit: float = READY_LIMIT,
) -> Iterator[Deployment]:
    """Migrate a SQLite DB under ``root`` and start the scheduler, dag-processor, api-server and
    ``triggerers`` triggerers (``triggerer``, ``triggerer-2``, ...) with copies of ``dag_files`` as the
    DAGs folder; stop every component on exit (hard limit).

    :param settings: extra environment for every component: ``AIRFLOW__SECTION__KEY``, connections, the
        DAGs' own variables.
    :param unset: inherited variables to drop from the components' environment.
    :param args: extra command-line arguments per component, e.g. ``{"triggerer": ["--capacity", "2"]}``.
    :param later: components the caller starts itself (``dep.start(name)``).
    :param ready_limit: how long a triggerer may take to register (and :func:`wait_until_ready`'s default).
    """
    dags = root / "dags"
    dags.mkdir()
    for path in dag_files:
        shutil.copy(path, dags)
    port = free_port()
    dep = Deployment(root=root, env={}, port=port, ready_limit=ready_limit)
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
        **(settings or {}),
    )
    for name in unset:
        dep.env.pop(name, None)
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
    code = run_logged([*AIRFLOW, "db", "migrate"], dep.logs / "db-migrate.log", dep.env, migrate_limit)
    if code != 0:
        raise DeploymentError(f"airflow db migrate exited {code}:\n{tail(dep.logs / 'db-migrate.log')}")
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
    """Bounded wait until ``done()``; raises with diagnostics if a component died or ``limit`` passed."""
    deadline = time.monotonic() + limit
    while not done():
        dep.check_alive(f"while waiting for {what}")
        if time.monotonic() >= deadline:
            raise DeploymentError(f"not {what} after {limit:.0f}s{dep.diagnostics()}")
        time.sleep(every)


def wait_until_ready(dep: Deployment, dag_ids: Iterable[str], limit: float | None = None) -> None:
    """Bounded wait (``dep.ready_limit`` unless ``limit``) until the api-server answers and the DAGs are
    parsed and unpaused."""
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

    what = f"ready (api healthy, {dag_ids} parsed)"
    wait_for(dep, what, lambda: parsed() and healthy(), dep.ready_limit if limit is None else limit, 1.0)


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


# -- deferral exits: what the scheduler has processed -----------------------------------------------
def deferral_exits(text: str, dag_id: str, task_id: str, run_id: str | None = None) -> list[int]:
    """Map index of every worker exit with state success (for a deferrable task: its deferral) of
    ``task_id`` that the scheduler log ``text`` shows as processed, in order, repeats included."""
    return [
        int(m["map_index"])
        for m in _EXECUTOR_SUCCESS.finditer(text)
        if m["dag_id"] == dag_id and m["task_id"] == task_id and run_id in (None, m["run_id"])
    ]


def defer_exit_processed(dep: Deployment, dag_id: str, task_id: str, run_id: str | None = None) -> bool:
    """Has the scheduler processed the executor's event for the worker that exited on ``defer()``?"""
    return bool(deferral_exits(dep.log_text("scheduler"), dag_id, task_id, run_id))


def deferred_exits(dep: Deployment, dag_id: str, task_id: str) -> int:
    """How many deferring-worker exits of ``task_id`` (any run, any map index) the scheduler has processed."""
    return len(deferral_exits(dep.log_text("scheduler"), dag_id, task_id))


def release_after_defer_exit(
    dep: Deployment, dag_id: str, task_id: str, release: Callable[[], None], run_id: str | None = None
) -> None:
    """Let the remote task move on only after the scheduler has seen the deferring worker exit.

    Airflow 3.3.2 fails a resumed task when the trigger fires before the scheduler has processed
    that exit event (apache/airflow#67287, #72716: the stale "success" reads as a killed task). A
    real service is rarely that fast; the simulator is, so the caller orders the two explicitly
    instead of hoping the scheduler keeps up on a busy machine.
    """
    wait_for(dep, f"{task_id} deferred", lambda: defer_exit_processed(dep, dag_id, task_id, run_id))
    release()
