"""Soak: N mapped waits through the real Airflow components, with 30% of status polls faulted.

Scheduler, dag-processor, triggerer and api-server (LocalExecutor, SQLite), each in its own
process group, run ``benchmarks/soak_dag.py``: N Scenext creates (dynamic task mapping), then N
deferrable ``ScenextVideoSensor`` waits mapped over the ids. The simulator runs in a thread of
this process; ``Faults(error_rate=0.3, status_reads_only=True)`` is set over its ``/_sim/faults``
route before any component starts and stays on for the whole run.

Remote tasks run until this process releases them: once the scheduler has processed every
wait's deferral exit (apache/airflow#67287: a trigger that fires before that fails the task on
3.3.2, see tests/e2e), each remote task is given a finish time drawn uniformly from
``--finish`` seconds after the release. So the triggerer holds all N waits at once, then sees
them finish spread over the window.

Figures (see benchmarks/README.md, "5. Soak"): runs ok, task retries used (try_number > 1),
creates per mapped index, triggerer CPU and peak RSS (its process group, sampled every second),
event delay p50/p95 (remote finish → the event stored in the metadata DB), cross-checked
against the trigger's own log and the simulator's request log.

``python -m benchmarks.soak [--quick] [--n N]`` prints one JSON line; ``benchmarks.run`` renders
:func:`table`. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from benchmarks.common import REPO, percentile, temp_dir

if str(REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO / "scripts"))
from airflow_deployment import (  # standard library only: cheap to import
    Deployment,
    deferral_exits,
    deploy,
    run_state,
    wait_until_ready,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from airflow_provider_avatar.testing.simulator import Simulator

DAG_FILE = REPO / "benchmarks" / "soak_dag.py"
DAG_ID = "avatar_soak"
RUN_ID = "soak"
API_KEY = f"soak-{secrets.token_hex(8)}"
#: Limit for the DB migration and for the deployment to be ready (the e2e tests allow 180 s; the soak always 300).
START_LIMIT = 300.0
#: A remote task runs this long until it is released (effectively: until released).
HELD = 10 * 24 * 3600.0
#: N for ``make bench`` and for ``--quick``; see benchmarks/README.md for why these.
DEFAULT_N = 200
QUICK_N = 20
FIRED = "Trigger fired event"


# -- pure helpers (tested in tests/test_bench_soak.py) ---------------------------------------------
def fired_times(lines: Iterable[str]) -> list[float]:
    """Epoch seconds of every "Trigger fired event" in one trigger log (JSON lines, ISO ``timestamp``)."""
    times = []
    for line in lines:
        if FIRED not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == FIRED and "timestamp" in record:
            times.append(datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp())
    return times


def db_time(value: str) -> float:
    """Epoch seconds of a metadata-DB timestamp as SQLite stores Airflow's UTC datetimes."""
    at = datetime.fromisoformat(value)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def finish_times(remote_ids: Iterable[str], start: float, window: tuple[float, float], seed: int) -> dict[str, float]:
    """A finish time for each remote task, uniform in ``start + window`` (seeded, in the given order)."""
    rng = random.Random(seed)
    return {rid: start + rng.uniform(*window) for rid in remote_ids}


def delays(finished: dict[str, float], observed: dict[str, float]) -> list[float]:
    """``observed - finished`` for every remote task that has both."""
    return [observed[rid] - at for rid, at in finished.items() if rid in observed]


def first_good_poll(
    requests: Iterable[tuple[str, float, int, str | None]], finished: dict[str, float]
) -> dict[str, float]:
    """Per remote task: arrival time of the first unfaulted 200 status read at or after its finish.

    ``requests`` are (remote task id, arrival, HTTP status, injected fault) of status reads.
    """
    first: dict[str, float] = {}
    for rid, at, status, fault in requests:
        end = finished.get(rid)
        if end is None or at < end or status != 200 or fault is not None:
            continue
        if rid not in first or at < first[rid]:
            first[rid] = at
    return first


@dataclass
class GroupUsage:
    """CPU and memory of a process group, from periodic samples of its live processes.

    CPU is the sum, over every process seen, of the largest user + system time it showed (a
    process that exits keeps what it had used at the last sample). RSS is the largest sum over
    the group at one sample (shared pages of forked processes are counted once per process).
    """

    cpu: dict[int, float] = field(default_factory=dict)
    peak_rss: float = 0.0
    first_rss: float | None = None
    samples: int = 0

    def add(self, sample: dict[int, tuple[float, float]]) -> None:
        """One sample: ``{pid: (cpu seconds so far, rss bytes)}``."""
        for pid, (cpu, _) in sample.items():
            self.cpu[pid] = max(cpu, self.cpu.get(pid, 0.0))
        rss = sum(r for _, r in sample.values())
        if self.first_rss is None and sample:
            self.first_rss = rss
        self.peak_rss = max(self.peak_rss, rss)
        self.samples += 1

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def summarize(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values, default=float("nan"))}


