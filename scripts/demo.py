"""Run every ``dags_examples/example_*.py`` DAG with ``airflow dags test`` against the local simulator.

Usage (from the repository root): ``make demo`` or ``.venv/bin/python scripts/demo.py``.
Exits 0 only if every example DAG succeeded and each downloaded a valid MP4 into ``demo-output/``
or, for live-stream DAGs, stopped its stream (and the simulator has none left running).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_env import AIRFLOW, airflow_env, connection_env, file_facts, query, run_logged, stop_groups

if TYPE_CHECKING:
    from types import FrameType

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".airflow-home"
LOGS = HOME / "demo-logs"
DAGS = REPO / "dags_examples"
OUTPUT = REPO / "demo-output"

OVERALL_LIMIT = 1800.0  # seconds for the whole script
SIM_READY_LIMIT = 30.0
MIGRATE_LIMIT = 180.0
LIST_LIMIT = 120.0
DAG_TEST_LIMIT = 300.0  # `airflow dags test` ignores SIGTERM and deferral timeouts: SIGKILLed after this
#: Run confs for DAGs whose waits race the simulator's clock: the TRTC clip stays live for two status
#: reads (one per wait) however slow the machine, instead of the simulator's 3 s.
DAG_CONFS: dict[str, dict[str, str]] = {
    "example_trtc_stream_ingest": {"stream_url": "https://example.com/videos/intro.mp4?sim_reads=2"},
}


@dataclass
class Outcome:
    """What one example DAG did."""

    dag_id: str
    state: str = "not run"
    files: list[tuple[Path, int, str]] = field(default_factory=list)
    #: Live streams the DAG stopped (remote task id, stop outcome): stream DAGs produce no file.
    stops: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == "success" and bool(self.files or self.stops) and not self.problems


class Deadline:
    """The script's overall time budget."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def limit(self, step: float) -> float:
        """``step`` seconds, or less if the overall budget ends sooner; fails once it has ended."""
        left = self.end - time.monotonic()
        if left <= 1:
            raise TimeoutError(f"overall limit of {OVERALL_LIMIT:.0f}s reached")
        return min(step, left)


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def prepare() -> None:
    """A fresh Airflow home and an output folder without old videos."""
    shutil.rmtree(HOME, ignore_errors=True)
    LOGS.mkdir(parents=True)
    OUTPUT.mkdir(exist_ok=True)
    for old in OUTPUT.glob("*.mp4"):
        old.unlink()


