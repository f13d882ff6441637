"""Shared polls: many waits on few remote tasks, and many ZEGO streams of one AppId.

Two cases, each in a fresh client process with the simulator in a thread of that process (the
figures are request counts at the simulator, not CPU, so sharing the process is harmless):

* ``ids``: W Scenext waits on 10 distinct remote task ids (W/10 waits each, finishing 8-16 s
  after the start), polling every 2 s. Reference: what W waits cost when each polls on its own,
  ``ceil(duration / interval) + 1`` requests per wait (what a lone wait on the same task sends).
* ``zego``: 500 ZEGO waits for STOPPED on streams that stay STREAMING, one AppId, polling every
  2 s for S seconds: requests per poll interval, by action.

``python -m benchmarks.sharing --case ids --waits 1000`` prints one JSON line; :func:`run` runs
both and :func:`table` renders them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from airflow_provider_avatar.testing.simulator import Simulator
from airflow_provider_avatar.triggers.task_status import AvatarTaskTrigger
from benchmarks.common import raise_fd_limit

INTERVAL = 2.0
KEYS = {"scenext": "bench-scenext-key", "zego": "bench-zego-secret"}


async def _drain(trigger: AvatarTaskTrigger, events: list[Any]) -> None:
    async for event in trigger.run():
        events.append(event.payload)


def _trigger(service: str, task_id: str, targets: list[str], failures: list[str]) -> AvatarTaskTrigger:
    trigger = AvatarTaskTrigger(
        service=service,
        conn_id=f"{service}_default",
        remote_task_id=task_id,
        target_states=targets,
        failure_states=failures,
        poll_interval=INTERVAL,
        deadline=time.time() + 3600,
    )
    return AvatarTaskTrigger(**json.loads(json.dumps(trigger.serialize()[1])))


async def case_ids(sim: Simulator, waits: int, distinct: int = 10) -> dict[str, Any]:
    durations = [8.0 + 8.0 * i / max(1, distinct - 1) for i in range(distinct)]
    ids = [sim.scenext.add_task(duration=d) for d in durations]  # type: ignore[attr-defined]
    per_id = waits // distinct
    triggers = [_trigger("scenext", task_id, ["SUCCEEDED"], ["FAILED"]) for task_id in ids for _ in range(per_id)]
    events: list[Any] = []
    started = time.time()
    await asyncio.gather(*(_drain(t, events) for t in triggers))
    requests = len([r for r in sim.requests("scenext") if "/get_status/" in r.path])
    alone = sum((math.ceil(d / INTERVAL) + 1) * per_id for d in durations)
    return {
        "case": "ids",
        "waits": len(triggers),
        "distinct_ids": distinct,
        "requests": requests,
        "each_alone": alone,
        "ratio": requests / alone,
        "events_ok": sum(1 for e in events if e.get("status") == "success"),
        "seconds": time.time() - started,
    }


async def case_zego(sim: Simulator, waits: int, seconds: float) -> dict[str, Any]:
    zego = sim.zego  # type: ignore[attr-defined]
    before = Counter(zego.answered)
    ids = [zego.add_stream(created_at=time.time() - 5) for _ in range(waits)]
    triggers = [_trigger("zego", task_id, ["STOPPED"], ["FAILED"]) for task_id in ids]
    events: list[Any] = []
    runs = [asyncio.ensure_future(_drain(t, events)) for t in triggers]
    await asyncio.sleep(seconds)
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    counts = zego.answered - before
    intervals = seconds / INTERVAL
    return {
        "case": "zego",
        "waits": waits,
        "seconds": seconds,
        "by_action": dict(counts),
        "requests_per_interval": sum(counts.values()) / intervals,
        "events": len(events),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    sim = Simulator(api_keys=KEYS).start()
    try:
        for key, value in sim.connection_env("scenext", "zego").items():
            os.environ[key] = value
        if args.case == "ids":
            return await case_ids(sim, args.waits)
        return await case_zego(sim, args.waits, args.seconds)
    finally:
        sim.stop()


def run(env: dict[str, str], *, waits: int, seconds: float) -> list[dict[str, Any]]:
    results = []
    for case, n in (("ids", waits), ("zego", 500)):
        cmd = [sys.executable, "-m", "benchmarks.sharing", "--case", case, "--waits", str(n), "--seconds", str(seconds)]
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {case}: {result}", file=sys.stderr, flush=True)
        results.append(result)
    return results


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        if r["case"] == "ids":
            lines.append(
                f"- {r['waits']:,} waits on {r['distinct_ids']} remote task ids: {r['requests']:,} status reads; "
                f"polling each on its own: {r['each_alone']:,} (ratio 1/{1 / max(r['ratio'], 1e-9):.0f}); "
                f"{r['events_ok']:,} success events."
            )
        else:
            actions = ", ".join(f"{a} {c}" for a, c in sorted(r["by_action"].items()))
            lines.append(
                f"- ZEGO, {r['waits']} STREAMING waits on one AppId for {r['seconds']:g} s (poll every "
                f"{INTERVAL:g} s): {r['requests_per_interval']:.1f} requests per poll interval ({actions})."
            )
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--case", choices=("ids", "zego"), required=True)
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    raise_fd_limit()
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