# -- the real deployment -------------------------------------------------------------------------------
def group_sample(pgid: int) -> dict[int, tuple[float, float]]:
    """``{pid: (user + system CPU seconds, RSS bytes)}`` for every live process of group ``pgid``."""
    import psutil

    sample = {}
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != pgid:
                continue
            with proc.oneshot():
                times = proc.cpu_times()
                sample[proc.pid] = (times.user + times.system, float(proc.memory_info().rss))
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return sample


class LogTail:
    """New text appended to a file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> str:
        if not self.path.is_file():
            return ""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        # Keep a partial last line for the next read.
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        return data[:cut].decode(errors="replace")


def _post_json(url: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


@dataclass
class Soak:
    """One soak run: a temp Airflow deployment, the simulator thread, the figures."""

    n: int
    poll_interval: float
    finish: tuple[float, float]
    parallelism: int
    seed: int
    limit: float
    tmp: Path = field(default_factory=lambda: temp_dir("avatar-soak-"))
    marks: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def mark(self, name: str) -> None:
        self.marks[name] = time.time()
        log(f"  soak: {name} at +{self.marks[name] - self.marks['start']:.0f} s")

    def settings(self, sim: Simulator) -> dict[str, str]:
        """The environment the soak adds to the deployment's: N mapped waits, one triggerer holding them all."""
        return {
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, self.n)),
            "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, self.n)),
            "AVATAR_SOAK_N": str(self.n),
            "AVATAR_SOAK_POLL_INTERVAL": str(self.poll_interval),
            **sim.connection_env("scenext"),
        }

    def run(self) -> dict[str, Any]:
        from airflow_provider_avatar.testing.simulator import Simulator

        self.marks["start"] = time.time()
        sim = Simulator(api_keys={"scenext": API_KEY}, task_duration=HELD).start()
        usage = GroupUsage()
        try:
            faults = {"service": "scenext", "error_rate": 0.3, "status_reads_only": True, "seed": self.seed}
            _post_json(f"{sim.base_url}/_sim/faults", faults)
            with deploy(
                self.tmp,
                [DAG_FILE],
                settings=self.settings(sim),
                unset=["PYTHONDONTWRITEBYTECODE"],  # compiled bytecode halves Airflow's import time
                parallelism=self.parallelism,
                migrate_limit=START_LIMIT,
                ready_limit=START_LIMIT,
            ) as dep:
                wait_until_ready(dep, [DAG_ID])
                self.mark("ready")
                dep.trigger(DAG_ID, RUN_ID)
                self.mark("triggered")
                state, finished = self.drive(dep, sim, usage)
            self.mark("stopped")
            return self.figures(dep, sim, usage, state, finished)
        finally:
            sim.stop()

    def drive(self, dep: Deployment, sim: Simulator, usage: GroupUsage) -> tuple[str, dict[str, float]]:
        """Sample the triggerer, release the remote tasks once every wait has deferred, wait for the run."""
        scheduler = LogTail(dep.logs / "scheduler.log")
        exits: set[int] = set()
        finished: dict[str, float] = {}
        deadline = time.monotonic() + self.limit
        state = "running"
        last_note = 0.0
        while True:
            dep.check_alive("running the soak")
            usage.add(group_sample(dep.procs["triggerer"].pid))
            exits.update(deferral_exits(scheduler.read(), DAG_ID, "wait"))
            if not finished:
                waits = dep.query(
                    "SELECT map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = 'wait'"
                    " AND map_index >= 0",
                    DAG_ID,
                    RUN_ID,
                )
                settled = {i for i, s in waits if s in ("success", "failed", "upstream_failed", "skipped")}
                if len(waits) == self.n and len(exits | settled) >= self.n:
                    finished = self.release(sim)
                elif time.monotonic() - last_note > 30:
                    last_note = time.monotonic()
                    creates = dep.query(
                        "SELECT COUNT(*) FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = 'create'"
                        " AND state = 'success'",
                        DAG_ID,
                        RUN_ID,
                    )
                    done = creates[0][0] if creates else "?"
                    log(f"  soak: {done}/{self.n} creates done, {len(exits)}/{self.n} waits deferred")
            state = run_state(dep, DAG_ID, RUN_ID) or "missing"
            if state in ("success", "failed"):
                self.mark("run ended")
                return state, finished
            if time.monotonic() > deadline:
                self.notes.append(f"the run was still {state} after the {self.limit:.0f} s limit")
                if not finished:
                    finished = self.release(sim)
                return f"{state} at the limit", finished
            time.sleep(1.0)

    def release(self, sim: Simulator) -> dict[str, float]:
        """Give every remote task its finish time, ``--finish`` seconds from now."""
        self.mark("all deferred")
        scenext: Any = sim.services["scenext"]
        tasks = dict(scenext.tasks)
        finished = finish_times(sorted(tasks), time.time(), self.finish, self.seed)
        for rid, at in finished.items():
            task = tasks[rid]
            task.duration = at - task.created_at
        return finished

    def figures(
        self, dep: Deployment, sim: Simulator, usage: GroupUsage, state: str, finished: dict[str, float]
    ) -> dict[str, Any]:
        tis = dep.query(
            "SELECT task_id, map_index, state, try_number, scheduled_dttm FROM task_instance"
            " WHERE dag_id = ? AND run_id = ?",
            DAG_ID,
            RUN_ID,
        )
        history = dep.query("SELECT COUNT(*) FROM task_instance_history WHERE dag_id = ?", DAG_ID)
        ti_states: Counter[str] = Counter(f"{task}:{s}" for task, _, s, _, _ in tis)
        retried = sorted(f"{task}[{i}] try {t}" for task, i, _, t, _ in tis if (t or 0) > 1)
        # Which remote task each wait waited for: the create's XCom for the same map index.
        xcoms = dep.query(
            "SELECT map_index, value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'create'"
            " AND key = 'return_value'",
            DAG_ID,
            RUN_ID,
        )
        remote_of = {int(i): str(json.loads(v)) for i, v in xcoms}
        # Event stored: Trigger.submit_event sets the deferred instance's scheduled_dttm (a retried
        # instance's is its retry's, so only first tries count).
        stored = {
            remote_of[i]: db_time(at)
            for task, i, _, t, at in tis
            if task == "wait" and t == 1 and at and i in remote_of
        }
        fired: dict[str, float] = {}
        fired_counts: Counter[int] = Counter()
        for path in (dep.home / "logs").glob(f"dag_id={DAG_ID}/run_id=*/task_id=wait/map_index=*/*.log.trigger.*.log"):
            index = int(path.parent.name.split("=", 1)[1])
            with path.open(errors="replace") as f:
                times = fired_times(f)
            fired_counts[index] += len(times)
            if times and index in remote_of:
                rid = remote_of[index]
                fired[rid] = min(times + ([fired[rid]] if rid in fired else []))
        scenext: Any = sim.services["scenext"]
        creates = Counter(body.get("question") for body in scenext.created_bodies)
        per_index = [creates.get(f"soak item {i}", 0) for i in range(self.n)]
        requests = sim.requests("scenext")
        create_posts = sum(1 for r in requests if r.method == "POST" and r.path.endswith("/gen_video"))
        reads = [
            (r.path.rsplit("/", 1)[1], r.at, r.status, r.fault)
            for r in requests
            if r.method == "GET" and "/get_status/" in r.path
        ]
        faulted = sum(1 for r in reads if r[3] is not None)
        event = delays(finished, stored)
        logged = delays(finished, fired)
        poll = delays(finished, first_good_poll(reads, finished))
        index_of = {rid: i for i, rid in remote_of.items()}
        slowest = sorted(
            ((at - finished[rid], index_of[rid]) for rid, at in stored.items() if rid in finished), reverse=True
        )
        blocked = (dep.logs / "triggerer.log").read_text(errors="replace").count("async thread was blocked")
        marks = {k: v - self.marks["start"] for k, v in self.marks.items()}
        return {
            "n": self.n,
            "poll_interval": self.poll_interval,
            "finish_window": list(self.finish),
            "parallelism": self.parallelism,
            "run_state": state,
            "runs_ok": int(state == "success"),
            "waits_ok": ti_states.get("wait:success", 0),
            "creates_ok": ti_states.get("create:success", 0),
            "ti_states": dict(ti_states),
            "retries": len(retried),
            "retried": retried[:20],
            "history_rows": history[0][0] if history else 0,
            "creates_per_index": {"min": min(per_index), "max": max(per_index), "ones": per_index.count(1)},
            "create_posts": create_posts,
            "status_reads": len(reads),
            "faulted_reads": faulted,
            "fired_records": sum(fired_counts.values()),
            "waits_with_one_fired_record": sum(1 for c in fired_counts.values() if c == 1),
            "waits_with_several_fired_records": sum(1 for c in fired_counts.values() if c > 1),
            "event_delay_s": summarize(event),
            "event_delays": len(event),
            "fired_delay_s": summarize(logged),
            "fired_delays": len(logged),
            "poll_delay_s": summarize(poll),
            "poll_delays": len(poll),
            "slowest_events": [{"map_index": i, "delay_s": round(d, 2)} for d, i in slowest[:5]],
            "triggerer_cpu_s": usage.cpu_seconds,
            "triggerer_peak_rss_mb": usage.peak_rss / 2**20,
            "triggerer_first_rss_mb": (usage.first_rss or 0.0) / 2**20,
            "triggerer_processes": len(usage.cpu),
            "blocked_warnings": blocked,
            "marks_s": marks,
            "minutes": marks.get("stopped", 0.0) / 60,
            "notes": self.notes,
        }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(n: int, *, quick: bool = False, keep: bool = False, **kwargs: Any) -> dict[str, Any]:
    """One soak of ``n`` mapped waits; the figures as a dict. Temp files are removed unless ``keep``."""
    options: dict[str, Any] = {
        "poll_interval": 2.0,
        "finish": (5.0, 20.0) if quick else (10.0, 60.0),
        "parallelism": 4,
        "seed": 1,
        "limit": 600.0 if quick else 1200.0,
    }
    options.update({k: v for k, v in kwargs.items() if v is not None})
    soak = Soak(n=n, **options)
    log(f"  soak: N={n}, logs in {soak.tmp}")
    try:
        result = soak.run()
    finally:
        if not keep:
            shutil.rmtree(soak.tmp, ignore_errors=True)
    return result