def start_simulator(api_key: str, deadline: Deadline) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start the simulator in its own process group; return it and its parsed ready line."""
    ready_file = LOGS / "simulator.out"
    cmd = [sys.executable, "-m", "airflow_provider_avatar.testing.simulator", "--api-key", api_key]
    cmd += ["--port", "0", "--file-port", "0", "--duration", "3"]
    end = time.monotonic() + deadline.limit(SIM_READY_LIMIT)
    # stdout (the ready line) to a file, so nothing can block on a full pipe later
    with ready_file.open("wb") as out, (LOGS / "simulator.log").open("wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
    while time.monotonic() < end:
        text = ready_file.read_text(encoding="utf-8")
        if text.endswith("\n"):
            info: dict[str, Any] = json.loads(text.splitlines()[0])
            if info.get("ready") and info.get("services"):
                return proc, info
            raise RuntimeError(f"unexpected simulator ready line: {text.strip()}")
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop_groups([proc], grace=3)
    raise RuntimeError(f"simulator not ready (exit code {proc.returncode}); see {LOGS / 'simulator.log'}")


def list_example_dags(env: dict[str, str], deadline: Deadline) -> tuple[list[tuple[str, Path]], list[Outcome]]:
    """(dag_id, file) of every DAG in ``example_*.py``, and a failed outcome for each file without a DAG."""
    log = LOGS / "dags-list.log"
    code = run_logged([*AIRFLOW, "dags", "list", "--local", "-o", "json"], log, env, deadline.limit(LIST_LIMIT))
    listed: list[dict[str, Any]] = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("["):  # the JSON list; log lines start with a timestamp
            with contextlib.suppress(ValueError):
                listed = json.loads(line)
    files = sorted(DAGS.glob("example_*.py"))
    dags = sorted((d["dag_id"], Path(d["fileloc"])) for d in listed if Path(d["fileloc"]) in files)
    broken = []
    for path in files:
        if not any(f == path for _, f in dags):
            broken.append(
                Outcome(
                    path.name,
                    "import error",
                    problems=[f"no DAG parsed from {path.name} (exit code {code}); see {log}"],
                )
            )
    return dags, broken


def run_dag(dag_id: str, path: Path, env: dict[str, str], deadline: Deadline, sim_api: str) -> Outcome:
    """``airflow dags test`` one DAG, then check its run in the metadata DB, its downloads on disk
    and, for stream DAGs, that the simulator has no billable stream left running."""
    outcome = Outcome(dag_id)
    log = LOGS / f"{dag_id}.log"
    print(f"running {dag_id} ... ", end="", flush=True)
    started = time.monotonic()
    cmd = [*AIRFLOW, "dags", "test", dag_id, "--dagfile-path", str(path)]
    if dag_id in DAG_CONFS:
        cmd += ["--conf", json.dumps(DAG_CONFS[dag_id])]
    code = run_logged(cmd, log, env, deadline.limit(DAG_TEST_LIMIT))
    print(f"{time.monotonic() - started:.1f}s", flush=True)
    if code is None:
        outcome.problems.append(f"killed after {DAG_TEST_LIMIT:.0f}s; see {log}")
    elif code != 0:
        outcome.problems.append(f"`airflow dags test` exited {code}; see {log}")
    state, tasks, results = read_run(dag_id)
    outcome.state = state
    bad = [f"{task}={task_state}" for task, task_state in tasks if task_state != "success"]
    if bad:
        outcome.problems.append("tasks not successful: " + ", ".join(bad))
    downloads = [r for r in results if isinstance(r, dict) and {"path", "sha256", "bytes"} <= r.keys()]
    outcome.stops = [
        (str(r["remote_task_id"]), str(r["outcome"]))
        for r in results
        if isinstance(r, dict) and r.keys() == {"remote_task_id", "outcome"}
    ]
    if not downloads and not outcome.stops:
        outcome.problems.append("no task returned a download result (path, bytes, sha256) or stopped a stream")
    for result in downloads:
        check_download(result, outcome)
    if outcome.stops:
        check_no_live_streams(sim_api, outcome)
    return outcome


def check_no_live_streams(sim_api: str, outcome: Outcome, limit: float = 10.0) -> None:
    """A stopped stream passes through "stopping" for a moment; none may stay billable after that."""
    end = time.monotonic() + limit
    while True:
        with urllib.request.urlopen(f"{sim_api}/_sim/info", timeout=5) as answer:
            summary = json.load(answer)["summary"]
        live = {service: s["live"] for service, s in summary.items() if s.get("live")}
        if not live:
            return
        if time.monotonic() > end:
            outcome.problems.append(f"streams still live {limit:.0f}s after the run: {live}")
            return
        time.sleep(0.5)


def read_run(dag_id: str) -> tuple[str, list[tuple[str, str | None]], list[Any]]:
    """(run state, [(task, state)], XCom return values) of the DAG's latest run, from the SQLite DB."""
    db = HOME / "airflow.db"
    runs = query(db, "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", dag_id)
    if not runs:
        return "no run", [], []
    run_id, state = runs[0]
    tasks = query(
        db, "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY task_id", dag_id, run_id
    )
    values = query(
        db, "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = 'return_value'", dag_id, run_id
    )
    results = []
    for (value,) in values:
        try:
            results.append(json.loads(value))
        except (TypeError, ValueError):
            continue
    return str(state), [(str(t), s) for t, s in tasks], results


