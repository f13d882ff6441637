"""One trigger-density run: N concurrent waits in one event loop against the simulator process.

Run by ``benchmarks.run`` as ``python -m benchmarks.density --variant V --n N ...``; prints one
JSON line. Variants, all polling every ``--interval`` seconds and run the same way:

* ``floor``: a bare loop per wait over one shared ``aiohttp.ClientSession`` (no trigger machinery);
* ``avatar``: ``AvatarTaskTrigger`` (``GET /scenext/api/get_status/{id}``);
* ``http``: ``apache-airflow-providers-http``'s ``HttpSensorTrigger`` on the simulator's
  benchmark-only ``GET /scenext/api/_bench/done/{id}`` (404 while running, 200 when finished).

Like the triggerer, each trigger is first round-tripped through ``serialize()``: its class is
imported from the classpath and re-created from the kwargs; then ``run()`` is iterated to its end
as an asyncio task. Remote tasks are scripted to finish uniformly between 10 and 40 s after start.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import math
import os
import random
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

# Loaded by a triggerer anyway; imported by every variant so that heaps (and GC) compare.
import airflow.sdk  # noqa: F401
from airflow.providers.http.triggers.http import HttpSensorTrigger
from airflow.triggers.base import BaseTrigger

import airflow_provider_avatar.hooks.scenext
import airflow_provider_avatar.transport.aio  # noqa: F401
from airflow_provider_avatar.triggers.task_status import AvatarTaskTrigger
from benchmarks.common import API_KEY, percentile, proc_cpu, raise_fd_limit, rss_mb

VARIANTS = ("floor", "avatar", "http")
_sessions: list[aiohttp.ClientSession] = []


@dataclass
class Wait:
    """One waiting task: its remote finish time and what the wait reported."""

    task_id: str
    finish: float
    event_at: float | None = None
    payloads: list[Any] = field(default_factory=list)
    error: str | None = None


#: Waits not finished yet (each decrements it when its coroutine ends).
_running = [0]


class GcClock:
    """Time spent in the garbage collector, per generation (diagnostics for the table)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        #: The longest single collection of each generation (seconds): a full pass stops the loop.
        self.worst = [0.0, 0.0, 0.0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation, took = info["generation"], time.perf_counter() - self._started
            self.seconds[generation] += took
            self.count[generation] += 1
            self.worst[generation] = max(self.worst[generation], took)

    def snapshot(self) -> tuple[float, int]:
        """(seconds in collections so far, full collections so far)."""
        return sum(self.seconds), self.count[2]

    def reset_worst(self) -> None:
        self.worst = [0.0, 0.0, 0.0]


GC = GcClock()


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rebuild(trigger: BaseTrigger) -> BaseTrigger:
    """What the triggerer does: classpath + kwargs from ``serialize()``, import, instantiate."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    kwargs = json.loads(json.dumps(kwargs))  # the kwargs pass through the metadata DB as JSON
    rebuilt: BaseTrigger = cls(**kwargs)
    return rebuilt


async def run_trigger(trigger: BaseTrigger, wait: Wait) -> None:
    """Iterate ``run()`` to its end, like ``TriggerRunner.run_trigger``; note the first event."""
    try:
        async for event in trigger.run():
            if wait.event_at is None:
                wait.event_at = time.time()
            wait.payloads.append(event.payload)
    except Exception as exc:  # the triggerer would fail the task: a missing event here
        wait.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        _running[0] -= 1


async def read_status(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
    async with session.get(url, headers=headers) as resp:
        body = await resp.json()
    return str(body["data"]["status"])


async def floor_wait(session: aiohttp.ClientSession, url: str, interval: float, wait: Wait) -> None:
    """The floor: read the status, stop when it is no longer IN_PROGRESS, else sleep.

    Nothing but the status string is kept across the sleep (a lean floor, not a flattering one).
    """
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        while True:
            status = await read_status(session, url, headers)
            if status != "IN_PROGRESS":
                wait.event_at = time.time()
                wait.payloads.append(status)
                return
            await asyncio.sleep(interval)
    except Exception as exc:
        wait.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        _running[0] -= 1


def correct(variant: str, wait: Wait) -> bool:
    """Exactly one event, of the right kind, for the right task, not before the remote finish."""
    if len(wait.payloads) != 1 or wait.event_at is None or wait.event_at < wait.finish:
        return False
    payload = wait.payloads[0]
    if variant == "floor":
        return bool(payload == "COMPLETED")
    if variant == "http":
        return payload is True
    return (
        isinstance(payload, dict)
        and payload.get("status") == "success"
        and payload.get("remote_task_id") == wait.task_id
        and payload.get("task_status", {}).get("state") == "SUCCEEDED"
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    api = args.api.rstrip("/")
    rng = random.Random(args.seed)
    control = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4))
    try:
        await (await control.post(f"{api}/_sim/reset")).release()

        async def served() -> int:
            async with control.get(f"{api}/_sim/info") as resp:
                return int((await resp.json())["counts"].get("scenext", 0))

        # -- build: tasks scripted to start at t0, triggers rebuilt from serialize() ------------------
        t0 = time.time() + args.lead
        prefix = f"{args.variant}{args.seed}-"
        durations = [rng.uniform(args.min_duration, args.max_duration) for _ in range(args.n)]
        waits = [Wait(f"{prefix}{i}", t0 + d) for i, d in enumerate(durations)]
        specs = [{"task_id": w.task_id, "duration": d, "created_at": t0} for w, d in zip(waits, durations, strict=True)]
        async with control.post(f"{api}/_sim/scenext/tasks", json={"tasks": specs}) as resp:
            resp.raise_for_status()
        del specs  # keep the harness's own heap out of the waits' GC and RSS figures
        gc.collect()
        rss0, objects0 = rss_mb(), len(gc.get_objects())
        cpu_build = cpu_self()
        starters = build(args, api, waits)
        build_cpu = cpu_self() - cpu_build

        # -- run -----------------------------------------------------------------------------------
        await asyncio.sleep(max(0.0, t0 - time.time()))
        served0, sim0, cpu0, started = await served(), proc_cpu(args.sim_pid), cpu_self(), time.time()
        _running[0] = len(starters)
        tasks = [asyncio.ensure_future(start()) for start in starters]
        del starters
        peak_rss = rss_mb()
        startup: tuple[float, float, float, int] | None = None  # (at, cpu, sim cpu, served)
        cap = t0 + args.max_duration + args.grace
        # A cheap watcher (asyncio.wait over N tasks would cost O(N) per wake-up).
        rss_waiting = peak_rss
        first_finish = t0 + min(durations)
        objects_waiting: int | None = None
        while _running[0] > 0 and time.time() < cap:
            await asyncio.sleep(0.1)
            rss = rss_mb()
            peak_rss = max(peak_rss, rss)
            if time.time() < first_finish - 0.1:
                rss_waiting = rss  # the last reading while all N are still waiting
            if objects_waiting is None and startup is not None and time.time() >= first_finish - 1.0:
                objects_waiting = len(gc.get_objects())  # once: every wait is running and has polled
            if startup is None:
                count = await served()
                if count - served0 >= args.n:
                    startup = (time.time(), cpu_self(), proc_cpu(args.sim_pid), count)
                    gc_at_startup = GC.snapshot()
                    GC.reset_worst()
        ended, cpu1, sim1, served1 = time.time(), cpu_self(), proc_cpu(args.sim_pid), await served()
        gc_end = GC.snapshot()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        async with control.get(f"{api}/_sim/scenext/tasks") as resp:
            polls: dict[str, int] = await resp.json()
    finally:
        await control.close()
        for session in _sessions:
            await session.close()
    if startup is None:
        startup, gc_at_startup = (ended, cpu1, sim1, served1), gc_end

    # -- figures -----------------------------------------------------------------------------------
    s_at, s_cpu, s_sim, s_served = startup
    steady_requests = max(1, served1 - s_served)
    delays = [w.event_at - w.finish for w in waits if w.event_at is not None]
    requests = [polls.get(w.task_id, 0) for w in waits]
    budgets = [math.ceil(d / args.interval) + 1 for d in durations]
    errors = sorted({w.error for w in waits if w.error})
    return {
        "variant": args.variant,
        "n": args.n,
        "interval": args.interval,
        "tls": api.startswith("https"),
        "gc_freeze": args.gc_freeze,
        "build_cpu_s": build_cpu,
        "startup_s": s_at - started,
        "startup_cpu_s": s_cpu - cpu0,
        "startup_requests": s_served - served0,
        "steady_s": ended - s_at,
        "steady_cpu_s": cpu1 - s_cpu,
        "steady_requests": steady_requests,
        "cpu_ms_per_poll": 1000 * (cpu1 - s_cpu) / steady_requests,
        "gc_ms_per_poll": 1000 * (gc_end[0] - gc_at_startup[0]) / steady_requests,
        "gc_full_collections": gc_end[1] - gc_at_startup[1],
        "gc_by_generation": {"seconds": GC.seconds, "collections": GC.count, "worst": GC.worst},
        "gc_worst_full_ms": 1000 * GC.worst[2],
        "objects_per_wait": None if objects_waiting is None else (objects_waiting - objects0) / args.n,
        "sim_cpu_s": sim1 - sim0,
        "sim_us_per_request": 1e6 * (sim1 - s_sim) / steady_requests,
        "sim_core_share": (sim1 - s_sim) / max(1e-9, ended - s_at),
        "client_core_share": (cpu1 - s_cpu) / max(1e-9, ended - s_at),
        "rss_base_mb": rss0,
        "rss_peak_mb": peak_rss,
        "rss_waiting_mb": rss_waiting,
        "rss_mb_per_1000": (rss_waiting - rss0) * 1000 / args.n,
        "rss_peak_mb_per_1000": (peak_rss - rss0) * 1000 / args.n,
        "delay_p50_s": percentile(delays, 50),
        "delay_p95_s": percentile(delays, 95),
        "delay_max_s": max(delays, default=float("nan")),
        "requests_per_task": sum(requests) / args.n,
        "over_request_budget": sum(r > b for r, b in zip(requests, budgets, strict=True)),
        "wrong": sum(1 for w in waits if w.event_at is not None and not correct(args.variant, w)),
        "missing": sum(1 for w in waits if w.event_at is None),
        "errors": errors[:5],
    }


def build(args: argparse.Namespace, api: str, waits: list[Wait]) -> list[Callable[[], Awaitable[None]]]:
    """One coroutine factory per wait; triggers are created (from serialize()) before t0."""
    if args.variant == "floor":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256, limit_per_host=0))
        _sessions.append(session)

        def floor(w: Wait) -> Callable[[], Awaitable[None]]:
            return lambda: floor_wait(session, f"{api}/scenext/api/get_status/{w.task_id}", args.interval, w)

        return [floor(w) for w in waits]
    triggers: list[BaseTrigger]
    if args.variant == "avatar":
        triggers = [
            rebuild(
                AvatarTaskTrigger(
                    service="scenext",
                    conn_id="scenext_default",
                    remote_task_id=w.task_id,
                    target_states=["SUCCEEDED"],
                    failure_states=["FAILED"],
                    poll_interval=args.interval,
                    deadline=time.time() + 3600,
                )
            )
            for w in waits
        ]
    else:
        triggers = [
            rebuild(
                HttpSensorTrigger(
                    endpoint=f"scenext/api/_bench/done/{w.task_id}",
                    http_conn_id="http_bench",
                    method="GET",
                    poke_interval=args.interval,
                )
            )
            for w in waits
        ]

    def start(trigger: BaseTrigger, w: Wait) -> Callable[[], Awaitable[None]]:
        return lambda: run_trigger(trigger, w)

    return [start(t, w) for t, w in zip(triggers, waits, strict=True)]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--api", required=True, help="the simulator's API base URL")
    parser.add_argument("--sim-pid", type=int, required=True, help="the simulator's pid (its CPU is read)")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--min-duration", type=float, default=10.0)
    parser.add_argument("--max-duration", type=float, default=40.0)
    parser.add_argument("--grace", type=float, default=60.0, help="seconds after the last finish to wait for events")
    parser.add_argument("--lead", type=float, default=1.0, help="seconds between scripting and start")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gc-freeze", action=argparse.BooleanOptionalAction, default=False)
    return parser.parse_args(argv)


def configure_connections(api: str) -> None:
    """Env-var connections: the in-process secrets backend answers the async lookups."""
    os.environ["AIRFLOW_CONN_SCENEXT_DEFAULT"] = json.dumps(
        {"conn_type": "scenext", "host": f"{api}/scenext/api", "password": API_KEY}
    )
    # HttpAsyncHook sends connection extras as headers: the same Bearer key, so both authenticate.
    os.environ["AIRFLOW_CONN_HTTP_BENCH"] = json.dumps(
        {"conn_type": "http", "host": api, "extra": {"Authorization": f"Bearer {API_KEY}"}}
    )


if __name__ == "__main__":
    arguments = parse()
    raise_fd_limit()
    configure_connections(arguments.api.rstrip("/"))
    gc.collect()
    if arguments.gc_freeze:
        gc.freeze()
    print(json.dumps(asyncio.run(main(arguments))), flush=True)