def table(result: dict[str, Any]) -> list[str]:
    """Markdown lines for ``benchmarks.run``."""
    r = result
    per = r["creates_per_index"]
    marks = r["marks_s"]

    def spread(key: str) -> str:
        d = r[key]
        return f"{d['p50']:.2f} / {d['p95']:.2f} / {d['max']:.2f}"

    lines = [
        f"N = {r['n']} mapped waits, poll every {r['poll_interval']:g} s, remote tasks finish "
        f"{r['finish_window'][0]:g}-{r['finish_window'][1]:g} s after the last deferral, "
        f"LocalExecutor parallelism {r['parallelism']}, 30% of status reads faulted.",
        "",
        "| runs ok | waits ok | task retries used | creates per mapped index | status reads (faulted) "
        "| event delay p50 / p95 / max s | triggerer CPU s | triggerer RSS MB (first → peak) "
        "| loop-blocked warnings | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {r['runs_ok']}/1 | {r['waits_ok']}/{r['n']} | {r['retries']} "
        f"| {per['ones']}/{r['n']} exactly 1 (min {per['min']}, max {per['max']}; {r['create_posts']} POSTs) "
        f"| {r['status_reads']} ({r['faulted_reads']}) | {spread('event_delay_s')} ({r['event_delays']} waits) "
        f"| {r['triggerer_cpu_s']:.1f} | {r['triggerer_first_rss_mb']:.0f} → {r['triggerer_peak_rss_mb']:.0f} "
        f"| {r['blocked_warnings']} | {r['minutes']:.1f} |",
        "",
        f'Cross-checks of the delay: "Trigger fired event" in the trigger logs {spread("fired_delay_s")} s '
        f"({r['fired_delays']} waits; {r['waits_with_several_fired_records']} with more than one record); "
        f"first unfaulted poll after the finish {spread('poll_delay_s')} s ({r['poll_delays']} waits).",
        "Timeline (s from start): "
        + ", ".join(f"{name} {at:.0f}" for name, at in sorted(marks.items(), key=lambda kv: kv[1]) if name != "start")
        + ".",
    ]
    lines += [f"- note: {note}" for note in r["notes"]]
    if r["retried"]:
        lines.append(f"- retried: {', '.join(r['retried'])}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"N={QUICK_N} and a short finish window")
    parser.add_argument("--n", type=int, help=f"mapped waits (default {DEFAULT_N}, {QUICK_N} with --quick)")
    parser.add_argument("--poll-interval", type=float)
    parser.add_argument("--parallelism", type=int, help="LocalExecutor workers (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep the Airflow home and logs")
    args = parser.parse_args(argv)
    n = args.n or (QUICK_N if args.quick else DEFAULT_N)
    result = run(n, quick=args.quick, keep=args.keep, poll_interval=args.poll_interval, parallelism=args.parallelism)
    print("\n".join(table(result)), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