def check_download(result: dict[str, Any], outcome: Outcome) -> None:
    """The file a download task reported must exist in ``demo-output`` and be the MP4 it claims."""
    path = Path(str(result["path"]))
    if not path.is_file():
        outcome.problems.append(f"downloaded file {path} does not exist")
        return
    size, sha256, is_mp4 = file_facts(path)
    outcome.files.append((path, size, sha256))
    if path.resolve().parent != OUTPUT.resolve():
        outcome.problems.append(f"{path} is not in {OUTPUT}")
    if not is_mp4:
        outcome.problems.append(f"{path.name} is not an MP4 (no ftyp box at byte 4)")
    if size == 0 or size != result["bytes"] or sha256 != result["sha256"]:
        outcome.problems.append(
            f"{path.name}: {size} bytes, sha256 {sha256} on disk; task reported "
            f"{result['bytes']} bytes, sha256 {result['sha256']}"
        )


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


def print_summary(outcomes: list[Outcome]) -> None:
    """One row per downloaded file (or per DAG without one), then the problems found."""
    rows = [("DAG", "state", "file", "bytes", "sha256")]
    for o in outcomes:
        rows += [(o.dag_id, o.state, _shown(path), str(size), sha256) for path, size, sha256 in o.files]
        rows += [
            (o.dag_id, o.state, f"stream {task_id}: {how.replace('_', ' ')}", "-", "-") for task_id, how in o.stops
        ]
        if not o.files and not o.stops:
            rows.append((o.dag_id, o.state, "-", "-", "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * width for width in widths))
    for o in outcomes:
        for problem in o.problems:
            print(f"{o.dag_id}: {problem}")


def main() -> int:
    """Run the demo; return the exit code."""
    started = time.monotonic()
    deadline = Deadline(OVERALL_LIMIT)
    signal.signal(signal.SIGTERM, _on_sigterm)
    prepare()
    api_key = f"demo-{secrets.token_hex(8)}"
    simulator: subprocess.Popen[bytes] | None = None
    outcomes: list[Outcome] = []
    try:
        simulator, info = start_simulator(api_key, deadline)
        print(f"simulator at {info['api']} (services: {', '.join(info['services'])})")
        env = airflow_env(
            HOME,
            DAGS,
            AVATAR_EXAMPLE_POLL_INTERVAL="1",
            AVATAR_EXAMPLE_OUTPUT_DIR=str(OUTPUT),
            **connection_env(info, api_key),
        )
        code = run_logged([*AIRFLOW, "db", "migrate"], LOGS / "db-migrate.log", env, deadline.limit(MIGRATE_LIMIT))
        if code != 0:
            print(f"`airflow db migrate` failed (exit code {code}); see {LOGS / 'db-migrate.log'}")
            return 1
        dags, outcomes = list_example_dags(env, deadline)
        if not dags and not outcomes:
            print(f"no example DAGs found in {DAGS}")
            return 1
        for dag_id, path in dags:
            outcomes.append(run_dag(dag_id, path, env, deadline, info["api"]))
    except (KeyboardInterrupt, TimeoutError, RuntimeError) as exc:
        problem = f"interrupted ({exc or 'Ctrl-C'})" if isinstance(exc, KeyboardInterrupt) else str(exc)
        print(f"\nstopped: {problem}")
        outcomes.append(Outcome("(demo)", "stopped", problems=[problem]))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # clean-up is bounded: let it finish
            signal.signal(sig, signal.SIG_IGN)
        if simulator is not None:
            stop_groups([simulator], grace=5)
    print_summary(outcomes)
    ok = bool(outcomes) and all(o.ok for o in outcomes)
    print(f"\n{'OK' if ok else 'FAILED'} in {time.monotonic() - started:.1f}s.", end=" ")
    print(f"Videos in {OUTPUT}." if ok else f"Logs: {LOGS} (one per DAG, plus simulator.log).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
