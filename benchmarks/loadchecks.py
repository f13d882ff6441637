"""Behaviour under real load, measured (the tests check the same properties on a fake clock).

Two figures, each from a fresh client process against the simulator in its own process:

* ``callbacks``: N waits on a slow API (0.5 s latency) in one event loop; every loop callback
  that runs longer than 0.1 s is timed, with the time the garbage collector spent inside it, and
  attributed to ours (a step of a wait's task: the trigger and what it resumes) or others (any
  other callback, by module). Run with and without ``gc.freeze()`` after the imports.
* ``qps``: N waits polling every 0.5 s on one connection with ``max_qps``; from the simulator's
  arrival times: the busiest 1 s window, requests per second, and how many the server refused.
* ``trtc``: N TRTC ingest waits on one connection (20 requests/s per API), the synchronous SDK in
  the provider's thread pool: slow loop callbacks (ours vs others) and the busiest 1 s window of
  ``DescribeStreamIngest`` at the simulator.

``python -m benchmarks.loadchecks --check callbacks --n 300 --api URL [--gc-freeze]`` prints one
JSON line; :func:`run` runs every check and :func:`table` renders the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from typing import Any

from benchmarks.common import API_KEY, SimProcess, raise_fd_limit

SLOW = 0.1


def _sim_post(api: str, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        api + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _sim_get(api: str, path: str) -> Any:
    with urllib.request.urlopen(api + path, timeout=30) as resp:
        return json.loads(resp.read())


def _connection(api: str, **extra: Any) -> None:
    os.environ["AIRFLOW_CONN_SCENEXT_DEFAULT"] = json.dumps(
        {
            "conn_type": "scenext",
            "host": f"{api}/scenext/api",
            "password": API_KEY,
            "extra": {"allow_private_hosts": True, **extra},
        }
    )


class SlowCallbacks:
    """Times every event-loop callback (``Handle._run``); keeps those over ``SLOW`` seconds."""

    def __init__(self) -> None:
        self.slow: list[dict[str, Any]] = []
        self.callbacks = 0
        self._gc = 0.0
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)
        real = asyncio.events.Handle._run

        def timed(handle: asyncio.Handle) -> None:
            started, gc_before = time.perf_counter(), self._gc
            real(handle)
            self.callbacks += 1
            took = time.perf_counter() - started
            if took > SLOW:
                self.slow.append({"s": took, "gc_s": self._gc - gc_before, "owner": self.owner(handle)})

        asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc += time.perf_counter() - self._gc_started

    @staticmethod
    def owner(handle: asyncio.Handle) -> str:
        callback = getattr(handle, "_callback", None)
        target = getattr(callback, "__self__", None)
        if isinstance(target, asyncio.Task):
            return "ours" if target.get_name().startswith("wait-") else f"task {target.get_name()}"
        module = getattr(callback, "__module__", None) or type(target).__module__
        return f"other: {module}"


def _trigger(task_id: str, *, within: float) -> Any:
    """A Scenext wait polling every 0.5 s, due ``within`` seconds from now."""
    from airflow_provider_avatar.triggers.task_status import AvatarTaskTrigger

    return AvatarTaskTrigger(
        service="scenext",
        conn_id="scenext_default",
        remote_task_id=task_id,
        target_states=["SUCCEEDED"],
        failure_states=["FAILED"],
        poll_interval=0.5,
        deadline=time.time() + within,
    )


async def _callbacks(api: str, n: int, freeze: bool) -> dict[str, Any]:

    _connection(api)
    _sim_post(api, "/_sim/faults", {"service": "scenext", "latency": 0.5})
    ids = _sim_post(api, "/_sim/scenext/tasks", {"tasks": [{"duration": 4.0}] * n})["task_ids"]
    if freeze:
        gc.collect()
        gc.freeze()
    timer = SlowCallbacks()

    async def wait(task_id: str) -> str:
        trigger = _trigger(task_id, within=120)
        events = [e.payload async for e in trigger.run()]
        return str(events[0]["status"])

    started = time.perf_counter()
    statuses = await asyncio.gather(*(asyncio.create_task(wait(i), name=f"wait-{i}") for i in ids))
    wall = time.perf_counter() - started
    _sim_post(api, "/_sim/faults", {"service": "scenext"})
    owners = Counter(s["owner"] for s in timer.slow)
    return {
        "n": n,
        "gc_freeze": freeze,
        "wall_s": wall,
        "callbacks": timer.callbacks,
        "slow": len(timer.slow),
        "slow_ours": owners.pop("ours", 0),
        "slow_others": dict(owners),
        "slow_max_s": max((s["s"] for s in timer.slow), default=0.0),
        "slow_mostly_gc": sum(1 for s in timer.slow if s["gc_s"] > s["s"] / 2),
        "wrong": sum(1 for s in statuses if s != "success"),
    }


async def _qps(api: str, n: int, max_qps: float, seconds: float) -> dict[str, Any]:

    _connection(api, max_qps=max_qps)
    ids = _sim_post(api, "/_sim/scenext/tasks", {"tasks": [{"duration": 3600}] * n})["task_ids"]
    triggers = [_trigger(i, within=3600) for i in ids]
    wanted = set(ids)
    tasks = [asyncio.ensure_future(_drain(t)) for t in triggers]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    rows = [r for r in _sim_get(api, "/_sim/requests?service=scenext") if r["path"].rsplit("/", 1)[-1] in wanted]
    times = sorted(r["at"] for r in rows)
    busiest = max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    return {
        "n": n,
        "max_qps": max_qps,
        "seconds": seconds,
        "requests": len(times),
        "busiest_1s": busiest,
        "per_second": (len(times) - 1) / span if span == span and span > 0 else 0.0,
        "refused": sum(1 for r in rows if r["status"] == 429),
    }


async def _drain(trigger: Any) -> None:
    async for _ in trigger.run():
        pass


async def _trtc(api: str, n: int, seconds: float) -> dict[str, Any]:
    """N ingest waits through the real SDK (started first, paced by the Start budget)."""
    from airflow_provider_avatar.hooks.trtc import TrtcHook
    from airflow_provider_avatar.testing.simulator import connection_env
    from airflow_provider_avatar.triggers.task_status import AvatarTaskTrigger

    info = _sim_get(api, "/_sim/info")
    os.environ.update(
        connection_env(
            {"trtc": info["services"]["trtc"]},
            API_KEY,
            info["logins"],
            extras=info.get("extras"),
            secret_extras=info.get("secret_extras"),
        )
    )
    hook = TrtcHook()
    url = "https://media.test/long.mp4?sim_seconds=3600"
    ids = [hook.start_stream_ingest(room_id="bench", stream_url=url, user_id=f"bench_{i}") for i in range(n)]
    triggers = [
        AvatarTaskTrigger(
            service="trtc",
            conn_id="trtc_default",
            remote_task_id=i,
            target_states=["STOPPED"],
            failure_states=["FAILED"],
            poll_interval=0.5,
            deadline=time.time() + seconds,
            not_found_grace_until=time.time() + 60,
        )
        for i in ids
    ]
    timer = SlowCallbacks()
    started = time.time()
    tasks = [asyncio.create_task(_drain(t), name=f"wait-{i}") for i, t in enumerate(triggers)]
    await asyncio.gather(*tasks)
    owners = Counter(s["owner"] for s in timer.slow)
    times = sorted(r["at"] for r in _sim_get(api, "/_sim/requests?service=trtc") if r["at"] >= started)
    busiest = max((sum(1 for t in times if a <= t < a + 1.0) for a in times), default=0)
    return {
        "n": n,
        "seconds": seconds,
        "requests": len(times),
        "busiest_1s": busiest,
        "per_second": len(times) / seconds,
        "slow": len(timer.slow),
        "slow_ours": owners.pop("ours", 0),
        "slow_max_s": max((s["s"] for s in timer.slow), default=0.0),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", choices=("callbacks", "qps", "trtc"), required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--gc-freeze", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--max-qps", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    raise_fd_limit()
    import airflow.sdk  # noqa: F401  (what a triggerer has loaded: the heap the GC walks)

    import airflow_provider_avatar.hooks.scenext  # noqa: F401

    if args.check == "callbacks":
        result = asyncio.run(_callbacks(args.api, args.n, args.gc_freeze))
    elif args.check == "trtc":
        result = asyncio.run(_trtc(args.api, args.n, args.seconds))
    else:
        result = asyncio.run(_qps(args.api, args.n, args.max_qps, args.seconds))
    print(json.dumps(result), flush=True)


def _child(env: dict[str, str], api: str, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.loadchecks", "--api", api, *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(env: dict[str, str], *, callback_waits: int = 300, qps_waits: int = 200, qps_seconds: float = 8.0) -> Any:
    """Every check against one simulator process (request log on, for the arrival times)."""
    with SimProcess(env, log_requests=True) as sim:
        callbacks = [
            _child(env, sim.api, "--check", "callbacks", "--n", str(callback_waits), flag)
            for flag in ("--no-gc-freeze", "--gc-freeze")
        ]
        qps = _child(env, sim.api, "--check", "qps", "--n", str(qps_waits), "--seconds", str(qps_seconds))
        trtc = _child(env, sim.api, "--check", "trtc", "--n", str(qps_waits), "--seconds", str(qps_seconds))
    return {"callbacks": callbacks, "qps": qps, "trtc": trtc}


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"Slow callbacks (> {SLOW:g} s) while N waits poll an API answering in 0.5 s, one event loop:",
        "",
        "| N | gc.freeze() | callbacks | slow | ours | others (by module) | of which mostly GC | longest s | wrong |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["callbacks"]:
        others = ", ".join(f"{k} {v}" for k, v in r["slow_others"].items()) or "0"
        lines.append(
            f"| {r['n']} | {'yes' if r['gc_freeze'] else 'no'} | {r['callbacks']} | {r['slow']} | {r['slow_ours']} "
            f"| {others} | {r['slow_mostly_gc']} | {r['slow_max_s']:.3f} | {r['wrong']} |"
        )
    q = result["qps"]
    lines += [
        "",
        f"{q['n']} waits polling every 0.5 s on one connection with max_qps={q['max_qps']:g}, {q['seconds']:g} s, "
        "by the simulator's arrival times:",
        "",
        "| requests | busiest 1 s window | requests/s | refused (429) |",
        "|---|---|---|---|",
        f"| {q['requests']} | {q['busiest_1s']} | {q['per_second']:.2f} | {q['refused']} |",
    ]
    t = result.get("trtc")
    if t:
        lines += [
            "",
            f"{t['n']} TRTC ingest waits polling every 0.5 s through the SDK (thread pool), {t['seconds']:g} s, "
            "20 requests/s per API:",
            "",
            "| Describe requests | busiest 1 s window | requests/s | slow callbacks (ours) | longest s |",
            "|---|---|---|---|---|",
            f"| {t['requests']} | {t['busiest_1s']} | {t['per_second']:.2f} | {t['slow']} ({t['slow_ours']}) "
            f"| {t['slow_max_s']:.3f} |",
        ]
    return lines


if __name__ == "__main__":
    main()
